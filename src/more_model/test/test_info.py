"""`more-info`: parameter counts come from a meta-device build and match hand arithmetic (9.82B for the paper)."""

import json
import shutil
import subprocess

from more_model.info import count_params, main

# Fuyu-8B by hand: vocab 262144, hidden 4096, FFN 16384, 36 layers, 64 heads (head dim 64), 30x30x3 patches
V, H, F, L, HD = 262144, 4096, 16384, 36, 64
PER_LAYER = (
    (H * 3 * H + 3 * H)  # query_key_value
    + (H * H + H)  # dense
    + 2 * (2 * HD)  # q/k layernorm
    + (H * F + F)
    + (F * H + H)  # FFN
    + 2 * (2 * H)  # input / post-attention layernorm
)
BASE = 2 * V * H + (2700 * H + H) + L * PER_LAYER + 2 * H  # embeddings, lm_head, patch projection, final norm
R, N, K = 32, 8, 2
EXPERT = R * H + F * R + R * F + H * R  # LoRA on dense_h_to_4h and dense_4h_to_h
ATTN = (R * H + 3 * H * R) + (R * H + H * R)
ADAPTERS = L * (N * EXPERT + H * N + ATTN)  # experts + fp32 router + attention LoRA


def test_fuyu_8b_counts_match_hand_arithmetic():
    info = count_params("fuyu-8b", experts=N, top_k=K, rank=R, attn_rank=R, use_moe=True)
    assert info["base_params"] == BASE == 9_408_238_592
    assert info["adapter_params"] == ADAPTERS
    assert info["total_params"] == BASE + ADAPTERS
    assert round(info["total_params"] / 1e9, 2) == 9.82  # the paper's total
    assert round(info["adapter_params"] / 1e9, 2) == 0.41
    assert info["active_params_per_token"] == BASE + ADAPTERS - L * (N - K) * EXPERT


def test_dense_lora_variant_counts():
    info = count_params("fuyu-8b", experts=8, top_k=2, rank=R, attn_rank=0, use_moe=False)
    assert info["experts"] == 1 and info["adapter_params"] == L * EXPERT  # no router, no attention LoRA
    assert info["active_params_per_token"] == info["total_params"]


def test_cli_prints_json(capsys):
    assert main(["--model", "fuyu-8b", "--experts", "8", "--rank", "32", "--top-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["total_params"] == BASE + ADAPTERS and out["total_params_billions"] == 9.82
    assert main(["--model", "tiny"]) == 0
    assert "total_params" in capsys.readouterr().out
    assert main(["--top-k", "9"]) == 2
    assert "top_k" in capsys.readouterr().err


def test_help_is_fast_and_installed():
    exe = shutil.which("more-info")
    assert exe, "more-info is not on PATH: run `bash scripts/setup.sh`"
    proc = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0 and "--experts" in proc.stdout
