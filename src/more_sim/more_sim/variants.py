"""Episode variants for training data that forces the instruction: a renamed target, a wider start heading.

A `Job` may ask for
- `target`: the scene's thing of that name becomes the target and the instruction names it (same scene, same
  start; `generate(name_each=True)` records each nameable thing of a distinguish/go_to scene once), and
- `start="in_view"`: the start heading is drawn uniformly from the headings at which the scene's own target is
  wholly inside the camera's horizontal field of view (so it appears anywhere across the image, rarely in the
  centre, instead of within +-0.25 rad of straight ahead). The heading depends on the scene and its seed only,
  not on `target`, so the namings of one scene share their first image.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from more_sim.config import SimConfig
from more_sim.geometry import wrap_angle
from more_sim.naming import fully_in_view, renamed
from more_sim.tasks import Scenario

START_MODES: tuple[str, ...] = ("split", "in_view")


def in_view_headings(scenario: Scenario, config: SimConfig, samples: int = 721) -> tuple[float, float]:
    """(lowest, highest) start heading [rad] at which the target is wholly in view (a contiguous interval)."""
    t = scenario.target_thing
    x, y, _ = scenario.start
    towards = math.atan2(t.y - y, t.x - x)
    grid = np.linspace(-math.pi / 2, math.pi / 2, samples)
    offsets = [u for u in grid if fully_in_view(t, x, y, towards + u, config)]
    if not offsets:
        return towards, towards  # too close or too wide to fit: face it
    return towards + min(offsets), towards + max(offsets)


def start_heading(scenario: Scenario, config: SimConfig, seed: int) -> float:
    lo, hi = in_view_headings(scenario, config)
    return wrap_angle(float(np.random.default_rng([seed, 0x5EED]).uniform(lo, hi)))


def variant_scenario(scenario: Scenario, job_target: str, start: str, seed: int, config: SimConfig) -> Scenario:
    """The sampled scene with the job's variant applied (the same object when there is nothing to change)."""
    if start not in START_MODES:
        raise ValueError(f"start must be one of {list(START_MODES)}, got {start!r}")
    out = scenario
    if start == "in_view":
        x, y, _ = scenario.start
        out = replace(out, start=(x, y, start_heading(scenario, config, seed)))
    if job_target and job_target != scenario.target:
        out = renamed(out, out.thing(job_target))
    return out
