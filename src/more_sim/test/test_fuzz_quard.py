"""Corrupt QUARD folders through `more-sim quard-import`: every file of an episode cut at every offset class and
with flipped bytes, wrong types, a missing info.csv. Always exit 2 with one line naming the file, never a
traceback, and no output directory; or, where the damage leaves valid data (a flipped value inside a pickle), a
complete dataset."""

import csv
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from more_common.dataset import DatasetWriter, Episode, EpisodeDataset
from more_common.fuzz import check_bad_input, flips, snapshot, truncations
from more_sim.cli import main
from more_sim.quard import dataset_to_quard


@pytest.fixture(scope="module")
def quard(tmp_path_factory):
    """A QUARD folder of two 3-frame episodes (the writer's layout: quard_export.json says stride 1)."""
    base = tmp_path_factory.mktemp("quard")
    with DatasetWriter(base / "ds") as w:
        for i in range(2):
            rng = np.random.default_rng(i)
            actions = rng.uniform(-0.3, 0.3, (3, 12)).astype(np.float32)
            actions[:, 11] = [0, 0, 1]
            w.add(
                Episode(
                    images=rng.integers(0, 256, (3, 12, 16, 3), dtype=np.uint8),
                    actions=actions,
                    instruction="go to the red ball",
                    task="go_to",
                    success=i == 0,
                    expert=i == 0,
                    episode_id=f"e{i}",
                )
            )
    dataset_to_quard(base / "ds", base / "root")
    return base / "root"


def _import(capsys, root, out, *extra):
    rc = main(["quard-import", str(root), str(out), "--trust-pickle", *extra])
    return rc, capsys.readouterr().err


def _damaged(quard, tmp_path, rel, payload):
    root = tmp_path / "root"
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(quard, root)
    target = root / rel
    if payload is None:
        target.unlink()
    else:
        target.write_bytes(payload)
    return root, target


EPISODE = "sim/go_to/000000"


def _fuzz(capsys, quard, tmp_path, rel, cases, strict):
    """Run quard-import on each damaged copy; `strict`: the damage must be detected (exit 2)."""
    detected = 0
    for label, payload in cases:
        root, target = _damaged(quard, tmp_path, rel, payload)
        out = tmp_path / "out"
        rc, err = _import(capsys, root, out)
        if rc == 0 and not strict:
            assert len(EpisodeDataset(out)) == 2, label  # undetectable damage: still a complete dataset
            shutil.rmtree(out)
            continue
        check_bad_input(rc, err, target, f"{rel} {label}")
        assert snapshot(out) is None, f"{rel} {label}: output written"
        detected += 1
    return detected


def test_cut_command_pickles_and_images_are_named(quard, tmp_path, capsys):
    for rel in (f"{EPISODE}/command/001.npy", f"{EPISODE}/image/002.png"):
        data = (quard / rel).read_bytes()
        assert _fuzz(capsys, quard, tmp_path, rel, truncations(data), strict=True) >= 10


def test_flipped_bytes(quard, tmp_path, capsys):
    png = f"{EPISODE}/image/000.png"
    _fuzz(capsys, quard, tmp_path, png, flips((quard / png).read_bytes()), strict=True)  # CRCs catch every flip
    npy = f"{EPISODE}/command/000.npy"
    # a pickle has no checksum: a flipped float is valid data; a flipped header or opcode must be named
    assert _fuzz(capsys, quard, tmp_path, npy, flips((quard / npy).read_bytes()), strict=False) >= 4


def test_info_csv_and_export_json(quard, tmp_path, capsys):
    info = f"{EPISODE}/info.csv"
    cases = [
        ("missing", None),
        ("empty", b""),
        ("not UTF-8", b"\xff\xfe\x00garbage\n"),
        ("header only", b"instruction,gait,success\n"),
        ("empty instruction", b"instruction,gait,success\n,trot,1\n"),
        ("success not a boolean", b"instruction,gait,success\ngo to the ball,trot,maybe\n"),
    ]
    _fuzz(capsys, quard, tmp_path, info, cases, strict=True)
    # cut text may still be valid CSV (a shorter instruction): never a traceback, and named when refused
    _fuzz(capsys, quard, tmp_path, info, truncations((quard / info).read_bytes()), strict=False)
    export = "quard_export.json"
    cases = [
        ("cut", b'{"stride": 1, "sou'),
        ("binary", b"\x00\x01\x02\xff"),
        ("stride a string", json.dumps({"stride": "ten"}).encode()),
        ("stride 0", json.dumps({"stride": 0}).encode()),
        ("stride a bool", json.dumps({"stride": True}).encode()),
        ("a list", b"[1, 2]"),
    ]
    _fuzz(capsys, quard, tmp_path, export, cases, strict=True)


def test_wrong_types_inside_the_command_pickle(quard, tmp_path, capsys):
    from more_sim.quard import action_to_command

    good = action_to_command(np.zeros(12))
    cases = [
        ("a list", [1, 2, 3]),
        ("a string value", {**good, "x_vel_cmd": "fast"}),
        ("a missing key", {k: v for k, v in good.items() if k != "pitch_cmd"}),
        ("a short gait", {**good, "gait ": [0.5]}),
        ("a NaN", {**good, "y_vel_cmd": float("nan")}),
    ]
    rel = f"{EPISODE}/command/001.npy"
    for label, obj in cases:
        root, target = _damaged(quard, tmp_path, rel, b"")
        np.save(target, np.asarray(obj, dtype=object) if isinstance(obj, list) else obj, allow_pickle=True)
        rc, err = _import(capsys, root, tmp_path / "out")
        check_bad_input(rc, err, target, label)
        assert not (tmp_path / "out").exists()


def test_failure_leaves_an_existing_dataset_unchanged(quard, tmp_path, capsys):
    out = tmp_path / "out"
    assert _import(capsys, quard, out)[0] == 0
    before = snapshot(out)
    root, target = _damaged(quard, tmp_path, "sim/go_to/000001/command/002.npy", b"\x93NUMPY")
    rc, err = _import(capsys, root, out, "--overwrite")  # the second episode fails after the first was read
    check_bad_input(rc, err, target)
    assert snapshot(out) == before


def test_missing_info_csv_needs_no_silent_empty_instruction(quard, tmp_path):
    """The issue's case, as a user runs it: a separate process, the README's command line."""
    root, target = _damaged(quard, tmp_path, f"{EPISODE}/info.csv", None)
    cmd = [sys.executable, "-m", "more_sim.cli", "quard-import", str(root), str(tmp_path / "out"), "--trust-pickle"]
    proc = subprocess.run([*cmd, "--success", "true"], capture_output=True, text=True, timeout=120)
    line = check_bad_input(proc.returncode, proc.stderr, target)
    assert "instruction is unknown" in line and not (tmp_path / "out").exists()
    # and a pickle cut inside its data (the UnpicklingError of the issue) in the same run's process
    with open(root / EPISODE / "info.csv", "w", newline="") as f:
        csv.writer(f).writerows([["instruction", "success"], ["go to the red ball", "1"]])
    npy = root / EPISODE / "command" / "001.npy"
    npy.write_bytes(npy.read_bytes()[:-40])
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert "UnpicklingError" in check_bad_input(proc.returncode, proc.stderr, npy)


def test_quard_export_of_a_damaged_dataset_writes_nothing(quard, tmp_path, capsys):
    out = tmp_path / "ds"
    assert _import(capsys, quard, out)[0] == 0
    shard = sorted(out.glob("*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:-1])
    rc = main(["quard-export", str(out), str(tmp_path / "q")])
    check_bad_input(rc, capsys.readouterr().err, shard)
    assert not (tmp_path / "q").exists() and not list(tmp_path.glob(".q.tmp*"))
