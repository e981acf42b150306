"""The whole chain across processes on the physics Go2: `more-stack sim --embodiment go2` runs the simulator (the
robot on LowCmd/LowState, CRC both ways), the VLA policy (models/demo), the controller (velocity backend) and the
bridge, brings the bridge up through its real state machine and runs an episode in slow motion (x0.2, as the
2-core machine needs: docs/simulator.md); and `more-stack robot` never stands a robot up or activates it."""

import json
import subprocess
import sys
import time

import av
import numpy as np
import pytest

from more_ros import names
from more_ros.testing import NodeProcess, Probe
from more_sim.rollout import ENDS

pytestmark = [pytest.mark.ros, pytest.mark.slow]


def run_stack(*argv, timeout):
    return subprocess.run(
        [sys.executable, "-m", "more_bringup.runner", *map(str, argv)], capture_output=True, text=True, timeout=timeout
    )


def test_one_episode_through_the_whole_chain(tmp_path):
    videos = tmp_path / "videos"
    proc = run_stack(
        "sim", "--embodiment", "go2", "--time-scale", "0.2", "--episodes", "1", "--json", "--video", videos,
        timeout=400,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    r = json.loads(proc.stdout)
    assert r["mode"] == "sim" and r["embodiment"] == "go2" and r["time_scale"] == 0.2 and r["completed"]
    assert r["exit_status"] == {"policy_node": 0, "more_sim": 0, "go2_bridge": 0, "wtw_controller": 0}
    assert "Traceback" not in proc.stderr
    # the bridge went PASSIVE -> STAND_UP -> ACTIVE on the runner's requests
    assert r["bridge"]["accepted"]["/more/bridge/stand_up"] >= 1
    assert r["bridge"]["accepted"]["/more/bridge/activate"] >= 1
    # the controller's last diagnostics: the joint state's age at its steps (wall ms), the bridge publishing every
    # LowState at 500 x 0.2 Hz, so mostly under 10 ms plus the hop
    c = r["controller"]
    assert c["level"] in ("OK", "WARN") and 0.0 <= c["state_age_p50_ms"] <= c["state_age_p99_ms"], c
    assert c["state_age_p50_ms"] < 50.0 and c["period_p99_ms"] > 0.0, c
    b = r["bridge"]["diagnostics"]  # and how late the controller's targets reached the simulated robot
    assert 0.0 <= b["targets_age_p50_ms"] <= b["targets_age_p99_ms"] and b["targets_age_p50_ms"] < 50.0, b
    episode = r["episodes"][0]
    assert episode["task"] == "go_to" and episode["steps"] >= 1 and (episode["terminated"] or episode["truncated"])
    assert r["decisions"] >= 1 and r["step_latency_ms_p50"] > 0
    assert isinstance(r["falls"], int) and 0 <= r["falls"] <= 1
    # how it ended, in more-sim eval's words; a fall is counted whether or not the trunk tipped past the limit
    assert (episode["end"] == "success") == episode["success"] and r["ends"] == {episode["end"]: 1}
    assert episode["end"] in ENDS and r["falls"] >= (episode["end"] == "fall")
    t = r["tracking"]
    # a window is a pair of consecutive decisions: an episode of 3 or more steps has at least one
    assert t["windows"] >= 1 or episode["steps"] < 3, (t, episode["steps"])
    if t["windows"]:
        assert all(0.0 <= t[f"{k}_rmse"] < 5.0 for k in ("vx", "vy", "wz"))
    # one video of the episode: a frame per decision (the first image, each step, the final one repeated)
    (path,) = r["videos"]
    with av.open(path) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) >= episode["steps"] and frames[0].shape[1] > 600  # camera panel + third-person view


def test_robot_mode_never_stands_the_robot_up(tmp_path):
    """A simulated Go2 plays the robot; `more-stack robot` runs its whole stack for a while: the bridge stays
    PASSIVE and every LowCmd it sends is zero-torque (kp = kd = 0) until it damps on its way out (kp 0, kd 3: the
    bridge's exit on SIGINT); no position gain, ever."""
    from std_msgs.msg import String

    from more_model.testing import make_tiny_checkpoint
    from more_ros.qos import LATCHED_QOS, SENSOR_QOS
    from unitree_go.msg import LowCmd

    checkpoint = make_tiny_checkpoint(tmp_path / "ckpt", seed=2)
    params = tmp_path / "robot.yaml"
    params.write_text(
        "camera_node:\n  ros__parameters:\n    source: synthetic\n    width: 64\n    height: 48\n    fps: 5.0\n"
        f"policy_node:\n  ros__parameters:\n    checkpoint: {checkpoint}\n    torch_threads: 1\n"
        "    enabled: true\n    instruction: go to the red ball\n"
        "go2_bridge:\n  ros__parameters:\n    release_sport_mode: false\n    rate_hz: 100.0\n"
        "    lowstate_timeout_s: 2.0\n"
    )
    robot = NodeProcess("go2_sim.node", {"real_time_factor": 0.2})
    probe = Probe("robot_mode_probe")
    states = probe.listen(String, names.BRIDGE_STATE, LATCHED_QOS)
    lowcmds = probe.listen(LowCmd, names.LOWCMD, SENSOR_QOS)
    try:
        stack = subprocess.Popen(
            [sys.executable, "-m", "more_bringup.runner", "robot", "--params", str(params), "--timeout", "25",
             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while stack.poll() is None and time.monotonic() < deadline:
            probe.spin_until(lambda: False, 0.5)
        out, err = stack.communicate(timeout=60)
    finally:
        probe.close()
        robot.stop()
    assert stack.returncode == 0, err[-3000:]
    r = json.loads(out)
    assert "bridge" not in r and r["decisions"] >= 1  # the policy ran; nothing brought the bridge up
    assert states and all(m.data.startswith("PASSIVE") for m in states), [m.data for m in states]
    assert len(lowcmds) > 100
    kp = np.array([[m.kp for m in c.motor_cmd[:12]] for c in lowcmds])
    kd = np.array([[m.kd for m in c.motor_cmd[:12]] for c in lowcmds])
    assert (kp == 0).all()
    damping = (kd == 3.0).all(axis=1)
    assert ((kd == 0).all(axis=1) | damping).all()
    first = int(np.argmax(damping)) if damping.any() else len(kd)
    assert damping[first:].all() and first > 100  # damping only at the end (the stack's shutdown)
