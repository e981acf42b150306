"""Losses: Bellman targets against hand numbers and a brute-force loop, the conservative term's support,
TD / imitation values, the top-K load-balance loss by hand and against Mixtral's, and the combined objective."""

import math

import pytest
import torch

from more_model.losses import (
    LossConfig,
    bellman_targets,
    conservative_loss,
    imitation_loss,
    load_balance_loss,
    more_loss,
    td_loss,
)

GAMMA = 0.9
LOG3 = math.log(3.0)  # sigmoid(log 3) = 0.75


def _toy():
    """4 transitions: final step of a success, final step of a failure, mid-episode success, mid failure."""
    B = 4
    slot = torch.zeros(B, 12, 256)  # every Q = 0.5 ...
    slot[:, 5, 17] = LOG3  # ... except one bin of slot 6 (index 5): 0.75
    nxt = torch.full((B, 256), -LOG3)  # next-state Q = 0.25 ...
    nxt[:, 3] = LOG3  # ... max 0.75
    rewards = torch.tensor([1.0, 0.0, 0.0, 0.0])
    dones = torch.tensor([True, True, False, False])
    success = torch.tensor([1.0, 0.0, 1.0, 0.0])
    steps_to_end = torch.tensor([0, 0, 2, 7])
    return slot, nxt, rewards, dones, success, steps_to_end


def test_bellman_targets_by_hand():
    y = bellman_targets(*_toy(), gamma=GAMMA)
    assert y.shape == (4, 12)
    # slots 1..11 read the max of the NEXT slot: 0.5 everywhere except slot 5 (reads slot 6's 0.75)
    inner = torch.full((11,), 0.5)
    inner[4] = 0.75
    mc_mid = GAMMA**2  # 0.81 for the success two steps from its end
    expected = torch.stack(
        [
            torch.ones(12),  # success at its final step: r = 1 and the MC bound 1 lift everything to 1
            torch.cat([inner, torch.tensor([0.0])]),  # terminal failure: r = 0, no bootstrap
            torch.cat([torch.maximum(inner, torch.tensor(mc_mid)), torch.tensor([max(GAMMA * 0.75, mc_mid)])]),
            torch.cat([inner, torch.tensor([GAMMA * 0.75])]),  # failure: bootstraps, MC bound 0
        ]
    )
    torch.testing.assert_close(y, expected)


def test_bellman_targets_without_mc_bound():
    slot, nxt, r, d, s, k = _toy()
    y = bellman_targets(slot, nxt, r, d, s, k, gamma=GAMMA, mc_lower_bound=False)
    assert y[0, 0] == pytest.approx(0.5) and y[0, 11] == pytest.approx(1.0)
    assert y[2, 11] == pytest.approx(GAMMA * 0.75)


def test_bellman_targets_equal_a_brute_force_loop():
    g = torch.Generator().manual_seed(0)
    B = 16
    slot = torch.randn(B, 12, 256, generator=g) * 2
    nxt = torch.randn(B, 12, 256, generator=g) * 2  # full next-state logits: only slot 1 may be used
    rewards = (torch.rand(B, generator=g) < 0.3).float()
    dones = torch.rand(B, generator=g) < 0.5
    success = (torch.rand(B, generator=g) < 0.5).float()
    steps = torch.randint(0, 20, (B,), generator=g)
    y = bellman_targets(slot, nxt, rewards, dones, success, steps, gamma=0.98)

    def sig(v):
        return 1.0 / (1.0 + math.exp(-v))

    for b in range(B):
        mc = 0.98 ** int(steps[b]) * float(success[b])
        for i in range(12):
            if i < 11:
                target = max(sig(float(v)) for v in slot[b, i + 1])
            else:
                boot = 0.0 if dones[b] else 0.98 * max(sig(float(v)) for v in nxt[b, 0])
                target = float(rewards[b]) + boot
            assert float(y[b, i]) == pytest.approx(max(target, mc), abs=1e-6), (b, i)


def test_targets_carry_no_gradient():
    slot, nxt, r, d, s, k = _toy()
    slot.requires_grad_(True)
    assert not bellman_targets(slot, nxt, r, d, s, k, gamma=GAMMA).requires_grad


def test_conservative_term_covers_exactly_the_bins_not_taken():
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(3, 12, 256, generator=g, requires_grad=True)
    bins = torch.randint(0, 256, (3, 12), generator=g)
    conservative_loss(logits, bins).backward()
    taken = torch.zeros(3, 12, 256, dtype=torch.bool).scatter(-1, bins.unsqueeze(-1), True)
    assert (logits.grad[taken] == 0).all()
    assert (logits.grad[~taken] > 0).all()  # d/dl 0.5 sigmoid(l)^2 > 0 for every non-taken bin


def test_conservative_value_by_hand():
    logits = torch.zeros(2, 12, 256)
    bins = torch.full((2, 12), 7)
    logits[:, :, 7] = 30.0  # the taken bin's Q ~ 1 must not count
    assert float(conservative_loss(logits, bins)) == pytest.approx(0.5 * 0.25)
    logits[:, :, 8] = 30.0  # one non-taken bin at Q ~ 1: mean over the 255 others
    assert float(conservative_loss(logits, bins)) == pytest.approx(0.5 * (254 * 0.25 + 1.0) / 255, rel=1e-6)


def test_td_loss_by_hand_and_weights():
    logits = torch.zeros(2, 12, 256)
    bins = torch.zeros(2, 12, dtype=torch.long)
    targets = torch.stack([torch.ones(12), torch.full((12,), 0.5)])
    assert float(td_loss(logits, bins, targets)) == pytest.approx(0.5 * (0.25 + 0.0) / 2)
    # weight 0 drops the second sample
    assert float(td_loss(logits, bins, targets, weights=torch.tensor([1.0, 0.0]))) == pytest.approx(0.125)


def test_bce_td_and_conservative_by_hand():
    # Q = sigmoid(0) = 0.5 everywhere: BCE(0.5, y) = log 2 for any y; softplus(0) = log 2 per non-taken bin
    logits = torch.zeros(2, 12, 256)
    bins = torch.zeros(2, 12, dtype=torch.long)
    targets = torch.stack([torch.ones(12), torch.full((12,), 0.5)])
    assert float(td_loss(logits, bins, targets, regression="bce")) == pytest.approx(math.log(2.0))
    assert float(conservative_loss(logits, bins, regression="bce")) == pytest.approx(math.log(2.0))
    # Q(taken) = 0.75 against y = 1: -log 0.75; against y = 0.5: -(0.5 log 0.75 + 0.5 log 0.25)
    logits[:, :, 0] = LOG3
    expected = (-math.log(0.75) - 0.5 * (math.log(0.75) + math.log(0.25))) / 2
    assert float(td_loss(logits, bins, targets, regression="bce")) == pytest.approx(expected, rel=1e-6)
    # one non-taken bin at Q = 0.75 costs -log(0.25) instead of log 2, averaged over the 255
    logits[:, :, 9] = LOG3
    expected = (254 * math.log(2.0) - math.log(0.25)) / 255
    assert float(conservative_loss(logits, bins, regression="bce")) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("regression", ["mse", "bce"])
def test_both_regressions_are_minimised_by_the_mean_target(regression):
    """The same state-action seen with targets 1 and 0.2: both losses' minimiser is Q = 0.6 (a brute-force scan)."""
    bins = torch.zeros(2, 12, dtype=torch.long)
    targets = torch.stack([torch.ones(12), torch.full((12,), 0.2)])
    qs = torch.linspace(0.01, 0.99, 99)
    values = []
    for q in qs:
        logits = torch.full((2, 12, 256), float(torch.logit(q)))
        values.append(float(td_loss(logits, bins, targets, regression=regression)))
    assert float(qs[int(torch.tensor(values).argmin())]) == pytest.approx(0.6, abs=0.006)


def test_bce_gradient_does_not_vanish_on_a_suppressed_bin():
    """A bin pushed to Q ~ 0.0025 that should be 1: MSE's logit gradient is ~Q, BCE's is Q - y ~ -1."""
    logits = torch.full((1, 12, 256), -6.0, requires_grad=True)
    bins = torch.zeros(1, 12, dtype=torch.long)
    targets = torch.ones(1, 12)
    td_loss(logits, bins, targets, regression="mse").backward()
    mse_grad = float(logits.grad[0, 0, 0]) * 12  # mean over 12 slots
    logits.grad = None
    td_loss(logits, bins, targets, regression="bce").backward()
    bce_grad = float(logits.grad[0, 0, 0]) * 12
    q = 1 / (1 + math.exp(6.0))
    assert mse_grad == pytest.approx((q - 1) * q * (1 - q), rel=1e-4)
    assert bce_grad == pytest.approx(q - 1, rel=1e-4)
    assert abs(bce_grad) > 100 * abs(mse_grad)


def test_loss_config_names_a_bad_regression():
    with pytest.raises(ValueError, match="regression"):
        LossConfig(regression="huber")


def test_imitation_loss_is_cross_entropy_over_the_bins():
    assert float(imitation_loss(torch.zeros(1, 12, 256), torch.zeros(1, 12, dtype=torch.long))) == pytest.approx(
        math.log(256)
    )
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(2, 12, 256, generator=g)
    bins = torch.randint(0, 256, (2, 12), generator=g)
    manual = -sum(torch.log_softmax(logits[b, i], -1)[bins[b, i]] for b in range(2) for i in range(12)) / 24
    assert float(imitation_loss(logits, bins)) == pytest.approx(float(manual), rel=1e-6)


def _top2_routing():
    """3 real tokens + 1 padding token, 4 experts, top-2 (no ties), as the router produces them."""
    probs = torch.tensor(
        [
            [0.5, 0.3, 0.1, 0.1],  # top-2: experts 0, 1
            [0.1, 0.6, 0.2, 0.1],  # 1, 2
            [0.2, 0.1, 0.3, 0.4],  # 3, 2
            [0.0, 0.0, 0.1, 0.9],  # padding: 3, 2
        ]
    )[None]  # (1, 4, 4)
    experts = torch.tensor([[0, 1], [1, 2], [3, 2], [3, 2]])[None]  # (1, 4, 2)
    mask = torch.tensor([[True, True, True, False]])
    return probs, experts, mask


def test_load_balance_counts_every_top_k_choice_by_hand():
    probs, experts, mask = _top2_routing()
    # real tokens: assignments per expert (1, 2, 2, 1) of 3 tokens x 2 choices -> f = (1, 2, 2, 1) / 6
    # P = column means over the 3 real tokens = (0.8, 1.0, 0.6, 0.6) / 3
    # L = N sum f P = 4 * (1*0.8 + 2*1.0 + 2*0.6 + 1*0.6) / 18 = 4 * 4.6 / 18 = 1.0222...
    assert float(load_balance_loss([probs], [experts], mask)) == pytest.approx(4 * 4.6 / 18, rel=1e-6)
    # (a top-1 count would give f = (1, 1, 0, 1) / 3 -> 4 * (0.8 + 1.0 + 0.6) / 9 = 1.0667)
    # without the mask the padding token counts: f = (1, 2, 3, 2) / 8, P = (0.8, 1.0, 0.7, 1.5) / 4
    # L = 4 * (0.8 + 2.0 + 2.1 + 3.0) / 32 = 0.9875
    assert float(load_balance_loss([probs], [experts])) == pytest.approx(4 * 7.9 / 32, rel=1e-6)
    # layers are averaged: uniform P gives exactly 1 whatever the routing
    uniform = torch.full((1, 4, 4), 0.25)
    two_layers = load_balance_loss([probs, uniform], [experts, experts], mask)
    assert float(two_layers) == pytest.approx((4 * 4.6 / 18 + 1.0) / 2, rel=1e-6)
    assert float(load_balance_loss([], [])) == 0.0


def test_load_balance_gradient_flows_through_p_only():
    probs, experts, mask = _top2_routing()
    probs.requires_grad_(True)
    load_balance_loss([probs], [experts], mask).backward()
    # dL/dprobs[t, k] = N f_k / (real tokens) = 4 f_k / 3 on real tokens, 0 on padding
    f = torch.tensor([1.0, 2.0, 2.0, 1.0]) / 6
    expected = torch.cat([(4 * f / 3).expand(3, 4), torch.zeros(1, 4)])
    torch.testing.assert_close(probs.grad[0], expected)


def test_load_balance_is_mixtrals_divided_by_k():
    """transformers' Mixtral loss (independent code) counts the same top-K choices over tokens only (sum f = K)."""
    from transformers.models.mixtral.modeling_mixtral import load_balancing_loss_func

    g = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 7, 8, generator=g) * 2
    probs = torch.softmax(logits, -1)
    mask = torch.ones(2, 7, dtype=torch.bool)
    mask[0, :3] = False  # left padding
    for k in (1, 2, 3):
        experts = probs.topk(k, dim=-1).indices
        ours = load_balance_loss([probs], [experts], mask)
        theirs = load_balancing_loss_func((logits.reshape(14, 8),), num_experts=8, top_k=k, attention_mask=mask)
        assert float(ours) == pytest.approx(float(theirs) / k, rel=1e-5), k


def test_load_balance_needs_the_chosen_experts():
    probs, experts, mask = _top2_routing()
    with pytest.raises(ValueError, match="router_experts"):
        load_balance_loss([probs], [], mask)
    with pytest.raises(ValueError, match="differ"):
        load_balance_loss([probs], [experts[:, :2]], mask)


def test_more_loss_combines_the_terms():
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 12, 256, generator=g)
    bins = torch.randint(0, 256, (2, 12), generator=g)
    targets = torch.rand(2, 12, generator=g)
    probs = [torch.softmax(torch.randn(2, 5, 4, generator=g), -1)]
    experts = [probs[0].topk(2, dim=-1).indices]
    cfg = LossConfig(alpha=0.5, beta=0.01)
    out = more_loss(cfg, logits, bins, probs, targets=targets, router_experts=experts)
    lb = load_balance_loss(probs, experts)
    expected = td_loss(logits, bins, targets) + 0.5 * conservative_loss(logits, bins) + 0.01 * lb
    with pytest.raises(ValueError, match="router_experts"):
        more_loss(cfg, logits, bins, probs, targets=targets)  # routed layers without their choices
    assert float(out.loss) == pytest.approx(float(expected))
    assert {"td", "conservative", "load_balance", "bin_accuracy", "loss"} <= set(out.metrics)
    il = more_loss(LossConfig(objective="il", beta=0.0), logits, bins)
    assert float(il.loss) == pytest.approx(float(imitation_loss(logits, bins)))
    with pytest.raises(ValueError, match="Bellman targets"):
        more_loss(cfg, logits, bins)
    with pytest.raises(ValueError, match="objective"):
        LossConfig(objective="bc")
