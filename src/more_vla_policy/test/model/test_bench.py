"""`more-bench`: both benchmarks run (one short round here) and report their fields; timings are not tested."""

from more_vla_policy.model.bench import bench_decode, bench_mixlora, parse_args


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
