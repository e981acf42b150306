"""MoREPolicy: Fuyu backbone + MixLoRA adapters read as a Q-function over the 256 action bin tokens.

    batch (processor.Batch) -> backbone decoder -> hidden [B, T, H]
        -> hidden at the 12 slot positions [B, 12, H] -> x W_bins^T -> slot logits [B, 12, 256]
    Q(s, a^{1:i}) = sigmoid(slot logit of a^i at slot i)
With `MoREConfig.action_slots` the model decodes S slots (some dims, each with its own bin count) instead of
12 x 256: logits are [B, S, max bins] and a bin its slot does not have gets MASKED_LOGIT (Q = 0, never chosen).

[Contract]
- Only the 256 rows of lm_head that belong to the bin tokens are ever multiplied (W_bins, gathered per
  call); full-vocabulary logits are never computed. Bin logits are computed in float32, also inside a bf16
  autocast region (the head runs with autocast disabled).
- Slot i's logits come from the position before action token i (processor.py explains the layout).
- `decode` is greedy over bins with a KV cache: 1 prefill + 11 one-token steps, so no other token can
  come out. Batched; left padding is neutralised by position ids counted from each row's first token.
- Only adapter parameters (LoRA + routers) train by default; `set_trainable("full")` also trains the
  backbone (meant for the tiny backbone trained from scratch).
- `merge_attention_lora()` folds the attention LoRA into the base weights for inference; such a policy
  cannot be saved (its base weights are no longer the backbone's).
- With `MoREConfig.reasoning = "scene"` the model first writes its reasoning (greedy over REASONING_ALPHABET,
  KV-cached, until its second full stop or MAX_REASONING_TOKENS) and the actions are decoded after it:
  `encode` of a prompt returns the batch with the written reasoning appended, so every action decoder
  continues it unchanged. Training teacher-forces the label (forward returns the reasoning logits).
- `action_decoder()` gives the fast decoders (draft_decoder.py, window_decoder.py): temporal drafts verified
  in parallel, equal to greedy bit for bit; compiled / CUDA-graph window passes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from more_common.action_contract import ActionSpec

from .action_tokenizer import ActionTokenizer
from .config import MoREConfig, SlotConfig
from .fuyu_loader import DTYPES, load_backbone
from .mixlora import MixLoRAFFN, inject_adapters, is_adapter_name, merge_attention_lora
from .processor import (
    MAX_REASONING_TOKENS,
    REASONING_ALPHABET,
    REASONING_STOPS,
    Batch,
    BatchEncoder,
    build_processor,
)
from .tiny_backbone import build_tiny_backbone, build_tiny_tokenizer

TrainMode = Literal["adapters", "full"]
MASKED_LOGIT = -1.0e4  # logit of a bin its slot does not have: Q = sigmoid = 0 and softmax weight 0, no NaN


@dataclass
class DecodeResult:
    """What `MoREPolicy.decode` returns (numpy, batch first). Contract order throughout; with action_slots the
    dims the model does not decode hold the stand command's value, bin -1 and Q-value nan."""

    actions: np.ndarray  # [B, 12] float64 bin centres, contract order, not yet snapped (use for_controller)
    bins: np.ndarray  # [B, 12] int64 in [0, bins of the dim's slot), -1 where not decoded
    q_values: np.ndarray  # [B, 12] float32, sigmoid of the chosen logit (nan where not decoded)
    reasoning: tuple[str, ...] | None = None  # what a reasoning model wrote before each row's actions


@dataclass
class PolicyOutput:
    """What `MoREPolicy.forward` returns."""

    slot_logits: torch.Tensor  # [B, S, bins] float32 (teacher-forced; S = 12, bins = 256 by default), or [B, 1, bins]
    router_probs: tuple[torch.Tensor, ...]  # per MixLoRA layer [B, T, N] fp32 (empty without routers)
    token_mask: torch.Tensor  # [B, T] bool, False on padding
    router_experts: tuple[torch.Tensor, ...] = ()  # per MixLoRA layer [B, T, K] int64: the experts each token used
    reasoning_logits: torch.Tensor | None = None  # [M, A] float32 at the M positions that predict a reasoning token
    reasoning_targets: torch.Tensor | None = None  # [M] int64: the alphabet index each of them should predict


class MoREPolicy(nn.Module):
    """The MoRE model. Build with `from_config`, or load with checkpoint.load_policy."""

    def __init__(self, config: MoREConfig, backbone: nn.Module, tokenizer: Any, action_tokenizer: ActionTokenizer):
        super().__init__()
        self.config = config
        self.backbone = backbone
        self.tokenizer = tokenizer
        self._use_action_tokenizer(action_tokenizer)
        if backbone.config.patch_size != config.patch_size:
            raise ValueError(f"backbone patch size {backbone.config.patch_size} != config's {config.patch_size}")
        if getattr(backbone.lm_head, "bias", None) is not None:
            raise ValueError("lm_head with a bias is not supported (Fuyu has none)")
        self.ffns: list[MixLoRAFFN] = inject_adapters(backbone, config)
        self.attention_lora_merged = False
        self.processor = build_processor(tokenizer, config.image_size, config.patch_size)
        self._build_encoder()
        self.set_trainable("adapters")

    def _build_encoder(self) -> None:
        config = self.config
        self.encoder = BatchEncoder(
            self.processor,
            self.action_tokenizer,
            config.prompt_template,
            config.image_size,
            config.text_first,
            reasoning=config.reasoning != "none",
        )
        ids = torch.tensor(self.encoder.reasoning_token_ids, dtype=torch.long, device=self.bin_token_ids.device)
        self.register_buffer("reasoning_token_ids", ids, persistent=False)  # [A] (empty without reasoning)

    def set_reasoning(self, kind: str) -> MoREPolicy:
        """Switch reasoning on or off (MoREConfig.reasoning); no weight changes: its head is the lm_head's rows of
        the alphabet's tokens. How a model trained without reasoning starts training with it."""
        self.config = self.config.replace(reasoning=kind)  # validated by MoREConfig
        self._build_encoder()
        return self

    def set_action_slots(self, slots: Sequence[SlotConfig]) -> MoREPolicy:
        """Decode another set of action slots (MoREConfig.action_slots); no weight changes: every slot reads the
        lm_head rows of the bin tokens '0'..'N-1'. How a trained model starts learning a new dim (e.g. vy)."""
        config = self.config.replace(action_slots=tuple(slots))  # validated by MoREConfig
        tokenizer = ActionTokenizer.from_tokenizer(self.tokenizer, self.action_tokenizer.spec, config.action_slots)
        self._use_action_tokenizer(tokenizer, self.bin_token_ids.device)
        self.config = config
        self._build_encoder()
        return self

    def _use_action_tokenizer(self, action_tokenizer: ActionTokenizer, device: torch.device | None = None) -> None:
        """Decode with `action_tokenizer`: its bin token ids and per-slot bin masks become the buffers."""
        vocab = self.backbone.config.text_config.vocab_size
        if max(action_tokenizer.bin_token_ids) >= vocab:
            raise ValueError(f"bin token ids exceed the backbone's vocabulary ({vocab})")
        self.action_tokenizer = action_tokenizer
        self.register_buffer("bin_token_ids", action_tokenizer.token_id_tensor(device), persistent=False)
        self.register_buffer("valid_bins", action_tokenizer.valid_mask(device), persistent=False)  # [S, num_bins]

    # -- construction ------------------------------------------------------------------------------
    @classmethod
    def from_config(
        cls,
        config: MoREConfig,
        action_spec: ActionSpec | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        backbone_path: str | None = None,
    ) -> MoREPolicy:
        """A new policy: a random tiny backbone, or Fuyu from its local directory; fresh adapters (seeded)."""
        spec = action_spec or ActionSpec()
        if config.backbone == "tiny":
            tokenizer = build_tiny_tokenizer()
            backbone = build_tiny_backbone(config.tiny, tokenizer, seed=seed).to(DTYPES[config.resolve_dtype()])
        else:
            path = backbone_path or config.backbone_path
            if not path:
                raise ValueError("a Fuyu backbone needs backbone_path (a local adept/fuyu-8b directory)")
            backbone, tokenizer = load_backbone(path, dtype=config.resolve_dtype(), device=device)
            config = config.replace(backbone_path=str(path))
        action_tokenizer = ActionTokenizer.from_tokenizer(tokenizer, spec, config.action_slots)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed + 1)
            policy = cls(config, backbone, tokenizer, action_tokenizer)
        return policy.to(device)

    # -- properties of the interface ---------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int]:
        return self.config.image_size

    @property
    def action_spec(self) -> ActionSpec:
        return self.action_tokenizer.spec

    @property
    def device(self) -> torch.device:
        return self.backbone.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backbone.lm_head.weight.dtype

    # -- trainable parameters ----------------------------------------------------------------------
    def set_trainable(self, mode: TrainMode = "adapters") -> None:
        """Mode "adapters": LoRA + routers only (the paper); "full": everything (tiny backbone from scratch)."""
        if mode not in ("adapters", "full"):
            raise ValueError(f"mode must be 'adapters' or 'full', got {mode!r}")
        if mode == "full" and self.config.backbone != "tiny":
            raise ValueError("training the full backbone is only supported for the tiny backbone")
        self.train_mode: TrainMode = mode
        for name, p in self.named_parameters():
            p.requires_grad_(mode == "full" or is_adapter_name(name))

    def named_adapter_parameters(self) -> Iterator[tuple[str, nn.Parameter]]:
        return ((n, p) for n, p in self.named_parameters() if is_adapter_name(n))

    def adapter_state_dict(self) -> dict[str, torch.Tensor]:
        """LoRA + router tensors by name (what an adapter checkpoint stores)."""
        return {n: p.detach() for n, p in self.named_adapter_parameters()}

    def trainable_state_dict(self) -> dict[str, torch.Tensor]:
        """The tensors that train in the current mode (what a target network copies)."""
        return {n: p.detach() for n, p in self.named_parameters() if p.requires_grad}

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    @torch.no_grad()
    def cast_adapters_for_inference(self) -> MoREPolicy:
        """Store the LoRA tensors in the backbone's dtype (routers stay fp32); inference only.

        Every forward casts the fp32 LoRA masters to the activation dtype anyway, so outputs are bit-identical;
        casting once saves that work per token (on Fuyu-8B bf16 ~0.8 GB of casts per decoded token).
        Training from such a policy would update bf16 masters: load a checkpoint with load_checkpoint instead.
        """
        for name, p in self.named_adapter_parameters():
            if "lora_" in name:
                p.data = p.data.to(self.dtype)
                p.requires_grad_(False)
        return self

    def merge_attention_lora(self) -> MoREPolicy:
        """Fold the attention LoRA into query_key_value / dense (W <- W + s B A) for inference.

        Decoding then runs no attention LoRA at all; the FFN experts stay LoRA (routing is per token). fp32:
        slot logits equal the unmerged ones up to rounding order (measured 3e-7 on the tiny test model, 9e-6 on
        models/demo); bf16: the merged weight is rounded to bf16 once. The policy can no longer train its
        attention LoRA nor be saved; keep the unmerged one for that. A no-op without attention LoRA (attn_rank=0)
        or when already merged.
        """
        if merge_attention_lora(self.backbone):
            self.attention_lora_merged = True
            self.set_trainable(self.train_mode)  # the merged weights are backbone weights: frozen in "adapters"
        return self

    def base_state_dict(self) -> dict[str, torch.Tensor]:
        """The backbone's own tensors under its HF names (adapters left out), e.g. to save the tiny backbone."""
        return {n: t for n, t in self.backbone.state_dict().items() if not is_adapter_name(n)}

    # -- encoding ----------------------------------------------------------------------------------
    def encode(
        self, images: Sequence[Any], instructions: Sequence[str], bins: Any = None, reasoning: Any = None
    ) -> Batch:
        """Images (HxWx3 uint8, any size) + instructions (+ bins [B, 12]) -> Batch on the policy's device.

        A reasoning model given a prompt alone writes its reasoning here (`write_reasoning`) and returns the
        prompt with it appended: what the action decoders continue. With `reasoning` texts it uses those."""
        if self.config.reasoning != "none" and reasoning is None and bins is None:
            prompt = self.encoder.encode(list(images), list(instructions)).to(self.device)
            return self.encoder.with_reasoning(prompt, self.write_reasoning(prompt))
        reasoning = None if reasoning is None else list(reasoning)
        return self.encoder.encode(list(images), list(instructions), bins=bins, reasoning=reasoning).to(self.device)

    # -- forward -----------------------------------------------------------------------------------
    def bin_head(self) -> torch.Tensor:
        """W_bins [256, H]: the lm_head rows of the bin tokens (gathered, so gradients reach them in "full")."""
        return self.backbone.lm_head.weight.index_select(0, self.bin_token_ids)

    def bin_logits(self, hidden: torch.Tensor, first_slot: int = 0) -> torch.Tensor:
        """hidden [B, n, H] at slots first_slot .. first_slot + n - 1 -> logits [B, n, num_bins] float32 (also
        under bf16 autocast); a bin its slot does not have gets MASKED_LOGIT (all bins exist in the default
        12 x 256 decoder)."""
        head = self.bin_head()
        # autocast would run this F.linear in bf16 whatever its inputs are: the Q-values must be fp32
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            logits = torch.nn.functional.linear(hidden.float(), head.float())
        valid = self.valid_bins[first_slot : first_slot + logits.shape[-2]]
        return logits.masked_fill(~valid, MASKED_LOGIT)

    def reasoning_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """hidden [..., H] -> logits [..., A] float32 over REASONING_ALPHABET (the lm_head rows of its tokens)."""
        if self.config.reasoning == "none":
            raise ValueError("this model has no reasoning (MoREConfig.reasoning = 'none')")
        head = self.backbone.lm_head.weight.index_select(0, self.reasoning_token_ids)
        with torch.autocast(device_type=hidden.device.type, enabled=False):
            return torch.nn.functional.linear(hidden.float(), head.float())

    @torch.no_grad()
    def write_reasoning(self, batch: Batch) -> list[str]:
        """Greedy KV-cached reasoning for a prompt-only batch: each row's text up to its REASONING_STOPS-th full
        stop (or MAX_REASONING_TOKENS characters)."""
        if batch.has_actions or batch.reasoning is not None:
            raise ValueError("write_reasoning takes a prompt-only batch without reasoning")
        out = self._decoder(batch, use_cache=True)
        cache, hidden = out.cache, out.last_hidden_state[:, -1]  # (B, H)
        mask, pos = batch.attention_mask, batch.position_ids[:, -1:]
        texts = [""] * batch.batch_size
        for step in range(MAX_REASONING_TOKENS):
            pick = self.reasoning_logits(hidden).argmax(dim=-1)  # (B,)
            texts = [
                t if t.count(".") >= REASONING_STOPS else t + REASONING_ALPHABET[k]
                for t, k in zip(texts, pick.tolist(), strict=True)
            ]
            if step == MAX_REASONING_TOKENS - 1 or all(t.count(".") >= REASONING_STOPS for t in texts):
                break
            # rows already finished take a token too; their text is final and the batch is encoded afresh
            hidden, mask, pos, cache = self._feed(self.reasoning_token_ids[pick], mask, pos, cache)
        return texts

    def _feed(
        self, token: torch.Tensor, mask: torch.Tensor, pos: torch.Tensor, cache: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Any]:
        """One KV-cached step: token [B] appended after mask [B, T] / last position pos [B, 1] -> (hidden of the
        new position [B, H], mask [B, T + 1], pos + 1, cache)."""
        token = token.unsqueeze(1)  # (B, 1)
        mask = torch.cat([mask, torch.ones_like(token)], dim=1)
        pos = pos + 1
        out = self.backbone.model(input_ids=token, attention_mask=mask, position_ids=pos, cache=cache, use_cache=True)
        return out.last_hidden_state[:, -1], mask, pos, out.cache

    @property
    def num_slots(self) -> int:
        return self.action_tokenizer.num_slots

    def _decoder(self, batch: Batch, cache: Any = None, use_cache: bool = False) -> Any:
        return self.backbone.model(
            input_ids=batch.input_ids,
            pixel_values=batch.pixel_values.to(self.dtype),
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            cache=cache,
            use_cache=use_cache,
        )

    def forward(self, batch: Batch) -> PolicyOutput:
        hidden = self._decoder(batch).last_hidden_state  # (B, T, H)
        n = batch.num_slots if batch.has_actions else 1
        logits = self.bin_logits(hidden[:, -n:])  # (B, n, bins): left padding aligns the last n positions
        probs = tuple(m.router_probs for m in self.ffns if m.router_probs is not None)
        experts = tuple(m.router_experts for m in self.ffns if m.router_experts is not None)
        reasoning_logits = reasoning_targets = None
        if batch.reasoning_targets is not None:
            where = batch.reasoning_targets >= 0  # (B, T)
            reasoning_logits = self.reasoning_logits(hidden[where])  # (M, A)
            reasoning_targets = batch.reasoning_targets[where]  # (M,)
        return PolicyOutput(
            slot_logits=logits,
            router_probs=probs,
            token_mask=batch.attention_mask.bool(),
            router_experts=experts,
            reasoning_logits=reasoning_logits,
            reasoning_targets=reasoning_targets,
        )

    def slot_logits(self, batch: Batch) -> torch.Tensor:
        """Teacher-forced logits of all S slots [B, S, bins]; the batch must carry actions."""
        if not batch.has_actions:
            raise ValueError("slot_logits needs a batch encoded with actions (bins)")
        return self(batch).slot_logits

    def first_slot_logits(self, batch: Batch) -> torch.Tensor:
        """Slot 1's logits [B, bins] from a prompt-only batch (the next state's bootstrap value)."""
        if batch.has_actions:
            raise ValueError("first_slot_logits takes a prompt-only batch (encoded without bins)")
        return self(batch).slot_logits[:, 0]

    # -- decoding ----------------------------------------------------------------------------------
    @torch.no_grad()
    def decode_batch(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Greedy KV-cached decode restricted to each slot's bin tokens: (bins [B, S] int64, chosen logits [B, S])."""
        if batch.has_actions:
            raise ValueError("decode takes a prompt-only batch")
        out = self._decoder(batch, use_cache=True)
        cache, hidden = out.cache, out.last_hidden_state[:, -1]  # (B, H)
        mask, pos = batch.attention_mask, batch.position_ids[:, -1:]
        bins, chosen = [], []
        slots = self.num_slots
        for slot in range(slots):
            logit, b = self.bin_logits(hidden[:, None], slot)[:, 0].max(dim=-1)  # (B,): first max on ties
            bins.append(b)
            chosen.append(logit)
            if slot == slots - 1:
                break  # the last action token is never fed back
            hidden, mask, pos, cache = self._feed(self.bin_token_ids[b], mask, pos, cache)
        return torch.stack(bins, dim=1), torch.stack(chosen, dim=1)

    def action_decoder(self, compile: bool = False, cuda_graph: bool = False, bucket: int | None = None) -> Any:
        """Greedy and temporal-draft decoding over window passes (draft_decoder.ActionDecoder): all 11 action
        inputs in one forward, bit-exact drafts, optionally torch.compile'd and/or CUDA-graphed. It reads the
        weights once: build it after `merge_attention_lora` / `cast_adapters_for_inference`."""
        from .draft_decoder import ActionDecoder

        return ActionDecoder(self, compile=compile, cuda_graph=cuda_graph, bucket=bucket)

    @torch.no_grad()
    def decode(self, images: Sequence[Any], instructions: Sequence[str]) -> DecodeResult:
        """Images + instructions -> actions, bins and per-dim Q-values (numpy)."""
        batch = self.encode(images, instructions)
        bins, logits = self.decode_batch(batch)
        bins_np = bins.cpu().numpy().astype(np.int64)
        tok = self.action_tokenizer
        return DecodeResult(
            actions=tok.from_bins(bins_np),
            bins=tok.contract_bins(bins_np),
            q_values=tok.contract_values(torch.sigmoid(logits).cpu().numpy().astype(np.float32)),
            reasoning=batch.reasoning,
        )
