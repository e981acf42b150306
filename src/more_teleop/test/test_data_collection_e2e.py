"""The data-collection loop end to end in simulation, each node its own OS process over real DDS:

    world_sim_node --image, instruction--> bag_recorder <--/more/command-- command_mux <--teleop-- scripted operator
    episode_control (services called by the operator) --/more/episode/status--> bag_recorder

A scripted operator drives three episodes (the expert to the goal: success; walking away and terminating: failure;
a discarded one), the bag becomes a dataset with `more-replay --to-dataset`, `more-train` fine-tunes a tiny
checkpoint's adapters on it with the shipped recipe, and `more-sim eval` evaluates the result. Every stage's output
is checked against what the operator did."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from scripted_operator import ScriptedOperator

from more_common.action_contract import TERMINATE
from more_common.dataset import EpisodeDataset
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = [pytest.mark.ros, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[3]
H, W = 32, 48  # the tiny checkpoint's image size
SEED = 11
RATE_HZ = 5.0
WORLD_PARAMS = {"task": "go_to", "seed": SEED, "rate_hz": RATE_HZ, "image_width": W, "image_height": H}
WORLD_PARAMS |= {"auto_reset": False, "reset_delay_s": 0.0}  # the operator starts each scene (/more/sim/reset)


def _run(*argv, timeout=240):
    proc = subprocess.run([sys.executable, "-m", *map(str, argv)], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{argv[0]} exited {proc.returncode}: {proc.stderr[-3000:]}"
    return proc


def test_teleoperated_episodes_to_dataset_to_finetune_to_eval(tmp_path):
    from more_ros.qos import STATUS_QOS

    bag = tmp_path / "bag"
    nodes = {
        "world": NodeProcess("more_sim_ros.world_node", WORLD_PARAMS),
        "mux": NodeProcess("more_teleop.mux_node"),
        "episodes": NodeProcess("more_teleop.episode_node", {"task": "go_to"}),
        "recorder": NodeProcess("more_vla_policy.replay.recorder_node", {"path": str(bag)}),
    }
    probe = Probe("data_collection_operator")
    operator = ScriptedOperator(probe, "go_to", "id", SEED, RATE_HZ)
    try:
        from more_msgs.msg import EpisodeStatus

        labels = probe.listen(EpisodeStatus, names.EPISODE_STATUS, STATUS_QOS)
        # the recorder must hear the labels, the camera and the commands before the first episode
        recorded = lambda t: probe.node.count_subscribers(t) >= (2 if t == names.EPISODE_STATUS else 1)  # noqa: E731
        ready = lambda: all(map(recorded, (names.EPISODE_STATUS, names.CAMERA_IMAGE, names.COMMAND)))  # noqa: E731
        assert probe.spin_until(ready, 60), {k: n.output()[-1500:] for k, n in nodes.items()}
        logs = [operator.run_episode(mode) for mode in ("expert", "wrong_way", "discard")]
    finally:
        operator.close()
        probe.close()
        codes = {name: node.stop() for name, node in nodes.items()}
    for name, node in nodes.items():
        assert codes[name] == 0 and "Traceback" not in node.output(), f"{name}: {node.output()[-3000:]}"

    expert, wrong, discarded = logs
    assert expert.sim_success and expert.label is True, "the expert did not reach the goal"
    assert not wrong.sim_success and wrong.label is False
    assert discarded.label is None
    finals = [s for s in labels if s.terminated]
    assert [(s.episode, s.success) for s in finals] == [(0, True), (1, False)]
    # episode_control counted what the mux put on /more/command while recording: the operator's commands
    for log, final in zip((expert, wrong), finals, strict=True):
        assert abs(final.step - len(log.sent)) <= 2, (final.step, len(log.sent))

    # 1. bag -> dataset: the two labelled episodes, each exactly the operator's commands while it was recorded
    ds = tmp_path / "teleop_ds"
    proc = _run(
        "more_vla_policy.replay.cli", bag, "--to-dataset", ds, "--episode-topic", names.EPISODE_STATUS,
        "--between-episodes", "drop", "--include-stops", "--json",
    )  # fmt: skip
    summary = json.loads(proc.stdout)["dataset"]
    assert (summary["episodes"], summary["successes"]) == (2, 1), summary
    episodes = list(EpisodeDataset(ds).iter_episodes())
    for e, log in zip(episodes, (expert, wrong), strict=True):
        assert (e.success, e.task, e.instruction, e.terminated) == (log.label, "go_to", log.instruction, True)
        assert e.images.shape[1:] == (H, W, 3) and e.images.dtype == np.uint8 and e.images.std() > 0
        sent = np.stack(log.sent).astype(np.float32)
        # every recorded step is one of the operator's commands of this episode, in the order sent
        unmatched = [(k, a.tolist()) for k, a in enumerate(e.actions) if not (sent == a).all(axis=1).any()]
        assert not unmatched, (  # once (2026-12-02, full suite on 2 loaded cores): passed alone in 3 runs after
            f"episode {e.episode_id}: recorded steps that the operator never sent (step, action): {unmatched[:3]}; "
            f"{len(e.actions)} steps, {len(log.sent)} sent"
        )
        idx = [int(np.flatnonzero((sent == a).all(axis=1))[0]) for a in e.actions]
        assert idx == sorted(idx) and len(idx) >= len(log.sent) - 2, (idx, len(log.sent))
        assert e.actions[-1][TERMINATE] == 1.0  # the episode ends on the operator's terminate
    assert episodes[0].rewards[-1] == 1.0 and not episodes[1].rewards.any()
    assert summary["steps"] == sum(e.length for e in episodes)
    assert summary["unlabelled_episodes_skipped"] == 2  # the discarded episode and the commands outside episodes

    # 2. fine-tune the adapters of a tiny checkpoint with the shipped recipe, a few steps
    from more_model.testing import make_tiny_checkpoint

    init = make_tiny_checkpoint(tmp_path / "init", seed=3)
    run = tmp_path / "run"
    _run(
        "more_training.cli", "--config", ROOT / "training/configs/finetune_teleop.yaml", f"init.init_from={init}",
        f"data.train=[{ds}]", "optim.max_steps=3", "optim.warmup_steps=1", "optim.batch_size=4",
        "data.shuffle_buffer=16", f"run.out_dir={run}", "run.ckpt_every=3", "run.progress=false",
        "run.tensorboard=false", "run.log_every=1",
    )  # fmt: skip
    ckpt = run / "checkpoints" / "step-00000003"
    assert (ckpt / "adapters.safetensors").is_file(), sorted(p.name for p in run.rglob("*"))
    before, after = load_file(init / "adapters.safetensors"), load_file(ckpt / "adapters.safetensors")
    assert before.keys() == after.keys()
    assert any(not np.array_equal(before[k], after[k]) for k in before), "the adapters did not train"
    backbone_before = {p.name: load_file(p) for p in (init / "backbone").glob("*.safetensors")}
    backbone_after = {p.name: load_file(p) for p in (ckpt / "backbone").glob("*.safetensors")}
    assert backbone_before and backbone_before.keys() == backbone_after.keys()
    for name, tensors in backbone_before.items():  # adapters only: the backbone is frozen
        assert all(np.array_equal(tensors[k], backbone_after[name][k]) for k in tensors), name

    # 3. evaluate the fine-tuned checkpoint in the simulator
    out = tmp_path / "eval"
    proc = _run(
        "more_sim.cli", "eval", "--policy", ckpt, "--tasks", "go_to", "--episodes-per-task", "2",
        "--max-steps", "10", "--out", out, "--json",
    )  # fmt: skip
    rates = json.loads(proc.stdout.strip().splitlines()[-1])
    results = json.loads((out / "results.json").read_text())
    details = results["details"]["go_to"]
    assert details["episodes"] == 2 and rates["go_to"] == details["successes"] / 2 == results["rates"]["go_to"]
    assert results["policy"] == "checkpoint:step-00000003" and results["image_size"] == [H, W]
    assert 1 <= details["mean_steps"] <= 10
