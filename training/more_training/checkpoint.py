"""Atomic, verifiable training checkpoints with keep-last-N.

A checkpoint is a directory `ROOT/step-00001234/`. It is written under a temporary name
(`ROOT/.tmp-step-00001234-<pid>/`), every file is fsynced, a `manifest.json` listing each file's size and
sha256 is written last, the directory is renamed into place (atomic on POSIX) and ROOT is fsynced. So a
process killed at any point leaves either the complete new checkpoint or none: the previous one stays
loadable. Leftover temporary directories are removed by the next manager. `latest()` returns the newest
checkpoint whose manifest verifies (a checkpoint damaged later, e.g. on disk, is skipped with a warning).

Optimizer state is stored without pickle: tensors in safetensors, the rest in JSON (`save_optimizer`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_STEP_RE = re.compile(r"^step-(\d{8,})$")


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, incomplete or does not verify (the message names the directory)."""


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def step_dir_name(step: int) -> str:
    return f"step-{step:08d}"


def write_manifest(directory: Path, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """fsync every file under `directory`, then write manifest.json (size + sha256 of each) and fsync it."""
    files = {}
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and p.name != MANIFEST):
        _fsync_path(path)
        files[str(path.relative_to(directory))] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    manifest = {"files": files, **(extra or {})}
    target = directory / MANIFEST
    with open(target, "w") as f:
        json.dump(manifest, f, indent=1)
        f.flush()
        os.fsync(f.fileno())
    for sub in sorted({p.parent for p in directory.rglob("*")} | {directory}):
        _fsync_path(sub)
    return manifest


def verify(directory: str | Path) -> dict[str, Any]:
    """Check a checkpoint directory against its manifest; return the manifest or raise CheckpointError."""
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8
        raise CheckpointError(f"{directory}: no readable {MANIFEST} ({type(err).__name__}: {err})") from err
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{path}: expected a mapping 'files' of file name -> size and sha256")
    for rel, info in files.items():
        size = info.get("bytes") if isinstance(info, dict) else None
        digest = info.get("sha256") if isinstance(info, dict) else None
        if isinstance(size, bool) or not isinstance(size, int) or not isinstance(digest, str):
            raise CheckpointError(f"{path}: entry {rel!r} needs an integer 'bytes' and a string 'sha256'")
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise CheckpointError(f"{path}: entry {rel!r} points outside the checkpoint")
        file = directory / rel
        if not file.is_file():
            raise CheckpointError(f"{directory}: {rel} is missing")
        if file.stat().st_size != size or _sha256(file) != digest:
            raise CheckpointError(f"{directory}: {rel} does not match the manifest (corrupt)")
    return manifest


class CheckpointManager:
    """Saves `step-N` directories atomically under `root` and keeps the newest `keep_last`."""

    def __init__(self, root: str | Path, keep_last: int = 3) -> None:
        if keep_last < 1:
            raise ValueError(f"keep_last must be >= 1, got {keep_last}")
        self.root = Path(root)
        self.keep_last = keep_last
        self.root.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()

    def _remove_stale_temporaries(self) -> None:
        for p in self.root.glob(".tmp-*"):
            log.warning("removing the unfinished checkpoint %s (a save was interrupted)", p)
            shutil.rmtree(p, ignore_errors=True)
        for p in self.root.glob(".old-*"):
            shutil.rmtree(p, ignore_errors=True)

    def checkpoints(self) -> list[tuple[int, Path]]:
        """(step, directory) of every completed checkpoint, oldest first (not verified)."""
        found = []
        for p in self.root.iterdir():
            m = _STEP_RE.match(p.name)
            if m and p.is_dir():
                found.append((int(m.group(1)), p))
        return sorted(found)

    def latest(self, verify_files: bool = True) -> Path | None:
        """The newest checkpoint that verifies, or None."""
        for _, path in reversed(self.checkpoints()):
            if not verify_files:
                return path
            try:
                verify(path)
                return path
            except CheckpointError as err:
                log.warning("skipping checkpoint: %s", err)
        return None

    def save(self, step: int, write: Callable[[Path], None], extra: dict[str, Any] | None = None) -> Path:
        """Call `write(tmp_dir)` to fill a new checkpoint, then publish it atomically as step-N."""
        final = self.root / step_dir_name(step)
        tmp = self.root / f".tmp-{final.name}-{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        try:
            write(tmp)
            write_manifest(tmp, {"step": step, **(extra or {})})
            if final.exists():
                # the same step saved again (e.g. the final save right after a periodic one): swap it
                old = self.root / f".old-{final.name}-{os.getpid()}"
                os.rename(final, old)
                os.rename(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.rename(tmp, final)
            _fsync_path(self.root)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self._prune()
        return final

    def _prune(self) -> None:
        for _, path in self.checkpoints()[: -self.keep_last]:
            shutil.rmtree(path, ignore_errors=True)


# -- optimizer state without pickle ------------------------------------------------------------------


def save_optimizer(
    optimizer: torch.optim.Optimizer, directory: Path, name: str = "optimizer", state_dict: dict | None = None
) -> None:
    """Tensors of optimizer.state_dict() (or of `state_dict`, e.g. gathered from shards) -> NAME.safetensors;
    everything else -> NAME.json."""
    sd = optimizer.state_dict() if state_dict is None else state_dict
    tensors: dict[str, torch.Tensor] = {}
    state_meta: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        meta: dict[str, Any] = {}
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}/{key}"] = value.detach().contiguous().cpu()
            else:
                meta[key] = value
        state_meta[str(idx)] = meta
    save_file(tensors, str(directory / f"{name}.safetensors"))
    (directory / f"{name}.json").write_text(json.dumps({"param_groups": sd["param_groups"], "state": state_meta}))


def load_optimizer(optimizer: torch.optim.Optimizer, directory: Path, name: str = "optimizer") -> None:
    meta = json.loads((directory / f"{name}.json").read_text())
    tensors = load_file(str(directory / f"{name}.safetensors"))
    state: dict[int, dict[str, Any]] = {int(i): dict(m) for i, m in meta["state"].items()}
    for key, value in tensors.items():
        idx, field_name = key.split("/", 1)
        state.setdefault(int(idx), {})[field_name] = value
    # JSON turns tuples (e.g. AdamW's betas) into lists; give them back their type
    groups = [
        {k: (tuple(v) if isinstance(v, list) and k != "params" else v) for k, v in g.items()}
        for g in meta["param_groups"]
    ]
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- RNG state ---------------------------------------------------------------------------------------


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, json) capturing torch's CPU and CUDA generators and Python's and NumPy's global RNGs."""
    import random

    import numpy as np

    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda{i}"] = s
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
    }
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    import random

    import numpy as np

    torch.set_rng_state(tensors["torch_cpu"])
    cuda = sorted(k for k in tensors if k.startswith("torch_cuda"))
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = meta["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
