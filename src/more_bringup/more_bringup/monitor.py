"""What `more-stack` watches from its own process: commands, policy status, episodes and camera images.

Camera-to-command latency is measured here as the command's arrival time minus the stamp of the image it was
decided on (the policy stamps each decided command with its image's stamp), so it includes the DDS hop to this
process as a real consumer of the command sees it.

Tracking and falls (`motion()`), from the simulator's odometry and episode status (one of each per decision, same
stamp as that decision's image): for the decision window that ends at image k, the commanded (vx, vy, wz) is the
policy's decision on image k - 1 (the newest decided command stamped at or before it; terminate: zero velocity),
the achieved one is the odometry's twist (the trunk's mean velocity over the window, heading frame); RMSE per
component over every window inside an episode. A fall is an episode that ended in a fall (the simulator's
EpisodeEnd: tilt beyond its limit or the trunk on the floor) or in which the trunk's tilt (from the odometry's
orientation) exceeded FALL_TILT_RAD (an episode cut short by the run's end has no EpisodeEnd).

The controller and the bridge (the go2 stack): their last /diagnostics status, the loop period and the age of the
joint state at the controller's steps / how late the targets reached the robot, in wall ms (x time_scale for
simulated ms).

Episodes are counted from the simulator's EpisodeEnd (one per episode, reliable; `ends`: how many ended each
way, the vocabulary of `more-sim eval`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

FALL_TILT_RAD = 0.8  # go2_bridge's damping limit (more_sim.go2.world.FALL_TILT_RAD)
CONTROLLER_STATUS = "wtw_controller: policy"  # its /diagnostics status name
CONTROLLER_KEYS = ("period_p99_ms", "state_age_p50_ms", "state_age_p99_ms", "state_age_max_ms", "state_age_min_ms")
BRIDGE_STATUS = "go2_bridge: safety"
BRIDGE_KEYS = ("period_p99_ms", "targets_age_p50_ms", "targets_age_p99_ms", "targets_age_max_ms")
LEVELS = {0: "OK", 1: "WARN", 2: "ERROR", 3: "STALE"}


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def tilt_of(qx: float, qy: float) -> float:
    """Angle between a unit quaternion's body z axis and the world's (its z component is 1 - 2 (x^2 + y^2))."""
    return math.acos(max(-1.0, min(1.0, 1.0 - 2.0 * (qx * qx + qy * qy))))


def diagnostic_summary(
    level: int, message: str, values: dict[str, str], keys: tuple[str, ...] = CONTROLLER_KEYS
) -> dict[str, Any]:
    """A node's last /diagnostics status (the controller's by default): level, message and `keys` as numbers
    (those present)."""
    out: dict[str, Any] = {"level": LEVELS.get(level, str(level)), "message": message}
    out.update({k: float(values[k]) for k in keys if k in values})
    if "stale_speed_capped" in values:
        out["stale_speed_capped"] = values["stale_speed_capped"] == "True"
    return out


def count_ends(episodes: list[dict[str, Any]]) -> dict[str, int]:
    """How many of `episodes` (the monitor's records) ended each way, most frequent first (ties by name)."""
    counts: dict[str, int] = {}
    for e in episodes:
        counts[e["end"]] = counts.get(e["end"], 0) + 1
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def motion_summary(
    odometry: list[tuple[int, tuple[float, float, float], float]],
    statuses: dict[int, tuple[int, int]],
    commands: list[tuple[int, tuple[float, float, float]]],
    ended_in_fall: set[int] | frozenset[int] = frozenset(),
) -> dict[str, Any]:
    """Tracking RMSE and falls (see the module docstring). `odometry`: (stamp ns, (vx, vy, wz), tilt);
    `statuses`: stamp ns -> (episode, step); `commands`: (stamp ns, (vx, vy, wz)) of decided commands;
    `ended_in_fall`: the episodes whose EpisodeEnd says fall."""
    commands = sorted(commands)
    stamps = [c[0] for c in commands]
    errors: list[tuple[float, float, float]] = []
    falls: set[int] = set(ended_in_fall)
    previous: dict[int, tuple[int, int]] = {}  # episode -> (stamp, step) of its last decision seen
    for stamp, achieved, tilt in sorted(odometry):
        if stamp not in statuses:
            continue
        episode, step = statuses[stamp]
        if tilt > FALL_TILT_RAD:
            falls.add(episode)
        start, last_step = previous.get(episode, (None, -1))
        if step == last_step:  # the final result repeated while the next episode waits: not a decision
            continue
        previous[episode] = (stamp, step)
        if start is None or step != last_step + 1:
            continue
        k = int(np.searchsorted(stamps, start, side="right")) - 1
        if k < 0:
            continue
        errors.append(tuple(a - c for a, c in zip(achieved, commands[k][1], strict=True)))
    out: dict[str, Any] = {"tracking": {"windows": len(errors)}, "falls": len(falls)}
    if errors:
        e = np.asarray(errors)
        rmse = np.sqrt((e**2).mean(axis=0))
        out["tracking"].update({f"{k}_rmse": float(v) for k, v in zip(("vx", "vy", "wz"), rmse, strict=True)})
    return out


class Monitor:
    """`bring_up_bridge`: the simulated go2 stack: stand the bridge up and activate it (again after a fall);
    `video`: a directory for one video per episode (more_bringup.video)."""

    def __init__(self, bring_up_bridge: bool = False, video: str | None = None, video_fps: float = 5.0) -> None:
        import rclpy
        from nav_msgs.msg import Odometry
        from rclpy.qos import qos_profile_sensor_data
        from sensor_msgs.msg import Image

        from more_msgs.msg import EpisodeEnd, EpisodeStatus, PolicyStatus, QuadrupedCommand
        from more_ros import names
        from more_ros.convert import stamp_to_ns
        from more_ros.qos import COMMAND_QOS, STATUS_QOS

        self._stamp_to_ns = stamp_to_ns
        self.node = rclpy.create_node("more_stack_monitor")
        self.latencies_ms: list[float] = []
        self.inference_ms: list[float] = []
        self.commands = 0
        self.decided = 0
        self.images = 0
        self.policy_statuses = 0
        self.faults: dict[str, int] = {}
        self.episodes: dict[int, dict[str, Any]] = {}
        self.current: dict[str, Any] = {}
        self.odometry: list[tuple[int, tuple[float, float, float], float]] = []
        self.statuses: dict[int, tuple[int, int]] = {}
        self.decided_commands: list[tuple[int, tuple[float, float, float]]] = []
        self.node.create_subscription(QuadrupedCommand, names.COMMAND, self._on_command, COMMAND_QOS)
        self.node.create_subscription(PolicyStatus, names.POLICY_STATUS, self._on_status, STATUS_QOS)
        # Best effort matches a publisher whatever its reliability.
        self.node.create_subscription(EpisodeStatus, names.SIM_EPISODE, self._on_episode, qos_profile_sensor_data)
        self.node.create_subscription(EpisodeEnd, names.SIM_EPISODE_END, self._on_episode_end, STATUS_QOS)
        self.node.create_subscription(Image, names.CAMERA_IMAGE, self._on_image, qos_profile_sensor_data)
        self.node.create_subscription(Odometry, names.SIM_ODOM, self._on_odom, qos_profile_sensor_data)
        self.bringup = None
        self.controller_status: dict[str, Any] | None = None
        self.bridge_status: dict[str, Any] | None = None
        if bring_up_bridge:  # simulation only (more_sim_ros is the simulation-only package)
            from diagnostic_msgs.msg import DiagnosticArray
            from std_msgs.msg import String
            from std_srvs.srv import Trigger

            from more_ros.qos import LATCHED_QOS
            from more_sim_ros.bridge_bringup import NEXT_CALL, BridgeBringup

            self.bringup = BridgeBringup()
            self._trigger = Trigger
            self._clients = {s: self.node.create_client(Trigger, s) for s in NEXT_CALL.values()}
            self.node.create_subscription(String, names.BRIDGE_STATE, self._on_bridge_state, LATCHED_QOS)
            self.node.create_subscription(DiagnosticArray, names.DIAGNOSTICS, self._on_diagnostics, STATUS_QOS)
        self.videos = None
        if video is not None:
            from more_bringup.video import EpisodeVideos

            self.videos = EpisodeVideos(video, video_fps)
            self.node.create_subscription(Image, names.SIM_VIEW, self._on_view, qos_profile_sensor_data)

    def _on_diagnostics(self, msg: Any) -> None:
        for s in msg.status:
            if s.name not in (CONTROLLER_STATUS, BRIDGE_STATUS):
                continue
            level = s.level[0] if isinstance(s.level, bytes) else int(s.level)
            values = {v.key: v.value for v in s.values}
            if s.name == CONTROLLER_STATUS:
                self.controller_status = diagnostic_summary(level, s.message, values)
            else:
                self.bridge_status = diagnostic_summary(level, s.message, values, BRIDGE_KEYS)

    def _on_bridge_state(self, msg: Any) -> None:
        self.bringup.on_state(msg.data)

    def bring_up_step(self) -> None:
        """Call the bridge service the bring-up sequence asks for now, if any (asynchronously)."""
        if self.bringup is None:
            return
        import time

        service = self.bringup.next_call(time.monotonic())
        if service is None:
            return
        client = self._clients[service]
        if not client.service_is_ready():
            self.bringup.on_result(service, False)
            return
        future = client.call_async(self._trigger.Request())
        future.add_done_callback(lambda f: self.bringup.on_result(service, bool(f.result() and f.result().success)))

    @staticmethod
    def _rgb(msg: Any) -> np.ndarray:
        rows = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)
        return rows[:, : msg.width * 3].reshape(msg.height, msg.width, 3).copy()

    def _on_view(self, msg: Any) -> None:
        self.videos.add_view(self._stamp_to_ns(msg.header.stamp), self._rgb(msg))

    def _on_command(self, msg: Any) -> None:
        self.commands += 1
        if self.videos is not None and msg.bins[0] >= 0:
            from more_ros.convert import msg_to_command

            q = np.asarray(msg.q_values, dtype=np.float64)
            self.videos.add_command(self._stamp_to_ns(msg.header.stamp), msg_to_command(msg), q)
        if msg.bins[0] >= 0:
            self.decided += 1
            stamp = self._stamp_to_ns(msg.header.stamp)
            if stamp:
                self.latencies_ms.append((self.node.get_clock().now().nanoseconds - stamp) / 1e6)
                velocity = (0.0, 0.0, 0.0) if msg.terminate else (float(msg.vx), float(msg.vy), float(msg.wz))
                self.decided_commands.append((stamp, velocity))

    def _on_status(self, msg: Any) -> None:
        self.policy_statuses += 1
        if msg.fault:
            key = msg.fault.split(":")[0]
            self.faults[key] = self.faults.get(key, 0) + 1
        if math.isfinite(msg.inference_ms) and msg.state in (1, 3):  # RUNNING or DONE: a decision was made
            self.inference_ms.append(float(msg.inference_ms))

    def _on_image(self, msg: Any) -> None:
        self.images += 1
        if self.videos is not None and msg.encoding == "rgb8":
            self.videos.add_image(self._stamp_to_ns(msg.header.stamp), self._rgb(msg))

    def _on_odom(self, msg: Any) -> None:
        t, q = msg.twist.twist, msg.pose.pose.orientation
        velocity = (float(t.linear.x), float(t.linear.y), float(t.angular.z))
        self.odometry.append((self._stamp_to_ns(msg.header.stamp), velocity, tilt_of(q.x, q.y)))

    def _on_episode(self, msg: Any) -> None:
        self.statuses[self._stamp_to_ns(msg.header.stamp)] = (int(msg.episode), int(msg.step))
        if self.videos is not None:
            outcome = ""
            if msg.terminated or msg.truncated:
                outcome = "SUCCESS" if msg.success else ("TIME LIMIT" if msg.truncated else "FAILED")
            stamp = self._stamp_to_ns(msg.header.stamp)
            self.videos.add_status(stamp, int(msg.episode), int(msg.step), msg.task, msg.instruction, outcome)
        self.current = {"task": msg.task, "instruction": msg.instruction, "episode": int(msg.episode)}

    def _on_episode_end(self, msg: Any) -> None:
        self.episodes.setdefault(
            int(msg.episode),
            {
                "episode": int(msg.episode),
                "task": msg.task,
                "instruction": msg.instruction,
                "steps": int(msg.steps),
                "success": bool(msg.success),
                "terminated": bool(msg.terminated),
                "truncated": bool(msg.truncated),
                "end": msg.end,
            },
        )

    def summary(self) -> dict[str, Any]:
        mean = lambda xs: float(sum(xs) / len(xs)) if xs else None  # noqa: E731
        return {
            "commands": self.commands,
            "decisions": self.decided,
            "images": self.images,
            "faults": self.faults,
            "mean_step_latency_ms": mean(self.latencies_ms),
            "step_latency_ms_p50": _percentile(self.latencies_ms, 50),
            "step_latency_ms_p99": _percentile(self.latencies_ms, 99),
            "mean_inference_ms": mean(self.inference_ms),
            "inference_ms_p50": _percentile(self.inference_ms, 50),
        }

    def finish_videos(self) -> list[str]:
        return self.videos.finish() if self.videos is not None else []

    def motion(self) -> dict[str, Any]:
        fell = {k for k, e in self.episodes.items() if e["end"] == "fall"}
        return motion_summary(self.odometry, self.statuses, self.decided_commands, fell)

    def destroy(self) -> None:
        self.node.destroy_node()
