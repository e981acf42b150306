"""Turn a bag's message stream into replay samples: (image, instruction, recorded command, task, episode).

[Contract]
- A sample is made for every recorded command (QuadrupedCommand) on the command topic. Its image is the one
  whose header stamp equals the command's header stamp (the policy node stamps commands with their image's
  stamp); failing that, the newest image logged before the command.
- Bags without commands (a realsense-ros recording) give image-only samples: every image, thinned to at most
  `rate_hz` in bag time (0 = every image). They carry no reference, so replay reports no agreement for them.
- Instruction in force: the newest of the instruction topic (std_msgs/String), PolicyStatus.instruction and
  EpisodeStatus.instruction logged before the sample, else `default_instruction`.
- Labels from EpisodeStatus: the newest status before the sample's image gives task and episode; if that status
  is final (terminated or truncated) the sample belongs to the next episode (`between_episodes="next"`: the
  simulator starts it at once). Teleoperated episodes (`"drop"`) are cut by the status in force when each command
  was sent (the operator decides then, not when the image was taken), and a command after an episode's final
  status belongs to none (the robot is driven between an episode's label and the next start). The last final
  status of each episode number gives its success.
- Recorded stop commands (no decoder bins and equal to the stand command, with or without terminate) are not
  policy decisions and are dropped unless `include_stops`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from more_common.action_contract import ACTION_NAMES, NUM_BINS, TERMINATE, stand_command
from more_ros import names
from more_vla_policy.policy_core import ImageError, RawImage
from more_vla_policy.replay.bag_io import COMPRESSED_IMAGE_TYPE, IMAGE_TYPE, image_from_bag_msg, stamp_ns

COMMAND_TYPE = "more_msgs/msg/QuadrupedCommand"
EPISODE_TYPE = "more_msgs/msg/EpisodeStatus"
STATUS_TYPE = "more_msgs/msg/PolicyStatus"
STRING_TYPE = "std_msgs/msg/String"
# The float fields of QuadrupedCommand, in contract order (terminate, a bool, is read separately).
COMMAND_FIELDS = ACTION_NAMES[:TERMINATE]
BETWEEN_EPISODES = ("next", "drop")  # where a sample after an episode's final status goes (module contract)
IMAGE_MATCH_BUFFER = 64  # images kept to match a command's stamp (a few seconds of camera at 30 fps)


@dataclass
class Sample:
    image: RawImage
    instruction: str
    image_time_ns: int
    command: np.ndarray | None = None  # recorded command, contract order (float64), None for image-only bags
    bins: np.ndarray | None = None  # recorded decoder bins when valid, else None
    command_time_ns: int = 0
    command_stamp_ns: int = 0
    task: str = ""
    episode: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Topics:
    image: str
    command: str = names.COMMAND
    instruction: str = names.INSTRUCTION
    policy_status: str = names.POLICY_STATUS
    episode: str = names.SIM_EPISODE


def choose_image_topic(topic_types: dict[str, str], wanted: str = "") -> str:
    """The image topic to replay: `wanted` if given, else the stack's camera topic, else the only image topic
    (or the only one ending in color/image_raw). ValueError listing the candidates otherwise."""
    images = sorted(t for t, ty in topic_types.items() if ty in (IMAGE_TYPE, COMPRESSED_IMAGE_TYPE))
    if wanted:
        if wanted not in images:
            raise ValueError(f"image topic {wanted} is not in the bag; image topics there: {images}")
        return wanted
    if names.CAMERA_IMAGE in images:
        return names.CAMERA_IMAGE
    raw_color = [t for t in images if t.endswith("color/image_raw")]
    for candidates in (raw_color, images):
        if len(candidates) == 1:
            return candidates[0]
    if not images:
        raise ValueError(f"the bag has no sensor_msgs Image/CompressedImage topic (topics: {sorted(topic_types)})")
    raise ValueError(f"several image topics, choose one with --image-topic: {images}")


def command_from_msg(msg: Any) -> np.ndarray:
    values = [float(getattr(msg, name)) for name in COMMAND_FIELDS]
    values.append(1.0 if msg.terminate else 0.0)
    return np.asarray(values, dtype=np.float64)


def _valid_bins(msg: Any) -> np.ndarray | None:
    """The decoder's bins in contract order, -1 in dims the model does not decode (a model with action slots);
    None when no dim was decoded (a stop, a command from another source) or they are malformed."""
    bins = np.asarray(msg.bins, dtype=np.int64)
    if bins.shape != (12,) or not ((bins == -1) | ((bins >= 0) & (bins < NUM_BINS))).all():
        return None
    return bins if (bins >= 0).any() else None


def is_stop_command(command: np.ndarray, bins: np.ndarray | None) -> bool:
    if bins is not None:
        return False
    stand = stand_command()
    return bool(np.allclose(command[:TERMINATE], stand[:TERMINATE], atol=1e-6))


def collect_samples(
    messages: Iterable[tuple[str, str, int, Any]],
    topics: Topics,
    default_instruction: str = "",
    rate_hz: float = 0.0,
    include_stops: bool = False,
    has_commands: bool = True,
    between_episodes: str = "next",
) -> Iterator[Sample]:
    """Walk (topic, msgtype, log_time_ns, msg) in log order and yield samples (see the module contract)."""
    if between_episodes not in BETWEEN_EPISODES:
        raise ValueError(f"between_episodes must be one of {list(BETWEEN_EPISODES)}, got {between_episodes!r}")
    drop_between = between_episodes == "drop"
    images: deque[tuple[int, int, RawImage]] = deque(maxlen=IMAGE_MATCH_BUFFER)  # (stamp, log time, image)
    instruction = default_instruction
    latest_status: Any = None
    status_before_image: dict[int, Any] = {}
    last_image_only = -np.inf
    for topic, msgtype, t, msg in messages:
        if topic == topics.image:
            try:
                img = image_from_bag_msg(msg, msgtype)
            except ImageError:
                continue  # an undecodable compressed frame: replay the others
            images.append((img.stamp_ns, t, img))
            status_before_image[t] = latest_status
            if len(status_before_image) > IMAGE_MATCH_BUFFER * 2:
                for key in sorted(status_before_image)[:IMAGE_MATCH_BUFFER]:
                    del status_before_image[key]
            if not has_commands and (rate_hz <= 0 or (t - last_image_only) >= 1e9 / rate_hz):
                last_image_only = t
                yield _labelled(Sample(img, instruction, t), latest_status, drop_between)
        elif topic == topics.instruction and msgtype == STRING_TYPE:
            instruction = str(msg.data)
        elif topic == topics.policy_status and msgtype == STATUS_TYPE and msg.instruction:
            instruction = str(msg.instruction)
        elif topic == topics.episode and msgtype == EPISODE_TYPE:
            latest_status = msg
            if msg.instruction:
                instruction = str(msg.instruction)
        elif topic == topics.command and msgtype == COMMAND_TYPE and has_commands:
            command, bins = command_from_msg(msg), _valid_bins(msg)
            if not include_stops and is_stop_command(command, bins):
                continue
            stamp = stamp_ns(msg.header)
            match = next((x for x in reversed(images) if stamp and x[0] == stamp), None)
            if match is None and images:
                match = images[-1]
            if match is None:
                continue  # a command before any image: nothing to replay it on
            _, image_t, img = match
            sample = Sample(img, instruction, image_t, command, bins, t, stamp)
            # teleoperation: the operator decides when the command is sent, so the status in force then counts
            status = latest_status if drop_between else status_before_image.get(image_t, latest_status)
            yield _labelled(sample, status, drop_between)


def _labelled(sample: Sample, status: Any, drop_between: bool = False) -> Sample:
    if status is not None:
        sample.task = str(status.task)
        final = bool(status.terminated or status.truncated)
        sample.episode = None if final and drop_between else int(status.episode) + (1 if final else 0)
    return sample


def episode_outcomes(messages: Iterable[tuple[str, str, int, Any]], episode_topic: str) -> dict[int, dict]:
    """{episode: {"success", "terminated", "truncated", "task", "instruction"}} from each episode's final status."""
    out: dict[int, dict] = {}
    for topic, msgtype, _, msg in messages:
        if topic == episode_topic and msgtype == EPISODE_TYPE and (msg.terminated or msg.truncated):
            out[int(msg.episode)] = {
                "success": bool(msg.success),
                "terminated": bool(msg.terminated),
                "truncated": bool(msg.truncated),
                "task": str(msg.task),
                "instruction": str(msg.instruction),
            }
    return out
