"""The training loop: the same code on one CPU process and under torchrun on many GPUs/nodes.

Per optimizer step: `grad_accum` micro-batches (DDP gradient sync only on the last), loss from
objective.step_loss (RL by default), gradient clipping, AdamW with the warm-up + cosine learning rate, a
Polyak step of the target network every `target_every` steps, telemetry on rank 0, atomic checkpoints
every `ckpt_every` steps (and at the end), optional closed-loop evaluation with `more-sim eval`.

A checkpoint directory is a complete `more_vla_policy` checkpoint (`more-sim eval --policy DIR` and
`load_policy(DIR)` work on it) plus the training state for an exact resume: optimizer (safetensors + JSON),
every rank's RNG states, the step and the data position (micro-batches consumed per rank) in
more_checkpoint.json's `extra.trainer`, and the config in train_config.yaml.
"""

from __future__ import annotations

import contextlib
import gc
import json
import logging
import math
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as tdist
from safetensors.torch import load_file, save_file

from more_common.typed_config import ConfigError
from more_model.checkpoint import load_checkpoint, save_checkpoint
from more_model.mixlora import is_adapter_name
from more_model.policy import MoREPolicy
from more_model.target import TargetNetwork

from . import distributed
from .checkpoint import CheckpointManager, load_optimizer, rng_state, save_optimizer, set_rng_state
from .config import CONFIG_FILE, TrainConfig, save_config
from .data import TrainBatches, make_loader
from .metrics import Telemetry
from .objective import loss_config, step_loss
from .schedule import WarmupCosine

log = logging.getLogger(__name__)

RNG_FILE = "rng.safetensors"
RNG_META_FILE = "rng.json"


class TrainingError(RuntimeError):
    """Training cannot go on (non-finite loss, a run directory holding another configuration, ...)."""


@dataclass
class TrainState:
    step: int = 0  # optimizer steps done
    batches: int = 0  # micro-batches consumed per rank (the data position)
    samples: int = 0  # samples seen, all ranks

    def to_dict(self) -> dict[str, int]:
        return {"step": self.step, "batches": self.batches, "samples": self.samples}


def build_optimizer(policy: MoREPolicy, cfg: TrainConfig) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, norms and 1-D tensors (standard practice)."""
    decay, no_decay = [], []
    for _, p in policy.named_parameters():
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.optim.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    o = cfg.optim
    return torch.optim.AdamW(groups, lr=o.lr, betas=o.betas, eps=o.eps)


def _autocast(cfg: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    precision = cfg.run.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _gather_rng(info: distributed.DistInfo) -> list[tuple[dict[str, torch.Tensor], dict[str, Any]]]:
    mine = rng_state()
    if not info.distributed:
        return [mine]
    box: list[Any] = [None] * info.world_size
    tdist.all_gather_object(box, mine)
    return box


def _write_rng(directory: Path, states: list[tuple[dict[str, torch.Tensor], dict[str, Any]]]) -> None:
    tensors = {f"rank{r}/{k}": v.contiguous() for r, (ts, _) in enumerate(states) for k, v in ts.items()}
    save_file(tensors, str(directory / RNG_FILE))
    (directory / RNG_META_FILE).write_text(json.dumps([meta for _, meta in states]))


def _restore_rng(directory: Path, info: distributed.DistInfo) -> None:
    metas = json.loads((directory / RNG_META_FILE).read_text())
    if len(metas) != info.world_size:
        log.warning(
            "checkpoint has RNG states of %d ranks, this run has %d: RNG not restored", len(metas), info.world_size
        )
        return
    tensors = load_file(str(directory / RNG_FILE))
    prefix = f"rank{info.rank}/"
    set_rng_state({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}, metas[info.rank])


class Trainer:
    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.info = distributed.init(cfg.dist, cfg.run.device)
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        self.out = Path(cfg.run.out_dir)
        self.per_rank_batch = cfg.per_rank_batch(self.info.world_size)
        self.ckpts = CheckpointManager(self.out / "checkpoints", cfg.run.keep_last) if self.info.is_main else None
        distributed.barrier(self.info)
        self.loss_cfg = loss_config(cfg.objective)
        self.state = TrainState()
        self.schedule = WarmupCosine(
            cfg.optim.lr, cfg.optim.warmup_steps, cfg.optim.max_steps, cfg.optim.final_lr_fraction
        )
        resume_dir = self._find_resume()
        self.policy, self.target, extra = self._build_model(resume_dir)
        find_unused = cfg.model.use_moe and cfg.model.num_experts > cfg.model.top_k
        # FSDP shards the policy in place (DTensor parameters): the target copy and the optimizer follow that
        self.forward = distributed.wrap(self.policy, self.info, cfg.dist, find_unused=find_unused)
        if self.target is not None:
            params = dict(self.policy.named_parameters())
            self.target.state = {k: distributed.shard_like(v, params[k]) for k, v in self.target.state.items()}
        self.optimizer = build_optimizer(self.policy, cfg)
        if resume_dir is not None:
            load_optimizer(self.optimizer, resume_dir)
            distributed.shard_optimizer_state(self.optimizer)
            self.state = TrainState(**extra["trainer"]["state"])
        self.resume_dir = resume_dir

    # -- set-up ------------------------------------------------------------------------------------
    def _find_resume(self) -> Path | None:
        found = None
        if self.cfg.run.resume and self.info.is_main:
            found = self.ckpts.latest()
        found = distributed.broadcast_object(str(found) if found else None, self.info)
        return Path(found) if found else None

    def _build_model(self, resume_dir: Path | None) -> tuple[MoREPolicy, TargetNetwork | None, dict[str, Any]]:
        cfg, device = self.cfg, self.info.device
        extra: dict[str, Any] = {}
        if resume_dir is not None:
            ckpt = load_checkpoint(resume_dir, device=device, backbone_path=cfg.model.backbone_path)
            extra = ckpt.extra
            saved = extra.get("trainer", {}).get("fingerprint")
            if saved != cfg.fingerprint():
                raise ConfigError(
                    f"run.out_dir {self.out} holds a run with another configuration (fingerprint {saved} != "
                    f"{cfg.fingerprint()}): use a new run.out_dir, or run.resume=false to start over there"
                )
            policy, target = ckpt.policy, ckpt.target
        elif cfg.init.init_from:
            ckpt = load_checkpoint(cfg.init.init_from, device=device, backbone_path=cfg.model.backbone_path)
            policy, target = ckpt.policy, None
            _note_init_model(cfg.init.init_from, policy.config, cfg.model)
            if cfg.model.reasoning != "none":
                policy.set_reasoning(cfg.model.reasoning)  # a model that did not reason learns to (never the reverse)
            if cfg.model.action_slots and cfg.model.action_slots != policy.config.action_slots:
                policy.set_action_slots(cfg.model.action_slots)  # e.g. a new dim to learn; the weights carry over
        else:
            policy = MoREPolicy.from_config(cfg.model, seed=cfg.init.backbone_seed, device=device)
            target = None
        policy.set_trainable("full" if cfg.init.train_backbone else "adapters")
        if target is None and cfg.objective.kind == "rl":
            target = TargetNetwork.from_policy(policy)
        if cfg.init.gradient_checkpointing:
            policy.backbone.gradient_checkpointing_enable()
        return policy.train(), target, extra

    # -- checkpoints -------------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Save a checkpoint of the current step (rank 0 writes, every rank contributes its RNG state).

        Under FSDP every rank takes part in gathering the sharded parameters, target and optimizer tensors;
        the files are the same as a single process's (unsharded).
        """
        rngs = _gather_rng(self.info)
        optimizer_state = distributed.full_optimizer_state(self.optimizer)
        target = self.target
        if target is not None and any(distributed.is_sharded(t) for t in target.state.values()):
            target = TargetNetwork({k: distributed.full_tensor(v) for k, v in target.state.items()})
        policy_state = self._full_policy_state()
        path = None
        if self.info.is_main:
            extra = {
                "trainer": {
                    "state": self.state.to_dict(),
                    "fingerprint": self.cfg.fingerprint(),
                    "world_size": self.info.world_size,
                    "objective": self.cfg.objective.kind,
                }
            }

            def write(d: Path) -> None:
                save_checkpoint(d, self.policy, target, extra=extra, state_dict=policy_state)
                save_optimizer(self.optimizer, d, state_dict=optimizer_state)
                _write_rng(d, rngs)
                save_config(self.cfg, d / CONFIG_FILE)

            path = self.ckpts.save(self.state.step, write)
        distributed.barrier(self.info)
        return path

    def _full_policy_state(self) -> dict[str, torch.Tensor] | None:
        """Under FSDP: the whole tensors a checkpoint stores (adapters; + the backbone when it is the tiny one,
        which trains and is saved), gathered on every rank in state_dict order. None when nothing is sharded."""
        state = self.policy.state_dict()
        if not any(distributed.is_sharded(t) for t in state.values()):
            return None
        keep_all = self.policy.config.backbone == "tiny"
        return {n: distributed.full_tensor(t) for n, t in state.items() if keep_all or is_adapter_name(n)}

    # -- the loop ----------------------------------------------------------------------------------
    def _loader(self) -> Any:
        cfg = self.cfg
        ds = TrainBatches(
            cfg.data,
            self.policy.encoder,
            self.policy.image_size,
            self.per_rank_batch,
            seed=cfg.run.seed,
            rank=self.info.rank,
            world_size=self.info.world_size,
            with_next=cfg.objective.kind == "rl",
            expert_only=cfg.objective.kind == "il",
            start_batch=self.state.batches,
            curriculum_batches=cfg.data.curriculum_steps * cfg.optim.grad_accum,
        )
        return make_loader(ds, pin_memory=self.info.device.type == "cuda")

    def _evaluate(self, ckpt: Path, telemetry: Telemetry) -> None:
        """`more-sim eval` on a checkpoint in a subprocess; success rates logged as eval/<task>."""
        e = self.cfg.eval
        out_dir = self.out / "eval" / ckpt.name
        cmd = [
            sys.executable, "-m", "more_sim.cli", "eval", "--policy", str(ckpt), "--tasks", ",".join(e.tasks),
            "--episodes-per-task", str(e.episodes), "--split", e.split, "--out", str(out_dir), "--json",
            *e.extra_args,
        ]  # fmt: skip
        try:
            proc = subprocess.run(cmd, check=True, timeout=e.timeout_s, capture_output=True, text=True)
            rates = json.loads(proc.stdout.strip().splitlines()[-1])
            values = {f"eval/{k}": float(v) for k, v in rates.items() if isinstance(v, (int, float))}
            telemetry.log(self.state.step, values)
            telemetry.message(f"step {self.state.step} eval ({e.split}, {e.episodes}/task): {values}")
        except (subprocess.SubprocessError, OSError, ValueError, IndexError) as err:
            telemetry.message(f"step {self.state.step}: evaluation failed: {err}")

    def train(self) -> Path | None:
        cfg, info = self.cfg, self.info
        if info.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.out / CONFIG_FILE)
        telemetry = Telemetry(
            self.out, cfg.optim.max_steps, self.state.step, info.is_main, cfg.run.progress, cfg.run.tensorboard
        )
        if self.resume_dir is not None:
            telemetry.message(f"resuming from {self.resume_dir} at step {self.state.step}")
        elif cfg.init.init_from:
            telemetry.message(f"initialised from {cfg.init.init_from} (its weights; a new optimizer and schedule)")
        loader = iter(self._loader())
        # seeded after the loader exists (it draws nothing from the global RNG, see data.make_loader)
        if self.resume_dir is not None:
            _restore_rng(self.resume_dir, info)
        elif self.state.step == 0:
            torch.manual_seed(cfg.run.seed * 1000 + info.rank)
        t_start = time.monotonic()
        last_save_t = t_start
        window_t, window_samples = time.monotonic(), 0
        metric_sums: dict[str, float] = {}
        metric_count = 0
        last_ckpt: Path | None = None
        try:
            while self.state.step < cfg.optim.max_steps:
                lr = self.schedule(self.state.step)
                for group in self.optimizer.param_groups:
                    group["lr"] = lr
                stats: dict[str, int] = {}
                for micro in range(cfg.optim.grad_accum):
                    batch = next(loader).to(info.device)
                    stats = batch.stats
                    sync = micro == cfg.optim.grad_accum - 1
                    with distributed.gradient_sync(self.forward, sync):
                        with _autocast(cfg, info.device):
                            out = step_loss(
                                self.loss_cfg, self.forward, self.policy, self.target, batch,
                                cfg.objective.imitation_weight, cfg.objective.reasoning_weight,
                            )  # fmt: skip
                            loss = out.loss / cfg.optim.grad_accum
                        if not math.isfinite(out.metrics["loss"]):
                            raise TrainingError(f"non-finite loss {out.metrics['loss']} at step {self.state.step}")
                        loss.backward()
                    self.state.batches += 1
                    for k, v in out.metrics.items():
                        metric_sums[k] = metric_sums.get(k, 0.0) + v
                    metric_count += 1
                grad_norm = 0.0
                if cfg.optim.grad_clip > 0:
                    norm = torch.nn.utils.clip_grad_norm_(self.policy.trainable_parameters(), cfg.optim.grad_clip)
                    grad_norm = float(distributed.full_tensor(norm))
                self.optimizer.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.state.step += 1
                self.state.samples += cfg.optim.batch_size
                window_samples += cfg.optim.batch_size
                if self.target is not None and self.state.step % cfg.objective.target_every == 0:
                    self.target.update(self.policy, cfg.objective.target_tau)
                telemetry.step()
                if self.state.step % cfg.run.log_every == 0 or self.state.step == cfg.optim.max_steps:
                    now = time.monotonic()
                    values = {k: v / metric_count for k, v in metric_sums.items()}
                    values = distributed.mean_over_ranks(values, info)
                    values.update(
                        lr=lr,
                        grad_norm=grad_norm,
                        samples_per_s=window_samples / max(now - window_t, 1e-9),
                        samples=self.state.samples,
                        epoch=stats.get("epoch", 0),
                        corrupt_shards=stats.get("corrupt_shards", 0),
                    )
                    telemetry.log(self.state.step, values)
                    metric_sums, metric_count = {}, 0
                    window_t, window_samples = now, 0
                elapsed = time.monotonic() - t_start
                out_of_time = bool(cfg.run.max_time_s and elapsed > cfg.run.max_time_s)
                out_of_time = bool(distributed.broadcast_object(out_of_time, info))
                due_time = bool(cfg.run.ckpt_every_s and time.monotonic() - last_save_t > cfg.run.ckpt_every_s)
                due_time = bool(distributed.broadcast_object(due_time, info))
                if (
                    self.state.step % cfg.run.ckpt_every == 0
                    or due_time
                    or out_of_time
                    or self.state.step == cfg.optim.max_steps
                ):
                    last_ckpt = self.save()
                    last_save_t = time.monotonic()
                    if cfg.eval.every_steps and info.is_main and self.state.step % cfg.eval.every_steps == 0:
                        self._evaluate(last_ckpt, telemetry)
                if out_of_time:
                    telemetry.message(f"run.max_time_s reached at step {self.state.step}: stopping")
                    break
        finally:
            telemetry.close()
        if info.is_main:
            try:
                from .plot import plot_curves

                plot_curves(self.out)
            except (ValueError, OSError) as err:
                log.warning("no training-curve PNG: %s", err)
        return last_ckpt

    def close(self) -> None:
        # FSDP's DTensors (through their device mesh) and DDP's reducer hold the process group, and the module hooks
        # make reference cycles: left to the garbage collector, gloo's threads were torn down during interpreter
        # finalisation and aborted a rank ("terminate called without an active exception", ~1 two-rank run in 15
        # on 2 busy cores). Release them here, while the interpreter is whole, then destroy the group.
        self.forward = self.policy = self.target = self.optimizer = None
        gc.collect()
        distributed.shutdown(self.info)


def train(cfg: TrainConfig) -> Path | None:
    """Run training to cfg.optim.max_steps (resuming if a checkpoint exists); return the last checkpoint."""
    trainer = Trainer(cfg)
    try:
        return trainer.train()
    finally:
        trainer.close()


def _note_init_model(path: str, saved: Any, wanted: Any) -> None:
    """init.init_from takes the checkpoint's model as it is (its architecture, image size, adapters): the config's
    model section does not apply to it, except `reasoning` (which can be switched on) and non-empty
    `action_slots` (the slots to decode from now on). Say which fields differ."""
    a, b = saved.to_dict(), wanted.to_dict()
    applied = {"reasoning", "backbone_path", *(("action_slots",) if wanted.action_slots else ())}
    differ = sorted(k for k in a.keys() | b.keys() if k not in applied and a.get(k) != b.get(k))
    if differ:
        log.warning(
            "init.init_from %s: the checkpoint's model is used; the config's model differs in %s (not applied)",
            path,
            differ,
        )
