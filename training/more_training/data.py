"""Streaming training batches from the project's sharded episode datasets (more_common.dataset).

Pipeline of one reader ("consumer": one DataLoader worker of one rank), all deterministic given the seed:

    shards (epoch e: one permutation shared by every rank, then this consumer's share)
      -> episodes (shuffled inside a shard; filtered by task/split/expert)
      -> transitions (s, a, r, s', done, success, steps_to_end), images resized once per episode
         (RL: the last step of a truncated episode is left out; see "The done rule" below)
      -> shuffle buffer (optionally two, to mix expert and sub-optimal transitions at a set ratio)
      -> [sample mode: keep every n-th transition of the one global stream]
      -> micro-batches -> model tensors (Fuyu patches + prompt + action tokens) via the model's BatchEncoder

A model with reasoning (MoREConfig.reasoning = "scene") is taught to write the scene before it acts: each
transition carries its label at s and s' (more_sim.scene_text.scene_reasoning), computed from the privileged
state every frame stores (`extra/state`: x, y, yaw), the episode's scenario (its things and target) and the
dataset's camera (index meta `config`: the kinematic camera or the go2's D435), or stored with the episode
(`extra/reasoning`: what a checkpoint wrote itself, `more-train label-reasoning`), which comes first.

The stream is infinite (epochs follow each other), so every rank always has a next batch; training length is
counted in optimizer steps. The data position is the number of micro-batches consumed; resuming replays the
stream and drops that many batches before encoding them (no model work), which restores the exact order.

Sharding: `shard_by="shard"` gives each of world_size x num_workers consumers disjoint shards (what scales);
`"sample"` has every consumer read all shards and keep transitions i % n == consumer of the one global
stream, so the union of the ranks' micro-batches equals a single process's global batch (exact DDP check).

Corrupt data: the reader's DatasetError names the shard file and episode; with `skip_corrupt` the shard is
skipped, logged and counted instead.

The done rule (more_common.dataset's, the one rule of the project): a terminated episode's last step is
terminal (done, Bellman target r); a truncated (time-limited) episode has no terminal step, every step but the
last bootstraps from the next stored image, and the last one, whose next observation is not stored, has no
Bellman target: with `td_only` (RL) it is left out of the stream, so it never bootstraps from itself.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from more_common.dataset import DatasetError, Episode, EpisodeDataset, Transition
from more_model.processor import Batch, reasoning_codes, resize_image

from .config import DataConfig
from .reasoning_labels import REASONING_EXTRA, unpack_reasoning

log = logging.getLogger(__name__)


@dataclass
class TrainBatch:
    """One micro-batch. `current` holds s_t and the action tokens; `next` holds s_{t+1} (RL only)."""

    current: Batch
    next: Batch | None
    reward: torch.Tensor  # [B] float32
    done: torch.Tensor  # [B] bool
    steps_to_end: torch.Tensor  # [B] int64
    success: torch.Tensor  # [B] bool
    expert: torch.Tensor  # [B] bool
    stats: dict[str, int] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.current.batch_size

    def to(self, device: torch.device | str) -> TrainBatch:
        moved = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in moved.items():
            if isinstance(value, (torch.Tensor, Batch)):
                moved[name] = value.to(device)
        return TrainBatch(**moved)


@dataclass
class _Counters:
    corrupt_shards: int = 0
    dropped_for_mix: int = 0
    epochs: int = 0


def open_datasets(roots: Sequence[str], verify_checksums: bool = True) -> list[EpisodeDataset]:
    if not roots:
        raise DatasetError("data.train lists no dataset directory")
    return [EpisodeDataset(Path(r), verify_checksums=verify_checksums) for r in roots]


def shard_refs(datasets: Sequence[EpisodeDataset]) -> list[tuple[int, int]]:
    """(dataset index, shard index) of every shard of every dataset, in a fixed order."""
    return [(d, s) for d, ds in enumerate(datasets) for s in range(len(ds.shards))]


def epoch_shard_order(num_shards: int, seed: int, epoch: int) -> list[int]:
    """The shard permutation of one epoch; identical on every rank and worker."""
    return np.random.default_rng([seed, epoch, 7]).permutation(num_shards).tolist()


class TransitionStream:
    """The infinite, deterministic transition stream of one consumer (see the module docstring)."""

    def __init__(
        self,
        cfg: DataConfig,
        image_size: tuple[int, int],
        seed: int,
        consumer: int = 0,
        num_consumers: int = 1,
        expert_only: bool = False,
        td_only: bool = False,
        reasoning: bool = False,
    ) -> None:
        if not 0 <= consumer < num_consumers:
            raise ValueError(f"consumer {consumer} outside [0, {num_consumers})")
        self.cfg = cfg
        self.image_size = image_size
        self.seed = seed
        self.consumer = consumer
        self.num_consumers = num_consumers
        self.expert_only = expert_only or not cfg.use_suboptimal
        self.td_only = td_only
        self.datasets = open_datasets(cfg.train, cfg.verify_checksums)
        self.cameras = [reasoning_camera(ds) for ds in self.datasets] if reasoning else None
        self.refs = shard_refs(self.datasets)
        if cfg.shard_by == "shard" and len(self.refs) < num_consumers:
            raise DatasetError(
                f"{len(self.refs)} shards in {list(cfg.train)} cannot feed {num_consumers} readers "
                f"(world_size x num_workers) with data.shard_by=shard: use more shards, fewer workers, or "
                f"data.shard_by=sample"
            )
        self._dropped = [cfg.dropped_tasks().get(path, frozenset()) for path in cfg.train]  # per dataset
        self._check_task_names()
        self.counters = _Counters()
        # sample mode: every consumer runs the same global stream, so the randomness must not depend on it
        self._stream_id = consumer if cfg.shard_by == "shard" else 0

    # -- stages ------------------------------------------------------------------------------------
    def _my_shards(self, epoch: int) -> list[tuple[int, int]]:
        order = [self.refs[i] for i in epoch_shard_order(len(self.refs), self.seed, epoch)]
        if self.cfg.shard_by == "shard":
            order = order[self.consumer :: self.num_consumers]
        return order

    def _keep(self, ep: Episode, dataset: int) -> bool:
        if self.cfg.tasks and ep.task not in self.cfg.tasks:
            return False
        if ep.task in self._dropped[dataset]:
            return False
        if self.cfg.splits and ep.split not in self.cfg.splits:
            return False
        return ep.expert or not self.expert_only

    def _read(self, d: int, s: int) -> list[Episode]:
        ds = self.datasets[d]
        try:
            return ds.read_shard(s)
        except DatasetError as err:
            if not self.cfg.skip_corrupt:
                raise
            self.counters.corrupt_shards += 1
            log.warning("skipping corrupt shard (%d skipped so far): %s", self.counters.corrupt_shards, err)
            return []

    def transitions(self) -> Iterator[tuple[int, Transition]]:
        """(epoch, transition) forever; images are resized to the model size once per episode."""
        rng = np.random.default_rng([self.seed, self._stream_id, 11])
        epoch = 0
        while True:
            produced = 0
            for d, s in self._my_shards(epoch):
                episodes = self._read(d, s)
                for j in rng.permutation(len(episodes)):
                    ep = episodes[int(j)]
                    if not self._keep(ep, d):
                        continue
                    images = [resize_image(img, self.image_size) for img in ep.images]
                    labels = (
                        episode_reasoning(ep, self.cameras[d], str(self.datasets[d].root))
                        if self.cameras is not None
                        else None
                    )
                    rewards, dones, to_end, td = ep.rewards, ep.dones, ep.steps_to_end, ep.td_mask
                    boost = not self.cfg.oversample_tasks or ep.task in self.cfg.oversample_tasks
                    stop_from = ep.length - self.cfg.oversample_last if ep.terminated else ep.length
                    for t in range(ep.length):
                        if self.td_only and not td[t]:
                            continue  # a truncated episode's last step: no next observation, no Bellman target
                        produced += 1
                        item = (
                            epoch,
                            Transition(
                                image=images[t],
                                next_image=images[min(t + 1, ep.length - 1)],
                                action=ep.actions[t],
                                reward=float(rewards[t]),
                                done=bool(dones[t]),
                                steps_to_end=int(to_end[t]),
                                success=ep.success,
                                expert=ep.expert,
                                instruction=ep.instruction,
                                task=ep.task,
                                episode_id=ep.episode_id,
                                step=t,
                                has_td_target=bool(td[t]),
                                reasoning=None if labels is None else labels[t],
                                next_reasoning=None if labels is None else labels[min(t + 1, ep.length - 1)],
                            ),
                        )
                        # decision points (the first steps, the stop) enter the stream several times (same order
                        # every run)
                        decision = (t < self.cfg.oversample_steps and boost) or t >= stop_from
                        copies = self.cfg.oversample_factor if decision else 1
                        for _ in range(copies):
                            yield item
            if produced == 0:
                raise DatasetError(
                    f"no transitions left in {list(self.cfg.train)} for this reader after the filters "
                    f"(tasks={list(self.cfg.tasks)}, splits={list(self.cfg.splits)}, expert_only={self.expert_only}"
                    f", skipped corrupt shards={self.counters.corrupt_shards})"
                )
            epoch += 1
            self.counters.epochs = epoch

    def _check_task_names(self) -> None:
        """A task in data.oversample_tasks or data.curriculum_tasks that the data never holds is a typo, not a
        no-op (checked at start-up against the datasets' index, which counts every shard's tasks; a data.tasks
        filter that leaves nothing is reported by the stream)."""
        held_by = [{task for shard in ds.shards for task in shard.tasks} for ds in self.datasets]
        seen = set().union(*held_by)
        for path, held, dropped in zip(self.cfg.train, held_by, self._dropped, strict=True):
            if dropped - held:
                raise DatasetError(
                    f"data.drop_tasks names {sorted(dropped - held)} for {path}, which has no episode of them "
                    f"(tasks there: {sorted(held)})"
                )
        for key in ("oversample_tasks", "curriculum_tasks"):
            missing = sorted(set(getattr(self.cfg, key)) - seen)
            if missing:
                raise DatasetError(
                    f"data.{key} names {missing}, which no episode of {list(self.cfg.train)} has "
                    f"(tasks there: {sorted(seen)})"
                )

    def shuffled(self) -> Iterator[Transition]:
        """The transitions through the shuffle buffer(s); mixes expert/sub-optimal if a fraction is set."""
        rng = np.random.default_rng([self.seed, self._stream_id, 13])
        source = self.transitions()
        size = self.cfg.shuffle_buffer
        fraction = None if self.expert_only else self.cfg.suboptimal_fraction
        if fraction is None:
            buf: list[Transition] = []
            for _, item in source:
                if len(buf) < size:
                    buf.append(item)
                    continue
                j = int(rng.integers(len(buf)))
                out, buf[j] = buf[j], item
                yield out
            return
        # two buffers: expert (0) and sub-optimal (1); capacity split by the requested fraction
        caps = (round(size * (1 - fraction)), round(size * fraction))
        caps = tuple(max(1, c) if share > 0 else 0 for c, share in zip(caps, (1 - fraction, fraction), strict=True))
        bufs: tuple[list[Transition], list[Transition]] = ([], [])
        names = ("expert", "sub-optimal")
        while True:
            kind = 1 if rng.random() < fraction else 0
            start_epoch = None
            while len(bufs[kind]) < caps[kind]:
                epoch, item = next(source)
                start_epoch = epoch if start_epoch is None else start_epoch
                if epoch - start_epoch >= 2 and not bufs[kind]:
                    raise DatasetError(
                        f"no {names[kind]} transitions in {list(self.cfg.train)} after the filters, but "
                        f"data.suboptimal_fraction={fraction} asks for them"
                    )
                other = 0 if item.expert else 1
                if caps[other] == 0:
                    self.counters.dropped_for_mix += 1
                    continue
                bufs[other].append(item)
                if other != kind and len(bufs[other]) > 2 * caps[other]:
                    # the over-represented kind is subsampled to keep the ratio
                    j = int(rng.integers(len(bufs[other])))
                    bufs[other][j] = bufs[other][-1]
                    bufs[other].pop()
                    self.counters.dropped_for_mix += 1
            b = bufs[kind]
            j = int(rng.integers(len(b)))
            out = b[j]
            b[j] = b[-1]
            b.pop()
            yield out

    def __iter__(self) -> Iterator[Transition]:
        stream = self.shuffled()
        if self.cfg.shard_by == "shard" or self.num_consumers == 1:
            yield from stream
            return
        for i, item in enumerate(stream):
            if i % self.num_consumers == self.consumer:
                yield item


def encode_transitions(encoder: Any, items: Sequence[Transition], with_next: bool) -> TrainBatch:
    """Model tensors for a list of transitions (the action is binned by the encoder's action spec)."""
    instructions = [t.instruction for t in items]
    actions = np.stack([t.action for t in items])
    if getattr(encoder, "reasoning", False):
        if any(t.reasoning is None for t in items):
            raise ValueError("a reasoning model needs transitions with reasoning labels (TransitionStream reasoning)")
        bins = encoder.action_tokenizer.to_bins(actions)
        current = encoder.encode([t.image for t in items], instructions, bins, [t.reasoning for t in items])
        nxt = (
            encoder.with_reasoning(
                encoder.encode([t.next_image for t in items], instructions), [t.next_reasoning for t in items]
            )
            if with_next
            else None
        )
    else:
        current = encoder.encode_actions([t.image for t in items], instructions, actions)
        nxt = encoder.encode([t.next_image for t in items], instructions) if with_next else None
    return TrainBatch(
        current=current,
        next=nxt,
        reward=torch.tensor([t.reward for t in items], dtype=torch.float32),
        done=torch.tensor([t.done for t in items], dtype=torch.bool),
        steps_to_end=torch.tensor([t.steps_to_end for t in items], dtype=torch.int64),
        success=torch.tensor([t.success for t in items], dtype=torch.bool),
        expert=torch.tensor([t.expert for t in items], dtype=torch.bool),
    )


def reasoning_camera(dataset: EpisodeDataset) -> Any:
    """The simulator config of a dataset's camera (its index meta), for reasoning labels: the kinematic front
    camera, or the go2 embodiment's (the D435 0.28 m ahead of the trunk, 42 degrees vertically)."""
    from more_sim.config import SimConfig  # the simulator only when a model reasons

    stored = dataset.meta.get("config")
    if stored is None:
        return None  # no camera: only episodes with stored labels can be read (episode_reasoning says so)
    if not isinstance(stored, dict):
        raise DatasetError(f"{dataset.root}: index.json meta.config is not a simulator config: {stored!r}")
    try:
        config = SimConfig(**stored)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"{dataset.root}: index.json meta.config is not a simulator config: {err}") from err
    return config  # the go2 embodiment's D435 too: what is in view follows SimConfig.camera_fovy


def episode_reasoning(ep: Episode, camera: Any, where: str = "dataset") -> list[str]:
    """The reasoning label of every step of an episode: stored with it (`REASONING_EXTRA`), else computed from its
    privileged state with the dataset's `camera` (more_sim.scene_text.scene_reasoning)."""
    if REASONING_EXTRA in ep.extras:
        return unpack_reasoning(ep.extras[REASONING_EXTRA], f"{where}: episode {ep.episode_id!r}")
    if camera is None:
        raise DatasetError(
            f"{where}: episode {ep.episode_id!r} has no reasoning labels and index.json has no meta.config to "
            f"compute them from: label it with a reasoning checkpoint first (more-train label-reasoning)"
        )
    from more_sim.scene_text import scenario_things, scene_reasoning

    scenario, state = ep.meta.get("scenario"), ep.extras.get("state")
    if scenario is None or state is None or state.shape != (ep.length, state.shape[1]) or state.shape[1] < 3:
        raise DatasetError(
            f"episode {ep.episode_id!r}: reasoning labels need meta.scenario and extra/state (x, y, yaw per step)"
        )
    try:
        things = scenario_things(scenario)
        labels = [
            scene_reasoning(things, scenario["target"], float(x), float(y), float(yaw), camera, scenario["task"])
            for x, y, yaw in state[:, :3]
        ]
        for label in labels:
            reasoning_codes(label)  # what the encoder accepts (alphabet, MAX_REASONING_TOKENS): refused here, by name
        return labels
    except (KeyError, TypeError, ValueError) as err:  # a malformed scenario: name the episode, not a traceback
        raise DatasetError(f"episode {ep.episode_id!r}: no reasoning labels from its scenario: {err!r}") from err


class TrainBatches(IterableDataset):
    """The micro-batches of one rank, split over DataLoader workers; resumable at `start_batch`.

    The DataLoader takes batches from its workers strictly round robin (worker 0, 1, ..., K-1, 0, ...), so
    batch n comes from logical stream n % K. After a resume at batch n0, physical worker p plays logical
    stream (p + n0) % K and drops the batches of its stream that precede n0.

    With a curriculum (data.curriculum_tasks), batches n < `curriculum_batches` come from a stream restricted to
    those tasks and the rest from a stream over every task that starts afresh at that boundary, so a resume
    after the boundary replays nothing of the first stage.
    """

    def __init__(
        self,
        cfg: DataConfig,
        encoder: Any,
        image_size: tuple[int, int],
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        with_next: bool = True,
        expert_only: bool = False,
        start_batch: int = 0,
        curriculum_batches: int = 0,
    ) -> None:
        super().__init__()
        if curriculum_batches > 0 and not cfg.curriculum_tasks:
            raise ValueError(f"curriculum_batches={curriculum_batches} needs data.curriculum_tasks")
        self.curriculum_batches = curriculum_batches  # 0: no first stage (benchmarks time the full stream)
        self.cfg = cfg
        self.encoder = encoder
        self.image_size = image_size
        self.batch_size = batch_size
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.with_next = with_next
        self.expert_only = expert_only
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[TrainBatch]:
        info = get_worker_info()
        k = self.cfg.num_workers if info is not None else 1
        physical = info.id if info is not None else 0
        logical = (physical + self.start_batch) % k
        skip = max(0, -(-(self.start_batch - logical) // k))  # this stream's batches before start_batch
        # (config, first index, end index) of each stage, in this logical stream's own batch indices
        stages: list[tuple[DataConfig, int, float]] = [(self.cfg, 0, math.inf)]
        if self.curriculum_batches:
            first = max(0, -(-(self.curriculum_batches - logical) // k))
            stages = [(replace(self.cfg, tasks=self.cfg.curriculum_tasks), 0, first), (self.cfg, first, math.inf)]
        for cfg, begin, end in stages:
            if end <= skip or begin >= end:
                continue  # a stage already trained (resume) or empty for this stream
            stream = TransitionStream(
                cfg,
                self.image_size,
                self.seed,
                consumer=self.rank * k + logical,
                num_consumers=self.world_size * k,
                expert_only=self.expert_only,
                td_only=self.with_next,
                reasoning=getattr(self.encoder, "reasoning", False),
            )
            items: list[Transition] = []
            index = begin
            for item in stream:
                items.append(item)
                if len(items) < self.batch_size:
                    continue
                if index >= skip:
                    batch = encode_transitions(self.encoder, items, self.with_next)
                    c = stream.counters
                    batch.stats = {"epoch": c.epochs, "corrupt_shards": c.corrupt_shards, "dropped": c.dropped_for_mix}
                    yield batch
                index += 1
                items = []
                if index >= end:
                    break


def make_loader(dataset: TrainBatches, pin_memory: bool = False) -> DataLoader:
    workers = dataset.cfg.num_workers
    return DataLoader(
        dataset,
        batch_size=None,
        num_workers=workers,
        # an explicit generator keeps the DataLoader from drawing on the global RNG (exact resume)
        generator=torch.Generator().manual_seed(dataset.seed),
        prefetch_factor=4 if workers else None,
        pin_memory=pin_memory,
        persistent_workers=False,
    )
