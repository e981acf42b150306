"""MoREConfig: every knob of the MoRE model (backbone, adapters, prompt, image size) in one validated dataclass.

A checkpoint stores this config as JSON (`to_dict`/`from_dict`); a model is rebuilt from it alone.
`from_dict` goes through more_common.typed_config, so a bad value is reported by its field name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from more_common.action_contract import ACTION_NAMES
from more_common.typed_config import build, to_dict

# QUART's prompt (QUART-Online preprocessing); the processor appends Fuyu's beginning-of-answer token.
QUART_PROMPT = "What action should the legged robot take to {instruction}?\n"

BackboneKind = Literal["tiny", "fuyu"]
DType = Literal["auto", "float32", "bfloat16", "float16"]
ReasoningKind = Literal["none", "scene"]


@dataclass(frozen=True)
class TinyBackboneConfig:
    """A tiny Persimmon/Fuyu language model built offline (tests, CPU training, the demo)."""

    hidden_size: int = 128
    intermediate_size: int = 512
    num_layers: int = 3
    num_heads: int = 4
    patch_size: int = 16
    max_position_embeddings: int = 512

    def __post_init__(self) -> None:
        for name in ("hidden_size", "intermediate_size", "num_layers", "num_heads", "patch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} must be divisible by num_heads {self.num_heads}")
        head_dim = self.hidden_size // self.num_heads
        if head_dim % 4:
            # partial rotary 0.5 rotates head_dim/2 dims, which must be even
            raise ValueError(f"hidden_size/num_heads = {head_dim} must be divisible by 4")
        if self.max_position_embeddings < 64:
            raise ValueError(f"max_position_embeddings must be >= 64, got {self.max_position_embeddings}")


MAX_SLOT_BINS = 256  # bins are the tokens "0".."255" (QUART's choice)


@dataclass(frozen=True)
class SlotConfig:
    """One decoded action dim: `bins` uniform bins; `first`/`last` are the values of the first and the last bin
    centre (so both are exactly representable, e.g. 0 and 1 for terminate with 2 bins), or both None: the action
    spec's bounds are the bin edges (the contract's own binning)."""

    dim: str
    bins: int
    first: float | None = None
    last: float | None = None

    def __post_init__(self) -> None:
        if self.dim not in ACTION_NAMES:
            raise ValueError(f"dim must be one of {list(ACTION_NAMES)}, got {self.dim!r}")
        if not 2 <= self.bins <= MAX_SLOT_BINS:
            raise ValueError(f"bins of {self.dim} must lie in [2, {MAX_SLOT_BINS}], got {self.bins}")
        if (self.first is None) != (self.last is None):
            raise ValueError(f"{self.dim}: give both first and last bin centres, or neither")
        if self.first is not None and not (math.isfinite(self.first) and math.isfinite(self.last)):
            raise ValueError(f"{self.dim}: first/last must be finite, got {self.first}, {self.last}")
        if self.first is not None and not self.first < self.last:
            raise ValueError(f"{self.dim}: first bin centre {self.first} must be below the last {self.last}")


@dataclass(frozen=True)
class MoREConfig:
    """The model: backbone + MixLoRA experts on the FFNs + LoRA on attention, Q-values over 256 bin tokens.

    backbone          "tiny" (built offline, carried by the checkpoint) or "fuyu" (a local adept/fuyu-8b dir)
    backbone_path     the local Fuyu directory (only for "fuyu"; may be overridden when loading)
    image_height/width  every image is resized to this; multiples of the patch size
    prompt_template   must contain "{instruction}"
    num_experts, top_k  MixLoRA experts per FFN and experts kept per token
    use_moe           False: one plain LoRA per FFN, no router (the paper's "w/o MoE" ablation)
    rank, alpha       LoRA rank and scale (delta = alpha / rank * B A x) for the FFN experts
    attn_rank         LoRA rank on query_key_value and dense (0 disables; scale alpha / attn_rank)
    dropout           LoRA input dropout (train mode only)
    layers            decoder layers that get adapters (empty tuple: all)
    dtype             backbone dtype; "auto": bfloat16 for Fuyu, float32 for tiny
    action_slots      the decoded action dims, in decoding order, each with its own bins (SlotConfig); dims
                      not listed take the stand command's value. Empty: all 12 contract dims in contract order
                      with the action spec's 256 bins each (the paper's decoder)
    text_first        the prompt before the image (Fuyu/QUART put the image first): the image then ends right
                      before the answer, a fixed distance from the action positions whatever the prompt's length,
                      and the patches can attend to the instruction
    reasoning         "none", or "scene": before its action tokens the model writes the scene in words
                      (more_sim.scene_text.scene_reasoning: each lettered box in view and its column, then the
                      named one, "A2C5.C5."), ECoT-style; the actions are decoded after what it wrote
    """

    backbone: BackboneKind = "tiny"
    backbone_path: str | None = None
    tiny: TinyBackboneConfig = field(default_factory=TinyBackboneConfig)
    image_height: int = 64
    image_width: int = 96
    prompt_template: str = QUART_PROMPT
    num_experts: int = 8
    top_k: int = 2
    use_moe: bool = True
    rank: int = 8
    alpha: float = 16.0
    attn_rank: int = 8
    dropout: float = 0.05
    layers: tuple[int, ...] = ()
    dtype: DType = "auto"
    action_slots: tuple[SlotConfig, ...] = ()
    text_first: bool = False
    reasoning: ReasoningKind = "none"

    def __post_init__(self) -> None:
        dims = [s.dim for s in self.action_slots]
        if len(set(dims)) != len(dims):
            raise ValueError(f"action_slots lists a dim more than once: {dims}")
        if self.reasoning not in ("none", "scene"):
            raise ValueError(f"reasoning must be 'none' or 'scene', got {self.reasoning!r}")
        if self.backbone not in ("tiny", "fuyu"):
            raise ValueError(f"backbone must be 'tiny' or 'fuyu', got {self.backbone!r}")
        if "{instruction}" not in self.prompt_template:
            raise ValueError(f"prompt_template must contain '{{instruction}}', got {self.prompt_template!r}")
        try:
            self.prompt_template.format(instruction="x")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"prompt_template {self.prompt_template!r} does not format: {err}") from err
        if self.image_height < 1 or self.image_width < 1:
            raise ValueError(f"image_height/image_width must be >= 1, got {self.image_height}x{self.image_width}")
        patch = self.patch_size
        if self.image_height % patch or self.image_width % patch:
            raise ValueError(
                f"image_height x image_width {self.image_height}x{self.image_width} must be multiples of the "
                f"patch size {patch}"
            )
        if self.num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {self.num_experts}")
        if not 1 <= self.top_k <= self.num_experts:
            raise ValueError(f"top_k must lie in [1, num_experts={self.num_experts}], got {self.top_k}")
        if not self.use_moe and (self.num_experts, self.top_k) != (1, 1):
            raise ValueError(
                f"use_moe=False means one dense LoRA: set num_experts=1 and top_k=1, got "
                f"num_experts={self.num_experts} top_k={self.top_k}"
            )
        if self.rank < 1:
            raise ValueError(f"rank must be >= 1, got {self.rank}")
        if self.attn_rank < 0:
            raise ValueError(f"attn_rank must be >= 0 (0 disables attention LoRA), got {self.attn_rank}")
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"alpha must be a positive number, got {self.alpha}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {self.dropout}")
        if any(i < 0 for i in self.layers) or len(set(self.layers)) != len(self.layers):
            raise ValueError(f"layers must be distinct non-negative indices, got {self.layers}")
        object.__setattr__(self, "layers", tuple(sorted(self.layers)))

    # -- derived -------------------------------------------------------------------------------------
    @property
    def patch_size(self) -> int:
        return self.tiny.patch_size if self.backbone == "tiny" else 30

    @property
    def image_size(self) -> tuple[int, int]:
        return (self.image_height, self.image_width)

    @property
    def lora_scale(self) -> float:
        return self.alpha / self.rank

    @property
    def attn_scale(self) -> float:
        return self.alpha / self.attn_rank if self.attn_rank else 0.0

    def adapted_layers(self, num_layers: int) -> tuple[int, ...]:
        """The decoder layer indices that get adapters, checked against the backbone's depth."""
        if not self.layers:
            return tuple(range(num_layers))
        bad = [i for i in self.layers if i >= num_layers]
        if bad:
            raise ValueError(f"layers {bad} do not exist: the backbone has {num_layers} decoder layers")
        return self.layers

    def resolve_dtype(self) -> str:
        if self.dtype != "auto":
            return self.dtype
        return "bfloat16" if self.backbone == "fuyu" else "float32"

    def replace(self, **changes: Any) -> MoREConfig:
        return replace(self, **changes)

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MoREConfig:
        return build(cls, data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> MoREConfig:
        return cls.from_dict(json.loads(text))


def fuyu_8b_config(**changes: Any) -> MoREConfig:
    """The paper's setting on Fuyu-8B: 8 experts, top-2, rank 32 on all 36 layers, 240x240 images."""
    defaults: dict[str, Any] = dict(
        backbone="fuyu", image_height=240, image_width=240, num_experts=8, top_k=2, rank=32, alpha=64.0, attn_rank=32
    )
    defaults.update(changes)
    return MoREConfig(**defaults)
