"""The simulator renders at the policy's input size unless the parameter file gives one (more_bringup.sim_camera),
in `more-stack` and in both sim launch files: a model trained on 96 x 144 renders must not see a 96 x 96 render
stretched to 3:2 or a 64 x 96 one upsampled."""

import argparse
import json

import pytest

from more_bringup.runner import build_parser, effective_params, load_modules
from more_bringup.sim_camera import policy_camera_size
from more_model.checkpoint_meta import CheckpointError, input_size
from more_vla_policy.checkpoint_path import repo_root


def write_meta(directory, height, width):
    """A checkpoint JSON written by hand: only what `read_meta` checks and the model's image size."""
    directory.mkdir(parents=True, exist_ok=True)
    meta = {"format": "more-vla-checkpoint", "version": 1, "model": {"image_height": height, "image_width": width},
            "action_tokenizer": {}, "backbone_dir": None}  # fmt: skip
    (directory / "more_checkpoint.json").write_text(json.dumps(meta))
    return directory


def demo_size():
    model = json.loads((repo_root() / "models" / "demo" / "more_checkpoint.json").read_text())["model"]
    return model["image_height"], model["image_width"]


def test_input_size_reads_the_json_and_names_a_bad_one(tmp_path):
    assert input_size(write_meta(tmp_path / "a", 40, 72)) == (40, 72)
    with pytest.raises(CheckpointError, match=r"model.image_height/width \(0, 72\) are not sizes"):
        input_size(write_meta(tmp_path / "b", 0, 72))
    with pytest.raises(CheckpointError, match="is not a MoRE checkpoint"):
        input_size(tmp_path / "none")


def test_sizes_the_file_leaves_out_come_from_the_checkpoint(tmp_path):
    ckpt = str(write_meta(tmp_path / "c", 40, 72))
    assert policy_camera_size({"policy_node": {"checkpoint": ckpt}}) == {"image_height": 40, "image_width": 72}
    one = {"policy_node": {"checkpoint": ckpt}, "more_sim": {"image_width": 96}}
    assert policy_camera_size(one) == {"image_height": 40}  # the file's width stays
    both = {"policy_node": {"checkpoint": ckpt}, "more_sim": {"image_width": 96, "image_height": 96}}
    assert policy_camera_size(both) == {}
    # unreadable: nothing filled in; the policy node stops the stack naming it before the simulator starts
    assert policy_camera_size({"policy_node": {"checkpoint": str(tmp_path / "missing")}}) == {}
    # no checkpoint given: the demo checkpoint's
    assert policy_camera_size({}) == dict(zip(("image_height", "image_width"), demo_size(), strict=True))


def params(argv: list[str]) -> dict:
    args: argparse.Namespace = build_parser().parse_args(argv)
    return effective_params(args, load_modules("sim_go2" if "go2" in argv else "sim", record=False))


@pytest.mark.parametrize("embodiment", ["kinematic", "go2"])
def test_more_stack_sim_renders_at_the_checkpoints_size_unless_set(embodiment, tmp_path):
    ckpt = write_meta(tmp_path / "c", 40, 72)
    base = ["sim", "--embodiment", embodiment, "--time-scale", "1"]
    world = params(base)["more_sim"]
    assert (world["image_height"], world["image_width"]) == demo_size() == (96, 144)
    world = params([*base, "--checkpoint", str(ckpt)])["more_sim"]
    assert (world["image_height"], world["image_width"]) == (40, 72)
    world = params([*base, "--checkpoint", str(ckpt), "--set", "more_sim.image_width=64"])["more_sim"]
    assert (world["image_height"], world["image_width"]) == (40, 64)
