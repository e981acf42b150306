"""LeRobotDataset v3.0 paths, constants and file helpers (see the package docstring for the sources)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from more_sim.lerobot.errors import LeRobotError

CODEBASE_VERSION = "v3.0"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
MORE_PATH = "meta/more.json"  # this project's index meta; LeRobot ignores unknown files in meta/
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

DEFAULT_CHUNKS_SIZE = 1000  # files per chunk directory
DEFAULT_DATA_FILE_MB = 100
DEFAULT_VIDEO_FILE_MB = 200
CAMERA_KEY = "observation.images.front"
ROBOT_TYPE = "unitree_go2"
TOLERANCE_S = 1e-4  # LeRobotDataset's default tolerance between a query timestamp and a frame's pts

# LeRobot's DEFAULT_FEATURES: present in every dataset, one Parquet column each.
INDEX_FEATURES: dict[str, str] = {
    "timestamp": "float32",
    "frame_index": "int64",
    "episode_index": "int64",
    "index": "int64",
    "task_index": "int64",
}
MORE_PREFIX = "more/"  # episode columns carrying this project's episode header


def next_file(chunk_index: int, file_index: int, chunks_size: int) -> tuple[int, int]:
    """LeRobot's update_chunk_file_indices: the file after (chunk, file)."""
    if file_index >= chunks_size - 1:
        return chunk_index + 1, 0
    return chunk_index, file_index + 1


def read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise LeRobotError(f"{path} not found: {what}") from err
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LeRobotError(f"{path}: unreadable JSON ({err})") from err


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4, ensure_ascii=False) + "\n")


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        return pq.read_table(path, columns=columns)
    except FileNotFoundError as err:
        raise LeRobotError(f"{path} not found") from err
    except (pa.ArrowException, OSError, KeyError) as err:
        raise LeRobotError(f"{path}: unreadable Parquet ({err})") from err


@contextlib.contextmanager
def staging(out: str | Path, overwrite: bool, replaceable: Callable[[Path], bool], what: str) -> Iterator[Path]:
    """Yield an empty directory next to `out`; on success it becomes `out` in one rename, else it is removed.

    An existing `out` is only replaced with `overwrite` and when `replaceable(out)` says it holds what
    this command writes (so a mistyped OUT never deletes an unrelated directory).
    """
    out = Path(out)
    if out.exists():
        if not overwrite:
            raise LeRobotError(f"{out} already exists; pass --overwrite to replace it")
        if not out.is_dir() or not (replaceable(out) or not any(out.iterdir())):
            raise LeRobotError(f"{out} is not {what}; refusing to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the result is an ordinary directory
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / "x")
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


class RollingParquetWriter:
    """Parquet files chunk-CCC/file-FFF under one template: a new file once `limit_mb` would be passed.

    Sizes are estimated from the Arrow tables' in-memory bytes, as LeRobot estimates its files; every
    `write` is one row group.
    """

    def __init__(self, root: Path, template: str, limit_mb: float, chunks_size: int, schema: pa.Schema) -> None:
        self.root, self.template, self.schema = root, template, schema
        self.limit_bytes = limit_mb * 1024 * 1024
        self.chunks_size = chunks_size
        self.chunk_index, self.file_index = 0, 0
        self.bytes = 0
        self.files: list[Path] = []
        self._writer: pq.ParquetWriter | None = None

    def reserve(self, nbytes: int) -> tuple[int, int]:
        """The (chunk, file) the next table of `nbytes` goes to, rolling over to a new file if needed."""
        if self._writer is not None and self.bytes + nbytes > self.limit_bytes:
            self._close_file()
            self.chunk_index, self.file_index = next_file(self.chunk_index, self.file_index, self.chunks_size)
        return self.chunk_index, self.file_index

    def write(self, table: pa.Table) -> None:
        if self._writer is None:
            path = self.root / self.template.format(chunk_index=self.chunk_index, file_index=self.file_index)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(path, self.schema, compression="snappy", use_dictionary=True)
            self.files.append(path)
        self._writer.write_table(table.cast(self.schema))
        self.bytes += table.nbytes

    def _close_file(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
            self.bytes = 0

    def close(self) -> None:
        self._close_file()


def write_tasks(path: Path, tasks: list[str]) -> None:
    """tasks.parquet as pandas writes `DataFrame({"task_index": ...}, index=Index(tasks, name="task"))`.

    Row i holds task_index i (LeRobot looks tasks up by position: `tasks.iloc[task_index].name`); the
    pandas metadata makes `pd.read_parquet` restore the task strings as the index.
    """
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [
            {
                "name": None,
                "field_name": None,
                "pandas_type": "unicode",
                "numpy_type": "object",
                "metadata": {"encoding": "UTF-8"},
            }
        ],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64"},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object"},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    for column in pandas_meta["columns"]:
        column["metadata"] = None
    schema = pa.schema([("task_index", pa.int64()), ("task", pa.string())]).with_metadata(
        {b"pandas": json.dumps(pandas_meta).encode()}
    )
    table = pa.table({"task_index": list(range(len(tasks))), "task": tasks}, schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def read_tasks(path: Path) -> dict[int, str]:
    """task_index -> task string, from a tasks.parquet written by pandas (named or unnamed index) or by us."""
    table = read_parquet(path)
    if "task_index" not in table.column_names:
        raise LeRobotError(f"{path}: no task_index column (has {table.column_names})")
    names = [n for n in table.column_names if n != "task_index"]
    meta = table.schema.metadata or {}
    with contextlib.suppress(KeyError, ValueError, TypeError):
        index_columns = json.loads(meta[b"pandas"])["index_columns"]
        names = [n for n in index_columns if isinstance(n, str) and n in names] + names
    text = [
        n
        for n in names
        if pa.types.is_string(table.schema.field(n).type) or pa.types.is_large_string(table.schema.field(n).type)
    ]
    if not text:
        raise LeRobotError(f"{path}: no task string column (has {table.column_names})")
    indices = table.column("task_index").to_pylist()
    strings = table.column(text[0]).to_pylist()
    if any(i is None for i in indices) or any(s is None for s in strings):
        raise LeRobotError(f"{path}: empty task or task_index entries")
    return {int(i): str(s) for i, s in zip(indices, strings, strict=True)}
