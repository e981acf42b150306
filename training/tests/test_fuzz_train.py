"""Corrupt inputs of the training tools as a user meets them: `more-train` on a damaged shard, a damaged config, a
damaged init checkpoint; `more-export` and `more-plot` on missing or damaged paths; `more-sim eval --policy` on a
damaged checkpoint; the training checkpoint's manifest. Always exit 2 with one line naming the file, never a
traceback, and nothing half written (the run / output directory absent or unchanged)."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import tiny_overrides

from more_common.fuzz import check_bad_input, flips, snapshot, truncations
from more_training import cli, export, plot
from more_training.checkpoint import MANIFEST, CheckpointError, verify, write_manifest
from more_training.config import load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


@pytest.fixture(scope="module")
def policy_ckpt(tmp_path_factory):
    from more_model.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("fuzz") / "ckpt", seed=1)


def _run(*argv, timeout=240):
    proc = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


def test_more_train_on_a_damaged_shard_removes_its_run_dir(tiny_data, tmp_path):
    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data)
    for shard in data.glob("*.npz"):  # every shard: the first one read fails, whichever the seed picks
        raw = bytearray(shard.read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        shard.write_bytes(bytes(raw))
    out = tmp_path / "run"
    rc, err = _run("-m", "more_training.cli", *tiny_overrides(data, out, optim__max_steps=12))
    line = check_bad_input(rc, _errors(err), data)
    assert "checksum mismatch" in line and ".npz" in line
    assert not out.exists()  # the run wrote its config before it failed on bad input: removed again


def test_more_train_reports_a_worker_error_in_one_line(tiny_data, tmp_path, capsys):
    """A DataLoader worker's DatasetError arrives with the worker's traceback in its text: one line is kept."""
    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data)
    for shard in data.glob("*.npz"):
        shard.write_bytes(shard.read_bytes()[:-1])
    out = tmp_path / "run"
    rc = cli.main(tiny_overrides(data, out, data__num_workers=2))
    line = check_bad_input(rc, _errors(capsys.readouterr().err), data)
    assert "checksum mismatch" in line and "Original" not in line
    assert not out.exists()


def _errors(stderr):
    """more-train logs INFO lines on stderr while it runs; the contract is about what is not a log line."""
    return "\n".join(line for line in stderr.splitlines() if not line.startswith(("INFO ", "WARNING ")))


def test_more_train_configs(tmp_path, capsys):
    text = (CONFIGS / "tiny_rl.yaml").read_bytes()
    bad = tmp_path / "bad.yaml"
    cases = [
        ("not UTF-8", b"\xff\xfe\x00"),
        ("a YAML syntax error", b"optim:\n  lr: [1, 2\n"),
        ("a tab indent", b"optim:\n\tlr: 1\n"),
        ("a list", b"- 1\n- 2\n"),
        ("a wrong type", b"optim:\n  lr: fast\n"),
        ("an unknown key", b"optim:\n  learning_rate: 0.1\n"),
        ("out of range", b"optim:\n  lr: -1.0\n"),
        ("extends a number", b"extends: 5\n"),
        ("extends a missing file", b"extends: nowhere.yaml\n"),
    ]
    cases += list(truncations(text)) + list(flips(text, range(0, len(text), 41)))
    for label, payload in cases:
        bad.write_bytes(payload)
        rc = cli.main(["--config", str(bad), "--print-config"])
        captured = capsys.readouterr()
        if rc == 0:  # a cut or flip that leaves a valid config (a shorter comment, a dropped optional section)
            assert load_config(bad) is not None and captured.err == "", label
            continue
        named = tmp_path / "nowhere.yaml" if label == "extends a missing file" else bad
        check_bad_input(rc, captured.err, named, label)
    bad.write_bytes(b"optim:\n  lr: [1, 2\n")
    assert cli.main(["--config", str(bad)]) == 2
    assert "line 3, column 1" in check_bad_input(2, capsys.readouterr().err, bad)  # where, in one line


def test_more_train_init_from_a_damaged_checkpoint(policy_ckpt, tiny_data, tmp_path, capsys):
    for rel, payload in (("more_checkpoint.json", b"{"), ("adapters.safetensors", b"\x00" * 7)):
        ckpt = tmp_path / "ckpt"
        shutil.rmtree(ckpt, ignore_errors=True)
        shutil.copytree(policy_ckpt, ckpt)
        (ckpt / rel).write_bytes(payload)
        out = tmp_path / "run"
        rc = cli.main(tiny_overrides(tiny_data, out, init__init_from=str(ckpt)))
        check_bad_input(rc, _errors(capsys.readouterr().err), ckpt / rel, rel)
        assert not out.exists()


def test_more_export(policy_ckpt, tmp_path, capsys):
    assert export.main([str(tmp_path / "missing"), str(tmp_path / "out")]) == 2
    check_bad_input(2, capsys.readouterr().err, tmp_path / "missing")
    out = tmp_path / "out"
    assert export.main([str(policy_ckpt), str(out)]) == 0
    capsys.readouterr()
    before = snapshot(out)
    for rel, payload in (("adapters.safetensors", b"\x00" * 12), ("more_checkpoint.json", b"[]")):
        ckpt = tmp_path / "ckpt"
        shutil.rmtree(ckpt, ignore_errors=True)
        shutil.copytree(policy_ckpt, ckpt)
        (ckpt / rel).write_bytes(payload)
        rc = export.main([str(ckpt), str(out)])
        check_bad_input(rc, capsys.readouterr().err, ckpt / rel, rel)
        assert snapshot(out) == before  # the previous export is untouched
        assert not list(tmp_path.glob(".out.tmp*"))
    # an output path that holds something else is refused, never deleted
    other = tmp_path / "notes"
    (other / "sub").mkdir(parents=True)
    (other / "sub" / "data.txt").write_text("mine")
    assert export.main([str(policy_ckpt), str(other)]) == 2
    assert "not a checkpoint (no more_checkpoint.json) and not empty" in check_bad_input(
        2, capsys.readouterr().err, other
    )
    assert (other / "sub" / "data.txt").read_text() == "mine"
    (tmp_path / "afile").write_text("x")
    assert export.main([str(policy_ckpt), str(tmp_path / "afile")]) == 2
    check_bad_input(2, capsys.readouterr().err, tmp_path / "afile")
    assert (tmp_path / "afile").read_text() == "x"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert export.main([str(policy_ckpt), str(empty)]) == 0 and (empty / "more_checkpoint.json").is_file()


def test_more_plot(tmp_path, capsys):
    assert plot.main([str(tmp_path / "missing")]) == 2
    check_bad_input(2, capsys.readouterr().err, tmp_path / "missing")
    run = tmp_path / "run"
    run.mkdir()
    assert plot.main([str(run)]) == 2
    check_bad_input(2, capsys.readouterr().err, run / "metrics.jsonl")
    (run / "metrics.jsonl").write_bytes(b"\xff\xfe\x00\x01garbage\n")
    assert plot.main([str(run)]) == 2
    assert "holds no records" in check_bad_input(2, capsys.readouterr().err, run / "metrics.jsonl")
    # lines of the wrong shape are skipped, the good ones drawn
    good = [{"step": s, "loss": 1.0 / (s + 1)} for s in range(5)]
    junk = ["[1, 2]", '{"loss": 3}', '{"step": "x", "loss": 1}', '{"step": 9, "loss": "high"}', '{"step": 1, "lo']
    (run / "metrics.jsonl").write_text("\n".join([*map(json.dumps, good), *junk]) + "\n")
    assert plot.main([str(run), "--out", str(tmp_path / "c.png")]) == 0
    assert (tmp_path / "c.png").stat().st_size > 1000 and capsys.readouterr().err == ""
    assert plot.main([str(run), "--out", str(tmp_path / "no" / "dir" / "c.png")]) == 2
    check_bad_input(2, capsys.readouterr().err, tmp_path / "no" / "dir" / "c.png")
    # an output that is not a PNG (matplotlib raised, or wrote r9.png while the tool printed r9), keys not there
    for out in ("d.txt", "d"):
        assert plot.main([str(run), "--out", str(tmp_path / out)]) == 2
        assert "must end in .png" in check_bad_input(2, capsys.readouterr().err, tmp_path / out)
        assert not list(tmp_path.glob(f"{out}*"))
    assert plot.main([str(run), "--keys", "loss", "bogus", "--out", str(tmp_path / "k.png")]) == 2
    line = check_bad_input(2, capsys.readouterr().err, "metrics.jsonl")
    assert "--keys ['bogus'] not in" in line and "numeric keys there: ['loss']" in line


def test_more_sim_eval_on_a_damaged_checkpoint(policy_ckpt, tmp_path):
    ckpt = tmp_path / "ckpt"
    shutil.copytree(policy_ckpt, ckpt)
    adapters = ckpt / "adapters.safetensors"
    adapters.write_bytes(adapters.read_bytes()[:100])
    out = tmp_path / "eval"
    cmd = ["-m", "more_sim.cli", "eval", "--policy", ckpt, "--episodes-per-task", 1, "--tasks", "go_to"]
    rc, err = _run(*cmd, "--out", out, "--json")
    check_bad_input(rc, err, adapters)
    assert not out.exists()


def test_training_checkpoint_manifest(tmp_path):
    d = tmp_path / "step-00000001"
    d.mkdir()
    (d / "a.bin").write_bytes(b"weights")
    write_manifest(d, {"step": 1})
    good = json.loads((d / MANIFEST).read_text())
    entry = good["files"]["a.bin"]
    cases = [(label, payload) for label, payload in truncations((d / MANIFEST).read_bytes())]
    cases += [
        (label, json.dumps(m).encode())
        for label, m in {
            "a list": [good],
            "files a list": {**good, "files": ["a.bin"]},
            "no files": {**good, "files": {}},
            "bytes a string": {**good, "files": {"a.bin": {**entry, "bytes": "7"}}},
            "entry a number": {**good, "files": {"a.bin": 7}},
            "outside": {**good, "files": {"../a.bin": entry}},
            "size wrong": {**good, "files": {"a.bin": {**entry, "bytes": 8}}},
        }.items()
    ]
    for label, payload in cases:
        (d / MANIFEST).write_bytes(payload)
        if payload.rstrip() == json.dumps(good, indent=1).encode().rstrip():
            verify(d)  # only the final newline cut
            continue
        with pytest.raises(CheckpointError) as info:
            verify(d)
        assert "\n" not in str(info.value) and str(d) in str(info.value), label
