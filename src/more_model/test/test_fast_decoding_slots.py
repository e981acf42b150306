"""The fast decoders (window passes, temporal drafts) on models with `action_slots` and `text_first`.

Drafts equal window-pass greedy bit for bit, window-pass greedy equals `MoREPolicy.decode_batch` in bins (logits
to rounding), the window pass equals the teacher-forced forward, results come back in contract order like
`MoREPolicy.decode`, and a bin its slot does not have is never chosen even where its logit would win (the same
decoder without the mask does choose such bins, so the mask is what keeps them out).
"""

import functools

import numpy as np
import pytest
import torch

from more_common.action_contract import INDEX
from more_model.config import SlotConfig
from more_model.draft_decoder import DraftState
from more_model.policy import MASKED_LOGIT
from more_model.testing import make_tiny_policy, tiny_config

SLOTS = (
    SlotConfig("vx", 16, 0.0, 0.75),
    SlotConfig("wz", 33, -1.0, 1.0),
    SlotConfig("body_height", 2, -0.22, 0.0),
    SlotConfig("pitch", 2, 0.0, 0.38),
    SlotConfig("terminate", 2, 0.0, 1.0),
)
SLOT_BINS = np.array([s.bins for s in SLOTS])
SLOT_DIMS = [INDEX[s.dim] for s in SLOTS]
MODELS = {
    "slots": dict(action_slots=SLOTS, prompt_template="{instruction}\n"),
    "slots, text first": dict(action_slots=SLOTS, prompt_template="{instruction}\n", text_first=True),
    "12 x 256, text first": dict(text_first=True),
}


def _masked_bins_would_win(policy) -> None:
    """Every bin >= 2 gets +15 on its logit at every position (hidden dim 0 is fixed at 3 by the final layer
    norm, and those bins' head rows get +5 there): without the mask the 2-bin slots would never pick bin 0 or 1."""
    final = policy.backbone.model.language_model.final_layernorm
    final.weight[0] = 0.0
    final.bias[0] = 3.0
    policy.backbone.lm_head.weight[policy.bin_token_ids[2:], 0] += 5.0


@functools.cache
def _model(name: str):
    torch.set_num_threads(1)
    policy = make_tiny_policy(seed=11, config=tiny_config(**MODELS[name]))
    with torch.no_grad():
        if policy.config.action_slots:
            _masked_bins_would_win(policy)
    return name, policy, policy.action_decoder()


@pytest.fixture(params=sorted(MODELS))
def model(request):
    return _model(request.param)


def _draft_kinds(greedy_contract: np.ndarray, policy, rng: np.random.Generator) -> dict[str, np.ndarray | None]:
    """Drafts in contract order [B, 12], as DraftState passes them."""
    tok = policy.action_tokenizer
    B = greedy_contract.shape[0]
    random = np.full((B, 12), -1, np.int64)
    random[:, list(tok.slot_dims)] = rng.integers(0, np.array(tok.slot_bins), (B, tok.num_slots))
    partly = greedy_contract.copy()
    s = int(rng.integers(1, tok.num_slots - 1))  # an input slot (not the first, not the last)
    d = tok.slot_dims[s]
    partly[:, d] = (partly[:, d] + 1) % tok.slot_bins[s]
    mixed = random.copy()
    mixed[0] = greedy_contract[0]
    mixed[1] = -1
    garbage = greedy_contract.copy()
    undecoded = [i for i in range(12) if i not in tok.slot_dims]
    garbage[:, undecoded] = 200  # dims the model does not decode: ignored whatever they hold
    return {"none": None, "right": greedy_contract, "random": random, "partly wrong": partly, "mixed": mixed,
            "garbage outside the slots": garbage}  # fmt: skip


@torch.no_grad()
def test_drafts_equal_greedy_and_greedy_equals_the_policy(model, images, instructions):
    name, policy, decoder = model
    tok = policy.action_tokenizer
    S = tok.num_slots
    encoded = policy.encode(images, instructions)
    greedy = decoder.greedy_batch(encoded)
    assert greedy.bins.shape == (3, S) and (greedy.passes == S).all() and greedy.batch_passes == S
    assert (greedy.bins.numpy() < np.array(tok.slot_bins)).all()
    bins, logits = policy.decode_batch(encoded)  # transformers' incremental greedy: same bins, logits to rounding
    assert torch.equal(bins, greedy.bins), name
    torch.testing.assert_close(logits, greedy.logits, rtol=1e-5, atol=1e-5)
    contract = tok.contract_bins(greedy.bins.numpy())
    for kind, draft in _draft_kinds(contract, policy, np.random.default_rng(5)).items():
        out = decoder.draft_batch(encoded, draft)
        assert torch.equal(out.bins, greedy.bins), f"{name}, {kind}: bins differ"
        assert torch.equal(out.logits, greedy.logits), f"{name}, {kind}: Q-values differ"
        assert ((out.passes >= 2) & (out.passes <= S)).all()
        if kind in ("right", "garbage outside the slots"):
            assert (out.passes == 2).all(), kind  # prefill + one verifying pass
    # the window pass is the teacher-forced forward, masked bins included
    prompt, first = decoder.prefill(encoded)
    window = decoder.window.window(prompt, greedy.bins[:, : S - 1])
    teacher_forced = policy.slot_logits(policy.encode(images, instructions, bins=greedy.bins.numpy()))
    assert window.shape == (3, S - 1, tok.num_bins)
    torch.testing.assert_close(first, teacher_forced[:, 0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(window, teacher_forced[:, 1:], rtol=1e-5, atol=1e-5)
    masked = ~policy.valid_bins
    assert (window[:, masked[1:]] == MASKED_LOGIT).all() and (first[:, masked[0]] == MASKED_LOGIT).all()
    # the numpy interface: contract order like MoREPolicy.decode
    ref = policy.decode(images, instructions)
    out = decoder.decode(images, instructions, drafts=ref.bins)
    np.testing.assert_array_equal(out.bins, ref.bins)
    np.testing.assert_array_equal(np.isnan(out.q_values), np.isnan(ref.q_values))
    np.testing.assert_allclose(out.q_values, ref.q_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out.actions, ref.actions)
    np.testing.assert_array_equal(out.passes, [2, 2, 2])
    np.testing.assert_array_equal(decoder.greedy(images, instructions).passes, [S] * 3)


@pytest.mark.parametrize("name", ["slots", "slots, text first"])
@torch.no_grad()
def test_masked_bins_are_never_chosen_though_they_would_win(name, images, instructions):
    _, policy, decoder = _model(name)
    encoded = policy.encode(images, instructions)
    out = decoder.draft_batch(encoded, None).bins.numpy()
    assert (out < SLOT_BINS).all() and out.shape == (3, 5)
    unmasked = policy.valid_bins.clone()
    policy.valid_bins = torch.ones_like(unmasked)  # the same model without the mask...
    try:
        loose = policy.action_decoder().greedy_batch(encoded).bins.numpy()
    finally:
        policy.valid_bins = unmasked
    assert (loose[:, 2:] >= 2).all(), "the test model must make masked bins win"  # ...picks bins slots lack
    assert (loose >= SLOT_BINS).any()


@torch.no_grad()
def test_text_first_with_bucketed_prompts(images, instructions):
    """Prompts padded on the left to a bucket (the CUDA-graph layout) on a text-first model: the same bins."""
    policy = make_tiny_policy(seed=12, config=tiny_config(text_first=True))
    encoded = policy.encode(images, instructions)
    plain = policy.action_decoder().greedy_batch(encoded)
    bucketed = policy.action_decoder(bucket=64).greedy_batch(encoded)
    assert encoded.input_ids.shape[1] % 64 != 0  # the bucket really pads
    assert torch.equal(plain.bins, bucketed.bins)
    torch.testing.assert_close(plain.logits, bucketed.logits, rtol=1e-5, atol=1e-5)
    assert torch.equal(plain.bins, policy.decode_batch(encoded)[0])


@torch.no_grad()
def test_draft_state_on_a_slot_model(images):
    """DraftState keeps contract-order bins (-1 outside the slots) and feeds them back: a repeated frame is
    verified in one pass. No terminate slot: terminate takes the stand command (0), the draft is never dropped."""
    policy = make_tiny_policy(seed=13, config=tiny_config(action_slots=SLOTS[:4], prompt_template="{instruction}"))
    state = DraftState(policy.action_decoder())
    first = state.decode(images[:1], ["go to the red ball"])
    assert first.bins[0, INDEX["vy"]] == -1 and first.bins[0, INDEX["terminate"]] == -1
    np.testing.assert_array_equal(state.draft_for(0, "go to the red ball"), first.bins[0])
    again = state.decode(images[:1], ["go to the red ball"])
    np.testing.assert_array_equal(again.bins, first.bins)
    assert again.passes[0] == 2
    np.testing.assert_array_equal(again.bins, policy.decode(images[:1], ["go to the red ball"]).bins)


@torch.no_grad()
def test_one_slot_model_decides_in_the_prefill(images, instructions):
    policy = make_tiny_policy(seed=14, config=tiny_config(action_slots=(SlotConfig("wz", 9, -1.0, 1.0),)))
    decoder = policy.action_decoder()
    ref = policy.decode(images, instructions)
    for draft in (None, ref.bins):
        out = decoder.decode(images, instructions, drafts=draft)
        np.testing.assert_array_equal(out.bins, ref.bins)
        np.testing.assert_array_equal(out.passes, [1, 1, 1])
    np.testing.assert_array_equal(decoder.greedy(images, instructions).bins, ref.bins)


def test_drafts_outside_a_slots_bins_are_refused(images, instructions):
    policy = make_tiny_policy(seed=11, config=tiny_config(**MODELS["slots"]))
    decoder = policy.action_decoder()
    draft = np.zeros((3, 12), np.int64)
    draft[:, INDEX["pitch"]] = 2  # pitch has 2 bins
    with pytest.raises(ValueError, match=r"drafts must be bins < 2 in pitch"):
        decoder.decode(images, instructions, drafts=draft)
    draft[:, INDEX["pitch"]] = 1
    draft[:, INDEX["vy"]] = 255  # vy is not decoded: ignored
    decoder.decode(images, instructions, drafts=draft)
