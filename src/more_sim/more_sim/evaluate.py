"""`more-sim eval`: closed-loop success rates per task, a markdown table and a bar chart.

Evaluation seeds come from their own stream (generate.episode_seed(seed, i, stream=1)), so
evaluation scenes are not the training data's scenes. The success rate of a task is the fraction
of its episodes the environment's success check accepted; `average` is the unweighted mean over the
evaluated tasks (the paper's convention). The 95% interval in the table is Wilson's.

Every task's details also count how its episodes ended (rollout.ENDS: success, wrong_stop, time_limit,
contact:<role>, fall, out_of_bounds), and the result lists every episode (task, index within the task, the
reset seed, its end and length), so a failure can be found and run again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from more_sim.config import SimConfig
from more_sim.generate import episode_seed
from more_sim.policies import Policy
from more_sim.rollout import ENDS, Job, Outcome, run_jobs, success_rates
from more_sim.splits import TASKS

TASK_TITLES = {
    "distinguish": "Distinguish",
    "go_to": "Go to",
    "go_through": "Go through",
    "go_avoid": "Go avoid",
    "crawl": "Crawl",
    "unload": "Unload",
}


def eval_jobs(tasks: Sequence[str], episodes_per_task: int, split: str, seed: int) -> list[Job]:
    return [
        Job(task, split, episode_seed(seed, t * 1_000_000 + i, stream=1))
        for t, task in enumerate(tasks)
        for i in range(episodes_per_task)
    ]


def evaluate(
    policy: Policy,
    tasks: Sequence[str] = TASKS,
    episodes_per_task: int = 25,
    split: str = "id",
    seed: int = 0,
    config: SimConfig | None = None,
    batch: int = 8,
    progress: bool = False,
) -> dict[str, Any]:
    """{"rates": {task: rate, ..., "average": mean}, "details": {task: {...}}, ...}."""
    config = config or SimConfig()
    if policy.image_size is not None and tuple(policy.image_size) != config.image_size:
        config = replace(config, image_height=policy.image_size[0], image_width=policy.image_size[1])
    jobs = eval_jobs(tasks, episodes_per_task, split, seed)
    track = getattr(policy, "track_reasoning", None)
    if track is not None:  # labels for the camera this embodiment renders (the go2's D435: SimConfig.camera_fovy)
        track(config)
    from tqdm import tqdm

    with tqdm(total=len(jobs), unit="ep", desc=f"eval {policy.name}", disable=not progress) as bar:
        results = run_jobs(jobs, policy, config, batch=batch, on_done=lambda o, e: bar.update(1))
    outcomes = [o for o, _ in results]
    details = success_rates(outcomes)
    rates = {task: details[task]["rate"] for task in tasks}
    rates["average"] = sum(rates.values()) / len(tasks)
    counts = getattr(policy, "reasoning_counts", None) or {}
    reasoning = {"reasoning": {task: c.as_dict() for task, c in sorted(counts.items())}} if counts else {}
    return {
        **reasoning,
        "rates": rates,
        "details": details,
        "policy": policy.name,
        "split": split,
        "episodes_per_task": episodes_per_task,
        "seed": seed,
        "image_size": list(config.image_size),
        "embodiment": config.embodiment,
        **({"go2_backend": config.go2_backend} if config.embodiment == "go2" else {}),
        **({"go2_state_delay_ms": config.go2_state_delay_ms} if config.go2_state_delay_ms else {}),
        **({"go2_target_delay_ms": config.go2_target_delay_ms} if config.go2_target_delay_ms else {}),
        **({"go2_controller_config": config.go2_controller_config} if config.go2_controller_config else {}),
        "decision_hz": config.decision_hz,
        "max_episode_steps": config.max_episode_steps,
        "episodes": episode_rows(outcomes, episodes_per_task),
    }


def episode_rows(outcomes: Sequence[Outcome], episodes_per_task: int) -> list[dict[str, Any]]:
    """One row per episode, in job order (eval_jobs: task by task, `index` within the task)."""
    return [
        {
            "task": o.job.task,
            "index": k % episodes_per_task,
            "seed": o.job.seed,
            "end": o.end,
            "steps": o.steps,
            "instruction": o.instruction,
        }
        for k, o in enumerate(outcomes)
    ]


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _backend_note(result: dict[str, Any]) -> str:
    backend = result.get("go2_backend", "lowlevel")
    notes = [] if backend == "lowlevel" else [f"{backend} backend"]
    if result.get("go2_state_delay_ms"):
        notes.append(f"state {result['go2_state_delay_ms']:g} ms old")
    if result.get("go2_target_delay_ms"):
        notes.append(f"targets {result['go2_target_delay_ms']:g} ms late")
    if result.get("go2_controller_config"):
        notes.append(f"controller config {result['go2_controller_config']}")
    return f" ({', '.join(notes)})" if notes else ""


def markdown_table(result: dict[str, Any]) -> str:
    lines = [
        f"# Closed-loop evaluation: {result['policy']} ({result['split']} split)",
        "",
        f"{result['episodes_per_task']} episodes per task, seed {result['seed']}, "
        f"images {result['image_size'][0]}x{result['image_size'][1]}, "
        f"embodiment {result.get('embodiment', 'kinematic')}{_backend_note(result)}, "
        f"{result.get('decision_hz', 5.0):g} decisions/s, limit {result.get('max_episode_steps', 100)} decisions.",
        "",
    ]
    go2 = result.get("embodiment") == "go2"  # a physics body can fall: say how often
    lines += [
        "| task | success | episodes | mean steps | 95% interval |" + (" falls |" if go2 else ""),
        "|---|---:|---:|---:|---|" + ("---:|" if go2 else ""),
    ]
    for task, d in result["details"].items():
        lo, hi = wilson(d["successes"], d["episodes"])
        lines.append(
            f"| {TASK_TITLES.get(task, task)} | {d['rate']:.2f} | {d['episodes']} | {d['mean_steps']:.1f} "
            f"| {lo:.2f}-{hi:.2f} |" + (f" {d.get('falls', 0)} |" if go2 else "")
        )
    lines.append(f"| **average** | **{result['rates']['average']:.2f}** | | | |" + (" |" if go2 else ""))
    lines += ["", *ends_table(result)]
    if "grounding_details" in result:
        lines += ["", *grounding_table(result)]
    if "reasoning" in result:
        lines += [
            "",
            "What the policy wrote before acting, against the label of the state it saw (every decision):",
            "",
            "| task | decisions | exact | scene exact | named box exact (decisions) |",
            "|---|---:|---:|---:|---|",
        ]
        for task, r in result["reasoning"].items():
            named = "-" if r["named_exact"] is None else f"{r['named_exact']:.3f}"
            lines.append(
                f"| {TASK_TITLES.get(task, task)} | {r['decisions']} | {r['exact']:.3f} | {r['scene_exact']:.3f} "
                f"| {named} ({r['named_decisions']}) |"
            )
    return "\n".join(lines) + "\n"


def ends_table(result: dict[str, Any]) -> list[str]:
    """How the episodes ended, a column per way that occurred (rollout.ENDS order), a row per task."""
    seen = {end for d in result["details"].values() for end in d.get("ends", {})}
    columns = [e for e in ENDS if e in seen] + sorted(seen - set(ENDS))
    if not columns:
        return []
    lines = [
        "How the episodes ended (wrong_stop: stopped where the success check fails; time_limit: never stopped; "
        "contact:<role>: touched a thing, which ends the episode):",
        "",
        "| task | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for task, d in result["details"].items():
        ends = d.get("ends", {})
        lines.append(f"| {TASK_TITLES.get(task, task)} | " + " | ".join(str(ends.get(e, 0)) for e in columns) + " |")
    return lines


def grounding_table(result: dict[str, Any]) -> list[str]:
    """The instruction-swap test's lines (more_sim.grounding): rate beside chance, with Wilson intervals."""
    g = result["grounding_details"]
    lines = [
        f"Instruction-swap test (more_sim.grounding): {g['scenes_per_task']} scenes per task, decision steps "
        f"{g['steps']}, turns at least {g['min_separation']} rad/s apart. Chance = the best score of a policy "
        "that ignores the instruction.",
        "",
        "| task | grounding | chance | decisions | states | 95% interval |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for task, d in g["details"].items():
        lo, hi = wilson(d["hits"], d["decisions"])
        name = "**all**" if task == "all" else TASK_TITLES.get(task, task)
        lines.append(
            f"| {name} | {d['rate']:.3f} | {d['chance']:.3f} | {d['decisions']} | {d['states']} | {lo:.2f}-{hi:.2f} |"
        )
    return lines


def add_grounding(result: dict[str, Any], grounding: dict[str, Any]) -> dict[str, Any]:
    """Merge a grounding_test result into an evaluate result (rates JSON gets grounding, grounding_chance)."""
    result["rates"]["grounding"] = grounding["grounding"]
    result["rates"]["grounding_chance"] = grounding["grounding_chance"]
    result["grounding_details"] = {k: v for k, v in grounding.items() if k not in ("grounding", "grounding_chance")}
    return result


def bar_chart(result: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [*result["details"], "average"]
    values = [result["rates"][n] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=120)
    colours = ["#4c72b0"] * (len(names) - 1) + ["#dd8452"]
    ax.bar([TASK_TITLES.get(n, n) for n in names], values, color=colours)
    for k, v in enumerate(values):
        ax.text(k, v + 0.02, f"{v:.2f}", ha="center", fontsize=8)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("success rate")
    ax.set_title(f"{result['policy']} - {result['split']} split, {result['episodes_per_task']} episodes/task")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def write_report(result: dict[str, Any], out: str | Path) -> dict[str, Path]:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "results.md", "png": out / "results.png", "json": out / "results.json"}
    paths["markdown"].write_text(markdown_table(result))
    bar_chart(result, paths["png"])
    paths["json"].write_text(json.dumps(result, indent=2) + "\n")
    return paths


def write_grounding_report(result: dict[str, Any], out: str | Path) -> Path:
    """`more-sim grounding`: OUT/grounding.md (the table) and OUT/grounding.json (everything)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    details = {k: v for k, v in result.items() if k not in ("grounding", "grounding_chance", "policy")}
    lines = [
        f"# Instruction-swap test: {result['policy']} ({result['split']} split, seed {result['seed']})",
        "",
        *grounding_table({"grounding_details": details}),
    ]
    (out / "grounding.md").write_text("\n".join(lines) + "\n")
    (out / "grounding.json").write_text(json.dumps(result, indent=2) + "\n")
    return out / "grounding.md"
