"""Where the time of one training step goes (JSON on stdout): data encoding, the target network's two forwards,
the online forward, the loss, backward, clipping, AdamW and the Polyak update, per sample; optionally the top
operators of torch's profiler.

    python bench/profile_train_step.py --config training/configs/grounding_il.yaml --data data/six_a \
        [--kind rl|il] [--batch 64] [--steps 6] [--threads 1] [--ops 15] [key=value ...]

Components run in the trainer's order on pre-encoded batches (the encoding is timed separately), each timed
with perf_counter around synchronous CPU work; best and median over the steps after one warm-up step. Tokens per
sample = the sequence length of the encoded batch (image patches + row ends + prompt + action tokens).
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import time
from collections import defaultdict
from pathlib import Path

import torch


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True, help="dataset directory")
    ap.add_argument("--kind", choices=("rl", "il"), default=None, help="objective (default: the config's)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--ops", type=int, default=0, help="also print the top N operators of torch.profiler")
    ap.add_argument("overrides", nargs="*", help="key=value config overrides")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from more_model.losses import bellman_targets, more_loss
    from more_model.policy import MoREPolicy
    from more_model.target import TargetNetwork
    from more_training.config import load_config
    from more_training.data import TrainBatches
    from more_training.objective import loss_config
    from more_training.trainer import build_optimizer

    overrides = [f"data.train=[{Path(args.data)}]", "data.num_workers=0", f"optim.batch_size={args.batch}"]
    if args.kind:
        overrides.append(f"objective.kind={args.kind}")
    cfg = load_config(args.config, [*overrides, *args.overrides])
    rl = cfg.objective.kind == "rl"
    policy = MoREPolicy.from_config(cfg.model, seed=0)
    policy.set_trainable("full" if cfg.init.train_backbone else "adapters")
    policy.train()
    target = TargetNetwork.from_policy(policy) if rl else None
    opt = build_optimizer(policy, cfg)
    lcfg = loss_config(cfg.objective)
    valid = None if bool(policy.valid_bins.all()) else policy.valid_bins

    ds = TrainBatches(cfg.data, policy.encoder, policy.image_size, args.batch, seed=0, with_next=rl, expert_only=not rl)
    stream = iter(ds)
    t0 = time.perf_counter()
    batches = list(itertools.islice(stream, args.steps + 1))
    encode_s = (time.perf_counter() - t0) / len(batches)

    times: dict[str, list[float]] = defaultdict(list)

    def step(batch, record: bool) -> None:
        def timed(name, fn):
            t = time.perf_counter()
            out = fn()
            if record:
                times[name].append(time.perf_counter() - t)
            return out

        targets = None
        if rl:
            tl = timed("target_forward_s_t", lambda: target.slot_logits(policy, batch.current))
            nl = timed("target_forward_s_next", lambda: target.first_slot_logits(policy, batch.next))
            targets = bellman_targets(
                tl, nl, batch.reward, batch.done, batch.success, batch.steps_to_end, cfg.objective.gamma
            )
        out = timed("online_forward", lambda: policy(batch.current))
        loss = timed(
            "loss",
            lambda: (
                more_loss(
                    lcfg,
                    out.slot_logits,
                    batch.current.bins,
                    out.router_probs,
                    out.token_mask,
                    targets,
                    router_experts=out.router_experts,
                    valid=valid,
                ).loss
            ),
        )
        timed("backward", loss.backward)
        timed("clip", lambda: torch.nn.utils.clip_grad_norm_(policy.trainable_parameters(), cfg.optim.grad_clip))
        timed("adamw", opt.step)
        opt.zero_grad(set_to_none=True)
        if rl:
            timed("polyak", lambda: target.update(policy, cfg.objective.target_tau))

    step(batches[0], record=False)
    walls = []
    for b in batches[1:]:
        t = time.perf_counter()
        step(b, record=True)
        walls.append(time.perf_counter() - t)
    per_sample_ms = {k: round(1000 * statistics.median(v) / args.batch, 3) for k, v in times.items()}
    result = {
        "config": args.config,
        "objective": cfg.objective.kind,
        "batch": args.batch,
        "threads": args.threads,
        "tokens_per_sample": int(batches[0].current.input_ids.shape[1]),
        "slots": policy.num_slots,
        "trainable_params": sum(p.numel() for p in policy.trainable_parameters()),
        "samples_per_s_best": round(args.batch / min(walls), 1),
        "samples_per_s_median": round(args.batch / statistics.median(walls), 1),
        "encode_ms_per_sample": round(1000 * encode_s / args.batch, 3),
        "ms_per_sample_median": per_sample_ms,
    }
    print(json.dumps(result))
    if args.ops:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for b in batches[1:3]:
                step(b, record=False)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.ops))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
