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

import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from .action_tokenizer import ActionTokenizer
from .checkpoint_meta import FORMAT, META_FILE, VERSION, CheckpointError, read_meta
from .config import MoREConfig
from .fuyu_loader import load_backbone
from .mixlora import is_adapter_name
from .policy import MoREPolicy
from .target import TargetNetwork
from .tiny_backbone import save_backbone_dir

ADAPTERS_FILE = "adapters.safetensors"
TARGET_FILE = "target.safetensors"
BACKBONE_DIR = "backbone"


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
    if policy.attention_lora_merged:
        raise CheckpointError("the policy's attention LoRA is merged into its base weights: save the unmerged policy")
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


def _load_tensors(path: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """A safetensors file; a missing, truncated or corrupt one raises CheckpointError naming it."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    try:
        return load_file(str(path), device=device)
    except Exception as err:  # SafetensorError (a plain Exception), OSError, ...: the file is unusable
        raise CheckpointError(f"{path}: unreadable safetensors ({type(err).__name__}: {err})") from err


def read_weights(directory: str | Path) -> dict[str, torch.Tensor]:
    """A checkpoint's own tensors on CPU by `MoREPolicy.state_dict()` names, without building a model: the adapters,
    and for a tiny backbone its weights too (a Fuyu checkpoint refers to a frozen backbone it does not hold).
    Defects raise CheckpointError naming the file."""
    d = Path(directory)
    meta = read_meta(d)
    try:
        backbone = MoREConfig.from_dict(meta["model"]).backbone
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise CheckpointError(f"{d / META_FILE}: invalid model ({type(err).__name__}: {err})") from err
    tensors = _load_tensors(d / ADAPTERS_FILE)
    if backbone == "tiny":
        backbone_dir = d / (meta["backbone_dir"] or BACKBONE_DIR)
        files = sorted(backbone_dir.glob("*.safetensors"))
        if not files:
            raise CheckpointError(f"{backbone_dir}: no backbone weights")
        for f in files:
            tensors.update({f"backbone.{k}": t for k, t in _load_tensors(f).items()})
    return tensors


@contextlib.contextmanager
def _quiet_progress(quiet: bool) -> Iterator[None]:
    """No "Loading weights" progress bar on stderr for a tiny backbone (it loads in milliseconds; a program's
    stderr is for its errors)."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    if quiet and was:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if quiet and was:
            hf_logging.enable_progress_bar()


def _check_backbone_names(directory: Path, backbone: torch.nn.Module) -> None:
    """A tiny backbone's weight file must name exactly the model's tensors: transformers initialises a missing
    (e.g. misspelt by a damaged header) tensor at random with only a warning."""
    from safetensors import safe_open

    files = sorted(directory.glob("*.safetensors"))
    names: set[str] = set()
    for f in files:
        try:
            with safe_open(str(f), "pt") as handle:
                names |= set(handle.keys())
        except Exception as err:  # SafetensorError is a plain Exception
            raise CheckpointError(f"{f}: unreadable safetensors ({type(err).__name__}: {err})") from err
    expected = set(backbone.state_dict())
    if names != expected:
        missing, extra = sorted(expected - names), sorted(names - expected)
        raise CheckpointError(
            f"{directory}: weights do not match the model: missing {missing[:3]}, unexpected {extra[:3]}"
        )


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
            if not t.is_floating_point() or not torch.isfinite(t).all():
                raise CheckpointError(f"{what}: {name} is not finite floating point ({t.dtype})")
            params[name].copy_(t)


def load_checkpoint(
    directory: str | Path,
    device: str | torch.device = "cpu",
    backbone_path: str | None = None,
    backbone: tuple[Any, Any] | None = None,
) -> Checkpoint:
    """Rebuild the policy (train mode restored, module in eval mode) and its target network from a directory.

    Any defect of the directory (a missing, truncated or corrupt file, a field of the wrong type) raises
    CheckpointError naming the file.

    `backbone`: a (FuyuForCausalLM, tokenizer) already in memory, used instead of loading one from a directory
    (Fuyu checkpoints only; random-weight models at Fuyu-8B width in tests and benchmarks). It must not carry
    adapters yet; the tokenizer checks below apply to it as to a loaded one.
    """
    d = Path(directory)
    meta = read_meta(d)
    meta_path = d / META_FILE
    try:
        config = MoREConfig.from_dict(meta["model"])
        action_tokenizer = ActionTokenizer.from_dict(meta["action_tokenizer"])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError) as err:
        raise CheckpointError(f"{meta_path}: invalid model or action_tokenizer ({type(err).__name__}: {err})") from err
    # the tensor files first: a damaged one fails in milliseconds, before the (possibly large) backbone loads
    adapters = _load_tensors(d / ADAPTERS_FILE)
    target_state = _load_tensors(d / TARGET_FILE, device=str(torch.device(device))) if meta.get("has_target") else None
    if backbone is not None:
        if config.backbone == "tiny":
            raise CheckpointError(f"{meta_path}: a tiny checkpoint carries its own backbone: pass no backbone")
        backbone, tokenizer = backbone
        bb_path = Path("<in-memory backbone>")
    else:
        if config.backbone == "tiny":
            if not meta["backbone_dir"]:
                raise CheckpointError(f"{meta_path}: a tiny-backbone checkpoint needs backbone_dir")
            bb_path = d / meta["backbone_dir"]
        else:
            bb_path = Path(backbone_path or meta["backbone_dir"] or "")
            if not str(bb_path):
                raise CheckpointError(
                    f"{meta_path}: this Fuyu checkpoint names no backbone directory: pass backbone_path"
                )
            config = config.replace(backbone_path=str(bb_path))
        try:
            with _quiet_progress(config.backbone == "tiny"):
                backbone, tokenizer = load_backbone(bb_path, dtype=config.resolve_dtype(), device=device)
        except Exception as err:  # transformers/tokenizers/safetensors raise many types for a damaged directory
            raise CheckpointError(f"{bb_path}: cannot load the backbone ({type(err).__name__}: {err})") from err
        if config.backbone == "tiny":
            _check_backbone_names(bb_path, backbone)
    try:
        summary = tokenizer_summary(tokenizer)
        same_ids = action_tokenizer.matches(tokenizer)  # the bins of its largest slot (256 by default)
    except (ValueError, KeyError) as err:
        raise CheckpointError(f"{bb_path}: the tokenizer lacks the special or action bin tokens ({err})") from err
    saved = meta.get("tokenizer")
    if saved is not None and saved != summary:
        raise CheckpointError(f"{meta_path}: the backbone's tokenizer {summary} is not the saved one {saved}")
    if not same_ids:
        raise CheckpointError(
            f"{meta_path}: the backbone's tokenizer maps bins to other token ids than the checkpoint was trained on"
        )
    if tuple(action_tokenizer.slots) != tuple(config.action_slots):
        raise CheckpointError(f"{meta_path}: the action tokenizer's slots differ from the model config's action_slots")
    policy = MoREPolicy(config, backbone, tokenizer, action_tokenizer).to(device)
    _load_named(policy, adapters, set(policy.adapter_state_dict()), str(d / ADAPTERS_FILE))
    try:
        policy.set_trainable(meta.get("train_mode", "adapters"))
    except ValueError as err:
        raise CheckpointError(f"{meta_path}: train_mode: {err}") from err
    target = None
    if target_state is not None:
        trainable = policy.trainable_state_dict()
        if set(target_state) != set(trainable):
            raise CheckpointError(f"{d / TARGET_FILE} does not hold the policy's trainable tensors")
        bad = [k for k, t in target_state.items() if t.shape != trainable[k].shape or not torch.isfinite(t).all()]
        if bad:
            raise CheckpointError(f"{d / TARGET_FILE}: {bad[0]} has the wrong shape or non-finite values")
        target = TargetNetwork(target_state)
    return Checkpoint(policy=policy.eval(), target=target, extra=meta.get("extra", {}))


def load_policy(
    checkpoint_dir: str | Path, device: str | torch.device = "cpu", backbone_path: str | None = None
) -> MoREPolicy:
    """A MoRE policy in eval mode, ready for `decode` (adapters stored in the backbone's dtype; not for training)."""
    policy = load_checkpoint(checkpoint_dir, device=device, backbone_path=backbone_path).policy
    return policy.cast_adapters_for_inference().eval()
