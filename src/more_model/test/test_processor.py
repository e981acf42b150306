"""Encoding through Fuyu's processor: the one transformers workaround, sequence layout, padding, resizing."""

import numpy as np
import pytest
import torch

from more_model.processor import (
    NUM_SLOTS,
    PatchedFuyuImageProcessor,
    fuyu_processor_bug_present,
    position_ids_from_mask,
    resize_image,
)
from more_model.tiny_backbone import build_tiny_tokenizer


def test_upstream_processor_bug_is_still_present():
    # When this fails, transformers fixed FuyuProcessor + FuyuImageProcessorPil on images: delete
    # PatchedFuyuImageProcessor and use FuyuImageProcessorPil in build_processor.
    assert fuyu_processor_bug_present(build_tiny_tokenizer())


def test_patched_patchify_matches_a_hand_reference():
    proc = PatchedFuyuImageProcessor()
    img = torch.arange(3 * 32 * 48, dtype=torch.float32).reshape(3, 32, 48)
    patches = proc.patchify_image(img, _size(16))
    assert isinstance(patches, torch.Tensor) and patches.shape == (6, 16 * 16 * 3)
    # patch (row r, col c) flattened as (h, w, channel), rows first
    for idx, (r, c) in enumerate([(r, c) for r in range(2) for c in range(3)]):
        block = img[:, 16 * r : 16 * r + 16, 16 * c : 16 * c + 16].permute(1, 2, 0).reshape(-1)
        assert torch.equal(patches[idx], block)
    # numpy input still takes the upstream path
    np_patches = proc.patchify_image(img.numpy(), _size(16))
    assert isinstance(np_patches, np.ndarray) and np.array_equal(np_patches, patches.numpy())


def _size(p):
    from transformers.image_utils import SizeDict

    return SizeDict(height=p, width=p)


def test_prompt_layout_with_actions(tiny_policy, images, instructions):
    enc = tiny_policy.encoder
    bins = np.arange(36).reshape(3, 12)
    batch = enc.encode(images, instructions, bins=bins)
    tok = tiny_policy.tokenizer
    rows, cols = 32 // 16, 48 // 16
    for i, instruction in enumerate(instructions):
        real = batch.input_ids[i][batch.attention_mask[i].bool()].tolist()
        tokens = tok.convert_ids_to_tokens(real)
        image_part = (["|SPEAKER|"] * cols + ["|NEWLINE|"]) * rows
        assert tokens[: len(image_part)] == image_part
        assert tokens[len(image_part)] == "<s>"
        prompt_ids = tok(enc.prompt(instruction), add_special_tokens=False)["input_ids"]
        boa = len(image_part) + 1 + len(prompt_ids)
        assert real[len(image_part) + 1 : boa] == prompt_ids
        assert tokens[boa] == "<0x04>"
        # the first 11 action tokens follow; a12 is never an input
        assert tokens[boa + 1 :] == [str(b) for b in bins[i, : NUM_SLOTS - 1]]
    # slot 1 is read at <0x04>, slot i at a_{i-1}: the last 12 positions of every row
    T = batch.input_ids.shape[1]
    assert batch.slot_positions().tolist() == list(range(T - 12, T))
    boa_id = tok.convert_tokens_to_ids("<0x04>")
    assert (batch.input_ids[:, T - 12] == boa_id).all()
    assert batch.pixel_values.shape == (3 * rows * cols, 16 * 16 * 3)


def test_padding_is_on_the_left_and_positions_start_at_each_rows_first_token(tiny_policy, images, instructions):
    batch = tiny_policy.encoder.encode(images, instructions)
    lengths = batch.attention_mask.sum(1)
    assert lengths[1] < lengths[2]
    T = batch.input_ids.shape[1]
    for i in range(3):
        pad = T - int(lengths[i])
        assert batch.attention_mask[i, :pad].sum() == 0 and (batch.input_ids[i, :pad] == 0).all()
        assert batch.position_ids[i, pad:].tolist() == list(range(int(lengths[i])))
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert position_ids_from_mask(mask).tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]]


def test_encoding_rejects_bad_inputs(tiny_policy, images):
    enc = tiny_policy.encoder
    with pytest.raises(ValueError, match="one instruction per image"):
        enc.encode(images, ["a"])
    with pytest.raises(TypeError, match="list of strings"):
        enc.encode(images[:1], "go")
    with pytest.raises(ValueError, match="uint8"):
        enc.encode([images[0].astype(np.float32)], ["go"])
    with pytest.raises(ValueError, match="HxWx3"):
        enc.encode([images[0][..., 0]], ["go"])
    with pytest.raises(ValueError, match=r"shape \(1, 12\)"):
        enc.encode(images[:1], ["go"], bins=np.zeros((1, 11), np.int64))


def test_resize_keeps_matching_images_and_resizes_others():
    img = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    assert resize_image(img, (32, 48)) is img
    assert resize_image(img, (64, 96)).shape == (64, 96, 3)
    flat = np.full((100, 30, 3), 77, np.uint8)
    assert (resize_image(flat, (32, 48)) == 77).all()


def test_resize_crops_to_the_models_aspect_instead_of_stretching():
    rows = np.repeat(np.arange(6, dtype=np.uint8)[:, None, None], 6 * 3, axis=1).reshape(6, 6, 3)
    # 6 x 6 into a 4 x 6 view: the middle 4 rows (1..4), nothing resampled
    assert (resize_image(rows, (4, 6)) == rows[1:5]).all()
    cols = rows.transpose(1, 0, 2)  # column c holds c
    assert (resize_image(cols, (6, 2)) == cols[:, 2:4]).all()  # 6 x 6 into 6 x 2: columns 2 and 3
    # the D435's 480 x 848 into a 96 x 144 model: columns 64..783 kept (720 = 480 * 3 / 2), the rest never seen
    frame = np.full((480, 848, 3), 100, np.uint8)
    frame[:, :64] = 0
    frame[:, 784:] = 255
    out = resize_image(frame, (96, 144))
    assert out.shape == (96, 144, 3) and (out == 100).all()
    frame[:, 64] = 0  # one dark column inside the kept part shows at the left edge
    assert resize_image(frame, (96, 144))[:, 0].mean() < 100


def test_encode_actions_bins_continuous_actions(tiny_policy, images):
    spec = tiny_policy.action_spec
    actions = np.array([spec.low, spec.high])
    batch = tiny_policy.encoder.encode_actions(images[:2], ["a", "b"], actions)
    assert batch.bins.tolist() == [[0] * 12, [255] * 12]


def test_encoder_pickles_for_data_loader_workers(tiny_policy, images, instructions):
    import pickle

    enc = tiny_policy.encoder
    again = pickle.loads(pickle.dumps(enc))  # our own object, round trip in memory
    a, b = enc.encode(images, instructions), again.encode(images, instructions)
    assert torch.equal(a.input_ids, b.input_ids) and torch.equal(a.pixel_values, b.pixel_values)
