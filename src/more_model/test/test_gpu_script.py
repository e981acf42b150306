"""bench/gpu.py (the full-size GPU benchmark) runs end to end at toy size on CPU and writes its JSON; on a
machine without CUDA the full-size run is refused with a clear message (exit 2)."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "bench" / "gpu.py"
SMOKE = ["--device", "cpu", "--tiny", "--batch", "2", "--train-steps", "1", "--rounds", "1", "--episodes", "1"]


@pytest.mark.slow
def test_gpu_script_smoke_run_writes_its_json(tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *SMOKE, "--frames", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["benchmark"] == "gpu" and report["device"] == "cpu" and report["goals"] is None
    decode = report["decode"]
    assert set(decode["decoders"]) == {"greedy_transformers", "greedy_window", "draft_window"}
    assert decode["frames"] == 3 and decode["decoders"]["greedy_window"]["passes_mean"] == 12
    assert decode["draft_equals_greedy_same_path"] == {"window": True}
    assert decode["skipped"]["graph"].startswith("CUDA graphs need")
    assert decode["prefill_ms"] > 0 and decode["window_pass_ms"] > 0
    train = report["train"]
    assert train["batch"] == 2 and train["gradient_checkpointing"] and train["samples_per_s_best"] > 0
    assert train["trainable_params"] > 0


def test_gpu_script_refuses_what_this_machine_cannot_run(tmp_path):
    import torch

    cases = [(["--device", "cpu"], "needs a GPU")]
    if not torch.cuda.is_available():
        cases.append((["--device", "cuda", "--tiny"], "no CUDA device"))
    for args, message in cases:
        proc = subprocess.run(
            [sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "x.json")],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
        assert not (tmp_path / "x.json").exists()
