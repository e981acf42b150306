"""Checkpoint resolution: explicit path, $MORE_CHECKPOINT, the demo checkpoint; missing ones fail in one line."""

import pytest

from more_common.errors import ConfigurationError
from more_vla_policy import checkpoint_path


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.delenv("MORE_CHECKPOINT", raising=False)
    assert checkpoint_path.resolve_checkpoint("") == checkpoint_path.demo_checkpoint_dir()
    assert checkpoint_path.demo_checkpoint_dir() == checkpoint_path.repo_root() / "models" / "demo"
    monkeypatch.setenv("MORE_CHECKPOINT", str(tmp_path / "env"))
    assert checkpoint_path.resolve_checkpoint("") == tmp_path / "env"
    assert checkpoint_path.resolve_checkpoint(str(tmp_path / "explicit")) == tmp_path / "explicit"


def test_missing_demo_checkpoint_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("MORE_CHECKPOINT", raising=False)
    monkeypatch.setattr(checkpoint_path, "demo_checkpoint_dir", lambda: tmp_path / "models" / "demo")
    with pytest.raises(ConfigurationError, match="the demo checkpoint is missing"):
        checkpoint_path.load_checkpoint_policy("")
    with pytest.raises(ConfigurationError, match="pass an existing checkpoint directory"):
        checkpoint_path.load_checkpoint_policy(str(tmp_path / "nope"))


def test_unloadable_checkpoint_is_a_configuration_error(tmp_path):
    (tmp_path / "broken").mkdir()
    with pytest.raises(ConfigurationError, match="cannot load checkpoint"):
        checkpoint_path.load_checkpoint_policy(str(tmp_path / "broken"))


def test_a_tiny_checkpoint_loads(tmp_path):
    from more_model.testing import make_tiny_checkpoint

    policy = checkpoint_path.load_checkpoint_policy(str(make_tiny_checkpoint(tmp_path / "ok", seed=0)))
    assert policy.image_size == (32, 48)
