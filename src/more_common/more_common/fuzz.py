"""Corrupt-file generators and the bad-input contract check shared by the fuzz tests of every reader.

The contract (DEVELOPERS.md): a file that cannot be used gives exit status 2 and exactly one line on stderr that
names the file, never a traceback, and nothing half written (the output is absent or unchanged).

    for label, payload in truncations(data):      # every offset class: empty, inside a header, middle, last byte
    for label, payload in flips(data):            # one byte inverted at several positions
    before = snapshot(out_dir); ...; assert snapshot(out_dir) == before
    check_bad_input(rc, stderr, "shard-00001.npz")
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

HEADER_OFFSETS = (1, 4, 8, 9, 12, 16, 32, 64, 128)  # magic numbers, length fields, the first header bytes


def offsets(size: int, extra: Sequence[int] = ()) -> list[int]:
    """Cut points of every class for a file of `size` bytes: empty, inside the header, the quarters, the last byte."""
    points = {0, *HEADER_OFFSETS, size // 4, size // 2, 3 * size // 4, size - 1, *extra}
    return sorted(p for p in points if 0 <= p < size)


def truncations(data: bytes, extra: Sequence[int] = ()) -> Iterator[tuple[str, bytes]]:
    for cut in offsets(len(data), extra):
        yield f"cut at {cut}/{len(data)}", data[:cut]


def flips(data: bytes, positions: Sequence[int] | None = None) -> Iterator[tuple[str, bytes]]:
    """`data` with one byte inverted, at `positions` (default: the header bytes and the quarters)."""
    n = len(data)
    where = positions if positions is not None else offsets(n)
    for pos in sorted({p for p in where if 0 <= p < n}):
        b = bytearray(data)
        b[pos] ^= 0xFF
        yield f"byte {pos}/{n} flipped", bytes(b)


def snapshot(path: str | Path) -> dict[str, bytes] | None:
    """Every file under `path` (relative name -> bytes; hidden files included), or None when `path` is absent."""
    root = Path(path)
    if not root.exists():
        return None
    if root.is_file():
        return {"": root.read_bytes()}
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def check_bad_input(returncode: int, stderr: str, names: str | Path, context: str = "") -> str:
    """Assert the bad-input contract on a finished command; returns the error line. `names`: what the line must
    mention (a file name or path)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    where = f" ({context})" if context else ""
    assert "Traceback" not in stderr, f"traceback{where}:\n{stderr}"
    assert returncode == 2, f"exit status {returncode}, expected 2{where}; stderr:\n{stderr}"
    assert len(lines) == 1, f"{len(lines)} lines on stderr, expected 1{where}:\n{stderr}"
    assert str(names) in lines[0], f"the error does not name {names}{where}: {lines[0]}"
    return lines[0]
