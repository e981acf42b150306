"""Checkpoint resolution: explicit path, $MORE_CHECKPOINT, the demo checkpoint; missing ones fail in one line."""

import pytest

from more_common.node_main import ConfigurationError
from more_vla_policy import checkpoints, paths


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MORE_CHECKPOINT", raising=False)
    assert checkpoints.resolve_checkpoint("") == paths.demo_checkpoint_dir()
    assert paths.demo_checkpoint_dir() == paths.repo_root() / "models" / "demo"
    monkeypatch.setenv("MORE_CHECKPOINT", str(tmp_path / "env"))
    assert checkpoints.resolve_checkpoint("") == tmp_path / "env"
    assert checkpoints.resolve_checkpoint(str(tmp_path / "explicit")) == tmp_path / "explicit"


def test_missing_demo_checkpoint_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("MORE_CHECKPOINT", raising=False)
    monkeypatch.setattr(checkpoints, "demo_checkpoint_dir", lambda: tmp_path / "models" / "demo")
    with pytest.raises(ConfigurationError, match="the demo checkpoint is missing"):
        checkpoints.load_checkpoint_policy("")
    with pytest.raises(ConfigurationError, match="pass an existing checkpoint directory"):
        checkpoints.load_checkpoint_policy(str(tmp_path / "nope"))


def test_unloadable_checkpoint_is_a_configuration_error(tmp_path):
    (tmp_path / "broken").mkdir()
    with pytest.raises(ConfigurationError, match="cannot load checkpoint"):
        checkpoints.load_checkpoint_policy(str(tmp_path / "broken"))


def test_a_tiny_checkpoint_loads(tmp_path):
    from more_vla_policy.model.testing import make_tiny_checkpoint

    policy = checkpoints.load_checkpoint_policy(str(make_tiny_checkpoint(tmp_path / "ok", seed=0)))
    assert policy.image_size == (32, 48)
