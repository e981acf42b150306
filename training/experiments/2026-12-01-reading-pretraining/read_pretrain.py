"""Reading pretraining: can the tiny from-scratch backbone learn to read distinguish's letters at all?

The paper's backbone (Fuyu-8B) was pretrained on images with text before MoRE fine-tuned it; ours starts from
random weights and has only ever been trained on actions. This script trains the same model (a MoREPolicy built
from a training config, backbone in full) to *caption* simulator frames with the letters of the lettered boxes
in view, left to right, then a full stop (" C E ." as the tokens C, E, .), with next-token cross-entropy through
the backbone's own lm_head, prompt "letters" (placed as the policy places its instruction). It reports
held-out letter accuracy (scenes never trained on) against the majority-letter rate, and saves a checkpoint
that `more-train ... init.init_from=DIR` can start a distinguish run from (the backbone and adapters it learnt).

`--task point` asks the distinguish instruction itself ("go to the box with the letter C") and is answered with
the named box's column (one of 10 across the view); `--task both` mixes the two half and half. Its held-out
`choice` (the predicted column nearer the named box than any other, where 2+ boxes are in view) against
`choice_chance` says whether the model matches the instruction's letter to the glyph, which reading alone does
not imply. `--task describe` answers the instruction with the scene in words first (more_sim.scene_text: each
box's letter and column), `--echo` puts the named letter before its column ("A2C5.C5."); their held-out choice is
measured on greedy answers (the model's own scene) and teacher-forced ones. Results: README.md beside this file.

    OMP_NUM_THREADS=1 python read_pretrain.py --data data/distinguish_96x144 \
        --config distinguish_96x144.yaml --out runs/probe/r1_read --steps 3000 --eval-every 250

Labels come from the privileged state saved with every frame (x, y, yaw: `extra/state`) and the scene's things
in the episode metadata: a box is "in view" when its bounding circle's centre bearing lies inside the
horizontal field of view (naming.camera_bearing), which the policy's camera shares.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from more_model.checkpoint import load_checkpoint, save_checkpoint
from more_model.policy import MoREPolicy
from more_model.processor import position_ids_from_mask
from more_sim.config import SimConfig
from more_sim.naming import half_fov_x
from more_sim.scene_text import SCENE_COLUMNS, boxes_in_view, scene_text, view_column
from more_sim.splits import ID_TEMPLATES
from more_sim.world import Thing
from more_training.config import load_config

MAX_LETTERS = 3  # distinguish scenes hold 2-3 boxes
PROMPT = "letters"


def frame_captions(
    data: Path, fov_config: SimConfig
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray, list[list[tuple[float, str]]]]:
    """(images [N, H, W, 3], captions, scene seeds [N], step in episode [N], (bearing, letter) of the boxes in
    view, left to right) for every frame of a dataset."""
    index = json.loads((data / "index.json").read_text())
    images, captions, seeds, steps, views = [], [], [], [], []
    for shard in index["shards"]:
        z = np.load(data / shard["file"], allow_pickle=False)
        meta = json.loads(bytes(z["episode_meta"]).decode())
        # each z[...] decompresses the whole array again: read every array once per shard
        starts, state, shard_images = z["episode_starts"], z["extra/state"], z["images"]
        for e, ep in enumerate(meta):
            scenario = ep["meta"]["scenario"]
            if scenario["task"] != "distinguish":
                continue
            fields = ("name", "kind", "x", "y", "yaw", "scale", "letter")
            things = [Thing(**{k: t[k] for k in fields}) for t in scenario["things"]]
            for i in range(int(starts[e]), int(starts[e + 1])):
                x, y, yaw = (float(v) for v in state[i, :3])
                seen = boxes_in_view(things, x, y, yaw, fov_config)  # left to right
                captions.append("".join(letter for _, letter in seen[:MAX_LETTERS]) + ".")
                views.append(seen)
                seeds.append(int(ep["meta"]["seed"]))
                steps.append(i - int(starts[e]))
            images.append(shard_images[int(starts[e]) : int(starts[e + 1])])
    assert sum(len(a) for a in images) == len(captions)
    return np.concatenate(images), captions, np.asarray(seeds), np.asarray(steps), views


POINT_BINS = SCENE_COLUMNS  # the horizontal field of view in 10 columns, digit 0 = the left edge (scene_text.py)


def point_text(letter: str) -> str:
    """The distinguish instruction itself: pointing is asked in the words the policy will be given."""
    return ID_TEMPLATES["distinguish"][0].format(letter=letter)


def caption_ids(tokenizer: Any, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids [B, L] of single characters (letters and the full stop), right-padded; mask [B, L]."""
    vocab = tokenizer.get_vocab()
    width = MAX_LETTERS + 1
    ids = torch.zeros(len(captions), width, dtype=torch.long)
    mask = torch.zeros(len(captions), width, dtype=torch.bool)
    for r, text in enumerate(captions):
        for c, ch in enumerate(text):
            ids[r, c], mask[r, c] = vocab[ch], True
    return ids, mask


def caption_logits(
    policy: MoREPolicy,
    images: list[np.ndarray],
    ids: torch.Tensor,
    mask: torch.Tensor,
    prompts: list[str] | None = None,
) -> torch.Tensor:
    """Teacher-forced logits [B, L, V] for each answer token (position before it predicts it)."""
    batch = policy.encoder.encode(images, prompts or [PROMPT] * len(images))
    input_ids = torch.cat([batch.input_ids, ids[:, :-1]], dim=1)
    attention = torch.cat([batch.attention_mask, mask[:, :-1].long()], dim=1)
    positions = position_ids_from_mask(attention)
    out = policy.backbone.model(
        input_ids=input_ids,
        pixel_values=batch.pixel_values.to(policy.dtype),
        attention_mask=attention,
        position_ids=positions,
    )
    hidden = out.last_hidden_state[:, -ids.shape[1] :]  # the <0x04> position and the first L-1 caption tokens
    return policy.backbone.lm_head(hidden).float()


def evaluate(
    policy: MoREPolicy, images: np.ndarray, captions: list[str], rows: np.ndarray, steps: np.ndarray, batch: int = 64
) -> dict:
    """Teacher-forced letter accuracy (letter positions only) and exact captions, overall and at episode starts."""
    policy.eval()
    hit = np.zeros(len(rows), dtype=np.int64)
    tot = np.zeros(len(rows), dtype=np.int64)
    exact = np.zeros(len(rows), dtype=bool)
    with torch.no_grad():
        for b in range(0, len(rows), batch):
            idx = rows[b : b + batch]
            ids, mask = caption_ids(policy.tokenizer, [captions[i] for i in idx])
            pred = caption_logits(policy, [images[i] for i in idx], ids, mask).argmax(-1)
            letter = mask & (ids != policy.tokenizer.get_vocab()["."])
            hit[b : b + len(idx)] = ((pred == ids) & letter).sum(1).numpy()
            tot[b : b + len(idx)] = letter.sum(1).numpy()
            exact[b : b + len(idx)] = ((pred == ids) | ~mask).all(1).numpy()
    policy.train()
    start = steps[rows] == 0
    return {
        "letter_accuracy": float(hit.sum() / max(tot.sum(), 1)),
        "exact": float(exact.mean()),
        "letter_accuracy_at_start": float(hit[start].sum() / max(tot[start].sum(), 1)),
        "exact_at_start": float(exact[start].mean()) if start.any() else float("nan"),
        "frames": len(rows),
        "letters": int(tot.sum()),
    }


def point_samples(rows: np.ndarray, views: list, half: float) -> list[tuple[int, str, int, list[int]]]:
    """(frame, letter, index of its box among those in view, every in-view box's column) per box in view."""
    out = []
    for r in rows:
        cols = [view_column(b, half) for b, _ in views[r]]
        out.extend((int(r), letter, j, cols) for j, (_, letter) in enumerate(views[r]))
    return out


def point_batch(tokenizer: Any, samples: list) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Prompts, answer ids [B, 2] (column digit, full stop) and mask for pointing samples."""
    prompts = [point_text(letter) for _, letter, _, _ in samples]
    ids, mask = caption_ids(tokenizer, [f"{cols[j]}." for _, _, j, cols in samples])
    return prompts, ids[:, :2], mask[:, :2]


def choice_credit(pred: int | None, cols: list[int], j: int) -> float:
    """Credit for choosing box j of those in view (columns `cols`, 2+ boxes) by predicting column `pred`: the box
    whose column is nearest the prediction is the one chosen; a tie shares the credit; no prediction gets 0."""
    if pred is None:
        return 0.0
    dist = [abs(pred - c) for c in cols]
    nearest = [k for k, d in enumerate(dist) if d == min(dist)]
    return 1 / len(nearest) if j in nearest else 0.0


def evaluate_point(policy: MoREPolicy, images: np.ndarray, samples: list, steps: np.ndarray, batch: int = 64) -> dict:
    """Column accuracy, and the choice among the boxes in view (the predicted column nearer the named box's
    than any other's) where 2+ boxes are in view, against its chance level; overall and at episode starts."""
    vocab = policy.tokenizer.get_vocab()
    digits = torch.tensor([vocab[str(d)] for d in range(POINT_BINS)])
    policy.eval()
    pred = []
    with torch.no_grad():
        for b in range(0, len(samples), batch):
            chunk = samples[b : b + batch]
            prompts, ids, mask = point_batch(policy.tokenizer, chunk)
            logits = caption_logits(policy, [images[f] for f, _, _, _ in chunk], ids, mask, prompts)
            pred.extend(logits[:, 0, digits].argmax(-1).tolist())
    policy.train()
    exact, near, choice, chance, start = [], [], [], [], []
    for (frame, _, j, cols), p in zip(samples, pred, strict=True):
        exact.append(p == cols[j])
        near.append(abs(p - cols[j]) <= 1)
        start.append(steps[frame] == 0)
        if len(cols) >= 2:
            choice.append(choice_credit(p, cols, j))
            chance.append(1 / len(cols))
    exact, near, start = np.asarray(exact), np.asarray(near), np.asarray(start)
    return {
        "column_exact": float(exact.mean()),
        "column_within_1": float(near.mean()),
        "column_within_1_at_start": float(near[start].mean()) if start.any() else float("nan"),
        "choice": float(np.mean(choice)) if choice else float("nan"),
        "choice_chance": float(np.mean(chance)) if chance else float("nan"),
        "samples": len(samples),
        "choices": len(choice),
    }


ANSWER_WIDTH = 2 * MAX_LETTERS + 4  # the longest answer: a letter and column per box, ".", letter, column, "."


def answer_text(view: list[tuple[float, str]], j: int, half: float, scene: bool, echo: bool) -> str:
    """The answer to "go to the box with the letter L" about box j of those in view (left to right).

    scene: first the scene in words (each box's letter and column, then a full stop); echo: the named letter
    before the column, so that the token that predicts the column is the letter itself. The column is always the
    answer's second-last character: "5.", "C5.", "A2C5.5.", "A2C5.C5." for C at column 5 (A at 2)."""
    prefix = scene_text(view, half) if scene else ""  # with echo: more_sim.scene_text.scene_answer
    return f"{prefix}{view[j][1] if echo else ''}{view_column(view[j][0], half)}."


def answer_batch(
    tokenizer: Any, samples: list, views: list, half: float, scene: bool, echo: bool
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Prompts (the distinguish instruction), answer ids [B, ANSWER_WIDTH] (right-padded) and mask."""
    vocab = tokenizer.get_vocab()
    ids = torch.zeros(len(samples), ANSWER_WIDTH, dtype=torch.long)
    mask = torch.zeros(len(samples), ANSWER_WIDTH, dtype=torch.bool)
    for r, (frame, _, j, _) in enumerate(samples):
        for c, ch in enumerate(answer_text(views[frame], j, half, scene, echo)):
            ids[r, c], mask[r, c] = vocab[ch], True
    return [point_text(letter) for _, letter, _, _ in samples], ids, mask


def greedy_answers(policy: MoREPolicy, images: list[np.ndarray], prompts: list[str], stops: int) -> list[str]:
    """Greedy answers (no teacher forcing) over the letters, the digits and the full stop; a row ends at its
    `stops`-th full stop."""
    vocab = policy.tokenizer.get_vocab()
    allowed = "ABCDEF0123456789."
    allowed_ids = torch.tensor([vocab[ch] for ch in allowed])
    batch = policy.encoder.encode(images, prompts)
    ids, attention = batch.input_ids, batch.attention_mask
    texts = [""] * len(images)
    for _ in range(ANSWER_WIDTH):
        out = policy.backbone.model(
            input_ids=ids,
            pixel_values=batch.pixel_values.to(policy.dtype),
            attention_mask=attention,
            position_ids=position_ids_from_mask(attention),
        )
        pick = policy.backbone.lm_head(out.last_hidden_state[:, -1]).float()[:, allowed_ids].argmax(-1)
        texts = [t if t.count(".") >= stops else t + allowed[k] for t, k in zip(texts, pick.tolist(), strict=True)]
        if all(t.count(".") >= stops for t in texts):
            break
        ids = torch.cat([ids, allowed_ids[pick][:, None]], dim=1)
        attention = torch.cat([attention, torch.ones_like(attention[:, :1])], dim=1)
    return texts


def answer_column(text: str, stops: int) -> int | None:
    """The column of a greedy answer (the character before its last full stop), None when malformed."""
    if text.count(".") < stops or len(text) < 2 or not text[-2].isdigit():
        return None
    return int(text[-2])


def evaluate_answers(
    policy: MoREPolicy,
    images: np.ndarray,
    samples: list,
    views: list,
    half: float,
    scene: bool,
    echo: bool,
    batch: int = 64,
) -> dict:
    """The choice (as evaluate_point's) from greedy answers and from teacher-forced ones (every earlier answer
    token given: with echo, the named letter; with scene, the true scene), the greedy scene's and echo's
    exactness."""
    vocab = policy.tokenizer.get_vocab()
    digits = torch.tensor([vocab[str(d)] for d in range(POINT_BINS)])
    stops = 2 if scene else 1
    policy.eval()
    greedy, forced, scene_exact, echo_exact = [], [], [], []
    with torch.no_grad():
        for b in range(0, len(samples), batch):
            chunk = samples[b : b + batch]
            prompts, ids, mask = answer_batch(policy.tokenizer, chunk, views, half, scene, echo)
            frames = [images[f] for f, _, _, _ in chunk]
            logits = caption_logits(policy, frames, ids, mask, prompts)
            column_at = mask.sum(1) - 2  # the answer's second-last token is the column
            forced.extend(logits[torch.arange(len(chunk)), column_at][:, digits].argmax(-1).tolist())
            texts = greedy_answers(policy, frames, prompts, stops)
            greedy.extend(answer_column(t, stops) for t in texts)
            for t, (frame, letter, j, _) in zip(texts, chunk, strict=True):
                truth = answer_text(views[frame], j, half, scene, echo)
                scene_exact.append(t.split(".")[0] == truth.split(".")[0])
                echo_exact.append(len(t) >= 3 and t[-3] == letter)
    policy.train()

    def choice(preds: list) -> tuple[float, float, float]:
        got, chance, exact = [], [], []
        for (_, _, j, cols), p in zip(samples, preds, strict=True):
            exact.append(p == cols[j])
            if len(cols) >= 2:
                got.append(choice_credit(p, cols, j))
                chance.append(1 / len(cols))
        return float(np.mean(got)), float(np.mean(chance)), float(np.mean(exact))

    g_choice, chance, g_exact = choice(greedy)
    f_choice, _, f_exact = choice(forced)
    row = {
        "choice_greedy": g_choice,
        "choice_teacher_forced": f_choice,
        "choice_chance": chance,
        "column_exact_greedy": g_exact,
        "column_exact_teacher_forced": f_exact,
        "malformed_greedy": float(np.mean([p is None for p in greedy])),
        "samples": len(samples),
    }
    if scene:
        row["scene_exact_greedy"] = float(np.mean(scene_exact))
    if echo:
        row["echo_exact_greedy"] = float(np.mean(echo_exact))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--config", required=True, help="a training config; its model section is the model")
    p.add_argument("--set", nargs="*", default=[], help="overrides of the config (key.path=value)")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--holdout", type=float, default=0.15, help="share of scenes held out")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split-seed", type=int, default=0, help="the seed of the held-out scene draw")
    p.add_argument(
        "--task",
        choices=("caption", "point", "both", "describe"),
        default="caption",
        help="caption: the letters in view; point: the column of the box an instruction names; both: half each; "
        "describe: the instruction answered with each box's letter and column, then the named box's column",
    )
    p.add_argument("--echo", action="store_true", help="point/describe: the named letter before its column")
    p.add_argument("--init-from", type=Path, default=None, help="a checkpoint to start from (weights)")
    p.add_argument("--image-first", action="store_true", help="the image before the prompt (model.text_first=false)")
    args = p.parse_args()
    if args.echo and args.task == "caption":
        p.error("--echo changes pointing and describe answers; --task caption has none")

    cfg = load_config(args.config, args.set)
    torch.manual_seed(args.seed)
    if args.init_from is not None:
        policy = load_checkpoint(args.init_from).policy
    else:
        policy = MoREPolicy.from_config(cfg.model, seed=args.seed)
    if args.image_first:  # the layout only: the same weights read the sequence in the other order
        policy.config = dataclasses.replace(policy.config, text_first=False)
        policy.encoder.text_first = False
    policy.set_trainable("full")
    fov = SimConfig(image_height=cfg.model.image_height, image_width=cfg.model.image_width)
    images, captions, seeds, steps, views = frame_captions(args.data, fov)
    half = half_fov_x(fov)
    scenes = np.unique(seeds)
    rng = np.random.default_rng(args.seed)
    # the held-out scenes must stay the ones a checkpoint this run starts from never saw: a replicate with another
    # --seed keeps --split-seed 0 (seed 0's split drew from the same generator as its batches)
    split_rng = rng if args.split_seed == args.seed else np.random.default_rng(args.split_seed)
    held = set(split_rng.choice(scenes, int(len(scenes) * args.holdout), replace=False).tolist())
    test = np.flatnonzero([s in held for s in seeds])
    train = np.flatnonzero([s not in held for s in seeds])
    counts = {}
    for c in captions:
        for ch in c[:-1]:
            counts[ch] = counts.get(ch, 0) + 1
    majority = max(counts.values()) / sum(counts.values())
    print(
        f"{len(images)} frames, {len(scenes)} scenes ({len(held)} held out: {len(test)} frames); "
        f"letters {dict(sorted(counts.items()))}; majority-letter rate {majority:.3f}",
        flush=True,
    )

    params = [q for q in policy.parameters() if q.requires_grad]
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(s / args.steps, 1))))
    )
    log = []
    t0 = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    n_point = {"caption": 0, "point": args.batch, "both": args.batch // 2, "describe": args.batch}[args.task]
    train_points = point_samples(train, views, half) if n_point else []
    test_points = point_samples(test, views, half) if n_point else []
    for step in range(1, args.steps + 1):
        loss = torch.zeros(())
        if n_point < args.batch:
            idx = rng.choice(train, args.batch - n_point)
            ids, mask = caption_ids(policy.tokenizer, [captions[i] for i in idx])
            logits = caption_logits(policy, [images[i] for i in idx], ids, mask)
            loss = loss + F.cross_entropy(logits[mask], ids[mask]) * (args.batch - n_point) / args.batch
        if n_point:
            chunk = [train_points[k] for k in rng.choice(len(train_points), n_point)]
            if args.task == "describe" or args.echo:
                prompts, ids, mask = answer_batch(
                    policy.tokenizer, chunk, views, half, scene=args.task == "describe", echo=args.echo
                )
            else:
                prompts, ids, mask = point_batch(policy.tokenizer, chunk)
            logits = caption_logits(policy, [images[f] for f, _, _, _ in chunk], ids, mask, prompts)
            loss = loss + F.cross_entropy(logits[mask], ids[mask]) * n_point / args.batch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        if step % args.eval_every == 0 or step == args.steps:
            held_out = evaluate(policy, images, captions, test, steps)
            seen = evaluate(policy, images, captions, train[:: max(1, len(train) // len(test))], steps)
            if args.task == "describe" or args.echo:
                held_out["answers"] = evaluate_answers(
                    policy, images, test_points[::6], views, half, scene=args.task == "describe", echo=args.echo
                )
            elif args.task != "caption":
                held_out["point"] = evaluate_point(policy, images, test_points[::3], steps)
            row = {
                "step": step,
                "samples": step * args.batch,
                "loss": float(loss.detach()),
                "minutes": (time.time() - t0) / 60,
                "held_out": held_out,
                "train": seen,
                "majority_letter_rate": majority,
            }
            log.append(row)
            print(json.dumps(row), flush=True)
            (args.out / "reading.json").write_text(json.dumps(log, indent=1))
    save_checkpoint(args.out / "checkpoint", policy, extra={"reading_pretraining": log[-1]})
    print(f"saved {args.out / 'checkpoint'}", flush=True)


if __name__ == "__main__":
    main()
