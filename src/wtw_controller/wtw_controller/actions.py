"""walk-these-ways action -> joint targets in SDK order.

q_des = clip(a, +-10) x 0.25, hip entries x 0.5 more, + default pose (policy order), then reordered
to the SDK's FR, FL, RR, RL. dq_des = 0, feed-forward torque = 0, PD gains kp 20, kd 0.5.
"""

from __future__ import annotations

import numpy as np

from wtw_controller.config import WtwConfig
from wtw_controller.joint_order import policy_to_sdk

HIP_INDICES_POLICY = np.array([0, 3, 6, 9])


def action_to_targets(action: np.ndarray, config: WtwConfig) -> np.ndarray:
    """Joint position targets (SDK order) for a policy action (policy order)."""
    scaled = np.clip(np.asarray(action, dtype=np.float64), -config.clip_actions, config.clip_actions)
    scaled = scaled * config.action_scale
    scaled[HIP_INDICES_POLICY] *= config.hip_scale_reduction
    return policy_to_sdk(scaled + np.asarray(config.default_pose))
