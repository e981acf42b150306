"""Process-level guarantees: kill -9 mid-run + resume == an uninterrupted run (bitwise, deterministic CPU);
2-process gloo DDP == 1 process with the same global batch; CLI exit codes and messages."""

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import tiny_config, tiny_overrides
from safetensors.torch import load_file

from more_training.trainer import train

FILES = ("adapters.safetensors", "backbone/model.safetensors", "target.safetensors")


def _params(ckpt):
    out = {}
    for f in FILES:
        out.update({f"{f}:{k}": v for k, v in load_file(str(ckpt / f)).items()})
    return out


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def _stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat after the command name: [state, ppid, ...] (raises OSError once the process is gone)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (from /proc): torchrun starts each rank in a session of its own, so killing
    torchrun's process group does not reach the ranks."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            children.setdefault(int(_stat_fields(entry.name)[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _run(cmd, env, timeout=240):
    """Run a command in its own process group; on timeout kill it and everything it started (no orphaned ranks)."""
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        for pid in [proc.pid, *_descendants(proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        # torchrun that exits because one rank died may leave the other rank behind (seen: a rank 0 blocked in a
        # collective for 40 min after a failed run): nothing of the group outlives the command
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _alive(pid: int) -> bool:
    try:
        return _stat_fields(pid)[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def test_a_timed_out_command_leaves_no_process_behind(tmp_path):
    """The way torchrun starts its ranks (each in a new session), then a hang: _run's timeout kills them too."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        "child = subprocess.Popen(['sleep', '120'], start_new_session=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); "
        f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(120)"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        _run([sys.executable, "-c", script], dict(os.environ), timeout=3)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, f"the rank-like child {child} outlived the timed-out command"
        time.sleep(0.05)


def _env():
    env = dict(os.environ)
    env.pop("WORLD_SIZE", None)
    env["OMP_NUM_THREADS"] = "1"
    return env


def _torchrun_two_ranks(data, out, strategy, extra):
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "more_training.cli", *tiny_overrides(data, out, **extra), f"dist.strategy={strategy}",
    ]  # fmt: skip
    env = _env()
    env["MASTER_ADDR"] = "127.0.0.1"
    return _run(cmd, env)


@pytest.mark.parametrize("curriculum", [False, True])
def test_kill9_then_resume_matches_uninterrupted(curriculum, tiny_data, tmp_path):
    """Bitwise equal final weights; with a curriculum (a first stage of 12 optimizer steps = 24 micro-batches of
    grad_accum 2, then the stream starts afresh) the kill lands in the first stage and the resume crosses it."""
    steps = 40
    extra = dict(optim__max_steps=steps, run__ckpt_every=4, run__keep_last=2)
    if curriculum:
        extra.update(data__curriculum_tasks="[go_to]", data__curriculum_steps=12, optim__grad_accum=2)
    reference = train(tiny_config(tiny_data, tmp_path / "ref", **extra))

    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "more_training.cli", *tiny_overrides(tiny_data, out, **extra)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not (out / "checkpoints" / "step-00000008").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = sorted(p.name for p in (out / "checkpoints").glob("step-*"))
    assert f"step-{steps:08d}" not in done, "killed too late to test anything"

    resumed = _run(cmd, _env())
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from" in resumed.stderr
    final = out / "checkpoints" / f"step-{steps:08d}"
    assert _max_diff(_params(reference), _params(final)) == 0.0


@pytest.mark.parametrize(("strategy", "accum"), [("ddp", 1), ("fsdp", 1), ("fsdp", 2)])
def test_two_processes_equal_one_process(strategy, accum, tiny_data, tmp_path):
    """Same global batch (8): 1 process x 8 samples vs 2 gloo ranks x 4 samples, shard_by=sample, under DDP
    and under FSDP (every parameter, frozen or not, and the target copy sharded over the 2 ranks); with
    accum = 2 each rank takes 2 micro-batches of 2 and FSDP syncs gradients on the second only.

    The per-step losses (mean over ranks vs mean over the one batch) agree to 1e-5. Parameters agree to 5e-5
    absolute after 6 AdamW steps of lr 3e-3 (under 2 % of one step): the runs differ only in the order of
    float32 additions (all-reduce averaging), which AdamW's normalisation amplifies where gradients are
    near zero (measured: 1.4e-5). The MoE load-balance loss is computed per rank (as in Switch), so it is
    switched off here (beta = 0); dropout is 0.
    """
    extra = dict(optim__max_steps=6, run__ckpt_every=6, data__shard_by="sample", objective__load_balance_weight=0.0)
    single = train(tiny_config(tiny_data, tmp_path / "one", **extra))
    out = tmp_path / "two"
    proc = _torchrun_two_ranks(tiny_data, out, strategy, {**extra, "optim__grad_accum": accum})
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = out / "checkpoints" / "step-00000006"
    diff = _max_diff(_params(single), _params(two))
    assert diff < 5e-5, diff
    losses = [
        [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()]
        for d in (tmp_path / "one", out)
    ]
    assert len(losses[0]) == len(losses[1]) == 6
    assert max(abs(a - b) for a, b in zip(*losses, strict=True)) < 1e-5
    # and the runs really trained: parameters moved well beyond the tolerance
    init = tiny_config(tiny_data, tmp_path / "none")
    from more_model.policy import MoREPolicy

    fresh = MoREPolicy.from_config(init.model, seed=init.init.backbone_seed)
    moved = max(
        float((p - load_file(str(two / "backbone/model.safetensors"))[n]).abs().max())
        for n, p in fresh.backbone.state_dict().items()
        if n in load_file(str(two / "backbone/model.safetensors"))
    )
    assert moved > 1e-3


def test_cli_config_error_names_the_field(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "more_training.cli", "optim.lr=-1", f"run.out_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "lr" in proc.stderr and "configuration error" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "more_training.cli", "data.train=[a, b", f"run.out_dir={tmp_path}"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "data.train=[a, b" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_corrupt_shard_error_names_the_file(tiny_data, tmp_path):
    import shutil

    data = tmp_path / "ds"
    shutil.copytree(tiny_data, data)
    shard = sorted(data.glob("*.npz"))[0]
    shard.write_bytes(shard.read_bytes()[:1000])
    proc = subprocess.run(
        [sys.executable, "-m", "more_training.cli", *tiny_overrides(data, tmp_path / "out", data__shard_by="sample")],
        capture_output=True, text=True, timeout=120, env=_env(),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]  # bad input, not a training failure
    assert shard.name in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # nothing half written: the run directory it created is gone


@pytest.mark.parametrize("tool", ["more-train", "more-plot"])
def test_entry_points_answer_help(tool):
    proc = subprocess.run([tool, "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "usage" in proc.stdout


def test_plot_from_metrics(tiny_data, tmp_path):
    train(tiny_config(tiny_data, tmp_path, optim__max_steps=4, run__ckpt_every=4))
    png = tmp_path / "c.png"
    proc = subprocess.run(["more-plot", str(tmp_path), "--out", str(png)], capture_output=True, timeout=60)
    assert proc.returncode == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fsdp_resume_is_exact(tiny_data, tmp_path):
    """2-rank FSDP in the paper's setting (adapters train, the frozen backbone is sharded too): the checkpoint of
    step 3 (written unsharded) resumed to step 6 equals the uninterrupted run's step 6 bit for bit: parameters,
    target copy and optimizer moments are re-sharded on load; the frozen backbone comes back unchanged."""
    extra = dict(
        optim__max_steps=6, run__ckpt_every=3, run__keep_last=3, data__shard_by="sample", init__train_backbone=False
    )
    out = tmp_path / "fsdp"
    first = _torchrun_two_ranks(tiny_data, out, "fsdp", extra)
    assert first.returncode == 0, first.stderr[-3000:]
    final = out / "checkpoints" / "step-00000006"
    reference = _params(final)
    reference_moments = load_file(str(final / "optimizer.safetensors"))
    shutil.rmtree(final)
    resumed = _torchrun_two_ranks(tiny_data, out, "fsdp", extra)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr and "step-00000003" in resumed.stderr
    assert _max_diff(reference, _params(final)) == 0.0
    assert _max_diff(reference_moments, load_file(str(final / "optimizer.safetensors"))) == 0.0
    from more_model.policy import MoREPolicy

    init = tiny_config(tiny_data, tmp_path / "none", **extra)
    fresh = MoREPolicy.from_config(init.model, seed=init.init.backbone_seed).base_state_dict()
    saved = load_file(str(final / "backbone/model.safetensors"))
    assert saved.keys() == fresh.keys()
    assert all(torch.equal(saved[n], fresh[n]) for n in fresh)
    assert _max_diff(reference, _params(out / "checkpoints" / "step-00000003")) > 1e-4  # the adapters trained
