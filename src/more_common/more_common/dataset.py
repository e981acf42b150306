"""The project's episode dataset: one sharded, streamable on-disk format for every data source.

The simulator writes it, the QUARD and rosbag converters write it, the training package streams it.

[Format] (version 2) A dataset is a directory:

    DIR/index.json          the index (written last, atomically: a dataset without it is incomplete)
    DIR/<name>.npz          shards: uncompressed or zip-deflated numpy archives, never pickles

index.json:
    {"format": "more-episodes", "version": 2,
     "action_names": [...12 names in contract order...],
     "episodes": E, "transitions": T,
     "shards": [{"file": "shard-00000.npz", "episodes": 32, "transitions": 1234, "bytes": ...,
                 "sha256": "...", "image_shape": [H, W, 3], "tasks": {"go_to": 32},
                 "successes": 30, "experts": 28}, ...],
     "meta": {...free-form, e.g. the generator's configuration...}}

One shard holds whole episodes, concatenated along the step axis (N steps in all, E episodes):
    images         uint8   [N, H, W, 3]  RGB camera image the action was decided on
    actions        float32 [N, 12]       the command in the action contract's order (terminate last)
    rewards        float32 [N]           1 at the last step of a successful episode, else 0
    dones          bool    [N]           True at the last step of a *terminated* episode (terminal), else False
    steps_to_end   int32   [N]           steps left after this one (0 at the last step)
    episode_starts int64   [E + 1]       episode e spans steps [starts[e], starts[e + 1])
    episode_meta   uint8   [bytes]       UTF-8 JSON list of E dicts: episode_id, instruction, task, split,
                                         success, expert, terminated, length, meta
    extra/<name>   float32 [N, ...]      optional per-step arrays (e.g. the simulator's privileged state)

Rewards, dones and steps-to-end are derived from the episode's length, success and `terminated` (the rule
below) and stored for the consumers' convenience; the reader checks they agree.

[The done rule] (the one rule of the project; training/more_training/data.py and more_model.losses follow it)
- `terminated` True: the policy's terminate or a task condition (success or failure) ended the episode. Its
  last step is terminal: done = True, Bellman target = r (1 on success, else 0), no bootstrap.
- `terminated` False (truncated): a time limit cut the episode. No step is terminal (done = False
  everywhere), and the observation after the last step is not stored (one image per episode, for one
  transition in ~100), so the last step has no Bellman target: `Episode.td_mask` is False there and the RL
  stream leaves that transition out (imitation keeps it: its action is still a demonstration). Every other step
  bootstraps from the next stored image.
Version 1 datasets (dones True at every episode's last step) stay readable: the reader checks their stored
dones against the version-1 rule and then applies this one.

Reading streams one shard at a time. Any defect (unreadable zip, checksum mismatch, missing array,
wrong dtype or shape, non-finite action, inconsistent rewards, an index or episode header with wrong types)
raises `DatasetError` naming the shard or index file and, where it is one episode's fault, the episode.
Writing is all or nothing: `DatasetWriter` stages shards in a hidden directory and publishes them with the
index on a clean `close()`; an exception removes what it wrote (and the directories it created).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from more_common.action_contract import ACTION_NAMES, NUM_DIMS

FORMAT_NAME = "more-episodes"
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)  # 1: dones at every episode's last step (see the done rule)
INDEX_FILE = "index.json"
SHARD_SUFFIX = ".npz"
_REQUIRED = ("images", "actions", "rewards", "dones", "steps_to_end", "episode_starts", "episode_meta")


class DatasetError(ValueError):
    """A dataset, shard or episode that does not follow the format; the message names the file/episode."""


@dataclass
class Episode:
    """One episode in memory. Rewards, dones and steps-to-end follow from `success` and the length."""

    images: np.ndarray  # uint8 [T, H, W, 3]
    actions: np.ndarray  # float32 [T, 12], contract order
    instruction: str
    task: str
    success: bool
    expert: bool
    split: str = "id"
    episode_id: str = ""
    terminated: bool = True
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.extras = {k: np.asarray(v, dtype=np.float32) for k, v in self.extras.items()}
        self.success = bool(self.success)
        self.expert = bool(self.expert)
        self.terminated = bool(self.terminated)

    @property
    def length(self) -> int:
        return int(self.actions.shape[0])

    @property
    def rewards(self) -> np.ndarray:
        r = np.zeros(self.length, dtype=np.float32)
        if self.length and self.success:
            r[-1] = 1.0
        return r

    @property
    def dones(self) -> np.ndarray:
        """Terminal steps: the last step of a terminated episode (a truncated episode has none)."""
        d = np.zeros(self.length, dtype=bool)
        if self.length and self.terminated:
            d[-1] = True
        return d

    @property
    def td_mask(self) -> np.ndarray:
        """Steps with a Bellman target: all but the last step of a truncated episode (its next state is unknown)."""
        m = np.ones(self.length, dtype=bool)
        if self.length and not self.terminated:
            m[-1] = False
        return m

    @property
    def steps_to_end(self) -> np.ndarray:
        return np.arange(self.length - 1, -1, -1, dtype=np.int32)

    def validate(self, where: str = "episode") -> None:
        """Raise DatasetError (prefixed with `where`) unless the episode follows the format."""
        what = f"{where} (id {self.episode_id!r})" if self.episode_id else where
        if self.length < 1:
            raise DatasetError(f"{what}: an episode needs at least one step")
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            got = f"{self.images.dtype} {self.images.shape}"
            raise DatasetError(f"{what}: images must be uint8 [T, H, W, 3], got {got}")
        if self.actions.shape != (self.length, NUM_DIMS):
            raise DatasetError(f"{what}: actions must be [T, {NUM_DIMS}], got {self.actions.shape}")
        if self.images.shape[0] != self.length:
            raise DatasetError(f"{what}: {self.images.shape[0]} images for {self.length} actions")
        if not np.isfinite(self.actions).all():
            raise DatasetError(f"{what}: actions contain non-finite values")
        for name, arr in self.extras.items():
            if arr.shape[:1] != (self.length,):
                raise DatasetError(f"{what}: extra {name!r} has {arr.shape[:1]} steps, expected {self.length}")
        if not isinstance(self.instruction, str) or not isinstance(self.task, str):
            raise DatasetError(f"{what}: instruction and task must be strings")
        task_name_problem(self.task, what)

    def header(self) -> dict[str, Any]:
        return {
            "episode_id": self.episode_id,
            "instruction": self.instruction,
            "task": self.task,
            "split": self.split,
            "success": self.success,
            "expert": self.expert,
            "terminated": self.terminated,
            "length": self.length,
            "meta": self.meta,
        }


@dataclass(frozen=True)
class Transition:
    """One step (s, a, r, s', done) with the labels the offline-RL targets need."""

    image: np.ndarray
    next_image: np.ndarray  # a placeholder (= `image`) at the last step: done there, or no TD target
    action: np.ndarray
    reward: float
    done: bool
    steps_to_end: int
    success: bool
    expert: bool
    instruction: str
    task: str
    episode_id: str
    step: int
    has_td_target: bool = True  # False at the last step of a truncated episode (see the done rule)
    reasoning: str | None = None  # the reasoning label at s (models with reasoning; more_sim.scene_text)
    next_reasoning: str | None = None  # ... and at s'


@dataclass(frozen=True)
class ShardInfo:
    file: str
    episodes: int
    transitions: int
    bytes: int
    sha256: str
    image_shape: tuple[int, ...]
    tasks: dict[str, int]
    successes: int
    experts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "episodes": self.episodes,
            "transitions": self.transitions,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "image_shape": list(self.image_shape),
            "tasks": dict(self.tasks),
            "successes": self.successes,
            "experts": self.experts,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = INDEX_FILE) -> ShardInfo:
        """One entry of index.json's "shards"; wrong types raise DatasetError naming `where` (the index file)."""
        if not isinstance(data, Mapping):
            raise DatasetError(f"{where}: a shard entry must be a mapping, got {type(data).__name__}")
        name = data.get("file")
        if not isinstance(name, str) or not name or Path(name).name != name or name.startswith("."):
            raise DatasetError(f"{where}: shard file {name!r} must be a plain file name in the dataset directory")
        what = f"{where}: shard {name}"
        shape = data.get("image_shape", [])
        tasks = data.get("tasks", {})
        if not isinstance(shape, list) or not isinstance(tasks, Mapping):
            raise DatasetError(f"{what}: image_shape must be a list and tasks a mapping")
        return cls(
            file=name,
            episodes=_count(data.get("episodes"), f"{what} episodes", minimum=1),
            transitions=_count(data.get("transitions"), f"{what} transitions", minimum=1),
            bytes=_count(data.get("bytes", -1), f"{what} bytes", minimum=-1),
            sha256=_text(data.get("sha256", ""), f"{what} sha256"),
            image_shape=tuple(_count(v, f"{what} image_shape") for v in shape),
            tasks={str(k): _count(v, f"{what} tasks.{k}") for k, v in tasks.items()},
            successes=_count(data.get("successes", -1), f"{what} successes", minimum=-1),
            experts=_count(data.get("experts", -1), f"{what} experts", minimum=-1),
        )


def _count(value: Any, what: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise DatasetError(f"{what}: expected an integer >= {minimum}, got {value!r}")
    return value


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise DatasetError(f"{what}: expected a string, got {type(value).__name__} {value!r}")
    return value


# -- writing ---------------------------------------------------------------------------------------


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over `path`."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def encode_shard(episodes: Sequence[Episode], compress: bool = True, where: str = "shard") -> bytes:
    """The .npz bytes of one shard holding `episodes` (validated first)."""
    if not episodes:
        raise DatasetError(f"{where}: a shard needs at least one episode")
    for i, ep in enumerate(episodes):
        ep.validate(f"{where} episode {i}")
    shapes = {ep.images.shape[1:] for ep in episodes}
    if len(shapes) != 1:
        raise DatasetError(f"{where}: all images of a shard must have one shape, got {sorted(shapes)}")
    extra_names = {frozenset(ep.extras) for ep in episodes}
    if len(extra_names) != 1:
        raise DatasetError(f"{where}: all episodes of a shard must carry the same extras")
    lengths = [ep.length for ep in episodes]
    arrays: dict[str, np.ndarray] = {
        "images": np.concatenate([ep.images for ep in episodes]),
        "actions": np.concatenate([ep.actions for ep in episodes]).astype(np.float32),
        "rewards": np.concatenate([ep.rewards for ep in episodes]),
        "dones": np.concatenate([ep.dones for ep in episodes]),
        "steps_to_end": np.concatenate([ep.steps_to_end for ep in episodes]),
        "episode_starts": np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        "episode_meta": np.frombuffer(json.dumps([ep.header() for ep in episodes]).encode(), dtype=np.uint8),
    }
    for name in sorted(next(iter(extra_names))):
        arrays[f"extra/{name}"] = np.concatenate([ep.extras[name] for ep in episodes]).astype(np.float32)
    buf = io.BytesIO()
    (np.savez_compressed if compress else np.savez)(buf, **arrays)
    return buf.getvalue()


def write_shard(path: str | Path, episodes: Sequence[Episode], compress: bool = True) -> ShardInfo:
    """Write one shard atomically; return its index entry (the file name is relative to its directory)."""
    path = Path(path)
    payload = encode_shard(episodes, compress, where=path.name)
    atomic_write_bytes(path, payload)
    tasks: dict[str, int] = {}
    for ep in episodes:
        tasks[ep.task] = tasks.get(ep.task, 0) + 1
    return ShardInfo(
        file=path.name,
        episodes=len(episodes),
        transitions=sum(ep.length for ep in episodes),
        bytes=len(payload),
        sha256=hashlib.sha256(payload).hexdigest(),
        image_shape=tuple(int(v) for v in episodes[0].images.shape[1:]),
        tasks=tasks,
        successes=sum(ep.success for ep in episodes),
        experts=sum(ep.expert for ep in episodes),
    )


def write_index(root: str | Path, shards: Iterable[ShardInfo], meta: Mapping[str, Any] | None = None) -> Path:
    """Write DIR/index.json atomically, listing `shards` (sorted by file name)."""
    root = Path(root)
    shard_list = sorted(shards, key=lambda s: s.file)
    names = [s.file for s in shard_list]
    if len(set(names)) != len(names):
        raise DatasetError(f"duplicate shard files in index: {names}")
    index = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "action_names": list(ACTION_NAMES),
        "episodes": sum(s.episodes for s in shard_list),
        "transitions": sum(s.transitions for s in shard_list),
        "shards": [s.to_dict() for s in shard_list],
        "meta": dict(meta or {}),
    }
    path = root / INDEX_FILE
    atomic_write_bytes(path, (json.dumps(index, indent=1) + "\n").encode())
    return path


class DatasetWriter:
    """Buffer episodes, write a shard every `episodes_per_shard`, publish shards + index on `close()`.

    All or nothing: shards are staged in a hidden directory inside `root` and moved into place, followed by
    the index, only by `close()`. Use as a context manager: an exception in the block (or `abort()`) removes
    the staged shards and any directory the writer created, so a failed conversion leaves `root` as it was
    (an existing dataset replaced with `overwrite` stays intact until the new one is complete).
    """

    def __init__(
        self,
        root: str | Path,
        episodes_per_shard: int = 32,
        compress: bool = True,
        meta: Mapping[str, Any] | None = None,
        shard_prefix: str = "shard",
        overwrite: bool = False,
    ) -> None:
        if episodes_per_shard < 1:
            raise ValueError(f"episodes_per_shard must be >= 1, got {episodes_per_shard}")
        self.root = Path(root)
        if self.root.exists() and not self.root.is_dir():
            raise DatasetError(f"{self.root} exists and is not a directory")
        if (self.root / INDEX_FILE).exists() and not overwrite:
            raise DatasetError(
                f"{self.root} already holds a dataset ({INDEX_FILE}); pass overwrite=True (command line: --overwrite)"
            )
        self._created = [d for d in (self.root, *self.root.parents) if not d.exists()]
        self.root.mkdir(parents=True, exist_ok=True)
        self._staging = self.root / f".staging-{os.getpid()}-{id(self):x}"
        self._staging.mkdir()
        self.episodes_per_shard = episodes_per_shard
        self.compress = compress
        self.meta = dict(meta or {})
        self.shard_prefix = shard_prefix
        self.shards: list[ShardInfo] = []
        self._buffer: list[Episode] = []
        self._closed = False

    def add(self, episode: Episode) -> None:
        if self._closed:
            raise RuntimeError("writer is closed")
        episode.validate(f"episode {len(self.shards) * self.episodes_per_shard + len(self._buffer)}")
        self._buffer.append(episode)
        if len(self._buffer) >= self.episodes_per_shard:
            self.flush()

    def flush(self) -> None:
        if self._buffer:
            name = f"{self.shard_prefix}-{len(self.shards):05d}{SHARD_SUFFIX}"
            self.shards.append(write_shard(self._staging / name, self._buffer, self.compress))
            self._buffer = []

    def close(self) -> Path:
        """Publish: remove a replaced dataset's index, move the shards in, write the index, drop stale shards."""
        if self._closed:
            raise RuntimeError("writer is closed")
        try:
            self.flush()
        except BaseException:
            self.abort()
            raise
        self._closed = True
        old_files = _indexed_files(self.root / INDEX_FILE)
        (self.root / INDEX_FILE).unlink(missing_ok=True)  # from here until the new index: incomplete, as it is
        for info in self.shards:
            os.replace(self._staging / info.file, self.root / info.file)
        shutil.rmtree(self._staging, ignore_errors=True)
        path = write_index(self.root, self.shards, self.meta)
        for name in old_files - {s.file for s in self.shards}:
            (self.root / name).unlink(missing_ok=True)
        return path

    def abort(self) -> None:
        """Forget everything written so far: staged shards and the directories this writer created."""
        self._closed = True
        shutil.rmtree(self._staging, ignore_errors=True)
        for d in self._created:  # deepest first
            try:
                d.rmdir()
            except OSError:
                break  # not empty (someone else's files) or already gone: leave it and its parents

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        if exc_type is None:
            self.close()
        elif not self._closed:
            self.abort()


def _indexed_files(index_path: Path) -> set[str]:
    """Shard file names listed by an existing index (plain names only; nothing if it is unreadable)."""
    try:
        index = json.loads(index_path.read_text())
        entries = index.get("shards", []) if isinstance(index, dict) else []
    except (OSError, ValueError):
        return set()
    names = {e.get("file") for e in entries if isinstance(e, dict)}
    # only shard files: a crafted index naming index.json or a user's notes must not get them deleted on overwrite
    return {
        n
        for n in names
        if isinstance(n, str) and Path(n).name == n and not n.startswith(".") and n.endswith(SHARD_SUFFIX)
    }


# A task is a name (go_to, crawl, QUARD's "go to"), and converters make directories of it: never a path.
_TASK_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ .-]{0,63}")


def task_name_error(task: str) -> str | None:
    """Why `task` cannot label episodes (None if it can): it must be empty or a plain name of at most 64 characters
    (letters, digits, _ . - and spaces, not first; no separators, no '..'). A crafted dataset once made
    `quard-export` write outside its output directory through its task."""
    if task and (not _TASK_NAME.fullmatch(task) or ".." in task):
        return f"task {task!r} is not a plain name (up to 64 letters, digits, '_', '.', '-', spaces)"
    return None


def task_name_problem(task: str, where: str) -> None:
    """DatasetError naming `where` unless `task` is a valid label (task_name_error)."""
    error = task_name_error(task)
    if error:
        raise DatasetError(f"{where}: {error}")


# -- reading ---------------------------------------------------------------------------------------


_HEADER_TYPES: dict[str, tuple[type, Any]] = {
    "instruction": (str, ""),
    "task": (str, ""),
    "split": (str, "id"),
    "episode_id": (str, ""),
    "success": (bool, False),
    "expert": (bool, False),
    "terminated": (bool, True),
    "meta": (dict, {}),
}


def _header_values(header: Any, where: str) -> dict[str, Any]:
    """An episode_meta entry's fields, type-checked (a wrong type is a defect, never silently converted)."""
    if not isinstance(header, dict):
        raise DatasetError(f"{where}: episode_meta entry must be a mapping, got {type(header).__name__}")
    values = {}
    for key, (tp, default) in _HEADER_TYPES.items():
        value = header.get(key, default)
        if not isinstance(value, tp):
            raise DatasetError(f"{where}: episode_meta {key} must be {tp.__name__}, got {type(value).__name__}")
        values[key] = value
    task_name_problem(values["task"], where)
    length = header.get("length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int)):
        raise DatasetError(f"{where}: episode_meta length must be an integer, got {length!r}")
    values["length"] = length
    return values


def _episode_from_arrays(arrays: Mapping[str, np.ndarray], header: Mapping[str, Any], a: int, b: int) -> Episode:
    extras = {k[len("extra/") :]: arrays[k][a:b] for k in arrays if k.startswith("extra/")}
    return Episode(
        images=arrays["images"][a:b],
        actions=arrays["actions"][a:b],
        instruction=header["instruction"],
        task=header["task"],
        success=header["success"],
        expert=header["expert"],
        split=header["split"],
        episode_id=header["episode_id"],
        terminated=header["terminated"],
        extras=extras,
        meta=dict(header["meta"]),
    )


def _dones_v1(ep: Episode) -> np.ndarray:
    d = np.zeros(ep.length, dtype=bool)
    d[-1] = True
    return d


def decode_shard(payload: bytes, name: str = "shard", version: int = FORMAT_VERSION) -> list[Episode]:
    """Parse and check one shard's bytes (of a dataset of format `version`); errors name `name` and the episode."""
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as npz:
            missing = [k for k in _REQUIRED if k not in npz.files]
            if missing:
                raise DatasetError(f"{name}: missing arrays {missing}")
            arrays = {k: npz[k] for k in npz.files}
    except DatasetError:
        raise
    except Exception as err:  # BadZipFile, zlib.error, ValueError, EOFError, ...: all mean a corrupt file
        raise DatasetError(f"{name}: unreadable shard ({type(err).__name__}: {err})") from err
    starts = arrays["episode_starts"]
    n = arrays["actions"].shape[0] if arrays["actions"].ndim else -1
    if (
        starts.ndim != 1
        or starts.dtype.kind not in "iu"
        or starts.size < 2
        or starts[0] != 0
        or starts[-1] != n
        or (np.diff(starts) <= 0).any()
        or any(arrays[k].shape[:1] != (n,) for k in ("images", "rewards", "dones", "steps_to_end"))
    ):
        raise DatasetError(f"{name}: episode_starts {starts.reshape(-1).tolist()[:8]}... do not match {n} steps")
    meta_bytes = arrays["episode_meta"]
    if meta_bytes.dtype != np.uint8 or meta_bytes.ndim != 1:
        raise DatasetError(f"{name}: episode_meta must be uint8 [bytes], got {meta_bytes.dtype} {meta_bytes.shape}")
    try:
        headers = json.loads(meta_bytes.tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise DatasetError(f"{name}: episode_meta is not UTF-8 JSON ({err})") from err
    if not isinstance(headers, list) or len(headers) != starts.size - 1:
        count = len(headers) if isinstance(headers, list) else type(headers).__name__
        raise DatasetError(f"{name}: episode_meta lists {count} episodes, episode_starts {starts.size - 1}")
    episodes = []
    for e, raw_header in enumerate(headers):
        a, b = int(starts[e]), int(starts[e + 1])
        where = f"{name} episode {e}"
        header = _header_values(raw_header, where)
        ep = _episode_from_arrays(arrays, header, a, b)
        ep.validate(where)
        what = f"{where} (id {ep.episode_id!r})"
        if header["length"] is not None and header["length"] != ep.length:
            raise DatasetError(f"{what}: header length {header['length']} but {ep.length} steps")
        dones = _dones_v1(ep) if version == 1 else ep.dones
        for key, expected in (("rewards", ep.rewards), ("dones", dones), ("steps_to_end", ep.steps_to_end)):
            if not np.array_equal(arrays[key][a:b], expected):
                raise DatasetError(f"{what}: {key} disagree with the episode's length, success and termination")
        episodes.append(ep)
    return episodes


class EpisodeDataset:
    """A dataset on disk; iterating reads one shard at a time (nothing else is held in memory)."""

    def __init__(self, root: str | Path, verify_checksums: bool = True) -> None:
        self.root = Path(root)
        index_path = self.root / INDEX_FILE
        try:
            index = json.loads(index_path.read_text())
        except FileNotFoundError as err:
            raise DatasetError(f"{index_path} not found: not a dataset or an incomplete one") from err
        except (OSError, ValueError, RecursionError) as err:  # ValueError: JSON and UTF-8 decoding errors
            raise DatasetError(f"{index_path}: unreadable index ({type(err).__name__}: {err})") from err
        if not isinstance(index, dict) or index.get("format") != FORMAT_NAME:
            raise DatasetError(f"{index_path}: not a {FORMAT_NAME} index")
        version = index.get("version")
        if isinstance(version, bool) or version not in READABLE_VERSIONS:
            raise DatasetError(f"{index_path}: version {version!r} (this reader: {list(READABLE_VERSIONS)})")
        if index.get("action_names") != list(ACTION_NAMES):
            raise DatasetError(f"{index_path}: action_names differ from the contract {list(ACTION_NAMES)}")
        shards, meta = index.get("shards", []), index.get("meta", {})
        if not isinstance(shards, list) or not isinstance(meta, dict):
            raise DatasetError(f"{index_path}: shards must be a list and meta a mapping")
        self.index = index
        self.version = int(version)
        self.shards = [ShardInfo.from_dict(s, str(index_path)) for s in shards]
        names = [s.file for s in self.shards]
        if len(set(names)) != len(names):
            raise DatasetError(f"{index_path}: a shard file is listed twice")
        self.meta: dict[str, Any] = dict(meta)
        self.verify_checksums = verify_checksums

    def __len__(self) -> int:
        return sum(s.episodes for s in self.shards)

    @property
    def num_transitions(self) -> int:
        return sum(s.transitions for s in self.shards)

    def shards_for_rank(self, rank: int, world_size: int) -> list[int]:
        """Shard indices for one of `world_size` readers (round robin; disjoint, together complete)."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside [0, {world_size})")
        return list(range(rank, len(self.shards), world_size))

    def read_shard(self, i: int) -> list[Episode]:
        info = self.shards[i]
        path = self.root / info.file
        try:
            payload = path.read_bytes()
        except OSError as err:
            raise DatasetError(f"{path}: cannot read shard ({err})") from err
        if self.verify_checksums and info.sha256 and hashlib.sha256(payload).hexdigest() != info.sha256:
            raise DatasetError(f"{path}: checksum mismatch (file changed or corrupt)")
        episodes = decode_shard(payload, str(path), self.version)
        if len(episodes) != info.episodes:
            raise DatasetError(f"{path}: {len(episodes)} episodes, index says {info.episodes}")
        return episodes

    def iter_episodes(
        self, shards: Sequence[int] | None = None, shuffle: bool = False, seed: int = 0
    ) -> Iterator[Episode]:
        """Episodes of the given shards (default all); `shuffle` permutes shards and episodes in a shard."""
        order = list(range(len(self.shards))) if shards is None else list(shards)
        rng = np.random.default_rng(seed)
        if shuffle:
            rng.shuffle(order)
        for i in order:
            episodes = self.read_shard(i)
            if shuffle:
                episodes = [episodes[j] for j in rng.permutation(len(episodes))]
            yield from episodes

    def iter_transitions(
        self, shards: Sequence[int] | None = None, shuffle: bool = False, seed: int = 0
    ) -> Iterator[Transition]:
        for ep in self.iter_episodes(shards, shuffle, seed):
            yield from episode_transitions(ep)


def episode_transitions(ep: Episode) -> Iterator[Transition]:
    """The episode's transitions (all of them: an RL consumer leaves out those with has_td_target False)."""
    rewards, dones, to_end, td = ep.rewards, ep.dones, ep.steps_to_end, ep.td_mask
    for t in range(ep.length):
        yield Transition(
            image=ep.images[t],
            next_image=ep.images[min(t + 1, ep.length - 1)],
            action=ep.actions[t],
            reward=float(rewards[t]),
            done=bool(dones[t]),
            steps_to_end=int(to_end[t]),
            success=ep.success,
            expert=ep.expert,
            instruction=ep.instruction,
            task=ep.task,
            episode_id=ep.episode_id,
            step=t,
            has_td_target=bool(td[t]),
        )
