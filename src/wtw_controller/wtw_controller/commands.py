"""QuadrupedCommand's 12-vector -> walk-these-ways' 15 commands.

The contract's command is made executable by ActionSpec.for_controller with the trained ranges as
bounds (clipped; gait snapped to pronk/trot/bound/pace; terminate to 0/1). Terminate, a missing
command and an invalid (non-finite) one all become the stand command: zero velocity in place. Speeds
with |(vx, vy)| below the dead band become zero, as in training.
"""

from __future__ import annotations

import numpy as np

from more_common.action_contract import (
    DEFAULT_HIGH,
    DEFAULT_LOW,
    INDEX,
    TERMINATE,
    ActionSpec,
    InvalidActionError,
    stand_command,
)
from wtw_controller.config import NUM_COMMANDS, WtwConfig


def controller_spec(config: WtwConfig) -> ActionSpec:
    """An ActionSpec whose bounds are the trained ranges (gait and terminate keep the contract's)."""
    low, high = list(DEFAULT_LOW), list(DEFAULT_HIGH)
    for name, (lo, hi) in vars(config.ranges).items():
        low[INDEX[name]], high[INDEX[name]] = lo, hi
    return ActionSpec(low=tuple(low), high=tuple(high))


class CommandMapper:
    def __init__(self, config: WtwConfig) -> None:
        self.config = config
        self.spec = controller_spec(config)
        self.stand = self._map(self.spec.for_controller(stand_command()))

    def to_wtw(self, action: np.ndarray | None) -> tuple[np.ndarray, str]:
        """(15 commands, what happened: 'ok' | 'terminate' | 'invalid: ...' | 'none')."""
        if action is None:
            return self.stand.copy(), "none"
        try:
            a = self.spec.for_controller(action)
        except InvalidActionError as err:
            return self.stand.copy(), f"invalid: {err}"
        if a[TERMINATE] >= 0.5:
            return self.stand.copy(), "terminate"
        return self._map(a), "ok"

    def _map(self, a: np.ndarray) -> np.ndarray:
        c = self.config
        vx, vy = a[INDEX["vx"]], a[INDEX["vy"]]
        if np.hypot(vx, vy) < c.xy_deadband:
            vx = vy = 0.0
        out = np.array(
            [
                vx,
                vy,
                a[INDEX["wz"]],
                a[INDEX["body_height"]],
                a[INDEX["step_frequency"]],
                a[INDEX["gait_phase"]],
                a[INDEX["gait_offset"]],
                a[INDEX["gait_bound"]],
                c.gait_duration,
                a[INDEX["footswing_height"]],
                a[INDEX["pitch"]],
                c.roll,
                a[INDEX["stance_width"]],
                c.stance_length,
                c.aux_reward,
            ],
            dtype=np.float64,
        )
        assert out.shape == (NUM_COMMANDS,)
        return out
