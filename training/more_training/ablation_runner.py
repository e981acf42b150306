"""Runs an ablation matrix: for each (variant, seed) train with `more-train`, evaluate with `more-sim eval`.

Each run lives in OUT/runs/<variant>/seed-<s>/ (a shared initialisation, `pretrain`, in
OUT/pretrain/<name>/seed-<s>/, the same without eval/):
    train/               the more-train run directory (checkpoints, metrics, train_config.yaml)
    eval/<split>-seed<e>/  more-sim eval's results.md/.png/.json + ablation_eval.json (fingerprint, wall time)
    logs/                train.log and one log per evaluation (every launch appends)
    state.json           the training fingerprint and accumulated training wall time
    result.json          the run's record (status, config, samples, minutes, per-task counts, grounding)

Resumability (fingerprints are sha256 prefixes):
- train_fp = the resolved TrainConfig's own fingerprint (every trajectory-relevant field, seed and
  max_steps included) + the sha256 of each dataset's index.json (which lists every shard's sha256);
  a row that starts from a pretrain run adds that run's train_fp;
- eval_fp = train_fp + what is measured (split, evaluation seed, tasks, episodes, grounding, extra options).
A run whose result.json is "done" with the current fingerprints is skipped. A run whose final checkpoint
(step max_steps) exists and verifies is never trained again; one with an earlier checkpoint is resumed by
more-train itself (exact resume); an evaluation with a matching ablation_eval.json is not repeated. A run
directory trained under another train_fp is refused (recorded as failed, nothing deleted).

Every subprocess gets SIGTERM when this process dies (PR_SET_PDEATHSIG), so a killed runner leaves no
orphaned training; more-train's periodic checkpoints make the next invocation resume it.

With `jobs` > 1, that many runs go at once (one thread each, waiting on its subprocesses): on a machine with N
cores and one-thread training, N runs in parallel finish a matrix ~N times sooner than one after the other.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from more_common.typed_config import ConfigError, apply_overrides

from .ablation_config import MatrixConfig
from .ablation_report import write_atomically
from .config import OptimConfig, TrainConfig, load_config, load_config_dict

RESULT_FILE = "result.json"
STATE_FILE = "state.json"
EVAL_MARK = "ablation_eval.json"
NOT_AVAILABLE = "not available"
_PR_SET_PDEATHSIG = 1


class MissingDataError(RuntimeError):
    """A dataset of the matrix has no index.json (run `prepare` first)."""


class _StopRequestedError(Exception):
    """The runner is stopping (SIGTERM / Ctrl-C): a run in flight writes no record (its checkpoints stay)."""


def _find_prctl() -> Any:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# looked up once here: loading a library between fork and exec, with other threads running, can deadlock
_PRCTL = _find_prctl()


def _die_with_parent() -> None:  # preexec_fn: runs in the child between fork and exec
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stop_child(proc: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM, as the parallel runner's stop does (more-train's launcher forwards it to its workers), then
    SIGKILL if the child has not ended after `grace_s`."""
    with contextlib.suppress(OSError):
        proc.terminate()
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _sha(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: Any) -> None:
    """Atomic: a reader never sees half a file (the record decides what is skipped next time)."""
    text = json.dumps(obj, indent=2) + "\n"
    write_atomically(path, lambda tmp: tmp.write_text(text))


def dataset_digest(path: str | Path) -> str:
    index = Path(path) / "index.json"
    try:
        return hashlib.sha256(index.read_bytes()).hexdigest()
    except OSError as err:
        raise MissingDataError(f"dataset {path}: cannot read {index} ({err.strerror or err})") from err


@dataclass
class EvalUnit:
    split: str
    seed: int
    out: Path
    fingerprint: str

    @property
    def key(self) -> str:
        return f"{self.split}-seed{self.seed}"


@dataclass
class RunPlan:
    """One (variant, seed) of the matrix, fully resolved before anything runs."""

    variant: str
    label: str
    seed: int
    root: Path
    base: Path
    overrides: list[str]
    train_config: TrainConfig
    max_steps: int
    samples: int
    train_fp: str
    evals: list[EvalUnit] = field(default_factory=list)
    kind: str = "row"  # "row" of the table, or "pretrain": a shared initialisation (trained, not evaluated)
    needs: list[RunPlan] = field(default_factory=list)  # plans whose final checkpoint this one starts from

    @property
    def name(self) -> str:
        return f"{self.variant}/seed-{self.seed}"

    @property
    def train_dir(self) -> Path:
        return self.root / "train"

    @property
    def final_checkpoint(self) -> Path:
        return self.train_dir / "checkpoints" / f"step-{self.max_steps:08d}"

    @property
    def eval_fps(self) -> dict[str, str]:
        return {u.key: u.fingerprint for u in self.evals}


def _max_steps(samples: int, resolved: dict[str, Any], field_name: str) -> int:
    """Optimizer steps for `samples` (the matrix field `field_name`) at the resolved config's batch size."""
    optim = resolved.get("optim") or {}
    batch = optim.get("batch_size", OptimConfig.batch_size) if isinstance(optim, dict) else None
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ConfigError(f"optim.batch_size must be an int >= 1, got {batch!r}")
    if samples % batch:
        raise ConfigError(
            f"{field_name}: {samples} is not a whole number of batches of {batch}; "
            "every run of a kind must see exactly the same samples"
        )
    return samples // batch


def plan_pretrain(cfg: MatrixConfig, name: str, seed: int, digests: dict[str, str]) -> RunPlan:
    """The shared initialisation `name` for one seed (OUT/pretrain/<name>/seed-<s>)."""
    pre = cfg.pretrain[name]
    where = f"pretrain {name}, seed {seed}"
    root = Path(cfg.out_dir) / "pretrain" / name / f"seed-{seed}"
    config = Path(pre.config)
    overrides = [
        f"data.train={json.dumps([cfg.datasets[pre.dataset].out])}",
        *(f"{key}={seed}" for key in cfg.seed_keys),
        *pre.overrides,
    ]
    try:
        resolved = apply_overrides(load_config_dict(config), overrides)
        max_steps = _max_steps(pre.samples, resolved, f"pretrain.{name}.samples")
        overrides += [f"optim.max_steps={max_steps}", f"run.out_dir={root / 'train'}", "run.progress=false"]
        tc = load_config(config, overrides)
    except ConfigError as err:
        raise ConfigError(f"{where}: {err}") from err
    train_fp = _sha({"config": tc.fingerprint(), "data": [digests[pre.dataset]]})
    return RunPlan(f"pretrain-{name}", f"pretrain {name}", seed, root, config, overrides, tc, max_steps,
                   pre.samples, train_fp, kind="pretrain")  # fmt: skip


def plan_runs(cfg: MatrixConfig, base: Path, grounding: bool) -> list[RunPlan]:
    """Every run's overrides, resolved TrainConfig and fingerprints, each seed's shared initialisations
    (`pretrain`) before its rows; ConfigError names the variant and seed, MissingDataError a dataset without
    index.json."""
    out = Path(cfg.out_dir)
    base_dict = load_config_dict(base)
    digests = {name: dataset_digest(ds.out) for name, ds in cfg.datasets.items()}
    plans = []
    # seed-major: every row's first seed before any row's second, so a matrix stopped halfway is a whole table
    for seed in cfg.seeds:
        used = [name for name in cfg.pretrain if any(v.init == name for v in cfg.variants.values())]
        pretrained = {name: plan_pretrain(cfg, name, seed, digests) for name in used}
        plans += pretrained.values()
        for vname, v in cfg.variants.items():
            mix = cfg.mixes[v.mix]
            data_paths = [cfg.datasets[d].out for d in mix.datasets]
            fraction = "null" if mix.suboptimal_fraction is None else repr(mix.suboptimal_fraction)
            where = f"variant {vname}, seed {seed}"
            root = out / "runs" / vname / f"seed-{seed}"
            overrides = [
                f"data.train={json.dumps(data_paths)}",
                f"data.suboptimal_fraction={fraction}",
                *(f"{key}={seed}" for key in cfg.seed_keys),
                *cfg.train_overrides,
                *v.overrides,
            ]
            init = pretrained[v.init] if v.init else None
            if init is not None:
                overrides.append(f"init.init_from={init.final_checkpoint}")
            try:
                resolved = apply_overrides(base_dict, overrides)
                max_steps = _max_steps(cfg.budget.samples, resolved, "budget.samples")
                overrides += [f"optim.max_steps={max_steps}", f"run.out_dir={root / 'train'}", "run.progress=false"]
                tc = load_config(base, overrides)
            except ConfigError as err:
                raise ConfigError(f"{where}: {err}") from err
            parts: dict[str, Any] = {"config": tc.fingerprint(), "data": [digests[d] for d in mix.datasets]}
            if init is not None:
                # the row trains the checkpoint's model whatever its own `model` says: they must agree
                if tc.model.to_dict() != init.train_config.model.to_dict():
                    raise ConfigError(
                        f"{where}: its model settings differ from those of pretrain {v.init} it starts from "
                        "(give both the same model overrides)"
                    )
                parts["init"] = init.train_fp
            train_fp = _sha(parts)
            plan = RunPlan(
                vname, v.label or vname, seed, root, base, overrides, tc, max_steps, cfg.budget.samples, train_fp,
                needs=[init] if init is not None else [],
            )  # fmt: skip
            for split in cfg.eval.splits:
                for eseed in cfg.eval.seeds:
                    measured = {
                        "train_fp": train_fp,
                        "split": split,
                        "seed": eseed,
                        "tasks": list(cfg.eval.task_list()),
                        "episodes_per_task": cfg.eval.episodes_per_task,
                        "grounding": list(cfg.eval.grounding_args) if grounding else None,
                        "extra_args": list(cfg.eval.extra_args),
                    }
                    plan.evals.append(EvalUnit(split, eseed, root / "eval" / f"{split}-seed{eseed}", _sha(measured)))
            plans.append(plan)
    return plans


def grounding_available(python: str = sys.executable) -> bool:
    """Whether this installation's `more-sim eval` offers the instruction-swap test (`--grounding`)."""
    proc = subprocess.run(
        [python, "-m", "more_sim.cli", "eval", "--help"], capture_output=True, text=True, timeout=300, check=False
    )
    return proc.returncode == 0 and "--grounding" in proc.stdout


def checkpoint_steps(plan: RunPlan) -> list[int]:
    ckpts = plan.train_dir / "checkpoints"
    if not ckpts.is_dir():
        return []
    return sorted(int(p.name[5:]) for p in ckpts.glob("step-*") if p.name[5:].isdigit())


def final_checkpoint_ok(plan: RunPlan) -> bool:
    if not plan.final_checkpoint.is_dir():
        return False
    from .checkpoint import CheckpointError, verify

    try:
        verify(plan.final_checkpoint)
    except CheckpointError:
        return False
    return True


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").rstrip().splitlines()[-lines:])


class EvalError(RuntimeError):
    """`more-sim eval` did not produce what its interface promises (the message says what is missing)."""


def parse_eval(out_dir: Path, stdout: str, tasks: Sequence[str], episodes: int, grounding: bool) -> dict[str, Any]:
    """Per-task counts from OUT/results.json, the rates line from stdout, the grounding test if it ran."""
    lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
    try:
        rates = json.loads(lines[-1]) if lines else None
    except ValueError:
        rates = None
    if not isinstance(rates, dict):
        raise EvalError(f"more-sim eval printed no JSON line of rates (stdout: {stdout.strip()[-200:]!r})")
    result = _read_json(out_dir / "results.json")
    if not isinstance(result, dict) or not isinstance(result.get("details"), dict):
        raise EvalError(f"{out_dir / 'results.json'} is missing or has no details")
    counts = {}
    for task in tasks:
        d = result["details"].get(task)
        if not isinstance(d, dict) or d.get("episodes") != episodes:
            raise EvalError(f"{out_dir / 'results.json'}: task {task} lacks {episodes} evaluated episodes ({d!r})")
        counts[task] = {"successes": int(d["successes"]), "episodes": int(d["episodes"]), "rate": d["rate"]}
        if abs(float(rates.get(task, math.nan)) - d["rate"]) > 1e-9:
            raise EvalError(f"more-sim eval's JSON line and {out_dir / 'results.json'} disagree on {task}")
    parsed: dict[str, Any] = {"tasks": counts, "rates": rates}
    parsed["grounding"] = grounding_record(result) if grounding else NOT_AVAILABLE
    return parsed


def grounding_record(result: dict[str, Any]) -> dict[str, Any] | str:
    """The instruction-swap test of one evaluation: per task and 'all', hits / decisions / states when the
    report has them (pooled later), else the rates alone."""
    details = (result.get("grounding_details") or {}).get("details")
    if isinstance(details, dict):
        keep = ("hits", "decisions", "states", "rate", "chance")
        return {k: {f: v.get(f) for f in keep} for k, v in details.items() if isinstance(v, dict)}
    rates = (result.get("rates") or {}).get("grounding")
    chance = (result.get("rates") or {}).get("grounding_chance")
    if isinstance(rates, dict):
        return {k: {"rate": r, "chance": (chance or {}).get(k)} for k, r in rates.items()}
    return NOT_AVAILABLE


def pool_grounding(units: Sequence[dict[str, Any] | str]) -> dict[str, Any] | str:
    """Sum hits, decisions and states over evaluations ('all' row); rate = hits / decisions,
    chance = states / decisions (the grounding test's definitions)."""
    rows = [u["all"] for u in units if isinstance(u, dict) and isinstance(u.get("all"), dict)]
    if not rows:
        return NOT_AVAILABLE
    if all(isinstance(r.get("decisions"), int) and isinstance(r.get("hits"), int) for r in rows):
        hits = sum(r["hits"] for r in rows)
        decisions = sum(r["decisions"] for r in rows)
        states = sum(int(r.get("states") or 0) for r in rows)
        return {
            "hits": hits,
            "decisions": decisions,
            "states": states,
            "rate": hits / decisions if decisions else None,
            "chance": states / decisions if decisions else None,
        }
    rates = [r["rate"] for r in rows if isinstance(r.get("rate"), (int, float))]
    chances = [r["chance"] for r in rows if isinstance(r.get("chance"), (int, float))]
    return {
        "rate": sum(rates) / len(rates) if rates else None,
        "chance": sum(chances) / len(chances) if chances else None,
    }


class Runner:
    """Executes the plans, `jobs` at a time (1: one after the other); `log` receives one progress line at a time."""

    def __init__(
        self,
        cfg: MatrixConfig,
        plans: Sequence[RunPlan],
        grounding: bool,
        deadline: float | None = None,
        log: Callable[[str], None] = print,
        jobs: int = 1,
    ) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be >= 1, got {jobs}")
        self.cfg = cfg
        self.plans = list(plans)
        self.grounding = grounding
        self.deadline = deadline  # time.time() after which no training starts (a working block's end)
        self._log = log
        self.jobs = jobs
        self.python = sys.executable
        self.out_of_time = False
        self.launches = {"train": 0, "eval": 0}
        self._lock = threading.Lock()  # launches, children and log lines are shared by the job threads
        self._children: set[subprocess.Popen[str]] = set()
        self._stopping = False
        # a plan's record once its job ends; rows wait here for the pretrain runs they start from
        self._finished: dict[str, threading.Event] = {p.name: threading.Event() for p in self.plans}
        self._outcomes: dict[str, dict[str, Any]] = {}

    def log(self, text: str) -> None:
        with self._lock:
            self._log(text)

    def _count(self, kind: str) -> None:
        with self._lock:
            self.launches[kind] += 1

    # -- commands ----------------------------------------------------------------------------------
    def train_command(self, plan: RunPlan, max_time_s: float | None = None) -> list[str]:
        launcher = list(self.cfg.launcher) or [self.python, "-m", "more_training.cli"]
        extra = [f"run.max_time_s={max_time_s:.0f}"] if max_time_s else []
        return [*launcher, "--config", str(plan.base), *plan.overrides, *extra]

    def eval_command(self, plan: RunPlan, unit: EvalUnit) -> list[str]:
        e = self.cfg.eval
        cmd = [
            self.python, "-m", "more_sim.cli", "eval", "--policy", str(plan.final_checkpoint),
            "--tasks", ",".join(e.task_list()), "--episodes-per-task", str(e.episodes_per_task),
            "--split", unit.split, "--seed", str(unit.seed), "--out", str(unit.out), "--json",
            "--batch", str(e.batch), "--device", e.device, *e.extra_args,
        ]  # fmt: skip
        if self.grounding:
            cmd += ["--grounding", *e.grounding_args]
        return cmd

    # -- status ------------------------------------------------------------------------------------
    def status(self, plan: RunPlan) -> str:
        """done | stale | evaluate | resume at step N | new (what the next invocation will do)."""
        record = _read_json(plan.root / RESULT_FILE)
        if self._is_done(plan, record):
            return "done"
        if self._stale_reason(plan):
            return "stale"
        if final_checkpoint_ok(plan):
            return "evaluate"
        steps = checkpoint_steps(plan)
        return f"resume at step {steps[-1]}" if steps else "new"

    @staticmethod
    def _is_done(plan: RunPlan, record: Any) -> bool:
        return (
            isinstance(record, dict)
            and record.get("status") == "done"
            and record.get("train_fp") == plan.train_fp
            and record.get("eval_fps") == plan.eval_fps
        )

    def _stale_reason(self, plan: RunPlan) -> str | None:
        state = _read_json(plan.root / STATE_FILE)
        trained = bool(checkpoint_steps(plan))
        if trained and not isinstance(state, dict):
            return f"{plan.train_dir} holds checkpoints this tool did not record ({STATE_FILE} missing)"
        if trained and state.get("train_fp") != plan.train_fp:
            return (
                f"{plan.train_dir} was trained with another configuration or data (fingerprint "
                f"{state.get('train_fp')} != {plan.train_fp}): remove {plan.root} or use another out_dir"
            )
        return None

    # -- running -----------------------------------------------------------------------------------
    def run(self) -> list[dict[str, Any]]:
        """Every plan's record, in plan order. SIGTERM/Ctrl-C (KeyboardInterrupt) stops the runs in flight
        (their children get SIGTERM and their checkpoints stay) and propagates."""
        numbered = [(f"[{i}/{len(self.plans)}] {plan.name}", plan) for i, plan in enumerate(self.plans, 1)]
        if self.jobs == 1:
            return [self._run_one(plan, prefix) for prefix, plan in numbered]
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="ablation-run")
        try:
            futures = [pool.submit(self._run_one, plan, prefix) for prefix, plan in numbered]
            return [f.result() for f in futures]
        except BaseException:
            self._stop_children()
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_one(self, plan: RunPlan, prefix: str) -> dict[str, Any]:
        try:
            record = self._run_when_ready(plan, prefix)
            self._outcomes[plan.name] = record  # before the event: a waiting row reads it as soon as it wakes
        finally:
            self._finished[plan.name].set()
        return record

    def _run_when_ready(self, plan: RunPlan, prefix: str) -> dict[str, Any]:
        for need in plan.needs:
            status = self._wait_for(need)
            if status == "stopped":
                return self._base_record(plan, "not started", note="the runner was stopped")
            if status != "done":
                record = self._base_record(plan, "not started", note=f"it starts from {need.name}, which is {status}")
                _write_json(plan.root / RESULT_FILE, record)  # the table says why the row is empty
                return record
        if self.out_of_time or self._stopping:
            return self._base_record(plan, "not started", note="working-block time limit reached")
        try:
            record = self.execute(plan, prefix)
        except _StopRequestedError:
            return self._base_record(plan, "not started", note="the runner was stopped")
        except (OSError, subprocess.SubprocessError, ValueError, RuntimeError) as err:
            record = self._failed(plan, "runner", f"{type(err).__name__}: {err}")
        if record["status"] == "failed":
            self.log(f"{prefix}: FAILED ({record.get('stage')}): {record.get('error')}")
        return record

    def _wait_for(self, need: RunPlan) -> str:
        """The status of a plan this one starts from, once its job has ended (plans are submitted in order, so
        it is running or done before anything waits for it); one not in this invocation counts when done."""
        event = self._finished.get(need.name)
        if event is None:
            return "done" if self._is_done(need, _read_json(need.root / RESULT_FILE)) else "not run here"
        while not event.wait(timeout=1.0):
            if self._stopping:
                return "stopped"
        return str(self._outcomes.get(need.name, {}).get("status", "not started"))

    def _stop_children(self) -> None:
        """SIGTERM to every running child (more-train saves nothing extra: its periodic checkpoints stay)."""
        with self._lock:
            self._stopping = True
            children = list(self._children)
        for proc in children:
            with contextlib.suppress(OSError):
                proc.terminate()

    def execute(self, plan: RunPlan, prefix: str = "") -> dict[str, Any]:
        record = _read_json(plan.root / RESULT_FILE)
        if self._is_done(plan, record):
            self.log(f"{prefix}: done before, skipped")
            return record
        stale = self._stale_reason(plan)
        if stale:
            return self._failed(plan, "train", stale)
        if not final_checkpoint_ok(plan):
            outcome = self._train(plan, prefix)
            if outcome is not None:
                return outcome
        units = []
        for unit in plan.evals:
            parsed = self._evaluate(plan, unit, prefix)
            if isinstance(parsed, str):
                return self._failed(plan, "eval", parsed)
            units.append((unit, parsed))
        record = self._done_record(plan, units)
        _write_json(plan.root / RESULT_FILE, record)
        return record

    def _train(self, plan: RunPlan, prefix: str) -> dict[str, Any] | None:
        """Train (or resume) to the final checkpoint; a record when the run cannot be evaluated yet."""
        max_time_s = None
        if self.deadline is not None:
            max_time_s = self.deadline - time.time()
            if max_time_s < 60:
                self.out_of_time = True
                return self._base_record(plan, "not started", note="working-block time limit reached")
        state = self._state(plan)
        steps = checkpoint_steps(plan)
        start = "from scratch" if not plan.needs else "from " + " + ".join(n.name for n in plan.needs)
        self.log(
            f"{prefix}: training {'from step ' + str(steps[-1]) if steps else start} to step "
            f"{plan.max_steps} ({plan.samples} samples)"
        )
        state["launches"] += 1
        state["open_launch"] = time.time()
        _write_json(plan.root / STATE_FILE, state)
        log_path = plan.root / "logs" / "train.log"
        cmd = self.train_command(plan, max_time_s)
        rc, wall = self._launch(cmd, log_path, None)
        state["wall_s"] += wall
        state["open_launch"] = None
        _write_json(plan.root / STATE_FILE, state)
        self._count("train")
        if rc != 0:
            return self._failed(plan, "train", f"more-train exit {rc}: {_tail(log_path, 3)}")
        if not final_checkpoint_ok(plan):
            steps = checkpoint_steps(plan)
            if max_time_s is not None:
                self.out_of_time = True
                note = f"working-block time limit reached at step {steps[-1] if steps else 0}: run again to resume"
                record = self._base_record(plan, "incomplete", note=note)
                _write_json(plan.root / RESULT_FILE, record)
                return record
            return self._failed(plan, "train", f"more-train ended without {plan.final_checkpoint}")
        self.log(f"{prefix}: trained in {wall / 60:.1f} min")
        return None

    def _state(self, plan: RunPlan, write: bool = True) -> dict[str, Any]:
        """state.json; the wall time of a launch that was killed (never closed) is added up to the last thing it
        wrote (metrics or a checkpoint), and counted in `killed_launches` (`write`: and saved)."""
        state = _read_json(plan.root / STATE_FILE)
        if not isinstance(state, dict) or state.get("train_fp") != plan.train_fp:
            state = {"train_fp": plan.train_fp, "wall_s": 0.0, "launches": 0, "killed_launches": 0}
        opened = state.get("open_launch")
        if isinstance(opened, (int, float)):
            written = [plan.train_dir / "metrics.jsonl", *(plan.train_dir / "checkpoints").glob("step-*")]
            last = max((p.stat().st_mtime for p in written if p.exists()), default=opened)
            state["wall_s"] += max(0.0, last - opened)
            state["killed_launches"] = state.get("killed_launches", 0) + 1
            state["open_launch"] = None
            if write:
                _write_json(plan.root / STATE_FILE, state)
        return state

    def _evaluate(self, plan: RunPlan, unit: EvalUnit, prefix: str) -> dict[str, Any] | str:
        """Parsed evaluation of one split x seed (reused when its fingerprint matches); an error text otherwise."""
        e = self.cfg.eval
        mark = _read_json(unit.out / EVAL_MARK)
        if isinstance(mark, dict) and mark.get("fingerprint") == unit.fingerprint:
            try:
                parsed = parse_eval(
                    unit.out, mark.get("stdout", ""), e.task_list(), e.episodes_per_task, self.grounding
                )
                return {**parsed, "wall_s": mark.get("wall_s", 0.0)}
            except EvalError:
                pass  # evaluate again
        self.log(f"{prefix}: evaluating {unit.split} split, seed {unit.seed}, {e.episodes_per_task} episodes/task")
        log_path = plan.root / "logs" / f"eval-{unit.key}.log"
        env = {**os.environ, "OMP_NUM_THREADS": str(e.threads), "MKL_NUM_THREADS": str(e.threads)}
        (unit.out / EVAL_MARK).unlink(missing_ok=True)
        rc, wall, stdout = self._launch(self.eval_command(plan, unit), log_path, env, capture=True, timeout=e.timeout_s)
        self._count("eval")
        if rc != 0:
            return f"more-sim eval exit {rc}: {_tail(log_path, 3)}"
        try:
            parsed = parse_eval(unit.out, stdout, e.task_list(), e.episodes_per_task, self.grounding)
        except EvalError as err:
            return str(err)
        _write_json(unit.out / EVAL_MARK, {"fingerprint": unit.fingerprint, "stdout": stdout, "wall_s": wall})
        return {**parsed, "wall_s": wall}

    def _launch(
        self,
        cmd: list[str],
        log_path: Path,
        env: dict[str, str] | None,
        capture: bool = False,
        timeout: float | None = None,
    ) -> Any:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "a") as log:
            log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
            log.flush()
            started = time.monotonic()
            with self._lock:
                if self._stopping:
                    raise _StopRequestedError
                proc = subprocess.Popen(
                    cmd,
                    stdout=subprocess.PIPE if capture else log,
                    stderr=log,
                    text=True,
                    env=env,
                    preexec_fn=_die_with_parent,
                )
                self._children.add(proc)
            try:
                stdout, _ = proc.communicate(timeout=timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                proc.kill()
                stdout, _ = proc.communicate()
                stdout, rc = "", 124
                log.write(f"timed out after {timeout} s\n")
            except BaseException:  # KeyboardInterrupt (SIGTERM) in the serial runner: no orphan either way
                _stop_child(proc)
                raise
            finally:
                with self._lock:
                    self._children.discard(proc)
            wall = time.monotonic() - started
        # a child ended by SIGINT/SIGTERM was stopped (Ctrl-C reaches the whole process group, possibly before
        # this runner's own handler runs): not a failure of its run, so nothing is recorded
        if self._stopping or rc in (-signal.SIGINT, -signal.SIGTERM):
            raise _StopRequestedError
        if capture:
            return rc, wall, stdout or ""
        return rc, wall

    # -- records -----------------------------------------------------------------------------------
    def _base_record(self, plan: RunPlan, status: str, **extra: Any) -> dict[str, Any]:
        state = self._state(plan, write=False) if (plan.root / STATE_FILE).exists() else {}
        tc = plan.train_config
        return {
            "status": status,
            "variant": plan.variant,
            "label": plan.label,
            "seed": plan.seed,
            "train_fp": plan.train_fp,
            "eval_fps": plan.eval_fps,
            "samples": plan.samples,
            "steps": plan.max_steps,
            "batch_size": tc.optim.batch_size,
            "objective": tc.objective.kind,
            "train_minutes": round(float(state.get("wall_s", 0.0)) / 60, 3),
            "train_launches": int(state.get("launches", 0)),
            "killed_launches": int(state.get("killed_launches", 0)),
            "overrides": plan.overrides,
            "base_config": str(plan.base),
            **extra,
        }

    def _failed(self, plan: RunPlan, stage: str, error: str) -> dict[str, Any]:
        record = self._base_record(plan, "failed", stage=stage, error=error)
        _write_json(plan.root / RESULT_FILE, record)
        return record

    def _done_record(self, plan: RunPlan, units: list[tuple[EvalUnit, dict[str, Any]]]) -> dict[str, Any]:
        if plan.kind == "pretrain":
            return self._base_record(
                plan, "done", checkpoint=str(plan.final_checkpoint), train_config=plan.train_config.to_dict()
            )
        evals: dict[str, Any] = {}
        for split in self.cfg.eval.splits:
            mine = [(u, p) for u, p in units if u.split == split]
            tasks = {}
            for task in self.cfg.eval.task_list():
                k = sum(p["tasks"][task]["successes"] for _, p in mine)
                n = sum(p["tasks"][task]["episodes"] for _, p in mine)
                tasks[task] = {"successes": k, "episodes": n, "rate": k / n}
            evals[split] = {
                "tasks": tasks,
                "average": sum(t["rate"] for t in tasks.values()) / len(tasks),
                "grounding": pool_grounding([p["grounding"] for _, p in mine]),
                "units": {u.key: p for u, p in mine},
            }
        eval_minutes = sum(p["wall_s"] for _, p in units) / 60
        return self._base_record(
            plan,
            "done",
            eval_minutes=round(eval_minutes, 3),
            checkpoint=str(plan.final_checkpoint),
            grounding_test="run" if self.grounding else NOT_AVAILABLE,
            eval=evals,
            train_config=plan.train_config.to_dict(),
        )
