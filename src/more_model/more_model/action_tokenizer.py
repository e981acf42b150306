"""ActionTokenizer: continuous 12-dim actions <-> per-slot bins <-> the backbone's bin token ids.

[Contract]
- Slots: the decoded action dims, in decoding order. Default: all 12 contract dims in contract order, each
  with the action spec's bins (256) between its bounds: exactly `more_common.action_contract.ActionSpec`'s
  arithmetic (the paper's decoder, Fuyu-8B's configuration). With `slots` (config.SlotConfig) a model decodes
  only some dims, each with its own bin count and bin edges; the other dims take the stand command's value,
  so what leaves the model is still the 12-dim contract command (clipping, gait snapping and terminate
  binarisation stay `ActionSpec.for_controller`'s).
- Bins of every slot: bin(x) = clip(floor((x - low) / (high - low) * n), 0, n - 1), value(b) = low + (b + 0.5)
  (high - low) / n, with the slot's edges low/high (a SlotConfig's first/last bin centres c0 < c1 give edges
  c0 - w/2, c1 + w/2 with w = (c1 - c0) / (n - 1)).
- `bin_token_ids[b]` is the token id that stands for bin b in every slot (Fuyu: the token of the string str(b),
  QUART's choice; the tiny tokenizer keeps the same strings). A slot with n bins uses the first n of them;
  `valid_mask()` says which, so a decoder never picks a bin its slot does not have.
- The ids are distinct, so token -> bin is a bijection; a token that is not a bin token raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from more_common.action_contract import ACTION_NAMES, INDEX, NUM_DIMS, STAND_COMMAND, ActionSpec, InvalidActionError

from .config import SlotConfig


def slot_edges(slot: SlotConfig, spec: ActionSpec) -> tuple[float, float]:
    """(low, high) bin edges of a slot: from its first/last bin centres, else the spec's bounds of its dim."""
    if slot.first is None:
        i = INDEX[slot.dim]
        return spec.low[i], spec.high[i]
    w = (slot.last - slot.first) / (slot.bins - 1)
    return slot.first - w / 2, slot.last + w / 2


class ActionTokenizer:
    """Actions [..., 12] <-> bins [..., S] (one per slot) <-> token ids [..., S]."""

    def __init__(self, spec: ActionSpec, bin_token_ids: Sequence[int], slots: Sequence[SlotConfig] = ()) -> None:
        self.spec = spec
        self.slots: tuple[SlotConfig, ...] = tuple(slots)
        if self.slots:
            dims = [s.dim for s in self.slots]
            if len(set(dims)) != len(dims):
                raise ValueError(f"slots list a dim more than once: {dims}")
            self.slot_dims = tuple(INDEX[s.dim] for s in self.slots)
            self.slot_bins = tuple(s.bins for s in self.slots)
            edges = [slot_edges(s, spec) for s in self.slots]
        else:
            self.slot_dims = tuple(range(NUM_DIMS))
            self.slot_bins = (spec.num_bins,) * NUM_DIMS
            edges = list(zip(spec.low, spec.high, strict=True))
        self._low = np.array([e[0] for e in edges], dtype=np.float64)
        self._high = np.array([e[1] for e in edges], dtype=np.float64)
        self._n = np.array(self.slot_bins, dtype=np.int64)
        ids = [int(i) for i in bin_token_ids]
        if len(ids) != self.num_bins:
            raise ValueError(f"need {self.num_bins} bin token ids (one per bin), got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise ValueError("bin token ids must be distinct")
        if min(ids) < 0:
            raise ValueError(f"bin token ids must be >= 0, got {min(ids)}")
        self.bin_token_ids: tuple[int, ...] = tuple(ids)
        self._bin_of_token = {tok: b for b, tok in enumerate(ids)}

    @property
    def num_bins(self) -> int:
        """Bins of the largest slot (the width of every slot's logits)."""
        return max(self.slot_bins)

    @property
    def num_dims(self) -> int:
        return NUM_DIMS

    @property
    def num_slots(self) -> int:
        return len(self.slot_dims)

    @property
    def slot_names(self) -> tuple[str, ...]:
        return tuple(ACTION_NAMES[i] for i in self.slot_dims)

    def token_id_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The bin token ids as a LongTensor [num_bins] (the rows of lm_head that Q-values read)."""
        return torch.tensor(self.bin_token_ids, dtype=torch.long, device=device)

    def valid_mask(self, device: torch.device | str | None = None) -> torch.Tensor:
        """[num_slots, num_bins] bool: bin b exists in slot s (all True for the default decoder)."""
        return (
            torch.arange(self.num_bins, device=device)[None, :] < torch.tensor(self.slot_bins, device=device)[:, None]
        )

    # -- actions <-> bins --------------------------------------------------------------------------
    def to_bins(self, actions: Any) -> np.ndarray:
        """Continuous actions [..., 12] -> bins [..., S] int64 (clipped to the slot edges; NaN/inf in any dim raise)."""
        arr = self.spec.clip(actions)  # validates shape and finiteness, naming the dim
        x = np.clip(arr[..., list(self.slot_dims)], self._low, self._high)
        scaled = (x - self._low) / (self._high - self._low) * self._n
        return np.clip(np.floor(scaled), 0, self._n - 1).astype(np.int64)

    def from_bins(self, bins: Any) -> np.ndarray:
        """Bins [..., S] -> actions [..., 12] float64: bin centres, the stand command in dims not decoded
        (not snapped: see `for_controller`)."""
        b = self._check_bins(bins)
        out = np.broadcast_to(np.asarray(STAND_COMMAND, dtype=np.float64), (*b.shape[:-1], NUM_DIMS)).copy()
        width = (self._high - self._low) / self._n  # the same operation order as ActionSpec.from_bins
        out[..., list(self.slot_dims)] = self._low + (b.astype(np.float64) + 0.5) * width
        return out

    def contract_bins(self, bins: Any, fill: int = -1) -> np.ndarray:
        """Bins [..., S] -> [..., 12] in contract order, `fill` in dims not decoded (for per-dim reporting)."""
        b = self._check_bins(bins)
        out = np.full((*b.shape[:-1], NUM_DIMS), fill, dtype=np.int64)
        out[..., list(self.slot_dims)] = b
        return out

    def contract_values(self, values: Any, fill: float = float("nan")) -> np.ndarray:
        """Per-slot values [..., S] (e.g. Q-values) -> [..., 12] in contract order, `fill` elsewhere."""
        v = np.asarray(values)
        if v.shape[-1:] != (self.num_slots,):
            raise ValueError(f"values must have {self.num_slots} entries in the last axis, got shape {v.shape}")
        out = np.full((*v.shape[:-1], NUM_DIMS), fill, dtype=v.dtype if v.dtype.kind == "f" else np.float64)
        out[..., list(self.slot_dims)] = v
        return out

    def for_controller(self, action: Any) -> np.ndarray:
        """One decoded action made executable: clipped, gait snapped to a trained gait, terminate in {0, 1}."""
        return self.spec.for_controller(action)

    def _check_bins(self, bins: Any) -> np.ndarray:
        b = np.asarray(bins)
        if b.shape[-1:] != (self.num_slots,):
            raise InvalidActionError(f"bins must have {self.num_slots} values in the last axis, got shape {b.shape}")
        if not np.issubdtype(b.dtype, np.integer):
            raise InvalidActionError(f"bins must be integers, got dtype {b.dtype}")
        if b.size and ((b < 0).any() or (b >= self._n).any()):
            bad = sorted({self.slot_names[s] for s in np.nonzero((b < 0) | (b >= self._n))[-1]})
            raise InvalidActionError(f"bins outside their slot's range in {bad} (bins per slot {self.slot_bins})")
        return b

    # -- bins <-> token ids ------------------------------------------------------------------------
    def bins_to_token_ids(self, bins: Any) -> np.ndarray:
        b = np.asarray(bins)
        if not np.issubdtype(b.dtype, np.integer):
            raise InvalidActionError(f"bins must be integers, got dtype {b.dtype}")
        if b.size and ((b < 0).any() or (b >= self.num_bins).any()):
            raise InvalidActionError(f"bins must lie in [0, {self.num_bins}), got min {b.min()} max {b.max()}")
        return np.asarray(self.bin_token_ids, dtype=np.int64)[b]

    def token_ids_to_bins(self, token_ids: Any) -> np.ndarray:
        t = np.asarray(token_ids, dtype=np.int64)
        flat = [self._bin_of_token.get(int(x), -1) for x in t.reshape(-1)]
        out = np.asarray(flat, dtype=np.int64).reshape(t.shape)
        if (out < 0).any():
            bad = sorted({int(x) for x, o in zip(t.reshape(-1), out.reshape(-1), strict=True) if o < 0})
            raise InvalidActionError(f"token ids {bad[:8]} are not action bin tokens")
        return out

    def encode(self, actions: Any) -> np.ndarray:
        """Continuous actions -> token ids (bins first, so clipping and NaN checks apply)."""
        return self.bins_to_token_ids(self.to_bins(actions))

    def decode(self, token_ids: Any) -> np.ndarray:
        """Token ids [..., S] -> actions [..., 12] (bin centres)."""
        return self.from_bins(self.token_ids_to_bins(token_ids))

    # -- construction and persistence --------------------------------------------------------------
    @staticmethod
    def _ids_from_tokenizer(tokenizer: Any, n: int) -> list[int]:
        vocab: Mapping[str, int] = tokenizer.get_vocab()
        missing = [str(b) for b in range(n) if str(b) not in vocab]
        if missing:
            raise ValueError(
                f"the tokenizer has no single token for {len(missing)} bin strings (first: {missing[:5]}); "
                f"action bins need the tokens '0'..'{n - 1}'"
            )
        return [vocab[str(b)] for b in range(n)]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, spec: ActionSpec, slots: Sequence[SlotConfig] = ()) -> ActionTokenizer:
        """Bin b <-> the token of the string str(b) in `tokenizer`'s vocabulary (QUART's mapping)."""
        n = max(s.bins for s in slots) if slots else spec.num_bins
        return cls(spec, cls._ids_from_tokenizer(tokenizer, n), slots)

    def matches(self, tokenizer: Any) -> bool:
        """True when `tokenizer` maps the bins to the same token ids (a checkpoint's backbone check)."""
        return tuple(self._ids_from_tokenizer(tokenizer, self.num_bins)) == self.bin_token_ids

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action_spec": self.spec.to_dict(), "bin_token_ids": list(self.bin_token_ids)}
        if self.slots:
            out["slots"] = [{"dim": s.dim, "bins": s.bins, "first": s.first, "last": s.last} for s in self.slots]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionTokenizer:
        unknown = set(data) - {"action_spec", "bin_token_ids", "slots"}
        if unknown:
            raise ValueError(f"unknown action tokenizer keys: {sorted(unknown)}")
        slots = tuple(SlotConfig(**s) for s in data.get("slots", ()))
        return cls(ActionSpec.from_dict(data["action_spec"]), data["bin_token_ids"], slots)
