"""`go2_state_delay_ms`: the controller reads the joint state and IMU as they were that long ago, stamped when they
were measured; checked against the physics' own history, recorded step by step beside the walker."""

import json

import numpy as np
import pytest

from more_common.action_contract import action_from_mapping
from more_sim.cli import main as more_sim
from more_sim.config import SimConfig
from more_sim.env import make_env


def run_recorded(delay_ms: float, seed: int = 3, decisions: int = 3):
    """Walk forward for `decisions`; returns what the controller received (body time, stamp, q, gyro) and the
    physics' history (step index -> (q, gyro)) and the trunk's final position."""
    env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, go2_state_delay_ms=delay_ms))
    walker = env.unwrapped.embodiment
    body = walker.body
    history = {}
    physics_step = body.step

    def recording_step(n):
        physics_step(n)
        history[round(body.time / body.timestep)] = (body.q, body.gyroscope.copy())

    body.step = recording_step
    env.reset(seed=seed)  # stands for 1 s under the controller first
    controller = walker.controller
    received = []
    on_joint_state, on_imu = controller.on_joint_state, controller.on_imu

    def joint_state(q, dq, stamp):
        received.append({"now": body.time, "stamp": stamp, "q": q.copy()})
        on_joint_state(q, dq, stamp)

    def imu(quaternion_xyzw, stamp, gyro):
        received[-1].update(imu_stamp=stamp, gyro=np.array(gyro))
        on_imu(quaternion_xyzw, stamp, gyro)

    controller.on_joint_state, controller.on_imu = joint_state, imu
    forward = action_from_mapping({"vx": 0.5})
    for _ in range(decisions):
        _, _, terminated, truncated, info = env.step(forward)
        assert not (terminated or truncated), info["failure"]
    position = body.base_position
    env.close()
    return received, history, body.timestep, position


@pytest.mark.parametrize("delay_ms", [0.0, 4.0, 10.0])
def test_the_controller_reads_the_state_of_delay_ms_ago(delay_ms):
    received, history, dt, _ = run_recorded(delay_ms)
    assert len(received) == 3 * 10  # 10 control steps per 0.2 s decision
    for r in received:
        assert r["stamp"] == pytest.approx(r["now"] - delay_ms / 1000.0, abs=1e-9)
        assert r["imu_stamp"] == r["stamp"]
        q, gyro = history[round(r["stamp"] / dt)]
        np.testing.assert_array_equal(r["q"], q)
        np.testing.assert_array_equal(r["gyro"], gyro)


def test_a_delay_changes_the_walk_and_no_delay_is_repeatable():
    *_, fresh = run_recorded(0.0, decisions=4)
    *_, again = run_recorded(0.0, decisions=4)
    *_, late = run_recorded(10.0, decisions=4)
    np.testing.assert_array_equal(fresh, again)
    assert np.abs(late - fresh).max() > 1e-3


def test_bad_delays_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"go2_state_delay_ms must be in \[0, 50\] ms, got -2"):
        SimConfig(embodiment="go2", go2_state_delay_ms=-2)
    with pytest.raises(ValueError, match=r"go2_state_delay_ms must be in \[0, 50\] ms, got 52"):
        SimConfig(embodiment="go2", go2_state_delay_ms=52)
    with pytest.raises(ValueError, match=r"go2_state_delay_ms 4 needs embodiment 'go2' with go2_backend 'lowlevel'"):
        SimConfig(embodiment="go2", go2_backend="sport", go2_state_delay_ms=4)
    with pytest.raises(ValueError, match=r"go2_state_delay_ms 4 needs embodiment 'go2'"):
        SimConfig(go2_state_delay_ms=4)
    with pytest.raises(ValueError, match=r"whole number of 2 ms physics steps, got 3"):
        make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, go2_state_delay_ms=3))


def test_eval_reports_the_delay_and_the_cli_refuses_a_bad_one(tmp_path, capsys):
    out = tmp_path / "eval"
    argv = ["eval", "--policy", "expert", "--tasks", "go_to", "--episodes-per-task", "1", "--embodiment", "go2",
            "--go2-state-delay-ms", "4", "--out", str(out)]  # fmt: skip
    assert more_sim(argv) == 0
    result = json.loads((out / "results.json").read_text())
    assert result["go2_state_delay_ms"] == 4.0 and result["embodiment"] == "go2"
    assert "embodiment go2 (state 4 ms old)" in (out / "results.md").read_text()
    capsys.readouterr()
    code = more_sim(["eval", "--policy", "expert", "--tasks", "go_to", "--go2-state-delay-ms", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: go2_state_delay_ms 2.0 needs embodiment 'go2'"), err


def test_past_the_controllers_age_limit_it_walks_at_the_capped_speed():
    """As the node: the walker's controller measures the age and, judged stale (p99 > 4 ms), caps |vx| at 0.4."""
    fast = action_from_mapping({"vx": 0.8})
    for delay_ms, capped in ((4.0, False), (10.0, True)):
        env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, go2_state_delay_ms=delay_ms))
        env.reset(seed=3)  # judged at the end of the 1 s stand: every age so far was delay_ms
        walker = env.unwrapped.embodiment
        assert walker.controller.stale_guard.capped == capped
        assert walker.commanded_velocity(fast)[0] == pytest.approx(0.4 if capped else 0.8)
        *_, info = env.step(fast)
        assert info["velocity"]["commanded"][0] == pytest.approx(0.4 if capped else 0.8)
        env.close()


def test_the_controller_config_file_narrows_the_ranges_as_the_nodes_does(tmp_path, capsys):
    slow = tmp_path / "slow.yaml"
    slow.write_text("ranges:\n  vx: [-0.3, 0.3]\n  vy: [-0.3, 0.3]\n")
    env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, go2_controller_config=str(slow)))
    env.reset(seed=3)
    *_, info = env.step(action_from_mapping({"vx": 0.8, "vy": -0.5, "wz": 0.6}))
    assert info["velocity"]["commanded"] == pytest.approx((0.3, -0.3, 0.6))
    env.close()
    out = tmp_path / "eval"
    argv = ["eval", "--policy", "expert", "--tasks", "go_to", "--episodes-per-task", "1", "--embodiment", "go2",
            "--go2-controller-config", str(slow), "--out", str(out)]  # fmt: skip
    assert more_sim(argv) == 0
    assert json.loads((out / "results.json").read_text())["go2_controller_config"] == str(slow)
    assert f"controller config {slow}" in (out / "results.md").read_text()
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("ranges:\n  vz: [-0.3, 0.3]\n")
    argv[-3], argv[-1] = str(bad), str(tmp_path / "eval2")
    assert more_sim(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: go2_controller_config {bad}: unknown key(s) ['ranges.vz']; known: ['vx', 'vy', 'wz']"]
    assert not (tmp_path / "eval2" / "results.json").exists()
    with pytest.raises(ValueError, match=r"go2_controller_config .* needs embodiment 'go2'"):
        SimConfig(go2_controller_config=str(slow))


@pytest.mark.parametrize("delay_ms", [0.0, 6.0])
def test_the_targets_reach_the_motors_delay_ms_after_the_step(delay_ms):
    env = make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, go2_target_delay_ms=delay_ms))
    env.reset(seed=3)
    walker = env.unwrapped.embodiment
    body, controller = walker.body, walker.controller
    decided, applied = {}, []
    step, set_command = controller.step, body.set_command

    def recording_step(now):
        result = step(now)
        decided[round(now / body.timestep)] = result.targets.copy()
        return result

    def recording_set_command(command):
        applied.append((round(body.time / body.timestep), command.q.copy()))
        set_command(command)

    controller.step, body.set_command = recording_step, recording_set_command
    for _ in range(2):
        env.step(action_from_mapping({"vx": 0.5}))
    env.close()
    lag = round(delay_ms / 2)  # physics steps
    assert len(applied) == 20  # one per 20 ms control step of the two decisions (the stand's arrived before)
    for at, q in applied:  # each the targets decided `lag` physics steps before
        np.testing.assert_array_equal(q, decided[at - lag])
    assert all(at % 10 == lag for at, _ in applied)


def test_bad_target_delays_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"go2_target_delay_ms must be in \[0, 50\] ms, got 51"):
        SimConfig(embodiment="go2", go2_target_delay_ms=51)
    with pytest.raises(ValueError, match=r"go2_target_delay_ms 2 needs embodiment 'go2' with go2_backend 'lowlevel'"):
        SimConfig(embodiment="go2", go2_backend="sport", go2_target_delay_ms=2)
    with pytest.raises(ValueError, match=r"go2_target_delay_ms must be a whole number of 2 ms physics steps, got 1"):
        make_env("go_to", "id", SimConfig(embodiment="go2", render_images=False, go2_target_delay_ms=1))
