"""LeRobotDataset v3.x -> the project's episode dataset (ours or anyone's; rules in the package docstring)."""

from __future__ import annotations

import io
import json
import os
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, UnidentifiedImageError

from more_common.action_contract import ACTION_NAMES, NUM_DIMS
from more_common.dataset import INDEX_FILE, DatasetError, DatasetWriter, Episode
from more_sim.lerobot.errors import LeRobotError
from more_sim.lerobot.layout import (
    CAMERA_KEY,
    EPISODES_DIR,
    INFO_PATH,
    MORE_PATH,
    MORE_PREFIX,
    TASKS_PATH,
    read_json,
    read_parquet,
    read_tasks,
    staging,
)
from more_sim.lerobot.video import VideoReader

_NUMERIC = re.compile(r"^(float(16|32|64)|u?int(8|16|32|64)|bool)$")
_EPISODE_COLUMNS = ("episode_index", "length", "data/chunk_index", "data/file_index")


@dataclass(frozen=True)
class Camera:
    key: str
    dtype: str  # "video" or "image"
    height: int
    width: int


def _flat_names(names: Any) -> list[Any] | None:
    """A feature's per-dim names: a list, or a dict holding one list (LeRobot's {"motors": [...]}), else None."""
    if isinstance(names, dict) and len(names) == 1:
        names = next(iter(names.values()))
    return names if isinstance(names, list) else None


def _check_info(info: Any, path: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    if not isinstance(info, dict):
        raise LeRobotError(f"{path}: not a JSON object")
    version = info.get("codebase_version")
    match = re.fullmatch(r"v(\d+)\.(\d+)", str(version))
    if not match or match.group(1) != "3":
        raise LeRobotError(
            f"{path}: codebase_version {version!r} is not v3.x (convert older datasets with LeRobot's "
            "convert_dataset_v21_to_v30 first)"
        )
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, int | float) or fps <= 0 or fps != round(fps):
        raise LeRobotError(f"{path}: fps {fps!r} is not a positive whole number")
    features = info.get("features")
    if not isinstance(features, dict) or not all(isinstance(ft, dict) for ft in features.values()):
        raise LeRobotError(f"{path}: 'features' must map names to {{dtype, shape, names}}")
    for key, ft in features.items():
        shape = ft.get("shape")
        if not isinstance(ft.get("dtype"), str) or not isinstance(shape, list | tuple):
            raise LeRobotError(f"{path}: feature {key!r} needs a dtype and a shape, got {ft}")
    if not isinstance(info.get("data_path"), str):
        raise LeRobotError(f"{path}: missing data_path")
    for key, fields in (("data_path", _DATA_FIELDS), ("video_path", _VIDEO_FIELDS)):
        if isinstance(info.get(key), str):
            _check_template(info[key], fields, f"{path}: {key}")
    return int(fps), features


_DATA_FIELDS = frozenset({"chunk_index", "file_index"})
_VIDEO_FIELDS = frozenset({"video_key", "chunk_index", "file_index"})


def _check_template(template: str, allowed: frozenset[str], where: str) -> None:
    """A path template of info.json may name only its own fields (LeRobot's: chunk_index, file_index, video_key)
    and must stay a relative path: it comes from the file, and it decides what this tool opens."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:
        raise LeRobotError(f"{where} {template!r} is not a path template: {err}") from err
    if not fields <= allowed:
        raise LeRobotError(f"{where} {template!r} names {sorted(fields - allowed)}; allowed: {sorted(allowed)}")
    if Path(template).is_absolute() or ".." in Path(template).parts:
        raise LeRobotError(f"{where} {template!r} must be a path inside the dataset")


def _inside(root: Path, template: str, where: str, **fields: Any) -> Path:
    """`template` filled in, as a path that must lie inside `root` (a value with '..' would leave it)."""
    try:
        path = root / template.format(**fields)
    except (KeyError, IndexError, ValueError) as err:
        raise LeRobotError(f"{where}: path template {template!r}: {err}") from err
    # lexically, not through symlinks: a Hugging Face cache snapshot links every file to ../../blobs/<sha>
    if not Path(os.path.normpath(path)).is_relative_to(os.path.normpath(root)):
        raise LeRobotError(f"{where}: {path} is outside the dataset {root}")
    return path


def _check_action(features: Mapping[str, dict[str, Any]], path: Path) -> None:
    ft = features.get("action")
    if ft is None:
        raise LeRobotError(f"{path}: feature 'action' missing (the project needs the 12-dim command)")
    if not _NUMERIC.match(ft["dtype"]) or ft["dtype"] == "bool":
        raise LeRobotError(f"{path}: feature 'action' has dtype {ft['dtype']!r}; expected a float vector")
    if [int(v) for v in ft["shape"]] != [NUM_DIMS]:
        raise LeRobotError(
            f"{path}: feature 'action' has shape {list(ft['shape'])}; the action contract needs [{NUM_DIMS}] "
            f"in the order {list(ACTION_NAMES)}"
        )
    names = _flat_names(ft.get("names"))
    if names is not None and len(names) == NUM_DIMS and list(names) != list(ACTION_NAMES):
        raise LeRobotError(
            f"{path}: feature 'action' names its dims {names}; the action contract's order is {list(ACTION_NAMES)}"
        )


def _pick_camera(features: Mapping[str, dict[str, Any]], wanted: str | None, path: Path) -> Camera:
    cameras = [k for k, ft in features.items() if ft["dtype"] in ("video", "image")]
    if wanted is not None:
        if wanted not in features:
            raise LeRobotError(f"{path}: camera feature {wanted!r} not found (cameras: {cameras})")
        if wanted not in cameras:
            raise LeRobotError(f"{path}: feature {wanted!r} is not a camera (dtype {features[wanted]['dtype']!r})")
        key = wanted
    elif CAMERA_KEY in cameras:
        key = CAMERA_KEY
    elif len(cameras) == 1:
        key = cameras[0]
    elif not cameras:
        raise LeRobotError(f"{path}: no camera feature (dtype video or image); the project's episodes need images")
    else:
        raise LeRobotError(f"{path}: several camera features {cameras}; choose one with --camera")
    ft = features[key]
    shape = [int(v) for v in ft["shape"]]
    names = [str(n).lower() for n in ft.get("names") or []] if isinstance(ft.get("names"), list) else []
    if len(shape) != 3:
        raise LeRobotError(f"{path}: camera feature {key!r} has shape {shape}; expected [H, W, 3] or [3, H, W]")
    channel_names = {"channel", "channels", "c", "rgb"}
    if (len(names) == 3 and names[0] in channel_names) or (not names and shape[0] == 3 and shape[2] != 3):
        channels, height, width = shape
    else:
        height, width, channels = shape
    if channels != 3:
        raise LeRobotError(f"{path}: camera feature {key!r} has {channels} channels (shape {shape}); expected RGB")
    return Camera(key, ft["dtype"], height, width)


def _vectors(column: pa.ChunkedArray | pa.Array, rows: int, width: int, what: str) -> np.ndarray:
    """A list / fixed-size-list column -> [rows, width], or a scalar column -> [rows] (width 1)."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if arr.null_count:
        raise LeRobotError(f"{what}: {arr.null_count} empty values")
    if pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type) or pa.types.is_fixed_size_list(arr.type):
        lengths = pc.list_value_length(arr).to_numpy(zero_copy_only=False)
        if (lengths != width).any():
            raise LeRobotError(f"{what}: rows hold {sorted(set(lengths.tolist()))} values, info.json says {width}")
        return arr.flatten().to_numpy(zero_copy_only=False).reshape(rows, width)
    if width != 1:
        raise LeRobotError(f"{what}: a scalar column, info.json says {width} values per frame")
    return arr.to_numpy(zero_copy_only=False)


def _column(row: Mapping[str, Any], name: str, default: Any) -> Any:
    """An episode's more/<name> value; `default` where the column is absent or empty (null)."""
    value = row.get(f"{MORE_PREFIX}{name}")
    return default if value is None else value


class _DataFile:
    """One data Parquet file with its rows grouped by episode (read once, kept while episodes need it)."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        import pyarrow.parquet as pq

        try:
            present = set(pq.read_schema(path).names)
        except FileNotFoundError as err:
            raise LeRobotError(f"{path} not found (listed in the episodes metadata)") from err
        except (pa.ArrowException, OSError) as err:
            raise LeRobotError(f"{path}: unreadable Parquet ({err})") from err
        missing = [c for c in columns if c not in present]
        if missing:
            raise LeRobotError(f"{path}: missing columns {missing}")
        self.path = path
        self.table = read_parquet(path, columns)
        episode = self.table.column("episode_index").to_numpy(zero_copy_only=False)
        order = np.argsort(episode, kind="stable")
        keys, starts = np.unique(episode[order], return_index=True)
        ends = np.append(starts[1:], len(order))
        self.rows = {int(k): order[a:b] for k, a, b in zip(keys, starts, ends, strict=True)}


class _Importer:
    def __init__(self, src: Path, camera: str | None) -> None:
        self.src = src
        info_path = src / INFO_PATH
        self.info = read_json(info_path, "not a LeRobot dataset (meta/info.json missing)")
        self.fps, self.features = _check_info(self.info, info_path)
        _check_action(self.features, info_path)
        self.camera = _pick_camera(self.features, camera, info_path)
        if self.camera.dtype == "video" and not isinstance(self.info.get("video_path"), str):
            raise LeRobotError(f"{info_path}: camera {self.camera.key!r} is a video but video_path is missing")
        self.extras = {
            key[len("observation.") :]: int(np.prod(ft["shape"]))
            for key, ft in self.features.items()
            if key.startswith("observation.") and _NUMERIC.match(ft["dtype"]) and len(ft["shape"]) == 1
        }
        used = {"action", self.camera.key, "next.success", "next.reward", "next.done", "timestamp"}
        used |= {"frame_index", "episode_index", "index", "task_index"} | {f"observation.{k}" for k in self.extras}
        self.ignored = sorted(k for k in self.features if k not in used)
        self.tasks = read_tasks(src / TASKS_PATH)
        self.episodes = self._read_episodes()
        more = src / MORE_PATH
        self.more = read_json(more, "") if more.exists() else {}
        if not isinstance(self.more, dict):
            self.more = {}
        shapes = self.more.get("extra_shapes")
        self.extra_shapes: dict[str, Any] = shapes if isinstance(shapes, dict) else {}
        self._data: _DataFile | None = None
        self._video: VideoReader | None = None
        self.several_tasks = 0  # episodes whose frames carry more than one task (the first one is kept)

    def _read_episodes(self) -> list[dict[str, Any]]:
        directory = self.src / EPISODES_DIR
        paths = sorted(directory.glob("*/*.parquet"))
        if not paths:
            raise LeRobotError(f"{directory}: no episode metadata files (chunk-CCC/file-FFF.parquet)")
        required = list(_EPISODE_COLUMNS)
        if self.camera.dtype == "video":
            required += [f"videos/{self.camera.key}/{k}" for k in ("chunk_index", "file_index", "from_timestamp")]
        rows: list[dict[str, Any]] = []
        for path in paths:
            table = read_parquet(path)
            missing = [c for c in required if c not in table.column_names]
            if missing:
                raise LeRobotError(f"{path}: missing columns {missing}")
            keep = [c for c in table.column_names if not c.startswith("stats/")]
            rows += table.select(keep).to_pylist()
        if not rows:
            raise LeRobotError(f"{directory}: the episodes metadata lists no episodes")
        rows.sort(key=lambda r: r["episode_index"])
        indices = [r["episode_index"] for r in rows]
        if len(set(indices)) != len(indices):
            raise LeRobotError(f"{directory}: duplicate episode_index values")
        return rows

    def close(self) -> None:
        if self._video is not None:
            self._video.close()
            self._video = None

    def _data_file(self, row: dict[str, Any]) -> _DataFile:
        path = _inside(
            self.src,
            self.info["data_path"],
            "data_path",
            chunk_index=int(row["data/chunk_index"]),
            file_index=int(row["data/file_index"]),
        )
        if self._data is None or self._data.path != path:
            columns = ["episode_index", "frame_index", "task_index", "action"]
            columns += [f"observation.{k}" for k in self.extras]
            columns += [k for k in ("timestamp", "index", "next.success", "next.reward") if k in self.features]
            if self.camera.dtype == "image":
                columns.append(self.camera.key)
            self._data = _DataFile(path, columns)
        return self._data

    def _images(self, row: dict[str, Any], table: pa.Table, timestamps: np.ndarray, where: str) -> np.ndarray:
        cam = self.camera
        if cam.dtype == "video":
            path = _inside(
                self.src,
                self.info["video_path"],
                "video_path",
                video_key=cam.key,
                chunk_index=int(row[f"videos/{cam.key}/chunk_index"]),
                file_index=int(row[f"videos/{cam.key}/file_index"]),
            )
            if self._video is None or self._video.path != path:
                self.close()
                self._video = VideoReader(path)
            start = float(row[f"videos/{cam.key}/from_timestamp"])
            images = self._video.frames_at(start + timestamps, where)
        else:
            images = np.stack([self._decode_image(v, where) for v in table.column(cam.key).to_pylist()])
        if images.shape[1:] != (cam.height, cam.width, 3):
            raise LeRobotError(
                f"{where}: frames of {cam.key!r} are {images.shape[1:3]}, info.json says {(cam.height, cam.width)}"
            )
        return images

    @staticmethod
    def _decode_image(value: Any, where: str) -> np.ndarray:
        data = value.get("bytes") if isinstance(value, dict) else None
        if not data:
            raise LeRobotError(f"{where}: an image without embedded bytes (external image files are not read)")
        try:
            return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        except (UnidentifiedImageError, OSError) as err:
            raise LeRobotError(f"{where}: undecodable image ({err})") from err

    def episode(self, row: dict[str, Any], success: bool | None, expert: bool | None, task: str) -> Episode:
        e = int(row["episode_index"])
        data = self._data_file(row)
        where = f"episode {e} ({data.path.name})"
        picks = data.rows.get(e)
        n = int(row["length"])
        if picks is None or len(picks) != n:
            got = 0 if picks is None else len(picks)
            raise LeRobotError(f"{where}: {got} data rows, the episodes metadata says length {n}")
        table = data.table.take(pa.array(picks))
        frame_index = table.column("frame_index").to_numpy(zero_copy_only=False)
        order = np.argsort(frame_index, kind="stable")
        if not np.array_equal(frame_index[order], np.arange(n)):
            raise LeRobotError(f"{where}: frame_index is not 0..{n - 1}")
        table = table.take(pa.array(order))
        if "index" in table.column_names and "dataset_from_index" in row:
            index = table.column("index").to_numpy(zero_copy_only=False)
            if not np.array_equal(index, row["dataset_from_index"] + np.arange(n)):
                raise LeRobotError(f"{where}: index column does not run from dataset_from_index")
        if "timestamp" in table.column_names:
            timestamps = _vectors(table.column("timestamp"), n, 1, f"{where} timestamp").astype(np.float64)
        else:
            timestamps = np.arange(n) / self.fps
        actions = _vectors(table.column("action"), n, NUM_DIMS, f"{where} action").astype(np.float32)
        if not np.isfinite(actions).all():
            raise LeRobotError(f"{where}: feature 'action' has non-finite values")
        extras = {}
        for name, dims in self.extras.items():
            values = _vectors(table.column(f"observation.{name}"), n, dims, f"{where} observation.{name}")
            shape = self.extra_shapes.get(name)  # our exports record the per-step shape; others: [d] or scalar
            if not (isinstance(shape, list) and int(np.prod(shape)) == dims):
                shape = [dims] if dims > 1 or values.ndim == 2 else []
            extras[name] = values.astype(np.float32).reshape(n, *shape)
        task_indices = table.column("task_index").to_numpy(zero_copy_only=False)
        if int(task_indices[0]) not in self.tasks:
            raise LeRobotError(f"{where}: task_index {int(task_indices[0])} not in {TASKS_PATH}")
        label = row.get(f"{MORE_PREFIX}success")
        if label is None:
            label = self._success_from_frames(table, n, where)
        if label is None:
            label = success
        if label is None:
            raise LeRobotError(
                f"{where}: no success label (episode column more/success, feature next.success, or a 0/1 "
                "next.reward); pass --success true|false"
            )
        is_expert = row.get(f"{MORE_PREFIX}expert")
        is_expert = (label if expert is None else expert) if is_expert is None else is_expert
        terminated = row.get(f"{MORE_PREFIX}terminated")
        meta_text = row.get(f"{MORE_PREFIX}meta")
        try:
            meta = json.loads(meta_text) if meta_text is not None else {"lerobot_episode_index": e}
        except json.JSONDecodeError as err:
            raise LeRobotError(f"{where}: column more/meta is not JSON ({err})") from err
        episode = Episode(
            images=self._images(row, table, timestamps, where),
            actions=actions,
            instruction=self.tasks[int(task_indices[0])],
            task=str(_column(row, "task", task)),
            success=bool(label),
            expert=bool(is_expert),
            split=str(_column(row, "split", "id")),
            episode_id=str(_column(row, "episode_id", f"lerobot-{e}")),
            terminated=True if terminated is None else bool(terminated),
            extras=extras,
            meta=meta if isinstance(meta, dict) else {"meta": meta},
        )
        self.several_tasks += int(len(set(task_indices.tolist())) > 1)
        return episode

    def _success_from_frames(self, table: pa.Table, n: int, where: str) -> bool | None:
        if "next.success" in table.column_names:
            return bool(_vectors(table.column("next.success"), n, 1, f"{where} next.success")[-1])
        if "next.reward" in table.column_names:
            reward = _vectors(table.column("next.reward"), n, 1, f"{where} next.reward")
            if np.isin(reward, (0.0, 1.0)).all():  # a sparse success reward, not a shaped one
                return bool(reward[-1] == 1.0)
        return None


def import_lerobot(
    src: str | Path,
    out: str | Path,
    *,
    camera: str | None = None,
    success: bool | None = None,
    expert: bool | None = None,
    task: str = "",
    episodes_per_shard: int = 32,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Convert the LeRobot v3 dataset at `src` into a project dataset at `out`; return a summary."""
    src = Path(src)
    if not src.is_dir():
        raise LeRobotError(f"{src}: not a directory (a LeRobot dataset root holds meta/, data/, videos/)")
    if episodes_per_shard < 1:
        raise LeRobotError(f"episodes_per_shard must be >= 1, got {episodes_per_shard}")
    if Path(out).resolve() == src.resolve():
        raise LeRobotError(f"OUT {out} is the input dataset")
    importer = _Importer(src, camera)
    index_meta = importer.more.get("index_meta")
    if not isinstance(index_meta, dict):
        index_meta = {
            "converter": "more-sim lerobot-import",
            "source": str(src),
            "fps": importer.fps,
            "robot_type": importer.info.get("robot_type"),
            "camera": importer.camera.key,
        }
    episodes = frames = successes = 0
    try:
        with staging(out, overwrite, lambda p: (p / INDEX_FILE).exists(), "a project dataset") as tmp:
            writer = DatasetWriter(tmp, episodes_per_shard=episodes_per_shard, meta=index_meta)
            for row in importer.episodes:
                ep = importer.episode(row, success, expert, task)
                try:
                    writer.add(ep)
                except DatasetError as err:
                    raise LeRobotError(f"episode {row['episode_index']}: {err}") from err
                episodes += 1
                frames += ep.length
                successes += ep.success
            writer.close()  # the index last, inside the staged directory
    finally:
        importer.close()
    return {
        "episodes": episodes,
        "transitions": frames,
        "successes": successes,
        "camera": importer.camera.key,
        "extras": sorted(importer.extras),
        "ignored_features": importer.ignored,
        "episodes_with_several_tasks": importer.several_tasks,
        "out": str(out),
    }
