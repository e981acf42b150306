"""QUARD's raw layout: exact round trip through export and import, its quirks, and the pickle trust flag."""

import csv
import json

import numpy as np
import pytest
from PIL import Image

from more_common.action_contract import INDEX, TERMINATE
from more_common.dataset import DatasetWriter, Episode, EpisodeDataset
from more_sim.cli import main
from more_sim.quard import (
    GAIT_KEY,
    QuardError,
    action_to_command,
    command_to_action,
    dataset_to_quard,
    iter_quard,
    normalise_task,
    quard_to_dataset,
)


def _episode(i, length, success, terminated=True):
    rng = np.random.default_rng(i)
    actions = rng.uniform(-0.5, 0.5, size=(length, 12)).astype(np.float32)
    actions[:, TERMINATE] = 0.0
    if terminated:
        actions[-1, TERMINATE] = 1.0
    return Episode(
        images=rng.integers(0, 256, (length, 12, 16, 3), dtype=np.uint8),
        actions=actions,
        instruction=f"go to the red ball, take {i}",
        task=["go_to", "crawl", "go_avoid"][i % 3],
        success=success,
        expert=success,
        episode_id=f"e{i}",
        terminated=terminated,
        extras={"state": rng.normal(size=(length, 8))},
    )


@pytest.fixture
def dataset(tmp_path):
    eps = [_episode(0, 3, True), _episode(1, 5, False, terminated=False), _episode(2, 2, True), _episode(3, 4, False)]
    with DatasetWriter(tmp_path / "ds", episodes_per_shard=2) as w:
        for ep in eps:
            w.add(ep)
    return tmp_path / "ds", eps


def test_round_trip_is_exact(dataset, tmp_path):
    src, eps = dataset
    summary = dataset_to_quard(src, tmp_path / "quard")
    assert summary["episodes"] == 4
    ep_dir = tmp_path / "quard" / "sim" / "go_to" / "000000"
    assert sorted(p.name for p in (ep_dir / "image").iterdir()) == ["000.png", "001.png", "002.png"]
    assert (ep_dir / "command" / "000.npy").exists() and (ep_dir / "action" / "000.npy").exists()
    with open(ep_dir / "info.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0][:2] == ["instruction", "gait"] and rows[1][0] == eps[0].instruction
    out = quard_to_dataset(tmp_path / "quard", tmp_path / "back", trust_pickle=True)
    assert out["episodes"] == 4
    back = {ep.episode_id: ep for ep in EpisodeDataset(tmp_path / "back").iter_episodes()}
    for ep in eps:
        b = back[ep.episode_id]
        np.testing.assert_array_equal(b.images, ep.images)
        np.testing.assert_array_equal(b.actions, ep.actions)
        assert (b.instruction, b.task, b.success, b.expert, b.terminated) == (
            ep.instruction,
            ep.task,
            ep.success,
            ep.expert,
            ep.terminated,
        )


def test_an_existing_output_is_replaced_whole_or_refused(dataset, tmp_path, capsys):
    src, _ = dataset
    out = tmp_path / "quard"
    first = dataset_to_quard(src, out)
    stale = out / "sim" / "go_to" / "999999"  # an episode the new export does not have
    stale.mkdir(parents=True)
    with pytest.raises(ValueError, match="already holds a QUARD export; pass --overwrite"):
        dataset_to_quard(src, out)
    assert main(["quard-export", str(src), str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err and stale.is_dir()
    assert main(["quard-export", str(src), str(out), "--overwrite"]) == 0
    capsys.readouterr()
    assert not stale.exists()  # replaced, not merged (a merge kept the old episodes)
    episodes = sorted(p.relative_to(out) for p in out.glob("sim/*/*") if p.is_dir())
    assert len(episodes) == first["episodes"]
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "mine.txt").write_text("x")
    with pytest.raises(ValueError, match="holds no QUARD export"):
        dataset_to_quard(src, notes, overwrite=True)
    assert (notes / "mine.txt").read_text() == "x"


def test_pickles_need_the_trust_flag(dataset, tmp_path):
    src, _ = dataset
    dataset_to_quard(src, tmp_path / "quard")
    with pytest.raises(QuardError, match="trust_pickle"):
        next(iter_quard(tmp_path / "quard"))
    rc = main(["quard-import", str(tmp_path / "quard"), str(tmp_path / "x")])
    assert rc == 2


def _write_real_style_episode(root, frames=25):
    """An episode as QUARD stores it: 50 Hz frames, dicts with 1-element arrays, no terminate key."""
    ep = root / "train" / "go to" / "000007"
    (ep / "image").mkdir(parents=True)
    (ep / "command").mkdir()
    for f in range(frames):
        Image.fromarray(np.full((8, 8, 3), f, dtype=np.uint8)).save(ep / "image" / f"{f:03d}.png")
        cmd = {
            "x_vel_cmd": np.array([0.01 * f]),
            "y_vel_cmd": np.array([0.0]),
            "yaw_vel_cmd": np.array([-0.1]),
            "body_height_cmd": np.array([0.0]),
            "step_frequency_cmd": np.array([3.0]),
            GAIT_KEY: np.array([0.5, 0.0, 0.0]),
            "footswing_height_cmd": np.array([0.08]),
            "pitch_cmd": np.array([0.0]),
            "roll_cmd": np.array([0.0]),
            "stance_width_cmd": np.array([0.25]),
        }
        np.save(ep / "command" / f"{f:03d}.npy", cmd, allow_pickle=True)
    (ep / "info.csv").write_text("go to the red ball,trotting\n")
    return ep


def test_real_quard_quirks(tmp_path):
    _write_real_style_episode(tmp_path / "q")
    (ep,) = list(iter_quard(tmp_path / "q", trust_pickle=True, success=True))
    # 25 frames at 50 Hz, every 10th kept: frames 0, 10, 20.
    assert ep.length == 3
    assert ep.images[:, 0, 0, 0].tolist() == [0, 10, 20]
    np.testing.assert_allclose(ep.actions[:, INDEX["vx"]], [0.0, 0.1, 0.2], atol=1e-7)
    assert ep.actions[:, TERMINATE].tolist() == [0.0, 0.0, 1.0]  # the end of the episode is the stop
    assert ep.actions[0, INDEX["gait_phase"]] == 0.5 and ep.actions[0, INDEX["step_frequency"]] == 3.0
    assert ep.task == "go_to" and ep.instruction == "go to the red ball" and ep.meta["gait"] == "trotting"
    assert ep.success and ep.expert
    with pytest.raises(QuardError, match="success"):
        next(iter_quard(tmp_path / "q", trust_pickle=True))  # no label anywhere


def test_command_dict_errors_name_the_key():
    cmd = action_to_command(np.arange(12, dtype=float) / 10)
    assert GAIT_KEY in cmd and "gait" not in cmd
    np.testing.assert_allclose(command_to_action(cmd), np.arange(12) / 10)
    del cmd["pitch_cmd"]
    with pytest.raises(QuardError, match="pitch_cmd"):
        command_to_action(cmd, "x.npy")


def test_task_names_normalise():
    assert [normalise_task(n) for n in ("go to", "Go-Through", "goavoid", "crawl")] == [
        "go_to",
        "go_through",
        "go_avoid",
        "crawl",
    ]


def test_cli_export_and_import(dataset, tmp_path, capsys):
    src, _ = dataset
    assert main(["quard-export", str(src), str(tmp_path / "q")]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 4
    assert main(["quard-import", str(tmp_path / "q"), str(tmp_path / "d"), "--trust-pickle"]) == 0
    assert json.loads(capsys.readouterr().out)["transitions"] == 3 + 5 + 2 + 4
