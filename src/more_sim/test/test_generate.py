"""`more-sim generate`: a streamable dataset whose labels the simulator confirms, independent of workers."""

import json

import numpy as np
import pytest

from more_common.dataset import DatasetError, EpisodeDataset
from more_sim.cli import main
from more_sim.config import SimConfig
from more_sim.env import make_env
from more_sim.generate import generate, plan_jobs
from more_sim.splits import TASKS

CFG = SimConfig(image_height=24, image_width=24)


@pytest.fixture(scope="module")
def two_worker_dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen2")
    summary = generate(
        out, episodes=12, suboptimal_fraction=0.5, workers=2, seed=5, config=CFG, episodes_per_shard=4, progress=False
    )
    return out, summary


def test_jobs_cover_tasks_and_the_suboptimal_fraction():
    jobs = plan_jobs(TASKS, 600, "id", seed=1, suboptimal_fraction=0.3)
    assert [j.task for j in jobs[:6]] == list(TASKS)
    assert len({j.seed for j in jobs}) == 600
    share = sum(j.suboptimal for j in jobs) / len(jobs)
    assert abs(share - 0.3) < 0.06  # binomial sd at n = 600 is 0.019
    assert plan_jobs(TASKS, 10, "id", 1, 0.3) == jobs[:10]  # a prefix: N does not reshuffle
    assert all(not j.suboptimal for j in plan_jobs(TASKS, 50, "id", 1, 0.0))


def test_dataset_layout_and_summary(two_worker_dataset):
    out, summary = two_worker_dataset
    ds = EpisodeDataset(out)
    assert len(ds) == 12 and len(ds.shards) == 3
    assert summary["episodes"] == 12 and summary["workers"] == 2
    assert summary["transitions"] == ds.num_transitions
    assert ds.meta["config"]["image_height"] == 24 and ds.meta["suboptimal_fraction"] == 0.5
    episodes = list(ds.iter_episodes())
    assert [ep.task for ep in episodes] == [TASKS[i % 6] for i in range(12)]
    assert {ep.images.shape[1:] for ep in episodes} == {(24, 24, 3)}
    jobs = plan_jobs(TASKS, 12, "id", 5, 0.5)
    assert [not j.suboptimal for j in jobs] == [ep.expert for ep in episodes]
    assert all(ep.success for ep in episodes if ep.expert)


def test_labels_are_the_simulators_own(two_worker_dataset):
    """Replay each stored episode's commands in a fresh environment: same frames, same end, same label.

    Commands are stored as float32, so the replayed trajectory differs from the original by rounding
    (and this process renders with more Mesa threads than the workers): frames agree to 1-2 grey
    levels on edge pixels, not bit for bit.
    """
    out, _ = two_worker_dataset
    for ep in EpisodeDataset(out).iter_episodes():
        env = make_env(ep.task, "id", CFG)
        obs, info = env.reset(seed=ep.meta["seed"])
        assert obs["instruction"] == ep.instruction
        for t, action in enumerate(ep.actions):
            diff = np.abs(obs["image"].astype(int) - ep.images[t].astype(int))
            assert diff.max() <= 8 and (diff > 0).mean() < 0.02, (ep.episode_id, t)
            obs, reward, terminated, truncated, info = env.step(action)
            if terminated or truncated:
                break
        assert t == ep.length - 1, "the episode must end exactly at its last stored step"
        assert info["success"] == ep.success and reward == float(ep.success)
        assert terminated == ep.terminated
        np.testing.assert_array_equal(ep.rewards[-1], float(ep.success))
        env.close()


def test_one_worker_gives_the_same_dataset(two_worker_dataset, tmp_path):
    out2, _ = two_worker_dataset
    generate(
        tmp_path,
        episodes=12,
        suboptimal_fraction=0.5,
        workers=1,
        seed=5,
        config=CFG,
        episodes_per_shard=4,
        progress=False,
    )
    for a, b in zip(EpisodeDataset(out2).iter_episodes(), EpisodeDataset(tmp_path).iter_episodes(), strict=True):
        assert a.episode_id == b.episode_id
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.actions, b.actions)


def test_cli_generate_prints_a_summary(tmp_path, capsys):
    rc = main(
        [
            "generate",
            "--tasks",
            "go_to,crawl",
            "--episodes",
            "2",
            "--out",
            str(tmp_path / "d"),
            "--workers",
            "1",
            "--image-size",
            "16",
            "--quiet",
            "--suboptimal-fraction",
            "0",
        ]
    )
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2 and summary["expert_episodes"] == 2
    assert [ep.task for ep in EpisodeDataset(tmp_path / "d").iter_episodes()] == ["go_to", "crawl"]
    rc = main(["generate", "--episodes", "1", "--out", str(tmp_path / "d"), "--quiet"])
    assert rc == 2  # refuses to overwrite
    assert "already holds" in capsys.readouterr().err


def test_resume_keeps_finished_shards_and_grows_a_plan(tmp_path):
    """An interrupted run (index missing, a shard missing) resumed gives the same dataset; a larger plan with
    the same seed keeps the shards it shares with the smaller one."""
    full = tmp_path / "full"
    ref = generate(full, episodes=6, workers=1, seed=3, config=CFG, episodes_per_shard=2, progress=False)
    index = json.loads((full / "index.json").read_text())
    part = tmp_path / "part"
    part.mkdir()
    for s in index["shards"][:2]:
        (part / s["file"]).write_bytes((full / s["file"]).read_bytes())
    (part / index["shards"][1]["file"]).write_bytes(b"truncated")  # a shard that is not what the plan needs
    summary = generate(part, episodes=6, workers=1, seed=3, config=CFG, episodes_per_shard=2, progress=False,
                       resume=True)  # fmt: skip
    assert summary["shards_kept"] == 1 and summary["transitions"] == ref["transitions"]
    again = json.loads((part / "index.json").read_text())
    assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in index["shards"]]
    grown = generate(part, episodes=9, workers=1, seed=3, config=CFG, episodes_per_shard=2, progress=False,
                     resume=True)  # fmt: skip
    assert grown["shards_kept"] == 3 and len(EpisodeDataset(part)) == 9


def test_failures_only_drops_exactly_the_successful_suboptimal_episodes(tmp_path, capsys):
    """The same plan with --suboptimal-failures-only: every expert episode and every failed sub-optimal one,
    identical to the unfiltered dataset's, and none of the sub-optimal successes (seed 1: episode 1 is one,
    alone in its one-episode shard, which is then not written at all)."""
    plan = {"episodes": 8, "suboptimal_fraction": 0.75, "seed": 1}
    generate(tmp_path / "all", workers=1, config=CFG, episodes_per_shard=4, progress=False, **plan)
    everything = list(EpisodeDataset(tmp_path / "all").iter_episodes())
    dropped = [ep.episode_id for ep in everything if not ep.expert and ep.success]
    assert dropped and any(not ep.expert and not ep.success for ep in everything), "seed 1 must hold both kinds"
    argv = ["generate", "--episodes", "8", "--out", str(tmp_path / "f"), "--workers", "1", "--image-size", "24"]
    argv += ["--seed", "1", "--suboptimal-fraction", "0.75", "--episodes-per-shard", "1", "--quiet"]
    assert main([*argv, "--suboptimal-failures-only"]) == 0
    summary = json.loads(capsys.readouterr().out)
    filtered = EpisodeDataset(tmp_path / "f")
    kept = list(filtered.iter_episodes())
    expected = [ep for ep in everything if ep.episode_id not in dropped]
    assert [ep.episode_id for ep in kept] == [ep.episode_id for ep in expected]
    for a, b in zip(kept, expected, strict=True):
        np.testing.assert_array_equal(a.actions, b.actions)
        assert a.success == b.success and a.expert == b.expert
    assert summary["episodes"] == len(expected) and summary["dropped_suboptimal_successes"] == len(dropped)
    assert summary["transitions"] == sum(ep.length for ep in expected)
    assert len(filtered.shards) == len(expected)
    assert filtered.meta["suboptimal_failures_only"] is True


def test_resume_with_failures_only_keeps_its_own_shards_only(tmp_path):
    """--resume with --suboptimal-failures-only keeps a shard holding its plan's episodes minus the sub-optimal
    successes, and regenerates the same shard written without the filter (it holds a sub-optimal success)."""
    plan = {"episodes": 8, "suboptimal_fraction": 0.75, "seed": 1, "episodes_per_shard": 2}
    ref = generate(tmp_path / "f", workers=1, config=CFG, progress=False, failures_only=True, **plan)
    generate(tmp_path / "all", workers=1, config=CFG, progress=False, **plan)
    kept_ids = {ep.episode_id for ep in EpisodeDataset(tmp_path / "f").iter_episodes()}
    jobs = plan_jobs(TASKS, 8, "id", 1, 0.75)
    with_drops = [k // 2 for k, j in enumerate(jobs) if j.episode_id not in kept_ids]
    shard = f"shard-{with_drops[0]:05d}.npz"
    assert (tmp_path / "f" / shard).is_file(), "seed 1 must filter a shard that keeps some episodes"
    index = json.loads((tmp_path / "f" / "index.json").read_text())
    for source, kept in (("f", 1), ("all", 0)):  # the filtered shard is kept, the unfiltered one redone
        part = tmp_path / f"part-{source}"
        part.mkdir()
        (part / shard).write_bytes((tmp_path / source / shard).read_bytes())
        summary = generate(part, workers=1, config=CFG, progress=False, failures_only=True, resume=True, **plan)
        assert summary["shards_kept"] == kept, source
        assert summary["episodes"] == ref["episodes"] and summary["transitions"] == ref["transitions"]
        assert summary["dropped_suboptimal_successes"] == ref["dropped_suboptimal_successes"]
        again = json.loads((part / "index.json").read_text())
        assert [s["sha256"] for s in again["shards"]] == [s["sha256"] for s in index["shards"]]


def test_a_resume_with_other_settings_is_refused_by_name(tmp_path, capsys):
    """--resume keeps shards episode by episode: resuming a finished dataset (the index's meta) or an
    interrupted one (the plan file) under other settings would mix two kinds of episodes, so it is refused
    naming the setting; the same settings resume, and the plan file is gone once the index is written."""
    plan = {"tasks": ["go_to"], "episodes": 2, "workers": 1, "seed": 4, "episodes_per_shard": 1}
    out = tmp_path / "d"
    generate(out, config=CFG, progress=False, suboptimal_fraction=0.0, **plan)
    assert json.loads((out / "index.json").read_text())["meta"]["config"]["image_height"] == 24
    assert not (out / "generate-plan.json").exists()
    with pytest.raises(DatasetError, match=r"start='split', this run asks start='in_view'"):
        generate(out, config=CFG, progress=False, suboptimal_fraction=0.0, resume=True, start="in_view", **plan)
    (out / "index.json").unlink()  # interrupted: only the plan file tells
    (out / "generate-plan.json").write_text(json.dumps({"seed": 4, "config": {"image_height": 24}}))
    other_size = SimConfig(image_height=32, image_width=24)
    with pytest.raises(DatasetError, match=r"config\.image_height=24, this run asks config\.image_height=32"):
        generate(out, config=other_size, progress=False, suboptimal_fraction=0.0, resume=True, **plan)
    summary = generate(out, config=CFG, progress=False, suboptimal_fraction=0.0, resume=True, **plan)
    assert summary["shards_kept"] == 2 and not (out / "generate-plan.json").exists()
    argv = ["generate", "--episodes", "2", "--out", str(out), "--resume", "--tasks", "go_to", "--quiet"]
    argv += ["--seed", "4", "--image-size", "24", "--suboptimal-fraction", "0.5", "--workers", "1"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "suboptimal_fraction=0.0, this run asks suboptimal_fraction=0.5" in err and len(err.splitlines()) == 1
