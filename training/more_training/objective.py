"""One training step's loss from a micro-batch, using the model package's losses and target network.

RL: Bellman targets from the target network (first, under no_grad: s_t with the data's actions, and s_{t+1}
prompt-only), then the online forward (through DDP/FSDP when distributed) and `more_loss` (TD + alpha *
conservative + beta * load balance), plus optionally `imitation_weight` x the cross-entropy of the expert
samples' bins. IL: the online forward and cross-entropy (+ beta * load balance). A model with reasoning adds
`reasoning_weight` x the cross-entropy of its teacher-forced reasoning tokens, under either objective.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import nn

from more_model.losses import LossConfig, LossOutput, bellman_targets, imitation_loss, more_loss
from more_model.policy import MoREPolicy
from more_model.target import TargetNetwork

from .config import ObjectiveConfig
from .data import TrainBatch


def loss_config(cfg: ObjectiveConfig) -> LossConfig:
    return LossConfig(
        objective=cfg.kind,
        gamma=cfg.gamma,
        alpha=cfg.conservative_weight,
        beta=cfg.load_balance_weight,
        mc_lower_bound=cfg.mc_lower_bound,
        regression=cfg.regression,
    )


def step_loss(
    cfg: LossConfig,
    forward: nn.Module,
    policy: MoREPolicy,
    target: TargetNetwork | None,
    batch: TrainBatch,
    imitation_weight: float = 0.0,
    reasoning_weight: float = 1.0,
) -> LossOutput:
    """`forward` is the module to call for the online pass (the policy, or its DDP/FSDP wrapper)."""
    targets = None
    if cfg.objective == "rl":
        if target is None or batch.next is None:
            raise ValueError("the RL objective needs a target network and next-state batches")
        # target forwards first: nothing of the online graph exists yet when the target tensors are swapped in
        target_logits = target.slot_logits(policy, batch.current)
        next_logits = target.first_slot_logits(policy, batch.next)
        targets = bellman_targets(
            target_logits,
            next_logits,
            batch.reward,
            batch.done,
            batch.success,
            batch.steps_to_end,
            gamma=cfg.gamma,
            mc_lower_bound=cfg.mc_lower_bound,
        )
    out = forward(batch.current)
    valid = None if bool(policy.valid_bins.all()) else policy.valid_bins  # action_slots: each slot's own bins
    result = more_loss(
        cfg,
        out.slot_logits,
        batch.current.bins,
        out.router_probs,
        out.token_mask,
        targets,
        router_experts=out.router_experts,
        valid=valid,
    )
    if cfg.objective == "rl" and imitation_weight > 0 and bool(batch.expert.any()):
        ce = imitation_loss(out.slot_logits, batch.current.bins, batch.expert.float())  # expert samples only
        result.loss = result.loss + imitation_weight * ce
        result.metrics["imitation"] = float(ce.detach())
        result.metrics["loss"] = float(result.loss.detach())
    if out.reasoning_logits is not None and out.reasoning_targets.numel() > 0:
        ce = F.cross_entropy(out.reasoning_logits, out.reasoning_targets)  # mean over the batch's reasoning tokens
        hit = (out.reasoning_logits.argmax(-1) == out.reasoning_targets).float().mean()
        result.loss = result.loss + reasoning_weight * ce
        result.metrics["reasoning"] = float(ce.detach())
        result.metrics["reasoning_acc"] = float(hit)
        result.metrics["loss"] = float(result.loss.detach())
    return result
