"""Checkpoints: identical outputs after save/load, target restored, tiny backbone carried, errors named."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from more_common.action_contract import ActionSpec
from more_model import load_policy
from more_model.checkpoint import (
    ADAPTERS_FILE,
    META_FILE,
    TARGET_FILE,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from more_model.target import TargetNetwork
from more_model.testing import make_tiny_checkpoint, make_tiny_policy


@torch.no_grad()
def test_round_trip_gives_identical_outputs(tmp_path, images, instructions):
    spec = ActionSpec.from_data(np.random.default_rng(0).uniform(-0.3, 0.3, (50, 12)))
    policy = make_tiny_policy(seed=6, action_spec=spec)
    target = TargetNetwork.from_policy(policy)
    with torch.no_grad():
        for _name, p in policy.named_adapter_parameters():
            p.add_(0.01)  # online != target
    save_checkpoint(tmp_path, policy, target=target, extra={"step": 12, "note": "resume"})
    loaded = load_checkpoint(tmp_path)
    again = loaded.policy
    assert not again.training and loaded.extra == {"step": 12, "note": "resume"}
    assert again.action_spec == spec and again.config == policy.config
    a, b = policy.decode(images, instructions), again.decode(images, instructions)
    np.testing.assert_array_equal(a.bins, b.bins)
    np.testing.assert_array_equal(a.q_values, b.q_values)
    np.testing.assert_array_equal(a.actions, b.actions)
    batch = policy.encode(images, instructions, bins=a.bins)
    torch.testing.assert_close(again.slot_logits(batch), policy.slot_logits(batch), rtol=0, atol=0)
    torch.testing.assert_close(
        loaded.target.slot_logits(again, batch), target.slot_logits(policy, batch), rtol=0, atol=0
    )


def test_files_and_tiny_backbone(tmp_path):
    path = make_tiny_checkpoint(tmp_path / "ckpt", seed=1)
    names = {p.name for p in path.iterdir()}
    assert {META_FILE, ADAPTERS_FILE, TARGET_FILE, "backbone"} <= names
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in (path / "backbone").iterdir()}
    meta = json.loads((path / META_FILE).read_text())
    assert meta["model"]["backbone"] == "tiny" and len(meta["action_tokenizer"]["bin_token_ids"]) == 256
    assert meta["tokenizer"]["image_token_id"] == 3 and meta["tokenizer"]["vocab_size"] > 512
    policy = load_policy(path)
    assert not policy.training and policy.image_size == (32, 48)
    # the same seed gives the same checkpoint, another seed another one
    same = load_policy(make_tiny_checkpoint(tmp_path / "same", seed=1))
    other = load_policy(make_tiny_checkpoint(tmp_path / "other", seed=2))
    img = [np.full((32, 48, 3), 100, np.uint8)]
    assert np.array_equal(policy.decode(img, ["go"]).q_values, same.decode(img, ["go"]).q_values)
    assert not np.array_equal(policy.decode(img, ["go"]).q_values, other.decode(img, ["go"]).q_values)


def test_full_mode_training_state_is_saved_with_the_backbone(tmp_path, images, instructions):
    policy = make_tiny_policy(seed=7)
    policy.set_trainable("full")
    with torch.no_grad():
        policy.backbone.model.language_model.layers[0].mlp.dense_h_to_4h.weight.mul_(2.0)  # "trained" backbone
    save_checkpoint(tmp_path, policy, target=TargetNetwork.from_policy(policy))
    loaded = load_checkpoint(tmp_path)
    assert loaded.policy.train_mode == "full"
    assert loaded.target.num_params() == sum(p.numel() for p in loaded.policy.parameters())
    a, b = policy.decode(images, instructions), loaded.policy.decode(images, instructions)
    np.testing.assert_array_equal(a.q_values, b.q_values)


def test_saving_without_target_removes_a_stale_one(tmp_path):
    policy = make_tiny_policy(seed=8)
    save_checkpoint(tmp_path, policy, target=TargetNetwork.from_policy(policy))
    save_checkpoint(tmp_path, policy)
    assert not (tmp_path / TARGET_FILE).exists()
    assert load_checkpoint(tmp_path).target is None


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(CheckpointError, match="not a MoRE checkpoint"):
        load_policy(tmp_path)
    path = make_tiny_checkpoint(tmp_path / "c")
    meta = json.loads((path / META_FILE).read_text())
    (path / META_FILE).write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(CheckpointError, match="version 99"):
        load_policy(path)
    (path / META_FILE).write_text(json.dumps({**meta, "tokenizer": {**meta["tokenizer"], "image_token_id": 4}}))
    with pytest.raises(CheckpointError, match="not the saved one"):
        load_policy(path)
    (path / META_FILE).write_text(json.dumps({**meta, "model": {**meta["model"], "rank": 5}}))
    with pytest.raises(CheckpointError, match="shape"):
        load_policy(path)
    (path / META_FILE).write_text(json.dumps({**meta, "model": {**meta["model"], "attn_rank": 0}}))
    with pytest.raises(CheckpointError, match="unexpected"):
        load_policy(path)
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "d", make_tiny_policy(), extra={"bad": object()})


# models/demo, the committed demo policy, decodes three fixed inputs to these check values (and writes this
# reasoning first), recorded with the code of 2026-12-02 (R: the scene-reasoning demo D2 fine-tuned for the
# controller's posture, interpolated back toward D2 and given a rehearsal round,
# training/experiments/2026-12-02-go2-posture). The demo has 6 action slots (vx, vy, wz, body height, pitch,
# terminate): the 6 dims its slots leave to the stand command decode to bin -1 and Q NaN. Retraining the demo
# changes them: re-record the values then.
DEMO = Path(__file__).resolve().parents[3] / "models" / "demo"
DEMO_ADAPTERS_SHA256 = "ed07003039addffb40ab64f9250d956945214a96dbdfda8f9345316e37f63854"
DEMO_BINS = [
    [9, 10, 17, -1, -1, -1, -1, 1, 0, -1, -1, 0],
    [9, 10, 17, -1, -1, -1, -1, 1, 0, -1, -1, 0],
    [0, 0, 0, -1, -1, -1, -1, 0, 0, -1, -1, 0],
]
DEMO_REASONING = ("G4.G4.", "V4A8..", "..")  # noise images: one object, two objects; the red patch: nothing
_ = float("nan")
DEMO_Q = [
    [0.943831, 0.999871, 0.999834, _, _, _, _, 0.993075, 0.995151, _, _, 0.991347],
    [0.88784, 0.998787, 0.973568, _, _, _, _, 0.896085, 0.999175, _, _, 0.999564],
    [0.969847, 0.955849, 0.995775, _, _, _, _, 0.99443, 0.993871, _, _, 0.842546],
]  # fmt: skip


def _demo_inputs():
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (64, 96, 3), dtype=np.uint8) for _ in range(2)]
    red_left = np.zeros((64, 96, 3), np.uint8)
    red_left[16:48, 8:40, 0] = 230
    return [*images, red_left], ["go to the red ball", "go to the blue ball", "go to the red ball"]


def test_demo_checkpoint_decodes_as_recorded_also_merged():
    import hashlib

    assert (DEMO / META_FILE).is_file(), f"no demo checkpoint at {DEMO}"
    sha = hashlib.sha256((DEMO / ADAPTERS_FILE).read_bytes()).hexdigest()
    assert sha == DEMO_ADAPTERS_SHA256, "models/demo was retrained: re-record DEMO_BINS / DEMO_Q with its decode"
    images, instructions = _demo_inputs()
    policy = load_policy(DEMO)
    out = policy.decode(images, instructions)
    np.testing.assert_array_equal(out.bins, DEMO_BINS)
    np.testing.assert_allclose(out.q_values, DEMO_Q, rtol=0, atol=1e-6)
    assert out.reasoning == DEMO_REASONING
    with torch.no_grad():
        slot_bins = out.bins[:, list(policy.action_tokenizer.slot_dims)]  # contract order -> the decoded slots
        batch = policy.encode(images, instructions, bins=slot_bins, reasoning=out.reasoning)
        logits = policy.slot_logits(batch)
        policy.merge_attention_lora()
        merged_logits = policy.slot_logits(batch)
    # fp32, logits up to ~14: the merged weights only change the rounding order (measured 9e-6)
    torch.testing.assert_close(merged_logits, logits, rtol=1e-5, atol=1e-4)
    merged = policy.decode(images, instructions)
    assert merged.reasoning == DEMO_REASONING
    np.testing.assert_array_equal(merged.bins, DEMO_BINS)
    np.testing.assert_allclose(merged.q_values, DEMO_Q, rtol=0, atol=2e-6)
