"""`more-train q-report`: what a trained Q-function prefers along episodes of a dataset.

    more-train q-report --checkpoint runs/x/checkpoints/step-00006000 --data data/six_a --tasks go_to [--json]

For each episode and a few positions in it (the first decision, the second, the middle, the step before the
stop, the stop), the checkpoint's Q-values are read teacher-forced on the stored action: per action slot, Q of
the stored bin, the best Q among the slot's other bins, and whether the stored bin is the argmax (what greedy
decoding would choose given the stored earlier slots). Beside them, the discounted return of the stored action
(gamma^(steps to the end - 1) x success: the value the Bellman targets converge to with reward 1 at a
successful end). On expert data this says where a Q-function reproduces the expert and where its argmax is
decided by noise among bins it never saw taken (the conservative term pushes those down, generalisation pulls
them up). Sigmoid Q (model/losses.py); an imitation checkpoint's logits are read the same way, as scores.
Exit status: 0 done; 2 bad input (one line naming the checkpoint, dataset or option).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from more_common.cli import OneLineArgumentParser

POSITIONS = ("first", "second", "middle", "before_stop", "stop")


def positions_of(length: int) -> dict[str, int]:
    """The step index of each named position in an episode of `length` steps (positions that coincide in a
    short episode are reported once, under the earlier name)."""
    if length < 1:
        raise ValueError(f"episode length must be >= 1, got {length}")
    wanted = {"first": 0, "second": 1, "middle": length // 2, "before_stop": length - 2, "stop": length - 1}
    out: dict[str, int] = {}
    for name in POSITIONS:
        t = wanted[name]
        if 0 <= t < length and t not in out.values():
            out[name] = t
    return out


@dataclass
class SlotRow:
    """Per-sample values of one slot at one position (to be averaged)."""

    q_taken: float
    q_best_other: float
    taken_is_argmax: bool
    argmax_offset: int  # argmax bin - stored bin: how far greedy decoding lands from the data (0: on it)


def slot_rows(q: torch.Tensor, bins: torch.Tensor, valid: torch.Tensor) -> list[list[SlotRow]]:
    """q [B, S, K] (Q-values), bins [B, S] (the stored bins), valid [S, K] (bins each slot has) ->
    rows[b][s]. A slot with one valid bin has no other bin: its best other is -inf and it is its own argmax."""
    assert q.dim() == 3 and bins.shape == q.shape[:2] and valid.shape == q.shape[1:], (q.shape, bins.shape)
    taken = q.gather(-1, bins.unsqueeze(-1)).squeeze(-1)  # (B, S)
    masked = q.masked_fill(~valid.unsqueeze(0), float("-inf"))
    argmax = masked.argmax(dim=-1)  # (B, S)
    best_other = masked.scatter(-1, bins.unsqueeze(-1), float("-inf")).max(dim=-1).values  # (B, S)
    rows = []
    for b in range(q.shape[0]):
        row = []
        for s in range(q.shape[1]):
            t, o = float(taken[b, s]), float(best_other[b, s])
            row.append(SlotRow(t, o, t > o, int(argmax[b, s] - bins[b, s]) if o >= t else 0))
        rows.append(row)
    return rows


def summarise(
    records: Iterable[tuple[str, int, bool, list[SlotRow]]], slot_names: Sequence[str], gamma: float
) -> dict[str, Any]:
    """records: (position, steps to the end including this one, success, rows per slot) -> per position: count,
    mean steps to the end, mean discounted return, and per slot the means and argmax share."""
    by_pos: dict[str, list[tuple[int, bool, list[SlotRow]]]] = {}
    for pos, to_end, success, rows in records:
        by_pos.setdefault(pos, []).append((to_end, success, rows))
    out: dict[str, Any] = {}
    for pos in POSITIONS:
        items = by_pos.get(pos)
        if not items:
            continue
        returns = [gamma ** (k - 1) * float(ok) for k, ok, _ in items]
        slots = {}
        for s, name in enumerate(slot_names):
            col = [rows[s] for _, _, rows in items]
            slots[name] = {
                "q_taken": float(np.mean([r.q_taken for r in col])),
                "q_best_other": float(np.mean([r.q_best_other for r in col])),
                "taken_is_argmax": float(np.mean([r.taken_is_argmax for r in col])),
                "argmax_offset_abs": float(np.mean([abs(r.argmax_offset) for r in col])),
            }
        out[pos] = {
            "samples": len(items),
            "steps_to_end": float(np.mean([k for k, _, _ in items])),
            "discounted_return": float(np.mean(returns)),
            "slots": slots,
        }
    return out


@torch.no_grad()
def q_report(policy: Any, episodes: Iterable[Any], gamma: float) -> dict[str, Any]:
    """The report over `episodes` (more_common Episodes) for a MoREPolicy."""
    from more_model.processor import resize_image

    valid = policy.valid_bins.to("cpu")
    records = []
    count = 0
    for ep in episodes:
        count += 1
        where = positions_of(ep.length)
        names, steps = list(where), list(where.values())
        images = [resize_image(ep.images[t], policy.image_size) for t in steps]
        batch = policy.encoder.encode_actions(images, [ep.instruction] * len(steps), ep.actions[steps])
        batch = batch.to(policy.device)
        q = torch.sigmoid(policy.slot_logits(batch).float()).cpu()
        rows = slot_rows(q, batch.bins.cpu(), valid)
        for name, t, r in zip(names, steps, rows, strict=True):
            records.append((name, ep.length - t, bool(ep.success), r))
    if count == 0:
        raise ValueError("no episode matched the filters")
    report = summarise(records, policy.action_tokenizer.slot_names, gamma)
    return {"episodes": count, "gamma": gamma, "positions": report}


def format_report(report: dict[str, Any]) -> str:
    lines = [
        f"{report['episodes']} episodes, gamma {report['gamma']:g}: per position, mean over episodes; per slot "
        "Q(stored bin) / best Q of the other bins / share where the stored bin is the argmax / mean |argmax bin - "
        "stored bin|",
    ]
    for pos, row in report["positions"].items():
        slots = "  ".join(
            f"{name} {v['q_taken']:.3f}/{v['q_best_other']:.3f}/{v['taken_is_argmax']:.2f}/{v['argmax_offset_abs']:.1f}"
            for name, v in row["slots"].items()
        )
        lines.append(
            f"{pos:12s} n={row['samples']:4d} steps to end {row['steps_to_end']:5.1f} "
            f"discounted return {row['discounted_return']:.3f} | {slots}"
        )
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="more-train q-report", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a more-train checkpoint or exported model directory")
    p.add_argument("--data", required=True, help="an episode dataset directory (index.json + shards)")
    p.add_argument("--tasks", default="all", help="comma-separated task names (default: all)")
    p.add_argument("--episodes", type=int, default=30, help="episodes to read (default 30), in dataset order")
    p.add_argument("--expert-only", action="store_true", help="only expert episodes")
    p.add_argument("--gamma", type=float, default=0.9, help="discount of the reference return (default 0.9)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from more_common.dataset import DatasetError, EpisodeDataset
    from more_common.errors import one_line
    from more_model.checkpoint import CheckpointError, load_checkpoint

    try:
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
        if not 0.0 < args.gamma <= 1.0:
            raise ValueError(f"--gamma must lie in (0, 1], got {args.gamma}")
        tasks = None if args.tasks == "all" else {t.strip() for t in args.tasks.split(",") if t.strip()}
        data = EpisodeDataset(args.data)
        policy = load_checkpoint(args.checkpoint).policy.eval()

        seen: set[str] = set()

        def chosen() -> Iterable[Any]:
            n = 0
            for ep in data.iter_episodes():
                seen.add(ep.task)
                if (tasks and ep.task not in tasks) or (args.expert_only and not ep.expert):
                    continue
                yield ep
                n += 1
                if n >= args.episodes:
                    return

        try:
            report = q_report(policy, chosen(), args.gamma)
        except ValueError as err:
            if "no episode matched" not in str(err):
                raise
            asked = f"--tasks {args.tasks}" + (" --expert-only" if args.expert_only else "")
            raise ValueError(f"{args.data}: no episode matches {asked}; its tasks: {sorted(seen)}") from err
    except (CheckpointError, DatasetError, OSError, ValueError) as err:
        print(f"more-train q-report: {one_line(err)}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
