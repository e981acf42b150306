"""Test helpers: a tiny synthetic episode dataset in the project's shard format and a tiny TrainConfig."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from more_common.action_contract import STAND_COMMAND
from more_common.dataset import DatasetWriter, Episode
from more_training.config import TrainConfig, load_config

IMAGE_SHAPE = (32, 48, 3)


def synthetic_episode(rng: np.random.Generator, index: int, expert: bool, length: int = 6) -> Episode:
    """A red or blue square left or right; the expert turns towards it (wz sign) and drives forward."""
    side = int(rng.integers(2))
    colour = int(rng.integers(2))
    images = np.zeros((length, *IMAGE_SHAPE), np.uint8)
    images[..., 1] = 60
    x0 = 4 if side == 0 else 28
    images[:, 8:24, x0 : x0 + 16, 0 if colour == 0 else 2] = 230
    actions = np.tile(np.asarray(STAND_COMMAND, np.float32), (length, 1))
    wz = 0.6 if side == 0 else -0.6
    actions[:, 0] = 0.5
    actions[:, 2] = wz if expert else float(rng.uniform(-1, 1))
    actions[-1, 11] = 1.0
    return Episode(
        images=images,
        actions=actions,
        instruction=f"go to the {'red' if colour == 0 else 'blue'} ball",
        task="go_to",
        success=expert,
        expert=expert,
        episode_id=f"ep{index:04d}",
    )


def make_dataset(root: Path, episodes: int = 16, per_shard: int = 4, seed: int = 0, suboptimal: float = 0.25) -> Path:
    rng = np.random.default_rng(seed)
    with DatasetWriter(root, episodes_per_shard=per_shard, compress=False) as w:
        for i in range(episodes):
            w.add(synthetic_episode(rng, i, expert=rng.random() >= suboptimal))
    return root


TINY_MODEL: dict[str, Any] = {
    "tiny": {"hidden_size": 32, "intermediate_size": 64, "num_layers": 1, "num_heads": 2, "patch_size": 16},
    "image_height": 32,
    "image_width": 48,
    "num_experts": 4,
    "top_k": 2,
    "rank": 4,
    "alpha": 8.0,
    "attn_rank": 4,
    "dropout": 0.0,
}


def tiny_overrides(data: Path, out: Path, **extra: Any) -> list[str]:
    """key=value overrides for a tiny, fast, deterministic CPU run."""
    import json

    items = {
        "data.train": json.dumps([str(data)]),
        "data.shuffle_buffer": 32,
        "run.out_dir": str(out),
        "run.threads": 1,
        "run.progress": False,
        "run.tensorboard": False,
        "run.log_every": 1,
        "optim.batch_size": 8,
        "optim.warmup_steps": 2,
        "optim.max_steps": 10,
        "optim.lr": 3e-3,
        "init.train_backbone": True,
    }
    items.update({f"model.{k}": json.dumps(v) for k, v in TINY_MODEL.items()})
    items.update({k.replace("__", "."): v for k, v in extra.items()})  # the caller's values win
    return [f"{k}={v}" for k, v in items.items()]


def tiny_config(data: Path, out: Path, **extra: Any) -> TrainConfig:
    return load_config(None, tiny_overrides(data, out, **extra))
