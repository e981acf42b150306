"""The window pass (window_decoder.py): it computes transformers' Persimmon layers (checked against the
teacher-forced HF forward for every adapter variant), each row depends bit for bit on the earlier tokens of
its own row only (the property that makes draft decoding exact), and the compiled pass equals the eager one."""

import numpy as np
import pytest
import torch

from more_model.testing import make_tiny_policy, tiny_config
from more_model.window_decoder import WINDOW

VARIANTS = {
    "mixlora+attention lora": {},
    "no moe (one LoRA, no router)": dict(use_moe=False, num_experts=1, top_k=1),
    "top-1 of 3 experts, no attention lora": dict(num_experts=3, top_k=1, attn_rank=0),
    "adapters on layer 1 only (layer 0 plain MLP)": dict(layers=(1,)),
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@torch.no_grad()
def test_window_pass_equals_the_teacher_forced_transformers_forward(variant, images, instructions):
    """Reference: MoREPolicy.slot_logits, i.e. transformers' FuyuForCausalLM over prompt + 11 action tokens
    (left-padded batch of 3). fp32 on CPU: equal up to kernel rounding (measured ~3e-7 on logits ~1)."""
    policy = make_tiny_policy(seed=4, config=tiny_config(**VARIANTS[variant]))
    bins = np.random.default_rng(7).integers(0, 256, (3, 12))
    decoder = policy.action_decoder()
    prompt, first = decoder.prefill(policy.encode(images, instructions))
    teacher_forced = policy.slot_logits(policy.encode(images, instructions, bins=bins))  # (3, 12, 256)
    window = decoder.window.window(prompt, torch.as_tensor(bins[:, :WINDOW]))
    assert window.shape == (3, WINDOW, 256) and window.dtype == torch.float32
    torch.testing.assert_close(first, teacher_forced[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(window, teacher_forced[:, 1:], rtol=1e-5, atol=1e-5)
    assert (teacher_forced[:, 1:] - teacher_forced[:, 1:].roll(1, dims=1)).abs().max() > 1e-2  # slots differ


@torch.no_grad()
def test_window_pass_with_merged_attention_lora_and_without_qk_layernorm(images, instructions):
    policy = make_tiny_policy(seed=5)
    for layer in policy.backbone.model.language_model.layers:
        layer.self_attn.qk_layernorm = False  # transformers reads the flag per call; so does the window pass
    policy.merge_attention_lora()
    bins = np.random.default_rng(8).integers(0, 256, (3, 12))
    decoder = policy.action_decoder()
    prompt, _ = decoder.prefill(policy.encode(images, instructions))
    teacher_forced = policy.slot_logits(policy.encode(images, instructions, bins=bins))
    window = decoder.window.window(prompt, torch.as_tensor(bins[:, :WINDOW]))
    torch.testing.assert_close(window, teacher_forced[:, 1:], rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_each_row_depends_bit_for_bit_on_its_own_earlier_tokens_only(tiny_policy, images, instructions):
    """Row j of a pass (slot j+2) must be the same bits whatever the later tokens of its row and whatever the
    other rows of the batch hold: drafts change exactly those, greedy decoding feeds other ones."""
    decoder = tiny_policy.action_decoder()
    prompt, _ = decoder.prefill(tiny_policy.encode(images, instructions))
    rng = np.random.default_rng(9)
    for trial in range(6):
        x1 = torch.as_tensor(rng.integers(0, 256, (3, WINDOW)))
        j = int(rng.integers(1, WINDOW))  # rows 0..j-1 of row 0 keep their inputs tokens[:j]
        x2 = x1.clone()
        x2[0, j:] = torch.as_tensor(rng.integers(0, 256, WINDOW - j))
        x2[1:] = torch.as_tensor(rng.integers(0, 256, (2, WINDOW)))  # the other samples change entirely
        w1, w2 = decoder.window.window(prompt, x1), decoder.window.window(prompt, x2)
        assert torch.equal(w1[0, :j], w2[0, :j]), f"trial {trial}: rows before {j} changed"
        if not torch.equal(x1[0, j], x2[0, j]):
            assert not torch.equal(w1[0, j], w2[0, j])  # the row that sees the changed token does change


@torch.no_grad()
def test_a_one_token_step_is_not_bit_exact_which_is_why_greedy_runs_on_window_passes(tiny_policy, images):
    """transformers' incremental step (M = 1 matmuls) differs from the window pass in the last bits; the
    equality of drafts and greedy therefore holds against window-pass greedy (bit for bit) and against
    MoREPolicy.decode_batch only to rounding (tests in test_draft_decoder.py)."""
    policy = tiny_policy
    batch = policy.encode(images[:1], ["go to the red ball"])
    decoder = policy.action_decoder()
    greedy = decoder.greedy_batch(batch)
    bins, logits = policy.decode_batch(batch)
    assert torch.equal(bins, greedy.bins)
    torch.testing.assert_close(logits, greedy.logits, rtol=1e-5, atol=1e-5)
    assert not torch.equal(logits, greedy.logits)


@torch.no_grad()
def test_prompts_padded_to_a_bucket_decode_the_same(tiny_policy, images, instructions):
    """CUDA graphs pad prompts on the left to a multiple of `bucket` (masked keys, zeroed keys/values): the same
    code runs here on CPU with an explicit bucket. Other key length, other shapes: logits equal to rounding;
    drafts equal that decoder's greedy bit for bit."""
    batch = tiny_policy.encode(images, instructions)
    plain = tiny_policy.action_decoder().greedy_batch(batch)
    bucketed = tiny_policy.action_decoder(bucket=64)
    prompt, _ = bucketed.prefill(batch)
    assert prompt.length == 64 and batch.input_ids.shape[1] < 64 and not prompt.key_mask[:, 0].any()
    padded = bucketed.greedy_batch(batch)
    assert torch.equal(padded.bins, plain.bins)
    torch.testing.assert_close(padded.logits, plain.logits, rtol=1e-5, atol=1e-5)
    drafted = bucketed.draft_batch(batch, np.random.default_rng(4).integers(0, 256, (3, 12)))
    assert torch.equal(drafted.bins, padded.bins) and torch.equal(drafted.logits, padded.logits)


def test_errors_name_the_bad_input(tiny_policy, images, instructions):
    decoder = tiny_policy.action_decoder()
    prompt, _ = decoder.prefill(tiny_policy.encode(images, instructions))
    with pytest.raises(ValueError, match=r"window bins must have shape \(3, 11\)"):
        decoder.window.window(prompt, torch.zeros(3, 12, dtype=torch.long))
    with pytest.raises(ValueError, match="cuda_graph needs a CUDA policy"):
        tiny_policy.action_decoder(cuda_graph=True)
    with pytest.raises(ValueError, match="bucket must be >= 1"):
        tiny_policy.action_decoder(bucket=0)


@pytest.mark.slow
@pytest.mark.timeout(900)
@torch.no_grad()
def test_compiled_decoder_equals_the_eager_one(images, instructions):
    """torch.compile (inductor, C++ on CPU) of the layer function: the same bins as eager, logits equal to
    rounding (fusion reorders arithmetic); drafts through the compiled pass equal its greedy bit for bit.
    The first run compiles (~1-3 min on 2 busy cores); inductor's cache makes later runs ~25 s."""
    policy = make_tiny_policy(seed=0)
    batch = policy.encode(images, instructions)
    eager = policy.action_decoder().greedy_batch(batch)
    compiled_decoder = policy.action_decoder(compile=True)
    compiled = compiled_decoder.greedy_batch(batch)
    assert torch.equal(compiled.bins, eager.bins)
    torch.testing.assert_close(compiled.logits, eager.logits, rtol=1e-5, atol=1e-5)
    for draft in (None, compiled.bins.numpy(), np.random.default_rng(3).integers(0, 256, (3, 12))):
        drafted = compiled_decoder.draft_batch(batch, draft)
        assert torch.equal(drafted.bins, compiled.bins) and torch.equal(drafted.logits, compiled.logits)
