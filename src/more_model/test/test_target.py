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
    policy = make_tiny_policy(seed=5)
    for m in policy.modules():  # the config is frozen and says 0: dropout is set on the modules
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


def test_target_forward_equals_a_separate_copy_without_touching_the_online_weights(policy, batch):
    """Brute-force reference: a deep copy of the policy with the target tensors loaded. The plain-parameter path
    swaps tensors in for the call (torch.func.functional_call): no online parameter is written at all (their
    version counters, bumped by any in-place write such as a copy-swap, stay put)."""
    import copy

    policy.train()
    target = TargetNetwork.from_policy(policy)
    with torch.no_grad():
        for t in target.state.values():
            t.add_(0.05 * torch.randn_like(t))
    reference = copy.deepcopy(policy).eval()
    reference.load_state_dict(target.state, strict=False)
    versions = {n: p._version for n, p in policy.named_parameters()}
    torch.testing.assert_close(target.slot_logits(policy, batch), reference.slot_logits(batch), rtol=0, atol=0)
    assert {n: p._version for n, p in policy.named_parameters()} == versions
    assert policy.training  # mode restored
    # and the online forward is the online one again (a swap that stuck would give the target's logits)
    policy.eval()
    assert (policy.slot_logits(batch) - reference.slot_logits(batch)).abs().max() > 1e-3


def _raising_forward(policy, monkeypatch):
    def boom(b):
        raise RuntimeError("forward failed")

    monkeypatch.setattr(policy, "forward", boom)


def test_a_failing_target_forward_restores_the_training_mode(policy, batch, monkeypatch):
    policy.train()
    target = TargetNetwork.from_policy(policy)
    _raising_forward(policy, monkeypatch)
    with pytest.raises(RuntimeError, match="forward failed"):
        target.slot_logits(policy, batch)
    assert policy.training


def test_copy_swap_path_restores_the_online_weights_also_on_an_exception(policy, batch, monkeypatch):
    """The FSDP path copies the target values into the parameters and back. Forced here on plain parameters
    (resharding is then a no-op): it gives the target's logits, and the online values come back bit-identical,
    also when the forward raises. (2-rank FSDP runs it for real in training/tests/test_resume_and_ddp.py.)"""
    import more_model.target as target_module

    target = TargetNetwork.from_policy(policy)
    with torch.no_grad():
        for t in target.state.values():
            t.add_(0.05 * torch.randn_like(t))
    want = target.slot_logits(policy, batch)  # the functional_call path
    online = {n: p.detach().clone() for n, p in policy.named_parameters()}
    versions = {n: p._version for n, p in policy.named_parameters()}
    monkeypatch.setattr(target_module, "_is_sharded", lambda _policy: True)
    torch.testing.assert_close(target.slot_logits(policy, batch), want, rtol=0, atol=0)
    assert all(torch.equal(p, online[n]) for n, p in policy.named_parameters())
    assert all(p._version > versions[n] for n, p in policy.named_parameters() if n in target.state)  # it copied
    _raising_forward(policy, monkeypatch)
    with pytest.raises(RuntimeError, match="forward failed"):
        target.slot_logits(policy, batch)
    assert all(torch.equal(p, online[n]) for n, p in policy.named_parameters())
