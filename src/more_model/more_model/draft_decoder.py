"""Temporal-draft decoding: the previous decision's bins as a draft, verified in parallel, equal to greedy.

At 5 Hz consecutive decisions repeat most of their 12 bins. Given a draft d (the last decision for the same
instruction), one window pass (window_decoder.py) feeds [a1, d2, ..., d11] on the cached prompt and returns all
12 slots' logits at once. Slot i's argmax is greedy's as soon as every input before it is greedy's, so the
longest prefix where the draft equals the argmaxes is verified; the rest is re-drafted from this pass's argmaxes
and the pass repeats until the inputs equal the argmaxes (a Jacobi fixed point). Each pass fixes at least one
more slot, so a wrong draft costs at most as many passes as greedy decoding (prefill + 11); a right one costs
prefill + 1.

Exactness: every slot's logits are read from the same bit-exact function of (prompt, earlier bins) as
`ActionDecoder.greedy_batch` reads them (window_decoder.py's contract), so bins and Q-values equal greedy's
bit for bit: a structural guarantee, tested over random models, prompts and drafts, not a tolerance.
`MoREPolicy.decode_batch` (transformers' incremental steps, other kernels) agrees to float rounding.

Action slots (`MoREConfig.action_slots`, S decoded slots): S - 1 inputs per window pass instead of 11, each
slot's missing bins masked exactly as in greedy decoding (window_decoder.py), results and drafts in contract
order [B, 12] like `MoREPolicy.decode` (bin -1 / Q nan in dims not decoded; a draft's entries there are ignored).

    decoder = ActionDecoder(policy)                  # or policy.action_decoder(compile=..., cuda_graph=...)
    out = decoder.decode(images, instructions, drafts=prev_bins)   # batched; drafts [B, 12], -1 = no guess
    out.bins, out.q_values, out.actions, out.passes                 # passes per row (greedy: 12, or S)

    state = DraftState(decoder)                      # the policy node's helper: same decode() as MoREPolicy
    out = state.decode([image], [instruction])       # drafts from the last decision of this instruction
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from more_common.action_contract import NUM_DIMS, TERMINATE, ActionSpec

from .policy import DecodeResult
from .processor import Batch
from .window_decoder import PromptKV, WindowDecoder


@dataclass
class DraftDecodeResult(DecodeResult):
    """`DecodeResult` (actions, bins, q_values) plus the forward passes each row needed."""

    passes: np.ndarray | None = None  # [B] int64: prefill + window passes up to the row's fixed point


@dataclass
class WindowDecode:
    """Tensor-level result of `ActionDecoder.greedy_batch` / `draft_batch`."""

    bins: torch.Tensor  # [B, S] int64, slot order (S = 12 by default)
    logits: torch.Tensor  # [B, S] float32, the chosen (max) logit of each slot
    passes: torch.Tensor  # [B] int64, prefill + window passes the row needed
    batch_passes: int  # prefill + window passes run for the whole batch (max over rows)


class ActionDecoder:
    """Greedy and temporal-draft decoding of a MoREPolicy over window passes (eager, compiled or CUDA graphs)."""

    def __init__(self, policy: Any, compile: bool = False, cuda_graph: bool = False, bucket: int | None = None) -> None:
        self.policy = policy
        self.window = WindowDecoder(policy, compile=compile, cuda_graph=cuda_graph, bucket=bucket)

    @property
    def action_spec(self) -> ActionSpec:
        return self.policy.action_spec

    @torch.no_grad()
    def prefill(self, batch: Batch) -> tuple[PromptKV, torch.Tensor]:
        """The image + prompt pass: (PromptKV, slot 1 logits [B, bins])."""
        if batch.has_actions:
            raise ValueError("decoding takes a prompt-only batch")
        return self.window.prompt(batch)

    @torch.no_grad()
    def greedy_batch(self, batch: Batch) -> WindowDecode:
        """Greedy decoding, one slot per window pass (prefill + S - 1): the reference the drafts are equal to."""
        return self.greedy_from(*self.prefill(batch))

    @torch.no_grad()
    def draft_batch(self, batch: Batch, draft: Any = None) -> WindowDecode:
        """Jacobi decoding from `draft` [B, 12] bins in contract order (entries < 0, or None: no guess; the first
        and the last slot are never inputs, nor are dims the model does not decode, so their entries are
        ignored). Equal to `greedy_batch` bit for bit."""
        return self.draft_from(*self.prefill(batch), draft=draft)

    @torch.no_grad()
    def greedy_from(self, prompt: PromptKV, first: torch.Tensor) -> WindowDecode:
        """`greedy_batch` after the prefill (prompt, slot 1 logits)."""
        first_logit, a1 = first.max(dim=-1)
        W = self.window.window_size
        if W == 0:
            return _first_only(a1, first_logit)
        x = torch.zeros(prompt.batch_size, W, dtype=torch.long, device=a1.device)
        x[:, 0] = a1
        for n in range(1, W + 1):  # pass n reads slot n+1 from row n-1: its inputs a1..an are greedy's
            value, y = self.window.window(prompt, x).max(dim=-1)
            if n < W:
                x[:, n] = y[:, n - 1]
        passes = torch.full((prompt.batch_size,), 1 + W, dtype=torch.long)
        return WindowDecode(_cat(a1, y), _cat(first_logit, value), passes, 1 + W)

    @torch.no_grad()
    def draft_from(self, prompt: PromptKV, first: torch.Tensor, draft: Any = None) -> WindowDecode:
        """`draft_batch` after the prefill (prompt, slot 1 logits)."""
        B = prompt.batch_size
        first_logit, a1 = first.max(dim=-1)
        W = self.window.window_size
        x = _initial_inputs(draft, B, self.policy.action_tokenizer).to(a1.device)
        if W == 0:
            return _first_only(a1, first_logit)
        x[:, 0] = a1
        passes = torch.zeros(B, dtype=torch.long)
        done = torch.zeros(B, dtype=torch.bool)
        for n in range(1, W + 1):
            value, y = self.window.window(prompt, x).max(dim=-1)
            # inputs a2..a11 equal this pass's argmaxes of slots 2..11 => every input is greedy's (induction
            # from a1), so every slot of this pass is greedy's: the row is at its fixed point
            fixed = (x[:, 1:] == y[:, :-1]).all(dim=1).cpu()
            passes[fixed & ~done] = 1 + n
            done |= fixed
            if bool(done.all()):
                break
            x = torch.cat((x[:, :1], y[:, :-1]), dim=1)  # a fixed row's inputs do not change
        else:
            raise AssertionError(f"Jacobi decoding did not reach its fixed point in {W} passes")  # impossible
        return WindowDecode(_cat(a1, y), _cat(first_logit, value), passes, 1 + n)

    @torch.no_grad()
    def decode(self, images: Sequence[Any], instructions: Sequence[str], drafts: Any = None) -> DraftDecodeResult:
        """Images + instructions (+ drafts [B, 12]) -> actions, bins, Q-values, passes (numpy), as
        `MoREPolicy.decode`. Without drafts the Jacobi iteration starts from bin 0 (still <= 12 passes)."""
        batch = self.policy.encode(images, instructions)
        return self._result(self.draft_batch(batch, drafts), batch.reasoning)

    @torch.no_grad()
    def greedy(self, images: Sequence[Any], instructions: Sequence[str]) -> DraftDecodeResult:
        """Greedy decoding over window passes (12 passes, S with action_slots); `decode` returns the same with
        fewer passes."""
        batch = self.policy.encode(images, instructions)
        return self._result(self.greedy_batch(batch), batch.reasoning)

    def _result(self, out: WindowDecode, reasoning: tuple[str, ...] | None = None) -> DraftDecodeResult:
        bins = out.bins.cpu().numpy().astype(np.int64)
        tok = self.policy.action_tokenizer
        return DraftDecodeResult(  # contract order, as MoREPolicy.decode
            actions=tok.from_bins(bins),
            bins=tok.contract_bins(bins),
            q_values=tok.contract_values(torch.sigmoid(out.logits).cpu().numpy().astype(np.float32)),
            passes=out.passes.numpy().astype(np.int64),
            reasoning=reasoning,
        )


def _cat(first: torch.Tensor, rest: torch.Tensor) -> torch.Tensor:
    return torch.cat((first[:, None], rest), dim=1)


def _first_only(a1: torch.Tensor, first_logit: torch.Tensor) -> WindowDecode:
    """A one-slot model: the prefill decides everything."""
    return WindowDecode(a1[:, None], first_logit[:, None], torch.ones(a1.shape[0], dtype=torch.long), 1)


def _initial_inputs(draft: Any, batch_size: int, tokenizer: Any) -> torch.Tensor:
    """The first pass's inputs a1..a(S-1) (slot order) from a draft [B, 12] in contract order (None or entries
    < 0: bin 0); validated: a draft entry must be a bin of its dim's slot."""
    window = tokenizer.num_slots - 1
    if draft is None:
        return torch.zeros(batch_size, window, dtype=torch.long)
    d = torch.as_tensor(np.asarray(draft))
    if d.shape != (batch_size, NUM_DIMS):
        raise ValueError(f"drafts must have shape ({batch_size}, {NUM_DIMS}), got {tuple(d.shape)}")
    if d.dtype.is_floating_point or d.dtype == torch.bool:
        raise ValueError(f"drafts must be integer bins, got dtype {d.dtype}")
    d = d[:, list(tokenizer.slot_dims)]  # slot order; dims not decoded are dropped
    too_big = d >= torch.tensor(tokenizer.slot_bins)
    if too_big.any():
        s = int(too_big.any(dim=0).nonzero()[0, 0])
        raise ValueError(
            f"drafts must be bins < {tokenizer.slot_bins[s]} in {tokenizer.slot_names[s]} (or < 0 for no guess), "
            f"got {int(d[:, s].max())}"
        )
    return d[:, :window].long().clamp(min=0).cpu().clone()


class DraftState:
    """The policy node's helper: decodes with the last decision of the same stream as the draft.

    Drop-in for `MoREPolicy` where the policy core calls `decode(images, instructions)` and reads
    `action_spec`. Each stream (`keys`, default the row index: the node has one) remembers (instruction, bins)
    of its last decision; the draft is dropped when the stream's instruction changes and after a decision whose
    terminate dim is set (the next episode starts from no draft). `reset()` drops everything (e.g. on
    re-enable). Actions are greedy's whatever the draft: a stale draft only costs passes.
    """

    def __init__(self, decoder: ActionDecoder) -> None:
        self.decoder = decoder
        self._last: dict[Hashable, tuple[str, np.ndarray]] = {}
        self.last_passes: np.ndarray | None = None

    @property
    def action_spec(self) -> ActionSpec:
        return self.decoder.action_spec

    @property
    def image_size(self) -> tuple[int, int]:
        return self.decoder.policy.image_size

    def reset(self, key: Hashable | None = None) -> None:
        """Forget the draft of one stream, or of all streams (key None)."""
        if key is None:
            self._last.clear()
        else:
            self._last.pop(key, None)

    def draft_for(self, key: Hashable, instruction: str) -> np.ndarray | None:
        """The stored draft of a stream if its instruction is `instruction` (else None)."""
        last = self._last.get(key)
        return last[1] if last is not None and last[0] == instruction else None

    def decode(
        self, images: Sequence[Any], instructions: Sequence[str], keys: Sequence[Hashable] | None = None
    ) -> DraftDecodeResult:
        """Decode images + instructions (one row per stream; `keys` name the streams, default the row index)."""
        return self.decode_encoded(self.decoder.policy.encode(images, instructions), instructions, keys)

    def decode_encoded(
        self, batch: Batch, instructions: Sequence[str], keys: Sequence[Hashable] | None = None
    ) -> DraftDecodeResult:
        """`decode` from an already encoded Batch (its rows in the order of `instructions`)."""
        keys = list(range(len(instructions))) if keys is None else list(keys)
        if len(keys) != len(instructions) or len(set(keys)) != len(keys) or batch.batch_size != len(keys):
            raise ValueError(
                f"need one distinct key per instruction and batch row: {len(keys)} keys, {len(instructions)} "
                f"instructions, {batch.batch_size} rows"
            )
        drafts = np.full((len(keys), NUM_DIMS), -1, dtype=np.int64)
        for row, (key, instruction) in enumerate(zip(keys, instructions, strict=True)):
            draft = self.draft_for(key, instruction)
            if draft is not None:
                drafts[row] = draft
        out = self.decoder._result(self.decoder.draft_batch(batch, drafts), batch.reasoning)
        for row, (key, instruction) in enumerate(zip(keys, instructions, strict=True)):
            if self.action_spec.for_controller(out.actions[row])[TERMINATE] >= 0.5:
                self._last.pop(key, None)  # the episode ends: its last action is no draft for the next one
            else:
                self._last[key] = (instruction, out.bins[row].copy())
        self.last_passes = out.passes
        return out
