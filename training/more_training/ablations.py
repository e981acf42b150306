"""`more-train ablations`: the paper's Table II as one resumable command (see docs/research.md).

    more-train ablations prepare --config training/configs/ablations.yaml      # the datasets (more-sim generate)
    more-train ablations run --config training/configs/ablations.yaml [--max-hours 1.8] [--only more,no_rl] [--jobs 2]
    more-train ablations status --config ...                                   # what `run` would do next
    more-train ablations report --config ...                                   # the table from finished runs

Any `key.path=value` after the options overrides the matrix file (e.g. budget.samples=2000000
out_dir=runs/ablations-gpu 'train_overrides=[run.device=cuda]' eval.device=cuda).

`run` trains every (variant, seed) with `more-train` and evaluates it with `more-sim eval` (subprocesses),
then writes OUT/table.md, OUT/table.png and OUT/results.json. Exit status: 0 every run done; 1 a run failed
(recorded; the others went on); 2 bad input (the matrix file, a variant's training config, missing data);
3 the working block's time limit stopped it (run the same command again to go on); 130 stopped by SIGTERM or
Ctrl-C (the same).
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from more_common.cli import OneLineArgumentParser, int_at_least

EXIT_FAILED, EXIT_BAD_INPUT, EXIT_OUT_OF_TIME, EXIT_STOPPED = 1, 2, 3, 130


def _positive_hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of hours > 0, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(
        prog="more-train ablations",
        description="Train and evaluate the Table II ablation matrix (resumable).",
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=("prepare", "run", "status", "report"))
    p.add_argument("--config", required=True, type=Path, help="the matrix YAML (training/configs/ablations*.yaml)")
    p.add_argument("--max-hours", type=_positive_hours, default=None, help="working-block limit: no training past it")
    p.add_argument("--only", default=None, help="comma-separated variant names to run (default: all)")
    p.add_argument(
        "--jobs", type=int_at_least(1), default=1,
        help="runs trained/evaluated at once (default 1); one per core with one-thread training",
    )  # fmt: skip
    p.add_argument("overrides", nargs="*", help="key.path=value overrides of the matrix file")
    return p


def _datasets_summary(cfg: Any) -> list[str]:
    """Transitions per dataset and kind, and each mix's share of sub-optimal transitions on disk."""
    from more_common.dataset import EpisodeDataset

    kinds: dict[str, tuple[int, int]] = {}
    lines = ["dataset | episodes | expert transitions | sub-optimal transitions"]
    for name, ds in cfg.datasets.items():
        d = EpisodeDataset(ds.out, verify_checksums=False)
        experts = sum(s.experts for s in d.shards)
        if experts == len(d):
            expert_t, sub_t = d.num_transitions, 0
        elif experts == 0:
            expert_t, sub_t = 0, d.num_transitions
        else:  # a mixed dataset: count episode by episode
            expert_t = sub_t = 0
            for ep in d.iter_episodes():
                expert_t += ep.length if ep.expert else 0
                sub_t += 0 if ep.expert else ep.length
        kinds[name] = (expert_t, sub_t)
        lines.append(f"{name} ({ds.out}) | {len(d)} | {expert_t} | {sub_t}")
    for name, mix in cfg.mixes.items():
        e = sum(kinds[d][0] for d in mix.datasets)
        s = sum(kinds[d][1] for d in mix.datasets)
        share = s / (e + s) if e + s else 0.0
        stream = "as stored" if mix.suboptimal_fraction is None else f"{mix.suboptimal_fraction:.3f}"
        lines.append(f"mix {name}: on disk {e} expert : {s} sub-optimal (share {share:.3f}); training stream {stream}")
    return lines


def _generated_like(meta: dict[str, Any], ds: Any) -> list[str]:
    """The fields where a stored dataset's generator settings differ from the spec."""
    from more_sim.config import SimConfig
    from more_sim.splits import TASKS

    want = {
        "seed": ds.seed,
        "split": ds.split,
        "suboptimal_fraction": ds.suboptimal_fraction,
        "suboptimal_failures_only": ds.failures_only,
        "tasks": list(TASKS) if ds.tasks == ("all",) else list(ds.tasks),
    }
    want.update(_extra_settings(ds.extra_args))
    config = meta.get("config") or {}
    have = {
        **meta,
        "suboptimal_failures_only": meta.get("suboptimal_failures_only", False),
        "start": meta.get("start", "split"),
        "name_each": meta.get("name_each", False),
        "image_size": f"{config.get('image_height')}x{config.get('image_width')}",
        "decision_hz": float(config.get("decision_hz", SimConfig.decision_hz)),
    }
    diffs = [f"{k} {have.get(k)!r} != {v!r}" for k, v in want.items() if have.get(k) != v]
    summary = meta.get("summary") or {}
    # `--episodes` plans scenes: with --name-each one scene becomes several episodes, with failures_only the
    # successes are dropped; older datasets record no scene count
    planned = summary.get("scenes", summary.get("episodes", 0) + summary.get("dropped_suboptimal_successes", 0))
    if planned != ds.episodes:
        diffs.append(f"episodes planned {planned} != {ds.episodes}")
    return diffs


def _extra_settings(extra_args: Sequence[str]) -> dict[str, Any]:
    """The generator settings that `extra_args` fixes and index.json records (start, name_each, image size,
    decision rate), parsed as `more-sim generate` parses them, defaults included."""
    from more_sim.cli import _rate, _size
    from more_sim.config import SimConfig

    p = OneLineArgumentParser(add_help=False)
    p.add_argument("--start", default="split")
    p.add_argument("--name-each", action="store_true")
    p.add_argument("--image-size", type=_size, default=(SimConfig.image_height, SimConfig.image_width))
    p.add_argument("--decision-hz", type=_rate, default=SimConfig.decision_hz)
    known, _ = p.parse_known_args(list(extra_args))
    h, w = known.image_size
    return {
        "start": known.start,
        "name_each": known.name_each,
        "image_size": f"{h}x{w}",
        "decision_hz": known.decision_hz,
    }


def _index_meta(index: Path, name: str) -> dict[str, Any]:
    from more_common.typed_config import ConfigError

    try:
        data = json.loads(index.read_text())
    except ValueError as err:
        raise ConfigError(f"datasets.{name}: {index} is not valid JSON ({err})") from None
    meta = data.get("meta") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(meta, (dict, type(None))):
        raise ConfigError(f"datasets.{name}: {index} is not a dataset index (no 'meta' mapping)")
    return meta or {}


def prepare(cfg: Any, log: Any = print) -> int:
    from more_common.typed_config import ConfigError

    from .ablation_runner import MissingDataError, _die_with_parent

    for name, ds in cfg.datasets.items():
        index = Path(ds.out) / "index.json"
        if ds.external:
            if not index.is_file():
                raise MissingDataError(f"datasets.{name}: external dataset {ds.out} has no index.json")
            log(f"{name}: external, found")
            continue
        if index.is_file():
            meta = _index_meta(index, name)
            diffs = _generated_like(meta, ds)
            if diffs:
                raise ConfigError(
                    f"datasets.{name}: {ds.out} holds a dataset generated with other settings ({'; '.join(diffs)}): "
                    "remove it or choose another out"
                )
            log(f"{name}: {ds.out} exists with these settings, kept")
            continue
        tasks = "all" if ds.tasks == ("all",) else ",".join(ds.tasks)
        cmd = [
            sys.executable, "-m", "more_sim.cli", "generate", "--tasks", tasks, "--episodes", str(ds.episodes),
            "--out", ds.out, "--split", ds.split, "--seed", str(ds.seed),
            "--suboptimal-fraction", str(ds.suboptimal_fraction), "--quiet",
        ]  # fmt: skip
        if ds.failures_only:
            cmd.append("--suboptimal-failures-only")
        if ds.workers:
            cmd += ["--workers", str(ds.workers)]
        cmd += list(ds.extra_args)
        log(f"{name}: generating {ds.episodes} episodes into {ds.out}: {' '.join(cmd[2:])}")
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, preexec_fn=_die_with_parent, check=False)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
            log(f"{name}: more-sim generate failed (exit {proc.returncode}): {last}")
            return EXIT_FAILED
        log(f"{name}: done in {(time.monotonic() - started) / 60:.1f} min")
    from more_common.dataset import DatasetError

    try:
        summary = _datasets_summary(cfg)
    except DatasetError as err:
        raise ConfigError(f"datasets: {err}") from None
    for line in summary:
        log(line)
    return 0


def _records(plans: Sequence[Any], runner: Any) -> list[dict[str, Any]]:
    """Each plan's current record; a 'done' record of other fingerprints counts as stale."""
    from .ablation_runner import RESULT_FILE, _read_json

    out = []
    for plan in plans:
        rec = _read_json(plan.root / RESULT_FILE)
        if not isinstance(rec, dict):
            rec = runner._base_record(plan, "not started")
        elif rec.get("status") == "done" and not runner._is_done(plan, rec):
            rec = runner._base_record(plan, "stale", note="finished under other settings: `run` redoes what changed")
        elif rec.get("train_fp") != plan.train_fp:  # e.g. an old failure: not this configuration's outcome
            rec = runner._base_record(plan, "stale", note="recorded under other settings: `run` redoes it")
        out.append(rec)
    return out


def _lock(out: Path) -> Any:
    """An exclusive lock on OUT/run.lock for this process's lifetime (None: another run holds it)."""
    import fcntl

    out.mkdir(parents=True, exist_ok=True)
    f = open(out / "run.lock", "a")  # noqa: SIM115 (held open until the process exits)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    return f


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_intermixed_args(argv)
    from more_common.errors import one_line
    from more_common.typed_config import ConfigError

    from .ablation_config import load_matrix
    from .ablation_report import write_report
    from .ablation_runner import MissingDataError, Runner, grounding_available, plan_runs

    def log(text: str) -> None:
        print(text, flush=True)

    try:
        cfg, base = load_matrix(args.config, args.overrides)
        if args.action == "prepare":
            return prepare(cfg, log)
        grounding = False
        if cfg.eval.grounding != "off":
            grounding = grounding_available()
            if not grounding and cfg.eval.grounding == "required":
                raise ConfigError("eval.grounding: required, but this more-sim eval has no --grounding option")
        plans = plan_runs(cfg, base, grounding)
        if args.only:
            names = [n.strip() for n in args.only.split(",") if n.strip()]
            bad = [n for n in names if n not in cfg.variants]
            if bad:
                raise ConfigError(f"--only: unknown variant(s) {bad}; known: {list(cfg.variants)}")
            needed = {need.name for p in plans if p.variant in names for need in p.needs}
            selected = [p for p in plans if p.variant in names or p.name in needed]
        else:
            selected = plans
    except (ConfigError, MissingDataError, OSError) as err:
        print(f"more-train ablations: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    deadline = time.time() + args.max_hours * 3600 if args.max_hours else None
    runner = Runner(cfg, selected, grounding, deadline, log, jobs=args.jobs)
    log(f"grounding test: {'run with every evaluation' if grounding else 'not available'}")
    if args.action == "status":
        for plan in plans:
            log(f"{plan.name}: {runner.status(plan)}")
        return 0
    if args.action == "run":
        lock = _lock(Path(cfg.out_dir))
        if lock is None:
            print(f"more-train ablations: another `run` is using {cfg.out_dir} (run.lock is held)", file=sys.stderr)
            return EXIT_BAD_INPUT

        def _terminate(signum: int, frame: Any) -> None:
            # once: a second signal must not interrupt the runner while it stops its children
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            raise KeyboardInterrupt  # the runner stops its children; checkpoints stay for the resume

        previous = {sig: signal.signal(sig, _terminate) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            runner.run()
        except KeyboardInterrupt:
            print(
                "more-train ablations: stopped (SIGTERM or Ctrl-C); the runs in flight keep their checkpoints: "
                "run the same command again to resume",
                file=sys.stderr,
            )
            return EXIT_STOPPED
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    records = _records(plans, runner)
    rows = [r for r, p in zip(records, plans, strict=True) if p.kind == "row"]
    paths = write_report(cfg, rows, cfg.out_dir)
    log(f"wrote {', '.join(str(p) for p in paths.values())}")
    log(f"launched: {runner.launches['train']} training, {runner.launches['eval']} evaluation processes")
    for r, p in zip(records, plans, strict=True):
        if p.kind == "pretrain":
            log(f"{p.name} (shared initialisation): {r['status']}, {r.get('train_minutes', 0):.1f} min of training")
    mine = [r for r, p in zip(records, plans, strict=True) if p in selected]
    if args.action == "report":
        return 0
    if any(r["status"] == "failed" for r in mine):
        return EXIT_FAILED
    if runner.out_of_time or any(r["status"] != "done" for r in mine):
        return EXIT_OUT_OF_TIME
    return 0


if __name__ == "__main__":
    sys.exit(main())
