"""TorchScript runner: run-directory layout, shape checks, forward equals the reference computation."""

import numpy as np
import pytest
import torch
from wtw_helpers import make_run, reference_action

from wtw_controller.policy import PolicyLoadError, WtwPolicy


def test_forward_matches_reference(tmp_path):
    weights = make_run(tmp_path, seed=3)
    policy = WtwPolicy(tmp_path)
    assert policy.latent_dim == 2
    h = np.random.default_rng(0).standard_normal(2100)
    np.testing.assert_allclose(policy(h), reference_action(h, *weights), rtol=1e-4, atol=1e-5)


def test_checkpoints_folder_itself_is_accepted(tmp_path):
    make_run(tmp_path)
    assert WtwPolicy(tmp_path / "checkpoints").latent_dim == 2


def test_missing_files_named(tmp_path):
    with pytest.raises(PolicyLoadError, match=r"body_latest\.jit"):
        WtwPolicy(tmp_path)


def test_wrong_output_shape_rejected(tmp_path):
    make_run(tmp_path)
    torch.jit.script(torch.nn.Linear(2102, 7)).save(str(tmp_path / "checkpoints" / "body_latest.jit"))
    with pytest.raises(PolicyLoadError, match=r"\[1, 12\]"):
        WtwPolicy(tmp_path)


def test_wrong_input_size_rejected(tmp_path):
    make_run(tmp_path)
    torch.jit.script(torch.nn.Linear(70, 2)).save(str(tmp_path / "checkpoints" / "adaptation_module_latest.jit"))
    with pytest.raises(PolicyLoadError, match="2100"):
        WtwPolicy(tmp_path)
