"""The training objectives: offline RL (MoRE eq. 7-8 + Monte-Carlo bound), imitation, MoE load balance (eq. 9).

Notation: B samples, 12 slots, 256 bins; Q = sigmoid(logit) of a slot's bin token.

Autoregressive Bellman target (eq. 7), from a target network (target.py), for transition
(s_t, a_t, r_t, s_{t+1}) with the data's action a_t = (a^1 .. a^12):
    y^i  = max_b Q_tgt(s_t, a^{1:i}, b) at slot i+1                          i = 1..11
    y^12 = r_t + gamma * (1 - done_t) * max_b Q_tgt(s_{t+1}, b) at slot 1
    y^i  = max(y^i, gamma^steps_to_end * success)                  (Monte-Carlo lower bound, Q-Transformer)
with r_t = 1 at the final step of a successful episode, else 0, and steps_to_end = 0 at the final step.
`done` means terminal (the episode ended there); a time-limit truncation is not done and bootstraps, except its
last step, whose next state is not stored: the data pipeline leaves it out (more_common.dataset's done rule).

RL loss (eq. 8, 10): 0.5 * mean_{data}(Q(a^i) - y^i)^2 + alpha * 0.5 * mean_{bins b != a^i} Q(b)^2 (+ beta L_MoE).
`regression="bce"` swaps both squared errors for binary cross-entropy on the same sigmoid Q, with the same
targets: BCE(Q(a^i), y^i) + alpha * mean_{b != a^i} BCE(Q(b), 0). Both losses are minimised by the same Q
(the expected target), so the Q-function and the greedy policy mean the same thing; BCE's gradient with respect
to the logit is Q - y instead of (Q - y) Q (1 - Q), which does not vanish on bins that the conservative term has
already pushed towards 0 (the classification-loss argument of Farebrother et al., "Stop Regressing", 2024).
Imitation (QUART, "w/o RL"): cross-entropy of the data's bins over the 256 bin logits of each slot.
Load balance (Switch eq. 4-6 extended to top-K as MixLoRA and Mixtral do): L = N * sum_k f_k P_k per MixLoRA
layer, f_k = share of the routed (token, choice) assignments of real (unpadded) tokens that go to expert k (all K
choices count, sum_k f_k = 1), P_k = mean router probability of k; averaged over layers (see load_balance_loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

Objective = Literal["rl", "il"]
Regression = Literal["mse", "bce"]


@dataclass(frozen=True)
class LossConfig:
    """objective "rl" (MoRE) or "il" (QUART / "w/o RL"); gamma, alpha (conservative), beta (load balance);
    regression "mse" (the paper's squared error) or "bce" (cross-entropy on the same sigmoid Q)."""

    objective: Objective = "rl"
    gamma: float = 0.99
    alpha: float = 0.5
    beta: float = 0.002
    mc_lower_bound: bool = True
    regression: Regression = "mse"

    def __post_init__(self) -> None:
        if self.objective not in ("rl", "il"):
            raise ValueError(f"objective must be 'rl' or 'il', got {self.objective!r}")
        if self.regression not in ("mse", "bce"):
            raise ValueError(f"regression must be 'mse' or 'bce', got {self.regression!r}")
        if not 0.0 <= self.gamma <= 1.0:
            raise ValueError(f"gamma must lie in [0, 1], got {self.gamma}")
        if self.alpha < 0.0:
            raise ValueError(f"alpha must be >= 0, got {self.alpha}")
        if self.beta < 0.0:
            raise ValueError(f"beta must be >= 0, got {self.beta}")


def _check_slots(logits: torch.Tensor, bins: torch.Tensor) -> None:
    assert logits.dim() == 3, f"logits must be [B, slots, bins], got {logits.shape}"  # 12 x 256 by default
    assert bins.shape == logits.shape[:2], f"bins {tuple(bins.shape)} must match logits {tuple(logits.shape[:2])}"


def _weighted_mean(per_sample: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
    """Mean over samples of per_sample [B], optionally weighted by weights [B] (e.g. 0 to drop a sample)."""
    if weights is None:
        return per_sample.mean()
    w = weights.to(per_sample.dtype)
    return (per_sample * w).sum() / w.sum().clamp(min=1e-12)


def bellman_targets(
    target_slot_logits: torch.Tensor,
    target_next_logits: torch.Tensor,
    rewards: torch.Tensor,
    dones: torch.Tensor,
    success: torch.Tensor,
    steps_to_end: torch.Tensor,
    gamma: float,
    mc_lower_bound: bool = True,
) -> torch.Tensor:
    """Per-slot targets y [B, 12] (no gradient).

    target_slot_logits [B, 12, 256]: target network on s_t with the data's actions (teacher forced)
    target_next_logits [B, 256] (or [B, 12, 256], slot 1 is used): target network on s_{t+1}, prompt only
    rewards, dones, success, steps_to_end [B]
    """
    if target_next_logits.dim() == 3:
        target_next_logits = target_next_logits[:, 0]
    B = target_slot_logits.shape[0]
    assert target_slot_logits.dim() == 3, f"need [B, slots, bins], got {tuple(target_slot_logits.shape)}"
    assert target_next_logits.shape == (B, target_slot_logits.shape[2]), f"bad next logits {target_next_logits.shape}"
    for name, t in (("rewards", rewards), ("dones", dones), ("success", success), ("steps_to_end", steps_to_end)):
        assert t.shape == (B,), f"{name} must have shape ({B},), got {tuple(t.shape)}"
    with torch.no_grad():
        q_max = torch.sigmoid(target_slot_logits.float()).amax(dim=-1)  # (B, 12)
        q_next = torch.sigmoid(target_next_logits.float()).amax(dim=-1)  # (B,)
        not_done = 1.0 - dones.float()
        last = rewards.float() + gamma * not_done * q_next  # (B,)
        y = torch.cat([q_max[:, 1:], last[:, None]], dim=1)  # slot i's target reads slot i+1; the last bootstraps
        if mc_lower_bound:
            mc = (gamma ** steps_to_end.float()) * success.float()  # (B,)
            y = torch.maximum(y, mc[:, None])
    return y


def td_loss(
    logits: torch.Tensor,
    bins: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None = None,
    regression: Regression = "mse",
) -> torch.Tensor:
    """mean over samples and slots of 0.5 (Q(s, a^{1:i}) - y^i)^2 ("mse") or BCE(Q(s, a^{1:i}), y^i) ("bce");
    logits [B, 12, 256], bins/targets [B, 12]."""
    _check_slots(logits, bins)
    logit_taken = logits.float().gather(-1, bins.long().unsqueeze(-1)).squeeze(-1)  # (B, 12)
    y = targets.detach().float()
    if regression == "bce":
        per_slot = F.binary_cross_entropy_with_logits(logit_taken, y, reduction="none")
    else:
        per_slot = 0.5 * (torch.sigmoid(logit_taken) - y).pow(2)
    return _weighted_mean(per_slot.mean(dim=1), weights)


def conservative_loss(
    logits: torch.Tensor,
    bins: torch.Tensor,
    weights: torch.Tensor | None = None,
    regression: Regression = "mse",
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean over the 255 bins NOT taken at each slot of 0.5 Q^2 ("mse") or BCE(Q, 0) = softplus(logit) ("bce"):
    pushes unseen actions' Q towards 0. `valid` [slots, bins] bool: the bins each slot has (action_slots
    models; None: all), so the mean runs over the slot's own bins."""
    _check_slots(logits, bins)
    x = logits.float()  # (B, 12, 256)
    per_bin = F.softplus(x) if regression == "bce" else 0.5 * torch.sigmoid(x).pow(2)
    not_taken = torch.ones_like(x).scatter(-1, bins.long().unsqueeze(-1), 0.0)  # 1 except at the data's bin
    if valid is None:
        others = torch.full(x.shape[1:2], x.shape[-1] - 1.0, device=x.device)  # (S,)
    else:
        not_taken = not_taken * valid.to(x.dtype)
        others = valid.sum(dim=-1).to(x.dtype) - 1.0  # (S,)
    per_slot = (per_bin * not_taken).sum(dim=-1) / others  # (B, S)
    return _weighted_mean(per_slot.mean(dim=1), weights)


def imitation_loss(logits: torch.Tensor, bins: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """Cross-entropy of the data's bins over each slot's 256 bin logits, mean over slots (and samples)."""
    _check_slots(logits, bins)
    ce = F.cross_entropy(logits.float().flatten(0, 1), bins.long().flatten(), reduction="none")  # (B*12,)
    return _weighted_mean(ce.view(bins.shape).mean(dim=1), weights)


def load_balance_loss(
    router_probs: Sequence[torch.Tensor],
    router_experts: Sequence[torch.Tensor],
    token_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Load balance N * sum_k f_k P_k per layer over every top-K choice, padding excluded, averaged over layers.

    router_probs[l] [B, T, N]: the full router softmax (in the graph); router_experts[l] [B, T, K]: the experts the
    tokens were routed to (PolicyOutput carries both); token_mask [B, T]: False on padding.
        f_k = (number of routed (token, choice) pairs with expert k) / (K * real tokens)     sum_k f_k = 1
        P_k = mean over real tokens of the router probability of k
    f carries no gradient; P does. Uniform f or uniform P gives 1; every token on the same K experts (and all the
    probability on them) gives N / K.

    Why all K choices: every one of a token's K experts runs on it (and gets its gradient). A top-1 count ignores
    the other K - 1 calls: an expert that is only ever some token's second choice looks idle to the loss while
    it processes those tokens. MixLoRA (Li et al. 2024; its code uses Mixtral's `load_balancing_loss_func`)
    and Mixtral (transformers' `load_balancing_loss_func`) count all top-K choices. Those divide the counts by
    the tokens only (sum_k f_k = K), so their value is K times this one; normalising by K keeps Switch's scale
    (1 when balanced, whatever K), so the paper's beta (tuned on that scale) means the same for any K.
    Those pool the layers; here each layer gets its own loss and the layers are averaged, as before.
    """
    if len(router_probs) != len(router_experts):
        raise ValueError(
            f"load balance needs the chosen experts of every routed layer (PolicyOutput.router_experts): "
            f"{len(router_probs)} router_probs, {len(router_experts)} router_experts"
        )
    if not router_probs:
        return torch.zeros((), device=token_mask.device if token_mask is not None else None)
    losses = []
    for probs, experts in zip(router_probs, router_experts, strict=True):  # (B, T, N), (B, T, K)
        N, K = probs.shape[-1], experts.shape[-1]
        if probs.shape[:-1] != experts.shape[:-1]:
            raise ValueError(f"router_probs {tuple(probs.shape)} and router_experts {tuple(experts.shape)} differ")
        # token weights (1 real, 0 padding) instead of boolean indexing: no host sync on a GPU
        w = torch.ones(probs.shape[:-1], device=probs.device) if token_mask is None else token_mask.float()
        w = w.reshape(-1).to(probs.device)  # (S,)
        real = w.sum().clamp(min=1.0)
        counts = torch.zeros(N, device=probs.device).scatter_add_(
            0, experts.reshape(-1).long(), w.repeat_interleave(K)
        )  # (N,) routed assignments per expert
        f = counts / (K * real)
        P = (probs.float().reshape(-1, N) * w[:, None]).sum(dim=0) / real  # (N,)
        losses.append(N * (f * P).sum())
    return torch.stack(losses).mean()


@dataclass
class LossOutput:
    loss: torch.Tensor
    metrics: dict[str, float]


def more_loss(
    cfg: LossConfig,
    slot_logits: torch.Tensor,
    bins: torch.Tensor,
    router_probs: Sequence[torch.Tensor] = (),
    token_mask: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
    router_experts: Sequence[torch.Tensor] = (),
    valid: torch.Tensor | None = None,
) -> LossOutput:
    """The full objective: RL (needs `targets` from `bellman_targets`) or IL, plus beta * load balance
    (router_probs and router_experts come from PolicyOutput)."""
    lb = load_balance_loss(router_probs, router_experts, token_mask)
    metrics: dict[str, float] = {"load_balance": float(lb.detach())}
    if cfg.objective == "rl":
        if targets is None:
            raise ValueError("the RL objective needs Bellman targets")
        td = td_loss(slot_logits, bins, targets, weights, cfg.regression)
        cons = conservative_loss(slot_logits, bins, weights, cfg.regression, valid)
        main = td + cfg.alpha * cons
        with torch.no_grad():
            q_taken = torch.sigmoid(slot_logits.float()).gather(-1, bins.long().unsqueeze(-1)).squeeze(-1)
        metrics.update(td=float(td.detach()), conservative=float(cons.detach()), q_taken=float(q_taken.mean()))
        metrics["target_mean"] = float(targets.mean())
    else:
        main = imitation_loss(slot_logits, bins, weights)
        metrics["imitation"] = float(main.detach())
    with torch.no_grad():
        metrics["bin_accuracy"] = float((slot_logits.argmax(dim=-1) == bins).float().mean())
    loss = main + cfg.beta * lb
    metrics["loss"] = float(loss.detach())
    return LossOutput(loss=loss, metrics=metrics)
