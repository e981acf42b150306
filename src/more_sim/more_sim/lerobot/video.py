"""mp4 video through PyAV: episodes encoded back to back into rolling files, and frames read back by time."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from more_sim.lerobot.errors import LeRobotError
from more_sim.lerobot.layout import TOLERANCE_S, VIDEO_PATH, next_file

CODECS = {"libx264": 51, "libsvtav1": 63}  # encoder -> highest crf
PIX_FMTS = ("yuv444p", "yuv420p")


@dataclass(frozen=True)
class VideoSettings:
    """Encoder settings; the defaults keep frames within 2 grey levels (lossless in YUV)."""

    vcodec: str = "libx264"
    pix_fmt: str = "yuv444p"
    crf: int = 0
    gop: int = 2  # LeRobot's g: a key frame every 2 frames keeps random access cheap

    def __post_init__(self) -> None:
        if self.vcodec not in CODECS:
            raise LeRobotError(f"vcodec {self.vcodec!r} not supported; choose from {sorted(CODECS)}")
        if self.pix_fmt not in PIX_FMTS:
            raise LeRobotError(f"pix_fmt {self.pix_fmt!r} not supported; choose from {list(PIX_FMTS)}")
        if self.vcodec == "libsvtav1" and self.pix_fmt != "yuv420p":
            raise LeRobotError(f"pix_fmt {self.pix_fmt!r} does not work with libsvtav1 (4:2:0 only); use yuv420p")
        if not 0 <= self.crf <= CODECS[self.vcodec]:
            raise LeRobotError(f"crf {self.crf} outside [0, {CODECS[self.vcodec]}] for {self.vcodec}")
        if self.gop < 1:
            raise LeRobotError(f"gop must be >= 1, got {self.gop}")

    def check_shape(self, height: int, width: int) -> None:
        if self.pix_fmt == "yuv420p" and (height % 2 or width % 2):
            raise LeRobotError(f"images {height}x{width}: yuv420p needs an even height and width; use yuv444p")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class VideoSink:
    """One video key's mp4 files; `add` appends an episode and says where it went and when it starts."""

    def __init__(
        self, root: Path, key: str, fps: int, settings: VideoSettings, limit_mb: float, chunks_size: int
    ) -> None:
        self.root, self.key, self.fps, self.settings = root, key, fps, settings
        self.limit_bytes = limit_mb * 1024 * 1024
        self.chunks_size = chunks_size
        self.chunk_index, self.file_index = 0, 0
        self.frames_in_file = 0
        self.bytes_in_file = 0  # encoded bytes muxed so far (encoders buffer: the file lags behind)
        self.files: list[Path] = []
        self._container: Any = None
        self._stream: Any = None

    def _path(self) -> Path:
        return self.root / VIDEO_PATH.format(
            video_key=self.key, chunk_index=self.chunk_index, file_index=self.file_index
        )

    def _open(self, height: int, width: int) -> None:
        os.environ.setdefault("SVT_LOG", "0")  # SVT-AV1 prints its configuration to stderr otherwise
        path = self._path()
        path.parent.mkdir(parents=True, exist_ok=True)
        options = {"crf": str(self.settings.crf), "g": str(self.settings.gop)}
        self._container = av.open(str(path), "w")
        self._stream = self._container.add_stream(self.settings.vcodec, rate=self.fps, options=options)
        self._stream.pix_fmt = self.settings.pix_fmt
        self._stream.width, self._stream.height = width, height
        self.files.append(path)
        self.frames_in_file = self.bytes_in_file = 0

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self.bytes_in_file += packet.size
            self._container.mux(packet)

    def _close_file(self) -> None:
        if self._container is not None:
            self._mux(self._stream.encode())
            self._container.close()
            self._container = self._stream = None

    def add(self, frames: np.ndarray) -> tuple[int, int, float, float]:
        """Encode [T, H, W, 3] uint8 frames; return (chunk_index, file_index, from_timestamp, to_timestamp)."""
        if self._container is not None and self.bytes_in_file:
            size = self.bytes_in_file
            if size + size / self.frames_in_file * len(frames) >= self.limit_bytes:
                self._close_file()
                self.chunk_index, self.file_index = next_file(self.chunk_index, self.file_index, self.chunks_size)
        if self._container is None:
            self._open(frames.shape[1], frames.shape[2])
        start = self.frames_in_file
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.frames_in_file
            frame.time_base = Fraction(1, self.fps)
            self._mux(self._stream.encode(frame))
            self.frames_in_file += 1
        return self.chunk_index, self.file_index, start / self.fps, self.frames_in_file / self.fps

    def close(self) -> None:
        self._close_file()


def video_info(path: Path, settings: VideoSettings | None = None) -> dict[str, Any]:
    """A feature's "info" as LeRobot's get_video_info writes it (plus the encoder settings)."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            info: dict[str, Any] = {
                "video.height": stream.height,
                "video.width": stream.width,
                "video.codec": stream.codec_context.codec.canonical_name,
                "video.pix_fmt": stream.pix_fmt,
                "video.is_depth_map": False,
                "video.fps": int(stream.base_rate),
                "video.channels": 3,
                "has_audio": bool(container.streams.audio),
            }
    except (av.FFmpegError, IndexError) as err:
        raise LeRobotError(f"{path}: unreadable video ({err})") from err
    if settings is not None:
        info.update({"video.g": settings.gop, "video.crf": settings.crf})
    return info


class VideoReader:
    """Frames of one mp4 file looked up by time, decoding forward and seeking only when needed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self._container = av.open(str(path))
            self._stream = self._container.streams.video[0]
        except FileNotFoundError as err:
            raise LeRobotError(f"{path} not found (listed in the episodes metadata)") from err
        except (av.FFmpegError, IndexError) as err:
            raise LeRobotError(f"{path}: unreadable video ({err})") from err
        self._frames: Any = None
        self._position = float("inf")  # time of the last decoded frame; inf: nothing decoded yet

    def close(self) -> None:
        self._container.close()

    def _restart(self, at: float) -> None:
        target = int(max(at - 1.0, 0.0) / self._stream.time_base)
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        self._frames = self._container.decode(self._stream)
        self._position = -float("inf")

    def _next(self) -> tuple[float, np.ndarray] | None:
        try:
            frame = next(self._frames)
        except StopIteration:
            return None
        except av.FFmpegError as err:
            raise LeRobotError(f"{self.path}: undecodable video ({err})") from err
        if frame.pts is None:
            raise LeRobotError(f"{self.path}: a frame without a timestamp (pts)")
        time = float(frame.pts * frame.time_base)
        self._position = time
        return time, frame.to_ndarray(format="rgb24")

    def frames_at(self, times: np.ndarray, where: str) -> np.ndarray:
        """The frames whose pts lie within TOLERANCE_S of each of `times` (ascending seconds)."""
        if not len(times):
            return np.zeros((0, self._stream.height, self._stream.width, 3), np.uint8)
        first = float(times[0])
        if self._frames is None or first < self._position - TOLERANCE_S or first > self._position + 2.0:
            self._restart(first)
        out: list[np.ndarray] = []
        k = 0
        while k < len(times):
            item = self._next()
            if item is None:
                raise LeRobotError(
                    f"{where}: {self.path} ends before t = {times[k]:.4f} s ({len(out)} of {len(times)} frames)"
                )
            time, image = item
            if time < times[k] - TOLERANCE_S:
                continue
            if time > times[k] + TOLERANCE_S:
                raise LeRobotError(
                    f"{where}: no frame of {self.path} within {TOLERANCE_S} s of t = {times[k]:.4f} s "
                    f"(next frame at {time:.4f} s)"
                )
            out.append(image)
            k += 1
        return np.stack(out)
