"""The ablation matrix: which variants, seeds, data and evaluation make one Table II, typed and validated.

Built from YAML (`extends: other.yaml` deep-merges another matrix file first, as for training configs) plus
`key.path=value` overrides through more_common.typed_config (an unknown key, a wrong type or an out-of-range
value is reported by its dotted field name). Paths: `base_config` is relative to the matrix file loaded;
dataset and output directories are relative to the working directory (like a training config's `data.train`
and `run.out_dir`).

Budget: every run of a matrix sees the same number of training samples, `budget.samples` = optimizer steps x
global batch (the runner sets `optim.max_steps = samples / batch_size`, which must divide), whatever its
objective costs per sample. Wall time is measured and reported, not equalised: an imitation step is ~1.65x
cheaper than an RL step on the same batch.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from more_common.typed_config import ConfigError, apply_overrides, build, to_dict

# The paper's numbers (MoRE, Zhao et al. 2025; simulation, 25 episodes per task). Per-task values are known
# for MoRE and QUART (Table I), only the averages for the ablation rows (Table II).
PAPER_TASKS = ("distinguish", "go_to", "go_avoid", "go_through", "crawl", "unload")
PAPER_ROWS: dict[str, dict[str, float]] = {
    "MoRE": dict(zip(PAPER_TASKS, (0.82, 0.80, 0.59, 0.57, 0.49, 0.33), strict=True), average=0.60),
    "QUART": dict(zip(PAPER_TASKS, (0.66, 0.60, 0.53, 0.41, 0.32, 0.12), strict=True), average=0.44),
    "w/o RL": {"average": 0.51},
    "w/o MoE": {"average": 0.48},
    "w/o sub-optimal data": {"average": 0.56},
}
PAPER_MIN_EPISODES = 25
SPLIT_NAMES = ("id", "ood")


def _check(cond: bool, name: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"{name} {msg}")


def _check_overrides(overrides: tuple[str, ...]) -> None:
    bad = [o for o in overrides if "=" not in o or not o.split("=", 1)[0].strip()]
    _check(not bad, "overrides", f"must look like key.path=value, got {bad}")


def _check_dir_name(name: str, field_name: str) -> None:
    _check(
        name.replace("_", "").replace("-", "").isalnum(),
        field_name,
        "names a directory: use letters, digits, '_' and '-' only",
    )


def _six_tasks() -> tuple[str, ...]:
    from more_sim.splits import TASKS  # the one list of task names (more_sim is needed for evaluation anyway)

    return tuple(TASKS)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the matrix, written by `more-train ablations prepare` with `more-sim generate`.

    out                  directory (index.json + shards)
    episodes             episodes to plan (with failures_only, fewer are written: the successes are dropped)
    suboptimal_fraction  share of planned episodes from the sub-optimal generator (0: expert only)
    failures_only        keep only the sub-optimal episodes that failed (the paper's use of QUARD-Auto)
    tasks                "all" or a list of task names
    external             made elsewhere: `prepare` only checks that it exists
    extra_args           more `more-sim generate` options (e.g. ["--image-size", "64x96"])
    """

    out: str
    episodes: int = 0
    suboptimal_fraction: float = 0.0
    failures_only: bool = False
    tasks: tuple[str, ...] = ("all",)
    split: str = "id"
    seed: int = 0
    workers: int | None = None
    external: bool = False
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(bool(self.out), "out", "must name a directory")
        _check(self.external or self.episodes >= 1, "episodes", f"must be >= 1, got {self.episodes}")
        f = self.suboptimal_fraction
        _check(0.0 <= f <= 1.0, "suboptimal_fraction", f"must lie in [0, 1], got {f}")
        _check(not self.failures_only or f > 0, "failures_only", "needs suboptimal_fraction > 0")
        _check(self.split in SPLIT_NAMES, "split", f"must be one of {list(SPLIT_NAMES)}, got {self.split!r}")
        if self.tasks != ("all",):
            bad = [t for t in self.tasks if t not in _six_tasks()]
            _check(bool(self.tasks) and not bad, "tasks", f"must be 'all' or task names, got unknown {bad}")


@dataclass(frozen=True)
class MixSpec:
    """Training data of a variant: datasets (names from `datasets`) and the stream's sub-optimal share.

    suboptimal_fraction  share of sub-optimal transitions in the training stream (data.suboptimal_fraction);
                         null: as the datasets hold them. The paper's mix, 1.82M expert : 0.44M sub-optimal
                         samples, is 0.44 / 2.26 = 0.195.
    """

    datasets: tuple[str, ...]
    suboptimal_fraction: float | None = None

    def __post_init__(self) -> None:
        _check(bool(self.datasets), "datasets", "must list at least one dataset name")
        f = self.suboptimal_fraction
        _check(f is None or 0.0 <= f <= 1.0, "suboptimal_fraction", f"must lie in [0, 1] or be null, got {f}")


@dataclass(frozen=True)
class PretrainSpec:
    """A shared initialisation: one training run per seed, before the rows that start from it (`init`).

    The paper's rows all start from one pretrained Fuyu-8B that already reads its instruction; a tiny backbone
    from scratch has no such start, so the matrix trains one (e.g. the grounding recipe's go_to stage) and
    every row that names it begins from its final checkpoint (`init.init_from`).

    config     training config, relative to the matrix file
    samples    samples it trains on (optimizer steps x batch; must divide)
    dataset    the matrix dataset it trains on (its `data.train`)
    overrides  `key.path=value` on `config`
    """

    config: str
    samples: int
    dataset: str
    overrides: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(self.samples >= 1, "samples", f"must be >= 1, got {self.samples}")
        _check_overrides(self.overrides)


@dataclass(frozen=True)
class VariantSpec:
    """One row of the table: a mix and `key.path=value` overrides of the base training config.

    label   the row's name in the table
    paper   the paper's row it stands for (a key of PAPER_ROWS), or null
    init    a `pretrain` entry to start from (its final checkpoint of the same seed), or null: from scratch
    """

    mix: str
    overrides: tuple[str, ...] = ()
    label: str = ""
    paper: str | None = None
    description: str = ""
    init: str | None = None

    def __post_init__(self) -> None:
        _check_overrides(self.overrides)
        _check(
            self.paper is None or self.paper in PAPER_ROWS,
            "paper",
            f"must be one of {list(PAPER_ROWS)} or null, got {self.paper!r}",
        )


@dataclass(frozen=True)
class BudgetSpec:
    """Samples seen per run (optimizer steps x global batch): the same for every variant."""

    samples: int = 64000

    def __post_init__(self) -> None:
        _check(self.samples >= 1, "samples", f"must be >= 1, got {self.samples}")


@dataclass(frozen=True)
class EvalSpec:
    """Closed-loop evaluation of each run's final checkpoint with `more-sim eval` (one call per split x seed).

    seeds        evaluation seeds: every run meets the same scenes (paired comparison between variants)
    grounding    "auto": add `--grounding` when `more-sim eval` offers it, else record "not available";
                 "required": refuse to run without it; "off"
    grounding_args  options for the grounding test (e.g. ["--grounding-scenes", "50"])
    threads      torch threads of the evaluation process (OMP_NUM_THREADS)
    """

    tasks: tuple[str, ...] = ("all",)
    splits: tuple[str, ...] = SPLIT_NAMES
    episodes_per_task: int = PAPER_MIN_EPISODES
    seeds: tuple[int, ...] = (0,)
    batch: int = 8
    device: str = "cpu"
    threads: int = 1
    grounding: Literal["auto", "required", "off"] = "auto"
    grounding_args: tuple[str, ...] = ()
    extra_args: tuple[str, ...] = ()
    timeout_s: float = 4 * 3600.0

    def __post_init__(self) -> None:
        if self.tasks != ("all",):
            bad = [t for t in self.tasks if t not in _six_tasks()]
            _check(bool(self.tasks) and not bad, "tasks", f"must be 'all' or task names, got unknown {bad}")
        bad = [s for s in self.splits if s not in SPLIT_NAMES]
        _check(bool(self.splits) and not bad, "splits", f"must be a non-empty subset of {list(SPLIT_NAMES)}")
        _check(len(set(self.splits)) == len(self.splits), "splits", f"has duplicates: {list(self.splits)}")
        _check(self.episodes_per_task >= 1, "episodes_per_task", f"must be >= 1, got {self.episodes_per_task}")
        _check(bool(self.seeds), "seeds", "must list at least one evaluation seed")
        _check(len(set(self.seeds)) == len(self.seeds), "seeds", f"has duplicates: {list(self.seeds)}")
        _check(self.batch >= 1, "batch", f"must be >= 1, got {self.batch}")
        _check(self.threads >= 1, "threads", f"must be >= 1, got {self.threads}")
        _check(self.timeout_s > 0, "timeout_s", f"must be > 0, got {self.timeout_s}")

    def task_list(self) -> tuple[str, ...]:
        return _six_tasks() if self.tasks == ("all",) else self.tasks


@dataclass(frozen=True)
class ClaimSpec:
    """A claim of the paper as a comparison: `better`'s average success exceeds `worse`'s."""

    better: str
    worse: str
    text: str = ""


@dataclass(frozen=True)
class MatrixConfig:
    """smoke: a toy matrix (fewer than 25 episodes per task or one seed allowed; the table says so)."""

    base_config: str
    variants: dict[str, VariantSpec]
    mixes: dict[str, MixSpec]
    datasets: dict[str, DatasetSpec]
    out_dir: str = "runs/ablations"
    name: str = "Table II at small scale"
    seeds: tuple[int, ...] = (0, 1)
    seed_keys: tuple[str, ...] = ("run.seed", "init.backbone_seed")
    budget: BudgetSpec = field(default_factory=BudgetSpec)
    train_overrides: tuple[str, ...] = ()
    launcher: tuple[str, ...] = ()  # the training command (default: this Python, -m more_training.cli)
    eval: EvalSpec = field(default_factory=EvalSpec)
    claims: tuple[ClaimSpec, ...] = ()
    pretrain: dict[str, PretrainSpec] = field(default_factory=dict)
    smoke: bool = False

    def __post_init__(self) -> None:
        _check(bool(self.variants), "variants", "must define at least one variant")
        _check(bool(self.seeds), "seeds", "must list at least one seed")
        _check(len(set(self.seeds)) == len(self.seeds), "seeds", f"has duplicates: {list(self.seeds)}")
        _check(bool(self.seed_keys), "seed_keys", "must name at least one config key the seed goes to")
        for name, v in self.variants.items():
            _check_dir_name(name, f"variants.{name}")
            # run names: a row is VARIANT/seed-S, a shared initialisation pretrain-NAME/seed-S
            _check(not name.startswith("pretrain-"), f"variants.{name}", "must not start with 'pretrain-'")
            _check(v.mix in self.mixes, f"variants.{name}.mix", f"must be one of {list(self.mixes)}, got {v.mix!r}")
            _check(
                v.init is None or v.init in self.pretrain,
                f"variants.{name}.init",
                f"must name a pretrain entry {list(self.pretrain)} or be null, got {v.init!r}",
            )
        for name, pre in self.pretrain.items():
            _check_dir_name(name, f"pretrain.{name}")
            _check(
                pre.dataset in self.datasets,
                f"pretrain.{name}.dataset",
                f"must be one of {list(self.datasets)}, got {pre.dataset!r}",
            )
        for name, m in self.mixes.items():
            bad = [d for d in m.datasets if d not in self.datasets]
            _check(not bad, f"mixes.{name}.datasets", f"names unknown dataset(s) {bad}; known: {list(self.datasets)}")
        bad = [o for o in self.train_overrides if "=" not in o]
        _check(not bad, "train_overrides", f"must look like key.path=value, got {bad}")
        for i, c in enumerate(self.claims):
            for side in ("better", "worse"):
                v = getattr(c, side)
                _check(v in self.variants, f"claims[{i}].{side}", f"must be a variant, got {v!r}")
        if not self.smoke:
            n = self.eval.episodes_per_task
            _check(
                n >= PAPER_MIN_EPISODES,
                "eval.episodes_per_task",
                f"must be >= {PAPER_MIN_EPISODES} (the paper's protocol) unless smoke: true, got {n}",
            )
            _check(len(self.seeds) >= 2, "seeds", f"must list >= 2 seeds unless smoke: true, got {list(self.seeds)}")

    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)


def load_matrix(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> tuple[MatrixConfig, Path]:
    """The matrix file + `key.path=value` overrides -> (validated MatrixConfig, resolved base config path)."""
    from .config import load_config_dict  # `extends: other.yaml`, deep-merged as for training configs

    path = Path(path)
    data = apply_overrides(load_config_dict(path), list(overrides))
    try:
        cfg = build(MatrixConfig, data)
    except ConfigError as err:
        raise ConfigError(f"{path}{' (with the overrides)' if overrides else ''}: {err}") from err
    base = (path.parent / cfg.base_config).resolve()
    if not base.is_file():
        raise ConfigError(f"{path}: base_config: no such file {base}")
    resolved = {}
    for name, pre in cfg.pretrain.items():  # relative to the matrix file, like base_config
        config = (path.parent / pre.config).resolve()
        if not config.is_file():
            raise ConfigError(f"{path}: pretrain.{name}.config: no such file {config}")
        resolved[name] = replace(pre, config=str(config))
    return replace(cfg, pretrain=resolved), base
