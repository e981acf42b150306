"""Images + instructions (+ action bins) -> model tensors, through Fuyu's own processor.

Sequence layout of one sample (left-padded to the batch's longest prompt with id 0):
    [pad...] |SPEAKER| x cols |NEWLINE|  (x rows)  <s> prompt tokens <0x04>  a1 ... a11
                                                                      ^ slot 1 logits are read here
Slot i's logits (i = 1..12) are read at the position BEFORE action token a_i: the boa token <0x04>
for slot 1, a_{i-1} afterwards. a12 is never an input, so a batch with actions has 11 action
tokens and the 12 slot positions are the last 12 positions of every row (left padding keeps them
aligned across the batch). A model with `action_slots` decodes S < 12 slots the same way (S - 1 action tokens).
With `text_first` (MoREConfig) the prompt comes before the image: [pad] <s> prompt (image block) <0x04> a1 ...
With `reasoning` (MoREConfig.reasoning = "scene") the model's own words come between <0x04> and the actions:
    ... <0x04> r1 ... rk  a1 ... a11        (rk: slot 1 is read here; k varies per row, padding stays left)
r_j are single characters of REASONING_ALPHABET; `reasoning_targets` [B, T] holds, at the position before each
r_j, its index in the alphabet (IGNORE elsewhere), which is where the model predicts it.

The one transformers-5.x workaround lives here: `PatchedFuyuImageProcessor` (see its docstring);
`fuyu_processor_bug_present()` is what the test checks so that it fails once upstream is fixed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from transformers.models.fuyu.image_processing_pil_fuyu import FuyuImageProcessorPil

from more_common.action_contract import NUM_DIMS

from .action_tokenizer import ActionTokenizer

NUM_SLOTS = NUM_DIMS  # the default decoder: one token per action dim (a model with action_slots decodes fewer)
REASONING_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789."  # what a reasoning model may write, one token each
REASONING_STOPS = 2  # written reasoning ends at its second full stop (more_sim.scene_text.scene_reasoning)
MAX_REASONING_TOKENS = 16  # 3 boxes: "A2C5E8.C5." is 10
IGNORE = -100  # reasoning_targets where nothing is predicted (torch's cross-entropy ignore_index)


class PatchedFuyuImageProcessor(FuyuImageProcessorPil):
    """FuyuImageProcessorPil whose numpy `patchify_image` also accepts the torch tensor FuyuProcessor passes.

    Bug in transformers 5.24: with images, FuyuProcessor forces return_tensors="pt", so the images reach
    the PIL backend's numpy patchify as torch tensors and `tensor.transpose(0, 1, 3, 2, 4)` raises
    "TypeError: transpose() takes 2 positional arguments but 5 were given". We convert to numpy and back.
    """

    def patchify_image(self, image: Any, patch_size: Any = None) -> Any:
        if isinstance(image, torch.Tensor):
            patches = super().patchify_image(image.detach().cpu().numpy(), patch_size)
            return torch.from_numpy(np.ascontiguousarray(patches))
        return super().patchify_image(image, patch_size)


def fuyu_processor_bug_present(tokenizer: Any) -> bool:
    """True while upstream FuyuProcessor + FuyuImageProcessorPil still fail on an image (the bug above)."""
    from transformers import FuyuProcessor

    upstream = FuyuProcessor(
        image_processor=FuyuImageProcessorPil(size={"height": 30, "width": 30}), tokenizer=tokenizer
    )
    try:
        upstream(images=[np.zeros((30, 30, 3), np.uint8)], text=["x"], return_legacy_image_output=False)
    except TypeError as err:
        return "transpose" in str(err)
    return False


def build_processor(tokenizer: Any, image_size: tuple[int, int], patch_size: int) -> Any:
    """A FuyuProcessor whose image size equals the model's, so images are neither resized nor padded in it."""
    from transformers import FuyuProcessor
    from transformers.image_utils import SizeDict

    height, width = image_size
    image_processor = PatchedFuyuImageProcessor(
        size={"height": height, "width": width}, patch_size=SizeDict(height=patch_size, width=patch_size)
    )
    if "token_type_ids" in tokenizer.model_input_names:
        # as FuyuProcessor.from_pretrained does: the model takes no token_type_ids
        tokenizer.model_input_names = [n for n in tokenizer.model_input_names if n != "token_type_ids"]
    return FuyuProcessor(image_processor=image_processor, tokenizer=tokenizer)


@dataclass
class Batch:
    """Model inputs for B samples. Shapes: T = sequence length, N = total image patches, D = patch pixels.

    input_ids       [B, T] int64, left-padded with 0
    attention_mask  [B, T] int64, 0 on padding
    position_ids    [B, T] int64, counted from each row's first real token
    pixel_values    [N, D] float, the patches of all images in batch order (Fuyu's masked_scatter order)
    bins            [B, S] int64 action bins, one per decoded slot (teacher forcing), or None for prompt-only
                    batches (S = 12 for the default decoder)
    reasoning_targets  [B, T] int64: the alphabet index of the reasoning token at position t + 1, IGNORE
                    elsewhere (None without reasoning)
    reasoning       the reasoning text of each row (None without reasoning)
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor
    pixel_values: torch.Tensor
    bins: torch.Tensor | None = None
    reasoning_targets: torch.Tensor | None = None
    reasoning: tuple[str, ...] | None = None

    @property
    def batch_size(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def has_actions(self) -> bool:
        return self.bins is not None

    @property
    def num_slots(self) -> int:
        """S: the decoded slots of a batch with actions (bins [B, S])."""
        if self.bins is None:
            raise ValueError("a prompt-only batch has no action slots")
        return int(self.bins.shape[1])

    def slot_positions(self) -> torch.Tensor:
        """Positions [S] whose outputs are slot 1..S's logits (needs actions)."""
        if self.bins is None:
            raise ValueError("slot positions need a batch with actions; use the last position for slot 1")
        T = self.input_ids.shape[1]
        return torch.arange(T - self.num_slots, T, device=self.input_ids.device)

    def to(self, device: torch.device | str) -> Batch:
        return Batch(**{f.name: _move(getattr(self, f.name), device) for f in fields(self)})


def _move(value: Any, device: torch.device | str) -> Any:
    return value.to(device, non_blocking=True) if isinstance(value, torch.Tensor) else value


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] mask -> positions 0, 1, ... from each row's first real token (padding gets 0)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


def resize_image(image: Any, image_size: tuple[int, int]) -> np.ndarray:
    """An HxWx3 uint8 RGB array of any size -> the model's (height, width): centre-cropped to the model's aspect
    ratio, then resized (bilinear). Never stretched: a camera of another shape is seen as the simulator renders the
    model's view (the centre of the frame, square pixels); e.g. the D435's 848 x 480 frame keeps its middle
    720 x 480 for a 3:2 model. Images already of the model's size are returned as they are."""
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"images must be HxWx3 RGB arrays, got shape {arr.shape}")
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8, got {arr.dtype}")
    height, width = image_size
    if arr.shape[:2] == (height, width):
        return arr
    h, w = arr.shape[:2]
    if h * width > w * height:  # taller than the model's view: keep the middle rows
        keep = max(1, round(w * height / width))
        arr = arr[(h - keep) // 2 : (h - keep) // 2 + keep]
    elif h * width < w * height:  # wider: keep the middle columns
        keep = max(1, round(h * width / height))
        arr = arr[:, (w - keep) // 2 : (w - keep) // 2 + keep]
    if arr.shape[:2] == (height, width):
        return np.ascontiguousarray(arr)
    return np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((width, height), Image.BILINEAR))


class BatchEncoder:
    """Turns (images, instructions[, bins]) into a `Batch`. Holds no model; safe to use in data workers."""

    def __init__(
        self,
        processor: Any,
        action_tokenizer: ActionTokenizer,
        prompt_template: str,
        image_size: tuple[int, int],
        text_first: bool = False,
        reasoning: bool = False,
    ) -> None:
        self.processor = processor
        self.action_tokenizer = action_tokenizer
        self.prompt_template = prompt_template
        self.image_size = image_size
        self.text_first = text_first
        self.reasoning = reasoning
        tokenizer = processor.tokenizer
        vocab = tokenizer.get_vocab()
        self.reasoning_token_ids = reasoning_token_ids(tokenizer) if reasoning else []
        self._image_ids = (vocab["|SPEAKER|"], vocab["|NEWLINE|"])
        patch = processor.image_processor.patch_size
        patch_h = patch["height"] if isinstance(patch, dict) else patch.height
        patch_w = patch["width"] if isinstance(patch, dict) else patch.width
        self.image_tokens = (image_size[0] // patch_h) * (image_size[1] // patch_w + 1)  # patches + row ends

    def prompt(self, instruction: str) -> str:
        return self.prompt_template.format(instruction=instruction.strip())

    def encode(
        self, images: list[Any], instructions: list[str], bins: Any = None, reasoning: list[str] | None = None
    ) -> Batch:
        """Encode a batch. `bins` [B, S] (one per slot) appends the first S - 1 action tokens (teacher forcing);
        a reasoning encoder needs `reasoning` (one text per row) with them, and places it before them."""
        if isinstance(instructions, str):
            raise TypeError("instructions must be a list of strings, one per image")
        if len(images) != len(instructions) or not images:
            raise ValueError(f"need one instruction per image and at least one: {len(images)} vs {len(instructions)}")
        if reasoning is not None and not self.reasoning:
            raise ValueError("reasoning text given to a model without reasoning (MoREConfig.reasoning = 'none')")
        if self.reasoning and bins is not None and reasoning is None:
            raise ValueError("a reasoning model's actions are teacher-forced after its reasoning: give `reasoning`")
        resized = [resize_image(img, self.image_size) for img in images]
        texts = [self.prompt(s) for s in instructions]
        out = self.processor(images=resized, text=texts, return_legacy_image_output=False)
        input_ids = out["input_ids"].long()  # [B, P]
        attention_mask = out["attention_mask"].long()
        if self.text_first:
            input_ids = self._move_text_first(input_ids, attention_mask)
        pixel_values = out["pixel_values"]  # [N, D]
        targets = None
        if reasoning is not None:
            input_ids, attention_mask, targets = self._append_reasoning(input_ids, attention_mask, reasoning)
        bins_t = None
        if bins is not None:
            bins_np = np.asarray(bins)
            slots = self.action_tokenizer.num_slots
            if bins_np.shape != (len(images), slots):
                raise ValueError(f"bins must have shape ({len(images)}, {slots}), got {bins_np.shape}")
            token_ids = torch.from_numpy(self.action_tokenizer.bins_to_token_ids(bins_np[:, : slots - 1]))
            input_ids = torch.cat([input_ids, token_ids], dim=1)  # [B, P + 11]
            attention_mask = torch.cat([attention_mask, torch.ones_like(token_ids)], dim=1)
            bins_t = torch.from_numpy(bins_np.astype(np.int64))
            if targets is not None:
                targets = torch.cat([targets, torch.full_like(token_ids, IGNORE)], dim=1)
        return Batch(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids_from_mask(attention_mask),
            pixel_values=pixel_values,
            bins=bins_t,
            reasoning_targets=targets,
            reasoning=None if reasoning is None else tuple(reasoning),
        )

    def with_reasoning(self, prompt: Batch, reasoning: list[str]) -> Batch:
        """A prompt-only batch with each row's reasoning appended (what the action decoders then continue)."""
        if prompt.has_actions or prompt.reasoning is not None:
            raise ValueError("with_reasoning takes a prompt-only batch without reasoning")
        ids, mask, targets = self._append_reasoning(prompt.input_ids, prompt.attention_mask, reasoning)
        return Batch(
            input_ids=ids,
            attention_mask=mask,
            position_ids=position_ids_from_mask(mask),
            pixel_values=prompt.pixel_values,
            reasoning_targets=targets,
            reasoning=tuple(reasoning),
        )

    def _append_reasoning(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, reasoning: list[str]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Append each row's reasoning tokens to its prompt and left-pad again: (ids, mask, reasoning_targets)."""
        if not self.reasoning:
            raise ValueError("this encoder has no reasoning (MoREConfig.reasoning = 'none')")
        if isinstance(reasoning, str) or len(reasoning) != input_ids.shape[0]:
            raise ValueError(f"need one reasoning text per row ({input_ids.shape[0]}), got {reasoning!r}")
        codes = [reasoning_codes(text) for text in reasoning]
        alphabet_ids = torch.tensor(self.reasoning_token_ids, dtype=torch.long, device=input_ids.device)
        rows = [input_ids[r][attention_mask[r].bool()] for r in range(input_ids.shape[0])]
        T = max(len(row) + len(c) for row, c in zip(rows, codes, strict=True))
        ids = torch.zeros(len(rows), T, dtype=torch.long, device=input_ids.device)
        mask = torch.zeros_like(ids)
        targets = torch.full_like(ids, IGNORE)
        for r, (row, c) in enumerate(zip(rows, codes, strict=True)):
            k = len(c)
            code = torch.tensor(c, dtype=torch.long, device=input_ids.device)
            ids[r, T - len(row) - k :] = torch.cat([row, alphabet_ids[code]])
            mask[r, T - len(row) - k :] = 1
            targets[r, T - k - 1 : T - 1] = code  # the position before r_j predicts r_j
        return ids, mask, targets

    def _move_text_first(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Each row [pad, image block, <s> prompt <0x04>] -> [pad, <s> prompt, image block, <0x04>].

        The image block then ends right before the answer, so the distance from every action position to each
        patch is the same whatever the prompt's length (RoPE sees only relative positions), and the patches can
        attend to the instruction (causal attention). Patches keep their order, which is all Fuyu's
        masked_scatter of the patch embeddings needs.
        """
        out = input_ids.clone()
        n = self.image_tokens
        for r in range(input_ids.shape[0]):
            f = int((attention_mask[r] == 0).sum())  # left padding
            image, text = input_ids[r, f : f + n], input_ids[r, f + n :]
            if not bool(torch.isin(image, torch.tensor(self._image_ids)).all()) or len(text) < 2:
                raise ValueError("unexpected processor output: the image block is not where text_first expects it")
            out[r, f:] = torch.cat([text[:-1], image, text[-1:]])
        return out

    def encode_actions(self, images: list[Any], instructions: list[str], actions: Any) -> Batch:
        """Like `encode`, from continuous actions [B, 12] (binned per slot by the action tokenizer; NaN raises)."""
        return self.encode(images, instructions, bins=self.action_tokenizer.to_bins(actions))


def reasoning_codes(text: str) -> list[int]:
    """Reasoning text -> indices into REASONING_ALPHABET (one per character); a bad text raises."""
    bad = sorted(set(text) - set(REASONING_ALPHABET))
    if bad or len(text) > MAX_REASONING_TOKENS:
        raise ValueError(
            f"reasoning {text!r} must be at most {MAX_REASONING_TOKENS} characters of {REASONING_ALPHABET!r}"
        )
    return [REASONING_ALPHABET.index(ch) for ch in text]


def reasoning_token_ids(tokenizer: Any) -> list[int]:
    """The token id of each REASONING_ALPHABET character (each must be one token of the vocabulary)."""
    vocab = tokenizer.get_vocab()
    missing = [ch for ch in REASONING_ALPHABET if ch not in vocab]
    if missing:
        raise ValueError(f"the tokenizer has no single token for the reasoning characters {missing}")
    ids = [vocab[ch] for ch in REASONING_ALPHABET]
    assert len(set(ids)) == len(ids), "reasoning characters must map to distinct tokens"
    return ids
