"""The target network: a Polyak/EMA copy of the trainable tensors only; the frozen backbone is shared.

    target <- (1 - tau) * target + tau * online        (tau = 1: hard copy)

In "adapters" mode the copy holds LoRA + router tensors (a few % of the model); the online policy's
frozen backbone tensors are used as they are. Target forwards run in eval mode (no dropout) without gradients,
with the copied tensors swapped in by torch.func.functional_call; under FSDP (DTensor parameters), whose hooks
would override such a swap, the target values are copied into the shards and the online values copied back.
The state may hold DTensor shards laid out like the online parameters: every operation here is element-wise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn

from .policy import MoREPolicy, PolicyOutput
from .processor import Batch


@contextmanager
def _eval_mode(module: nn.Module) -> Iterator[None]:
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def _is_sharded(policy: nn.Module) -> bool:
    from torch.distributed.tensor import DTensor

    return any(isinstance(p, DTensor) for p in policy.parameters())


def _reshard(policy: nn.Module) -> None:
    """Under FSDP, put every unit back into its sharded state (its registered parameters are then the shards
    that the next forward gathers); a no-op for a plain module."""
    from torch.distributed.fsdp import FSDPModule

    for m in policy.modules():
        if isinstance(m, FSDPModule):
            m.reshard()


class TargetNetwork:
    """Polyak-averaged copy of `policy.trainable_state_dict()`."""

    def __init__(self, state: Mapping[str, torch.Tensor]) -> None:
        self.state: dict[str, torch.Tensor] = {k: v.detach().clone() for k, v in state.items()}

    @classmethod
    def from_policy(cls, policy: MoREPolicy) -> TargetNetwork:
        return cls(policy.trainable_state_dict())

    def _check(self, policy: MoREPolicy) -> dict[str, torch.Tensor]:
        online = policy.trainable_state_dict()
        if set(online) != set(self.state):
            missing, extra = sorted(set(online) - set(self.state)), sorted(set(self.state) - set(online))
            raise ValueError(
                f"target does not match the policy's trainable tensors: missing {missing[:3]}, extra {extra[:3]}"
            )
        return online

    @torch.no_grad()
    def update(self, policy: MoREPolicy, tau: float) -> None:
        """Polyak step toward the online tensors."""
        if not 0.0 <= tau <= 1.0:
            raise ValueError(f"tau must lie in [0, 1], got {tau}")
        online = self._check(policy)
        for name, t in self.state.items():
            t.lerp_(online[name].to(t.dtype), tau)

    @torch.no_grad()
    def forward(self, policy: MoREPolicy, batch: Batch) -> PolicyOutput:
        """The policy's forward with the target tensors swapped in (backbone shared), eval mode, no grad.

        Plain parameters: torch.func.functional_call swaps the target tensors in for this call (no copies).
        FSDP: its hooks gather the registered parameters, so the target values are copied into the shards and
        the online values copied back afterwards (also on an exception); call it before the online forward of
        a step.
        """
        self._check(policy)
        if not _is_sharded(policy):
            with _eval_mode(policy):  # no copies: the target tensors stand in for the parameters for this call
                return torch.func.functional_call(policy, self.state, (batch,), strict=False)
        _reshard(policy)
        params = dict(policy.named_parameters())
        online = {name: params[name].detach().clone() for name in self.state}
        try:
            for name, t in self.state.items():
                params[name].copy_(t)
            with _eval_mode(policy):
                return policy(batch)
        finally:
            _reshard(policy)  # drop the gathered target values, so the next forward gathers the online ones
            for name, t in online.items():
                params[name].copy_(t)

    def slot_logits(self, policy: MoREPolicy, batch: Batch) -> torch.Tensor:
        """Target logits [B, 12, 256] for a batch with actions."""
        if not batch.has_actions:
            raise ValueError("slot_logits needs a batch encoded with actions (bins)")
        return self.forward(policy, batch).slot_logits

    def first_slot_logits(self, policy: MoREPolicy, batch: Batch) -> torch.Tensor:
        """Target slot-1 logits [B, 256] for a prompt-only batch (the next state)."""
        if batch.has_actions:
            raise ValueError("first_slot_logits takes a prompt-only batch")
        return self.forward(policy, batch).slot_logits[:, 0]

    def to(self, device: torch.device | str) -> TargetNetwork:
        self.state = {k: v.to(device) for k, v in self.state.items()}
        return self

    def num_params(self) -> int:
        return sum(t.numel() for t in self.state.values())
