"""The sharded episode dataset: round trips, derived labels, streaming, rank split, corruption errors."""

import json
import zipfile

import numpy as np
import pytest

from more_common.action_contract import ACTION_NAMES
from more_common.dataset import (
    INDEX_FILE,
    DatasetError,
    DatasetWriter,
    Episode,
    EpisodeDataset,
    decode_shard,
    encode_shard,
    write_index,
    write_shard,
)


def make_episode(i: int, length: int = 4, success: bool = True, shape=(6, 5)) -> Episode:
    rng = np.random.default_rng(i)
    return Episode(
        images=rng.integers(0, 256, size=(length, *shape, 3), dtype=np.uint8),
        actions=rng.normal(size=(length, 12)).astype(np.float32),
        instruction=f"go to the red ball {i}",
        task=["go_to", "crawl"][i % 2],
        success=success,
        expert=i % 3 == 0,
        split="id",
        episode_id=f"ep-{i}",
        terminated=success,
        extras={"pose": rng.normal(size=(length, 3))},
        meta={"seed": i},
    )


def test_derived_labels_follow_the_rule():
    ep = make_episode(0, length=3, success=True)  # terminated (make_episode: terminated = success)
    assert ep.rewards.tolist() == [0.0, 0.0, 1.0]
    assert ep.dones.tolist() == [False, False, True]
    assert ep.td_mask.tolist() == [True, True, True]
    assert ep.steps_to_end.tolist() == [2, 1, 0]
    failed = make_episode(1, length=2, success=False)
    failed.terminated = True  # a failure the policy or a task condition ended: terminal
    assert failed.rewards.tolist() == [0.0, 0.0]
    assert failed.dones.tolist() == [False, True]
    assert failed.td_mask.tolist() == [True, True]
    cut = make_episode(2, length=3, success=False)  # truncated by the time limit: nothing is terminal
    assert not cut.terminated
    assert cut.dones.tolist() == [False, False, False]
    assert cut.td_mask.tolist() == [True, True, False]  # the last step's next observation is not stored


def test_writer_reader_round_trip(tmp_path):
    episodes = [make_episode(i, length=2 + i % 3, success=i % 2 == 0) for i in range(7)]
    with DatasetWriter(tmp_path, episodes_per_shard=3, meta={"source": "test"}) as writer:
        for ep in episodes:
            writer.add(ep)
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    assert index["action_names"] == list(ACTION_NAMES)
    assert [s["episodes"] for s in index["shards"]] == [3, 3, 1]
    assert index["episodes"] == 7
    assert index["transitions"] == sum(ep.length for ep in episodes)
    assert index["shards"][0]["tasks"] == {"go_to": 2, "crawl": 1}

    ds = EpisodeDataset(tmp_path)
    assert len(ds) == 7 and ds.meta == {"source": "test"}
    back = list(ds.iter_episodes())
    assert len(back) == 7
    for a, b in zip(episodes, back, strict=True):
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_allclose(a.extras["pose"], b.extras["pose"], rtol=1e-6)
        assert (a.instruction, a.task, a.success, a.expert, a.episode_id, a.meta) == (
            b.instruction,
            b.task,
            b.success,
            b.expert,
            b.episode_id,
            b.meta,
        )


def test_transitions_carry_next_image_and_labels(tmp_path):
    ep = make_episode(0, length=3, success=True)
    cut = make_episode(1, length=2, success=False)  # truncated
    with DatasetWriter(tmp_path) as w:
        w.add(ep)
        w.add(cut)
    ts = list(EpisodeDataset(tmp_path).iter_transitions())
    assert [(t.episode_id, t.step) for t in ts] == [("ep-0", 0), ("ep-0", 1), ("ep-0", 2), ("ep-1", 0), ("ep-1", 1)]
    np.testing.assert_array_equal(ts[0].next_image, ep.images[1])
    np.testing.assert_array_equal(ts[2].next_image, ep.images[2])
    np.testing.assert_array_equal(ts[3].next_image, cut.images[1])
    assert [t.reward for t in ts] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert [t.done for t in ts] == [False, False, True, False, False]
    assert [t.has_td_target for t in ts] == [True, True, True, True, False]
    assert [t.steps_to_end for t in ts] == [2, 1, 0, 1, 0]


def _write_v1(root, episodes):
    """A version-1 dataset as the old writer made it: dones True at every episode's last step."""
    import hashlib
    import io

    with np.load(io.BytesIO(encode_shard(episodes, compress=False))) as npz:
        arrays = {k: npz[k] for k in npz.files}
    starts = arrays["episode_starts"]
    dones = np.zeros_like(arrays["dones"])
    dones[starts[1:] - 1] = True
    arrays["dones"] = dones
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    root.mkdir(parents=True, exist_ok=True)
    (root / "shard-00000.npz").write_bytes(buf.getvalue())
    entry = {"file": "shard-00000.npz", "episodes": len(episodes), "transitions": int(starts[-1]),
             "sha256": hashlib.sha256(buf.getvalue()).hexdigest()}  # fmt: skip
    index = {"format": "more-episodes", "version": 1, "action_names": list(ACTION_NAMES), "shards": [entry]}
    (root / INDEX_FILE).write_text(json.dumps(index))


def test_version_1_datasets_stay_readable_under_the_one_rule(tmp_path):
    ep, cut = make_episode(0, length=3, success=True), make_episode(1, length=2, success=False)
    _write_v1(tmp_path / "v1", [ep, cut])
    ds = EpisodeDataset(tmp_path / "v1")
    assert ds.version == 1
    back = list(ds.iter_episodes())
    assert [e.dones.tolist() for e in back] == [[False, False, True], [False, False]]  # the version-2 rule
    assert [t.has_td_target for t in ds.iter_transitions()] == [True, True, True, True, False]
    # the version-1 file's stored dones are still checked against the version-1 rule
    (tmp_path / "v2").mkdir()
    _write_v1(tmp_path / "v2", [ep, cut])
    index = json.loads((tmp_path / "v2" / INDEX_FILE).read_text())
    index["version"] = 2
    (tmp_path / "v2" / INDEX_FILE).write_text(json.dumps(index))
    with pytest.raises(DatasetError, match=r"episode 1 \(id 'ep-1'\): dones disagree"):
        list(EpisodeDataset(tmp_path / "v2").iter_episodes())


def test_rank_split_is_disjoint_and_complete(tmp_path):
    with DatasetWriter(tmp_path, episodes_per_shard=1) as w:
        for i in range(5):
            w.add(make_episode(i))
    ds = EpisodeDataset(tmp_path)
    parts = [ds.shards_for_rank(r, 2) for r in range(2)]
    assert parts == [[0, 2, 4], [1, 3]]
    ids = [ep.episode_id for r in range(2) for ep in ds.iter_episodes(parts[r])]
    assert sorted(ids) == [f"ep-{i}" for i in range(5)]


def test_shuffle_is_a_seeded_permutation(tmp_path):
    with DatasetWriter(tmp_path, episodes_per_shard=2) as w:
        for i in range(6):
            w.add(make_episode(i))
    ds = EpisodeDataset(tmp_path)
    a = [ep.episode_id for ep in ds.iter_episodes(shuffle=True, seed=3)]
    b = [ep.episode_id for ep in ds.iter_episodes(shuffle=True, seed=3)]
    assert a == b and sorted(a) == sorted(f"ep-{i}" for i in range(6))


def test_index_only_after_clean_close(tmp_path):
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path, episodes_per_shard=1) as w:
        w.add(make_episode(0))
        w.add(make_episode(1))  # a shard is written (staged) ...
        raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []  # ... and removed with everything else: nothing half written
    with pytest.raises(DatasetError, match="not found"):
        EpisodeDataset(tmp_path)
    out = tmp_path / "a" / "b"
    with pytest.raises(RuntimeError), DatasetWriter(out, episodes_per_shard=1) as w:
        w.add(make_episode(0))
        raise RuntimeError("crash")
    assert not (tmp_path / "a").exists()  # the directories the writer created go too


def test_overwrite_keeps_the_old_dataset_until_the_new_one_is_complete(tmp_path):
    with DatasetWriter(tmp_path, episodes_per_shard=1) as w:
        for i in range(3):
            w.add(make_episode(i))
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(RuntimeError), DatasetWriter(tmp_path, episodes_per_shard=1, overwrite=True) as w:
        w.add(make_episode(7))
        w.add(make_episode(8))
        raise RuntimeError("crash")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with DatasetWriter(tmp_path, episodes_per_shard=1, overwrite=True) as w:
        w.add(make_episode(9))
    assert sorted(p.name for p in tmp_path.iterdir()) == [INDEX_FILE, "shard-00000.npz"]  # stale shards removed
    assert [e.episode_id for e in EpisodeDataset(tmp_path).iter_episodes()] == ["ep-9"]


def test_overwrite_removes_only_shards_a_crafted_index_names(tmp_path):
    """An old index naming index.json or a user's notes as shards must not get them deleted by an overwrite."""
    with DatasetWriter(tmp_path, episodes_per_shard=1) as w:
        w.add(make_episode(0))
    (tmp_path / "notes.md").write_text("mine")
    index = json.loads((tmp_path / INDEX_FILE).read_text())
    index["shards"] += [{"file": "notes.md"}, {"file": INDEX_FILE}]
    (tmp_path / INDEX_FILE).write_text(json.dumps(index))
    with DatasetWriter(tmp_path, overwrite=True) as w:
        w.add(make_episode(1))
    assert (tmp_path / "notes.md").read_text() == "mine"
    assert [e.episode_id for e in EpisodeDataset(tmp_path).iter_episodes()] == ["ep-1"]


@pytest.mark.parametrize("task", ["../../escaped", "/abs/path", "a/b", "..", "go\\to", "x" * 65])
def test_a_task_that_is_not_a_plain_name_is_refused_on_write_and_on_read(tmp_path, task):
    import dataclasses

    from more_common.dataset import _header_values

    with pytest.raises(DatasetError, match="is not a plain name"):
        dataclasses.replace(make_episode(0), task=task).validate()
    header = {**make_episode(0).header(), "task": task}
    with pytest.raises(DatasetError, match="is not a plain name"):
        _header_values(header, "shard-00000.npz")
    for fine in ("go_to", "go to", "crawl-2", ""):  # QUARD's raw names have spaces; teleop data may have none
        dataclasses.replace(make_episode(0), task=fine).validate()


def test_refuses_to_overwrite(tmp_path):
    with DatasetWriter(tmp_path) as w:
        w.add(make_episode(0))
    with pytest.raises(DatasetError, match="already holds"):
        DatasetWriter(tmp_path)


def test_truncated_shard_error_names_the_file(tmp_path):
    with DatasetWriter(tmp_path, episodes_per_shard=2) as w:
        for i in range(4):
            w.add(make_episode(i))
    shard = tmp_path / "shard-00001.npz"
    shard.write_bytes(shard.read_bytes()[:200])
    ds = EpisodeDataset(tmp_path, verify_checksums=False)
    it = ds.iter_episodes()
    assert next(it).episode_id == "ep-0"  # the first shard still streams
    next(it)
    with pytest.raises(DatasetError, match=r"shard-00001\.npz"):
        next(it)
    with pytest.raises(DatasetError, match=r"shard-00001\.npz: checksum mismatch"):
        list(EpisodeDataset(tmp_path).iter_episodes())


def _rewrite_member(shard, name, array):
    """Replace one array inside a shard (a valid zip with wrong content), keeping the others."""
    with np.load(shard) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays[name] = array
    np.savez(shard, **arrays)


def test_bad_episode_error_names_shard_and_episode(tmp_path):
    with DatasetWriter(tmp_path, episodes_per_shard=3) as w:
        for i in range(3):
            w.add(make_episode(i, length=3))
    shard = tmp_path / "shard-00000.npz"
    with np.load(shard) as npz:
        actions = npz["actions"].copy()
    actions[4, 2] = np.nan  # step 4 = episode 1 (steps 3..5)
    _rewrite_member(shard, "actions", actions)
    ds = EpisodeDataset(tmp_path, verify_checksums=False)
    with pytest.raises(DatasetError, match=r"shard-00000.npz episode 1 \(id 'ep-1'\): actions contain non-finite"):
        list(ds.iter_episodes())


def test_inconsistent_rewards_are_rejected(tmp_path):
    with DatasetWriter(tmp_path) as w:
        w.add(make_episode(0, length=3, success=False))
    shard = tmp_path / "shard-00000.npz"
    _rewrite_member(shard, "rewards", np.array([0, 0, 1], dtype=np.float32))
    with pytest.raises(DatasetError, match=r"episode 0.*rewards disagree"):
        list(EpisodeDataset(tmp_path, verify_checksums=False).iter_episodes())


def test_missing_array_and_bad_offsets(tmp_path):
    payload = encode_shard([make_episode(0), make_episode(1)], compress=False)
    (tmp_path / "x.npz").write_bytes(payload)
    with np.load(tmp_path / "x.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    broken = dict(arrays)
    del broken["dones"]
    np.savez(tmp_path / "y.npz", **broken)
    with pytest.raises(DatasetError, match=r"y\.npz: missing arrays \['dones'\]"):
        decode_shard((tmp_path / "y.npz").read_bytes(), "y.npz")
    broken = dict(arrays, episode_starts=np.array([0, 5, 9]))
    np.savez(tmp_path / "z.npz", **broken)
    with pytest.raises(DatasetError, match=r"z\.npz: episode_starts"):
        decode_shard((tmp_path / "z.npz").read_bytes(), "z.npz")


def test_not_a_zip_is_a_dataset_error():
    with pytest.raises(DatasetError, match=r"bad\.npz: unreadable shard"):
        decode_shard(b"garbage" * 10, "bad.npz")


def test_shard_rejects_mixed_image_shapes(tmp_path):
    with pytest.raises(DatasetError, match="one shape"):
        write_shard(tmp_path / "s.npz", [make_episode(0, shape=(6, 5)), make_episode(1, shape=(4, 4))])


def test_episode_validation_messages():
    ep = make_episode(0)
    ep.images = ep.images.astype(np.float32)
    with pytest.raises(DatasetError, match="images must be uint8"):
        ep.validate()
    ep = make_episode(0, length=3)
    ep.actions = ep.actions[:, :11]
    with pytest.raises(DatasetError, match=r"actions must be \[T, 12\]"):
        ep.validate()


def test_parallel_writers_merge_into_one_index(tmp_path):
    # What `more-sim generate` does: workers write shards, the parent writes the index.
    infos = [write_shard(tmp_path / f"shard-{i:05d}.npz", [make_episode(i)]) for i in (1, 0)]
    write_index(tmp_path, infos, meta={"workers": 2})
    ds = EpisodeDataset(tmp_path)
    assert [s.file for s in ds.shards] == ["shard-00000.npz", "shard-00001.npz"]
    assert [ep.episode_id for ep in ds.iter_episodes()] == ["ep-0", "ep-1"]
    with zipfile.ZipFile(tmp_path / "shard-00000.npz") as z:
        assert not any(n.endswith(".pkl") for n in z.namelist())
