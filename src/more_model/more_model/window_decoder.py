"""The window pass: all 11 action input tokens in one forward over a cached prompt, Persimmon driven directly.

    prompt(batch)                            image + prompt, once per decision (the same layer code, causal)
        -> slot 1 logits [B, 256] and a PromptKV: the prompt's keys/values per layer in fixed-size tensors
    window(prompt, tokens [B, 11])           tokens = the bins fed as a1..a11
        -> slot 2..12 logits [B, 11, 256]    row j: slot j+2, conditioned on the prompt and tokens[:, :j+1]

Greedy decoding, temporal-draft (Jacobi) decoding (draft_decoder.py) and the compiled path all call these two
functions; only how often and with which tokens differs. A model with `action_slots` (S decoded slots, each with
its own bins) feeds S - 1 tokens instead of 11, and its logits get the same per-slot bin mask as
`MoREPolicy.bin_logits` (MASKED_LOGIT where a slot has no such bin), so no decoder can choose a masked bin.
The prompt pass reads the image patches wherever the batch has them, so `text_first` layouts need nothing else.
The layer arithmetic is transformers' PersimmonDecoderLayer's (eval mode) with the attention computed in fp32 (as
SDPA, transformers' default, accumulates); embeddings and image patches go through the backbone's own modules.

[Exactness contract] Row j of a window pass is computed from the prompt and tokens[:, :j+1] only, by kernels
whose shapes never change (B x 11 rows, a fixed key length): later rows enter its attention with weight
exactly 0 (additive mask -> exp = 0), and no kernel takes a data-dependent shape. In particular the MixLoRA
FFN does not dispatch tokens to experts (whose group sizes depend on the other tokens' routing): it projects
every row onto every expert's rank space, gathers each row's top-K (exact), and runs the K down-projections as
one B*11*K-row matmul. Dense matmul kernels compute each output row with the same reduction order for any
content of the other rows (checked bit for bit by the tests, at Fuyu-8B width too); so the logits of slot i
are a bit-exact function of (prompt, a1..a(i-1)) whichever pass computes them. That is what makes draft
decoding equal greedy decoding exactly, not to a tolerance: both read every slot from the same function.
(A one-token step is not such a function: M=1 matmuls take other kernels, e.g. GEMV, and differ in the last
bits; transformers' incremental decoding, `MoREPolicy.decode_batch`, therefore agrees with this path to
float rounding, i.e. the same bins unless two bins tie within ~1e-5 in fp32.)

[Modes] eager (any device); `compile=True`: each decoder layer of the window pass runs through torch.compile
(one compiled function shared by all layers of the same structure: the weights are arguments; the prompt pass
too when its lengths are bucketed, i.e. with CUDA graphs); `cuda_graph=True` (CUDA only): the prompt pass and
the window pass are captured once per (batch, prompt length) and replayed, the prompt keys/values living in the
graphs' static buffers (a static KV cache; prompts are padded on the left to a multiple of `bucket`, so one pair
of graphs serves every prompt length in a bucket; one decision at a time per decoder).
Weights are read when the decoder is built: build it after `merge_attention_lora` /
`cast_adapters_for_inference`, and rebuild after changing the policy's weights.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.models.persimmon.modeling_persimmon import apply_rotary_pos_emb

from .mixlora import LoRALinear, MixLoRAFFN
from .policy import MASKED_LOGIT
from .processor import NUM_SLOTS

WINDOW = NUM_SLOTS - 1  # the default decoder feeds a1..a11 (a12 never is); with action_slots: S - 1


@dataclass(frozen=True)
class LayerSpec:
    """The Python constants of one decoder layer (the compiled layer function specialises on them)."""

    heads: int
    head_dim: int
    rotary_dims: int
    eps: float
    qk_layernorm: bool
    attn_lora_scale: float  # 0.0: no attention LoRA (none, or merged)
    ffn: str  # "plain" | "mixlora"
    top_k: int
    ffn_lora_scale: float
    router: bool


@dataclass
class PromptKV:
    """A prompt's keys/values per layer [B, heads, L, head_dim] (rotary applied), which keys are real [B, L],
    and the position id of a1 per row [B]. L = the prompt length, or a bucket size (left padding, masked)."""

    keys: list[torch.Tensor]
    values: list[torch.Tensor]
    key_mask: torch.Tensor
    next_pos: torch.Tensor

    @property
    def batch_size(self) -> int:
        return int(self.key_mask.shape[0])

    @property
    def length(self) -> int:
        return int(self.key_mask.shape[1])


def _lora_linear_tensors(module: nn.Module, dtype: torch.dtype) -> tuple[Any, ...]:
    """(weight, bias, lora_A, lora_B) of an nn.Linear or LoRALinear, LoRA cast to the compute dtype once."""
    if isinstance(module, LoRALinear):
        return module.weight, module.bias, module.lora_A.detach().to(dtype), module.lora_B.detach().to(dtype)
    return module.weight, module.bias, None, None


def _linear(x: torch.Tensor, w: torch.Tensor, b: Any, lora_a: Any, lora_b: Any, scale: float) -> torch.Tensor:
    y = F.linear(x, w, b)
    if lora_a is None:
        return y
    return y + scale * F.linear(F.linear(x, lora_a), lora_b)  # LoRALinear's arithmetic


def _mixlora_ffn(x: torch.Tensor, t: tuple[Any, ...], spec: LayerSpec, act: Callable) -> torch.Tensor:
    """MixLoRA FFN of S rows with fixed shapes: y = sum_k w_k [W_down a_k + s B_k A_k a_k],
    a_k = act(W_up x + s B^up_k A^up_k x), k over the row's top-K experts (see the module docstring)."""
    up_w, up_b, down_w, down_b, router_w, up_A, up_B, down_A, down_B = t
    S, H = x.shape
    h_base = F.linear(x, up_w, up_b)  # (S, I) the frozen up-projection
    if spec.ffn == "plain":
        return F.linear(act(h_base), down_w, down_b)
    N, r, _ = up_A.shape
    inner = h_base.shape[1]
    if spec.router:
        with torch.autocast(device_type=x.device.type, enabled=False):  # fp32 routing, as MixLoRAFFN.route
            probs = torch.softmax(F.linear(x.float(), router_w.float()), dim=-1)  # (S, N)
        top_p, experts = probs.topk(spec.top_k, dim=-1)  # (S, K)
        weights = top_p / top_p.sum(dim=-1, keepdim=True)
    else:
        experts = torch.zeros(S, 1, dtype=torch.long, device=x.device)
        weights = torch.ones(S, 1, dtype=torch.float32, device=x.device)
    K = experts.shape[1]
    xa = F.linear(x, up_A.reshape(N * r, H)).view(S, N, r)  # every expert's rank space: one matmul
    up_delta = torch.bmm(xa.transpose(0, 1), up_B.transpose(1, 2))  # (N, S, I)
    up_sel = up_delta.transpose(0, 1).gather(1, experts[:, :, None].expand(S, K, inner))  # (S, K, I)
    a = act(h_base[:, None, :] + spec.ffn_lora_scale * up_sel).reshape(S * K, inner)
    y = F.linear(a, down_w, down_b)  # (S*K, H): the K down-projections of every row in one matmul
    flat = experts.reshape(S * K)
    aa = F.linear(a, down_A.reshape(N * r, inner)).view(S * K, N, r)
    aa = aa.gather(1, flat[:, None, None].expand(S * K, 1, r)).squeeze(1)  # (S*K, r)
    dd = F.linear(aa, down_B.reshape(N * H, r)).view(S * K, N, H)
    dd = dd.gather(1, flat[:, None, None].expand(S * K, 1, H)).squeeze(1)  # (S*K, H)
    y = (y + spec.ffn_lora_scale * dd).view(S, K, H)
    return (y.float() * weights[:, :, None]).sum(dim=1).to(x.dtype)


def layer_forward(
    h: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    mask: torch.Tensor,
    k_prefix: torch.Tensor,
    v_prefix: torch.Tensor,
    t: tuple[Any, ...],
    spec: LayerSpec,
    act: Callable,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Persimmon decoder layer over rows h [B, T, H] attending to cached keys/values (k_prefix, v_prefix
    [B, heads, L, hd]; L = 0 for the prompt pass) and to its own rows, under the additive fp32 `mask`
    [B, 1, T, L + T]. transformers' PersimmonDecoderLayer arithmetic, attention computed in fp32, eval mode.
    Returns (h, k, v): the layer's output and this layer's keys/values of the T rows (rotary applied)."""
    (ln1_w, ln1_b, qkv_w, qkv_b, qkv_a, qkv_bb, qln_w, qln_b, kln_w, kln_b, o_w, o_b, o_a, o_bb, ln2_w, ln2_b) = t[:16]
    B, T, H = h.shape
    nh, hd, rot = spec.heads, spec.head_dim, spec.rotary_dims
    x = F.layer_norm(h, (H,), ln1_w, ln1_b, spec.eps)
    qkv = _linear(x, qkv_w, qkv_b, qkv_a, qkv_bb, spec.attn_lora_scale).view(B, T, nh, 3, hd)
    q, k, v = qkv[..., 0, :], qkv[..., 1, :], qkv[..., 2, :]
    if spec.qk_layernorm:
        q = F.layer_norm(q, (hd,), qln_w, qln_b, spec.eps)
        k = F.layer_norm(k, (hd,), kln_w, kln_b, spec.eps)
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)  # (B, nh, T, hd)
    q_rot, k_rot = apply_rotary_pos_emb(q[..., :rot], k[..., :rot], cos, sin)
    q = torch.cat((q_rot, q[..., rot:]), dim=-1)
    k = torch.cat((k_rot, k[..., rot:]), dim=-1)
    keys = torch.cat((k_prefix, k), dim=2)  # (B, nh, L + T, hd)
    values = torch.cat((v_prefix, v), dim=2)
    # attention in fp32 (as SDPA, transformers' default, accumulates): bf16 scores would be rounded before the
    # softmax, ~10x the rounding difference to transformers' forward (measured on a random bf16 model)
    scores = torch.matmul(q.float(), keys.float().transpose(2, 3)) * (hd**-0.5) + mask
    attn = torch.softmax(scores, dim=-1)
    out = torch.matmul(attn, values.float()).to(h.dtype).transpose(1, 2).reshape(B, T, H)
    h = h + _linear(out, o_w, o_b, o_a, o_bb, spec.attn_lora_scale)
    x = F.layer_norm(h, (H,), ln2_w, ln2_b, spec.eps)
    return h + _mixlora_ffn(x.reshape(B * T, H), t[16:], spec, act).view(B, T, H), k, v


def _layer_tensors(layer: nn.Module, dtype: torch.dtype) -> tuple[LayerSpec, tuple[Any, ...], Callable]:
    attn, mlp = layer.self_attn, layer.mlp
    qkv = _lora_linear_tensors(attn.query_key_value, dtype)
    dense = _lora_linear_tensors(attn.dense, dtype)
    attn_scale = attn.query_key_value.scale if isinstance(attn.query_key_value, LoRALinear) else 0.0
    if isinstance(attn.dense, LoRALinear) != isinstance(attn.query_key_value, LoRALinear):
        raise ValueError("attention LoRA on one projection only is not supported")
    qk = attn.qk_layernorm
    qln = (attn.q_layernorm.weight, attn.q_layernorm.bias) if qk else (None, None)
    kln = (attn.k_layernorm.weight, attn.k_layernorm.bias) if qk else (None, None)
    if isinstance(mlp, MixLoRAFFN):
        ffn = (
            mlp.dense_h_to_4h.weight,
            mlp.dense_h_to_4h.bias,
            mlp.dense_4h_to_h.weight,
            mlp.dense_4h_to_h.bias,
            None if mlp.router is None else mlp.router.weight.detach(),
            *(p.detach().to(dtype) for p in (mlp.lora_up_A, mlp.lora_up_B, mlp.lora_down_A, mlp.lora_down_B)),
        )
        kind, top_k, ffn_scale, router = "mixlora", mlp.top_k, float(mlp.scale), mlp.router is not None
    else:
        ffn = (mlp.dense_h_to_4h.weight, mlp.dense_h_to_4h.bias, mlp.dense_4h_to_h.weight, mlp.dense_4h_to_h.bias)
        ffn = (*ffn, None, None, None, None, None)
        kind, top_k, ffn_scale, router = "plain", 1, 0.0, False
    spec = LayerSpec(
        heads=attn.num_heads,
        head_dim=attn.head_dim,
        rotary_dims=attn.rotary_ndims,
        eps=float(layer.input_layernorm.eps),
        qk_layernorm=bool(qk),
        attn_lora_scale=float(attn_scale),
        ffn=kind,
        top_k=int(top_k),
        ffn_lora_scale=ffn_scale,
        router=router,
    )
    tensors = (
        *(layer.input_layernorm.weight, layer.input_layernorm.bias),
        *qkv,
        *qln,
        *kln,
        *dense,
        *(layer.post_attention_layernorm.weight, layer.post_attention_layernorm.bias),
        *ffn,
    )
    return spec, tuple(None if x is None else x.detach() for x in tensors), mlp.act


class WindowDecoder:
    """The prompt pass and window passes over a policy's decoder (see the module docstring). Inference only."""

    def __init__(self, policy: Any, compile: bool = False, cuda_graph: bool = False, bucket: int | None = None) -> None:
        if bucket is None:
            bucket = 64 if cuda_graph else 1  # only a graph needs fixed prompt lengths
        if bucket < 1:
            raise ValueError(f"bucket must be >= 1, got {bucket}")
        if cuda_graph and policy.device.type != "cuda":
            raise ValueError(f"cuda_graph needs a CUDA policy, this one is on {policy.device}")
        fuyu = policy.backbone.model
        lm = fuyu.language_model
        self.policy = policy
        self.dtype: torch.dtype = policy.dtype
        self.device: torch.device = policy.device
        self.compiled = compile
        self.cuda_graph = cuda_graph
        self.bucket = bucket
        self._image_token_id = int(fuyu.config.image_token_id)
        self._patch_embed = fuyu.vision_embed_tokens
        self._embed = lm.embed_tokens.weight.detach()
        self._rotary = lm.rotary_emb
        self._final_ln = (lm.final_layernorm.weight.detach(), lm.final_layernorm.bias.detach(), lm.final_layernorm.eps)
        self._head = policy.bin_head().detach().float()  # (256, H) W_bins in fp32 (the Q head computes in fp32)
        self.num_slots: int = policy.num_slots
        self.window_size = self.num_slots - 1  # tokens fed per window pass: a1 .. a(S-1)
        self._masked_bins = ~policy.valid_bins  # (S, bins): each slot's missing bins, as MoREPolicy.bin_logits
        self._bin_ids = policy.bin_token_ids
        self._layers = [_layer_tensors(layer, self.dtype) for layer in lm.layers]
        self._window_fns: dict[LayerSpec, Callable] = {}
        for spec, _, _ in self._layers:
            if spec not in self._window_fns:
                self._window_fns[spec] = torch.compile(layer_forward, dynamic=False) if compile else layer_forward
        # prompt lengths vary: compiled prompt passes only where lengths are bucketed (graphs), else eager
        self._prompt_fns = (
            self._window_fns if compile and cuda_graph else dict.fromkeys(self._window_fns, layer_forward)
        )
        self._graphs: dict[tuple[int, int], _Graphs] = {}

    @property
    def num_layers(self) -> int:
        return len(self._layers)

    # -- the prompt ---------------------------------------------------------------------------------
    @torch.no_grad()
    def prompt(self, batch: Any) -> tuple[PromptKV, torch.Tensor]:
        """Image + prompt pass over a prompt-only Batch: (PromptKV, slot 1 logits [B, bins] fp32)."""
        ids, mask = batch.input_ids, batch.attention_mask.bool()
        h = F.embedding(ids, self._embed)
        patches = self._patch_embed(batch.pixel_values.to(self.dtype)).to(h.dtype)  # as FuyuModel.forward
        h = h.masked_scatter((ids == self._image_token_id)[..., None], patches)
        B, P = ids.shape
        L = -(-P // self.bucket) * self.bucket
        positions, last = batch.position_ids, batch.position_ids[:, -1]
        if L != P:  # left padding up to the bucket: masked keys, positions 0
            h = F.pad(h, (0, 0, L - P, 0))
            mask = F.pad(mask, (L - P, 0), value=False)
            positions = F.pad(positions, (L - P, 0))
        if self.cuda_graph:
            return self._graph(B, L).prompt(h, positions, mask, last + 1)
        keys, values, first = self._prompt_pass(h, positions, mask)
        return PromptKV(keys, values, mask, last + 1), first

    def _prompt_pass(
        self, h: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """Causal pass over the prompt rows (no host synchronisation: capturable). Padding keys come back zeroed:
        they get weight 0 anyway, and a NaN there must not reach 0 * v."""
        B, P, _ = h.shape
        cos, sin = self._rotary(h, positions)
        causal = torch.ones(P, P, dtype=torch.bool, device=h.device).tril()
        allowed = causal[None] & key_mask[:, None, :]  # (B, P, P)
        mask = torch.zeros(B, 1, P, P, dtype=torch.float32, device=h.device)
        mask = mask.masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
        real = key_mask[:, None, :, None]
        keys, values = [], []
        for spec, tensors, act in self._layers:
            empty = h.new_zeros(B, spec.heads, 0, spec.head_dim)
            h, k, v = self._prompt_fns[spec](h, cos, sin, mask, empty, empty, tensors, spec, act)
            keys.append(torch.where(real, k, 0))
            values.append(torch.where(real, v, 0))
        return keys, values, self._logits(h[:, -1])

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        """Slot 1's row h [B, H] -> its bin logits [B, bins], or window rows [B, S - 1, H] (slots 2..S) ->
        [B, S - 1, bins]; fp32, each slot's missing bins at MASKED_LOGIT."""
        w, b, eps = self._final_ln
        h = F.layer_norm(h, (h.shape[-1],), w, b, eps)
        with torch.autocast(device_type=h.device.type, enabled=False):
            logits = F.linear(h.float(), self._head)  # as MoREPolicy.bin_logits
        masked = self._masked_bins[0] if logits.dim() == 2 else self._masked_bins[1:]
        return logits.masked_fill(masked, MASKED_LOGIT)

    # -- the window pass ----------------------------------------------------------------------------
    @torch.no_grad()
    def window(self, prompt: PromptKV, bins: torch.Tensor) -> torch.Tensor:
        """Logits of slots 2..12 [B, 11, 256] (fp32) for the bins [B, 11] fed as a1..a11 (action_slots: slots
        2..S [B, S - 1, bins] for a1..a(S-1))."""
        if tuple(bins.shape) != (prompt.batch_size, self.window_size):
            raise ValueError(
                f"window bins must have shape ({prompt.batch_size}, {self.window_size}), got {tuple(bins.shape)}"
            )
        if self.cuda_graph:
            return self._graph(prompt.batch_size, prompt.length).window(prompt, bins)
        return self._window_pass(prompt.keys, prompt.values, prompt.key_mask, prompt.next_pos, bins)

    def _window_pass(
        self,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        key_mask: torch.Tensor,
        next_pos: torch.Tensor,
        bins: torch.Tensor,
    ) -> torch.Tensor:
        """The window pass from plain tensors (no host synchronisation: capturable)."""
        B, T = bins.shape
        L = key_mask.shape[1]
        h = F.embedding(self._bin_ids[bins], self._embed)  # (B, T, H)
        positions = next_pos[:, None] + torch.arange(T, device=h.device)  # (B, T)
        cos, sin = self._rotary(h, positions)
        causal = torch.ones(T, T, dtype=torch.bool, device=h.device).tril()
        allowed = torch.cat((key_mask[:, None, :].expand(B, T, L), causal[None].expand(B, T, T)), dim=2)
        mask = torch.zeros(B, 1, T, L + T, dtype=torch.float32, device=h.device)
        mask = mask.masked_fill(~allowed[:, None], torch.finfo(torch.float32).min)
        for (spec, tensors, act), k, v in zip(self._layers, keys, values, strict=True):
            h, _, _ = self._window_fns[spec](h, cos, sin, mask, k, v, tensors, spec, act)
        return self._logits(h)

    def _graph(self, batch_size: int, length: int) -> _Graphs:
        key = (batch_size, length)
        if key not in self._graphs:
            self._graphs[key] = _Graphs(self, batch_size, length)
        return self._graphs[key]


class _Graphs:
    """The CUDA graphs of one (batch, prompt length): the prompt pass writes the prompt's keys/values into static
    buffers that the window pass reads. One decision at a time per decoder (the buffers are shared)."""

    def __init__(self, decoder: WindowDecoder, batch_size: int, length: int) -> None:
        dev, dt, B, L = decoder.device, decoder.dtype, batch_size, length
        hidden = decoder._embed.shape[1]
        self.h = torch.zeros(B, L, hidden, dtype=dt, device=dev)
        self.positions = torch.zeros(B, L, dtype=torch.long, device=dev)
        self.key_mask = torch.ones(B, L, dtype=torch.bool, device=dev)
        self.next_pos = torch.full((B,), L, dtype=torch.long, device=dev)
        self.bins = torch.zeros(B, decoder.window_size, dtype=torch.long, device=dev)
        self.keys = [torch.zeros(B, s.heads, L, s.head_dim, dtype=dt, device=dev) for s, _, _ in decoder._layers]
        self.values = [torch.zeros_like(k) for k in self.keys]
        self.kv = PromptKV(self.keys, self.values, self.key_mask, self.next_pos)

        def prompt_step() -> torch.Tensor:
            keys, values, first = decoder._prompt_pass(self.h, self.positions, self.key_mask)
            for dst, src in zip(self.keys + self.values, keys + values, strict=True):
                dst.copy_(src)
            return first

        def window_step() -> torch.Tensor:
            return decoder._window_pass(self.keys, self.values, self.key_mask, self.next_pos, self.bins)

        self.prompt_graph, self.first = _capture(prompt_step, dev)
        self.window_graph, self.out = _capture(window_step, dev)

    def prompt(
        self, h: torch.Tensor, positions: torch.Tensor, key_mask: torch.Tensor, next_pos: torch.Tensor
    ) -> tuple[PromptKV, torch.Tensor]:
        self.h.copy_(h)
        self.positions.copy_(positions)
        self.key_mask.copy_(key_mask)
        self.next_pos.copy_(next_pos)
        self.prompt_graph.replay()
        return self.kv, self.first.clone()

    def window(self, prompt: PromptKV, bins: torch.Tensor) -> torch.Tensor:
        if prompt.keys[0] is not self.keys[0]:
            raise ValueError("this prompt was not made by this decoder's graphs (call prompt() first)")
        self.bins.copy_(bins)
        self.window_graph.replay()
        return self.out.clone()


def _capture(step: Callable[[], torch.Tensor], device: torch.device) -> tuple[Any, torch.Tensor]:
    """Warm `step` up on a side stream (compilation, cuBLAS handles, the allocator), then capture it."""
    stream = torch.cuda.Stream(device=device)
    stream.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(stream), torch.no_grad():
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph), torch.no_grad():
        out = step()
    return graph, out
