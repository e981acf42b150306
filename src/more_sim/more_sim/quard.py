"""QUARD's raw on-disk layout: read it into the project's dataset format, and export datasets to it.

[Layout] (as QUART's preprocessing code reads it; the exact columns of info.csv are not published,
so the reader is tolerant and the writer documented here):

    ROOT/<split dir>/<task>/<episode, 6 digits>/image/NNN.png     RGB frame NNN
                                                 command/NNN.npy   pickled dict (see below)
                                                 action/NNN.npy    pickled proprioception dict
                                                 info.csv          instruction, gait (+ our columns)

command/NNN.npy holds a dict: x_vel_cmd, y_vel_cmd, yaw_vel_cmd, body_height_cmd,
step_frequency_cmd, 'gait ' (three values; the key really has a trailing space), footswing_height_cmd,
pitch_cmd, roll_cmd, stance_width_cmd. Values may be scalars or 1-element arrays. The dict has no
terminate entry: QUART derives "done" from the end of the episode, so the reader sets terminate = 1
on the last kept frame, unless the dict carries our extra 'terminate' key (the writer adds it, so
exports round-trip exactly, including episodes that ended without terminate). roll_cmd is not part
of the 12-dim contract and is dropped (the writer writes 0).

QUARD records at 50 Hz and uses every 10th frame (5 Hz): the reader keeps every `stride`-th frame,
10 by default, or the stride named in ROOT/quard_export.json (the writer records 1: it writes one
frame per 5 Hz decision).

[Errors] Anything that does not follow the layout raises QuardError naming the file: a missing info.csv
or an empty instruction (an episode without its instruction cannot be trained on), a .npy that does not
unpickle to the command dict, a PNG that does not decode or fails its checksums (`Image.verify`), a
quard_export.json that is not JSON with an integer stride. `quard_to_dataset` writes all or nothing.

[Security] The .npy files are pickles: loading one can run arbitrary code. They are loaded only
with `trust_pickle=True` (CLI: --trust-pickle), for data from a source you trust; otherwise the
reader stops with an error that says so. The rest of the project never unpickles anything.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from more_common.action_contract import INDEX, NUM_DIMS, TERMINATE, snap_gait
from more_common.dataset import DatasetWriter, Episode, EpisodeDataset

DEFAULT_STRIDE = 10
EXPORT_FILE = "quard_export.json"
GAIT_KEY = "gait "  # sic: QUARD's key has a trailing space
COMMAND_KEYS = {  # contract dim -> QUARD key (gait and terminate handled separately)
    "vx": "x_vel_cmd",
    "vy": "y_vel_cmd",
    "wz": "yaw_vel_cmd",
    "step_frequency": "step_frequency_cmd",
    "body_height": "body_height_cmd",
    "pitch": "pitch_cmd",
    "stance_width": "stance_width_cmd",
    "footswing_height": "footswing_height_cmd",
}
TASK_ALIASES = {"goto": "go_to", "gothrough": "go_through", "goavoid": "go_avoid"}


class QuardError(ValueError):
    """Data that does not follow QUARD's layout, or pickles without the trust flag."""


def normalise_task(name: str) -> str:
    key = re.sub(r"[\s\-]+", "_", name.strip().lower())
    return TASK_ALIASES.get(key.replace("_", ""), key)


def _floats(value: Any, what: str) -> np.ndarray:
    try:
        return np.asarray(value, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise QuardError(f"{what}: not a number ({type(value).__name__})") from err


def _scalar(value: Any, what: str) -> float:
    arr = _floats(value, what)
    if arr.size < 1:
        raise QuardError(f"{what}: empty value")
    return float(arr[0])


def command_to_action(command: dict[str, Any], where: str = "command") -> np.ndarray:
    """QUARD command dict -> 12-vector in contract order (terminate from the optional 'terminate' key, else 0)."""
    action = np.zeros(NUM_DIMS, dtype=np.float64)
    for dim, key in COMMAND_KEYS.items():
        if key not in command:
            raise QuardError(f"{where}: missing key {key!r} (has {sorted(command)})")
        action[INDEX[dim]] = _scalar(command[key], f"{where} {key}")
    gait = command.get(GAIT_KEY, command.get("gait"))
    if gait is None:
        raise QuardError(f"{where}: missing key 'gait ' (with QUARD's trailing space)")
    g = _floats(gait, f"{where} gait")
    if g.size < 3:
        raise QuardError(f"{where}: gait needs 3 values, got {g.tolist()}")
    action[INDEX["gait_phase"] : INDEX["gait_bound"] + 1] = g[:3]
    action[TERMINATE] = _scalar(command.get("terminate", 0.0), f"{where} terminate")
    if not np.isfinite(action).all():
        raise QuardError(f"{where}: non-finite values {action.tolist()}")
    return action


def action_to_command(action: np.ndarray) -> dict[str, Any]:
    a = np.asarray(action, dtype=np.float64)
    command: dict[str, Any] = {key: float(a[INDEX[dim]]) for dim, key in COMMAND_KEYS.items()}
    command[GAIT_KEY] = a[INDEX["gait_phase"] : INDEX["gait_bound"] + 1].copy()
    command["roll_cmd"] = 0.0
    command["terminate"] = float(a[TERMINATE])
    return command


def _load_pickled(path: Path, trust_pickle: bool) -> dict[str, Any]:
    if not trust_pickle:
        raise QuardError(
            f"{path}: QUARD command files are pickles, which can run code when loaded; "
            "pass trust_pickle=True (more-sim quard-import --trust-pickle) only for data you trust"
        )
    try:
        obj = np.load(path, allow_pickle=True)
    except Exception as err:  # UnpicklingError, EOFError, ValueError, ...: a cut or damaged file
        raise QuardError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, dict):
        raise QuardError(f"{path}: expected a pickled dict, got {type(obj).__name__}")
    return obj


def _read_info(path: Path) -> dict[str, str]:
    """info.csv as {column: value}: a header row naming "instruction" and one row of values, or QUART's headerless
    "instruction, gait" row. The instruction must be there and not empty."""
    if not path.is_file():
        raise QuardError(f"{path} is missing: the episode's instruction is unknown")
    try:
        rows = [r for r in csv.reader(io.StringIO(path.read_bytes().decode("utf-8"))) if r]
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise QuardError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    if rows and "instruction" in [c.strip() for c in rows[0]]:
        header = [c.strip() for c in rows[0]]
        values = rows[1] if len(rows) > 1 else []
        info = {k: v.strip() for k, v in zip(header, values, strict=False)}
    elif rows:
        info = {"instruction": rows[0][0].strip(), **({"gait": rows[0][1].strip()} if len(rows[0]) > 1 else {})}
    else:
        info = {}
    if not info.get("instruction"):
        raise QuardError(f"{path}: no instruction (expected a column 'instruction' or the instruction first)")
    return info


_PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # every PNG ends with this empty IEND chunk and its CRC


def _read_png(path: Path) -> np.ndarray:
    """An RGB frame; a truncated or damaged PNG (end marker and chunk CRCs checked first) raises QuardError."""
    try:
        data = path.read_bytes()
        if not data.endswith(_PNG_END):
            raise ValueError("no PNG end marker: truncated or not a PNG")
        with Image.open(io.BytesIO(data)) as im:
            im.verify()  # every chunk's CRC: a flipped byte fails here
        with Image.open(io.BytesIO(data)) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as err:  # UnidentifiedImageError, OSError, SyntaxError (bad chunk), ValueError, ...
        raise QuardError(f"{path}: not a readable PNG ({type(err).__name__}: {err})") from err


def _parse_bool(text: str, where: str) -> bool:
    t = text.strip().lower()
    if t in ("1", "true", "yes", "success"):
        return True
    if t in ("0", "false", "no", "failure", "fail"):
        return False
    raise QuardError(f"{where}: cannot read {text!r} as a boolean")


def episode_dirs(root: str | Path) -> list[Path]:
    """Episode directories (those with image/ and command/), sorted."""
    root = Path(root)
    return sorted(p.parent for p in root.glob("**/command") if p.is_dir() and (p.parent / "image").is_dir())


def read_quard_episode(
    path: Path,
    trust_pickle: bool = False,
    stride: int = DEFAULT_STRIDE,
    success: bool | None = None,
    expert: bool | None = None,
    task: str | None = None,
    split: str = "id",
) -> Episode:
    """One QUARD episode directory as an Episode (labels from info.csv, else from the arguments)."""
    frames = sorted(int(p.stem) for p in (path / "command").glob("*.npy") if p.stem.isdigit())
    with_images = {int(p.stem) for p in (path / "image").glob("*.png") if p.stem.isdigit()}
    missing = [f for f in frames if f not in with_images]
    if missing:
        raise QuardError(f"{path}: frames {missing[:5]} have a command but no image")
    kept = frames[::stride]
    if not kept:
        raise QuardError(f"{path}: no frames")
    info = _read_info(path / "info.csv")  # first: a missing label fails before any pickle is loaded
    if "success" in info:
        success = _parse_bool(info["success"], f"{path}/info.csv success")
    if "expert" in info:
        expert = _parse_bool(info["expert"], f"{path}/info.csv expert")
    if success is None:
        raise QuardError(f"{path / 'info.csv'}: no success label; pass success=True/False (--success true|false)")
    width = len(next((path / "command").glob("*.npy")).stem)
    actions, images = [], []
    for f in kept:
        name = f"{f:0{width}d}"
        command = _load_pickled(path / "command" / f"{name}.npy", trust_pickle)
        actions.append(command_to_action(command, f"{path}/command/{name}.npy"))
        images.append(_read_png(path / "image" / f"{name}.png"))
    actions = np.stack(actions)
    if "terminate" not in command:
        actions[-1, TERMINATE] = 1.0  # QUARD: the episode's end is the stop
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise QuardError(f"{path}: images of different sizes {sorted(shapes)}")
    meta: dict[str, Any] = {"source": str(path), "stride": stride}
    if info.get("gait"):
        meta["gait"] = info["gait"]
    return Episode(
        images=np.stack(images),
        actions=actions.astype(np.float32),
        instruction=info.get("instruction", ""),
        task=normalise_task(info.get("task") or task or path.parent.name),
        success=success,
        expert=bool(success) if expert is None else expert,
        split=info.get("split", split),
        episode_id=info.get("episode_id") or f"{path.parent.name}/{path.name}",
        terminated=bool(actions[-1, TERMINATE] >= 0.5),
        meta=meta,
    )


def iter_quard(
    root: str | Path,
    trust_pickle: bool = False,
    stride: int | None = None,
    success: bool | None = None,
    expert: bool | None = None,
) -> Iterator[Episode]:
    root = Path(root)
    if not root.is_dir():
        raise QuardError(f"{root} is not a directory")
    if stride is None:
        stride = _export_stride(root / EXPORT_FILE) if (root / EXPORT_FILE).exists() else DEFAULT_STRIDE
    if stride < 1:
        raise QuardError(f"stride must be >= 1, got {stride}")
    dirs = episode_dirs(root)
    if not dirs:
        raise QuardError(f"{root}: no QUARD episodes (directories with image/ and command/)")
    for d in dirs:
        split_dir = d.parent.parent.name if d.parent.parent != root else "id"
        yield read_quard_episode(d, trust_pickle, stride, success, expert, split=split_dir)


def _export_stride(path: Path) -> int:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise QuardError(f"{path}: unreadable ({type(err).__name__}: {err})") from err
    stride = data.get("stride", 1) if isinstance(data, dict) else None
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise QuardError(f"{path}: expected a JSON object with an integer stride >= 1")
    return stride


def quard_to_dataset(
    root: str | Path,
    out: str | Path,
    trust_pickle: bool = False,
    stride: int | None = None,
    success: bool | None = None,
    expert: bool | None = None,
    episodes_per_shard: int = 32,
    overwrite: bool = False,
) -> dict[str, Any]:
    count = steps = 0
    meta = {"converter": "more-sim quard-import", "source": str(root), "stride": stride}
    with DatasetWriter(out, episodes_per_shard, meta=meta, overwrite=overwrite) as writer:
        for ep in iter_quard(root, trust_pickle, stride, success, expert):
            writer.add(ep)
            count += 1
            steps += ep.length
    return {"episodes": count, "transitions": steps, "out": str(out)}


def write_quard_episode(path: Path, episode: Episode) -> None:
    (path / "image").mkdir(parents=True, exist_ok=True)
    (path / "command").mkdir(exist_ok=True)
    (path / "action").mkdir(exist_ok=True)
    state = episode.extras.get("state")
    for t in range(episode.length):
        Image.fromarray(episode.images[t]).save(path / "image" / f"{t:03d}.png")
        np.save(path / "command" / f"{t:03d}.npy", action_to_command(episode.actions[t]), allow_pickle=True)
        if state is not None:
            s = state[t].astype(np.float64)
            proprio = {"body_pos": np.array([s[0], s[1], 0.0]), "body_yaw": s[2], "body_linear_vel": s[3:6]}
            np.save(path / "action" / f"{t:03d}.npy", proprio, allow_pickle=True)
    gait_name, _ = snap_gait(*episode.actions[0][INDEX["gait_phase"] : INDEX["gait_bound"] + 1])
    with open(path / "info.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["instruction", "gait", "success", "expert", "task", "split", "episode_id"])
        w.writerow(
            [
                episode.instruction,
                gait_name,
                int(episode.success),
                int(episode.expert),
                episode.task,
                episode.split,
                episode.episode_id,
            ]
        )


def dataset_to_quard(
    dataset: str | Path, out: str | Path, split_dir: str = "sim", overwrite: bool = False
) -> dict[str, Any]:
    """Export a dataset to QUARD's layout (one frame per decision; quard_export.json records stride 1).

    Written into a hidden sibling directory first and moved into `out` at the end (nothing on a failure). An
    existing non-empty `out` is refused, unless it is an earlier export and `overwrite` is set: it is then replaced
    whole (merging would keep episodes of the old export that the new one does not have)."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not (out / EXPORT_FILE).is_file():
            raise ValueError(f"{out} is not empty and holds no QUARD export ({EXPORT_FILE}): refusing to write there")
        if not overwrite:
            raise ValueError(f"{out} already holds a QUARD export; pass --overwrite to replace it")
    source = EpisodeDataset(dataset)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    counters: dict[str, int] = {}
    steps = 0
    try:
        tmp.mkdir()
        for ep in source.iter_episodes():
            k = counters.get(ep.task, 0)
            counters[ep.task] = k + 1
            target = tmp / split_dir / ep.task / f"{k:06d}"
            if not target.resolve().is_relative_to(tmp.resolve()):  # the reader checks task names; so do we
                raise ValueError(f"episode {ep.episode_id!r}: --split-dir/task {split_dir!r}/{ep.task!r} leave {out}")
            write_quard_episode(target, ep)
            steps += ep.length
        info = {"stride": 1, "source": str(dataset), "decision_hz": 5.0}
        (tmp / EXPORT_FILE).write_text(json.dumps(info) + "\n")
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        if out.exists():  # an empty directory, or the earlier export --overwrite replaces: aside until the new is in
            out.rename(old)
        tmp.rename(out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"episodes": sum(counters.values()), "transitions": steps, "out": str(out)}
