"""`more-train average`: the weighted mean of checkpoints, checked against the mean computed here from the raw
safetensors files; bad input is one line, exit 2, and leaves the output directory as it was."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from more_model.checkpoint import load_policy, save_checkpoint
from more_model.testing import make_tiny_checkpoint, tiny_config
from more_training.average import average_weights, parse_weights
from more_training.cli import main


def _raw(directory):
    """Every tensor a tiny checkpoint holds, by policy state_dict name, read straight from its files."""
    out = load_file(str(directory / "adapters.safetensors"))
    out.update({f"backbone.{k}": t for k, t in load_file(str(directory / "backbone" / "model.safetensors")).items()})
    return out


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    root = tmp_path_factory.mktemp("soup")
    return make_tiny_checkpoint(root / "a", seed=0), make_tiny_checkpoint(root / "b", seed=1)


def test_the_mean_is_the_weighted_sum_of_the_files(two, tmp_path, capsys):
    a, b = _raw(two[0]), _raw(two[1])
    assert any(not torch.equal(a[k], b[k]) for k in a), "the two seeds must differ for the test to mean anything"
    for weights, (wa, wb) in ((None, (0.5, 0.5)), ("1,3", (0.25, 0.75))):
        out = tmp_path / f"mean_{weights}"
        argv = ["average", "--out", str(out), str(two[0]), str(two[1]), *(["--weights", weights] if weights else [])]
        assert main(argv) == 0
        mean = _raw(out)
        assert set(mean) == set(a)
        for k in a:
            expected = (wa * a[k].double() + wb * b[k].double()).float()
            assert torch.equal(mean[k], expected), k
        sources = json.loads((out / "more_checkpoint.json").read_text())["extra"]["averaged_from"]
        assert [s["weight"] for s in sources] == [wa, wb]
        assert sources[0]["checkpoint"] == str(two[0])
    assert capsys.readouterr().out.strip().endswith("mean_1,3")


def test_weights_one_and_zero_give_the_first_checkpoint_bit_for_bit(two, tmp_path):
    out = tmp_path / "first"
    assert main(["average", "--out", str(out), "--weights", "2,0", str(two[0]), str(two[1])]) == 0
    first, mean = _raw(two[0]), _raw(out)
    assert all(torch.equal(first[k], mean[k]) for k in first)
    image = np.random.default_rng(0).integers(0, 256, (96, 144, 3), dtype=np.uint8)
    bins = [load_policy(d).decode([image], ["go to the red ball"]).bins for d in (two[0], out)]
    assert np.array_equal(bins[0], bins[1])


def test_only_the_adapters_of_checkpoints_on_a_frozen_backbone_are_averaged(tmp_path):
    from more_model.checkpoint import load_checkpoint
    from more_model.random_fuyu import random_fuyu_backbone, random_fuyu_policy
    from more_model.testing import randomize_adapters

    text = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, vocab_size=1024)
    dirs = []
    for seed in (0, 1):
        policy = randomize_adapters(random_fuyu_policy("cpu", torch.float32, seed=0, **text), seed=seed)
        dirs.append(save_checkpoint(tmp_path / str(seed), policy))
    mean = average_weights(dirs, [0.5, 0.5])
    adapters = [load_file(str(d / "adapters.safetensors")) for d in dirs]
    assert set(mean) == set(adapters[0]) and not (tmp_path / "0" / "backbone").exists()
    for k, t in mean.items():
        assert torch.equal(t, ((adapters[0][k].double() + adapters[1][k].double()) / 2).float()), k
    # the whole command, without loading any backbone; the result loads on the same backbone with the mean in it
    assert main(["average", "--out", str(tmp_path / "soup"), *map(str, dirs)]) == 0
    soup = load_checkpoint(tmp_path / "soup", backbone=random_fuyu_backbone("cpu", torch.float32, seed=0, **text))
    loaded = soup.policy.adapter_state_dict()
    assert set(loaded) == set(mean) and all(torch.equal(loaded[k], mean[k]) for k in mean)


def _fails(argv, capsys, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("more-train average: ") and needle in err, err
    assert "Traceback" not in err


def test_bad_input_is_one_line_and_leaves_the_output_as_it_was(two, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    base = ["average", "--out", str(out)]
    _fails([*base, str(two[0])], capsys, "at least two checkpoints")
    _fails([*base, "--weights", "1,x", str(two[0]), str(two[1])], capsys, "not comma-separated numbers")
    _fails([*base, "--weights", "1", str(two[0]), str(two[1])], capsys, "1 weights for 2 checkpoints")
    _fails([*base, "--weights=-1,2", str(two[0]), str(two[1])], capsys, "must be finite, >= 0")
    _fails([*base, "--weights", "0,0", str(two[0]), str(two[1])], capsys, "not all 0")
    _fails([*base, "--weights", "1e308,1e308", str(two[0]), str(two[1])], capsys, "with a finite sum")
    _fails([*base, str(two[0]), str(tmp_path / "nowhere")], capsys, "not a MoRE checkpoint")
    other = make_tiny_checkpoint(tmp_path / "rank2", config=tiny_config(rank=2))
    _fails([*base, str(two[0]), str(other)], capsys, "its model.rank differs")
    broken = tmp_path / "broken"
    make_tiny_checkpoint(broken, seed=2)
    (broken / "adapters.safetensors").write_bytes(b"\x00" * 16)
    _fails([*base, str(two[0]), str(broken)], capsys, "unreadable safetensors")
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and not list(tmp_path.glob(".out.tmp"))
    # an output that is an input, or holds one, would delete what was read
    for bad_out in (two[1], two[1].parent):
        _fails(["average", "--out", str(bad_out), str(two[0]), str(two[1])], capsys, "would replace its input")
    assert (two[1] / "adapters.safetensors").is_file() and (two[0] / "adapters.safetensors").is_file()


def test_parse_weights_normalises():
    assert parse_weights(None, 4) == [0.25] * 4
    assert parse_weights("1,1,2", 3) == [0.25, 0.25, 0.5]
    with pytest.raises(ValueError, match="'nan,1'"):
        parse_weights("nan,1", 2)
