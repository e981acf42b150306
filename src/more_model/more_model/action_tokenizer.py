"""ActionTokenizer: continuous 12-dim actions <-> 256 bins per dim <-> the backbone's bin token ids.

[Contract]
- The bin arithmetic, bounds, clipping, NaN handling and gait snapping belong to
  more_common.action_contract.ActionSpec; this class only adds the vocabulary side.
- `bin_token_ids[b]` is the token id that stands for bin b in every slot. Fuyu: the token of the
  string str(b) (QUART's choice: Fuyu has single tokens "0".."255"); the tiny tokenizer keeps the
  same strings as reserved vocab entries, so one rule serves both.
- The ids are distinct, so token -> bin is a bijection; a token that is not a bin token raises.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from more_common.action_contract import NUM_DIMS, ActionSpec, InvalidActionError


class ActionTokenizer:
    """Actions [..., 12] <-> bins [..., 12] <-> token ids [..., 12]."""

    def __init__(self, spec: ActionSpec, bin_token_ids: Sequence[int]) -> None:
        ids = [int(i) for i in bin_token_ids]
        if len(ids) != spec.num_bins:
            raise ValueError(f"need {spec.num_bins} bin token ids (one per bin), got {len(ids)}")
        if len(set(ids)) != len(ids):
            raise ValueError("bin token ids must be distinct")
        if min(ids) < 0:
            raise ValueError(f"bin token ids must be >= 0, got {min(ids)}")
        self.spec = spec
        self.bin_token_ids: tuple[int, ...] = tuple(ids)
        self._bin_of_token = {tok: b for b, tok in enumerate(ids)}

    @property
    def num_bins(self) -> int:
        return self.spec.num_bins

    @property
    def num_dims(self) -> int:
        return NUM_DIMS

    def token_id_tensor(self, device: torch.device | str | None = None) -> torch.Tensor:
        """The bin token ids as a LongTensor [num_bins] (the rows of lm_head that Q-values read)."""
        return torch.tensor(self.bin_token_ids, dtype=torch.long, device=device)

    # -- actions <-> bins --------------------------------------------------------------------------
    def to_bins(self, actions: Any) -> np.ndarray:
        """Continuous actions [..., 12] -> bins [..., 12] int64 (clipped to the bounds; NaN/inf raise)."""
        return self.spec.to_bins(actions)

    def from_bins(self, bins: Any) -> np.ndarray:
        """Bins [..., 12] -> bin centres [..., 12] float64 (not snapped: see `for_controller`)."""
        return self.spec.from_bins(bins)

    def for_controller(self, action: Any) -> np.ndarray:
        """One decoded action made executable: clipped, gait snapped to a trained gait, terminate in {0, 1}."""
        return self.spec.for_controller(action)

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
        """Token ids -> bin centres."""
        return self.from_bins(self.token_ids_to_bins(token_ids))

    # -- construction and persistence --------------------------------------------------------------
    @classmethod
    def from_tokenizer(cls, tokenizer: Any, spec: ActionSpec) -> ActionTokenizer:
        """Bin b <-> the token of the string str(b) in `tokenizer`'s vocabulary (QUART's mapping)."""
        vocab: Mapping[str, int] = tokenizer.get_vocab()
        missing = [str(b) for b in range(spec.num_bins) if str(b) not in vocab]
        if missing:
            raise ValueError(
                f"the tokenizer has no single token for {len(missing)} bin strings (first: {missing[:5]}); "
                "action bins need the tokens '0'..'255'"
            )
        return cls(spec, [vocab[str(b)] for b in range(spec.num_bins)])

    def to_dict(self) -> dict[str, Any]:
        return {"action_spec": self.spec.to_dict(), "bin_token_ids": list(self.bin_token_ids)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ActionTokenizer:
        unknown = set(data) - {"action_spec", "bin_token_ids"}
        if unknown:
            raise ValueError(f"unknown action tokenizer keys: {sorted(unknown)}")
        return cls(ActionSpec.from_dict(data["action_spec"]), data["bin_token_ids"])
