"""MoREPolicy: slot logits are read one position before each action token (brute force, one model run per
prefix), KV-cached decoding equals a no-cache reference and transformers' generate, never emits a non-bin
token, never computes full-vocabulary logits, and batching (left padding) changes nothing."""

import numpy as np
import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList

from more_model.policy import DecodeResult
from more_model.testing import make_tiny_policy


def _full_vocab_last_logits(policy, batch_row, prefix_bins):
    """Reference: run the whole model (HF forward, full vocabulary) on prompt + tokens of prefix_bins."""
    ids = batch_row.input_ids
    if len(prefix_bins):
        ids = torch.cat([ids, policy.bin_token_ids[torch.as_tensor(prefix_bins)][None]], dim=1)
    out = policy.backbone(input_ids=ids, pixel_values=batch_row.pixel_values)  # no cache, no padding
    return out.logits[0, -1]  # (V,) logits of the next token


def _row(policy, images, instructions, i):
    return policy.encoder.encode(images[i : i + 1], instructions[i : i + 1])


@torch.no_grad()
def test_slot_logits_equal_a_per_prefix_brute_force(tiny_policy, images, instructions):
    bins = np.random.default_rng(1).integers(0, 256, (3, 12))
    batch = tiny_policy.encode(images, instructions, bins=bins)
    slot = tiny_policy.slot_logits(batch)  # (3, 12, 256)
    assert slot.shape == (3, 12, 256) and slot.dtype == torch.float32
    for i in range(3):
        row = _row(tiny_policy, images, instructions, i)
        for s in range(12):
            # slot s+1 of the paper: the model has seen the prompt and the first s action tokens
            ref = _full_vocab_last_logits(tiny_policy, row, bins[i, :s])[tiny_policy.bin_token_ids]
            torch.testing.assert_close(slot[i, s], ref, rtol=1e-4, atol=1e-4, msg=f"sample {i} slot {s}")
        # reading one position late (the leaked bug) gives something else
        late = _full_vocab_last_logits(tiny_policy, row, bins[i, :1])[tiny_policy.bin_token_ids]
        assert (slot[i, 0] - late).abs().max() > 1e-3


@torch.no_grad()
def _no_cache_greedy(policy, row):
    bins, chosen = [], []
    for _ in range(12):
        logits = _full_vocab_last_logits(policy, row, bins)[policy.bin_token_ids]
        b = int(torch.argmax(logits))
        bins.append(b)
        chosen.append(float(logits[b]))
    return np.array(bins), np.array(chosen)


def test_decode_matches_a_no_cache_reference_and_is_batched(tiny_policy, images, instructions):
    out = tiny_policy.decode(images, instructions)
    assert isinstance(out, DecodeResult)
    assert out.actions.shape == out.bins.shape == out.q_values.shape == (3, 12)
    assert out.actions.dtype == np.float64 and out.bins.dtype == np.int64 and out.q_values.dtype == np.float32
    for i in range(3):
        ref_bins, ref_logits = _no_cache_greedy(tiny_policy, _row(tiny_policy, images, instructions, i))
        np.testing.assert_array_equal(out.bins[i], ref_bins)
        np.testing.assert_allclose(out.q_values[i], 1 / (1 + np.exp(-ref_logits)), rtol=1e-5, atol=1e-6)
        single = tiny_policy.decode(images[i : i + 1], instructions[i : i + 1])
        np.testing.assert_array_equal(single.bins[0], out.bins[i])  # left padding changes nothing
        np.testing.assert_allclose(single.q_values[0], out.q_values[i], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.actions, tiny_policy.action_spec.from_bins(out.bins))


@torch.no_grad()
def test_decode_matches_transformers_generate(tiny_policy, images, instructions):
    bin_ids = tiny_policy.bin_token_ids

    class BinsOnly(LogitsProcessor):
        def __call__(self, input_ids, scores):
            masked = torch.full_like(scores, float("-inf"))
            masked[:, bin_ids] = scores[:, bin_ids]
            return masked

    for i in (0, 2):
        row = _row(tiny_policy, images, instructions, i)
        generated = tiny_policy.backbone.generate(
            input_ids=row.input_ids,
            attention_mask=row.attention_mask,
            pixel_values=row.pixel_values,
            max_new_tokens=12,
            min_new_tokens=12,
            do_sample=False,
            pad_token_id=0,
            logits_processor=LogitsProcessorList([BinsOnly()]),
        )[0, row.input_ids.shape[1] :]
        bins, _ = tiny_policy.decode_batch(row)
        assert bin_ids[bins[0]].tolist() == generated.tolist()


@torch.no_grad()
def test_decoding_never_emits_a_non_bin_token():
    policy = make_tiny_policy(seed=3)
    head = policy.backbone.lm_head.weight
    not_bins = torch.ones(head.shape[0], dtype=torch.bool)
    not_bins[policy.bin_token_ids] = False
    head[not_bins] *= 50.0  # non-bin tokens now dominate the full-vocabulary argmax
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(4)]
    batch = policy.encode(images, ["go to the door"] * 4)
    full = policy.backbone(**{k: getattr(batch, k) for k in ("input_ids", "attention_mask", "pixel_values")})
    assert not_bins[full.logits[:, -1].argmax(-1)].all()  # unrestricted decoding would leave the bins
    out = policy.decode(images, ["go to the door"] * 4)
    assert ((out.bins >= 0) & (out.bins < 256)).all()
    tokens = policy.action_tokenizer.bins_to_token_ids(out.bins)
    np.testing.assert_array_equal(policy.action_tokenizer.token_ids_to_bins(tokens), out.bins)


def test_full_vocabulary_logits_are_never_computed(tiny_policy, images, instructions):
    calls = []
    hook = tiny_policy.backbone.lm_head.register_forward_hook(lambda *a: calls.append(1))
    try:
        with torch.no_grad():
            tiny_policy.decode(images, instructions)
            tiny_policy.slot_logits(tiny_policy.encode(images, instructions, bins=np.zeros((3, 12), np.int64)))
    finally:
        hook.remove()
    assert calls == []
    assert tiny_policy.bin_head().shape == (256, tiny_policy.backbone.config.text_config.hidden_size)


@torch.no_grad()
def test_q_values_are_the_sigmoid_of_the_chosen_teacher_forced_logits(tiny_policy, images, instructions):
    out = tiny_policy.decode(images, instructions)
    logits = tiny_policy.slot_logits(tiny_policy.encode(images, instructions, bins=out.bins))
    assert (logits.argmax(-1).numpy() == out.bins).all()  # greedy = argmax per slot given earlier slots
    np.testing.assert_allclose(torch.sigmoid(logits.max(-1).values).numpy(), out.q_values, rtol=1e-5, atol=1e-6)
    first = tiny_policy.first_slot_logits(tiny_policy.encode(images, instructions))
    torch.testing.assert_close(first, logits[:, 0], rtol=1e-5, atol=1e-5)


def test_interface_properties_and_errors(tiny_policy, images, instructions):
    assert tiny_policy.image_size == (32, 48)
    assert tiny_policy.action_spec.num_bins == 256
    prompt_only = tiny_policy.encode(images[:1], instructions[:1])
    with pytest.raises(ValueError, match="with actions"):
        tiny_policy.slot_logits(prompt_only)
    with_actions = tiny_policy.encode(images[:1], instructions[:1], bins=np.zeros((1, 12), np.int64))
    with pytest.raises(ValueError, match="prompt-only"):
        tiny_policy.first_slot_logits(with_actions)
    with pytest.raises(ValueError, match="prompt-only"):
        tiny_policy.decode_batch(with_actions)
    with pytest.raises(ValueError, match="needs backbone_path"):
        make_tiny_policy(config=tiny_policy.config.replace(backbone="fuyu", image_height=240, image_width=240))
    with pytest.raises(ValueError, match="'adapters' or 'full'"):
        tiny_policy.set_trainable("lora")


def test_dense_lora_policy_decodes(images, instructions):
    from more_model.testing import tiny_config

    policy = make_tiny_policy(config=tiny_config(use_moe=False, num_experts=1, top_k=1))
    out = policy.decode(images, instructions)
    assert out.bins.shape == (3, 12)
    assert policy(policy.encode(images, instructions)).router_probs == ()


@torch.no_grad()
def test_slot_logits_and_router_are_fp32_under_bf16_autocast(images, instructions):
    """The trainer runs the forward under bf16 autocast; the Q head and the routers must still compute in fp32.
    Reference: the same hidden states (what the bf16 decoder produced), multiplied in fp32 outside autocast."""
    policy = make_tiny_policy(seed=11)
    batch = policy.encode(images, instructions, bins=np.random.default_rng(2).integers(0, 256, (3, 12)))
    inputs = {}  # each MixLoRA layer's input (produced by the bf16 layers before it)
    hooks = [
        ffn.register_forward_pre_hook(lambda m, args: inputs.__setitem__(m, args[0].detach())) for ffn in policy.ffns
    ]
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = policy(batch)
    finally:
        for hook in hooks:
            hook.remove()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        hidden = policy._decoder(batch).last_hidden_state[:, -12:]
    assert out.slot_logits.dtype == torch.float32
    want = torch.nn.functional.linear(hidden.float(), policy.bin_head().float())
    torch.testing.assert_close(out.slot_logits, want, rtol=0, atol=0)
    assert len(out.router_probs) == len(out.router_experts) == len(inputs) == 2
    for ffn, probs, experts in zip(policy.ffns, out.router_probs, out.router_experts, strict=True):
        x = inputs[ffn].reshape(-1, inputs[ffn].shape[-1])
        want_p = torch.softmax(torch.nn.functional.linear(x.float(), ffn.router.weight.float()), dim=-1)
        assert probs.dtype == torch.float32
        torch.testing.assert_close(probs.reshape(-1, want_p.shape[-1]), want_p, rtol=0, atol=0)
        assert torch.equal(experts.reshape(-1, 2), want_p.topk(2, dim=-1).indices)


@torch.no_grad()
def test_merged_attention_lora_gives_the_same_slot_logits(images, instructions, tmp_path):
    """fp32 tiny model: merged W + s B A vs W x + s B (A x) differ only by rounding order; tolerance 1e-5
    (logits are O(1)). The merge must matter (without the LoRA the logits move by > 1e-2)."""
    import copy

    from more_model.checkpoint import CheckpointError, save_checkpoint

    policy = make_tiny_policy(seed=12)
    batch = policy.encode(images, instructions, bins=np.random.default_rng(3).integers(0, 256, (3, 12)))
    before = policy.slot_logits(batch)
    unmerged_decode = policy.decode(images, instructions)
    without = copy.deepcopy(policy)
    for name, p in without.named_adapter_parameters():
        if "self_attn" in name and name.endswith("lora_B"):
            p.zero_()
    assert (without.slot_logits(batch) - before).abs().max() > 1e-2  # the attention LoRA matters here
    n_adapters = len(dict(policy.named_adapter_parameters()))
    assert policy.merge_attention_lora() is policy and policy.attention_lora_merged
    assert len(dict(policy.named_adapter_parameters())) == n_adapters - 2 * 2 * 2  # 2 layers x 2 modules x A, B
    torch.testing.assert_close(policy.slot_logits(batch), before, rtol=1e-5, atol=1e-5)
    merged_decode = policy.decode(images, instructions)
    np.testing.assert_array_equal(merged_decode.bins, unmerged_decode.bins)
    np.testing.assert_allclose(merged_decode.q_values, unmerged_decode.q_values, rtol=1e-5, atol=1e-6)
    assert not any(p.requires_grad for n, p in policy.named_parameters() if "self_attn" in n)
    with pytest.raises(CheckpointError, match="merged"):
        save_checkpoint(tmp_path / "merged", policy)
    assert not (tmp_path / "merged").exists()  # nothing half written
