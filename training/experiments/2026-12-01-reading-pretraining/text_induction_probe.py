"""Text-only control for the describe task: can the tiny backbone match a letter token to a letter token at all?

read_pretrain.py's `--task describe --echo` asks, after the image, for "A2C5.C5." (each box's letter and column,
a full stop, the named letter, its column). Teacher-forced, the last column is a pure text lookup (find the
earlier "C", copy the digit after it: an induction head) - no image needed. This probe trains exactly that
lookup with no image: "<s> ▁C <0x04> A2C5 . C" -> "5" (2-3 distinct letters of A-F, sorted columns 0-9),
cross-entropy on the last token only, and prints held-out accuracy (chance ~0.45: the nearest-listed guess).

    OMP_NUM_THREADS=1 python text_induction_probe.py --steps 1500                 # random tiny backbone
    OMP_NUM_THREADS=1 python text_induction_probe.py --init-from runs/probe/r1_read/checkpoint \
        --out runs/probe/r1_induction/checkpoint           # then: --filler 60 --init-from that (the image's length)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from more_model.checkpoint import load_checkpoint, save_checkpoint
from more_model.config import TinyBackboneConfig
from more_model.processor import position_ids_from_mask
from more_model.tiny_backbone import build_tiny_backbone, build_tiny_tokenizer

LETTERS = "ABCDEF"


def lookup_batch(
    vocab: dict[str, int], rng: np.random.Generator, size: int, filler: int = 0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-padded ids [B, T], attention mask [B, T] and the answer ids [B] of `size` random lookups; `filler`
    image-placeholder tokens (no pixels: the |SPEAKER| embedding) stand where the image block would be."""
    rows, answers = [], []
    for _ in range(size):
        n = int(rng.integers(2, 4))
        letters = rng.choice(len(LETTERS), n, replace=False)
        cols = np.sort(rng.integers(0, 10, n))
        j = int(rng.integers(n))
        scene = [t for a, c in zip(letters, cols, strict=True) for t in (LETTERS[a], str(c))]
        tokens = ["<s>", "▁", LETTERS[letters[j]], *["|SPEAKER|"] * filler, "<0x04>", *scene, ".", LETTERS[letters[j]]]
        rows.append([vocab[t] for t in tokens])
        answers.append(vocab[str(cols[j])])
    width = max(map(len, rows))
    ids = torch.zeros(size, width, dtype=torch.long)
    mask = torch.zeros(size, width, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :] = torch.tensor(row)
        mask[r, width - len(row) :] = 1
    return ids, mask, torch.tensor(answers)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--layers", type=int, default=3, help="decoder layers of a random backbone")
    p.add_argument("--init-from", type=Path, default=None, help="a policy checkpoint whose backbone to start from")
    p.add_argument("--filler", type=int, default=0, help="placeholder tokens between the prompt and the answer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="save the policy here (needs --init-from)")
    args = p.parse_args()
    if args.out is not None and args.init_from is None:
        p.error("--out saves the policy of --init-from; give both")

    torch.manual_seed(args.seed)
    if args.init_from is not None:
        policy = load_checkpoint(args.init_from).policy
        policy.set_trainable("full")
        model, tokenizer = policy.backbone, policy.tokenizer
    else:
        tokenizer = build_tiny_tokenizer()
        model = build_tiny_backbone(TinyBackboneConfig(num_layers=args.layers), tokenizer, seed=args.seed)
    model.train()
    vocab = tokenizer.get_vocab()
    rng = np.random.default_rng(args.seed)
    test = lookup_batch(vocab, np.random.default_rng(args.seed + 1000), 1024, args.filler)
    opt = torch.optim.AdamW([q for q in model.parameters() if q.requires_grad], lr=args.lr, weight_decay=0.05)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        ids, mask, answers = lookup_batch(vocab, rng, args.batch, args.filler)
        hidden = model.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
        loss = F.cross_entropy(model.lm_head(hidden.last_hidden_state[:, -1]), answers)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == args.steps:
            with torch.no_grad():
                ids, mask, answers = test
                out = model.model(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask))
                acc = (model.lm_head(out.last_hidden_state[:, -1]).argmax(-1) == answers).float().mean()
            print(f"step {step} samples {step * args.batch} loss {loss.item():.3f} held-out {acc.item():.3f} "
                  f"{time.time() - t0:.0f} s", flush=True)  # fmt: skip

    if args.out is not None:
        settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
        save_checkpoint(args.out, policy, extra={"text_induction_probe": settings})
        print(f"saved {args.out}", flush=True)


if __name__ == "__main__":
    main()
