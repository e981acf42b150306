"""The ablation table: per-cell success with 95 % intervals, the paper's claims as differences, a bar plot.

Statistics (see docs/research.md):
- a cell (variant x split x task) pools every episode of every finished seed and evaluation seed:
  rate = successes / episodes, Wilson 95 % interval. With 2-3 seeds a t-interval over seeds is either
  uselessly wide (t = 12.7 at 1 degree of freedom) or, worse, narrow by luck; the pooled binomial interval
  measures the evaluation noise honestly and the per-seed rates are shown beside it for the training noise;
- the average is the unweighted mean over tasks (the paper's); every task of a cell has the same number of
  episodes, so it equals the pooled proportion over all the cell's episodes, and Wilson's interval on those
  pooled counts is conservative (tasks differ in difficulty: stratified variance <= binomial variance);
- a claim "A beats B" is the difference of the two pooled averages with Newcombe's hybrid score interval,
  over the seeds both rows finished (a seed only one row has would mix seed noise into the difference):
  reproduced when the interval lies above 0, reversed when below, not resolved otherwise; the number of seeds
  in which A's average beats B's (same seed number) is shown beside it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .ablation_config import PAPER_ROWS, MatrixConfig
from .ablation_stats import newcombe, wilson

TASK_TITLES = {
    "distinguish": "Distinguish",
    "go_to": "Go to",
    "go_through": "Go through",
    "go_avoid": "Go avoid",
    "crawl": "Crawl",
    "unload": "Unload",
}
SPLIT_TITLES = {"id": "In distribution (id)", "ood": "Out of distribution (ood)"}


def _cell(pairs: Sequence[tuple[int, int]], per_seed: dict[int, float]) -> dict[str, Any]:
    k = sum(a for a, _ in pairs)
    n = sum(b for _, b in pairs)
    lo, hi = wilson(k, n)
    return {"successes": k, "episodes": n, "rate": k / n if n else None, "ci95": [lo, hi], "per_seed": per_seed}


def aggregate(cfg: MatrixConfig, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Cells, claims and the run list from the per-run records (only status 'done' counts)."""
    tasks = list(cfg.eval.task_list())
    done = [r for r in records if r.get("status") == "done"]
    cells: dict[str, Any] = {}
    runs_of: dict[str, list[dict[str, Any]]] = {}
    for vname, v in cfg.variants.items():
        runs = sorted((r for r in done if r["variant"] == vname), key=lambda r: r["seed"])
        runs_of[vname] = runs
        row: dict[str, Any] = {"label": v.label or vname, "paper": v.paper, "seeds": [r["seed"] for r in runs]}
        for split in cfg.eval.splits:
            if not runs:
                row[split] = None
                continue
            entry: dict[str, Any] = {}
            for task in tasks:
                pairs = [
                    (r["eval"][split]["tasks"][task]["successes"], r["eval"][split]["tasks"][task]["episodes"])
                    for r in runs
                ]
                entry[task] = _cell(pairs, {r["seed"]: k / n for r, (k, n) in zip(runs, pairs, strict=True)})
            pooled = [
                (
                    sum(r["eval"][split]["tasks"][t]["successes"] for t in tasks),
                    sum(r["eval"][split]["tasks"][t]["episodes"] for t in tasks),
                )
                for r in runs
            ]
            entry["average"] = _cell(pooled, {r["seed"]: r["eval"][split]["average"] for r in runs})
            entry["average"]["rate"] = sum(entry[t]["rate"] for t in tasks) / len(tasks)
            entry["grounding"] = _pool_grounding_over_seeds([r["eval"][split].get("grounding") for r in runs])
            row[split] = entry
        row["samples"] = runs[0]["samples"] if runs else None
        row["train_minutes"] = [r.get("train_minutes") for r in runs]
        row["eval_minutes"] = [r.get("eval_minutes") for r in runs]
        cells[vname] = row
    claims = []
    for c in cfg.claims:
        for split in cfg.eval.splits:
            a, b = cells[c.better].get(split), cells[c.worse].get(split)
            entry = {"text": c.text, "better": c.better, "worse": c.worse, "split": split}
            # only the seeds both rows finished: a half-run matrix must not read seed-to-seed noise as an effect
            common = sorted(set(a["average"]["per_seed"]) & set(b["average"]["per_seed"])) if a and b else []
            if not common:
                claims.append({**entry, "verdict": "not measured"})
                continue
            ka, na = _split_totals(runs_of[c.better], split, tasks, common)
            kb, nb = _split_totals(runs_of[c.worse], split, tasks, common)
            d, lo, hi = newcombe(ka, na, kb, nb)
            wins = sum(a["average"]["per_seed"][s] > b["average"]["per_seed"][s] for s in common)
            verdict = "reproduced" if lo > 0 else "reversed" if hi < 0 else "not resolved"
            claims.append(
                {
                    **entry,
                    "diff": d,
                    "ci95": [lo, hi],
                    "seeds": common,
                    "seeds_in_favour": [wins, len(common)],
                    "verdict": verdict,
                }
            )
    return {
        "name": cfg.name,
        "smoke": cfg.smoke,
        "budget_samples": cfg.budget.samples,
        "seeds": list(cfg.seeds),
        "eval": {
            "tasks": tasks,
            "splits": list(cfg.eval.splits),
            "episodes_per_task": cfg.eval.episodes_per_task,
            "seeds": list(cfg.eval.seeds),
        },
        "cells": cells,
        "claims": claims,
        "runs": [
            {
                k: r.get(k)
                for k in (
                    "variant",
                    "seed",
                    "status",
                    "samples",
                    "steps",
                    "batch_size",
                    "objective",
                    "train_minutes",
                    "eval_minutes",
                    "stage",
                    "error",
                    "note",
                    "train_fp",
                )
            }
            for r in records
        ],
    }


def _split_totals(
    runs: Sequence[dict[str, Any]], split: str, tasks: Sequence[str], seeds: Sequence[int]
) -> tuple[int, int]:
    """Successes and episodes over every task of `split`, pooled over the runs of `seeds`."""
    chosen = [r["eval"][split]["tasks"] for r in runs if r["seed"] in seeds]
    return sum(t[task]["successes"] for t in chosen for task in tasks), sum(
        t[task]["episodes"] for t in chosen for task in tasks
    )


def _pool_grounding_over_seeds(items: Sequence[Any]) -> dict[str, Any] | str:
    rows = [g for g in items if isinstance(g, dict) and g.get("rate") is not None]
    if not rows:
        return "not available"
    if all(isinstance(g.get("decisions"), int) for g in rows):
        hits = sum(g["hits"] for g in rows)
        decisions = sum(g["decisions"] for g in rows)
        states = sum(g.get("states") or 0 for g in rows)
        lo, hi = wilson(hits, decisions)
        return {
            "hits": hits,
            "decisions": decisions,
            "rate": hits / decisions if decisions else None,
            "chance": states / decisions if decisions else None,
            "ci95": [lo, hi],
        }
    chances = [g["chance"] for g in rows if g.get("chance") is not None]
    return {
        "rate": sum(g["rate"] for g in rows) / len(rows),
        "chance": sum(chances) / len(chances) if chances else None,
    }


def _fmt(cell: dict[str, Any] | None, bold: bool = False) -> str:
    if not cell or cell.get("rate") is None:
        return "-"
    lo, hi = cell["ci95"]
    text = f"{cell['rate']:.2f} [{lo:.2f}, {hi:.2f}]"
    return f"**{text}**" if bold else text


def _seeds(cell: dict[str, Any]) -> str:
    return " / ".join(f"{v:.2f}" for _, v in sorted(cell["per_seed"].items()))


def _grounding(g: Any) -> str:
    if not isinstance(g, dict):
        return "not available"
    text = f"{g['rate']:.2f}"
    if g.get("chance") is not None:
        text += f" (chance {g['chance']:.2f})"
    return text


def markdown(agg: dict[str, Any]) -> str:
    tasks = agg["eval"]["tasks"]
    e = agg["eval"]
    lines = [f"# {agg['name']}", ""]
    if agg["smoke"]:
        lines += ["**SMOKE TEST: toy settings, not a result.**", ""]
    lines += [
        f"Budget per run: {agg['budget_samples']} training samples (optimizer steps x global batch), the same for "
        f"every variant; training seeds {agg['seeds']}. Evaluation: {e['episodes_per_task']} episodes per task per "
        f"evaluation seed {e['seeds']} per run; a task cell pools them over the finished seeds "
        f"(rate [Wilson 95 % interval]); average = mean over tasks; seeds = the average of each seed.",
        "",
    ]
    for split in e["splits"]:
        lines += [f"## {SPLIT_TITLES.get(split, split)}", ""]
        head = ["variant", *(TASK_TITLES.get(t, t) for t in tasks), "average", "seeds", "grounding", "paper avg"]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in agg["cells"].values():
            cell = row.get(split)
            paper = PAPER_ROWS.get(row["paper"] or "", {}).get("average")
            paper_text = f"{paper:.2f} ({row['paper']})" if paper is not None else ""
            if not cell:
                lines.append(f"| {row['label']} | " + " | ".join(["-"] * (len(head) - 2)) + f" | {paper_text} |")
                continue
            cols = [_fmt(cell[t]) for t in tasks]
            lines.append(
                f"| {row['label']} | " + " | ".join(cols) + f" | {_fmt(cell['average'], bold=True)} | "
                f"{_seeds(cell['average'])} | {_grounding(cell['grounding'])} | {paper_text} |"
            )
        if split == "id":
            for name in ("MoRE", "QUART"):
                paper = PAPER_ROWS[name]
                cols = [f"{paper[t]:.2f}" if t in paper else "" for t in tasks]
                lines.append(f"| *paper: {name}* | " + " | ".join(cols) + f" | *{paper['average']:.2f}* | | | |")
        lines.append("")
    if agg["claims"]:
        lines += [
            "## The paper's claims",
            "",
            "Difference of pooled average success over the seeds both variants finished, Newcombe's 95 % "
            "interval; seeds = seeds in which the first variant's average is higher, of those compared.",
            "",
            "| claim | split | difference | 95 % interval | seeds | verdict |",
            "|---|---|---:|---|---|---|",
        ]
        labels = {v: row["label"] for v, row in agg["cells"].items()}
        for c in agg["claims"]:
            name = c["text"] or f"{labels[c['better']]} > {labels[c['worse']]}"
            if "diff" not in c:
                lines.append(f"| {name} | {c['split']} | | | | {c['verdict']} |")
                continue
            lo, hi = c["ci95"]
            wins, total = c["seeds_in_favour"]
            lines.append(
                f"| {name} | {c['split']} | {c['diff']:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {wins}/{total} | "
                f"{c['verdict']} |"
            )
        lines.append("")
    lines += ["## Runs", "", "| variant | seed | status | samples | train min | eval min | note |"]
    lines.append("|---|---|---|---:|---:|---:|---|")
    for r in agg["runs"]:
        note = r.get("error") or r.get("note") or ""
        note = " ".join(str(note).split())[:160]
        tm = f"{r['train_minutes']:.1f}" if isinstance(r.get("train_minutes"), (int, float)) else ""
        em = f"{r['eval_minutes']:.1f}" if isinstance(r.get("eval_minutes"), (int, float)) else ""
        lines.append(f"| {r['variant']} | {r['seed']} | {r['status']} | {r['samples']} | {tm} | {em} | {note} |")
    return "\n".join(lines) + "\n"


def bar_plot(agg: dict[str, Any], path: str | Path) -> Path:
    """Grouped bars per task + average, one colour per variant, Wilson intervals as error bars; a panel
    per split."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = agg["eval"]["tasks"]
    names = [*tasks, "average"]
    splits = agg["eval"]["splits"]
    variants = [(v, row) for v, row in agg["cells"].items()]
    fig, axes = plt.subplots(len(splits), 1, figsize=(10, 3.4 * len(splits)), dpi=110, squeeze=False)
    width = 0.8 / max(1, len(variants))
    for ax, split in zip(axes[:, 0], splits, strict=True):
        marked = False
        for j, (_, row) in enumerate(variants):
            cell = row.get(split)
            if not cell:
                continue
            xs = [k - 0.4 + width * (j + 0.5) for k in range(len(names))]
            ys = [cell[n]["rate"] for n in names]
            err = [  # clipped: the average's rate is a mean of task rates, its interval is on pooled counts
                [max(0.0, y - cell[n]["ci95"][0]) for n, y in zip(names, ys, strict=True)],
                [max(0.0, cell[n]["ci95"][1] - y) for n, y in zip(names, ys, strict=True)],
            ]
            ax.bar(xs, ys, width, yerr=err, capsize=2, label=row["label"], error_kw={"elinewidth": 0.8})
            paper = PAPER_ROWS.get(row["paper"] or "", {}).get("average")
            if paper is not None and split == "id":
                label = "paper's average (Table I/II)" if not marked else None
                ax.plot([xs[-1]], [paper], marker="_", markersize=14, mew=2.5, color="black", ls="", label=label)
                marked = True
        ax.set_xticks(range(len(names)), [TASK_TITLES.get(n, n) for n in names])
        ax.set_ylim(0, 1.2)  # room for the legend above full bars
        ax.set_ylabel("success rate")
        ax.set_title(f"{SPLIT_TITLES.get(split, split)}{' - SMOKE TEST' if agg['smoke'] else ''}")
        ax.legend(fontsize=7, ncol=min(3, len(variants)), loc="upper right")
    fig.suptitle(f"{agg['name']}: {agg['budget_samples']} samples per run, 95 % Wilson intervals", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(cfg: MatrixConfig, records: Sequence[dict[str, Any]], out: str | Path) -> dict[str, Path]:
    """OUT/table.md, OUT/table.png, OUT/results.json (the aggregate + every run's full record)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    agg = aggregate(cfg, records)
    paths = {"markdown": out / "table.md", "png": out / "table.png", "json": out / "results.json"}
    # each file written beside and renamed: a reader (or a report run while `run` writes one) never sees half
    write_atomically(paths["markdown"], lambda tmp: tmp.write_text(markdown(agg)))
    if any(row.get(s) for row in agg["cells"].values() for s in agg["eval"]["splits"]):
        write_atomically(paths["png"], lambda tmp: bar_plot(agg, tmp))
    else:
        paths.pop("png")
    payload = {**agg, "raw_runs": list(records)}
    text = json.dumps(payload, indent=2, default=_json_default) + "\n"
    write_atomically(paths["json"], lambda tmp: tmp.write_text(text))
    return paths


def write_atomically(path: Path, write: Callable[[Path], Any]) -> None:
    """`write(tmp)` beside `path`, then a rename: readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")  # the suffix tells savefig the format
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return str(value)
