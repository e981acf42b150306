"""Training throughput (JSON on stdout): RL step vs IL step samples/s for the tiny model on CPU, and the data
pipeline's samples/s vs what the training step consumes.

    python bench/bench_training.py [--data DIR] [--rounds 5] [--steps 3] [--threads 2] [--batch 64]

Without --data a small synthetic dataset in the project's shard format is written to a temporary directory.
Variants run in turn in one process (the machine is shared and noisy); best and median per variant.
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch


def _synthetic(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training" / "tests"))
    from helpers import make_dataset

    return make_dataset(root / "ds", episodes=48, per_shard=8, seed=0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=None, help="dataset directory (default: synthetic)")
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "training/configs/tiny_rl.yaml"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3, help="optimizer steps per round")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--json", action="store_true", help="one line of JSON (what bench/run_all.py reads)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from more_model.policy import MoREPolicy
    from more_model.target import TargetNetwork
    from more_training.config import load_config
    from more_training.data import TrainBatches
    from more_training.objective import loss_config, step_loss
    from more_training.trainer import build_optimizer

    tmp = tempfile.TemporaryDirectory()
    data = Path(args.data) if args.data else _synthetic(Path(tmp.name))
    cfg = load_config(args.config, [f"data.train=[{data}]", "data.num_workers=0", f"optim.batch_size={args.batch}"])
    policy = MoREPolicy.from_config(cfg.model, seed=0)
    policy.set_trainable("full" if cfg.init.train_backbone else "adapters")
    policy.train()
    target = TargetNetwork.from_policy(policy)
    opt = build_optimizer(policy, cfg)

    def batches(kind: str):
        ds = TrainBatches(cfg.data, policy.encoder, policy.image_size, args.batch, seed=0, with_next=kind == "rl")
        return iter(ds)

    pre = {kind: [next(b) for _ in range(args.steps)] for kind, b in (("rl", batches("rl")), ("il", batches("il")))}
    tokens = int(pre["rl"][0].current.input_ids.shape[1])

    def train_round(kind: str) -> float:
        lc = loss_config(cfg.objective.__class__(kind=kind))
        t0 = time.perf_counter()
        for b in pre[kind]:
            out = step_loss(lc, policy, policy, target if kind == "rl" else None, b)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            if kind == "rl":
                target.update(policy, cfg.objective.target_tau)
        return args.steps * args.batch / (time.perf_counter() - t0)

    def data_round(kind: str) -> float:
        it = batches(kind)
        next(it)  # the shuffle buffer fills once; steady state is what training sees
        t0 = time.perf_counter()
        for _ in itertools.repeat(None, args.steps):
            next(it)
        return args.steps * args.batch / (time.perf_counter() - t0)

    variants = {
        "train_rl_step": lambda: train_round("rl"),
        "train_il_step": lambda: train_round("il"),
        "data_pipeline_rl": lambda: data_round("rl"),
        "data_pipeline_il": lambda: data_round("il"),
    }
    results: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            results[name].append(fn())
    summary = {
        name: {"samples_per_s_best": round(max(v), 1), "samples_per_s_median": round(statistics.median(v), 1)}
        for name, v in results.items()
    }
    report = {
        "benchmark": "training",
        "config": Path(args.config).name,
        "threads": args.threads,
        "batch": args.batch,
        "tokens_per_sample": tokens,
        "trainable_params": sum(p.numel() for p in policy.trainable_parameters()),
        "data": "synthetic" if not args.data else str(data),
        "results": summary,
        "rl_over_il_cost": round(
            summary["train_il_step"]["samples_per_s_median"] / summary["train_rl_step"]["samples_per_s_median"], 2
        ),
        "data_headroom_rl": round(
            summary["data_pipeline_rl"]["samples_per_s_median"] / summary["train_rl_step"]["samples_per_s_median"], 1
        ),
    }
    print(json.dumps(report) if args.json else json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
