"""The scene in words: hand-derived bearings and columns for a 96x144 camera (half field of view 0.71372 rad)."""

import math

import pytest

from more_sim.config import SimConfig
from more_sim.naming import half_fov_x
from more_sim.scene_text import (
    GO_TO_CODES,
    SCENE_COLUMNS,
    boxes_in_view,
    scenario_things,
    scene_answer,
    scene_reasoning,
    scene_text,
    thing_code,
    view_column,
)
from more_sim.world import Thing

CONFIG = SimConfig(image_height=96, image_width=144)
HALF = 0.7137243789447656  # atan(tan(30 deg) * 144 / 96) = atan(0.8660254)
CAM = 0.28  # the camera sits 0.28 m ahead of the trunk centre


def box(name: str, letter: str, x: float, y: float) -> Thing:
    return Thing(name=name, kind="letter_box", x=x, y=y, letter=letter)


def test_half_field_of_view_is_the_hand_value() -> None:
    assert half_fov_x(CONFIG) == pytest.approx(HALF, abs=1e-12)


def test_columns_at_hand_derived_bearings() -> None:
    assert view_column(0.0, HALF) == 5  # the centre: (0.7137 - 0) / 1.4274 * 10 = 5.0
    assert view_column(HALF, HALF) == 0  # the left edge belongs to the field
    assert view_column(-HALF, HALF) == SCENE_COLUMNS - 1  # the right edge: 10.0 clamps to 9
    assert view_column(math.atan(0.5), HALF) == 1  # (0.7137 - 0.4636) / 1.4274 * 10 = 1.75
    assert view_column(-math.atan(1 / 3), HALF) == 7  # (0.7137 + 0.3218) / 1.4274 * 10 = 7.25


@pytest.mark.parametrize("bearing", [HALF + 1e-9, -HALF - 1e-9, math.nan, math.inf])
def test_a_bearing_outside_the_field_is_refused(bearing: float) -> None:
    with pytest.raises(ValueError, match="field of view"):
        view_column(bearing, HALF)


def test_scene_lists_boxes_in_view_left_to_right_with_their_columns() -> None:
    things = [
        box("a", "A", CAM + 3.0, 0.0),  # straight ahead: column 5
        box("d", "D", CAM + 3.0, -1.0),  # atan(1/3) to the right: column 7
        box("b", "B", CAM + 3.0, 1.5),  # atan(0.5) to the left: column 1
        box("e", "E", CAM + 3.0, 3.0),  # 45 deg to the left: outside the 40.9 deg half field
        box("f", "F", -2.0, 0.0),  # behind the camera
        Thing(name="ball", kind="ball", x=CAM + 3.0, y=0.2),  # no letter: not a box
    ]
    view = boxes_in_view(things, 0.0, 0.0, 0.0, CONFIG)
    assert [letter for _, letter in view] == ["B", "A", "D"]
    assert scene_text(view, HALF) == "B1A5D7."
    assert scene_answer(view, 2, HALF) == "B1A5D7.D7."
    assert scene_answer(view, 0, HALF) == "B1A5D7.B1."


def test_the_view_turns_with_the_robot() -> None:
    # facing +y from (1, 1): the camera is at (1, 1.28) and +x is to the right; 3 m ahead and 1 m to the right is
    # atan(1/3) to the right (column 7), 1.5 m to the left is atan(0.5) to the left (column 1)
    things = [box("c", "C", 2.0, 4.28), box("a", "A", -0.5, 4.28)]
    view = boxes_in_view(things, 1.0, 1.0, math.pi / 2, CONFIG)
    assert scene_text(view, HALF) == "A1C7."


def test_no_box_in_view_is_a_full_stop_and_naming_one_is_refused() -> None:
    assert scene_text([], HALF) == "."
    with pytest.raises(ValueError, match="not one of the 0 boxes"):
        scene_answer([], 0, HALF)


def test_reasoning_names_the_target_box_when_it_is_in_view() -> None:
    things = [
        box("target", "D", CAM + 3.0, -1.0),  # column 7
        box("box1", "B", CAM + 3.0, 1.5),  # column 1
        Thing(name="ball", kind="ball", x=CAM + 3.0, y=0.2),
    ]
    assert scene_reasoning(things, "target", 0.0, 0.0, 0.0, CONFIG, "distinguish") == "B1D7.D7."
    assert scene_reasoning(things, "box1", 0.0, 0.0, 0.0, CONFIG, "distinguish") == "B1D7.B1."


def test_reasoning_without_a_named_box_in_view_still_ends_with_two_full_stops() -> None:
    things = [box("target", "D", CAM + 3.0, -1.0), box("box1", "B", -2.0, 0.0)]  # box1 behind the camera
    assert scene_reasoning(things, "box1", 0.0, 0.0, 0.0, CONFIG, "distinguish") == "D7.."
    ball = [Thing(name="target", kind="ball", x=CAM + 3.0, y=0.0, colour="red")]
    assert scene_reasoning(ball, "target", 0.0, 0.0, 0.0, CONFIG, "go_avoid") == ".."  # tasks that write nothing
    assert scene_reasoning(ball, "target", 0.0, 0.0, 0.0, CONFIG, "distinguish") == ".."  # a ball has no letter


def test_go_to_writes_each_object_as_the_code_of_its_colour_and_kind() -> None:
    assert [GO_TO_CODES[("red", k)] for k in ("ball", "cube", "cylinder")] == ["G", "I", "J"]
    assert [GO_TO_CODES[(c, "ball")] for c in ("green", "blue", "yellow")] == ["L", "Q", "V"]
    assert GO_TO_CODES[("yellow", "cylinder")] == "X" and len(set(GO_TO_CODES.values())) == 12
    things = [
        Thing(name="target", kind="cube", x=CAM + 3.0, y=-1.0, colour="blue"),  # column 7: S
        Thing(name="distractor1", kind="cube", x=CAM + 3.0, y=1.5, colour="red"),  # column 1: I
        Thing(name="distractor2", kind="egg", x=CAM + 3.0, y=0.0, colour="blue"),  # an OOD kind: not written
        Thing(name="distractor3", kind="ball", x=CAM + 3.0, y=0.0, colour="pink"),  # an OOD colour: not written
    ]
    assert scene_reasoning(things, "target", 0.0, 0.0, 0.0, CONFIG, "go_to") == "I1S7.S7."
    assert thing_code(things[0], "crawl") == "" and thing_code(box("b", "B", 1.0, 0.0), "go_to") == ""


def test_reasoning_reads_the_scenario_metadata_an_episode_stores() -> None:
    scenario = {
        "things": [
            {"name": "target", "kind": "letter_box", "x": CAM + 3.0, "y": 0.0, "yaw": 0.3, "colour": "tan",
             "scale": 1.0, "letter": "C", "width": 0.0, "height": 0.0},
        ],
        "target": "target",
    }  # fmt: skip
    things = scenario_things(scenario)
    assert things[0].yaw == 0.3 and things[0].letter == "C" and things[0].colour == "tan"
    gate = {"name": "gate", "kind": "gate", "x": 1.0, "y": 0.0, "yaw": 0.0, "colour": "blue", "scale": 1.0,
            "letter": "", "width": 1.2, "height": 0.0}  # fmt: skip
    assert scenario_things({"things": [gate]})[0].width == 1.2  # go_through's gates need their opening
    assert scene_reasoning(things, scenario["target"], 0.0, 0.0, 0.0, CONFIG, "distinguish") == "C5.C5."


def test_two_boxes_with_the_target_letter_in_view_are_refused() -> None:
    things = [box("target", "C", CAM + 3.0, 0.0), box("twin", "C", CAM + 3.0, 1.0)]
    with pytest.raises(ValueError, match="ambiguous"):
        scene_reasoning(things, "target", 0.0, 0.0, 0.0, CONFIG, "distinguish")
