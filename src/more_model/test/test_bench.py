"""`more-bench`: both benchmarks run (one short round here) and report their fields; timings are not tested."""

from pathlib import Path

import pytest

from more_model.bench import bench_decode, bench_mixlora, main, parse_args

DEMO = Path(__file__).resolve().parents[3] / "models" / "demo"


@pytest.mark.slow
def test_decode_benchmark_reports_and_every_decoder_agrees():
    """Recorded simulator episodes, the demo policy: greedy, generate, window greedy and drafts choose the same
    bins on every frame; the drafts need fewer passes than greedy's 12."""
    out = bench_decode(rounds=1, warmup=0, device="cpu", full_size=False, checkpoint=str(DEMO), episodes=2, frames=5)
    assert out["same_actions"] is True
    assert out["decoders_compared"] == ["greedy", "generate", "window_greedy", "draft"]
    assert out["inputs"].startswith("2 recorded go_to episodes") and out["image"] == [96, 144]  # the demo's size
    assert out["ours_ms"] > 0 and out["baseline_ms"] > 0 and out["draft_ms"] > 0
    # the ratios come from the unrounded times; the reported times are rounded to the microsecond
    assert out["speedup"] == pytest.approx(out["baseline_ms"] / out["ours_ms"], abs=0.006)
    assert out["draft_speedup"] == pytest.approx(out["ours_ms"] / out["draft_ms"], abs=0.006)
    assert 2 <= out["draft_passes_mean"] < 12
    assert sum(out["draft_passes_histogram"]) == 10  # 2 episodes x 5 frames, passes 2..12


def test_mixlora_benchmark_reports():
    out = bench_mixlora(rounds=1, warmup=0, device="cpu", tokens=256)
    assert out["tokens_per_step"] == 256
    assert out["dispatch_tok_s"] > 0 and out["dense_tok_s"] > 0


def test_cli_arguments(capsys, tmp_path):
    args = parse_args(["decode", "--json", "--rounds", "3", "--frames", "6", "--compiled"])
    assert args.which == "decode" and args.json and args.rounds == 3 and args.frames == 6 and args.compiled
    assert parse_args(["decode"]).checkpoint == "models/demo"
    assert main(["decode", "--checkpoint", str(tmp_path)]) == 2
    assert "is not a MoRE checkpoint" in capsys.readouterr().err
    for argv, needle in (
        (["decode", "--frames", "1"], "argument --frames: must be an integer >= 2, got '1'"),
        (["decode", "--device", "bogus"], "argument --device: not a torch device: 'bogus'"),
        (["decode", "--threads", "-1"], "argument --threads: must be an integer in [0, 256]"),
        (["mixlora", "--tokens", "-5"], "argument --tokens: must be an integer >= 256"),  # was: 256, silently
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and needle in err and err.count("\n") == 1, (argv, err)
    # a damaged checkpoint: one line naming the file, before any benchmark runs
    import shutil

    damaged = tmp_path / "damaged"
    shutil.copytree(DEMO, damaged)
    (damaged / "adapters.safetensors").write_bytes(b"\x00" * 8)
    assert main(["decode", "--checkpoint", str(damaged)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "adapters.safetensors: unreadable safetensors" in err


def test_full_size_builder_runs_at_toy_size():
    """The GPU benchmark's Fuyu-8B builder, shrunk (4096-wide 36-layer on a GPU; 64-wide 1-layer here)."""
    import numpy as np
    import torch

    from more_model.bench import _random_fuyu_8b_policy

    policy = _random_fuyu_8b_policy(
        "cpu", hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, vocab_size=1024
    )
    assert policy.dtype == torch.bfloat16 and policy.image_size == (240, 240)
    assert policy.backbone.config.patch_size == 30
    out = policy.decode([np.zeros((240, 240, 3), np.uint8)], ["go to the red ball"])
    assert out.bins.shape == (1, 12)


def test_casting_adapters_for_bf16_inference_changes_no_output():
    import numpy as np
    import torch

    from more_model.bench import _random_fuyu_8b_policy
    from more_model.testing import randomize_adapters

    policy = randomize_adapters(
        _random_fuyu_8b_policy(
            "cpu", hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4, vocab_size=1024
        ),
        std=0.5,
    )
    image = [np.random.default_rng(0).integers(0, 256, (240, 240, 3), dtype=np.uint8)]
    before = policy.decode(image, ["go"])
    policy.cast_adapters_for_inference()
    lora = [p for n, p in policy.named_adapter_parameters() if "lora_" in n]
    routers = [p for n, p in policy.named_adapter_parameters() if ".router." in n]
    assert policy.dtype == torch.bfloat16
    assert all(p.dtype == torch.bfloat16 for p in lora) and all(p.dtype == torch.float32 for p in routers)
    after = policy.decode(image, ["go"])
    np.testing.assert_array_equal(before.bins, after.bins)
    np.testing.assert_array_equal(before.q_values, after.q_values)
