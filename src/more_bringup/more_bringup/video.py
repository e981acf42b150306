"""Episode videos of the simulated stack: what the robot saw and decided, beside a third-person view of the robot.

Each frame is one decision (the simulator's image, episode status and third-person view share that decision's
stamp): left, the robot's camera image (scaled up, nearest neighbour) with the policy's decoded command and
Q-value bars (more_vla_policy.monitoring.annotate, the panel RViz shows); right, the third-person view of the
Go2 (/more/sim/view; absent for the kinematic base) with the episode, step and, at the end, the outcome. The
command shown is the policy's decision on that image (the command stamped with the image's stamp) or, where the
policy skipped that image, the newest decision before it. Videos play at the decision rate, i.e. in simulated
real time: H.264 (yuv420p, even sizes: what browsers and players take) in an .mp4, written with PyAV.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

CAMERA_HEIGHT = 240  # [px] the camera image is scaled up to about this height
CAPTION_H = 22  # [px] strip above the third-person view


@dataclass
class _Episode:
    task: str = ""
    instruction: str = ""
    frames: dict[int, dict[str, Any]] = field(default_factory=dict)  # stamp -> {"image", "view", "step", ...}


def compose_frame(
    camera: np.ndarray,
    view: np.ndarray | None,
    action: np.ndarray | None,
    q_values: np.ndarray | None,
    instruction: str,
    caption: str,
) -> np.ndarray:
    """One video frame: the annotated camera image left, the captioned third-person view right (uint8 RGB)."""
    from PIL import Image, ImageDraw

    from more_common.action_contract import TERMINATE, stand_command
    from more_vla_policy.monitoring import annotate
    from more_vla_policy.policy_core import STATE_DISABLED, STATE_DONE, STATE_RUNNING

    scale = max(1, round(CAMERA_HEIGHT / camera.shape[0]))
    big = np.kron(np.asarray(camera, dtype=np.uint8), np.ones((scale, scale, 1), dtype=np.uint8))
    if action is None:  # no decision yet: the panel says so
        left = annotate(big, stand_command(), None, STATE_DISABLED, instruction, "no decision yet")
    else:
        state = STATE_DONE if action[TERMINATE] >= 0.5 else STATE_RUNNING
        left = annotate(big, action, q_values, state, instruction)
    panels = [left]
    if view is not None:
        right = np.zeros((view.shape[0] + CAPTION_H, view.shape[1], 3), np.uint8)
        right[CAPTION_H:] = view
        image = Image.fromarray(right)
        ImageDraw.Draw(image).text((4, 4), caption[:60], fill=(235, 235, 235))
        panels.append(np.asarray(image))
    else:
        strip = Image.fromarray(np.zeros((CAPTION_H, left.shape[1], 3), np.uint8))
        ImageDraw.Draw(strip).text((4, 4), caption[:80], fill=(235, 235, 235))
        panels = [np.concatenate([np.asarray(strip), left], axis=0)]
    h = max(p.shape[0] for p in panels)
    padded = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0))) for p in panels]
    frame = np.concatenate(padded, axis=1)
    return np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)))  # yuv420p needs even sizes


def write_mp4(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """H.264 / yuv420p at `fps` (frames of one size), written to a temporary name and renamed when complete."""
    import av

    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    with av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=max(1, round(fps)))
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "20"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.replace(path)
    return path


class EpisodeVideos:
    """Collects the stack's images, views, decisions and episode statuses by stamp; writes one video per episode."""

    def __init__(self, directory: str | Path, fps: float = 5.0) -> None:
        self.directory = Path(directory)
        self.fps = fps
        self._episodes: dict[int, _Episode] = {}
        self._pending: dict[int, dict[str, Any]] = {}  # stamp -> parts that came before the status
        self._command_stamps: list[int] = []
        self._commands: dict[int, tuple[np.ndarray, np.ndarray | None]] = {}
        self.written: list[str] = []

    def _part(self, stamp: int) -> dict[str, Any]:
        for episode in self._episodes.values():
            if stamp in episode.frames:
                return episode.frames[stamp]
        return self._pending.setdefault(stamp, {})

    def add_image(self, stamp: int, rgb: np.ndarray) -> None:
        self._part(stamp)["image"] = rgb

    def add_view(self, stamp: int, rgb: np.ndarray) -> None:
        self._part(stamp)["view"] = rgb

    def add_command(self, stamp: int, action: np.ndarray, q_values: np.ndarray | None) -> None:
        if stamp and stamp not in self._commands:
            bisect.insort(self._command_stamps, stamp)
        self._commands[stamp] = (np.asarray(action, dtype=np.float64), q_values)

    def add_status(self, stamp: int, episode: int, step: int, task: str, instruction: str, outcome: str) -> None:
        e = self._episodes.setdefault(episode, _Episode(task, instruction))
        frame = e.frames.setdefault(stamp, {})
        frame.update(self._pending.pop(stamp, {}))
        frame.update(step=step, outcome=outcome)

    def _command_for(self, stamp: int, since: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        k = bisect.bisect_right(self._command_stamps, stamp) - 1
        if k < 0 or self._command_stamps[k] < since:  # nothing decided in this episode yet
            return None, None
        return self._commands[self._command_stamps[k]]

    def finish(self) -> list[str]:
        """Write every episode with frames (images) to DIR/episode-NNN-<task>.mp4; the paths written."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for number in sorted(self._episodes):
            e = self._episodes[number]
            stamps = sorted(s for s, f in e.frames.items() if "image" in f)
            if not stamps:
                continue
            views = [e.frames[s]["view"] for s in stamps if "view" in e.frames[s]]
            blank = np.zeros_like(views[0]) if views else None  # a view lost in transport: a black one, same size
            frames = []
            for stamp in stamps:
                f = e.frames[stamp]
                action, q = self._command_for(stamp, stamps[0])
                caption = f"episode {number}  {e.task}  step {f['step']}  {f['outcome']}".rstrip()
                frames.append(compose_frame(f["image"], f.get("view", blank), action, q, e.instruction, caption))
            size = frames[0].shape
            frames = [f for f in frames if f.shape == size]
            path = self.directory / f"episode-{number:03d}-{e.task or 'sim'}.mp4"
            self.written.append(str(write_mp4(frames, path, self.fps).resolve()))
        return self.written
