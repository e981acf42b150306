"""Temporal-draft decoding equals greedy decoding bit for bit, for random models, prompts and drafts (right,
partly wrong, random, none, mixed per row), batched; it agrees with transformers' incremental greedy
(MoREPolicy.decode_batch) to rounding; DraftState keeps and drops drafts as the policy node needs."""

import functools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from more_common.action_contract import TERMINATE, ActionSpec
from more_model.draft_decoder import ActionDecoder, DraftDecodeResult, DraftState
from more_model.testing import make_tiny_policy, tiny_config

INSTRUCTIONS = ["go to the red ball", "stop", "crawl under the bar quickly with a trot gait", "go", "turn left"]
CONFIGS = [
    {},
    dict(num_experts=3, top_k=1, attn_rank=0),
    dict(use_moe=False, num_experts=1, top_k=1),
    dict(layers=(0,)),
]


@functools.cache
def _decoder(seed: int, config: int) -> ActionDecoder:
    torch.set_num_threads(1)
    return make_tiny_policy(seed=seed, config=tiny_config(**CONFIGS[config])).action_decoder()


def _drafts(kind: str, greedy: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    B = greedy.shape[0]
    if kind == "none":
        return None
    if kind == "right":
        return greedy.copy()
    if kind == "random":
        return rng.integers(0, 256, (B, 12))
    if kind == "partly wrong":
        d = greedy.copy()
        for row in range(B):
            slots = rng.choice(12, size=int(rng.integers(1, 4)), replace=False)
            d[row, slots] = (d[row, slots] + rng.integers(1, 256, len(slots))) % 256
        return d
    # "mixed": a different kind per row, including rows without a guess (-1)
    d = rng.integers(0, 256, (B, 12))
    d[0] = greedy[0]
    if B > 1:
        d[1] = -1
    return d


@pytest.mark.slow
@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2),
    config=st.integers(0, len(CONFIGS) - 1),
    batch=st.integers(1, 3),
    kind=st.sampled_from(["none", "right", "partly wrong", "random", "mixed"]),
    data_seed=st.integers(0, 10_000),
)
@torch.no_grad()
def test_draft_decoding_equals_greedy_bit_for_bit(seed, config, batch, kind, data_seed):
    decoder = _decoder(seed, config)
    policy = decoder.policy
    rng = np.random.default_rng(data_seed)
    shapes = [(32, 48, 3), (40, 40, 3), (17, 23, 3)]
    images = [rng.integers(0, 256, shapes[i % 3], dtype=np.uint8) for i in range(batch)]
    instructions = [INSTRUCTIONS[int(i)] for i in rng.integers(0, len(INSTRUCTIONS), batch)]
    encoded = policy.encode(images, instructions)
    greedy = decoder.greedy_batch(encoded)
    drafts = _drafts(kind, greedy.bins.numpy(), rng)
    out = decoder.draft_batch(encoded, drafts)
    assert torch.equal(out.bins, greedy.bins), f"{kind}: bins differ"
    assert torch.equal(out.logits, greedy.logits), f"{kind}: Q-values differ"
    assert ((out.passes >= 2) & (out.passes <= 12)).all() and out.batch_passes == int(out.passes.max())
    if kind == "right":
        assert (out.passes == 2).all()  # prefill + one verifying pass
    if drafts is not None:
        fed = np.clip(drafts, 0, None)[:, 1:11]  # -1 (no guess) is fed as bin 0
        wrong_inputs = (fed != greedy.bins.numpy()[:, 1:11]).any(axis=1)
        # a row whose draft feeds a non-greedy token cannot be fixed after one pass; one that feeds none is
        assert ((out.passes.numpy() > 2) == wrong_inputs).all()
    # transformers' incremental greedy: other kernels (M = 1), same bins, logits to rounding
    bins, logits = policy.decode_batch(encoded)
    assert torch.equal(bins, greedy.bins)
    torch.testing.assert_close(logits, greedy.logits, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_decode_returns_the_policy_interface_with_passes(tiny_policy, images, instructions):
    decoder = tiny_policy.action_decoder()
    ref = tiny_policy.decode(images, instructions)
    out = decoder.decode(images, instructions, drafts=ref.bins)
    greedy = decoder.greedy(images, instructions)
    assert isinstance(out, DraftDecodeResult)
    np.testing.assert_array_equal(out.bins, ref.bins)
    np.testing.assert_array_equal(out.bins, greedy.bins)
    np.testing.assert_array_equal(out.q_values, greedy.q_values)
    np.testing.assert_allclose(out.q_values, ref.q_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.actions, tiny_policy.action_spec.from_bins(out.bins))
    assert out.q_values.dtype == np.float32 and out.bins.dtype == np.int64
    np.testing.assert_array_equal(out.passes, [2, 2, 2])
    np.testing.assert_array_equal(greedy.passes, [12, 12, 12])


def test_bad_drafts_are_refused_with_the_reason(tiny_policy, images, instructions):
    decoder = tiny_policy.action_decoder()
    with pytest.raises(ValueError, match=r"drafts must have shape \(3, 12\)"):
        decoder.decode(images, instructions, drafts=np.zeros((3, 11), np.int64))
    with pytest.raises(ValueError, match="integer bins"):
        decoder.decode(images, instructions, drafts=np.zeros((3, 12)))
    with pytest.raises(ValueError, match="bins < 256"):
        decoder.decode(images, instructions, drafts=np.full((3, 12), 256))
    with pytest.raises(ValueError, match="prompt-only"):
        decoder.draft_batch(tiny_policy.encode(images, instructions, bins=np.zeros((3, 12), np.int64)))


def _spec_terminating_on_bin_255() -> ActionSpec:
    """Terminate's bounds [-255, 1]: bin b's centre is b - 254.5, so only bin 255 means "terminate" (the random
    test models would otherwise terminate on half the decisions and DraftState would keep no draft)."""
    low = list(ActionSpec().low)
    low[TERMINATE] = -255.0
    return ActionSpec(low=tuple(low))


@torch.no_grad()
def test_draft_state_keeps_the_last_decision_per_instruction_and_stream(images):
    tiny_policy = make_tiny_policy(seed=0, action_spec=_spec_terminating_on_bin_255())
    state = DraftState(tiny_policy.action_decoder())
    assert state.action_spec is tiny_policy.action_spec  # what the policy core reads besides decode()
    assert state.image_size == tiny_policy.image_size  # what the node's warm-up reads
    first = state.decode(images[:1], ["go to the red ball"])
    assert first.passes[0] > 2  # no draft yet
    np.testing.assert_array_equal(state.draft_for(0, "go to the red ball"), first.bins[0])
    again = state.decode(images[:1], ["go to the red ball"])  # same input: the draft is exactly right
    np.testing.assert_array_equal(again.bins, first.bins)
    assert again.passes[0] == 2 and state.last_passes[0] == 2
    other = state.decode(images[:1], ["stop"])  # a new instruction: the old draft is not used
    assert state.draft_for(0, "go to the red ball") is None
    np.testing.assert_array_equal(other.bins, tiny_policy.decode(images[:1], ["stop"]).bins)
    # streams (e.g. simulator slots) are independent
    state.decode(images[:2], ["go", "turn left"], keys=["a", "b"])
    both = state.decode(images[:2], ["go", "turn left"], keys=["a", "b"])
    np.testing.assert_array_equal(both.passes, [2, 2])
    state.reset("a")
    assert state.draft_for("a", "go") is None and state.draft_for("b", "turn left") is not None
    state.reset()
    assert state.draft_for("b", "turn left") is None
    with pytest.raises(ValueError, match="one distinct key per instruction"):
        state.decode(images[:2], ["go", "go"], keys=["a", "a"])


@torch.no_grad()
def test_draft_state_drops_the_draft_after_terminate(images):
    """A decision with terminate set ends the episode: the next one (same instruction) starts without a draft."""
    policy = make_tiny_policy(seed=6, action_spec=_spec_terminating_on_bin_255())
    final = policy.backbone.model.language_model.final_layernorm
    final.weight.zero_()
    final.bias.fill_(1.0)  # every position's hidden state is all ones...
    policy.backbone.lm_head.weight[policy.bin_token_ids[255]] = 10.0  # ...so bin 255 wins every slot
    state = DraftState(policy.action_decoder())
    out = state.decode(images[:1], ["go to the red ball"])
    assert out.bins[0, TERMINATE] == 255
    assert policy.action_spec.for_controller(out.actions[0])[TERMINATE] == 1.0
    assert state.draft_for(0, "go to the red ball") is None
    assert state.decode(images[:1], ["go to the red ball"]).passes[0] > 2
