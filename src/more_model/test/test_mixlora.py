"""MixLoRA: exact no-op at init, router top-K + renormalisation, dispatch == dense == a per-token brute force,
only adapters train, the dense-LoRA ("w/o MoE") variant, attention LoRA, layer selection."""

import copy

import pytest
import torch
from torch import nn

from more_model.mixlora import (
    LoRALinear,
    MixLoRAFFN,
    inject_adapters,
    is_adapter_name,
    merge_attention_lora,
    mixlora_modules,
    set_dense_experts,
)
from more_model.testing import make_tiny_policy, randomize_adapters, tiny_config
from more_model.tiny_backbone import build_tiny_backbone, build_tiny_tokenizer

H, INNER = 16, 48


class _MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.dense_h_to_4h = nn.Linear(H, INNER)
        self.dense_4h_to_h = nn.Linear(INNER, H)
        self.act = lambda x: torch.relu(x) ** 2


def _ffn(num_experts=4, top_k=2, router=True, seed=0):
    torch.manual_seed(seed)
    ffn = MixLoRAFFN(_MLP(), num_experts=num_experts, top_k=top_k, rank=3, scale=1.5, dropout=0.0, router=router)
    with torch.no_grad():
        for p in (ffn.lora_up_B, ffn.lora_down_B):
            p.normal_(0, 0.3)
        if ffn.router is not None:
            ffn.router.weight.normal_(0, 1.0)  # decisive routing
    return ffn


def _expert_reference(ffn, k, x):
    """E_k(x) = (W_down + s B A) f((W_up + s B A) x) with the matrices merged by hand."""
    s = ffn.scale
    W_up = ffn.dense_h_to_4h.weight + s * ffn.lora_up_B[k] @ ffn.lora_up_A[k]
    W_down = ffn.dense_4h_to_h.weight + s * ffn.lora_down_B[k] @ ffn.lora_down_A[k]
    h = x @ W_up.T + ffn.dense_h_to_4h.bias
    return (torch.relu(h) ** 2) @ W_down.T + ffn.dense_4h_to_h.bias


@torch.no_grad()
def _brute_force(ffn, x):
    """Per token: full softmax, sort, keep the top K, renormalise, sum the chosen experts."""
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        p = torch.softmax(x[t] @ ffn.router.weight.T, dim=-1)
        order = sorted(range(ffn.num_experts), key=lambda e: -float(p[e]))[: ffn.top_k]
        total = sum(float(p[e]) for e in order)
        for e in order:
            out[t] += float(p[e]) / total * _expert_reference(ffn, e, x[t : t + 1])[0]
    return out


def test_router_keeps_top_k_and_renormalises():
    ffn = _ffn(num_experts=5, top_k=2)
    x = torch.randn(40, H)
    with torch.no_grad():
        probs, weights, experts = ffn.route(x)
    full = torch.softmax(x @ ffn.router.weight.detach().T, dim=-1)
    torch.testing.assert_close(probs, full)
    for t in range(40):
        expected = sorted(range(5), key=lambda e: -float(full[t, e]))[:2]
        assert experts[t].tolist() == expected
        kept_logits = (x[t] @ ffn.router.weight.detach().T)[expected]
        torch.testing.assert_close(weights[t], torch.softmax(kept_logits, dim=-1))  # softmax(TopK(W_g x))
    torch.testing.assert_close(weights.sum(-1), torch.ones(40))
    assert probs.dtype == weights.dtype == torch.float32


def test_dispatch_equals_dense_equals_brute_force():
    ffn = _ffn(num_experts=4, top_k=2)
    x = torch.randn(2, 9, H)
    with torch.no_grad():
        dispatch = ffn(x)
        ffn.dense = True
        dense = ffn(x)
    ref = _brute_force(ffn, x.reshape(-1, H)).reshape(2, 9, H)
    torch.testing.assert_close(dispatch, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(dense, ref, rtol=1e-5, atol=1e-5)
    assert ffn.router_probs.shape == (2, 9, 4)
    # the recorded choices (for the load-balance loss) are the brute force's top-2 of each token's probabilities
    for t, p in enumerate(ffn.router_probs.reshape(-1, 4)):
        expected = sorted(range(4), key=lambda e: -float(p[e]))[:2]
        assert ffn.router_experts.reshape(-1, 2)[t].tolist() == expected


def test_single_token_path_equals_brute_force():
    ffn = _ffn(num_experts=4, top_k=2, seed=3)
    x = torch.randn(1, 1, H)  # batch-1 decoding steps take the direct path
    with torch.no_grad():
        torch.testing.assert_close(ffn(x)[0], _brute_force(ffn, x[0]), rtol=1e-5, atol=1e-5)


def test_gradients_of_dispatch_and_dense_agree():
    grads = []
    for dense in (False, True):
        ffn = _ffn(seed=1)
        ffn.dense = dense
        x = torch.randn(12, 1, H, generator=torch.Generator().manual_seed(2))
        ffn(x).pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in ffn.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], rtol=1e-4, atol=1e-5, msg=name)


def test_top_k_equal_to_n_uses_every_expert():
    ffn = _ffn(num_experts=3, top_k=3)
    x = torch.randn(5, H)
    with torch.no_grad():
        torch.testing.assert_close(ffn(x[None])[0], _brute_force(ffn, x), rtol=1e-5, atol=1e-5)


def test_dense_lora_variant_is_one_plain_lora():
    ffn = _ffn(num_experts=1, top_k=1, router=False)
    assert ffn.router is None
    x = torch.randn(1, 7, H)
    with torch.no_grad():
        torch.testing.assert_close(ffn(x)[0], _expert_reference(ffn, 0, x[0]), rtol=1e-5, atol=1e-5)
    assert ffn.router_probs is None
    with pytest.raises(ValueError, match="one expert"):
        MixLoRAFFN(_MLP(), num_experts=2, top_k=1, rank=2, scale=1.0, dropout=0.0, router=False)


def test_lora_linear_shares_the_base_weights_and_adds_the_delta():
    base = nn.Linear(H, 10)
    lora = LoRALinear(base, rank=2, scale=0.5, dropout=0.0)
    assert lora.weight is base.weight and lora.bias is base.bias
    x = torch.randn(4, H)
    with torch.no_grad():
        torch.testing.assert_close(lora(x), base(x))  # B = 0
        lora.lora_B.normal_()
        expected = x @ (base.weight + 0.5 * lora.lora_B @ lora.lora_A).T + base.bias
        torch.testing.assert_close(lora(x), expected, rtol=1e-5, atol=1e-5)


def _tiny_backbone():
    cfg = tiny_config()
    tok = build_tiny_tokenizer()
    return cfg, tok, build_tiny_backbone(cfg.tiny, tok, seed=0)


def test_fresh_adapters_reproduce_the_base_model(images, instructions):
    cfg, _tok, backbone = _tiny_backbone()
    base = copy.deepcopy(backbone)
    policy = make_tiny_policy(config=cfg)  # just for its encoder
    batch = policy.encoder.encode(images, instructions)
    inject_adapters(backbone, cfg)
    assert len(mixlora_modules(backbone)) == cfg.tiny.num_layers
    kwargs = dict(
        input_ids=batch.input_ids,
        pixel_values=batch.pixel_values,
        attention_mask=batch.attention_mask,
        position_ids=batch.position_ids,
    )
    with torch.no_grad():
        want = base(**kwargs).logits
        got = backbone(**kwargs).logits
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    # and the adapters do matter once B is non-zero
    randomize_adapters(backbone, seed=0, std=0.2)
    with torch.no_grad():
        assert (backbone(**kwargs).logits - want).abs().max() > 1e-3


def test_only_adapters_and_routers_get_gradients(images, instructions):
    policy = make_tiny_policy(seed=1).train()
    batch = policy.encode(images, instructions, bins=torch.randint(0, 256, (3, 12)).numpy())
    out = policy(batch)
    loss = out.slot_logits.pow(2).mean() + sum(p.mean() for p in out.router_probs)
    loss.backward()
    with_grad = {n for n, p in policy.named_parameters() if p.grad is not None}
    adapters = {n for n, _ in policy.named_adapter_parameters()}
    assert with_grad == adapters
    assert any(".router." in n for n in with_grad) and any("lora_up_A" in n for n in with_grad)
    assert any("query_key_value.lora_A" in n for n in with_grad) and any("dense.lora_B" in n for n in with_grad)
    assert all(not p.requires_grad for n, p in policy.named_parameters() if n not in adapters)
    assert all(p.grad.abs().sum() > 0 for n, p in policy.named_parameters() if ".router." in n or n.endswith("_B"))
    policy.set_trainable("full")
    assert all(p.requires_grad for p in policy.parameters())


def test_layer_selection_and_attention_switch():
    cfg, _tok, backbone = _tiny_backbone()
    inject_adapters(backbone, cfg.replace(layers=(1,), attn_rank=0))
    layers = backbone.model.language_model.layers
    assert not isinstance(layers[0].mlp, MixLoRAFFN) and isinstance(layers[1].mlp, MixLoRAFFN)
    assert not isinstance(layers[1].self_attn.query_key_value, LoRALinear)
    with pytest.raises(ValueError, match="already has adapters"):
        inject_adapters(backbone, cfg.replace(layers=(1,)))


def test_base_parameter_names_are_unchanged_by_injection():
    cfg, _tok, backbone = _tiny_backbone()
    before = set(backbone.state_dict())
    inject_adapters(backbone, cfg)
    after = {n for n in backbone.state_dict() if not is_adapter_name(n)}
    assert after == before  # so the base weights save and load under their HF names


def test_set_dense_experts_switches_every_layer(tiny_policy):
    policy = make_tiny_policy(seed=2)
    set_dense_experts(policy, True)
    assert all(m.dense for m in mixlora_modules(policy))
    set_dense_experts(policy, False)
    assert not any(m.dense for m in mixlora_modules(policy))


def test_bf16_activations_keep_an_fp32_router():
    ffn = _ffn().to(torch.bfloat16)
    ffn.router.float()
    x = torch.randn(1, 6, H, dtype=torch.bfloat16)
    y = ffn(x)
    assert y.dtype == torch.bfloat16 and ffn.router_probs.dtype == torch.float32


@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_router_is_fp32_under_bf16_autocast(x_dtype):
    """Under autocast F.linear runs in bf16 whatever its inputs; the router must not. Reference: the same
    inputs cast to fp32, multiplied outside autocast (same kernel: exact equality)."""
    ffn = _ffn(num_experts=5, top_k=2, seed=6)
    x = torch.randn(2, 7, H, generator=torch.Generator().manual_seed(7)).to(x_dtype)
    with torch.no_grad():
        want = torch.softmax(torch.nn.functional.linear(x.reshape(-1, H).float(), ffn.router.weight), dim=-1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            probs, weights, experts = ffn.route(x.reshape(-1, H))
            ffn(x)
    assert probs.dtype == weights.dtype == torch.float32
    torch.testing.assert_close(probs, want, rtol=0, atol=0)
    assert torch.equal(experts, want.topk(2, dim=-1).indices)
    assert ffn.router_probs.dtype == torch.float32
    torch.testing.assert_close(ffn.router_probs.reshape(-1, 5), want, rtol=0, atol=0)
    # what the router computed before: autocast's bf16 linear, visibly different probabilities
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = torch.softmax(ffn.router(x.reshape(-1, H).float()), dim=-1)
    assert (bf16.float() - want).abs().max() > 1e-4


def _attention_lora_modules(module):
    return [m for m in module.modules() if isinstance(m, LoRALinear)]


def test_merged_lora_linear_is_w_plus_s_b_a():
    base = nn.Linear(H, 10)
    lora = LoRALinear(base, rank=3, scale=0.5, dropout=0.0)
    with torch.no_grad():
        lora.lora_B.normal_(0, 0.3)
    w_before = base.weight.detach().clone()
    x = torch.randn(4, H)
    with torch.no_grad():
        want = lora(x)
        merged = lora.merged()
    assert type(merged) is nn.Linear and merged.bias is base.bias
    expected_w = w_before + 0.5 * lora.lora_B.detach() @ lora.lora_A.detach()  # by hand, fp32
    torch.testing.assert_close(merged.weight, expected_w, rtol=0, atol=1e-7)
    with torch.no_grad():
        torch.testing.assert_close(merged(x), want, rtol=1e-6, atol=1e-6)


def test_merge_attention_lora_replaces_every_attention_lora_and_nothing_else():
    cfg, _tok, backbone = _tiny_backbone()
    inject_adapters(backbone, cfg)
    randomize_adapters(backbone, seed=1)
    ffn_params = {n for n, _ in backbone.named_parameters() if "mlp." in n}
    assert merge_attention_lora(backbone) == 2 * cfg.tiny.num_layers  # query_key_value + dense per layer
    assert _attention_lora_modules(backbone) == []
    assert not any("self_attn" in n and "lora_" in n for n, _ in backbone.named_parameters())
    assert {n for n, _ in backbone.named_parameters() if "mlp." in n} == ffn_params  # experts stay LoRA
    assert merge_attention_lora(backbone) == 0  # nothing left to merge


def test_gradient_checkpointing_keeps_every_gradient(images, instructions):
    from more_model.losses import load_balance_loss

    grads = []
    for checkpointing in (False, True):
        policy = make_tiny_policy(seed=9).train()
        if checkpointing:
            policy.backbone.activation_checkpointing_enable()  # non-reentrant: router probs stay in the graph
        batch = policy.encode(images, instructions, bins=torch.arange(36).reshape(3, 12).numpy())
        out = policy(batch)
        lb = load_balance_loss(out.router_probs, out.router_experts, out.token_mask)
        (out.slot_logits.pow(2).mean() + lb).backward()
        grads.append({n: p.grad for n, p in policy.named_adapter_parameters()})
    for name, g in grads[0].items():
        torch.testing.assert_close(grads[1][name], g, rtol=1e-4, atol=1e-6, msg=name)
