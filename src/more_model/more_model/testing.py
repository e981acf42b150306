"""Helpers for tests in every package: a tiny MoRE policy and a tiny checkpoint, built offline in about a second.

    from more_model.testing import make_tiny_checkpoint
    ckpt = make_tiny_checkpoint(tmp_path / "policy", seed=0)
    policy = load_policy(ckpt)

The weights are random (seeded): the decoded actions are arbitrary but deterministic per seed. The
adapters' B matrices are randomised too, so the adapters change the output (a fresh LoRA would not).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from more_common.action_contract import ActionSpec

from .checkpoint import save_checkpoint
from .config import MoREConfig, TinyBackboneConfig
from .mixlora import is_adapter_name
from .policy import MoREPolicy
from .target import TargetNetwork

M = TypeVar("M", bound=nn.Module)


def tiny_config(**changes: Any) -> MoREConfig:
    """The small test configuration: 2 layers of width 64, 4 experts top-2, rank 4, 32x48 images in 16-px patches."""
    defaults: dict[str, Any] = dict(
        tiny=TinyBackboneConfig(hidden_size=64, intermediate_size=256, num_layers=2, num_heads=4, patch_size=16),
        image_height=32,
        image_width=48,
        num_experts=4,
        top_k=2,
        rank=4,
        alpha=8.0,
        attn_rank=4,
        dropout=0.0,
    )
    defaults.update(changes)
    return MoREConfig(**defaults)


@torch.no_grad()
def randomize_adapters(module: M, seed: int = 0, std: float = 0.05) -> M:
    """Give every LoRA B matrix of `module` (a policy or a backbone) random values (fresh adapters are no-ops)."""
    g = torch.Generator().manual_seed(seed)
    for name, p in module.named_parameters():
        if is_adapter_name(name) and name.endswith("_B"):
            p.copy_(torch.randn(p.shape, generator=g).to(p) * std)
    return module


def make_tiny_policy(
    seed: int = 0, config: MoREConfig | None = None, action_spec: ActionSpec | None = None
) -> MoREPolicy:
    """A tiny policy in eval mode with randomised adapters."""
    policy = MoREPolicy.from_config(config or tiny_config(), action_spec=action_spec, seed=seed)
    return randomize_adapters(policy, seed=seed).eval()


def make_tiny_checkpoint(directory: str | Path, seed: int = 0, config: MoREConfig | None = None) -> Path:
    """Build and save a tiny random-weight checkpoint (with a target network); returns its directory."""
    policy = make_tiny_policy(seed=seed, config=config)
    return save_checkpoint(directory, policy, target=TargetNetwork.from_policy(policy), extra={"seed": seed})
