"""Corrupt bags through the reader and `more-replay`: MCAP and sqlite3 files cut at every offset class and with
flipped bytes (corrupt length fields gave OverflowError / MemoryError tracebacks), a damaged metadata.yaml.
Always BagError / exit 2 with one line naming the bag, never a traceback, no dataset written; a flipped byte
inside a message's data may leave a readable bag."""

import shutil
import subprocess
import sys

import numpy as np
import pytest

from more_common.fuzz import check_bad_input, flips, snapshot, truncations
from more_vla_policy.replay import bag_io, cli
from more_vla_policy.replay.testing import BagBuilder

MS = 1_000_000


def _record(path, storage):
    b = BagBuilder(path, storage=storage)
    rng = np.random.default_rng(0)
    t = 1_000 * MS
    b.instruction(t - 5 * MS, "go to the red ball")
    for i in range(3):
        b.episode(t - MS, "go_to", "go to the red ball", 0, i)
        b.image(t, rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        b.command(t + 40 * MS, np.zeros(12), bins=[100] * 12, stamp_ns=t)
        t += 200 * MS
    b.episode(t, "go_to", "go to the red ball", 0, 3, done=True, success=True)
    b.close()
    return path


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def bag(request, tmp_path_factory):
    return _record(tmp_path_factory.mktemp("bags") / "bag", request.param)


def _data_file(bag):
    return next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))


def _damaged(bag, tmp_path, name, payload):
    d = tmp_path / "bag"
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(bag, d)
    (d / name).write_bytes(payload)
    return d


def _read(d):
    return sum(1 for _ in bag_io.read_messages(d))  # opens the bag as bag_topics does, then reads every message


def _check(d, strict, context):
    try:
        _read(d)
    except bag_io.BagError as err:
        assert "\n" not in str(err) and str(d) in str(err), f"{context}: {err}"
        return True
    assert not strict, f"{context}: damage not detected"
    return False


def test_cut_and_flipped_bag_files(bag, tmp_path):
    data_file = _data_file(bag)
    data = data_file.read_bytes()
    mcap = data_file.suffix == ".mcap"  # the stack's format gets the full loops; sqlite3 a sample of them
    for label, payload in list(truncations(data))[:: 1 if mcap else 3]:
        _check(_damaged(bag, tmp_path, data_file.name, payload), mcap, label)
    step = max(1, len(data) // (30 if mcap else 8))
    refused = sum(
        _check(_damaged(bag, tmp_path, data_file.name, payload), False, label)
        for label, payload in flips(data, range(0, len(data), step))
    )
    assert refused >= (3 if mcap else 1)


def test_damaged_metadata_yaml(bag, tmp_path):
    meta = (bag / "metadata.yaml").read_bytes()
    cases = [("empty", b""), ("binary", b"\xff\x00\xfe"), ("not a mapping", b"- 1\n- 2\n"), ("cut", meta[:200])]
    for label, payload in cases:
        _check(_damaged(bag, tmp_path, "metadata.yaml", payload), True, label)


def test_more_replay_to_dataset_on_damaged_bags(bag, tmp_path, capsys):
    """In-process CLI runs for breadth: exit 2, one line naming the bag, no dataset; or a complete one."""
    data_file = _data_file(bag)
    data = data_file.read_bytes()
    cases = list(truncations(data))[::4] + list(flips(data, range(0, len(data), max(1, len(data) // 6))))
    for label, payload in cases:
        d = _damaged(bag, tmp_path, data_file.name, payload)
        out = tmp_path / "ds"
        rc = cli.main([str(d), "--to-dataset", str(out)])
        err = capsys.readouterr().err
        if rc == 0:
            assert (out / "index.json").is_file(), label
            shutil.rmtree(out)
            continue
        check_bad_input(rc, err, d, label)
        assert snapshot(out) is None, f"{label}: output written"


def test_corrupt_length_field_as_a_user_runs_it(tmp_path):
    """The issue's OverflowError / MemoryError: a record length flipped in an MCAP file, in a separate process."""
    bag = _record(tmp_path / "src", "mcap")
    data = _data_file(bag).read_bytes()
    # the first record after the 8-byte magic: opcode (1 byte), then its u64 length: make it absurd
    payload = data[:9] + b"\xff" * 8 + data[17:]
    d = _damaged(bag, tmp_path, _data_file(bag).name, payload)
    cmd = [sys.executable, "-m", "more_vla_policy.replay.cli", str(d), "--to-dataset", str(tmp_path / "ds")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check_bad_input(proc.returncode, proc.stderr, d)
    assert not (tmp_path / "ds").exists()


def test_more_replay_with_a_damaged_checkpoint(tmp_path, capsys):
    from more_model.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", seed=0)
    (ckpt / "more_checkpoint.json").write_bytes(b'{"format": "more-vla-checkpoint", "version": 1, "model": [')
    bag = _record(tmp_path / "bag", "mcap")
    rc = cli.main([str(bag), "--checkpoint", str(ckpt)])
    check_bad_input(rc, capsys.readouterr().err, ckpt / "more_checkpoint.json")
