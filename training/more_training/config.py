"""TrainConfig: every knob of an offline training run, typed and validated, saved next to every checkpoint.

Built from YAML plus `key.path=value` overrides through more_common.typed_config, so an unknown key, a wrong
type or an out-of-range value is reported by its dotted field name (e.g. "optim.lr: must be > 0, got -1.0").

The Table II ablations are single switches:
    w/o RL               objective.kind=il           (cross-entropy on the 12 action tokens, expert data only)
    w/o MoE              model.use_moe=false model.num_experts=1 model.top_k=1   (one dense LoRA per FFN)
    w/o sub-optimal data data.use_suboptimal=false   (RL on expert episodes only)
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from more_common.typed_config import ConfigError, apply_overrides, build, load_yaml, to_dict
from more_model.config import MoREConfig

CONFIG_FILE = "train_config.yaml"
# Fields added after runs existed, with the value that does what their absence did: left out of the fingerprint
# at that value, so a run started before the field existed still resumes.
NEUTRAL_DEFAULTS: dict[tuple[str, str], Any] = {
    ("data", "oversample_steps"): 0,
    ("data", "oversample_factor"): 1,
    ("data", "oversample_tasks"): [],
    ("data", "oversample_last"): 0,
    ("data", "curriculum_tasks"): [],
    ("data", "curriculum_steps"): 0,
    ("data", "drop_tasks"): [],
    ("objective", "imitation_weight"): 0.0,
    ("model", "action_slots"): [],
    ("model", "text_first"): False,
    ("model", "reasoning"): "none",
    ("objective", "reasoning_weight"): 1.0,
}


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name} {msg}")


@dataclass(frozen=True)
class DataConfig:
    """Where the transitions come from and how they are mixed, sharded and shuffled.

    train              dataset directories (each holds index.json and .npz shards)
    tasks, splits      keep only episodes of these tasks / splits (empty: all)
    drop_tasks         "DIR:task[,task...]" entries: leave those tasks' episodes of the dataset DIR (one of
                       `train`) out, e.g. data recorded by another expert for the same task
    use_suboptimal     False: expert episodes only ("w/o sub-optimal data"); IL always uses expert episodes only
    suboptimal_fraction  share of sub-optimal transitions in the stream (None: as stored on disk)
    shard_by           "shard": each rank/worker reads disjoint shards (scales); "sample": every reader reads
                       all shards and keeps every n-th transition of one global stream (exact DDP equivalence)
    shuffle_buffer     transitions held for shuffling (images are resized to the model size when buffered)
    num_workers        DataLoader worker processes per rank (0: in the training process)
    skip_corrupt       False: a corrupt shard stops training with its file and episode named; True: skipped,
                       counted and logged
    oversample_steps   the first this many steps of every episode (where the robot turns to the thing it was
                       told to go to: the decision points) enter the stream `oversample_factor` times
    oversample_factor  copies of each of those transitions (1: no oversampling)
    oversample_tasks   oversample only in these tasks (empty: every task; a name the data lacks is an error); the
                       tasks whose instruction picks one of several things (go_to, distinguish) are where the
                       decision points carry the language
    oversample_last    the last this many steps of every terminated episode (where the robot decides to stop: one
                       sample per episode, in every task) also enter `oversample_factor` times
    curriculum_tasks   the first `curriculum_steps` optimizer steps read only episodes of these tasks (a first
                       stage, e.g. go_to, where the words pick the target in every sample), then the stream starts
                       afresh on every task of `tasks`; one optimizer and one schedule across both (empty: none)
    curriculum_steps   optimizer steps of that first stage (0: no curriculum)
    """

    train: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    drop_tasks: tuple[str, ...] = ()
    use_suboptimal: bool = True
    suboptimal_fraction: float | None = None
    shard_by: Literal["shard", "sample"] = "shard"
    shuffle_buffer: int = 2048
    num_workers: int = 0
    skip_corrupt: bool = False
    verify_checksums: bool = True
    oversample_steps: int = 0
    oversample_factor: int = 1
    oversample_tasks: tuple[str, ...] = ()
    oversample_last: int = 0
    curriculum_tasks: tuple[str, ...] = ()
    curriculum_steps: int = 0

    def __post_init__(self) -> None:
        _check(self.curriculum_steps >= 0, "curriculum_steps", f"must be >= 0, got {self.curriculum_steps}")
        _check(
            (self.curriculum_steps > 0) == bool(self.curriculum_tasks),
            "curriculum_tasks",
            f"and curriculum_steps go together: got tasks {list(self.curriculum_tasks)} for "
            f"{self.curriculum_steps} steps",
        )
        if self.tasks:
            extra = sorted(set(self.curriculum_tasks) - set(self.tasks))
            _check(not extra, "curriculum_tasks", f"{extra} are outside data.tasks {list(self.tasks)}")
        self.dropped_tasks()  # validates the entries
        _check(self.oversample_steps >= 0, "oversample_steps", f"must be >= 0, got {self.oversample_steps}")
        _check(self.oversample_last >= 0, "oversample_last", f"must be >= 0, got {self.oversample_last}")
        _check(self.oversample_factor >= 1, "oversample_factor", f"must be >= 1, got {self.oversample_factor}")
        _check(self.shuffle_buffer >= 1, "shuffle_buffer", f"must be >= 1, got {self.shuffle_buffer}")
        _check(self.num_workers >= 0, "num_workers", f"must be >= 0, got {self.num_workers}")
        if self.suboptimal_fraction is not None:
            f = self.suboptimal_fraction
            _check(0.0 <= f <= 1.0, "suboptimal_fraction", f"must lie in [0, 1] or be null, got {f}")

    def dropped_tasks(self) -> dict[str, frozenset[str]]:
        """`drop_tasks` as {dataset directory: the tasks left out of it}; a malformed entry or a directory that is
        not in `train` is a ValueError that names it (a task the dataset never holds: the stream's start-up check)."""
        out: dict[str, set[str]] = {}
        for entry in self.drop_tasks:
            path, sep, names = entry.rpartition(":")
            tasks = [t.strip() for t in names.split(",") if t.strip()]
            _check(bool(sep and path and tasks), "drop_tasks", f"entries are 'DIR:task[,task...]', got {entry!r}")
            _check(path in self.train, "drop_tasks", f"{entry!r}: {path!r} is not one of data.train {list(self.train)}")
            out.setdefault(path, set()).update(tasks)
        return {path: frozenset(tasks) for path, tasks in out.items()}


@dataclass(frozen=True)
class ObjectiveConfig:
    """The loss. RL: eq. 7-10 of the paper (Bellman targets, conservative term, MoE load balance).

    kind                 "rl" (offline autoregressive Q-learning) or "il" (cross-entropy, the QUART baseline)
    gamma                discount of the Bellman target at the last action slot
    conservative_weight  alpha of eq. 10: pushes the Q-values of the bins not taken towards 0
    load_balance_weight  beta of eq. 10 (Switch load-balance loss per MoE layer)
    mc_lower_bound       target = max(target, gamma^steps_to_end * success) (Q-Transformer)
    target_tau           Polyak/EMA rate of the target network, applied every `target_every` steps
    regression           "mse" (eq. 8's squared error, the paper) or "bce" (binary cross-entropy on the same
                         sigmoid Q and targets: same minimiser, no vanishing gradient; see model/losses.py)
    imitation_weight     RL only: adds this times the cross-entropy of the data's bins on the expert samples of
                         the batch (an imitation term on expert steps, as in Q-learning-from-demonstrations
                         recipes; 0: the paper's objective)
    reasoning_weight     models with `reasoning: scene`: adds this times the cross-entropy of the reasoning
                         tokens (the scene label written before the actions), both objectives
    """

    kind: Literal["rl", "il"] = "rl"
    gamma: float = 0.98
    conservative_weight: float = 0.5
    load_balance_weight: float = 0.002
    mc_lower_bound: bool = True
    target_tau: float = 0.005
    target_every: int = 1
    regression: Literal["mse", "bce"] = "mse"
    imitation_weight: float = 0.0
    reasoning_weight: float = 1.0

    def __post_init__(self) -> None:
        _check(self.reasoning_weight >= 0, "reasoning_weight", f"must be >= 0, got {self.reasoning_weight}")
        _check(self.imitation_weight >= 0, "imitation_weight", f"must be >= 0, got {self.imitation_weight}")
        _check(self.regression in ("mse", "bce"), "regression", f"must be 'mse' or 'bce', got {self.regression!r}")
        _check(0.0 < self.gamma <= 1.0, "gamma", f"must lie in (0, 1], got {self.gamma}")
        _check(self.conservative_weight >= 0, "conservative_weight", f"must be >= 0, got {self.conservative_weight}")
        _check(self.load_balance_weight >= 0, "load_balance_weight", f"must be >= 0, got {self.load_balance_weight}")
        _check(0.0 < self.target_tau <= 1.0, "target_tau", f"must lie in (0, 1], got {self.target_tau}")
        _check(self.target_every >= 1, "target_every", f"must be >= 1, got {self.target_every}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up and cosine decay to `final_lr_fraction`, gradient clipping.

    batch_size is the GLOBAL batch (all ranks, all accumulation steps): each rank processes
    batch_size / (world_size * grad_accum) samples per micro-step.
    """

    lr: float = 2e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    warmup_steps: int = 100
    final_lr_fraction: float = 0.1
    grad_clip: float = 1.0
    batch_size: int = 64
    grad_accum: int = 1
    max_steps: int = 1000

    def __post_init__(self) -> None:
        _check(math.isfinite(self.lr) and self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        _check(self.weight_decay >= 0, "weight_decay", f"must be >= 0, got {self.weight_decay}")
        _check(all(0 <= b < 1 for b in self.betas), "betas", f"must lie in [0, 1), got {self.betas}")
        _check(self.eps > 0, "eps", f"must be > 0, got {self.eps}")
        _check(self.warmup_steps >= 0, "warmup_steps", f"must be >= 0, got {self.warmup_steps}")
        _check(
            0 <= self.final_lr_fraction <= 1, "final_lr_fraction", f"must lie in [0, 1], got {self.final_lr_fraction}"
        )
        _check(self.grad_clip >= 0, "grad_clip", f"must be >= 0 (0 disables), got {self.grad_clip}")
        _check(self.batch_size >= 1, "batch_size", f"must be >= 1, got {self.batch_size}")
        _check(self.grad_accum >= 1, "grad_accum", f"must be >= 1, got {self.grad_accum}")
        _check(self.max_steps > self.warmup_steps, "max_steps", f"({self.max_steps}) must exceed warmup_steps")


@dataclass(frozen=True)
class ModelInit:
    """How the model is created.

    init_from        a checkpoint directory to start from (weights only; None: build `model` from scratch)
    train_backbone   True: train every weight of the (tiny) backbone too; False: adapters + routers only
                     (the paper's setting, frozen backbone)
    backbone_seed    seed of the randomly initialised tiny backbone
    gradient_checkpointing  recompute decoder activations in backward (GPU memory for time)
    """

    init_from: str | None = None
    train_backbone: bool = False
    backbone_seed: int = 0
    gradient_checkpointing: bool = False


@dataclass(frozen=True)
class RunConfig:
    """Where outputs go, how often to log and save, the device and numerics."""

    out_dir: str = "runs/train"
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = "auto"  # auto: bf16 autocast on CUDA, fp32 on CPU
    threads: int = 0  # torch intra-op threads per process (0: torch's default)
    log_every: int = 10
    ckpt_every: int = 200
    ckpt_every_s: float = 0.0  # also save after this many seconds since the last save (0: off)
    keep_last: int = 3
    resume: bool = True  # continue from the newest valid checkpoint in out_dir/checkpoints
    progress: bool = True
    tensorboard: bool = True
    max_time_s: float = 0.0  # stop (and save) after this wall time (0: no limit)

    def __post_init__(self) -> None:
        _check(self.threads >= 0, "threads", f"must be >= 0, got {self.threads}")
        _check(self.log_every >= 1, "log_every", f"must be >= 1, got {self.log_every}")
        _check(self.ckpt_every >= 1, "ckpt_every", f"must be >= 1, got {self.ckpt_every}")
        _check(self.ckpt_every_s >= 0, "ckpt_every_s", f"must be >= 0, got {self.ckpt_every_s}")
        _check(self.keep_last >= 1, "keep_last", f"must be >= 1, got {self.keep_last}")
        _check(self.max_time_s >= 0, "max_time_s", f"must be >= 0, got {self.max_time_s}")


@dataclass(frozen=True)
class DistConfig:
    """Multi-process training under torchrun (WORLD_SIZE/RANK/LOCAL_RANK from the environment)."""

    strategy: Literal["ddp", "fsdp"] = "ddp"
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on CUDA, gloo on CPU
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        _check(self.timeout_s > 0, "timeout_s", f"must be > 0, got {self.timeout_s}")


@dataclass(frozen=True)
class EvalConfig:
    """Periodic closed-loop evaluation with `more-sim eval` on the newest checkpoint (rank 0 only)."""

    every_steps: int = 0  # 0: off
    episodes: int = 5
    tasks: tuple[str, ...] = ("go_to",)
    split: str = "id"
    extra_args: tuple[str, ...] = ()
    timeout_s: float = 1800.0

    def __post_init__(self) -> None:
        _check(self.every_steps >= 0, "every_steps", f"must be >= 0, got {self.every_steps}")
        _check(self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")


@dataclass(frozen=True)
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: MoREConfig = field(default_factory=MoREConfig)
    init: ModelInit = field(default_factory=ModelInit)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    dist: DistConfig = field(default_factory=DistConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def __post_init__(self) -> None:
        steps, total = self.data.curriculum_steps, self.optim.max_steps
        _check(steps < total or steps == 0, "data.curriculum_steps", f"({steps}) must be below optim.max_steps {total}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def fingerprint(self) -> str:
        """Hash of everything that changes the training trajectory (not where outputs go or how often)."""
        d = self.to_dict()
        for key in ("progress", "tensorboard", "log_every", "out_dir", "resume", "max_time_s", "ckpt_every_s"):
            d["run"].pop(key, None)
        d.pop("eval", None)
        for (section, key), neutral in NEUTRAL_DEFAULTS.items():
            if d[section].get(key) == neutral:
                del d[section][key]  # a field added later, at the value that means "absent": old runs resume
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def per_rank_batch(self, world_size: int) -> int:
        """Samples one rank processes per micro-step; the global batch must split evenly."""
        per = self.optim.batch_size // (world_size * self.optim.grad_accum)
        if per * world_size * self.optim.grad_accum != self.optim.batch_size or per < 1:
            raise ConfigError(
                f"optim.batch_size: {self.optim.batch_size} does not split into world_size {world_size} x "
                f"grad_accum {self.optim.grad_accum} equal micro-batches"
            )
        return per


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_config_dict(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A YAML config as a dict; `extends: other.yaml` (relative to the file) is loaded first and deep-merged."""
    path = Path(path).resolve()
    if path in _seen:
        raise ConfigError(f"extends: {path} includes itself")
    data = load_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends: expected a file name, got {parent!r}")
    return _merge(load_config_dict(path.parent / parent, (*_seen, path)), data)


def load_config(path: str | Path | None = None, overrides: Sequence[str] = ()) -> TrainConfig:
    """YAML file (optional) + `key.path=value` overrides -> a validated TrainConfig (ConfigError names the field)."""
    data = load_config_dict(path) if path is not None else {}
    data = apply_overrides(data, list(overrides))
    try:
        cfg = build(TrainConfig, data)
    except ConfigError as err:
        if path is None:
            raise
        # a field's error names the field; the reader also needs the file it came from
        raise ConfigError(f"{path}{' (with the overrides)' if overrides else ''}: {err}") from err
    fraction = cfg.data.suboptimal_fraction
    if fraction is not None and fraction > 0 and not cfg.data.use_suboptimal:
        raise ConfigError("data.suboptimal_fraction: > 0 contradicts data.use_suboptimal=false")
    return cfg


def save_config(cfg: TrainConfig, path: str | Path) -> None:
    import yaml

    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
