"""Replay samples through a policy and compare with what was recorded.

[Contract] For samples with a recorded command:
- reference bins: the recorded decoder bins when present, else the recorded command binned as the policy bins
  its own decisions (its action tokenizer: the ActionSpec's 256 bins per dim, or its action slots' bins;
  commands from a non-decoder source, e.g. a teleoperator or a scripted expert);
- predicted bins: the policy's decoded bins for the sample's image and instruction;
- bins are in contract order with -1 in a dim the model does not decode (action slots): a dim is compared in the
  samples where both sides decoded it (`compared`); a dim never compared has `exact_bin` and `within_one_bin`
  null. Bins of different binnings (slot bins against 256-bin ones) are not comparable: use the same checkpoint
  the bag was recorded with, or read `mae`;
- per dim: `exact_bin` = fraction with equal bins, `within_one_bin` = fraction with |difference| <= 1,
  `mae` = mean |predicted command - recorded command| in the dim's units over every sample, where the predicted
  command is what the policy node would have published (policy_core.executable_action: snapped gait, stand on
  terminate);
- `exact_bin` / `within_one_bin` overall: over every compared (sample, dim) pair; `all_dims_exact` = fraction of
  samples whose bins all agree (a dim decoded on one side only disagrees); the same block per task when
  labelled.
Latency: the replay's own decode time per sample, and from the recording the camera-to-command latency
(command log time - command stamp, i.e. the image's stamp) when commands carry stamps. p50/p99/mean in ms.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from more_common.action_contract import ACTION_NAMES, ACTION_UNITS, ActionSpec
from more_vla_policy.policy_core import executable_action, image_to_rgb
from more_vla_policy.replay.samples import Sample


def latency_summary(values_ms: Sequence[float]) -> dict[str, float | int] | None:
    arr = np.asarray([v for v in values_ms if math.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return None
    return {
        "count": int(arr.size),
        "p50": float(np.percentile(arr, 50)),
        "p99": float(np.percentile(arr, 99)),
        "mean": float(arr.mean()),
        "max": float(arr.max()),
    }


def agreement(
    pred_bins: np.ndarray, ref_bins: np.ndarray, pred_commands: np.ndarray, ref_commands: np.ndarray
) -> dict[str, Any]:
    """Per-dim agreement of [N, 12] predictions with [N, 12] references, -1: not decoded (see the contract)."""
    pred_bins, ref_bins = np.asarray(pred_bins, np.int64), np.asarray(ref_bins, np.int64)
    n = int(pred_bins.shape[0])
    if n == 0:
        return {"samples": 0}
    compared = (pred_bins >= 0) & (ref_bins >= 0)  # [N, 12]
    diff = np.abs(pred_bins - ref_bins)
    exact, within = compared & (diff == 0), compared & (diff <= 1)
    agree = exact | ((pred_bins < 0) & (ref_bins < 0))
    mae = np.abs(np.asarray(pred_commands, np.float64) - np.asarray(ref_commands, np.float64)).mean(axis=0)

    def share(hits: np.ndarray, of: np.ndarray) -> float | None:
        count = int(of.sum())
        return float(hits.sum() / count) if count else None

    return {
        "samples": n,
        "exact_bin": share(exact, compared),
        "within_one_bin": share(within, compared),
        "all_dims_exact": float(agree.all(axis=1).mean()),
        "per_dim": {
            name: {
                "compared": int(compared[:, i].sum()),
                "exact_bin": share(exact[:, i], compared[:, i]),
                "within_one_bin": share(within[:, i], compared[:, i]),
                "mae": float(mae[i]),
                "unit": ACTION_UNITS[i],
            }
            for i, name in enumerate(ACTION_NAMES)
        },
    }


def replay(policy: Any, samples: Iterable[Sample], max_samples: int = 0) -> dict[str, Any]:
    """Decode every sample (batch 1, as the node does) and report agreement and latency."""
    spec: ActionSpec = policy.action_spec
    rows: list[tuple[Sample, np.ndarray, np.ndarray]] = []
    decode_ms: list[float] = []
    skipped: dict[str, int] = {}
    for sample in samples:
        if max_samples and len(rows) >= max_samples:
            break
        if not sample.instruction.strip():
            skipped["no instruction"] = skipped.get("no instruction", 0) + 1
            continue
        try:
            rgb = image_to_rgb(sample.image)
        except ValueError as err:
            key = f"malformed image: {str(err).split(' (')[0]}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        start = time.perf_counter()
        out = policy.decode([rgb], [sample.instruction])
        decode_ms.append((time.perf_counter() - start) * 1e3)
        bins = np.asarray(out.bins, dtype=np.int64)[0]
        command, _ = executable_action(np.asarray(out.actions, dtype=np.float64)[0], spec)
        rows.append((sample, bins, command))
    with_ref = [(s, b, c) for s, b, c in rows if s.command is not None]
    result: dict[str, Any] = {
        "samples": len(rows),
        "with_recorded_command": len(with_ref),
        "skipped": skipped,
        "agreement": None,
        "per_task": {},
        "latency_ms": {
            "replay_decode": latency_summary(decode_ms),
            "recorded_camera_to_command": latency_summary(
                [(s.command_time_ns - s.command_stamp_ns) / 1e6 for s, _, _ in with_ref if s.command_stamp_ns]
            ),
        },
        "predicted_mean": (np.mean([c for _, _, c in rows], axis=0).round(6).tolist() if rows else None),
    }
    if with_ref:
        to_bins = _own_binning(policy)
        result["agreement"] = _agreement_of(with_ref, to_bins)
        tasks = sorted({s.task for s, _, _ in with_ref if s.task})
        result["per_task"] = {t: _agreement_of([r for r in with_ref if r[0].task == t], to_bins) for t in tasks}
    return result


def _own_binning(policy: Any) -> Callable[[np.ndarray], np.ndarray]:
    """command (12,) -> bins (12,) in contract order as the policy's decoder bins it, -1 in dims it does not decode."""
    tokenizer = getattr(policy, "action_tokenizer", None)
    if tokenizer is None:  # a policy without action slots: the ActionSpec's bins in every dim
        return policy.action_spec.to_bins
    return lambda command: tokenizer.contract_bins(tokenizer.to_bins(command))


def _agreement_of(rows: list[tuple[Sample, np.ndarray, np.ndarray]], to_bins: Callable) -> dict[str, Any]:
    ref_bins = np.stack([s.bins if s.bins is not None else to_bins(s.command) for s, _, _ in rows])
    return agreement(
        np.stack([b for _, b, _ in rows]),
        ref_bins,
        np.stack([c for _, _, c in rows]),
        np.stack([s.command for s, _, _ in rows]),
    )
