"""A scripted operator in place of the person at the keyboard, for the simulated data-collection test.

It sees what a person beside the robot sees, through ROS only: the simulator's episode status and odometry (where
the robot is and whether the episode ended) and, like a person who knows where the target is, the scenario of the
episode (rebuilt from the simulator's seed with rendering off: the same scenario, nothing of the running simulator
is touched). It steers with the privileged expert of more_sim on the teleop topic, one command per simulator
tick, labels each episode by its outcome through episode_control's services, and keeps commanding the stand
command between episodes, as an operator holding the keyboard would.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from more_common.action_contract import INDEX, TERMINATE, stand_command
from more_ros import names
from more_ros.testing import Probe
from more_sim.base_tracker import BaseState
from more_sim.config import SimConfig
from more_sim.env import make_env
from more_sim.expert import ScriptedExpert
from more_sim.world import NOMINAL_BASE_HEIGHT


def state_from_odometry(msg: Any) -> BaseState:
    """The simulator's odometry (session.base_pose: a yaw-pitch quaternion, z = nominal + body height) -> BaseState."""
    p, q, tw = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
    yaw = math.atan2(2.0 * (q.w * q.z + q.x * q.y), 1.0 - 2.0 * (q.y * q.y + q.z * q.z))
    pitch = math.asin(max(-1.0, min(1.0, 2.0 * (q.w * q.y - q.z * q.x))))
    return BaseState(
        x=p.x, y=p.y, yaw=yaw, vx=tw.linear.x, vy=tw.linear.y, wz=tw.angular.z,
        body_height=p.z - NOMINAL_BASE_HEIGHT, pitch=pitch,
    )  # fmt: skip


@dataclass
class EpisodeLog:
    mode: str  # expert | wrong_way | discard
    sim_episode: int
    instruction: str
    label: bool | None = None  # success / failure given to episode_control, None if discarded
    sent: list[np.ndarray] = field(default_factory=list)  # the commands sent while the episode was recorded
    sim_success: bool = False
    sim_steps: int = 0


class ScriptedOperator:
    def __init__(self, probe: Probe, task: str, split: str, seed: int, decision_hz: float) -> None:
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry

        from more_msgs.msg import EpisodeStatus, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS

        self.probe = probe
        self.seed = seed
        self.env = make_env(task, split, SimConfig(render_images=False, decision_hz=decision_hz))
        self.sim_status = probe.listen(EpisodeStatus, names.SIM_EPISODE, STATUS_QOS)
        self.odometry: list = []
        probe.node.create_subscription(Odometry, names.SIM_ODOM, self._on_odometry, SENSOR_QOS)
        self.pub = probe.node.create_publisher(QuadrupedCommand, names.TELEOP_COMMAND, COMMAND_QOS)
        self.diagnostics = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        self._to_msg = None
        self._pending: list[Any] = []  # odometry not yet answered with a command
        self.episodes: list[EpisodeLog] = []

    # -- what the operator sees and does -----------------------------------------------------------
    def _on_odometry(self, msg: Any) -> None:
        self.odometry.append(msg)
        self._pending.append(msg)

    def _send(self, command: np.ndarray, log: EpisodeLog | None) -> None:
        from more_ros.convert import command_to_msg

        self.pub.publish(command_to_msg(command))
        if log is not None:
            log.sent.append(command.copy())

    def _each_tick(self, decide: Any, until: Any, timeout: float, log: EpisodeLog | None) -> bool:
        """Answer every simulator tick (its odometry) with decide(state) until until() holds."""

        def step() -> None:
            while self._pending:
                self._send(decide(state_from_odometry(self._pending.pop(0))), log)

        return self.probe.spin_until(until, timeout, step, every=0.005)

    def _episode_control_instruction(self) -> str | None:
        for array in reversed(self.diagnostics):
            for status in array.status:
                if status.name == "more_teleop: episode_control":
                    return next((kv.value for kv in status.values if kv.key == "instruction"), None)
        return None

    def hold_still(self, seconds: float) -> None:
        self._each_tick(lambda s: stand_command(), lambda: False, seconds, None)

    def _call(
        self, srv: type, name: str, latched: np.ndarray | None = None, log: EpisodeLog | None = None, **fields: Any
    ) -> Any:
        """Call a service while answering the ticks with `latched` (the stand command by default), as the teleop
        node keeps publishing its current command (a terminate stays latched) while the operator presses a key."""
        command = stand_command() if latched is None else latched

        def answer() -> None:
            while self._pending:
                self._pending.pop(0)
                self._send(command, log)

        return self.probe.call(srv, name, timeout=20.0, action=answer, **fields)

    def run_episode(self, mode: str, timeout: float = 40.0) -> EpisodeLog:
        """One episode: a new scene, start, drive (`expert`: to the goal and terminate; `wrong_way`: walk away, then
        terminate; `discard`: drive a little, then discard), label from the simulator's outcome."""
        from std_srvs.srv import SetBool, Trigger

        assert self._each_tick(lambda s: stand_command(), lambda: bool(self.sim_status), 30, None), "no simulator"
        previous = self.sim_status[-1].episode
        assert self._call(Trigger, names.SIM_RESET).success
        new = lambda: self.sim_status[-1].episode > previous  # noqa: E731
        assert self._each_tick(lambda s: stand_command(), new, 10, None), "the simulator did not start an episode"
        status = self.sim_status[-1]
        _, info = self.env.reset(seed=self.seed + status.episode)
        assert info["instruction"] == status.instruction, "the rebuilt scenario is not the simulator's"
        # like a person glancing at the status display: episode_control has this scene's instruction
        heard = lambda: self._episode_control_instruction() == status.instruction  # noqa: E731
        assert self._each_tick(lambda s: stand_command(), heard, 15, None), "episode_control missed the instruction"
        log = EpisodeLog(mode, int(status.episode), status.instruction)
        reply = self._call(Trigger, names.EPISODE_START)
        assert reply.success, reply.message
        expert = ScriptedExpert()
        steps = [0]

        def decide(state: BaseState) -> np.ndarray:
            steps[0] += 1
            if mode == "expert":
                return expert.act({"scenario": info["scenario"], "state": state})
            cmd = stand_command()
            if mode == "wrong_way":
                cmd[INDEX["vx"]], cmd[INDEX["wz"]] = -0.3, 0.5
                cmd[TERMINATE] = 1.0 if steps[0] >= 6 else 0.0
            else:
                cmd[INDEX["vx"]] = 0.2
            return cmd

        episode = log.sim_episode
        ended = lambda: any(s.episode == episode and (s.terminated or s.truncated) for s in self.sim_status)  # noqa: E731
        if mode == "discard":
            self._each_tick(decide, lambda: steps[0] >= 5, timeout, log)
            assert self._call(Trigger, names.EPISODE_DISCARD).success
        else:
            assert self._each_tick(decide, ended, timeout, log), f"{mode} episode did not end in {timeout} s"
            final = next(s for s in self.sim_status if s.episode == episode and (s.terminated or s.truncated))
            log.sim_success, log.sim_steps = bool(final.success), int(final.step)
            log.label = log.sim_success  # the person saw whether the robot did it
            reply = self._call(SetBool, names.EPISODE_STOP, latched=log.sent[-1], log=log, data=log.label)
            assert reply.success, reply.message
        self.hold_still(0.6)  # between episodes the operator keeps the robot standing
        self.episodes.append(log)
        return log

    def close(self) -> None:
        self.env.close()
