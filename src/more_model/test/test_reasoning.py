"""A policy that writes the scene before it acts (MoREConfig.reasoning = "scene"), against brute-force references:
full-vocabulary logits of each row run alone without padding, and greedy writing without a KV cache."""

import numpy as np
import pytest
import torch

from more_model.checkpoint import load_policy, save_checkpoint
from more_model.processor import IGNORE, MAX_REASONING_TOKENS, REASONING_ALPHABET, REASONING_STOPS
from more_model.testing import make_tiny_policy, tiny_config

INSTRUCTIONS = ["go to the box with the letter C", "go to the red ball", "walk"]
LABELS = ["A2C5.C5.", "..", "B1.."]


@pytest.fixture(scope="module")
def policy():
    return make_tiny_policy(seed=3, config=tiny_config(reasoning="scene", text_first=True))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return [rng.integers(0, 255, (32, 48, 3), dtype=np.uint8) for _ in INSTRUCTIONS]


def _bins(policy, n):
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (n, policy.num_slots))


def _row_alone(policy, batch, r):
    """Row r without its padding, as the model would see it alone: full-vocabulary logits [T_r, V]."""
    keep = batch.attention_mask[r].bool()
    ids = batch.input_ids[r][keep][None]
    per_image = batch.pixel_values.shape[0] // batch.batch_size  # every image has the model's size
    pixels = batch.pixel_values[r * per_image : (r + 1) * per_image]
    out = policy.backbone(
        input_ids=ids,
        pixel_values=pixels,
        attention_mask=torch.ones_like(ids),
        position_ids=torch.arange(ids.shape[1])[None],
    )
    return ids[0], out.logits[0].float()


def test_reasoning_sits_between_the_prompt_and_the_actions_with_targets_before_each_token(policy, images):
    bins = _bins(policy, 3)
    plain = policy.encoder.encode(images, INSTRUCTIONS)  # the prompts, as a model without reasoning sees them
    batch = policy.encoder.encode(images, INSTRUCTIONS, bins=bins, reasoning=LABELS)
    vocab = policy.tokenizer.get_vocab()
    S = policy.num_slots
    T = batch.input_ids.shape[1]
    assert plain.input_ids.shape[1] + len("A2C5.C5.") + S - 1 == T  # the longest row sets the length
    for r, text in enumerate(LABELS):
        ids, mask = batch.input_ids[r], batch.attention_mask[r].bool()
        assert not mask[: int((~mask).sum())].any()  # padding is on the left
        prompt = plain.input_ids[r][plain.attention_mask[r].bool()]
        expected = prompt.tolist() + [vocab[ch] for ch in text]
        expected += policy.action_tokenizer.bins_to_token_ids(bins[r : r + 1, : S - 1])[0].tolist()
        assert ids[mask].tolist() == expected
        # the position before r_j predicts r_j; nothing else is a reasoning target
        k, first = len(text), T - (S - 1) - len(text)
        want = torch.full((T,), IGNORE)
        want[first - 1 : first - 1 + k] = torch.tensor([REASONING_ALPHABET.index(ch) for ch in text])
        assert torch.equal(batch.reasoning_targets[r], want)
        assert torch.equal(batch.position_ids[r][mask], torch.arange(int(mask.sum())))
    assert batch.reasoning == tuple(LABELS)


def test_teacher_forced_reasoning_and_slot_logits_equal_each_row_run_alone(policy, images):
    bins = _bins(policy, 3)
    batch = policy.encoder.encode(images, INSTRUCTIONS, bins=bins, reasoning=LABELS)
    with torch.no_grad():
        out = policy(batch)
    alphabet_ids = [policy.tokenizer.get_vocab()[ch] for ch in REASONING_ALPHABET]
    bin_ids = policy.bin_token_ids
    m = 0
    S = policy.num_slots
    for r, text in enumerate(LABELS):
        ids, logits = _row_alone(policy, batch, r)
        k = len(text)
        L = len(ids)
        ref = logits[L - (S - 1) - k - 1 : L - (S - 1) - 1][:, alphabet_ids]  # positions before each r_j
        torch.testing.assert_close(out.reasoning_logits[m : m + k], ref, atol=1e-4, rtol=1e-4)
        assert out.reasoning_targets[m : m + k].tolist() == [REASONING_ALPHABET.index(ch) for ch in text]
        m += k
        torch.testing.assert_close(out.slot_logits[r], logits[L - S :][:, bin_ids], atol=1e-4, rtol=1e-4)
    assert m == out.reasoning_logits.shape[0] == sum(map(len, LABELS))


def _greedy_without_cache(policy, images, instructions):
    """Greedy writing, one full forward per character over the whole vocabulary restricted to the alphabet."""
    alphabet_ids = [policy.tokenizer.get_vocab()[ch] for ch in REASONING_ALPHABET]
    texts = []
    for image, instruction in zip(images, instructions, strict=True):
        text = ""
        while text.count(".") < REASONING_STOPS and len(text) < MAX_REASONING_TOKENS:
            batch = policy.encoder.encode([image], [instruction], reasoning=[text])
            _, logits = _row_alone(policy, batch, 0)
            text += REASONING_ALPHABET[int(logits[-1, alphabet_ids].argmax())]
        texts.append(text)
    return texts


def test_written_reasoning_equals_greedy_writing_without_a_cache(policy, images):
    written = policy.write_reasoning(policy.encoder.encode(images, INSTRUCTIONS))
    assert written == _greedy_without_cache(policy, images, INSTRUCTIONS)
    assert all(t.count(".") <= REASONING_STOPS and len(t) <= MAX_REASONING_TOKENS for t in written)


def test_writing_stops_per_row_at_the_second_full_stop_or_the_length_cap(images, monkeypatch):
    """A head that always picks "." in row 0 and "A" in rows 1-2: "..", then 16 A's (the cap)."""
    policy = make_tiny_policy(seed=4, config=tiny_config(reasoning="scene"))
    picks = torch.tensor([REASONING_ALPHABET.index("."), 0, 0])

    def head(hidden):
        return torch.nn.functional.one_hot(picks[: hidden.shape[0]], len(REASONING_ALPHABET)).float()

    monkeypatch.setattr(policy, "reasoning_logits", head)
    written = policy.write_reasoning(policy.encoder.encode(images, INSTRUCTIONS))
    assert written == ["..", "A" * MAX_REASONING_TOKENS, "A" * MAX_REASONING_TOKENS]


def test_decoders_continue_the_written_reasoning(policy, images):
    written = policy.write_reasoning(policy.encoder.encode(images, INSTRUCTIONS))
    out = policy.decode(images, INSTRUCTIONS)
    assert out.reasoning == tuple(written)
    reference_bins, _ = policy.decode_batch(policy.encode(images, INSTRUCTIONS, reasoning=written))
    np.testing.assert_array_equal(
        out.bins, policy.action_tokenizer.contract_bins(reference_bins.numpy().astype(np.int64))
    )
    decoder = policy.action_decoder()
    greedy = decoder.greedy(images, INSTRUCTIONS)
    drafted = decoder.decode(images, INSTRUCTIONS, drafts=out.bins)
    np.testing.assert_array_equal(greedy.bins, out.bins)
    np.testing.assert_array_equal(drafted.bins, out.bins)
    assert greedy.reasoning == drafted.reasoning == tuple(written)
    assert drafted.passes.max() <= 2  # the right draft: verified in one window pass after the prefill


def test_reasoning_misuse_is_refused_with_a_clear_message(policy, images):
    bins = _bins(policy, 3)
    with pytest.raises(ValueError, match="teacher-forced after its reasoning"):
        policy.encoder.encode(images, INSTRUCTIONS, bins=bins)
    with pytest.raises(ValueError, match="at most 16 characters"):
        policy.encoder.encode(images, INSTRUCTIONS, bins=bins, reasoning=["a2.", "..", ".."])
    with pytest.raises(ValueError, match="one reasoning text per row"):
        policy.encoder.encode(images, INSTRUCTIONS, bins=bins, reasoning=[".."])
    plain = make_tiny_policy(seed=3)
    with pytest.raises(ValueError, match="without reasoning"):
        plain.encoder.encode(images, INSTRUCTIONS, reasoning=LABELS)
    with pytest.raises(ValueError, match="reasoning must be 'none' or 'scene'"):
        tiny_config(reasoning="chain")


def test_a_reasoning_policy_survives_its_checkpoint(policy, images, tmp_path):
    save_checkpoint(tmp_path / "ckpt", policy)
    loaded = load_policy(tmp_path / "ckpt")
    assert loaded.config.reasoning == "scene"
    a, b = policy.decode(images, INSTRUCTIONS), loaded.decode(images, INSTRUCTIONS)
    assert a.reasoning == b.reasoning
    np.testing.assert_array_equal(a.bins, b.bins)
