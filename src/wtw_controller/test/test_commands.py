"""QuadrupedCommand 12-vector -> the 15 walk-these-ways commands."""

import numpy as np
import pytest

from more_common.action_contract import action_from_mapping
from wtw_controller.commands import CommandMapper
from wtw_controller.config import CommandRanges, WtwConfig, load_config

STAND = [0.0, 0.0, 0.0, 0.0, 3.0, 0.5, 0.0, 0.0, 0.5, 0.08, 0.0, 0.0, 0.25, 0.40, 0.0]


def test_pass_through_in_range():
    cmd = action_from_mapping(
        {"vx": 0.5, "vy": 0.3, "wz": -0.5, "gait_phase": 0.0, "gait_offset": 0.5, "gait_bound": 0.0,
         "step_frequency": 2.5, "body_height": 0.05, "pitch": 0.1, "stance_width": 0.3, "footswing_height": 0.1}
    )  # fmt: skip
    out, how = CommandMapper(WtwConfig()).to_wtw(cmd)
    assert how == "ok"
    np.testing.assert_allclose(out, [0.5, 0.3, -0.5, 0.05, 2.5, 0.0, 0.5, 0.0, 0.5, 0.1, 0.1, 0.0, 0.3, 0.4, 0.0])


def test_clamped_to_trained_ranges():
    cmd = action_from_mapping({"vx": 3.0, "vy": -2.0, "wz": 9.0, "step_frequency": 10.0, "body_height": -1.0,
                               "pitch": 2.0, "stance_width": 0.0, "footswing_height": 1.0})  # fmt: skip
    out, _ = CommandMapper(WtwConfig()).to_wtw(cmd)
    assert out[0] == 1.0 and out[1] == -0.6 and out[2] == 1.0 and out[4] == 4.0 and out[3] == -0.25
    assert out[10] == 0.4 and out[12] == 0.10 and out[9] == 0.35


@pytest.mark.parametrize(
    "gait,expected",
    [((0.45, 0.05, 0.02), (0.5, 0, 0)), ((0.97, 0.02, 0.0), (0, 0, 0)), ((0.1, 0.4, 0.1), (0, 0.5, 0)),
     ((0.0, 0.1, 0.6), (0, 0, 0.5))],
)  # fmt: skip
def test_gait_snapped(gait, expected):
    cmd = action_from_mapping({"gait_phase": gait[0], "gait_offset": gait[1], "gait_bound": gait[2], "vx": 0.5})
    out, _ = CommandMapper(WtwConfig()).to_wtw(cmd)
    np.testing.assert_allclose(out[5:8], expected)


def test_small_speeds_zeroed_like_training():
    out, _ = CommandMapper(WtwConfig()).to_wtw(action_from_mapping({"vx": 0.15, "vy": 0.1, "wz": 0.3}))
    assert out[0] == 0 and out[1] == 0 and out[2] == 0.3


@pytest.mark.parametrize("kind", ["terminate", "nan", "none"])
def test_terminate_invalid_and_missing_mean_stand_in_place(kind):
    mapper = CommandMapper(WtwConfig())
    cmd = action_from_mapping({"vx": 0.8, "terminate": 1.0})
    if kind == "nan":
        cmd[0] = np.nan
    out, how = mapper.to_wtw(None if kind == "none" else cmd)
    np.testing.assert_allclose(out, STAND)
    assert how.startswith({"terminate": "terminate", "nan": "invalid", "none": "none"}[kind])


def test_config_yaml_overrides_and_errors(tmp_path):
    p = tmp_path / "wtw.yaml"
    p.write_text("ranges:\n  vx: [-2.0, 2.5]\nkp: 30.0\n")
    cfg = load_config(p)
    assert cfg.ranges.vx == (-2.0, 2.5) and cfg.kp == 30.0 and cfg.ranges.vy == (-0.6, 0.6)
    out, _ = CommandMapper(cfg).to_wtw(action_from_mapping({"vx": 2.2}))
    assert out[0] == 2.2
    p.write_text("ranges:\n  vx: [1.0, -1.0]\n")
    with pytest.raises(ValueError, match="vx"):
        load_config(p)
    with pytest.raises(ValueError, match="vy"):
        CommandRanges(vy=(0.1, 0.1))
