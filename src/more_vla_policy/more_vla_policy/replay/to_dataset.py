"""Convert labelled bags into training shards (more_common.dataset): one episode per EpisodeStatus episode.

Each step is (the image the command was decided on, the recorded command); instruction, task, success and
terminated come from the episode's final EpisodeStatus. Episodes that never ended in the bag (no final status)
are left out and counted. A bag without EpisodeStatus becomes one episode only when the caller labels it
(`success` and `task`). Images are resized to one size (`image_size`, default the first image's) because a
shard stacks them.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from more_common.dataset import DatasetWriter, Episode
from more_vla_policy.policy_core import image_to_rgb
from more_vla_policy.replay.samples import Sample


def _resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == size:
        return rgb
    from PIL import Image

    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR))


def episodes_from_samples(
    samples: Iterable[Sample],
    outcomes: dict[int, dict],
    source: str,
    expert: bool = False,
    image_size: tuple[int, int] | None = None,
    success: bool | None = None,
    task: str = "",
) -> tuple[list[Episode], dict[str, Any]]:
    groups: dict[int | None, list[Sample]] = {}
    for s in samples:
        if s.command is not None:
            groups.setdefault(s.episode, []).append(s)
    episodes: list[Episode] = []
    unlabelled = 0
    for key in sorted(groups, key=lambda k: -1 if k is None else k):
        steps = groups[key]
        if key is None or key not in outcomes:
            if success is None or outcomes:
                unlabelled += 1
                continue
            outcome = {"success": success, "terminated": True, "task": task, "instruction": ""}
        else:
            outcome = outcomes[key]
        frames = [image_to_rgb(s.image) for s in steps]
        size = image_size or frames[0].shape[:2]
        image_size = size
        instruction = outcome["instruction"] or steps[0].instruction
        episodes.append(
            Episode(
                images=np.stack([_resize(f, size) for f in frames]),
                actions=np.stack([s.command for s in steps]).astype(np.float32),
                instruction=instruction,
                task=task or outcome["task"],
                success=outcome["success"],
                expert=expert,
                episode_id=f"{source}-{key if key is not None else 0}",
                terminated=outcome["terminated"],
                meta={"source": "rosbag", "bag": source},
            )
        )
    summary = {
        "episodes": len(episodes),
        "steps": int(sum(e.length for e in episodes)),
        "successes": int(sum(e.success for e in episodes)),
        "unlabelled_episodes_skipped": unlabelled,
    }
    return episodes, summary


def write_dataset(episodes: list[Episode], out_dir: str | Path, meta: dict[str, Any], overwrite: bool = False) -> Path:
    """The episodes as a dataset in `out_dir`; a dataset there is replaced only with `overwrite` (and only once
    the new one is complete)."""
    with DatasetWriter(out_dir, meta=meta, overwrite=overwrite) as writer:
        for ep in episodes:
            writer.add(ep)
    return Path(out_dir)
