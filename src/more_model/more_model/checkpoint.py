"""Checkpoints: safetensors tensors + one JSON file; loadable for inference (`load_policy`) or to resume training.

Layout of a checkpoint directory:
    more_checkpoint.json     format/version, MoREConfig, action spec + bin token ids, tokenizer's special ids,
                             train mode, caller's extra
    adapters.safetensors     LoRA + router tensors (names as in MoREPolicy.named_parameters)
    target.safetensors       the target network's tensors (optional)
    backbone/                tiny backbones only: an ordinary HF directory (config, weights, tokenizer)
A Fuyu checkpoint refers to its local backbone directory by path (overridable when loading).
Nothing is unpickled: tensors come from safetensors, the rest from JSON. The JSON file is written last
(atomically), so a directory without it is an incomplete save.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .action_tokenizer import ActionTokenizer
from .config import MoREConfig
from .fuyu_loader import load_backbone
from .mixlora import is_adapter_name
from .policy import MoREPolicy
from .target import TargetNetwork
from .tiny_backbone import save_backbone_dir

FORMAT = "more-vla-checkpoint"
VERSION = 1
META_FILE = "more_checkpoint.json"
ADAPTERS_FILE = "adapters.safetensors"
TARGET_FILE = "target.safetensors"
BACKBONE_DIR = "backbone"


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or inconsistent."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the policy (device as asked), its target network if saved, the caller's extra data."""

    policy: MoREPolicy
    target: TargetNetwork | None
    extra: dict[str, Any] = field(default_factory=dict)


def _tensors_for_file(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}


def save_checkpoint(
    directory: str | Path,
    policy: MoREPolicy,
    target: TargetNetwork | None = None,
    extra: dict[str, Any] | None = None,
    state_dict: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Save adapters (+ target, + the tiny backbone) and the JSON config. `extra` must be JSON-serialisable.

    `state_dict`: the policy's tensors by `policy.state_dict()` names, when the policy's own are not whole
    (FSDP shards, gathered by the caller): the adapters (+ the tiny backbone's tensors) are taken from it.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    extra = dict(extra or {})
    json.dumps(extra)  # fail before writing anything if the caller's data is not JSON
    if state_dict is None:
        adapters, base = policy.adapter_state_dict(), None
    else:
        adapters = {n: state_dict[n] for n in policy.adapter_state_dict()}
        prefix = "backbone."
        base = {n[len(prefix) :]: t for n, t in state_dict.items() if n.startswith(prefix) and not is_adapter_name(n)}
    save_file(_tensors_for_file(adapters), str(out / ADAPTERS_FILE))
    if target is not None:
        save_file(_tensors_for_file(target.state), str(out / TARGET_FILE))
    elif (out / TARGET_FILE).exists():
        (out / TARGET_FILE).unlink()  # a stale target from an earlier save must not be picked up
    if policy.config.backbone == "tiny":
        base = policy.base_state_dict() if base is None else base
        save_backbone_dir(out / BACKBONE_DIR, policy.backbone, policy.tokenizer, state_dict=base)
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": policy.config.to_dict(),
        "action_tokenizer": policy.action_tokenizer.to_dict(),
        "tokenizer": tokenizer_summary(policy.tokenizer),
        "train_mode": policy.train_mode,
        "backbone_dir": BACKBONE_DIR if policy.config.backbone == "tiny" else policy.config.backbone_path,
        "has_target": target is not None,
        "extra": extra,
    }
    tmp = out / (META_FILE + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, out / META_FILE)
    return out


def tokenizer_summary(tokenizer: Any) -> dict[str, int]:
    """The ids the model depends on besides the bins: a different tokenizer must not load silently."""
    vocab = tokenizer.get_vocab()
    return {
        "vocab_size": len(tokenizer),
        "image_token_id": vocab["|SPEAKER|"],
        "newline_token_id": vocab["|NEWLINE|"],
        "boa_token_id": vocab["<0x04>"],
        "bos_token_id": vocab["<s>"],
    }


def read_meta(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's JSON, validated for format and version."""
    path = Path(directory) / META_FILE
    if not path.is_file():
        raise CheckpointError(f"{directory} is not a MoRE checkpoint (no {META_FILE})")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: version {meta.get('version')!r} is not supported (this code reads {VERSION})")
    return meta


def _load_named(policy: MoREPolicy, tensors: dict[str, torch.Tensor], expected: set[str], what: str) -> None:
    if set(tensors) != expected:
        missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
        raise CheckpointError(f"{what} does not match the model: missing {missing[:3]}, unexpected {extra[:3]}")
    params = dict(policy.named_parameters())
    with torch.no_grad():
        for name, t in tensors.items():
            if params[name].shape != t.shape:
                raise CheckpointError(
                    f"{what}: {name} has shape {tuple(t.shape)}, model has {tuple(params[name].shape)}"
                )
            params[name].copy_(t)


def load_checkpoint(
    directory: str | Path,
    device: str | torch.device = "cpu",
    backbone_path: str | None = None,
) -> Checkpoint:
    """Rebuild the policy (train mode restored, module in eval mode) and its target network from a directory."""
    d = Path(directory)
    meta = read_meta(d)
    config = MoREConfig.from_dict(meta["model"])
    action_tokenizer = ActionTokenizer.from_dict(meta["action_tokenizer"])
    if config.backbone == "tiny":
        bb_path = d / meta["backbone_dir"]
    else:
        bb_path = Path(backbone_path or meta["backbone_dir"] or "")
        if not str(bb_path):
            raise CheckpointError("this Fuyu checkpoint names no backbone directory: pass backbone_path")
        config = config.replace(backbone_path=str(bb_path))
    backbone, tokenizer = load_backbone(bb_path, dtype=config.resolve_dtype(), device=device)
    saved = meta.get("tokenizer")
    if saved is not None and saved != tokenizer_summary(tokenizer):
        raise CheckpointError(f"the backbone's tokenizer {tokenizer_summary(tokenizer)} is not the saved one {saved}")
    if not action_tokenizer.matches(tokenizer):
        raise CheckpointError(
            "the backbone's tokenizer maps bins to other token ids than the checkpoint was trained on"
        )
    if tuple(action_tokenizer.slots) != tuple(config.action_slots):
        raise CheckpointError("the checkpoint's action tokenizer slots differ from its model config's action_slots")
    policy = MoREPolicy(config, backbone, tokenizer, action_tokenizer).to(device)
    adapters = load_file(str(d / ADAPTERS_FILE))
    _load_named(policy, adapters, set(policy.adapter_state_dict()), ADAPTERS_FILE)
    policy.set_trainable(meta.get("train_mode", "adapters"))
    target = None
    if meta.get("has_target"):
        state = load_file(str(d / TARGET_FILE), device=str(torch.device(device)))
        expected = set(policy.trainable_state_dict())
        if set(state) != expected:
            raise CheckpointError(f"{TARGET_FILE} does not hold the policy's trainable tensors")
        target = TargetNetwork(state)
    return Checkpoint(policy=policy.eval(), target=target, extra=meta.get("extra", {}))


def load_policy(
    checkpoint_dir: str | Path, device: str | torch.device = "cpu", backbone_path: str | None = None
) -> MoREPolicy:
    """A MoRE policy in eval mode, ready for `decode` (adapters stored in the backbone's dtype; not for training)."""
    policy = load_checkpoint(checkpoint_dir, device=device, backbone_path=backbone_path).policy
    return policy.cast_adapters_for_inference().eval()
