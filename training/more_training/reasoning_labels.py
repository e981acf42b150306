"""`more-train label-reasoning`: a reasoning model's own text stored as the labels of a dataset without them.

    more-train label-reasoning --checkpoint models/demo --data data/teleop --out data/teleop_labelled

A model with `reasoning: scene` is trained on the text it should write before acting. The simulator computes
that text from the privileged state every frame stores; teleoperated or replayed data has no such state. This
command has the checkpoint write its text (greedy, as at inference: `MoREPolicy.write_reasoning`) at every step
of every episode, and writes a copy of the dataset whose episodes carry it as the extra "reasoning"
(`REASONING_EXTRA`). The training stream prefers stored labels to computed ones (data.py), so fine-tuning the
same checkpoint on the copy teaches its actions after the text it writes itself and, through the reasoning
cross-entropy, keeps it writing that text while its adapters change.

Storage: extras are float32 arrays, one row per step; a text of n characters is the row
[i_1 + 1, ..., i_n + 1, 0, ..., 0] of MAX_REASONING_TOKENS entries (i_j: index in REASONING_ALPHABET; 0 pads).
All or nothing: the copy appears only when complete (more_common.dataset.DatasetWriter).
Exit status: 0 done; 2 bad input (one line naming the checkpoint, dataset or option).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from more_common.cli import OneLineArgumentParser
from more_common.dataset import DatasetError, DatasetWriter, Episode, EpisodeDataset
from more_model.processor import MAX_REASONING_TOKENS, REASONING_ALPHABET, reasoning_codes, resize_image

REASONING_EXTRA = "reasoning"  # the episode extra that holds stored reasoning labels
LABELS_META = "reasoning_labels"  # index meta: where the stored labels came from


def pack_reasoning(texts: Sequence[str]) -> np.ndarray:
    """Texts (one per step) -> float32 [T, MAX_REASONING_TOKENS]: alphabet index + 1 per character, 0 after."""
    out = np.zeros((len(texts), MAX_REASONING_TOKENS), np.float32)
    for t, text in enumerate(texts):
        codes = reasoning_codes(text)  # refuses characters outside the alphabet and over-long texts
        out[t, : len(codes)] = np.asarray(codes, np.float32) + 1
    return out


def unpack_reasoning(rows: np.ndarray, where: str = "reasoning") -> list[str]:
    """The inverse of `pack_reasoning`; a row that is not one (a code out of range or after the padding, a
    fraction, the wrong width) raises a DatasetError naming `where`."""
    rows = np.asarray(rows)
    if rows.ndim != 2 or rows.shape[1] != MAX_REASONING_TOKENS:
        raise DatasetError(f"{where}: stored reasoning must be [T, {MAX_REASONING_TOKENS}], got {rows.shape}")
    codes = rows.astype(np.int64)
    bad = (codes != rows) | (codes < 0) | (codes > len(REASONING_ALPHABET))
    bad[:, 1:] |= (codes[:, 1:] > 0) & (codes[:, :-1] == 0)  # a character after the padding
    if bad.any():
        t = int(np.argwhere(bad)[0, 0])
        raise DatasetError(f"{where}: stored reasoning of step {t} is not a packed text: {rows[t].tolist()}")
    return ["".join(REASONING_ALPHABET[c - 1] for c in row if c > 0) for row in codes]


@torch.no_grad()
def write_episode_labels(policy: Any, ep: Episode, batch_size: int = 32) -> list[str]:
    """What `policy` writes before acting at every step of `ep` (greedy, in batches of `batch_size` steps)."""
    images = [resize_image(img, policy.image_size) for img in ep.images]
    texts: list[str] = []
    for a in range(0, ep.length, batch_size):
        chunk = images[a : a + batch_size]
        prompt = policy.encoder.encode(chunk, [ep.instruction] * len(chunk)).to(policy.device)
        texts += policy.write_reasoning(prompt)
    return texts


def label_dataset(
    policy: Any, source: str | Path, out: str | Path, checkpoint: str = "", overwrite: bool = False,
    batch_size: int = 32,
) -> dict[str, Any]:  # fmt: skip
    """Copy `source` to `out` with every episode's `REASONING_EXTRA` written by `policy`; returns a summary."""
    if policy.config.reasoning == "none":
        raise ValueError(f"{checkpoint or 'the policy'} does not reason (model.reasoning is 'none'): nothing to write")
    if Path(out).resolve() == Path(source).resolve():
        raise ValueError(f"--out must differ from --data ({source}): the source dataset is never rewritten")
    data = EpisodeDataset(source)
    meta = {**data.meta, LABELS_META: {"source": "policy", "checkpoint": str(checkpoint)}}
    per_shard = max(1, data.shards[0].episodes) if data.shards else 32
    episodes = steps = 0
    written: dict[str, int] = {}
    policy.eval()
    with DatasetWriter(out, episodes_per_shard=per_shard, meta=meta, overwrite=overwrite) as writer:
        for ep in data.iter_episodes():
            texts = write_episode_labels(policy, ep, batch_size)
            writer.add(replace(ep, extras={**ep.extras, REASONING_EXTRA: pack_reasoning(texts)}))
            episodes, steps = episodes + 1, steps + ep.length
            for text in texts:
                written[text] = written.get(text, 0) + 1
    common = sorted(written.items(), key=lambda kv: -kv[1])[:5]
    return {"episodes": episodes, "steps": steps, "out": str(out), "most_written": dict(common)}


def _parser() -> argparse.ArgumentParser:
    p = OneLineArgumentParser(prog="more-train label-reasoning", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a reasoning checkpoint or exported model directory")
    p.add_argument("--data", required=True, help="the episode dataset to label (never modified)")
    p.add_argument("--out", required=True, help="where the labelled copy goes")
    p.add_argument("--overwrite", action="store_true", help="replace a dataset already at --out")
    p.add_argument("--batch", type=int, default=32, help="steps written in one batch (default 32)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from more_common.errors import one_line
    from more_model.checkpoint import CheckpointError, load_checkpoint

    try:
        if args.batch < 1:
            raise ValueError(f"--batch must be >= 1, got {args.batch}")
        EpisodeDataset(args.data)  # a bad dataset is named before the model is loaded
        policy = load_checkpoint(args.checkpoint).policy
        summary = label_dataset(policy, args.data, args.out, args.checkpoint, args.overwrite, args.batch)
    except (CheckpointError, DatasetError, OSError, ValueError) as err:
        print(f"more-train label-reasoning: {one_line(err)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{summary['episodes']} episodes, {summary['steps']} steps labelled -> {summary['out']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
