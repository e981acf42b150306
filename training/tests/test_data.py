"""The streaming pipeline: transition labels, the done rule down to the Bellman targets, determinism, rank/worker
sharding, sample-mode equivalence, expert/sub-optimal mixing, corrupt shards named (or skipped and counted), exact
resume of the batch stream."""

import itertools
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import IMAGE_SHAPE, TINY_MODEL, synthetic_episode

from more_common.action_contract import STAND_COMMAND, TERMINATE
from more_common.dataset import DatasetError, DatasetWriter, Episode, EpisodeDataset
from more_model.losses import bellman_targets
from more_model.policy import MoREPolicy
from more_training.config import DataConfig, MoREConfig
from more_training.data import TrainBatches, TransitionStream, make_loader

SIZE = (32, 48)


def _key(t):
    return (t.episode_id, t.step)


def _cfg(data: Path, **kw) -> DataConfig:
    return DataConfig(train=(str(data),), shuffle_buffer=kw.pop("shuffle_buffer", 16), **kw)


def test_transition_labels_match_the_episode(tmp_path):
    rng = np.random.default_rng(1)
    good = synthetic_episode(rng, 0, expert=True, length=4)
    bad = replace(synthetic_episode(rng, 1, expert=False, length=3), success=False)
    cut = replace(synthetic_episode(rng, 2, expert=False, length=2), success=False, terminated=False)
    with DatasetWriter(tmp_path, episodes_per_shard=3, compress=False) as w:
        for ep in (good, bad, cut):
            w.add(ep)
    stream = TransitionStream(_cfg(tmp_path), SIZE, seed=0)
    items = {_key(t): t for _, t in itertools.islice(stream.transitions(), 9)}
    cut_last = items[("ep0002", 1)]  # ended by the time limit: not terminal, and no next state to bootstrap from
    assert not cut_last.done and not cut_last.has_td_target and items[("ep0002", 0)].has_td_target
    t = items[("ep0000", 1)]
    assert (t.reward, t.done, t.steps_to_end, t.success) == (0.0, False, 2, True)
    assert np.array_equal(t.next_image, good.images[2])
    last = items[("ep0000", 3)]
    assert (last.reward, last.done, last.steps_to_end) == (1.0, True, 0)
    failed_last = items[("ep0001", 2)]
    assert (failed_last.reward, failed_last.done, failed_last.success) == (0.0, True, False)
    assert np.array_equal(t.action, good.actions[1])


def test_stream_is_deterministic_per_seed(tiny_data):
    a = [_key(t) for t in itertools.islice(TransitionStream(_cfg(tiny_data), SIZE, seed=3), 60)]
    b = [_key(t) for t in itertools.islice(TransitionStream(_cfg(tiny_data), SIZE, seed=3), 60)]
    c = [_key(t) for t in itertools.islice(TransitionStream(_cfg(tiny_data), SIZE, seed=4), 60)]
    assert a == b
    assert a != c


def test_shard_mode_splits_an_epoch_disjointly(tiny_data):
    total = EpisodeDataset(tiny_data).num_transitions
    seen = []
    for consumer in range(2):
        s = TransitionStream(_cfg(tiny_data), SIZE, seed=0, consumer=consumer, num_consumers=2)
        seen.append({_key(t) for e, t in itertools.takewhile(lambda x: x[0] == 0, s.transitions())})
    assert not seen[0] & seen[1]
    assert len(seen[0] | seen[1]) == total


def test_more_readers_than_shards_is_refused(tiny_data):
    with pytest.raises(DatasetError, match="shard_by=sample"):
        TransitionStream(_cfg(tiny_data), SIZE, seed=0, consumer=0, num_consumers=5)


def test_sample_mode_interleaves_one_global_stream(tiny_data):
    cfg = _cfg(tiny_data, shard_by="sample")
    whole = [_key(t) for t in itertools.islice(TransitionStream(cfg, SIZE, seed=0), 40)]
    parts = [
        [_key(t) for t in itertools.islice(TransitionStream(cfg, SIZE, seed=0, consumer=c, num_consumers=2), 20)]
        for c in range(2)
    ]
    assert whole[0::2] == parts[0]
    assert whole[1::2] == parts[1]


def test_mixing_ratio_and_expert_only(tiny_data):
    n = 600
    natural = [t.expert for t in itertools.islice(TransitionStream(_cfg(tiny_data), SIZE, seed=0), n)]
    mixed = [
        t.expert for t in itertools.islice(TransitionStream(_cfg(tiny_data, suboptimal_fraction=0.5), SIZE, seed=0), n)
    ]
    only = [t.expert for t in itertools.islice(TransitionStream(_cfg(tiny_data, use_suboptimal=False), SIZE, 0), n)]
    natural_sub = 1 - np.mean(natural)
    assert 0.05 < natural_sub < 0.45  # the dataset holds roughly a quarter sub-optimal episodes
    # Bernoulli(0.5) choice per sample: 600 draws have a standard deviation of about 0.02
    assert abs((1 - np.mean(mixed)) - 0.5) < 0.08
    assert all(only)


def test_filters_that_leave_nothing_are_an_error(tiny_data):
    with pytest.raises(DatasetError, match="no transitions left"):
        next(iter(TransitionStream(_cfg(tiny_data, tasks=("crawl",)), SIZE, seed=0)))


def _corrupt_copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    shard = sorted(dst.glob("*.npz"))[1]
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\x00" * 64
    shard.write_bytes(bytes(raw))
    return shard


@pytest.mark.parametrize("verify", [True, False])
def test_corrupt_shard_error_names_the_file(tiny_data, tmp_path, verify):
    shard = _corrupt_copy(tiny_data, tmp_path / "ds")
    stream = TransitionStream(_cfg(tmp_path / "ds", verify_checksums=verify), SIZE, seed=0)
    with pytest.raises(DatasetError, match=shard.name):
        for _ in itertools.islice(stream, 200):
            pass


def test_corrupt_shard_skipped_and_counted(tiny_data, tmp_path):
    _corrupt_copy(tiny_data, tmp_path / "ds")
    stream = TransitionStream(_cfg(tmp_path / "ds", skip_corrupt=True), SIZE, seed=0)
    items = list(itertools.islice(stream, 200))
    assert len(items) == 200
    assert stream.counters.corrupt_shards >= 1


@pytest.fixture(scope="module")
def encoder():
    cfg = MoREConfig.from_dict(TINY_MODEL)
    return MoREPolicy.from_config(cfg, seed=0).encoder


def _batches(ds, n):
    return list(itertools.islice(iter(make_loader(ds)), n))


def _same(a, b):
    return (
        torch.equal(a.current.input_ids, b.current.input_ids)
        and torch.equal(a.current.pixel_values, b.current.pixel_values)
        and torch.equal(a.current.bins, b.current.bins)
        and torch.equal(a.next.pixel_values, b.next.pixel_values)
        and torch.equal(a.reward, b.reward)
    )


def test_batches_hold_model_tensors(tiny_data, encoder):
    (b,) = _batches(TrainBatches(_cfg(tiny_data), encoder, SIZE, batch_size=4, seed=0), 1)
    assert b.size == 4
    assert b.current.bins.shape == (4, 12)
    assert b.next is not None and b.next.bins is None
    # 32x48 images in 16-px patches: 6 patches of 16*16*3 values per image
    assert b.current.pixel_values.shape == (4 * 6, 16 * 16 * 3)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_replays_the_exact_batch_stream(tiny_data, encoder, workers):
    cfg = _cfg(tiny_data, num_workers=workers)
    full = _batches(TrainBatches(cfg, encoder, SIZE, batch_size=4, seed=0), 7)
    resumed = _batches(TrainBatches(cfg, encoder, SIZE, batch_size=4, seed=0, start_batch=3), 4)
    assert all(_same(a, b) for a, b in zip(full[3:], resumed, strict=True))
    assert not _same(full[3], full[4])


def _two_task_data(root: Path, episodes: int = 8) -> Path:
    rng = np.random.default_rng(0)
    with DatasetWriter(root, episodes_per_shard=2, compress=False) as w:
        for i in range(episodes):
            ep = synthetic_episode(rng, i, expert=True, length=5)
            w.add(replace(ep, task="go_to" if i % 2 == 0 else "crawl", episode_id=f"ep{i}"))
    return root


@pytest.mark.parametrize("workers", [0, 2])
def test_curriculum_first_stage_reads_only_its_tasks_and_resumes_exactly(tmp_path, encoder, workers):
    """curriculum: batches 0..4 are the go_to-only stream's first five, batches 5.. come from the stream over both
    tasks started afresh (with one reader: exactly the plain stream's first batches); a resume before, at or
    after the boundary replays the same batches."""
    root = _two_task_data(tmp_path / "two")
    cur = _cfg(root, num_workers=workers, curriculum_tasks=("go_to",), curriculum_steps=5)
    no_curriculum = replace(cur, curriculum_tasks=(), curriculum_steps=0)
    full = _batches(TrainBatches(cur, encoder, SIZE, batch_size=4, seed=0, curriculum_batches=5), 10)
    go_to = replace(no_curriculum, tasks=("go_to",))
    go_to_only = _batches(TrainBatches(go_to, encoder, SIZE, batch_size=4, seed=0), 10)
    assert all(_same(a, b) for a, b in zip(full[:5], go_to_only[:5], strict=True))
    assert not any(_same(a, b) for a, b in zip(full[5:], go_to_only[5:], strict=True))
    if workers == 0:  # one reader: after the boundary, the plain stream from its start
        plain = _batches(TrainBatches(no_curriculum, encoder, SIZE, batch_size=4, seed=0), 5)
        assert all(_same(a, b) for a, b in zip(full[5:], plain, strict=True))
    for start in (3, 5, 7):
        resumed = _batches(TrainBatches(cur, encoder, SIZE, batch_size=4, seed=0, start_batch=start,
                                        curriculum_batches=5), 10 - start)  # fmt: skip
        assert all(_same(a, b) for a, b in zip(full[start:], resumed, strict=True)), start
    typo = replace(cur, curriculum_tasks=("go_too",), tasks=())
    with pytest.raises(DatasetError, match=r"data.curriculum_tasks names \['go_too'\]"):
        TransitionStream(typo, SIZE, seed=0)


def test_decision_points_are_oversampled(tiny_data):
    """The first k steps of every episode enter the stream `factor` times, the rest once (one epoch counted)."""
    plain = TransitionStream(_cfg(tiny_data), SIZE, seed=0)
    over = TransitionStream(_cfg(tiny_data, oversample_steps=2, oversample_factor=3), SIZE, seed=0)
    total = EpisodeDataset(tiny_data).num_transitions
    episodes = len(EpisodeDataset(tiny_data))
    a = [t for e, t in itertools.takewhile(lambda x: x[0] == 0, plain.transitions())]
    b = [t for e, t in itertools.takewhile(lambda x: x[0] == 0, over.transitions())]
    assert len(a) == total
    assert len(b) == total + 2 * 2 * episodes  # every synthetic episode has >= 2 steps
    counts = {}
    for t in b:
        counts[_key(t)] = counts.get(_key(t), 0) + 1
    assert {counts[_key(t)] for t in a if t.step < 2} == {3}
    assert {counts[_key(t)] for t in a if t.step >= 2} == {1}
    with pytest.raises(ValueError, match="oversample_factor"):
        DataConfig(oversample_factor=0)


def test_decision_points_oversampled_only_in_the_named_tasks(tmp_path):
    """oversample_tasks: the first k steps of go_to episodes enter 3 times, a crawl episode's every step once;
    a task name the data does not hold is an error naming it, not a silent no-op."""
    rng = np.random.default_rng(0)
    root = tmp_path / "two_tasks"
    with DatasetWriter(root, episodes_per_shard=3, compress=False) as w:
        for i in range(6):
            ep = synthetic_episode(rng, i, expert=True, length=5)
            w.add(replace(ep, task="go_to" if i % 2 == 0 else "crawl"))
    stream = TransitionStream(_cfg(root, oversample_steps=2, oversample_factor=3, oversample_tasks=("go_to",)),
                              SIZE, seed=0)  # fmt: skip
    epoch0 = [t for e, t in itertools.takewhile(lambda x: x[0] == 0, stream.transitions())]
    counts = Counter((t.task, t.step) for t in epoch0)
    assert counts == {**{("go_to", s): 3 * 3 if s < 2 else 3 for s in range(5)}, **{("crawl", s): 3 for s in range(5)}}
    typo = _cfg(root, oversample_steps=2, oversample_factor=3, oversample_tasks=("go_too",))
    with pytest.raises(DatasetError, match=r"data.oversample_tasks names \['go_too'\]"):
        TransitionStream(typo, SIZE, seed=0)  # refused at start-up, before any shard is read


def test_drop_tasks_leaves_a_task_out_of_one_dataset_only(tmp_path):
    """drop_tasks "A:go_to": dataset A's go_to episodes are never streamed, its crawl ones are, and dataset B's
    go_to ones too; entries that do not parse, name a directory outside data.train, or a task the dataset never
    holds are refused by name."""
    rng = np.random.default_rng(1)
    roots = []
    for name in ("a", "b"):
        root = tmp_path / name
        with DatasetWriter(root, episodes_per_shard=2, compress=False) as w:
            for i in range(4):
                ep = synthetic_episode(rng, i, expert=True, length=3)
                w.add(replace(ep, task="go_to" if i % 2 == 0 else "crawl", episode_id=f"{name}{i}"))
        roots.append(str(root))
    a, b = roots
    cfg = DataConfig(train=(a, b), shuffle_buffer=4, drop_tasks=(f"{a}:go_to",))
    epoch0 = [t for e, t in itertools.takewhile(lambda x: x[0] == 0, TransitionStream(cfg, SIZE, 0).transitions())]
    assert Counter(t.episode_id for t in epoch0) == {"a1": 3, "a3": 3, "b0": 3, "b1": 3, "b2": 3, "b3": 3}
    assert cfg.dropped_tasks() == {a: frozenset({"go_to"})}
    for entry, message in ((f"{a}", "entries are 'DIR:task"), (f"{a}:", "entries are 'DIR:task"),
                           ("data/elsewhere:go_to", "is not one of data.train")):  # fmt: skip
        with pytest.raises(ValueError, match=f"drop_tasks .*{message}"):
            DataConfig(train=(a, b), drop_tasks=(entry,))
    typo = DataConfig(train=(a, b), drop_tasks=(f"{b}:go_avoid",))
    with pytest.raises(DatasetError, match=r"data.drop_tasks names \['go_avoid'\] for .*b, which has no episode"):
        TransitionStream(typo, SIZE, seed=0)


def test_stop_decisions_are_oversampled_only_where_the_episode_stopped(tmp_path):
    """oversample_last: a terminated episode's last step (the stop decision) enters `factor` times; a truncated
    episode has no stop decision, so every one of its steps enters once."""
    rng = np.random.default_rng(0)
    root = tmp_path / "stops"
    with DatasetWriter(root, episodes_per_shard=3, compress=False) as w:
        for i in range(3):
            ep = synthetic_episode(rng, i, expert=True, length=5)
            w.add(replace(ep, terminated=i != 2, episode_id=f"{'stop' if i != 2 else 'cut'}{i}"))
    stream = TransitionStream(_cfg(root, oversample_last=1, oversample_factor=4), SIZE, seed=0)
    epoch0 = [t for e, t in itertools.takewhile(lambda x: x[0] == 0, stream.transitions())]
    counts = Counter((t.episode_id[:3], t.step) for t in epoch0)
    assert counts == {**{("sto", s): 2 * (4 if s == 4 else 1) for s in range(5)}, **{("cut", s): 1 for s in range(5)}}
    with pytest.raises(ValueError, match="oversample_last"):
        DataConfig(oversample_last=-1)


def _constant_episode(eid: str, base: int, success: bool, terminated: bool, expert: bool) -> Episode:
    """3 steps; image t is the constant grey level base + 10 t, so every state is recognisable."""
    images = np.stack([np.full(IMAGE_SHAPE, base + 10 * t, np.uint8) for t in range(3)])
    actions = np.tile(np.asarray(STAND_COMMAND, np.float32), (3, 1))
    actions[-1, TERMINATE] = float(terminated)
    instruction = "go to the red ball"
    return Episode(images, actions, instruction, "go_to", success, expert, episode_id=eid, terminated=terminated)


def test_bellman_targets_follow_the_done_rule(tmp_path, encoder):
    """A terminated success (A), a time-limit truncation (B) and a terminated failure (C), 3 steps each, through
    the dataset -> batch path into more_model's Bellman targets, against targets computed by hand.

    The target network is replaced by a table: Q_next(episode, step) = the best first-slot Q on that state."""
    eps = {
        "A": _constant_episode("A", 20, success=True, terminated=True, expert=True),
        "B": _constant_episode("B", 100, success=False, terminated=False, expert=False),
        "C": _constant_episode("C", 180, success=False, terminated=True, expert=True),
    }
    with DatasetWriter(tmp_path / "ds", compress=False) as w:
        for ep in eps.values():
            w.add(ep)
    q_next = {("A", 1): 0.4, ("A", 2): 0.6, ("B", 1): 0.5, ("B", 2): 0.7, ("C", 1): 0.3, ("C", 2): 0.9}
    gamma = 0.5
    # y^12 = r + gamma (1 - done) Q_next, then max with the MC bound gamma^steps_to_end * success:
    by_hand = {
        ("A", 0): (max(0 + 0.5 * 0.4, 0.5**2), 0 + 0.5 * 0.4),  # (with MC bound, without): 0.25, 0.2
        ("A", 1): (max(0 + 0.5 * 0.6, 0.5**1), 0 + 0.5 * 0.6),  # 0.5, 0.3
        ("A", 2): (1.0, 1.0),  # terminal success: r = 1, no bootstrap
        ("B", 0): (0.5 * 0.5, 0.5 * 0.5),  # 0.25
        ("B", 1): (0.5 * 0.7, 0.5 * 0.7),  # 0.35; B's last step (no next observation) is not in the batch
        ("C", 0): (0.5 * 0.3, 0.5 * 0.3),  # 0.15
        ("C", 1): (0.5 * 0.9, 0.5 * 0.9),  # 0.45
        ("C", 2): (0.0, 0.0),  # terminal failure: r = 0, no bootstrap
    }
    # shuffle buffer 1: transitions leave in stream order, so two batches of 8 are epochs 0 and 1 (8 each)
    ds = TrainBatches(_cfg(tmp_path / "ds", shuffle_buffer=1), encoder, SIZE, batch_size=8, seed=0, with_next=True)
    seen = []
    for b in _batches(ds, 2):
        rows = []
        for i in range(8):  # (success, expert) names the episode; steps_to_end the step
            key = (bool(b.success[i]), bool(b.expert[i]))
            rows.append(({(True, True): "A", (False, False): "B", (False, True): "C"}[key], 2 - int(b.steps_to_end[i])))
        seen += rows
        for i, (name, t) in enumerate(rows):  # s' is the next image (a placeholder = s at a terminal step)
            ref = encoder.encode([eps[name].images[min(t + 1, 2)]], ["go to the red ball"]).pixel_values
            assert torch.equal(b.next.pixel_values[6 * i : 6 * i + 6], ref), (name, t)
            assert bool(b.done[i]) == (t == 2)
            assert float(b.reward[i]) == (1.0 if (name, t) == ("A", 2) else 0.0)
        next_logits = torch.full((8, 256), -30.0)
        for i, (name, t) in enumerate(rows):
            q = q_next.get((name, t + 1), 0.99)  # 0.99 where done: must be ignored
            next_logits[i, 7] = float(np.log(q / (1 - q)))
        slot_logits = torch.zeros(8, 12, 256)
        for mc, col in ((True, 0), (False, 1)):
            y = bellman_targets(slot_logits, next_logits, b.reward, b.done, b.success, b.steps_to_end, gamma, mc)
            got = {key: float(y[i, 11]) for i, key in enumerate(rows)}
            assert got == pytest.approx({k: by_hand[k][col] for k in rows}, abs=1e-6)
    assert Counter(seen) == {key: 2 for key in by_hand}  # B's last step never, every other step once per epoch
    # imitation keeps the truncated last step: its action is still a demonstration
    il = TrainBatches(_cfg(tmp_path / "ds", shuffle_buffer=1), encoder, SIZE, batch_size=9, seed=0, with_next=False)
    (b,) = _batches(il, 1)
    labels = list(zip(b.success.tolist(), b.expert.tolist(), b.steps_to_end.tolist(), strict=True))
    assert labels.count((False, False, 0)) == 1  # B's last step
