"""`more-train label-reasoning`: a reasoning checkpoint's own text stored as labels (reasoning_labels.py), read
back by the training stream before computed ones, and fine-tuning on data without privileged state."""

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import IMAGE_SHAPE, tiny_config

from more_common.action_contract import STAND_COMMAND
from more_common.dataset import DatasetError, DatasetWriter, Episode, EpisodeDataset
from more_model.checkpoint import load_checkpoint
from more_model.processor import MAX_REASONING_TOKENS, resize_image
from more_model.testing import make_tiny_checkpoint
from more_model.testing import tiny_config as tiny_model
from more_training.cli import main
from more_training.config import DataConfig
from more_training.data import TransitionStream
from more_training.reasoning_labels import REASONING_EXTRA, label_dataset, pack_reasoning, unpack_reasoning
from more_training.trainer import train


def _teleop_episode(index: int, length: int) -> Episode:
    """An episode as `more-replay --to-dataset` writes one: images, actions, no privileged state or scenario."""
    rng = np.random.default_rng(index)
    actions = np.tile(np.asarray(STAND_COMMAND, np.float32), (length, 1))
    actions[:, 0] = 0.3
    actions[-1, 11] = 1.0
    return Episode(
        images=rng.integers(0, 255, (length, *IMAGE_SHAPE), dtype=np.uint8), actions=actions,
        instruction="go to the red ball", task="go_to", success=True, expert=True, episode_id=f"teleop{index}",
    )  # fmt: skip


def _teleop(root: Path, episodes: int = 3) -> Path:
    with DatasetWriter(root, episodes_per_shard=2, compress=False, meta={"source": "bags/run1"}) as w:
        for i in range(episodes):
            w.add(_teleop_episode(i, 4 + i))
    return root


def _digest(root: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(root.iterdir()) if p.is_file())).hexdigest()


@pytest.fixture(scope="module")
def reasoning_ckpt(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "r", seed=1, config=tiny_model(reasoning="scene"))


def test_pack_and_unpack_by_hand():
    # A is alphabet index 0, "2" index 28 (26 letters first), "." index 36; each stored as index + 1, 0 pads
    rows = pack_reasoning(["A2.", "..", ""])
    assert rows.shape == (3, MAX_REASONING_TOKENS) and rows.dtype == np.float32
    assert rows[0, :4].tolist() == [1, 29, 37, 0] and rows[1, :3].tolist() == [37, 37, 0] and not rows[2].any()
    assert unpack_reasoning(rows) == ["A2.", "..", ""]
    with pytest.raises(ValueError, match="at most 16 characters"):
        pack_reasoning(["a"])
    for bad, why in [
        (np.pad([[1.5]], ((0, 0), (0, 15))), "step 0 is not a packed text"),
        (np.pad([[1, 38]], ((0, 0), (0, 14))), "step 0 is not a packed text"),  # past the alphabet
        (np.pad([[1, 0, 2]], ((0, 0), (0, 13))), "step 0 is not a packed text"),  # a character after padding
        (np.zeros((2, 8)), r"must be \[T, 16\]"),
    ]:
        with pytest.raises(DatasetError, match=why):
            unpack_reasoning(np.asarray(bad, np.float32), "ep")


def test_the_copy_holds_what_the_checkpoint_writes_step_by_step(tmp_path, reasoning_ckpt):
    source = _teleop(tmp_path / "teleop")
    before = _digest(source)
    policy = load_checkpoint(reasoning_ckpt).policy.eval()
    summary = label_dataset(policy, source, tmp_path / "labelled", str(reasoning_ckpt), batch_size=3)
    assert _digest(source) == before  # the source is never rewritten
    copy = EpisodeDataset(tmp_path / "labelled")
    assert copy.meta["source"] == "bags/run1" and copy.meta["reasoning_labels"]["checkpoint"] == str(reasoning_ckpt)
    assert summary["episodes"] == 3 and summary["steps"] == 4 + 5 + 6
    for original, labelled in zip(EpisodeDataset(source).iter_episodes(), copy.iter_episodes(), strict=True):
        assert np.array_equal(original.images, labelled.images)
        assert np.array_equal(original.actions, labelled.actions)
        # reference: the policy writing each step alone (batch of one), not the batched labeller
        prompts = [policy.encoder.encode([resize_image(img, policy.image_size)], [original.instruction])
                   for img in original.images]  # fmt: skip
        alone = [policy.write_reasoning(prompt)[0] for prompt in prompts]
        assert unpack_reasoning(labelled.extras[REASONING_EXTRA]) == alone
        assert all(text.count(".") == 2 or len(text) == MAX_REASONING_TOKENS for text in alone)


def test_stored_labels_come_before_computed_ones(tmp_path):
    source = _teleop(tmp_path / "t", episodes=1)
    ep = next(EpisodeDataset(source).iter_episodes())
    texts = ["B3.B3.", "..", "A1..", "."]
    stored = Episode(**{**ep.__dict__, "extras": {REASONING_EXTRA: pack_reasoning(texts)}})
    root = tmp_path / "stored"
    with DatasetWriter(root, compress=False, meta={"config": {"image_height": 32, "image_width": 48}}) as w:
        w.add(stored)
    stream = TransitionStream(DataConfig(train=(str(root),), shuffle_buffer=2), IMAGE_SHAPE[:2], 0, reasoning=True)
    got = {t.step: (t.reasoning, t.next_reasoning) for _, t in itertools.islice(stream.transitions(), 4)}
    assert got == {0: ("B3.B3.", ".."), 1: ("..", "A1.."), 2: ("A1..", "."), 3: (".", ".")}


def test_fine_tuning_a_reasoning_model_on_its_own_labels(tmp_path, reasoning_ckpt):
    source = _teleop(tmp_path / "teleop")
    cfg = tiny_config(source, tmp_path / "refused", model__reasoning="scene", init__init_from=str(reasoning_ckpt))
    with pytest.raises(DatasetError, match="label-reasoning"):
        train(cfg)  # no labels and no state to compute them from: named, with the way out
    assert main(["label-reasoning", "--checkpoint", str(reasoning_ckpt), "--data", str(source),
                 "--out", str(tmp_path / "labelled")]) == 0  # fmt: skip
    out = tmp_path / "run"
    train(tiny_config(
        tmp_path / "labelled", out, model__reasoning="scene", init__init_from=str(reasoning_ckpt),
        optim__max_steps=2, optim__warmup_steps=0, optim__batch_size=4, data__shuffle_buffer=4, run__ckpt_every=2,
        run__log_every=1,
    ))  # fmt: skip
    first = json.loads((out / "metrics.jsonl").read_text().splitlines()[0])
    # teacher-forced on its own greedy text, the untouched model predicts every character of it
    assert first["reasoning_acc"] == 1.0


def test_cli_refuses_bad_input_in_one_line(tmp_path, reasoning_ckpt, capsys):
    source = _teleop(tmp_path / "teleop", episodes=1)
    plain = make_tiny_checkpoint(tmp_path / "plain", seed=0)
    cases = [
        (["--checkpoint", str(tmp_path / "nope"), "--data", str(source)], "nope"),
        (["--checkpoint", str(plain), "--data", str(source)], "does not reason"),
        (["--checkpoint", str(reasoning_ckpt), "--data", str(tmp_path / "none")], "index.json not found"),
        (["--checkpoint", str(reasoning_ckpt), "--data", str(source), "--batch", "0"], "--batch must be >= 1"),
    ]
    for args, why in cases:
        assert main(["label-reasoning", *args, "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip()
        assert why in err and "\n" not in err and "Traceback" not in err
        assert not (tmp_path / "out").exists()  # nothing half written
    assert main(["label-reasoning", "--checkpoint", str(reasoning_ckpt), "--data", str(source),
                 "--out", str(source)]) == 2  # fmt: skip
    assert "never rewritten" in capsys.readouterr().err
    args = ["label-reasoning", "--checkpoint", str(reasoning_ckpt), "--data", str(source), "--out", str(tmp_path / "o")]
    assert main(args) == 0 and main(args) == 2  # an existing copy is kept unless --overwrite
    assert "already holds a dataset" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["episodes"] == 1
