"""Small bags for tests and examples, built with the rosbags typestore: images, commands, instructions, episodes."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from more_common.action_contract import ACTION_NAMES, TERMINATE
from more_ros import names
from more_vla_policy.replay import bag_io

FIELDS = ACTION_NAMES[:TERMINATE]  # the float fields of QuadrupedCommand


class BagBuilder:
    def __init__(self, path: Path, storage: str = "mcap") -> None:
        self.store = bag_io.make_typestore()
        self.writer = bag_io.BagWriter(path, storage=storage, typestore=self.store)
        self.t = self.store.types

    def _header(self, stamp_ns: int, frame_id: str = ""):
        Time = self.t["builtin_interfaces/msg/Time"]
        return self.t["std_msgs/msg/Header"](
            stamp=Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000), frame_id=frame_id
        )

    def _write(self, topic: str, msgtype: str, t: int, msg: Any) -> None:
        self.writer.add_topic(topic, msgtype)
        self.writer.write(topic, t, msg)

    def image(self, t: int, rgb: np.ndarray, stamp_ns: int | None = None, topic: str = names.CAMERA_IMAGE) -> None:
        h, w = rgb.shape[:2]
        msg = self.t["sensor_msgs/msg/Image"](
            header=self._header(t if stamp_ns is None else stamp_ns, "camera_color_optical_frame"),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=w * 3,
            data=np.ascontiguousarray(rgb).reshape(-1),
        )
        self._write(topic, "sensor_msgs/msg/Image", t, msg)

    def command(
        self, t: int, action: Sequence[float], bins: Any = None, q_values: Any = None, stamp_ns: int = 0
    ) -> None:
        values = {name: float(action[i]) for i, name in enumerate(FIELDS)}
        msg = self.t["more_msgs/msg/QuadrupedCommand"](
            header=self._header(stamp_ns, "base_link"),
            **values,
            terminate=bool(action[11] >= 0.5),
            bins=np.asarray([-1] * 12 if bins is None else bins, dtype=np.int16),
            q_values=np.asarray([np.nan] * 12 if q_values is None else q_values, dtype=np.float32),
        )
        self._write(names.COMMAND, "more_msgs/msg/QuadrupedCommand", t, msg)

    def instruction(self, t: int, text: str) -> None:
        self._write(names.INSTRUCTION, "std_msgs/msg/String", t, self.t["std_msgs/msg/String"](data=text))

    def episode(
        self,
        t: int,
        task: str,
        instruction: str,
        episode: int,
        step: int,
        done: bool = False,
        success: bool = False,
        topic: str = names.SIM_EPISODE,
    ) -> None:
        msg = self.t["more_msgs/msg/EpisodeStatus"](
            header=self._header(t),
            task=task,
            instruction=instruction,
            episode=episode,
            step=step,
            terminated=done,
            truncated=False,
            success=success,
            reward=1.0 if success else 0.0,
        )
        self._write(topic, "more_msgs/msg/EpisodeStatus", t, msg)

    def close(self) -> None:
        self.writer.close()
