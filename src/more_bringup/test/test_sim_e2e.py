"""The simulator node and the policy node run episodes end to end over real DDS: as two OS processes (every
command is the model's decision on the simulator's image), and through `more-stack sim --record`, whose bag
replays offline to exact agreement, labelled with the simulator's task."""

import json
import subprocess
import sys

import numpy as np
import pytest

from more_ros.testing import NodeProcess, Probe

pytestmark = [pytest.mark.ros, pytest.mark.slow]

INSTRUCTION = "go to the red ball"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from more_model.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("sim") / "ckpt", seed=1)


def test_two_processes_run_an_episode_on_the_models_decisions(checkpoint):
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from more_model import load_policy
    from more_msgs.msg import EpisodeStatus, QuadrupedCommand
    from more_ros import names
    from more_ros.qos import COMMAND_QOS, SENSOR_QOS

    sim = NodeProcess(
        "more_sim_ros.world_node", {"task": "go_to", "instruction": INSTRUCTION, "rate_hz": 10.0, "seed": 3}
    )
    policy = NodeProcess(
        "more_vla_policy.policy_node",
        {"checkpoint": str(checkpoint), "enabled": True, "rate_hz": 10.0, "image_timeout_s": 1.0, "torch_threads": 1},
    )
    probe = Probe("sim_e2e_probe")
    images = probe.listen(Image, names.CAMERA_IMAGE, SENSOR_QOS)
    commands = probe.listen(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
    episodes = probe.listen(EpisodeStatus, names.SIM_EPISODE, qos_profile_sensor_data)
    ended = lambda: [e for e in episodes if e.terminated or e.truncated]  # noqa: E731

    def matched():
        stamps = {(m.header.stamp.sec, m.header.stamp.nanosec) for m in images}
        return [c for c in commands if c.bins[0] >= 0 and (c.header.stamp.sec, c.header.stamp.nanosec) in stamps]

    def done():
        return (ended() and len(matched()) >= 3) or not sim.alive or not policy.alive

    try:
        ok = probe.spin_until(done, timeout=150)
    finally:
        probe.close()
        errors = {"sim": _stopped(sim), "policy": _stopped(policy)}
    assert ok and ended(), f"no episode ended; {len(images)} images, {len(commands)} commands; {errors}"
    for name, err in errors.items():
        assert "Traceback" not in err, f"{name}: {err[-3000:]}"
    final = ended()[0]
    assert final.task == "go_to" and final.instruction == INSTRUCTION and final.step >= 1
    # every decided command is the model's decision on the simulator image carrying the same stamp
    by_stamp = {(m.header.stamp.sec, m.header.stamp.nanosec): m for m in images}
    decided = matched()
    assert len(decided) >= 3, "too few decided commands matched a received image"
    model = load_policy(checkpoint)
    for cmd in decided[:5]:
        img = by_stamp[(cmd.header.stamp.sec, cmd.header.stamp.nanosec)]
        rgb = np.frombuffer(bytes(img.data), np.uint8).reshape(img.height, img.width, 3)
        assert list(cmd.bins) == model.decode([rgb], [INSTRUCTION]).bins[0].tolist()


def test_more_stack_sim_json_and_recorded_bag_replay(checkpoint, tmp_path, capsys):
    from more_vla_policy.replay import cli

    bag = tmp_path / "sim_bag"
    proc = subprocess.run(
        [
            sys.executable, "-m", "more_bringup.runner", "sim", "--checkpoint", str(checkpoint),
            "--instruction", INSTRUCTION, "--task", "crawl", "--json", "--record", str(bag),
            "--set", "more_sim.rate_hz=10.0", "--set", "policy_node.rate_hz=10.0", "--timeout", "150",
        ],
        capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["completed"] and result["task"] == "crawl" and result["instruction"] == INSTRUCTION
    assert result["steps"] >= 1 and isinstance(result["success"], bool)
    # (on failure: what the monitor saw, and the nodes' logs, e.g. a simulator that started without its readers)
    seen = {k: result.get(k) for k in ("steps", "commands", "decisions", "images", "faults", "episodes")}
    assert result["decisions"] >= 1 and result["mean_step_latency_ms"] > 0, (seen, proc.stderr[-3000:])
    assert result["record"]["messages"]["/more/sim/episode"] >= result["steps"]
    # how the episode ended: the simulator's EpisodeEnd, once, in the JSON, the bag and the simulator's log
    (episode,) = result["episodes"]
    assert (episode["end"] == "success") == episode["success"] and result["ends"] == {episode["end"]: 1}
    assert episode["steps"] == result["steps"] and result["record"]["messages"]["/more/sim/episode_end"] == 1
    assert f"episode {episode['episode']} ended: {episode['end']} after {episode['steps']} decisions" in proc.stderr

    assert cli.main([str(bag), "--checkpoint", str(checkpoint), "--json"]) == 0
    replayed = json.loads(capsys.readouterr().out)
    assert replayed["labelled"] and replayed["with_recorded_command"] >= 1
    assert replayed["agreement"]["all_dims_exact"] == 1.0
    assert set(replayed["per_task"]) == {"crawl"}


def _stopped(node: NodeProcess) -> str:
    node.stop()
    return node.output()
