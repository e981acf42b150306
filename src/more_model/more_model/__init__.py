"""The MoRE model (pure torch + transformers, no rclpy): Fuyu backbone + MixLoRA experts read as a Q-function.

    from more_model import load_policy
    policy = load_policy(checkpoint_dir, device="cpu")
    out = policy.decode(images, instructions)   # out.actions [B, 12], out.bins [B, 12], out.q_values [B, 12]

Modules, top-down: config -> tiny_backbone / fuyu_loader -> processor -> action_tokenizer -> mixlora ->
policy -> losses, target -> checkpoint -> info (CLI), bench (CLI), testing. Names below are imported lazily,
so `import more_model` (and every CLI's --help) stays fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MoREConfig": "config",
    "TinyBackboneConfig": "config",
    "fuyu_8b_config": "config",
    "ActionTokenizer": "action_tokenizer",
    "Batch": "processor",
    "BatchEncoder": "processor",
    "MoREPolicy": "policy",
    "DecodeResult": "policy",
    "PolicyOutput": "policy",
    "LossConfig": "losses",
    "LossOutput": "losses",
    "bellman_targets": "losses",
    "more_loss": "losses",
    "TargetNetwork": "target",
    "Checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "load_checkpoint": "checkpoint",
    "load_policy": "checkpoint",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
