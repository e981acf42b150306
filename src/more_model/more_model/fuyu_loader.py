"""Load a Fuyu backbone + tokenizer from a local directory in the adept/fuyu-8b layout (no hub access).

The same function loads the tiny backbone a checkpoint carries (it is saved in the same layout).
Weights must be safetensors: pickled .bin weights are refused (they can run code when loaded).
`meta_fuyu_8b()` builds the full-size architecture on the meta device (shapes only, no memory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class BackboneError(ValueError):
    """The backbone directory is missing, incomplete or not a Fuyu model."""


def check_backbone_dir(path: str | Path) -> Path:
    """Validate the layout before loading anything heavy; errors name what is missing."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise BackboneError(f"backbone directory {p} does not exist (expected a local adept/fuyu-8b layout)")
    config = p / "config.json"
    if not config.is_file():
        raise BackboneError(f"{p} has no config.json")
    model_type = json.loads(config.read_text()).get("model_type")
    if model_type != "fuyu":
        raise BackboneError(f"{config} has model_type {model_type!r}, expected 'fuyu'")
    if not any(p.glob("*.safetensors")):
        raise BackboneError(f"{p} has no *.safetensors weights (pickled .bin weights are not loaded)")
    if not (p / "tokenizer.json").is_file():
        raise BackboneError(f"{p} has no tokenizer.json")
    return p


def load_tokenizer(path: str | Path) -> Any:
    """The tokenizer of a Fuyu directory, loaded as FuyuProcessor loads it (fast tokenizers backend)."""
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    tokenizer = TokenizersBackend.from_pretrained(str(path))
    if "token_type_ids" in tokenizer.model_input_names:
        tokenizer.model_input_names.remove("token_type_ids")
    return tokenizer


def load_backbone(path: str | Path, dtype: str = "bfloat16", device: str | torch.device = "cpu") -> tuple[Any, Any]:
    """(FuyuForCausalLM in eval mode on `device`, tokenizer) from a local directory."""
    from transformers import FuyuForCausalLM

    if dtype not in DTYPES:
        raise BackboneError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    p = check_backbone_dir(path)
    device = torch.device(device)
    kwargs: dict[str, Any] = {"dtype": DTYPES[dtype], "use_safetensors": True}
    if device.type == "cuda":
        kwargs["device_map"] = {"": str(device)}  # stream shards straight to the GPU
    model = FuyuForCausalLM.from_pretrained(str(p), **kwargs)
    if device.type != "cuda":
        model = model.to(device)
        _own_aligned_storage(model)
    return model.eval(), load_tokenizer(p)


@torch.no_grad()
def _own_aligned_storage(model: torch.nn.Module) -> None:
    """Copy weights out of the memory-mapped file into fresh (64-byte aligned) tensors.

    Tensors inside a safetensors file are only 8-byte aligned; CPU matmul kernels then take other code
    paths and results differ in the last bit from the model that was saved. Fresh copies make a loaded
    model compute bit-identically to the saved one.
    """
    for param in model.parameters():
        param.data = param.data.clone()
    for module in model.modules():
        for name, buf in module.named_buffers(recurse=False):
            setattr(module, name, buf.clone())


def meta_fuyu_8b() -> Any:
    """FuyuForCausalLM with Fuyu-8B's default configuration, on the meta device (no weights allocated)."""
    from transformers import FuyuConfig, FuyuForCausalLM

    with torch.device("meta"):
        return FuyuForCausalLM(FuyuConfig())
