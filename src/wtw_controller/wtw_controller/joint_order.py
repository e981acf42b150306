"""Joint orders: walk-these-ways' policy order (FL, FR, RL, RR) and the Unitree SDK's (FR, FL, RR, RL).

Both list each leg as (hip, thigh, calf). Swapping the two legs of each pair maps one order onto the
other, so the index map is its own inverse: sdk = policy[MAP] and policy = sdk[MAP].
"""

from __future__ import annotations

import numpy as np

POLICY_LEGS: tuple[str, ...] = ("FL", "FR", "RL", "RR")
SDK_LEGS: tuple[str, ...] = ("FR", "FL", "RR", "RL")
KINDS: tuple[str, ...] = ("hip", "thigh", "calf")
POLICY_JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{k}_joint" for leg in POLICY_LEGS for k in KINDS)
SDK_JOINT_NAMES: tuple[str, ...] = tuple(f"{leg}_{k}_joint" for leg in SDK_LEGS for k in KINDS)

POLICY_TO_SDK = np.array([3, 4, 5, 0, 1, 2, 9, 10, 11, 6, 7, 8], dtype=np.int64)
SDK_TO_POLICY = POLICY_TO_SDK  # self-inverse


def policy_to_sdk(x: np.ndarray) -> np.ndarray:
    """Reorder the last axis from policy order to SDK order."""
    return np.asarray(x)[..., POLICY_TO_SDK]


def sdk_to_policy(x: np.ndarray) -> np.ndarray:
    """Reorder the last axis from SDK order to policy order."""
    return np.asarray(x)[..., SDK_TO_POLICY]


def index_by_name(names: list[str] | tuple[str, ...], wanted: tuple[str, ...] = SDK_JOINT_NAMES) -> np.ndarray:
    """Indices into `names` of each joint in `wanted` (raises KeyError naming a missing joint)."""
    lookup = {n: i for i, n in enumerate(names)}
    missing = [n for n in wanted if n not in lookup]
    if missing:
        raise KeyError(f"joint state lacks joints {missing}")
    return np.array([lookup[n] for n in wanted], dtype=np.int64)
