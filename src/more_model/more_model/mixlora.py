"""MixLoRA: each decoder FFN becomes N LoRA experts sharing the frozen FFN weights, plus LoRA on attention.

Expert k of a Persimmon FFN (W_up = dense_h_to_4h, W_down = dense_4h_to_h, f = relu^2):
    E_k(x) = (W_down + s B_down^k A_down^k) f((W_up + s B_up^k A_up^k) x)        s = alpha / rank
Router (fp32, no bias): p = softmax(W_g x); keep the top-K experts and renormalise their weights
(= softmax over the K kept logits); y = sum_{k in TopK} w_k E_k(x). The router runs with autocast disabled:
under a bf16 autocast region `F.linear` would otherwise compute the logits in bf16 whatever its inputs are.

Efficient form (as in the MixLoRA repo): W_up x is computed once for all tokens; each expert adds its
LoRA delta only on the tokens routed to it, runs f and the down-projection on them, and the weighted
outputs are scatter-added. `forward_dense` runs every expert on every token (the reference and the
benchmark's baseline); both read the same parameters.

With num_experts = 1 and no router the same module is one plain LoRA on the FFN (the "w/o MoE" ablation).
B matrices start at zero, so a freshly injected model computes exactly what the backbone computes.
Adapter parameters are the ones whose names contain "lora_" or "router." (see `is_adapter_name`).

For inference the attention LoRA can be folded into its base weights (`merge_attention_lora`); the FFN
experts cannot (which experts apply depends on the token), so they always run as LoRA.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .config import MoREConfig


def is_adapter_name(name: str) -> bool:
    """True for LoRA and router parameter names (everything else belongs to the frozen backbone)."""
    return "lora_" in name or ".router." in name or name.startswith("router.")


class LoRALinear(nn.Module):
    """y = W x + b + s * B A dropout(x). Shares `weight`/`bias` with the wrapped nn.Linear (same state-dict keys)."""

    def __init__(self, base: nn.Linear, rank: int, scale: float, dropout: float) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.scale = scale
        device = base.weight.device
        # adapters are kept in fp32 (optimizer master weights); they are cast to the activation dtype per call
        self.lora_A = nn.Parameter(torch.empty(rank, self.in_features, device=device))  # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(self.out_features, rank, device=device))  # (out, r)
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight, self.bias)
        delta = F.linear(F.linear(self.dropout(x), self.lora_A.to(x.dtype)), self.lora_B.to(x.dtype))
        return y + self.scale * delta

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, rank={self.lora_A.shape[0]}, scale={self.scale}"

    @torch.no_grad()
    def merged(self) -> nn.Linear:
        """A plain nn.Linear computing W' x + b with W' = W + s B A, written into W in place.

        The product is formed in fp32 and rounded once to W's dtype, so outputs differ from the unmerged forward
        (which adds s B (A x) to W x) by rounding only. The LoRA tensors are left behind: the result is for
        inference, the adapter can no longer train or be saved separately.
        """
        w = self.weight
        delta = self.scale * (self.lora_B.detach().float() @ self.lora_A.detach().float())  # (out, in)
        w.copy_((w.float() + delta.to(w.device)).to(w.dtype))
        linear = nn.Linear(self.in_features, self.out_features, bias=self.bias is not None, device="meta")
        linear.weight = w
        linear.bias = self.bias
        return linear


class MixLoRAFFN(nn.Module):
    """A Persimmon MLP turned into N LoRA experts with a top-K router (or one LoRA when N == 1, no router).

    After each forward, `router_probs` holds the full router softmax [B, T, N] (fp32, in the graph) and
    `router_experts` the chosen experts [B, T, K] (int64) for the load-balance loss; both None without a router.
    """

    def __init__(
        self, mlp: nn.Module, num_experts: int, top_k: int, rank: int, scale: float, dropout: float, router: bool
    ) -> None:
        super().__init__()
        if not router and (num_experts, top_k) != (1, 1):
            raise ValueError("without a router there is exactly one expert (num_experts=1, top_k=1)")
        if not 1 <= top_k <= num_experts:
            raise ValueError(f"top_k must lie in [1, {num_experts}], got {top_k}")
        self.dense_h_to_4h: nn.Linear = mlp.dense_h_to_4h
        self.dense_4h_to_h: nn.Linear = mlp.dense_4h_to_h
        self.act = mlp.act
        hid, inner = self.dense_h_to_4h.in_features, self.dense_h_to_4h.out_features
        N, r = num_experts, rank
        device = self.dense_h_to_4h.weight.device
        self.num_experts, self.top_k, self.scale = N, top_k, scale
        self.router = nn.Linear(hid, N, bias=False, device=device, dtype=torch.float32) if router else None
        if self.router is not None:
            nn.init.normal_(self.router.weight, std=0.02)
        self.lora_up_A = nn.Parameter(torch.empty(N, r, hid, device=device))  # (N, r, H)
        self.lora_up_B = nn.Parameter(torch.zeros(N, inner, r, device=device))  # (N, I, r)
        self.lora_down_A = nn.Parameter(torch.empty(N, r, inner, device=device))  # (N, r, I)
        self.lora_down_B = nn.Parameter(torch.zeros(N, hid, r, device=device))  # (N, H, r)
        for lora_a in (self.lora_up_A, self.lora_down_A):
            for k in range(N):
                nn.init.kaiming_uniform_(lora_a.data[k], a=math.sqrt(5))
        self.dropout = nn.Dropout(dropout)
        self.dense = False  # True: every expert on every token (reference/benchmark path)
        self.router_probs: torch.Tensor | None = None
        self.router_experts: torch.Tensor | None = None

    def extra_repr(self) -> str:
        return f"experts={self.num_experts}, top_k={self.top_k}, rank={self.lora_up_A.shape[1]}, scale={self.scale}"

    # -- routing -----------------------------------------------------------------------------------
    def route(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [S, H] -> (probs [S, N] fp32, weights [S, K] fp32 summing to 1, experts [S, K] int64)."""
        S = x.shape[0]
        if self.router is None:
            ones = torch.ones(S, 1, device=x.device, dtype=torch.float32)
            return ones, ones, torch.zeros(S, 1, device=x.device, dtype=torch.long)
        # fp32 even inside a bf16 autocast region (autocast would run this F.linear in bf16); the weight is cast
        # too, so a router stored in another dtype (a policy cast as a whole) still computes in fp32
        with torch.autocast(device_type=x.device.type, enabled=False):
            logits = F.linear(x.float(), self.router.weight.float())  # (S, N)
            probs = torch.softmax(logits, dim=-1)
        top_p, experts = probs.topk(self.top_k, dim=-1)  # (S, K)
        weights = top_p / top_p.sum(dim=-1, keepdim=True)
        return probs, weights, experts

    # -- one expert --------------------------------------------------------------------------------
    def _lora(self, x: torch.Tensor, lora_a: torch.Tensor, lora_b: torch.Tensor) -> torch.Tensor:
        """s * B A dropout(x) for x [n, in], A (r, in), B (out, r) -> [n, out]."""
        if self.training and self.dropout.p > 0:
            x = self.dropout(x)
        return self.scale * F.linear(F.linear(x, lora_a.to(x.dtype)), lora_b.to(x.dtype))

    def _expert(self, k: int, x: torch.Tensor, h_base: torch.Tensor) -> torch.Tensor:
        """E_k on tokens x [n, H], given their frozen up-projection h_base [n, I] -> [n, H]."""
        h = h_base + self._lora(x, self.lora_up_A[k], self.lora_up_B[k])
        a = self.act(h)
        return self.dense_4h_to_h(a) + self._lora(a, self.lora_down_A[k], self.lora_down_B[k])

    # -- forward -----------------------------------------------------------------------------------
    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        B, T, H = hidden_states.shape
        x = hidden_states.reshape(B * T, H)  # (S, H)
        probs, weights, experts = self.route(x)
        self.router_probs = probs.view(B, T, -1) if self.router is not None else None
        self.router_experts = experts.view(B, T, -1) if self.router is not None else None
        h_base = self.dense_h_to_4h(x)  # (S, I): the frozen up-projection, once for all tokens
        if self.router is None:
            out = self._expert(0, x, h_base)
        elif x.shape[0] == 1:
            out = self._forward_one_token(x, h_base, weights, experts)
        elif self.dense:
            out = self._forward_dense(x, h_base, weights, experts)
        else:
            out = self._forward_dispatch(x, h_base, weights, experts)
        return out.view(B, T, H)

    def _forward_one_token(
        self, x: torch.Tensor, h_base: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor
    ) -> torch.Tensor:
        """One token (batch-1 decoding): sum its K experts directly, without sorting or scattering."""
        out = torch.zeros(1, x.shape[1], device=x.device, dtype=torch.float32)
        for j, k in enumerate(experts[0].tolist()):
            out = out + self._expert(k, x, h_base).float() * weights[0, j]
        return out.to(x.dtype)

    def _forward_dispatch(
        self, x: torch.Tensor, h_base: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor
    ) -> torch.Tensor:
        S, K = experts.shape
        flat_expert = experts.reshape(-1)  # (S*K,)
        flat_weight = weights.reshape(-1)
        flat_token = torch.arange(S, device=x.device).repeat_interleave(K)
        order = torch.argsort(flat_expert, stable=True)
        counts = torch.bincount(flat_expert, minlength=self.num_experts).tolist()  # one host sync per layer
        out = torch.zeros(S, x.shape[1], device=x.device, dtype=torch.float32)
        for k, idx in enumerate(torch.split(order, counts)):
            if idx.numel() == 0:
                continue
            tok = flat_token[idx]  # (n_k,) the tokens routed to expert k
            y = self._expert(k, x[tok], h_base[tok])  # (n_k, H)
            out.index_add_(0, tok, y.float() * flat_weight[idx, None])
        return out.to(x.dtype)

    def _forward_dense(
        self, x: torch.Tensor, h_base: torch.Tensor, weights: torch.Tensor, experts: torch.Tensor
    ) -> torch.Tensor:
        S, N = x.shape[0], self.num_experts
        dt = x.dtype
        xd = self.dropout(x)
        # (N, S, r) -> (N, S, I): LoRA delta of every expert on every token
        up_delta = (xd.unsqueeze(0) @ self.lora_up_A.to(dt).transpose(1, 2)) @ self.lora_up_B.to(dt).transpose(1, 2)
        a = self.act(h_base.unsqueeze(0) + self.scale * up_delta)  # (N, S, I)
        ad = self.dropout(a)
        down_delta = (ad @ self.lora_down_A.to(dt).transpose(1, 2)) @ self.lora_down_B.to(dt).transpose(1, 2)
        y = self.dense_4h_to_h(a) + self.scale * down_delta  # (N, S, H) every expert on every token
        gates = torch.zeros(S, N, device=x.device, dtype=torch.float32).scatter(1, experts, weights)  # (S, N)
        return torch.einsum("nsh,sn->sh", y.float(), gates).to(dt)


def inject_adapters(backbone: nn.Module, config: MoREConfig) -> list[MixLoRAFFN]:
    """Replace the FFNs (and attention projections) of the configured decoder layers in place."""
    layers = decoder_layers(backbone)
    ffns = []
    for i in config.adapted_layers(len(layers)):
        layer = layers[i]
        if isinstance(layer.mlp, MixLoRAFFN):
            raise ValueError(f"decoder layer {i} already has adapters")
        layer.mlp = MixLoRAFFN(
            layer.mlp,
            num_experts=config.num_experts,
            top_k=config.top_k,
            rank=config.rank,
            scale=config.lora_scale,
            dropout=config.dropout,
            router=config.use_moe,
        )
        ffns.append(layer.mlp)
        if config.attn_rank:
            attn = layer.self_attn
            for name in ("query_key_value", "dense"):
                setattr(
                    attn, name, LoRALinear(getattr(attn, name), config.attn_rank, config.attn_scale, config.dropout)
                )
    return ffns


def decoder_layers(backbone: nn.Module) -> Any:
    """The Persimmon decoder layers of a FuyuForCausalLM."""
    return backbone.model.language_model.layers


def mixlora_modules(module: nn.Module) -> list[MixLoRAFFN]:
    return [m for m in module.modules() if isinstance(m, MixLoRAFFN)]


@torch.no_grad()
def merge_attention_lora(module: nn.Module) -> int:
    """Fold every attention LoRA of `module` into its base weight (W <- W + s B A, in place) and put a plain
    nn.Linear in the LoRALinear's place; returns how many were merged. Inference only (see LoRALinear.merged)."""
    merged = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, LoRALinear):
                setattr(parent, name, child.merged())
                merged += 1
    return merged


def set_dense_experts(module: nn.Module, dense: bool) -> None:
    """Switch every MixLoRA FFN between token dispatch (default) and all-experts-dense."""
    for m in mixlora_modules(module):
        m.dense = dense
