"""The README's demo: nodes in separate processes talk over DDS and the simulated base moves."""

import math

import pytest

from more_sim_ros.demo import run

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def test_demo_nodes_talk_and_the_base_moves():
    result = run(seconds=2.0, vx=0.5, wz=0.0)
    assert result["ok"], result
    assert result["commands_received"] >= 5
    assert result["odometry_received"] >= 50
    # Straight line: at most the distance of an instantly tracking base (0.5 m/s over the motion
    # window plus DDS start-up slack), at least what a 0.25 s lag leaves of half of it.
    assert 0.2 < result["final_pose"]["x"] < 0.5 * 2.0 + 0.3
    assert abs(result["final_pose"]["y"]) < 1e-3
    assert result["final_pose"]["speed"] < 0.05, "the stop command did not stop the base"
    assert math.isclose(result["distance_m"], math.hypot(result["final_pose"]["x"], result["final_pose"]["y"]))


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--vx", "nan"], "argument --vx: must be within the action contract's [-1, 1], got nan"),
        (["--wz", "100"], "argument --wz: must be within the action contract's"),
        (["--seconds", "-1"], "argument --seconds: must be in (0, 600], got -1.0"),
    ],
)
def test_bad_arguments_are_one_line_before_any_node_starts(argv, needle, capsys):
    from more_sim_ros.demo import main

    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and needle in err and err.count("\n") == 1, err
