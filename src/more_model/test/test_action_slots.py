"""Action slots: a model that decodes some dims with their own bin counts (config.action_slots).

Hand-computed bins and values, the default decoder equal to the action contract's arithmetic bit for bit, a
brute-force no-cache decode restricted to each slot's bins, masked bins never chosen, checkpoints round trip,
and the conservative term averaging over each slot's own bins.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from more_common.action_contract import DEFAULT_HIGH, DEFAULT_LOW, INDEX, STAND_COMMAND, ActionSpec, InvalidActionError
from more_common.typed_config import ConfigError, build
from more_model.action_tokenizer import ActionTokenizer
from more_model.checkpoint import load_checkpoint, load_policy, save_checkpoint
from more_model.config import MoREConfig, SlotConfig
from more_model.losses import conservative_loss
from more_model.policy import MASKED_LOGIT
from more_model.testing import make_tiny_policy, tiny_config

SPEC = ActionSpec()
SLOTS = (
    SlotConfig("vx", 16, 0.0, 0.75),
    SlotConfig("wz", 33, -1.0, 1.0),
    SlotConfig("body_height", 2, -0.22, 0.0),
    SlotConfig("pitch", 2, 0.0, 0.38),
    SlotConfig("terminate", 2, 0.0, 1.0),
)
TOK = ActionTokenizer(SPEC, [500 + b for b in range(33)], SLOTS)


def test_slot_bins_hand_values():
    assert TOK.num_slots == 5 and TOK.num_bins == 33 and TOK.slot_names == ("vx", "wz", "body_height", "pitch",
                                                                             "terminate")  # fmt: skip
    a = np.array(STAND_COMMAND, dtype=np.float64)
    a[INDEX["vx"]], a[INDEX["wz"]], a[INDEX["body_height"]], a[INDEX["pitch"]], a[INDEX["terminate"]] = (
        0.6, -0.5, -0.22, 0.38, 1.0
    )  # fmt: skip
    # vx: centres 0, 0.05, ..., 0.75 (w = 0.05) -> 0.6 is bin 12; wz: w = 1/16 -> -0.5 is bin 8
    np.testing.assert_array_equal(TOK.to_bins(a), [12, 8, 0, 1, 1])
    back = TOK.from_bins(TOK.to_bins(a))
    np.testing.assert_allclose(back, a, atol=1e-12)  # every value the expert uses is a bin centre
    a[INDEX["vx"]], a[INDEX["terminate"]], a[INDEX["wz"]] = 0.0, 0.0, 0.0
    np.testing.assert_array_equal(TOK.to_bins(a), [0, 16, 0, 1, 0])
    np.testing.assert_allclose(TOK.from_bins([0, 16, 0, 1, 0])[[0, 2, 11]], [0.0, 0.0, 0.0], atol=1e-12)
    # dims the model does not decode take the stand command, whatever the data said
    a[INDEX["gait_phase"]], a[INDEX["vy"]] = 0.0, 0.4
    out = TOK.from_bins(TOK.to_bins(a))
    assert out[INDEX["gait_phase"]] == STAND_COMMAND[INDEX["gait_phase"]] and out[INDEX["vy"]] == 0.0
    # out of range clips to the edge bins; a stop command at 0.7 is bin 1 (edges -0.5, 0.5, 1.5)
    a[INDEX["vx"]], a[INDEX["terminate"]] = 5.0, 0.7
    assert TOK.to_bins(a)[0] == 15 and TOK.to_bins(a)[4] == 1
    assert TOK.contract_bins([1, 2, 0, 1, 0]).tolist() == [1, -1, 2, -1, -1, -1, -1, 0, 1, -1, -1, 0]
    q = TOK.contract_values(np.array([0.1, 0.2, 0.3, 0.4, 0.5], np.float32))
    assert np.isnan(q[1]) and q[11] == np.float32(0.5) and q.dtype == np.float32


def test_bad_slot_bins_and_configs_are_named():
    with pytest.raises(InvalidActionError, match="terminate"):
        TOK.from_bins([0, 0, 0, 0, 2])  # terminate has 2 bins
    with pytest.raises(InvalidActionError, match="5 values"):
        TOK.from_bins([0, 0, 0])
    with pytest.raises(InvalidActionError, match="wz"):
        TOK.to_bins(np.where(np.arange(12) == 2, np.nan, 0.0))
    with pytest.raises(ValueError, match="more than once"):
        MoREConfig(action_slots=(SlotConfig("wz", 4), SlotConfig("wz", 8)))
    with pytest.raises(ConfigError, match=r"action_slots\[0\].*bins of wz"):
        build(MoREConfig, {"action_slots": [{"dim": "wz", "bins": 300}]})
    with pytest.raises(ConfigError, match="dim must be one of"):
        build(MoREConfig, {"action_slots": [{"dim": "yaw", "bins": 4}]})
    with pytest.raises(ConfigError, match="both first and last"):
        build(MoREConfig, {"action_slots": [{"dim": "wz", "bins": 4, "first": 0.0}]})


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(-2.0, 2.0), min_size=12, max_size=12))
def test_default_decoder_is_the_contract_bit_for_bit(fractions):
    tok = ActionTokenizer(SPEC, range(1000, 1256))
    low, high = np.array(DEFAULT_LOW), np.array(DEFAULT_HIGH)
    a = low + np.array(fractions) * (high - low)
    np.testing.assert_array_equal(tok.to_bins(a), SPEC.to_bins(a))
    b = SPEC.to_bins(a)
    np.testing.assert_array_equal(tok.from_bins(b), SPEC.from_bins(b))
    np.testing.assert_array_equal(tok.contract_bins(b), b)


def _slot_config():
    return tiny_config(action_slots=SLOTS, prompt_template="{instruction}\n")


@pytest.fixture(scope="module")
def slot_policy():
    torch.set_num_threads(1)
    return make_tiny_policy(seed=3, config=_slot_config())


@torch.no_grad()
def test_slot_model_decodes_each_slot_within_its_bins(slot_policy, images, instructions):
    p = slot_policy
    # make the bins that slots 3-5 do not have win everywhere: decoding must still pick a valid bin
    head = p.backbone.lm_head.weight
    saved = head.clone()
    head[p.bin_token_ids[2:]] += 5.0 * head[p.bin_token_ids[:2]].mean(0)
    try:
        out = p.decode(images, instructions)
        batch = p.encode(images, instructions, bins=np.stack([TOK.to_bins(a) for a in out.actions]))
        logits = p.slot_logits(batch)  # teacher-forced on the decoded bins
    finally:
        head.copy_(saved)
    assert logits.shape == (3, 5, 33)
    assert (logits[:, 2:, 2:] == MASKED_LOGIT).all() and (logits[:, 0, 16:] == MASKED_LOGIT).all()
    assert (logits[:, 0, :16] > MASKED_LOGIT).all() and (logits[:, 1] > MASKED_LOGIT).all()
    slot_bins = out.bins[:, [INDEX[s.dim] for s in SLOTS]]
    assert (slot_bins < np.array([16, 33, 2, 2, 2])).all() and (out.bins[:, INDEX["vy"]] == -1).all()
    # greedy KV-cached decode = argmax of the no-cache teacher-forced logits at every slot
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), slot_bins)
    q = torch.sigmoid(logits.max(-1).values).numpy()
    np.testing.assert_allclose(out.q_values[:, [INDEX[s.dim] for s in SLOTS]], q, rtol=1e-5, atol=1e-6)
    assert np.isnan(out.q_values[:, INDEX["gait_phase"]]).all()
    np.testing.assert_allclose(out.actions[:, INDEX["step_frequency"]], STAND_COMMAND[INDEX["step_frequency"]])


def test_slot_sequence_is_shorter(slot_policy, tiny_policy, images, instructions):
    a = np.tile(np.array(STAND_COMMAND), (3, 1))
    short = slot_policy.encoder.encode_actions(images, instructions, a)
    full = tiny_policy.encoder.encode_actions(images, instructions, a)
    # 7 fewer action tokens, and "{instruction}\n" instead of QUART's preamble
    assert short.input_ids.shape[1] <= full.input_ids.shape[1] - 7 - 8
    assert short.bins.shape == (3, 5) and short.num_slots == 5


def test_slot_checkpoint_round_trip(tmp_path, slot_policy, images, instructions):
    save_checkpoint(tmp_path / "c", slot_policy)
    loaded = load_policy(tmp_path / "c")
    assert loaded.action_tokenizer.slots == SLOTS and loaded.config.action_slots == SLOTS
    a, b = slot_policy.decode(images, instructions), loaded.decode(images, instructions)
    np.testing.assert_array_equal(a.bins, b.bins)
    ckpt = load_checkpoint(tmp_path / "c")
    assert ckpt.policy.num_slots == 5


def test_conservative_term_averages_over_each_slots_own_bins():
    logits = torch.full((1, 2, 4), MASKED_LOGIT)
    logits[0, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0])  # slot 0 has 4 bins
    logits[0, 1, :2] = torch.tensor([0.5, -0.5])  # slot 1 has 2
    valid = torch.tensor([[True] * 4, [True, True, False, False]])
    bins = torch.tensor([[3, 0]])
    got = conservative_loss(logits, bins, regression="mse", valid=valid)
    sig = torch.sigmoid
    slot0 = (0.5 * sig(torch.tensor([0.0, 1.0, 2.0])) ** 2).sum() / 3
    slot1 = 0.5 * sig(torch.tensor(-0.5)) ** 2 / 1
    torch.testing.assert_close(got, (slot0 + slot1) / 2)
    full = conservative_loss(logits, bins, regression="mse")  # without the mask slot 1 is diluted by 3
    assert float(full) < float(got)


@pytest.fixture(scope="module")
def text_first_policy():
    torch.set_num_threads(1)
    return make_tiny_policy(seed=4, config=tiny_config(action_slots=SLOTS, prompt_template="{instruction}\n",
                                                       text_first=True))  # fmt: skip


@torch.no_grad()
def test_text_first_layout_and_constant_image_to_answer_distance(text_first_policy, images, instructions):
    p = text_first_policy
    vocab = p.tokenizer.get_vocab()
    image_ids = {vocab["|SPEAKER|"], vocab["|NEWLINE|"]}
    batch = p.encode(images, instructions)
    n = p.encoder.image_tokens
    assert n == 2 * (3 + 1)  # 32x48 in 16-px patches: 2 rows of 3 patches + a row end each
    for r in range(len(instructions)):
        row = batch.input_ids[r]
        assert row[-1] == vocab["<0x04>"]
        assert all(int(t) in image_ids for t in row[-1 - n : -1])  # the image block ends right before the answer
        real = row[batch.attention_mask[r].bool()]
        assert real[0] == vocab["<s>"] and not any(int(t) in image_ids for t in real[: len(real) - 1 - n])
    # the same image with prompts of different lengths: the answer sees the patches at the same distances
    short = p.encode(images[:1] * 2, ["go to the red ball", "go to the box with the letter A"])
    assert short.attention_mask[0].sum() < short.attention_mask[1].sum()
    pos = short.position_ids
    first_patch = [int(pos[r][short.input_ids[r] == vocab["|SPEAKER|"]][0]) for r in range(2)]
    assert pos[0, -1] - first_patch[0] == pos[1, -1] - first_patch[1]


@torch.no_grad()
def test_text_first_logits_match_the_hf_model_and_decode_is_consistent(text_first_policy, images, instructions):
    p = text_first_policy
    out = p.decode(images, instructions)
    slot_bins = out.bins[:, [INDEX[s.dim] for s in SLOTS]]
    batch = p.encode(images, instructions, bins=slot_bins)
    logits = p.slot_logits(batch)
    np.testing.assert_array_equal(logits.argmax(-1).numpy(), slot_bins)  # KV-cached greedy = teacher forced
    for i in range(3):
        row = p.encoder.encode(images[i : i + 1], instructions[i : i + 1], bins=slot_bins[i : i + 1])
        hf = p.backbone(input_ids=row.input_ids, pixel_values=row.pixel_values).logits[0]  # no padding, no cache
        ref = hf[-5:][:, p.bin_token_ids]  # the 5 slot positions, bins of the largest slot
        torch.testing.assert_close(logits[i][p.valid_bins], ref[p.valid_bins], rtol=1e-4, atol=1e-4)
        single = p.decode(images[i : i + 1], instructions[i : i + 1])
        np.testing.assert_array_equal(single.bins[0], out.bins[i])  # left padding changes nothing
