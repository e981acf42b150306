"""Target network: a Polyak copy of the adapters only, the backbone shared, forwards without grad in eval mode."""

import numpy as np
import pytest
import torch

from more_model.target import TargetNetwork
from more_model.testing import make_tiny_policy


@pytest.fixture
def policy():
    return make_tiny_policy(seed=4)


@pytest.fixture
def batch(policy, images, instructions):
    return policy.encode(images, instructions, bins=np.random.default_rng(0).integers(0, 256, (3, 12)))


def test_copies_the_adapters_only(policy):
    target = TargetNetwork.from_policy(policy)
    assert set(target.state) == {n for n, _ in policy.named_adapter_parameters()}
    base = sum(p.numel() for n, p in policy.named_parameters()) - target.num_params()
    assert target.num_params() < base  # the backbone is not copied
    online = dict(policy.named_parameters())
    for name, t in target.state.items():
        assert torch.equal(t, online[name]) and t.data_ptr() != online[name].data_ptr()


@torch.no_grad()
def test_target_logits_follow_only_the_copied_adapters(policy, batch):
    target = TargetNetwork.from_policy(policy)
    before = policy.slot_logits(batch)
    torch.testing.assert_close(target.slot_logits(policy, batch), before, rtol=0, atol=0)
    for name, p in policy.named_adapter_parameters():
        if name.endswith("_B"):
            p.add_(0.1)
    after = policy.slot_logits(batch)
    assert (after - before).abs().max() > 1e-3
    torch.testing.assert_close(target.slot_logits(policy, batch), before, rtol=0, atol=0)  # unchanged
    target.update(policy, tau=1.0)
    torch.testing.assert_close(target.slot_logits(policy, batch), after, rtol=0, atol=0)


@torch.no_grad()
def test_the_backbone_is_shared_not_copied(policy, batch):
    target = TargetNetwork.from_policy(policy)
    before = target.slot_logits(policy, batch)
    policy.backbone.model.language_model.final_layernorm.weight.mul_(1.5)
    assert (target.slot_logits(policy, batch) - before).abs().max() > 1e-3


def test_polyak_update(policy):
    target = TargetNetwork.from_policy(policy)
    name = next(n for n, _ in policy.named_adapter_parameters() if n.endswith("lora_up_B"))
    old = target.state[name].clone()
    online = dict(policy.named_parameters())[name]
    with torch.no_grad():
        online.add_(1.0)
    target.update(policy, tau=0.1)
    torch.testing.assert_close(target.state[name], 0.9 * old + 0.1 * online.detach())
    with pytest.raises(ValueError, match="tau"):
        target.update(policy, tau=1.5)


def test_target_forward_is_eval_mode_without_grad(images, instructions):
    policy = make_tiny_policy(seed=5, config=None)
    policy.config.__class__  # noqa: B018 (config is frozen; dropout comes from the modules)
    for m in policy.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.5
    policy.train()
    batch = policy.encode(images, instructions, bins=np.zeros((3, 12), np.int64))
    target = TargetNetwork.from_policy(policy)
    a = target.slot_logits(policy, batch)
    b = target.slot_logits(policy, batch)
    assert not a.requires_grad
    torch.testing.assert_close(a, b, rtol=0, atol=0)  # no dropout noise
    assert policy.training  # restored
    first = target.first_slot_logits(policy, policy.encode(images, instructions))
    torch.testing.assert_close(first, a[:, 0], rtol=1e-5, atol=1e-5)


def test_full_mode_copies_the_backbone_too(policy):
    policy.set_trainable("full")
    target = TargetNetwork.from_policy(policy)
    assert target.num_params() == sum(p.numel() for p in policy.parameters())
    policy.set_trainable("adapters")
    with pytest.raises(ValueError, match="does not match"):
        target.update(policy, 0.5)


def test_target_forward_equals_a_separate_copy_and_restores_the_online_weights(policy, batch):
    """Brute-force reference: a deep copy of the policy with the target tensors loaded; the online weights come
    back bit-identical afterwards, also when the forward raises."""
    import copy

    policy.train()
    target = TargetNetwork.from_policy(policy)
    with torch.no_grad():
        for t in target.state.values():
            t.add_(0.05 * torch.randn_like(t))
    reference = copy.deepcopy(policy).eval()
    reference.load_state_dict(target.state, strict=False)
    online = {n: p.detach().clone() for n, p in policy.named_parameters()}
    torch.testing.assert_close(target.slot_logits(policy, batch), reference.slot_logits(batch), rtol=0, atol=0)
    assert all(torch.equal(p, online[n]) for n, p in policy.named_parameters())
    assert policy.training  # mode restored

    original_forward = policy.forward

    def boom(b):
        raise RuntimeError("forward failed")

    policy.forward = boom
    with pytest.raises(RuntimeError, match="forward failed"):
        target.slot_logits(policy, batch)
    policy.forward = original_forward
    assert all(torch.equal(p, online[n]) for n, p in policy.named_parameters())
