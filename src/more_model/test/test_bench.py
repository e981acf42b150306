"""`more-bench`: both benchmarks run (one short round here) and report their fields; timings are not tested."""

from more_model.bench import bench_decode, bench_mixlora, parse_args


def test_decode_benchmark_reports_and_agrees_with_generate():
    out = bench_decode(rounds=1, warmup=0, device="cpu", full_size=False)
    assert out["same_actions"] is True
    assert out["ours_ms"] > 0 and out["baseline_ms"] > 0
    assert out["speedup"] == round(out["baseline_ms"] / out["ours_ms"], 2)


def test_mixlora_benchmark_reports():
    out = bench_mixlora(rounds=1, warmup=0, device="cpu", tokens=256)
    assert out["tokens_per_step"] == 256
    assert out["dispatch_tok_s"] > 0 and out["dense_tok_s"] > 0


def test_cli_arguments():
    args = parse_args(["decode", "--json", "--rounds", "3"])
    assert args.which == "decode" and args.json and args.rounds == 3


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
