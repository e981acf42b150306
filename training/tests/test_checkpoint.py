"""Checkpoint manager: atomic publish, a crash (exception or SIGKILL) during a save keeps the previous one
loadable, keep-last-N, corrupt checkpoints skipped; optimizer and RNG state round-trip without pickle."""

import json
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from more_training.checkpoint import (
    CheckpointError,
    CheckpointManager,
    load_optimizer,
    rng_state,
    save_optimizer,
    set_rng_state,
    verify,
)


def _write_payload(value: int):
    def write(d):
        (d / "a.json").write_text(json.dumps({"value": value}))
        (d / "b.bin").write_bytes(bytes([value % 256]) * 1000)

    return write


def _value(path):
    return json.loads((path / "a.json").read_text())["value"]


def test_save_publishes_complete_directories_and_keeps_last_n(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=2)
    for step in (1, 2, 3):
        m.save(step, _write_payload(step))
    assert [s for s, _ in m.checkpoints()] == [2, 3]
    latest = m.latest()
    assert latest.name == "step-00000003"
    assert _value(latest) == 3
    assert set(verify(latest)["files"]) == {"a.json", "b.bin"}
    assert not list(tmp_path.glob(".tmp-*"))


def test_exception_during_save_leaves_previous_loadable(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=3)
    m.save(10, _write_payload(10))

    def broken(d):
        (d / "a.json").write_text('{"value": 2')  # half a file
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        m.save(20, broken)
    assert m.latest().name == "step-00000010"
    assert _value(m.latest()) == 10
    assert not list(tmp_path.glob(".tmp-*"))


def test_sigkill_during_save_leaves_previous_loadable(tmp_path):
    """A process killed (SIGKILL, no clean-up) in the middle of writing a checkpoint."""
    script = textwrap.dedent(
        f"""
        import os, signal, json
        from pathlib import Path
        from more_training.checkpoint import CheckpointManager
        m = CheckpointManager({str(tmp_path)!r}, keep_last=3)
        m.save(1, lambda d: (d / "a.json").write_text(json.dumps({{"value": 1}})))
        def dying(d):
            (d / "a.json").write_text('{{"val')
            os.kill(os.getpid(), signal.SIGKILL)
        m.save(2, dying)
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()
    assert list(tmp_path.glob(".tmp-step-00000002-*")), "the killed save should have left its temporary dir"
    m = CheckpointManager(tmp_path)  # a new run: cleans up and finds the previous checkpoint
    assert not list(tmp_path.glob(".tmp-*"))
    assert m.latest().name == "step-00000001"
    assert _value(m.latest()) == 1


def test_corrupt_checkpoint_is_skipped(tmp_path):
    m = CheckpointManager(tmp_path, keep_last=3)
    m.save(1, _write_payload(1))
    m.save(2, _write_payload(2))
    (tmp_path / "step-00000002" / "b.bin").write_bytes(b"rotten")
    with pytest.raises(CheckpointError, match=r"step-00000002.*b\.bin"):
        verify(tmp_path / "step-00000002")
    assert m.latest().name == "step-00000001"


def test_same_step_saved_twice_is_replaced(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(5, _write_payload(1))
    m.save(5, _write_payload(2))
    assert _value(m.latest()) == 2
    assert len(m.checkpoints()) == 1


def test_optimizer_round_trip_without_pickle(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    opt = torch.optim.AdamW(
        [{"params": model[0].parameters(), "weight_decay": 0.1}, {"params": model[1].parameters(), "lr": 5e-4}]
    )
    for _ in range(3):
        model(torch.randn(5, 4)).pow(2).sum().backward()
        opt.step()
        opt.zero_grad()
    save_optimizer(opt, tmp_path)
    assert not any(p.suffix in (".pt", ".pkl") for p in tmp_path.iterdir())
    opt2 = torch.optim.AdamW(
        [{"params": model[0].parameters(), "weight_decay": 0.1}, {"params": model[1].parameters(), "lr": 1.0}]
    )
    load_optimizer(opt2, tmp_path)
    a, b = opt.state_dict(), opt2.state_dict()
    assert a["param_groups"] == b["param_groups"]
    for idx, st in a["state"].items():
        for key, value in st.items():
            assert torch.equal(value, b["state"][idx][key]), (idx, key)


def test_rng_round_trip():
    torch.manual_seed(3)
    random.seed(4)
    np.random.seed(5)
    tensors, meta = rng_state()
    meta = json.loads(json.dumps(meta))  # as stored in rng.json
    expected = (torch.rand(3), random.random(), float(np.random.rand()))
    torch.manual_seed(99)
    random.seed(99)
    np.random.seed(99)
    set_rng_state(tensors, meta)
    got = (torch.rand(3), random.random(), float(np.random.rand()))
    assert torch.equal(expected[0], got[0])
    assert expected[1:] == got[1:]
