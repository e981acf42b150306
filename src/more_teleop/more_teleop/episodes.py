"""Episode control and success labelling for teleoperated data collection (the core of `episode_control`).

[Contract]
- States: idle -> start() -> recording -> stop(success) | discard() -> idle. Episodes are numbered 0, 1, 2, ... in
  start order (a discarded episode keeps its number). start() needs an instruction (the episode's, frozen at
  start) and is refused while recording; stop() and discard() are refused while idle. Refusals say why and change
  nothing.
- Labels are more_msgs/EpisodeStatus fields (`status()`): while recording, not terminated, `step` = commands seen
  on /more/command since the start; stop() gives the final status: terminated, success = the label, reward 1.0 for
  a success else 0.0. A discarded episode never gets a final status, so `more-replay --to-dataset` leaves it out
  (an episode without a final status is unlabelled).
- How a bag is cut (more-replay --to-dataset --episode-topic /more/episode/status --between-episodes drop): a
  command belongs to the episode whose status was in force when it was sent; commands while idle (after a final
  status, before the next start) belong to no episode.
"""

from __future__ import annotations

from dataclasses import dataclass

IDLE, RECORDING = "idle", "recording"


@dataclass(frozen=True)
class StatusFields:
    """The fields of one more_msgs/EpisodeStatus."""

    task: str
    instruction: str
    episode: int
    step: int
    terminated: bool
    truncated: bool
    success: bool
    reward: float


@dataclass(frozen=True)
class Reply:
    ok: bool
    message: str
    status: StatusFields | None = None  # a status to publish now


class EpisodeControl:
    def __init__(self, task: str) -> None:
        if not isinstance(task, str) or not task.strip():
            raise ValueError(f"task must be a non-empty name (e.g. go_to), got {task!r}")
        self.task = task
        self.instruction = ""  # the newest instruction heard (the next episode's)
        self.state = IDLE
        self.episode = -1  # the current (recording) or last episode
        self.step = 0
        self._episode_instruction = ""
        self.successes = 0
        self.failures = 0
        self.discarded = 0

    def set_instruction(self, text: str) -> None:
        self.instruction = text.strip()

    def count_command(self) -> None:
        if self.state == RECORDING:
            self.step += 1

    def start(self) -> Reply:
        if self.state == RECORDING:
            return Reply(False, f"episode {self.episode} is being recorded: stop or discard it first")
        if not self.instruction:
            return Reply(
                False, "no instruction: publish one on /more/instruction or set the episode_control instruction"
            )
        self.episode += 1
        self.step = 0
        self.state = RECORDING
        self._episode_instruction = self.instruction
        return Reply(True, f"episode {self.episode} started: {self.task}: {self._episode_instruction!r}", self.status())

    def stop(self, success: bool) -> Reply:
        if self.state != RECORDING:
            return Reply(False, "no episode is being recorded: start one first")
        self.state = IDLE
        if success:
            self.successes += 1
        else:
            self.failures += 1
        label = "success" if success else "failure"
        final = self.status(terminated=True, success=success)
        return Reply(True, f"episode {self.episode} ended after {self.step} commands: {label}", final)

    def discard(self) -> Reply:
        if self.state != RECORDING:
            return Reply(False, "no episode is being recorded: nothing to discard")
        self.state = IDLE
        self.discarded += 1
        return Reply(True, f"episode {self.episode} discarded ({self.step} commands, left out of datasets)")

    def status(self, terminated: bool = False, success: bool = False) -> StatusFields:
        return StatusFields(
            task=self.task,
            instruction=self._episode_instruction,
            episode=max(self.episode, 0),
            step=self.step,
            terminated=terminated,
            truncated=False,
            success=success,
            reward=1.0 if success else 0.0,
        )
