"""Message conversions every node shares: QuadrupedCommand <-> the contract's 12-vector, time stamps, rgb8 Images."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from more_common.action_contract import ACTION_NAMES, NUM_DIMS, TERMINATE, InvalidActionError, stand_command
from more_ros.names import BASE_FRAME

# Message field for each contract dim (same names, same order).
COMMAND_FIELDS: tuple[str, ...] = ACTION_NAMES


def command_to_msg(action: Any, bins: Any = None, q_values: Any = None, stamp: Any = None):  # noqa: ANN201
    """Build a QuadrupedCommand from a 12-vector (plus the decoder's bins and Q-values if any)."""
    from more_msgs.msg import QuadrupedCommand

    arr = np.asarray(action, dtype=np.float64)
    if arr.shape != (NUM_DIMS,):
        raise InvalidActionError(f"action must have shape ({NUM_DIMS},), got {arr.shape}")
    msg = QuadrupedCommand()
    msg.header.frame_id = BASE_FRAME
    if stamp is not None:
        msg.header.stamp = stamp
    for i, name in enumerate(COMMAND_FIELDS):
        if i == TERMINATE:
            msg.terminate = bool(arr[i] >= 0.5)
        else:
            setattr(msg, name, float(arr[i]))
    msg.bins = [-1] * NUM_DIMS if bins is None else [int(b) for b in np.asarray(bins).reshape(NUM_DIMS)]
    msg.q_values = (
        [math.nan] * NUM_DIMS if q_values is None else [float(q) for q in np.asarray(q_values).reshape(NUM_DIMS)]
    )
    return msg


def msg_to_command(msg: Any) -> np.ndarray:
    """QuadrupedCommand -> 12-vector (float64) in contract order; terminate as 0.0 / 1.0."""
    values = [float(getattr(msg, name)) for name in COMMAND_FIELDS]
    values[TERMINATE] = 1.0 if msg.terminate else 0.0
    return np.asarray(values, dtype=np.float64)


def stop_msg(stamp: Any = None):  # noqa: ANN201
    """The safe command: zero velocities, stand in place (see action_contract.stand_command)."""
    return command_to_msg(stand_command(), stamp=stamp)


def stamp_to_ns(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


# builtin_interfaces/Time holds int32 seconds; stamps before the epoch are not a time this stack produces.
MAX_STAMP_NS = 2**31 * 1_000_000_000 - 1  # 2038-01-19T03:14:07.999999999Z


def ns_to_stamp(ns: int):  # noqa: ANN201 - builtin_interfaces/Time
    """builtin_interfaces/Time of `ns` nanoseconds since the epoch, 0 <= ns <= MAX_STAMP_NS.

    Raises ValueError naming the value for anything else (negative, past int32 seconds, not an integer):
    such a stamp used to wrap silently into a wrong but plausible time."""
    import operator

    try:
        n = operator.index(ns)
    except TypeError:
        raise ValueError(f"stamp must be an integer number of nanoseconds, got {ns!r}") from None
    if not 0 <= n <= MAX_STAMP_NS:
        raise ValueError(f"stamp {n} ns is outside builtin_interfaces/Time's range [0, {MAX_STAMP_NS}] ns")
    from builtin_interfaces.msg import Time

    return Time(sec=n // 1_000_000_000, nanosec=n % 1_000_000_000)


def image_msg(rgb: np.ndarray, frame_id: str, stamp: Any):  # noqa: ANN201 - sensor_msgs/Image
    from sensor_msgs.msg import Image

    msg = Image()
    msg.header.frame_id = frame_id
    msg.header.stamp = stamp
    msg.height, msg.width = int(rgb.shape[0]), int(rgb.shape[1])
    msg.encoding = "rgb8"
    msg.is_bigendian = 0
    msg.step = msg.width * 3
    msg.data = np.ascontiguousarray(rgb, dtype=np.uint8).tobytes()
    return msg
