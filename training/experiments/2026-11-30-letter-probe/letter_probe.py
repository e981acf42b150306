"""Are distinguish's letters legible in the policy's start images? A supervised probe, not a policy.

For every expert distinguish episode with exactly two boxes, the first `--frames` images and the named letter go
in; the label is whether the named box stands left of the other (from the scenario's geometry in the episode's
metadata, not from the expert's actions). `--name-each` data holds each scene once per box, so the image alone
is at chance: only reading the letter beats 0.5. Scenes (episode seeds) are split into train and held-out.

`--name-by colour` is the control: the same scenes and labels with the named box given by its colour, which
any of the models should learn. Two models see the same examples:
- `cnn`: a small convolutional net (3x3 convolutions, translation-equivariant, no patching) whose features are
  gated by the letter's embedding: what a network that can read small glyphs gets from these pixels;
- `patch`: the tiny Fuyu's input stage: non-overlapping PxP patches, one linear projection, then the same gated
  head on the patch grid: what the policy's patch embedding leaves of the glyphs.

    python training/experiments/2026-11-30-letter-probe/letter_probe.py --data data/six_a --minutes 4
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from more_common.dataset import EpisodeDataset
from more_training.ablation_stats import wilson

LETTER = re.compile(r"\bletter ([A-Z])\b|\bthe ([A-Z]) box\b|\b([A-Z])\b")


def named_letter(instruction: str, letters: set[str]) -> str | None:
    for m in LETTER.finditer(instruction):
        ch = next(g for g in m.groups() if g)
        if ch in letters:
            return ch
    return None


def bearing(thing: dict, start: list[float]) -> float:
    x0, y0, yaw = start
    b = math.atan2(thing["y"] - y0, thing["x"] - x0) - yaw
    return math.atan2(math.sin(b), math.cos(b))  # left of the heading is positive


def load(path: Path, frames: int, name_by: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    images, letters, labels, scenes = [], [], [], []
    rows = []
    for ep in EpisodeDataset(path, verify_checksums=False).iter_episodes():
        sc = ep.meta.get("scenario") or {}
        if ep.task != "distinguish" or not ep.expert or len(sc.get("things", [])) != 2:
            continue
        things = sc["things"]
        letter_set = {t["letter"] for t in things}
        ch = named_letter(ep.instruction, letter_set)
        named = next(t for t in things if t["name"] == sc["target"])
        other = next(t for t in things if t["name"] != sc["target"])
        if ch != named["letter"]:
            continue
        if name_by == "colour":  # the control: the same scenes and labels, the named box given by its colour
            if named["colour"] == other["colour"]:
                continue
            ch = named["colour"]
        left = bearing(named, sc["start"]) > bearing(other, sc["start"])
        rows.append((ep, ch, left, int(ep.meta["seed"])))
    alphabet = sorted({ch for _, ch, _, _ in rows})
    for ep, ch, left, seed in rows:
        for k in range(min(frames, ep.length)):
            images.append(ep.images[k])
            letters.append(alphabet.index(ch))
            labels.append(float(left))
            scenes.append(seed)
    return np.stack(images), np.array(letters), np.array(labels, np.float32), np.array(scenes), alphabet


class GatedHead(nn.Module):
    """Features [B, C, h, w] gated by the letter's embedding, then one logit: is the named box on the left?"""

    def __init__(self, channels: int, num_letters: int, h: int, w: int) -> None:
        super().__init__()
        self.letter = nn.Embedding(num_letters, channels)
        self.out = nn.Sequential(nn.Flatten(), nn.Linear(channels * h * w, 64), nn.ReLU(), nn.Linear(64, 1))

    def forward(self, feats: torch.Tensor, letter: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self.letter(letter))[:, :, None, None]
        return self.out(feats * gate).squeeze(-1)


class ConvProbe(nn.Module):
    def __init__(self, num_letters: int, height: int, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = GatedHead(32, num_letters, height // 8, width // 8)

    def forward(self, x: torch.Tensor, letter: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x), letter)


class PatchProbe(nn.Module):
    def __init__(self, num_letters: int, height: int, width: int, patch: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)  # = Fuyu's linear projection of flattened patches
        self.mix = nn.Sequential(nn.ReLU(), nn.Conv2d(dim, 64, 1), nn.ReLU())
        self.head = GatedHead(64, num_letters, height // patch, width // patch)

    def forward(self, x: torch.Tensor, letter: torch.Tensor) -> torch.Tensor:
        return self.head(self.mix(self.embed(x)), letter)


def train_and_score(
    model: nn.Module, data: tuple[torch.Tensor, ...], held: tuple[torch.Tensor, ...], seconds: float, seed: int
) -> dict[str, float]:
    torch.manual_seed(seed)
    x, letter, y = data
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.BCEWithLogitsLoss()
    started, steps = time.monotonic(), 0
    gen = torch.Generator().manual_seed(seed)
    while time.monotonic() - started < seconds:
        idx = torch.randint(len(y), (64,), generator=gen)
        loss = loss_fn(model(x[idx], letter[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1

    def accuracy(split: tuple[torch.Tensor, ...]) -> float:
        with torch.no_grad():
            chunks = range(0, len(split[2]), 256)
            logits = torch.cat([model(split[0][i : i + 256], split[1][i : i + 256]) for i in chunks])
        return float(((logits > 0).float() == split[2]).float().mean())

    return {"steps": steps, "train_accuracy": accuracy(data), "held_out_accuracy": accuracy(held)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--frames", type=int, default=2, help="first images of each episode used (the choice is made early)")
    p.add_argument("--minutes", type=float, default=4.0, help="training time per model")
    p.add_argument("--patch", type=int, default=16)
    p.add_argument("--dim", type=int, default=128, help="patch embedding width (the tiny Fuyu's hidden size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name-by", choices=("letter", "colour"), default="letter", help="colour: the control task")
    p.add_argument("--models", default="cnn,patch", help="comma-separated: cnn, patch")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    images, letters, labels, scenes, alphabet = load(args.data, args.frames, args.name_by)
    rng = np.random.default_rng(args.seed)
    unique = np.unique(scenes)
    held_scenes = set(rng.choice(unique, size=len(unique) // 5, replace=False).tolist())
    held = np.array([s in held_scenes for s in scenes])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0
    t = (x, torch.from_numpy(letters), torch.from_numpy(labels))
    train = tuple(a[torch.from_numpy(~held)] for a in t)
    test = tuple(a[torch.from_numpy(held)] for a in t)
    h, w = images.shape[1:3]
    n_test = int(held.sum())
    report = {
        "data": str(args.data), "image": [h, w], "name_by": args.name_by, "names": alphabet, "frames": args.frames,
        "examples": {"train": int((~held).sum()), "held_out": n_test},
        "held_out_left_share": float(test[2].mean()), "seconds_per_model": args.minutes * 60,
    }  # fmt: skip
    wanted = set(args.models.split(","))
    models = {
        "cnn": ConvProbe(len(alphabet), h, w),
        f"patch{args.patch}": PatchProbe(len(alphabet), h, w, args.patch, args.dim),
    }
    for name, model in models.items():
        if name.rstrip("0123456789") not in wanted:
            continue
        result = train_and_score(model, train, test, args.minutes * 60, args.seed)
        result["held_out_ci95"] = list(wilson(round(result["held_out_accuracy"] * n_test), n_test))
        report[name] = result
        print(name, json.dumps(result), file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
