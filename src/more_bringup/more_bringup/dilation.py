"""Slow motion for the simulated go2 stack: one time scale applied to every node, so the chain behaves in simulated
time as at full speed while each process gets 1 / scale times longer per cycle.

Why: the walking policy tolerates little loop delay (10 ms already tilts the trunk 0.4 rad at 0.5 m/s,
docs/robot.md). On a machine with fewer cores than busy processes (this project's 2-core build machine runs the
simulator and the bridge at 500 Hz, the controller at 50 Hz, the policy and the runner, with other jobs) the
Python loops stall for tens of ms and the simulated robot falls at real speed. With every rate x scale and every
duration / scale (the simulator's real_time_factor = scale) nothing changes in simulated time but the slack.

Rules (`RULES`): rates are multiplied by the scale, durations divided by it. Staleness timeouts that would damp or
stop the robot (the bridge's target and LowState timeouts, the controller's sensor timeout) are at least FLOOR_S of
wall time in slow motion: a starved process on a loaded machine pauses for up to ~2 s (measured in go2_sim's
walking-chain test); at scale 1 they are exactly the configured ones. The simulator's own durations are in simulated
time already (it owns that clock): only its real_time_factor is set.

`auto_scale()`: 1 on a machine with at least ROBOT_CLASS_CPUS logical CPUs and a 1-minute load average below half
of them (each busy process has a core of its own, as on the robot's computer); otherwise SLOW_MOTION (0.2, the
factor the cross-process walking test needs on the 2-core build machine; docs/robot.md has the loop timings).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

SLOW_MOTION = 0.2
ROBOT_CLASS_CPUS = 8
FLOOR_S = 2.0  # [s] least wall time of a staleness timeout in slow motion


def _rate(value: float, scale: float) -> float:
    return value * scale


def _duration(value: float, scale: float) -> float:
    return value / scale


def _timeout(value: float, scale: float) -> float:
    return value if scale >= 1.0 else max(FLOOR_S, value / scale)


RULES: dict[str, dict[str, Callable[[float, float], float]]] = {
    "policy_node": {"rate_hz": _rate, "image_timeout_s": _duration},
    "wtw_controller": {
        "rate_hz": _rate,
        "command_timeout_s": _duration,
        "sensor_timeout_s": _timeout,
        "state_age_warn_ms": _duration,
    },
    "go2_bridge": {
        "rate_hz": _rate,
        "stand_up_duration_s": _duration,
        "activate_blend_s": _duration,
        "min_damping_s": _duration,
        "target_timeout_s": _timeout,
        "lowstate_timeout_s": _timeout,
    },
}
SIMULATOR = "more_sim"  # takes real_time_factor = scale


def auto_scale(cpus: int | None = None, load: float | None = None) -> float:
    cpus = (os.cpu_count() or 1) if cpus is None else cpus
    load = os.getloadavg()[0] if load is None else load
    return 1.0 if cpus >= ROBOT_CLASS_CPUS and load < cpus / 2 else SLOW_MOTION


def dilate(sections: dict[str, dict[str, Any]], specs: dict[str, dict], scale: float) -> dict[str, dict[str, Any]]:
    """The parameter sections with every timing parameter of RULES scaled (from the file's value, else the node's
    default in `specs`, {node: PARAMS}); the simulator's real_time_factor = scale. Returns a new mapping."""
    if not (math.isfinite(scale) and 0.0 < scale <= 1.0):
        raise ValueError(f"time scale must be in (0, 1], got {scale!r}")
    out = {node: dict(values) for node, values in sections.items()}
    for node, rules in RULES.items():
        if node not in specs:
            continue
        for param, rule in rules.items():
            base = out.get(node, {}).get(param, specs[node][param][0])
            out.setdefault(node, {})[param] = float(rule(float(base), scale))
    out.setdefault(SIMULATOR, {})["real_time_factor"] = float(scale)
    return out
