"""Offline replay: a bag of the policy's own decisions replays to perfect agreement; perturbed references give
the hand-computed per-dim metrics; realsense-ros image-only bags; per-task grouping; bag -> dataset shards."""

import json

import numpy as np
import pytest

from more_common.action_contract import ACTION_NAMES
from more_common.dataset import EpisodeDataset
from more_vla_policy.policy_core import executable_action
from more_vla_policy.replay import cli
from more_vla_policy.replay.evaluate import agreement
from more_vla_policy.replay.testing import BagBuilder

INSTRUCTIONS = {"go_to": "go to the red ball", "crawl": "crawl under the bar"}
MS = 1_000_000


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from more_model.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("replay") / "ckpt", seed=5)


@pytest.fixture(scope="module")
def policy(checkpoint):
    from more_model import load_policy

    return load_policy(checkpoint)


def frames(n, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 64, 3), dtype=np.uint8) for _ in range(n)]


def record_episodes(path, policy, perturb=None):
    """Two episodes (go_to: success, crawl: failure) of 3 decisions each; what the node would have recorded.
    `perturb(i, action, bins)` may change the recorded command of decision i."""
    b = BagBuilder(path)
    imgs = frames(6)
    decisions = []
    t = 1_000 * MS
    b.instruction(t - 5 * MS, INSTRUCTIONS["go_to"])
    for i, rgb in enumerate(imgs):
        task = "go_to" if i < 3 else "crawl"
        episode = 0 if i < 3 else 1
        if i == 3:
            b.instruction(t - 2 * MS, INSTRUCTIONS["crawl"])
        b.episode(t - MS, task, INSTRUCTIONS[task], episode, i % 3)
        b.image(t, rgb)
        out = policy.decode([rgb], [INSTRUCTIONS[task]])
        action, _ = executable_action(out.actions[0], policy.action_spec)
        bins = out.bins[0].copy()
        if perturb:
            action, bins = perturb(i, action.copy(), bins)
        b.command(t + 40 * MS, action, bins, out.q_values[0], stamp_ns=t)
        decisions.append((rgb, task, action, bins))
        if i in (2, 5):
            b.episode(t + 60 * MS, task, INSTRUCTIONS[task], episode, 3, done=True, success=(i == 2))
        t += 200 * MS
    b.close()
    return decisions


def run_cli(capsys, *argv):
    assert cli.main([*map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_own_decisions_replay_to_perfect_agreement(tmp_path, checkpoint, policy, capsys):
    record_episodes(tmp_path / "bag", policy)
    r = run_cli(capsys, tmp_path / "bag", "--checkpoint", checkpoint)
    assert r["samples"] == 6 and r["with_recorded_command"] == 6 and r["labelled"]
    agr = r["agreement"]
    assert agr["exact_bin"] == 1.0 and agr["within_one_bin"] == 1.0 and agr["all_dims_exact"] == 1.0
    assert max(d["mae"] for d in agr["per_dim"].values()) < 1e-6  # float32 storage only
    assert set(r["per_task"]) == {"go_to", "crawl"}
    assert r["per_task"]["go_to"]["samples"] == 3 and r["per_task"]["crawl"]["samples"] == 3
    lat = r["latency_ms"]["recorded_camera_to_command"]
    assert lat["count"] == 6 and lat["p50"] == pytest.approx(40.0) and lat["p99"] == pytest.approx(40.0)
    assert r["latency_ms"]["replay_decode"]["count"] == 6


def test_perturbed_references_give_hand_computed_metrics(tmp_path, checkpoint, policy, capsys):
    def perturb(i, action, bins):
        if i == 0:  # vx: one bin off and 0.1 m/s off
            bins[0] = bins[0] + 1 if bins[0] < 255 else bins[0] - 1
            action[0] += 0.1
        if i == 1:  # wz: five bins off
            bins[2] = bins[2] + 5 if bins[2] < 250 else bins[2] - 5
        if i == 4:  # crawl episode: a step height 0.02 m off
            action[10] += 0.02
        return action, bins

    record_episodes(tmp_path / "bag", policy, perturb)
    r = run_cli(capsys, tmp_path / "bag", "--checkpoint", checkpoint)
    per = r["agreement"]["per_dim"]
    assert per["vx"]["exact_bin"] == pytest.approx(5 / 6) and per["vx"]["within_one_bin"] == 1.0
    assert per["wz"]["exact_bin"] == pytest.approx(5 / 6) and per["wz"]["within_one_bin"] == pytest.approx(5 / 6)
    assert per["vx"]["mae"] == pytest.approx(0.1 / 6, abs=1e-6)
    assert per["footswing_height"]["mae"] == pytest.approx(0.02 / 6, abs=1e-6)
    assert per["vy"]["exact_bin"] == 1.0 and per["vy"]["mae"] < 1e-6
    assert r["agreement"]["all_dims_exact"] == pytest.approx(4 / 6)
    assert r["agreement"]["exact_bin"] == pytest.approx((12 * 6 - 2) / (12 * 6))
    go_to = r["per_task"]["go_to"]["per_dim"]
    assert go_to["vx"]["exact_bin"] == pytest.approx(2 / 3) and go_to["wz"]["within_one_bin"] == pytest.approx(2 / 3)
    assert r["per_task"]["crawl"]["exact_bin"] == 1.0
    assert r["per_task"]["crawl"]["per_dim"]["footswing_height"]["mae"] == pytest.approx(0.02 / 3, abs=1e-6)


def test_agreement_by_hand():
    pred = np.zeros((2, 12), np.int64)
    ref = pred.copy()
    ref[0, 3], ref[1, 3] = 1, 2
    cmd_pred, cmd_ref = np.zeros((2, 12)), np.zeros((2, 12))
    cmd_ref[:, 7] = [0.1, -0.3]
    a = agreement(pred, ref, cmd_pred, cmd_ref)
    assert a["per_dim"]["gait_phase"] == {
        "compared": 2, "exact_bin": 0.0, "within_one_bin": 0.5, "mae": 0.0, "unit": "cycle",
    }  # fmt: skip
    assert a["per_dim"]["body_height"]["mae"] == pytest.approx(0.2)
    assert a["all_dims_exact"] == 0.0 and list(a["per_dim"]) == list(ACTION_NAMES)


def test_agreement_by_hand_with_dims_not_decoded():
    """-1: the model does not decode the dim (action slots). Only dims decoded on both sides are compared."""
    pred = np.full((3, 12), -1, np.int64)
    pred[:, 0] = [4, 5, 6]  # vx decoded
    pred[:, 11] = [0, 0, 1]  # terminate decoded
    ref = pred.copy()
    ref[1, 0] = 7  # vx two bins off in sample 1
    ref[2, 2] = 3  # wz decoded in the reference only (another binning): not compared, and sample 2 disagrees
    zeros = np.zeros((3, 12))
    a = agreement(pred, ref, zeros, zeros)
    assert a["per_dim"]["vx"] == {"compared": 3, "exact_bin": 2 / 3, "within_one_bin": 2 / 3, "mae": 0.0, "unit": "m/s"}
    assert a["per_dim"]["terminate"]["exact_bin"] == 1.0 and a["per_dim"]["terminate"]["compared"] == 3
    assert a["per_dim"]["wz"]["compared"] == 0 and a["per_dim"]["wz"]["exact_bin"] is None
    assert a["per_dim"]["wz"]["within_one_bin"] is None
    assert a["exact_bin"] == pytest.approx(5 / 6) and a["within_one_bin"] == pytest.approx(5 / 6)  # 6 pairs compared
    assert a["all_dims_exact"] == pytest.approx(1 / 3)  # sample 0 only


@pytest.fixture(scope="module")
def slot_checkpoint(tmp_path_factory):
    """A tiny checkpoint that decodes five dims with their own bins (as models/demo does)."""
    from more_model.config import SlotConfig
    from more_model.testing import make_tiny_checkpoint, tiny_config

    slots = (SlotConfig("vx", 13, 0.0, 0.6), SlotConfig("wz", 33, -1.0, 1.0), SlotConfig("terminate", 2, 0.0, 1.0))
    config = tiny_config(action_slots=slots, prompt_template="{instruction}\n")
    return make_tiny_checkpoint(tmp_path_factory.mktemp("replay_slots") / "ckpt", seed=6, config=config)


def test_a_model_with_action_slots_replays_its_own_decisions_to_perfect_agreement(
    tmp_path, slot_checkpoint, capsys
):  # fmt: skip
    """Its recorded bins are slot bins with -1 in the dims it does not decode; they were once refused as malformed
    and the reference fell back to 256-bin contract bins, so a ROS bag of models/demo replayed to 'exact bin
    0.09' while every command matched (mae 0)."""
    from more_common.action_contract import stand_command
    from more_model import load_policy

    policy = load_policy(slot_checkpoint)
    decisions = record_episodes(tmp_path / "bag", policy)
    assert all(b[1] == -1 and b[0] >= 0 for *_, b in decisions)  # vy not decoded, vx decoded
    r = run_cli(capsys, tmp_path / "bag", "--checkpoint", slot_checkpoint)
    agr = r["agreement"]
    assert r["with_recorded_command"] == 6 and agr["exact_bin"] == 1.0 and agr["all_dims_exact"] == 1.0
    assert {d for d, v in agr["per_dim"].items() if v["compared"] == 6} == {"vx", "wz", "terminate"}
    assert agr["per_dim"]["vy"]["compared"] == 0 and agr["per_dim"]["vy"]["exact_bin"] is None

    b = BagBuilder(tmp_path / "teleop_bag", storage="sqlite3")  # a command without bins: binned by the slots
    rgb = frames(1, seed=9)[0]
    b.instruction(0, "walk forward")
    b.image(10 * MS, rgb)
    teleop = stand_command()
    teleop[0] = 0.5
    b.command(30 * MS, teleop)
    b.close()
    r = run_cli(capsys, tmp_path / "teleop_bag", "--checkpoint", slot_checkpoint)
    predicted = policy.decode([rgb], ["walk forward"]).bins[0][0]
    vx = r["agreement"]["per_dim"]["vx"]
    assert vx["compared"] == 1 and vx["exact_bin"] == float(predicted == 10)  # 0.5 m/s: bin 10 of 13 over 0-0.6


def test_commands_without_bins_are_binned_and_stops_are_dropped(tmp_path, checkpoint, policy, capsys):
    from more_common.action_contract import stand_command

    b = BagBuilder(tmp_path / "bag", storage="sqlite3")
    rgb = frames(1, seed=9)[0]
    b.instruction(0, "walk forward")
    b.image(10 * MS, rgb)
    b.command(20 * MS, stand_command())  # a stop: not a decision
    teleop = stand_command()
    teleop[0] = 0.5
    b.command(30 * MS, teleop)  # a teleoperated command: no bins, binned with the checkpoint's spec
    b.close()
    r = run_cli(capsys, tmp_path / "bag", "--checkpoint", checkpoint)
    assert r["samples"] == 1
    out = policy.decode([rgb], ["walk forward"])
    ref_bins = policy.action_spec.to_bins(teleop)
    assert r["agreement"]["per_dim"]["vx"]["exact_bin"] == float(out.bins[0][0] == ref_bins[0])
    pred, _ = executable_action(out.actions[0], policy.action_spec)
    assert r["agreement"]["per_dim"]["vx"]["mae"] == pytest.approx(abs(pred[0] - 0.5), abs=1e-6)
    r = run_cli(capsys, tmp_path / "bag", "--checkpoint", checkpoint, "--include-stops")
    assert r["samples"] == 2


def test_realsense_ros_bag_images_only(tmp_path, checkpoint, policy, capsys):
    b = BagBuilder(tmp_path / "rs", storage="sqlite3")
    imgs = frames(10, seed=2)
    for i, rgb in enumerate(imgs):  # 40 Hz camera on the realsense-ros topic
        b.image(i * 25 * MS, rgb, topic="/camera/camera/color/image_raw")
    b.close()
    r = run_cli(capsys, tmp_path / "rs", "--checkpoint", checkpoint, "--instruction", "go to the door", "--rate", 10)
    assert r["image_topic"] == "/camera/camera/color/image_raw" and r["command_topic"] is None
    assert r["samples"] == 3 and r["agreement"] is None  # images 0, 4, 8 at 10 Hz of bag time
    expect = [executable_action(policy.decode([imgs[i]], ["go to the door"]).actions[0])[0] for i in (0, 4, 8)]
    np.testing.assert_allclose(r["predicted_mean"], np.mean(expect, axis=0), atol=1e-6)
    # without an instruction nothing can be decided: exit 2 with one line that says why and what to pass
    assert cli.main([str(tmp_path / "rs"), "--checkpoint", str(checkpoint), "--rate", "10", "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.splitlines()
    assert captured.out == "" and len(err) == 1
    assert "no sample decoded: 3 sample(s) have no instruction" in err[0] and "--instruction-topic" in err[0]


def test_instruction_on_another_topic(tmp_path, checkpoint, policy, capsys):
    b = BagBuilder(tmp_path / "bag")
    rgb = frames(1, seed=4)[0]
    b._write("/operator/say", "std_msgs/msg/String", 0, b.t["std_msgs/msg/String"](data="crawl under the bar"))
    b.image(10 * MS, rgb)
    out = policy.decode([rgb], ["crawl under the bar"])
    action, _ = executable_action(out.actions[0], policy.action_spec)
    b.command(50 * MS, action, out.bins[0], stamp_ns=10 * MS)
    b.close()
    assert cli.main([str(tmp_path / "bag"), "--checkpoint", str(checkpoint)]) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert "/more/instruction is not in the bag" in err and "['/operator/say']" in err
    r = run_cli(capsys, tmp_path / "bag", "--checkpoint", checkpoint, "--instruction-topic", "/operator/say")
    assert r["samples"] == 1 and r["agreement"]["all_dims_exact"] == 1.0  # decoded with that instruction
    assert cli.main([str(tmp_path / "bag"), "--instruction-topic", "/nope"]) == 2
    assert "--instruction-topic /nope is not a std_msgs/msg/String topic" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "bag"), "--command-topic", "/nope"]) == 2  # was: images alone, silently
    assert "--command-topic /nope is not a more_msgs/msg/QuadrupedCommand topic" in capsys.readouterr().err


def test_to_dataset_writes_labelled_episodes(tmp_path, policy, capsys):
    decisions = record_episodes(tmp_path / "bag", policy)
    r = run_cli(capsys, tmp_path / "bag", "--to-dataset", tmp_path / "ds")
    assert r["dataset"]["episodes"] == 2 and r["dataset"]["steps"] == 6 and r["dataset"]["successes"] == 1
    episodes = list(EpisodeDataset(tmp_path / "ds").iter_episodes())
    assert [(e.task, e.success, e.length, e.instruction) for e in episodes] == [
        ("go_to", True, 3, INSTRUCTIONS["go_to"]),
        ("crawl", False, 3, INSTRUCTIONS["crawl"]),
    ]
    for e, start in zip(episodes, (0, 3), strict=True):
        for k in range(3):
            rgb, _, action, _ = decisions[start + k]
            np.testing.assert_array_equal(e.images[k], rgb)
            np.testing.assert_allclose(e.actions[k], action.astype(np.float32), atol=1e-7)
    assert episodes[0].rewards.tolist() == [0.0, 0.0, 1.0] and not episodes[1].rewards.any()
    # refuses to overwrite by accident, with one line
    assert cli.main([str(tmp_path / "bag"), "--to-dataset", str(tmp_path / "ds")]) == 2
    assert "already holds a dataset" in capsys.readouterr().err
    # ... and replaces it when told to (--overwrite once did nothing)
    index = tmp_path / "ds" / "index.json"
    assert '"more-replay"' in index.read_text()
    index.write_text(index.read_text().replace('"more-replay"', '"the old run"'))
    r = run_cli(capsys, tmp_path / "bag", "--to-dataset", tmp_path / "ds", "--overwrite")
    assert r["dataset"]["episodes"] == 2 and "the old run" not in index.read_text()
    assert len(list(EpisodeDataset(tmp_path / "ds").iter_episodes())) == 2
    with pytest.raises(SystemExit) as exc:
        cli.main([str(tmp_path / "bag"), "--to-dataset", str(tmp_path / "ds2"), "--image-size", "0", "0"])
    assert exc.value.code == 2 and "argument --image-size: an image side must be an integer >= 8, got '0'" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "ds2").exists()


def test_unusable_inputs_exit_2(tmp_path, capsys):
    assert cli.main([str(tmp_path / "nope"), "--json"]) == 2
    assert "cannot read bag" in capsys.readouterr().err
    b = BagBuilder(tmp_path / "empty")
    b.instruction(0, "x")
    b.close()
    assert cli.main([str(tmp_path / "empty")]) == 2
    assert "no sensor_msgs Image/CompressedImage topic" in capsys.readouterr().err
    b = BagBuilder(tmp_path / "bag")
    b.image(0, frames(1)[0])
    b.close()
    assert cli.main([str(tmp_path / "bag"), "--checkpoint", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
