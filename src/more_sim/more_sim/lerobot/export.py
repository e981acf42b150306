"""The project's episode dataset -> LeRobotDataset v3.0 (layout and mapping: the package docstring)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from more_common.action_contract import ACTION_NAMES, NUM_DIMS
from more_common.dataset import INDEX_FILE, Episode, EpisodeDataset
from more_sim.lerobot import stats as st
from more_sim.lerobot.errors import LeRobotError
from more_sim.lerobot.layout import (
    CAMERA_KEY,
    CODEBASE_VERSION,
    DATA_PATH,
    DEFAULT_CHUNKS_SIZE,
    DEFAULT_DATA_FILE_MB,
    DEFAULT_VIDEO_FILE_MB,
    EPISODES_PATH,
    INDEX_FEATURES,
    INFO_PATH,
    MORE_PATH,
    MORE_PREFIX,
    ROBOT_TYPE,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    RollingParquetWriter,
    staging,
    write_json,
    write_tasks,
)
from more_sim.lerobot.video import VideoSettings, VideoSink, video_info

EPISODE_ROWS_PER_GROUP = 256  # episode metadata rows buffered per Parquet row group
_PA_TYPES = {"float32": pa.float32(), "bool": pa.bool_(), "int64": pa.int64()}


def resolve_fps(fps: int | None, meta: Mapping[str, Any]) -> int:
    """The frame rate: `fps` if given, else the generator's decision rate; LeRobot stores an integer."""
    if fps is None:
        rate = meta.get("config", {}).get("decision_hz", 5.0) if isinstance(meta.get("config"), dict) else 5.0
        if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0 or rate != round(rate):
            raise LeRobotError(f"the dataset's decision_hz {rate!r} is not a whole number of frames/s; pass --fps")
        return int(rate)
    if isinstance(fps, bool) or not isinstance(fps, int) or fps < 1:
        raise LeRobotError(f"fps must be a positive integer, got {fps!r}")
    return fps


def _vector_column(values: np.ndarray, dtype: str) -> pa.Array:
    """[N] -> a scalar column, [N, d] -> fixed_size_list<dtype>[d] (LeRobot's Value / Sequence(length=d))."""
    if values.ndim == 1:
        return pa.array(values, type=_PA_TYPES[dtype])
    flat = pa.array(np.ascontiguousarray(values).reshape(-1), type=_PA_TYPES[dtype])
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


class _Exporter:
    """Accumulates episodes into the data/video/episode files of one staged LeRobot dataset."""

    def __init__(
        self, root: Path, fps: int, video: VideoSettings, data_file_mb: float, video_file_mb: float, chunks_size: int
    ) -> None:
        self.root, self.fps, self.video = root, fps, video
        self.data_file_mb, self.video_file_mb, self.chunks_size = data_file_mb, video_file_mb, chunks_size
        self.tasks: dict[str, int] = {}
        self.episodes = 0
        self.frames = 0
        self.image_shape: tuple[int, ...] | None = None
        self.extras: dict[str, tuple[int, ...]] = {}
        self.extra_names: dict[str, list[str] | None] = {}
        self.vectors: dict[str, list[np.ndarray]] = {}  # feature -> per-episode values, for the global stats
        self.histogram = np.zeros((3, 256), np.int64)
        self.data: RollingParquetWriter | None = None
        self.meta_writer: RollingParquetWriter | None = None
        self.sink = VideoSink(root, CAMERA_KEY, fps, video, video_file_mb, chunks_size)
        self.rows: list[dict[str, Any]] = []

    # -- schema ------------------------------------------------------------------------------------
    def _vector_features(self) -> dict[str, dict[str, Any]]:
        """Numeric per-frame features in column order (LeRobot's features dict, videos excluded)."""
        features: dict[str, dict[str, Any]] = {}
        for name, shape in self.extras.items():
            features[f"observation.{name}"] = {
                "dtype": "float32",
                "shape": [int(np.prod(shape))] if shape else [1],
                "names": self.extra_names[name],
            }
        features["action"] = {"dtype": "float32", "shape": [NUM_DIMS], "names": list(ACTION_NAMES)}
        features["next.reward"] = {"dtype": "float32", "shape": [1], "names": None}
        features["next.done"] = {"dtype": "bool", "shape": [1], "names": None}
        features["next.success"] = {"dtype": "bool", "shape": [1], "names": None}
        for name, dtype in INDEX_FEATURES.items():
            features[name] = {"dtype": dtype, "shape": [1], "names": None}
        return features

    def _data_schema(self) -> pa.Schema:
        fields = []
        for key, ft in self._vector_features().items():
            kind = _PA_TYPES[ft["dtype"]]
            fields.append((key, kind if ft["shape"] == [1] else pa.list_(kind, ft["shape"][0])))
        return pa.schema(fields)

    def _first_episode(self, ep: Episode) -> None:
        self.image_shape = tuple(int(v) for v in ep.images.shape[1:])
        self.video.check_shape(*self.image_shape[:2])
        for name in sorted(ep.extras):
            shape = tuple(int(v) for v in ep.extras[name].shape[1:])
            if len(shape) > 1:
                raise LeRobotError(f"extra {name!r} has per-step shape {shape}; only vectors export to LeRobot")
            if "/" in name or f"observation.{name}" == CAMERA_KEY:
                raise LeRobotError(f"extra {name!r} cannot be a LeRobot feature name (no '/', not the camera)")
            self.extras[name] = shape
            fields = ep.meta.get(f"{name}_fields")  # e.g. the simulator's state_fields
            dims = int(np.prod(shape)) if shape else 1
            ok = isinstance(fields, list) and len(fields) == dims and all(isinstance(f, str) for f in fields)
            self.extra_names[name] = list(fields) if ok else None
        self.data = RollingParquetWriter(self.root, DATA_PATH, self.data_file_mb, self.chunks_size, self._data_schema())

    def _check_like_first(self, ep: Episode, where: str) -> None:
        if tuple(ep.images.shape[1:]) != self.image_shape:
            raise LeRobotError(
                f"{where}: images {tuple(ep.images.shape[1:])} differ from the first episode's {self.image_shape}; "
                "a LeRobot video feature has one shape"
            )
        shapes = {name: tuple(arr.shape[1:]) for name, arr in ep.extras.items()}
        if shapes != self.extras:
            raise LeRobotError(f"{where}: extras {shapes} differ from the first episode's {self.extras}")

    # -- one episode ---------------------------------------------------------------------------------
    def add(self, ep: Episode) -> None:
        e = self.episodes
        where = f"episode {e} (id {ep.episode_id!r})"
        if self.image_shape is None:
            self._first_episode(ep)
        self._check_like_first(ep, where)
        n = ep.length
        task_index = self.tasks.setdefault(ep.instruction, len(self.tasks))
        frame_index = np.arange(n, dtype=np.int64)
        values: dict[str, np.ndarray] = {}
        for k in self.extras:
            flat = ep.extras[k].reshape(n, -1)
            values[f"observation.{k}"] = flat[:, 0] if flat.shape[1] == 1 else flat  # shape [1]: a scalar column
        values.update(
            {
                "action": ep.actions.astype(np.float32),
                "next.reward": ep.rewards,
                "next.done": ep.dones,
                "next.success": ep.dones & ep.success,
                "timestamp": (frame_index / self.fps).astype(np.float32),
                "frame_index": frame_index,
                "episode_index": np.full(n, e, np.int64),
                "index": self.frames + frame_index,
                "task_index": np.full(n, task_index, np.int64),
            }
        )
        features = self._vector_features()
        table = pa.table({k: _vector_column(values[k], ft["dtype"]) for k, ft in features.items()})
        assert self.data is not None
        data_chunk, data_file = self.data.reserve(table.nbytes)
        self.data.write(table)
        video_chunk, video_file, t_from, t_to = self.sink.add(ep.images)
        histogram = st.image_histogram(ep.images)
        self.histogram += histogram
        episode_stats = {CAMERA_KEY: st.histogram_stats(histogram, n)}
        for key in features:
            self.vectors.setdefault(key, []).append(values[key])
            episode_stats[key] = st.vector_stats(values[key])
        row: dict[str, Any] = {
            "episode_index": e,
            "tasks": [ep.instruction],
            "length": n,
            "data/chunk_index": data_chunk,
            "data/file_index": data_file,
            "dataset_from_index": self.frames,
            "dataset_to_index": self.frames + n,
            f"videos/{CAMERA_KEY}/chunk_index": video_chunk,
            f"videos/{CAMERA_KEY}/file_index": video_file,
            f"videos/{CAMERA_KEY}/from_timestamp": t_from,
            f"videos/{CAMERA_KEY}/to_timestamp": t_to,
        }
        for key, feature_stats in episode_stats.items():
            for name in st.STAT_NAMES:
                row[f"stats/{key}/{name}"] = feature_stats[name].tolist()
        header = ep.header()
        row.update(
            {
                f"{MORE_PREFIX}episode_id": header["episode_id"],
                f"{MORE_PREFIX}task": header["task"],
                f"{MORE_PREFIX}split": header["split"],
                f"{MORE_PREFIX}success": header["success"],
                f"{MORE_PREFIX}expert": header["expert"],
                f"{MORE_PREFIX}terminated": header["terminated"],
                f"{MORE_PREFIX}meta": json.dumps(header["meta"]),
            }
        )
        self.rows.append(row)
        if len(self.rows) >= EPISODE_ROWS_PER_GROUP:
            self._flush_rows()
        self.episodes += 1
        self.frames += n

    def _episode_schema(self) -> pa.Schema:
        fields: list[tuple[str, pa.DataType]] = [
            ("episode_index", pa.int64()),
            ("tasks", pa.list_(pa.string())),
            ("length", pa.int64()),
            ("data/chunk_index", pa.int64()),
            ("data/file_index", pa.int64()),
            ("dataset_from_index", pa.int64()),
            ("dataset_to_index", pa.int64()),
            (f"videos/{CAMERA_KEY}/chunk_index", pa.int64()),
            (f"videos/{CAMERA_KEY}/file_index", pa.int64()),
            (f"videos/{CAMERA_KEY}/from_timestamp", pa.float64()),
            (f"videos/{CAMERA_KEY}/to_timestamp", pa.float64()),
        ]
        image_list = pa.list_(pa.list_(pa.list_(pa.float64())))
        for key in [CAMERA_KEY, *self._vector_features()]:
            for name in st.STAT_NAMES:
                kind = pa.list_(pa.int64()) if name == "count" else image_list if key == CAMERA_KEY else None
                fields.append((f"stats/{key}/{name}", kind or pa.list_(pa.float64())))
        fields += [
            (f"{MORE_PREFIX}episode_id", pa.string()),
            (f"{MORE_PREFIX}task", pa.string()),
            (f"{MORE_PREFIX}split", pa.string()),
            (f"{MORE_PREFIX}success", pa.bool_()),
            (f"{MORE_PREFIX}expert", pa.bool_()),
            (f"{MORE_PREFIX}terminated", pa.bool_()),
            (f"{MORE_PREFIX}meta", pa.string()),
            ("meta/episodes/chunk_index", pa.int64()),
            ("meta/episodes/file_index", pa.int64()),
        ]
        return pa.schema(fields)

    def _flush_rows(self) -> None:
        if not self.rows:
            return
        schema = self._episode_schema()
        if self.meta_writer is None:
            self.meta_writer = RollingParquetWriter(
                self.root, EPISODES_PATH, self.data_file_mb, self.chunks_size, schema
            )
        for row in self.rows:
            row["meta/episodes/chunk_index"] = row["meta/episodes/file_index"] = 0
        table = pa.Table.from_pylist(self.rows, schema=schema)
        chunk, file = self.meta_writer.reserve(table.nbytes)
        n = table.num_rows
        table = table.set_column(
            schema.get_field_index("meta/episodes/chunk_index"), "meta/episodes/chunk_index", pa.array([chunk] * n)
        )
        table = table.set_column(
            schema.get_field_index("meta/episodes/file_index"), "meta/episodes/file_index", pa.array([file] * n)
        )
        self.meta_writer.write(table)
        self.rows = []

    # -- the metadata files --------------------------------------------------------------------------
    def finish(self, index_meta: Mapping[str, Any], robot_type: str) -> dict[str, Any]:
        self._flush_rows()
        assert self.data is not None and self.meta_writer is not None and self.image_shape is not None
        self.data.close()
        self.meta_writer.close()
        self.sink.close()
        height, width = self.image_shape[:2]
        camera = {
            "dtype": "video",
            "shape": [height, width, 3],
            "names": ["height", "width", "channels"],
            "info": video_info(self.sink.files[0], self.video),
        }
        features = {CAMERA_KEY: camera, **self._vector_features()}
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": self.episodes,
            "total_frames": self.frames,
            "total_tasks": len(self.tasks),
            "chunks_size": self.chunks_size,
            "data_files_size_in_mb": self.data_file_mb,
            "video_files_size_in_mb": self.video_file_mb,
            "fps": self.fps,
            "splits": {"train": f"0:{self.episodes}"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH,
            "features": features,
        }
        global_stats = {CAMERA_KEY: st.histogram_stats(self.histogram, self.frames)}
        for key, chunks in self.vectors.items():
            global_stats[key] = st.vector_stats(np.concatenate(chunks))
        write_tasks(self.root / TASKS_PATH, list(self.tasks))
        write_json(self.root / STATS_PATH, st.to_json(global_stats))
        write_json(
            self.root / MORE_PATH,
            {
                "converter": "more-sim lerobot-export",
                "camera_key": CAMERA_KEY,
                "video": self.video.to_dict(),
                "index_meta": dict(index_meta),
                "extra_shapes": {name: list(shape) for name, shape in self.extras.items()},  # per step
            },
        )
        write_json(self.root / INFO_PATH, info)  # last: a dataset without info.json is not one
        return {
            "episodes": self.episodes,
            "frames": self.frames,
            "tasks": len(self.tasks),
            "fps": self.fps,
            "data_files": len(self.data.files),
            "video_files": len(self.sink.files),
            "video": {**self.video.to_dict(), "codec": camera["info"]["video.codec"]},
        }


def export_lerobot(
    dataset: str | Path,
    out: str | Path,
    *,
    fps: int | None = None,
    video: VideoSettings | None = None,
    robot_type: str = ROBOT_TYPE,
    data_file_mb: float = DEFAULT_DATA_FILE_MB,
    video_file_mb: float = DEFAULT_VIDEO_FILE_MB,
    chunks_size: int = DEFAULT_CHUNKS_SIZE,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the project dataset at `dataset` as a LeRobotDataset v3.0 at `out`; return a summary."""
    video = video or VideoSettings()
    if not data_file_mb > 0 or not video_file_mb > 0 or chunks_size < 1:
        raise LeRobotError(
            f"file sizes must be > 0 MB and chunks_size >= 1, got {data_file_mb}, {video_file_mb}, {chunks_size}"
        )
    if Path(out).resolve() == Path(dataset).resolve():
        raise LeRobotError(f"OUT {out} is the input dataset")
    src = EpisodeDataset(dataset)
    if len(src) == 0:
        raise LeRobotError(f"{Path(dataset) / INDEX_FILE}: the dataset has no episodes")
    rate = resolve_fps(fps, src.meta)
    with staging(out, overwrite, lambda p: (p / INFO_PATH).exists(), "a LeRobot dataset") as tmp:
        exporter = _Exporter(tmp, rate, video, data_file_mb, video_file_mb, chunks_size)
        try:
            for ep in src.iter_episodes():
                exporter.add(ep)
        finally:
            exporter.sink.close()
        summary = exporter.finish(src.meta, robot_type)
    return {**summary, "out": str(out)}
