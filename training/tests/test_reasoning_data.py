"""Reasoning labels in the training stream (data.py) and a training run of a model that writes the scene first.

Hand-derived labels for a 96x144 kinematic camera (half field of view 0.7137 rad, 10 columns; the camera sits
0.28 m ahead of the trunk): a box 3 m ahead and 1 m right is column 7, one 3 m ahead and 1.5 m left column 1."""

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from helpers import IMAGE_SHAPE, tiny_config

from more_common.action_contract import STAND_COMMAND
from more_common.dataset import DatasetError, DatasetWriter, Episode
from more_training.config import DataConfig
from more_training.data import TransitionStream, encode_transitions
from more_training.trainer import train

CAM = 0.28
CAMERA = {"image_height": 96, "image_width": 144, "fovy": 60.0, "embodiment": "kinematic"}


def _thing(name: str, kind: str, x: float, y: float, letter: str = "") -> dict:
    return {"name": name, "kind": kind, "x": x, "y": y, "yaw": 0.0, "colour": "tan", "scale": 1.0, "letter": letter,
            "width": 0.0, "height": 0.0}  # fmt: skip


def _episode(index: int, task: str, things: list[dict], poses: list[tuple[float, float, float]]) -> Episode:
    n = len(poses)
    actions = np.tile(np.asarray(STAND_COMMAND, np.float32), (n, 1))
    actions[:, 0] = 0.4
    actions[-1, 11] = 1.0
    state = np.zeros((n, 8), np.float32)
    state[:, :3] = poses
    images = np.full((n, *IMAGE_SHAPE), 40 + 20 * index, np.uint8)
    return Episode(
        images=images, actions=actions, instruction="go to the box with the letter D", task=task, success=True,
        expert=True, episode_id=f"ep{index}", extras={"state": state},
        meta={"scenario": {"task": task, "things": things, "target": "target"}},
    )  # fmt: skip


def _write(root: Path, episodes: list[Episode], camera: dict | None = CAMERA) -> Path:
    with DatasetWriter(root, episodes_per_shard=4, compress=False, meta={"config": camera} if camera else {}) as w:
        for ep in episodes:
            w.add(ep)
    return root


BOXES = [_thing("target", "letter_box", CAM + 3.0, -1.0, "D"), _thing("box1", "letter_box", CAM + 3.0, 1.5, "B")]
# facing +y (yaw pi/2) both boxes lie about 70 degrees to the right: none in view
DISTINGUISH = _episode(0, "distinguish", BOXES, [(0.0, 0.0, 0.0), (0.0, 0.0, math.pi / 2), (0.0, 0.0, 0.0)])
GO_TO = _episode(1, "go_to", [_thing("target", "ball", CAM + 3.0, 0.0)], [(0.0, 0.0, 0.0), (0.5, 0.0, 0.0)])
EXPECTED = {("ep0", 0): ("B1D7.D7.", ".."), ("ep0", 1): ("..", "B1D7.D7."), ("ep0", 2): ("B1D7.D7.", "B1D7.D7."),
            ("ep1", 0): ("..", ".."), ("ep1", 1): ("..", "..")}  # fmt: skip


def _stream(root: Path, reasoning: bool = True) -> TransitionStream:
    cfg = DataConfig(train=(str(root),), shuffle_buffer=4)
    return TransitionStream(cfg, IMAGE_SHAPE[:2], seed=0, reasoning=reasoning)


def test_transitions_carry_the_scene_labels_at_s_and_s_next(tmp_path):
    root = _write(tmp_path / "data", [DISTINGUISH, GO_TO])
    items = {(t.episode_id, t.step): t for _, t in itertools.islice(_stream(root).transitions(), 5)}
    assert {k: (t.reasoning, t.next_reasoning) for k, t in items.items()} == EXPECTED
    plain = {(t.episode_id, t.step): t for _, t in itertools.islice(_stream(root, False).transitions(), 5)}
    assert all(t.reasoning is None and t.next_reasoning is None for t in plain.values())


def test_go2_labels_follow_the_d435_field_of_view(tmp_path):
    # the D435 renders 42 degrees vertically: half the horizontal view of a 96x144 image is atan(tan(21 deg) * 1.5)
    # = 0.5224 rad, against 0.7137 for the kinematic camera; the box 1 m right (bearing -0.3218) falls in column
    # int((0.5224 + 0.3218) / 1.0449 * 10) = 8, the one 1.5 m left (0.4636) in column 0
    root = _write(tmp_path / "go2", [DISTINGUISH], camera={**CAMERA, "embodiment": "go2", "go2_camera": "d435"})
    items = {(t.episode_id, t.step): t.reasoning for _, t in itertools.islice(_stream(root).transitions(), 3)}
    assert items == {("ep0", 0): "B0D8.D8.", ("ep0", 1): "..", ("ep0", 2): "B0D8.D8."}


def test_encoded_batches_teacher_force_the_labels(tmp_path):
    from more_model.policy import MoREPolicy

    root = _write(tmp_path / "data", [DISTINGUISH, GO_TO])
    cfg = tiny_config(root, tmp_path / "run", model__reasoning="scene")
    policy = MoREPolicy.from_config(cfg.model)
    items = [t for _, t in itertools.islice(_stream(root).transitions(), 5)]
    batch = encode_transitions(policy.encoder, items, with_next=True)
    assert batch.current.reasoning == tuple(EXPECTED[(t.episode_id, t.step)][0] for t in items)
    assert batch.next.reasoning == tuple(EXPECTED[(t.episode_id, t.step)][1] for t in items)
    assert not batch.next.has_actions  # s' is a prompt (+ its reasoning): slot 1 is read after the reasoning
    assert int((batch.current.reasoning_targets >= 0).sum()) == sum(len(t.reasoning) for t in items)


def test_datasets_without_the_needed_labels_are_refused_by_name(tmp_path):
    no_camera = _stream(_write(tmp_path / "a", [GO_TO], camera=None))  # readable only with stored labels
    with pytest.raises(DatasetError, match=r"'ep1' has no reasoning labels and .*meta\.config.*label-reasoning"):
        next(no_camera.transitions())
    with pytest.raises(DatasetError, match=r"meta\.config is not a simulator config.*lens"):
        _stream(_write(tmp_path / "a2", [GO_TO], camera={**CAMERA, "lens": "fisheye"}))
    stateless = Episode(**{**GO_TO.__dict__, "extras": {}, "episode_id": "nostate"})
    bad = _stream(_write(tmp_path / "c", [stateless]))
    with pytest.raises(DatasetError, match=r"'nostate'.*extra/state"):
        next(bad.transitions())
    gate = _thing("target", "gate", CAM + 3.0, 0.0)  # a gate without its opening (width 0) is malformed
    broken = _stream(_write(tmp_path / "d", [_episode(5, "go_through", [gate], [(0.0, 0.0, 0.0)])]))
    with pytest.raises(DatasetError, match=r"'ep5': no reasoning labels from its scenario.*width"):
        next(broken.transitions())
    crowd = [_thing(f"b{i}", "letter_box", CAM + 3.0, 0.3 * i - 1.2, letter) for i, letter in enumerate("ABCDEFHKM")]
    crowd[0]["name"] = "target"  # 9 boxes in view: 19 characters, more than a model writes
    long = _stream(_write(tmp_path / "e", [_episode(6, "distinguish", crowd, [(0.0, 0.0, 0.0)])]))
    with pytest.raises(DatasetError, match=r"'ep6': no reasoning labels.*at most 16 characters"):
        next(long.transitions())


@pytest.mark.parametrize("kind", ["il", "rl"])
def test_a_reasoning_model_learns_to_write_the_scene(tmp_path, kind):
    root = _write(tmp_path / "data", [DISTINGUISH, GO_TO])
    out = tmp_path / kind
    cfg = tiny_config(
        root, out, model__reasoning="scene", objective__kind=kind, optim__max_steps=30, optim__batch_size=5,
        data__shuffle_buffer=4, run__ckpt_every=30, data__use_suboptimal=False,
    )  # fmt: skip
    train(cfg)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    first, last = records[0], records[-1]
    assert last["reasoning"] < 0.5 * first["reasoning"], (first["reasoning"], last["reasoning"])
    assert "reasoning_acc" in last


def test_a_run_may_start_reasoning_from_a_model_that_did_not(tmp_path, caplog):
    from more_training.trainer import Trainer

    root = _write(tmp_path / "data", [DISTINGUISH, GO_TO])
    plain = train(tiny_config(root, tmp_path / "plain", optim__max_steps=3, run__ckpt_every=3))
    trainer = Trainer(tiny_config(root, tmp_path / "r", model__reasoning="scene", init__init_from=str(plain)))
    assert trainer.policy.config.reasoning == "scene" and len(trainer.policy.reasoning_token_ids) == 37
    trainer.close()
    reasoning = train(tiny_config(root, tmp_path / "r2", model__reasoning="scene", optim__max_steps=3,
                                  run__ckpt_every=3, init__init_from=str(plain)))  # fmt: skip
    # the checkpoint's model is used as it is; a config that differs is named in a warning, and a reasoning
    # model is never switched off by a config that does not mention reasoning
    with caplog.at_level("WARNING"):
        again = Trainer(tiny_config(root, tmp_path / "s", model__rank=2, init__init_from=str(reasoning)))
    assert again.policy.config.reasoning == "scene" and again.policy.config.rank == 4
    assert "differs in ['rank'] (not applied)" in caplog.text
    again.close()
