"""Gymnasium ids of the simulator: one versioned id per task plus one that draws a task per episode."""

from __future__ import annotations

ENV_IDS: dict[str, str] = {
    "distinguish": "MoRE/Distinguish-v0",
    "go_to": "MoRE/GoTo-v0",
    "go_through": "MoRE/GoThrough-v0",
    "go_avoid": "MoRE/GoAvoid-v0",
    "crawl": "MoRE/Crawl-v0",
    "unload": "MoRE/Unload-v0",
    "all": "MoRE/SixTasks-v0",
}


def register_envs() -> None:
    """Register every id once (idempotent). gymnasium.make(id, split="ood", image_height=128, ...) works."""
    import gymnasium as gym

    for task, env_id in ENV_IDS.items():
        if env_id not in gym.registry:
            gym.register(
                id=env_id,
                entry_point="more_sim.env:MoreSimEnv",
                kwargs={"task": task},
                max_episode_steps=None,  # the env applies config.max_episode_steps itself (env.py, Episode end)
            )
