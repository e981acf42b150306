"""`more-train ablations`: the matrix config, the statistics against hand-computed values, and the real
subprocess path (more-train + more-sim eval) at toy size: a run killed mid-training resumes, a second
invocation launches nothing, a changed evaluation re-evaluates without training."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import tiny_overrides

from more_common.typed_config import ConfigError, apply_overrides
from more_training.ablation_config import load_matrix
from more_training.ablation_report import aggregate, markdown, write_report
from more_training.ablation_runner import NOT_AVAILABLE, Runner, grounding_available, plan_runs
from more_training.ablation_stats import Z95, newcombe, wilson
from more_training.ablations import main as ablations_main

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "training" / "configs" / "ablations.yaml"


# -- helpers -------------------------------------------------------------------------------------------
def wilson_by_bisection(k: int, n: int) -> tuple[float, float]:
    """The score interval's definition: the p where (k/n - p)^2 = z^2 p (1 - p) / n, found by bisection."""
    phat = k / n

    def f(p: float) -> float:
        return (phat - p) ** 2 - Z95**2 * p * (1 - p) / n

    def root(lo: float, hi: float) -> float:
        for _ in range(200):
            mid = (lo + hi) / 2
            if (f(lo) > 0) == (f(mid) > 0):
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    lower = 0.0 if k == 0 else root(0.0, phat)
    upper = 1.0 if k == n else root(phat, 1.0)
    return lower, upper


def write_toy_matrix(tmp: Path, data: Path, **extra: object) -> Path:
    """A toy matrix: the tiny synthetic dataset, an RL and an imitation variant, 2 seeds, 40 steps of batch 8."""
    base = apply_overrides({}, tiny_overrides(data, tmp / "unused"))
    (tmp / "base.yaml").write_text(yaml.safe_dump(base))
    matrix = {
        "name": "toy matrix",
        "base_config": "base.yaml",
        "out_dir": str(tmp / "out"),
        "seeds": [0, 1],
        "budget": {"samples": 320},
        "train_overrides": ["run.ckpt_every=4", "run.keep_last=2", "run.log_every=4"],
        "datasets": {"toy": {"out": str(data), "external": True}},
        "mixes": {"mixed": {"datasets": ["toy"]}},
        "variants": {
            "more": {"mix": "mixed", "label": "RL", "paper": "MoRE"},
            "no_rl": {"mix": "mixed", "label": "IL", "paper": "w/o RL", "overrides": ["objective.kind=il"]},
        },
        "eval": {
            "tasks": ["go_to", "crawl"],
            "splits": ["id"],
            "episodes_per_task": 1,
            "seeds": [0],
            "extra_args": ["--max-steps", "4"],
            "grounding_args": ["--grounding-scenes", "1"],
        },
        "claims": [{"better": "more", "worse": "no_rl", "text": "RL beats IL"}],
        "smoke": True,
    }
    for key, value in extra.items():
        matrix[key] = value
    path = tmp / "matrix.yaml"
    path.write_text(yaml.safe_dump(matrix, sort_keys=False))
    return path


# -- configuration -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override, expected",
    [
        ("smoke=false", "eval.episodes_per_task must be >= 25 (the paper's protocol) unless smoke: true, got 1"),
        ("variants.more.mix=nowhere", "variants.more.mix must be one of ['mixed'], got 'nowhere'"),
        ("variants.more.paper=Ours", "paper must be one of"),
        ("variants.more.overrides=[objective.kind]", "overrides must look like key.path=value"),
        ("mixes.mixed.datasets=[toy,other]", "mixes.mixed.datasets names unknown dataset(s) ['other']"),
        ("mixes.mixed.suboptimal_fraction=1.5", "suboptimal_fraction must lie in [0, 1] or be null, got 1.5"),
        ("seeds=[0,0]", "seeds has duplicates: [0, 0]"),
        ("budget.samples=0", "samples must be >= 1, got 0"),
        ("eval.splits=[id,test]", "splits must be a non-empty subset of ['id', 'ood']"),
        ("eval.tasks=[go_to,fly]", "tasks must be 'all' or task names, got unknown ['fly']"),
        ("eval.grounding=maybe", "eval.grounding: must be one of ['auto', 'required', 'off'], got 'maybe'"),
        ("claims=[{better: more, worse: nobody}]", "claims[0].worse must be a variant, got 'nobody'"),
        ("datasets.toy.failures_only=true", "failures_only needs suboptimal_fraction > 0"),
        ("budget.sample=10", "unknown key(s) ['budget.sample']"),
        ("base_config=missing.yaml", "base_config: no such file"),
        ("variants.more.init=nowhere", "variants.more.init must name a pretrain entry [] or be null, got 'nowhere'"),
        ("pretrain={base: {config: base.yaml, samples: 80, dataset: other}}", "pretrain.base.dataset must be one of"),
        ("pretrain={base: {config: gone.yaml, samples: 80, dataset: toy}}", "pretrain.base.config: no such file"),
        ("pretrain={base: {config: base.yaml, samples: 0, dataset: toy}}", "samples must be >= 1, got 0"),
    ],
)
def test_matrix_errors_name_the_bad_value(override, expected, tiny_data, tmp_path):
    path = write_toy_matrix(tmp_path, tiny_data)
    with pytest.raises(ConfigError) as err:
        load_matrix(path, [override])
    assert expected in str(err.value) and str(path) in str(err.value)


def test_budget_must_split_into_whole_batches(tiny_data, tmp_path):
    cfg, base = load_matrix(write_toy_matrix(tmp_path, tiny_data), ["budget.samples=321"])
    with pytest.raises(ConfigError, match=r"variant more, seed 0: budget.samples: 321 is not a whole number of batc"):
        plan_runs(cfg, base, grounding=False)
    cfg, base = load_matrix(_with_pretrain(tmp_path, tiny_data), ["pretrain.base.samples=81"])
    with pytest.raises(ConfigError, match=r"pretrain base, seed 0: pretrain.base.samples: 81 is not a whole numbe"):
        plan_runs(cfg, base, grounding=False)
    cfg, base = load_matrix(write_toy_matrix(tmp_path, tiny_data), ["variants.more.overrides=[optim.lr=-1]"])
    with pytest.raises(ConfigError, match=r"variant more, seed 0: .*base.yaml .*optim: lr must be > 0, got -1"):
        plan_runs(cfg, base, grounding=False)


def test_cli_bad_matrix_exits_2_with_one_line(tiny_data, tmp_path, capsys):
    path = write_toy_matrix(tmp_path, tiny_data)
    assert ablations_main(["run", "--config", str(path), "eval.episodes_per_task=0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "episodes_per_task must be >= 1, got 0" in err
    assert ablations_main(["status", "--config", str(path), "datasets.toy.out=" + str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "index.json" in err and "none" in err
    assert not (tmp_path / "out").exists(), "nothing may be written on bad input"


@pytest.mark.parametrize("hours", ["0", "-1", "nan", "inf", "two"])
def test_max_hours_must_be_a_positive_number(hours, tiny_data, tmp_path, capsys):
    path = write_toy_matrix(tmp_path, tiny_data)
    with pytest.raises(SystemExit) as exc:
        ablations_main(["run", "--config", str(path), "--max-hours", hours])
    assert exc.value.code == 2
    assert f"--max-hours: must be a number of hours > 0, got '{hours}'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_variant_may_not_take_a_pretrain_run_name(tiny_data, tmp_path):
    variants = {"pretrain-base": {"mix": "mixed"}}
    with pytest.raises(ConfigError, match=r"variants\.pretrain-base must not start with 'pretrain-'"):
        load_matrix(write_toy_matrix(tmp_path, tiny_data, variants=variants, claims=[]))


@pytest.mark.parametrize(
    "index_text, expected",
    [("{not json", "is not valid JSON"), ("[1, 2]", "is not a dataset index"), ('{"meta": 3}', "is not a dataset")],
)
def test_prepare_names_a_broken_dataset_index_in_one_line(index_text, expected, tiny_data, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "index.json").write_text(index_text)
    datasets = {"toy": {"out": str(tiny_data), "external": True}, "gen": {"out": str(broken), "episodes": 2}}
    config = write_toy_matrix(tmp_path, tiny_data, datasets=datasets)
    assert ablations_main(["prepare", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("more-train ablations: datasets.gen: ") and expected in err
    assert (broken / "index.json").read_text() == index_text, "nothing overwritten"


def test_shipped_matrix_defines_the_table_ii_rows(tmp_path):
    """The shipped definitions, resolved: each row's switches, its data, and the same samples for all."""
    data = {}
    for name in ("expert", "failures"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.json").write_text(json.dumps({"name": name}))
        data[name] = str(tmp_path / name)
    overrides = [f"datasets.{k}.out={v}" for k, v in data.items()] + [f"out_dir={tmp_path / 'out'}"]
    cfg, base = load_matrix(SHIPPED, overrides)
    assert not cfg.smoke and cfg.eval.episodes_per_task >= 25 and len(cfg.seeds) >= 2
    assert set(cfg.eval.splits) == {"id", "ood"} and cfg.eval.task_list() == (
        "distinguish", "go_to", "go_through", "go_avoid", "crawl", "unload",
    )  # fmt: skip
    assert cfg.datasets["failures"].failures_only and cfg.datasets["expert"].suboptimal_fraction == 0
    assert abs(cfg.mixes["paper_4to1"].suboptimal_fraction - 0.44 / (1.82 + 0.44)) < 0.001
    assert base == SHIPPED.with_name("grounding_stage2.yaml").resolve()  # the demo's stage 2 for every row
    ordered = plan_runs(cfg, base, grounding=False)
    starts = ["pretrain-moe", "pretrain-dense"]
    assert [(p.seed, p.variant) for p in ordered] == [
        (s, v) for s in cfg.seeds for v in [*starts, *cfg.variants]
    ]  # seed-major, each seed's initialisations first
    for pre in (p for p in ordered if p.kind == "pretrain"):  # the demo's stage 1: go_to only, by imitation
        tc = pre.train_config
        assert tc.data.tasks == ("go_to",) and tc.objective.kind == "il" and tc.optim.max_steps == 4000
        assert list(tc.data.train) == [data["expert"]] and tc.run.seed == pre.seed and not pre.evals
        assert tc.model.use_moe == (pre.variant == "pretrain-moe")
    plans = {(p.variant, p.seed): p for p in ordered if p.kind == "row"}
    assert len(plans) == len(cfg.variants) * len(cfg.seeds)
    expected = {  # kind, mixture of experts, datasets, sub-optimal share, sub-optimal used
        "more": ("rl", True, ["expert", "failures"], 0.195, True),
        "no_rl": ("il", True, ["expert"], None, True),
        "no_moe": ("rl", False, ["expert", "failures"], 0.195, True),
        "no_suboptimal": ("rl", True, ["expert"], None, False),
        "quart": ("il", False, ["expert"], None, True),
        "more_1to1": ("rl", True, ["expert", "failures"], 0.5, True),
        "more_no_imitation": ("rl", True, ["expert", "failures"], 0.195, True),
    }
    assert set(expected) == set(cfg.variants)
    for (variant, seed), plan in plans.items():
        tc = plan.train_config
        kind, moe, datasets, share, use_sub = expected[variant]
        assert tc.objective.kind == kind and tc.model.use_moe == moe, variant
        assert (tc.model.num_experts, tc.model.top_k) == ((4, 1) if moe else (1, 1)), variant
        assert len(tc.model.action_slots) == 5 and tc.model.text_first, variant
        assert tc.data.oversample_factor == 5 and tc.data.oversample_last == 1 and tc.optim.lr == 1e-3, variant
        assert (tc.objective.gamma, tc.objective.target_tau) == (0.9, 0.03), variant
        assert tc.data.tasks == () and tc.data.curriculum_tasks == (), variant  # all six tasks
        start = "dense" if variant in ("no_moe", "quart") else "moe"
        assert [n.name for n in plan.needs] == [f"pretrain-{start}/seed-{seed}"], variant
        assert tc.init.init_from == str(tmp_path / "out" / "pretrain" / start / f"seed-{seed}" / "train" /
                                        "checkpoints" / "step-00004000"), variant  # fmt: skip
        if kind == "rl":  # the imitation term of the sweep; imitation rows carry the inert RL-only weight
            assert tc.objective.imitation_weight == (0.0 if variant == "more_no_imitation" else 0.1), variant
        assert list(tc.data.train) == [data[d] for d in datasets], variant
        assert tc.data.suboptimal_fraction == share and tc.data.use_suboptimal == use_sub, variant
        assert tc.optim.max_steps * tc.optim.batch_size == cfg.budget.samples, variant
        assert tc.run.seed == seed and tc.init.backbone_seed == seed
        assert tc.run.out_dir == str(tmp_path / "out" / "runs" / variant / f"seed-{seed}" / "train")
    fps = {p.train_fp for p in plans.values()}
    assert len(fps) == len(plans), "every run has its own training fingerprint"


def test_gpu_matrix_extends_the_cpu_one():
    """ablations_gpu.yaml: the same rows and data as ablations.yaml, 10x the samples (and the shared go_to stage),
    CUDA for training (both stages) and evaluation."""
    cpu, _ = load_matrix(SHIPPED)
    gpu, base = load_matrix(SHIPPED.with_name("ablations_gpu.yaml"))
    assert gpu.variants == cpu.variants and gpu.mixes == cpu.mixes and gpu.datasets == cpu.datasets
    assert gpu.budget.samples == 10 * cpu.budget.samples and gpu.out_dir != cpu.out_dir
    assert set(cpu.train_overrides) - {"run.ckpt_every=250"} <= set(gpu.train_overrides)  # the RL settings
    assert "run.device=cuda" in gpu.train_overrides and gpu.eval.device == "cuda"
    assert set(gpu.pretrain) == set(cpu.pretrain)
    for name, pre in gpu.pretrain.items():
        assert pre.samples == 10 * cpu.pretrain[name].samples and "run.device=cuda" in pre.overrides
        assert set(cpu.pretrain[name].overrides) <= set(pre.overrides), name  # dense stays dense
    assert base == SHIPPED.with_name("grounding_stage2.yaml").resolve()


def test_rl_settings_sweep_resolves(tmp_path):
    """The RL settings sweep: every variant resolves, each sets the knobs its label names."""
    for name in ("expert", "failures"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "index.json").write_text("{}")
    overrides = [f"datasets.{n}.out={tmp_path / n}" for n in ("expert", "failures")]
    cfg, base = load_matrix(SHIPPED.with_name("ablations_rl_settings.yaml"), overrides)
    for plan in plan_runs(cfg, base, grounding=False):
        o = plan.train_config.objective
        if o.kind == "rl":
            label = f"gamma {o.gamma:g}, tau {o.target_tau:g}, {o.regression.upper()}"
            assert plan.label.startswith(label), (plan.variant, label)
            assert ("imitation term" in plan.label) == (o.imitation_weight > 0), plan.variant
        assert plan.train_config.optim.max_steps * plan.train_config.optim.batch_size == cfg.budget.samples


def _with_pretrain(tmp_path: Path, tiny_data: Path, **extra: object) -> Path:
    """The toy matrix with a shared initialisation `base` (10 steps of the base config) both rows start from."""
    pretrain = {"base": {"config": "base.yaml", "samples": 80, "dataset": "toy", "overrides": ["optim.lr=2e-3"]}}
    variants = {
        "more": {"mix": "mixed", "label": "RL", "paper": "MoRE", "init": "base"},
        "no_rl": {"mix": "mixed", "label": "IL", "paper": "w/o RL", "overrides": ["objective.kind=il"], "init": "base"},
    }
    return write_toy_matrix(tmp_path, tiny_data, pretrain=pretrain, variants=variants, **extra)


def test_rows_start_from_their_seeds_pretrain_run(tiny_data, tmp_path):
    """Each seed's pretrain run is planned before its rows; every row starts from that seed's final pretrain
    checkpoint, and its fingerprint changes with the pretrain's settings; a row whose model differs from the
    checkpoint's is refused by name."""
    cfg, base = load_matrix(_with_pretrain(tmp_path, tiny_data))
    plans = plan_runs(cfg, base, grounding=False)
    assert [p.name for p in plans] == [
        "pretrain-base/seed-0", "more/seed-0", "no_rl/seed-0", "pretrain-base/seed-1", "more/seed-1", "no_rl/seed-1",
    ]  # fmt: skip
    by_name = {p.name: p for p in plans}
    for seed in (0, 1):
        pre = by_name[f"pretrain-base/seed-{seed}"]
        assert pre.kind == "pretrain" and not pre.evals and pre.max_steps == 10
        assert pre.train_config.optim.lr == 2e-3 and pre.train_config.run.seed == seed
        assert pre.root == tmp_path / "out" / "pretrain" / "base" / f"seed-{seed}"
        for row in ("more", "no_rl"):
            plan = by_name[f"{row}/seed-{seed}"]
            assert plan.needs == [pre] and plan.train_config.init.init_from == str(pre.final_checkpoint)
            assert str(pre.final_checkpoint).endswith(f"pretrain/base/seed-{seed}/train/checkpoints/step-00000010")
    other, _ = load_matrix(_with_pretrain(tmp_path, tiny_data), ["pretrain.base.overrides=[optim.lr=1e-3]"])
    changed = {p.name: p.train_fp for p in plan_runs(other, base, grounding=False)}
    assert all(changed[name] != p.train_fp for name, p in by_name.items()), "the rows inherit the base's change"
    bad, _ = load_matrix(_with_pretrain(tmp_path, tiny_data), ["variants.more.overrides=[model.top_k=1]"])
    with pytest.raises(ConfigError, match=r"variant more, seed 0: its model settings differ from those of pretrain"):
        plan_runs(bad, base, grounding=False)


def test_a_failed_pretrain_run_starts_none_of_its_rows(tiny_data, tmp_path, capsys):
    """A pretrain run that fails leaves its rows not started (each names it); nothing waits forever."""
    launcher = [sys.executable, "-c", "import sys; sys.exit(3)"]
    config = _with_pretrain(tmp_path, tiny_data, launcher=launcher)
    assert ablations_main(["run", "--config", str(config), "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    assert "launched: 2 training, 0 evaluation processes" in out  # the two seeds' pretrain runs only
    assert out.count("FAILED (train): more-train exit 3") == 2
    assert "pretrain-base/seed-0 (shared initialisation): failed" in out
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["raw_runs"]
    assert len(rows) == 4 and {r["variant"] for r in rows} == {"more", "no_rl"}
    for r in rows:
        assert r["status"] == "not started"
        assert f"starts from pretrain-base/seed-{r['seed']}, which is failed" in r["note"]


def test_a_row_reads_its_initialisations_outcome_as_soon_as_it_wakes(tiny_data, tmp_path):
    """The outcome is stored before the finish event is set: a waiting row must never find it missing (and
    record "not started" beside a pretrain run that is done)."""
    import threading

    cfg, base = load_matrix(_with_pretrain(tmp_path, tiny_data, seeds=[0]))
    plans = plan_runs(cfg, base, grounding=False)
    runner = Runner(cfg, plans, grounding=False, log=lambda _: None, jobs=2)
    stored_at_set: list[bool] = []
    for name in list(runner._finished):

        class Watched(threading.Event):
            def set(self, _name: str = name) -> None:
                stored_at_set.append(_name in runner._outcomes)
                super().set()

        runner._finished[name] = Watched()
    runner.execute = lambda plan, prefix="": runner._base_record(plan, "done")  # no subprocesses
    records = runner.run()
    assert [r["status"] for r in records] == ["done", "done", "done"]
    assert stored_at_set == [True, True, True]


def test_an_old_failure_under_other_settings_is_stale_not_failed(tiny_data, tmp_path):
    """A failure recorded under another fingerprint is not this configuration's outcome: the table says stale
    and `report` does not count it as failed."""
    from more_training.ablations import _records

    cfg, base = load_matrix(write_toy_matrix(tmp_path, tiny_data))
    plan = plan_runs(cfg, base, grounding=False)[0]
    runner = Runner(cfg, [plan], grounding=False, log=lambda _: None)
    record = runner._base_record(plan, "failed", stage="train", error="more-train exit 1: old")
    plan.root.mkdir(parents=True)
    (plan.root / "result.json").write_text(json.dumps({**record, "train_fp": "0123456789abcdef"}))
    (stale,) = _records([plan], runner)
    assert stale["status"] == "stale" and "other settings" in stale["note"]
    (plan.root / "result.json").write_text(json.dumps(record))
    (current,) = _records([plan], runner)
    assert current["status"] == "failed" and current["error"] == "more-train exit 1: old"


@pytest.mark.timeout(900)
def test_pretrain_end_to_end_once_per_seed_then_skipped(tiny_data, tmp_path):
    """Real subprocesses, one seed: `--only more` also trains the pretrain run it needs, and the row starts after
    it, from its checkpoint; the next invocation trains only the other row; a third launches nothing."""
    config = _with_pretrain(tmp_path, tiny_data, seeds=[0], budget={"samples": 80})
    out = tmp_path / "out"
    first = _cli(config, "--only", "more", "--jobs", "2")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "launched: 2 training, 1 evaluation processes" in first.stdout
    assert "pretrain-base/seed-0 (shared initialisation): done" in first.stdout
    assert "more/seed-0: training from pretrain-base/seed-0 to step 10 (80 samples)" in first.stdout
    pre_final = out / "pretrain" / "base" / "seed-0" / "train" / "checkpoints" / "step-00000010"
    assert pre_final.is_dir() and not (out / "pretrain" / "base" / "seed-0" / "eval").exists()
    row_log = (out / "runs" / "more" / "seed-0" / "logs" / "train.log").read_text()
    assert f"initialised from {pre_final}" in row_log
    row_metrics = out / "runs" / "more" / "seed-0" / "train" / "metrics.jsonl"
    assert row_metrics.stat().st_mtime >= (pre_final / "manifest.json").stat().st_mtime
    second = _cli(config)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "launched: 1 training, 1 evaluation processes" in second.stdout
    assert second.stdout.count("done before, skipped") == 2  # the pretrain run and `more`
    results = json.loads((out / "results.json").read_text())
    assert [(r["variant"], r["status"]) for r in results["raw_runs"]] == [("more", "done"), ("no_rl", "done")]
    third = _cli(config)
    assert "launched: 0 training, 0 evaluation processes" in third.stdout


# -- statistics ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("k, n", [(0, 10), (1, 25), (12, 25), (25, 25), (81, 263), (28, 80)])
def test_wilson_matches_the_score_equation(k, n):
    lo, hi = wilson(k, n)
    ref_lo, ref_hi = wilson_by_bisection(k, n)
    assert abs(lo - ref_lo) < 1e-9 and abs(hi - ref_hi) < 1e-9


@pytest.mark.parametrize("n", [1, 3, 7, 25, 150, 263])
def test_wilson_bounds_are_exact_at_zero_and_all_successes(n):
    """0/n has lower bound exactly 0 and n/n upper exactly 1, never a rounding-error past the rate (the plot's
    error bars, rate - lower and upper - rate, must not be negative: 0/25 once crashed the report)."""
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_wilson_and_newcombe_match_published_values():
    """Newcombe (1998): 81/263 -> 0.2553-0.3662 (single proportion, score method); 56/70 - 48/80 = 0.2000 with
    the hybrid score interval 0.0524-0.3339 (difference of independent proportions, method 10)."""
    lo, hi = wilson(81, 263)
    assert round(lo, 4) == 0.2553 and round(hi, 4) == 0.3662
    d, lo, hi = newcombe(56, 70, 48, 80)
    assert abs(d - 0.2) < 1e-12 and round(lo, 4) == 0.0524 and round(hi, 4) == 0.3339


def _unit(tasks: dict[str, tuple[int, int]], grounding: object = NOT_AVAILABLE) -> dict:
    counts = {t: {"successes": k, "episodes": n, "rate": k / n} for t, (k, n) in tasks.items()}
    return {"tasks": counts, "rates": {}, "grounding": grounding, "wall_s": 30.0}


def test_aggregation_against_hand_computed_cells(tiny_data, tmp_path):
    """Records from the runner's own record builder with chosen counts; every number of the table by hand."""
    path = write_toy_matrix(tmp_path, tiny_data, seeds=[0, 1, 2])
    cfg, base = load_matrix(path, ["eval.episodes_per_task=20"])
    runner = Runner(cfg, [], grounding=True, log=lambda _: None)
    plans = {(p.variant, p.seed): p for p in plan_runs(cfg, base, grounding=True)}
    g = {
        0: {"all": {"hits": 30, "decisions": 50, "states": 20}},
        1: {"all": {"hits": 20, "decisions": 50, "states": 22}},
    }
    counts = {
        ("more", 0): {"go_to": (12, 20), "crawl": (5, 20)},
        ("more", 1): {"go_to": (8, 20), "crawl": (3, 20)},
        ("no_rl", 0): {"go_to": (4, 20), "crawl": (1, 20)},
        ("no_rl", 1): {"go_to": (6, 20), "crawl": (2, 20)},
        ("no_rl", 2): {"go_to": (20, 20), "crawl": (20, 20)},
    }
    records = []
    for (variant, seed), c in counts.items():
        plan = plans[(variant, seed)]
        grounding = g[seed] if variant == "more" else NOT_AVAILABLE
        records.append(runner._done_record(plan, [(plan.evals[0], _unit(c, grounding))]))
    records.append(runner._base_record(plans[("more", 2)], "failed", stage="train", error="more-train exit 1: boom"))
    records[-2]["status"] = "failed"  # no_rl seed 2 failed after all: its counts must not enter the table

    agg = aggregate(cfg, records)
    more, il = agg["cells"]["more"]["id"], agg["cells"]["no_rl"]["id"]
    assert (more["go_to"]["successes"], more["go_to"]["episodes"]) == (20, 40)
    assert (more["crawl"]["successes"], more["crawl"]["episodes"]) == (8, 40)
    assert more["go_to"]["rate"] == 0.5 and more["crawl"]["rate"] == 0.2
    assert more["go_to"]["ci95"] == pytest.approx(wilson_by_bisection(20, 40), abs=1e-9)
    assert (more["average"]["successes"], more["average"]["episodes"]) == (28, 80)
    assert more["average"]["rate"] == pytest.approx(0.35)
    assert more["average"]["ci95"] == pytest.approx(wilson_by_bisection(28, 80), abs=1e-9)
    assert more["average"]["per_seed"] == {0: pytest.approx(17 / 40), 1: pytest.approx(11 / 40)}
    assert (il["average"]["successes"], il["average"]["episodes"]) == (13, 80)
    assert il["average"]["per_seed"] == {0: pytest.approx(5 / 40), 1: pytest.approx(8 / 40)}
    assert more["grounding"]["rate"] == 0.5 and more["grounding"]["chance"] == 0.42
    assert il["grounding"] == NOT_AVAILABLE

    # the claim: 28/80 - 13/80 with Newcombe's interval from the bisection Wilson bounds
    (claim,) = agg["claims"]
    p1, p2 = 28 / 80, 13 / 80
    (l1, u1), (l2, u2) = wilson_by_bisection(28, 80), wilson_by_bisection(13, 80)
    lower = p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    upper = p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    assert claim["diff"] == pytest.approx(15 / 80) and claim["ci95"] == pytest.approx([lower, upper], abs=1e-9)
    assert lower > 0 and claim["verdict"] == "reproduced" and claim["seeds_in_favour"] == [2, 2]

    text = markdown(agg)
    lo, hi = wilson_by_bisection(20, 40)
    assert f"| RL | 0.50 [{lo:.2f}, {hi:.2f}] |" in text
    lo, hi = wilson_by_bisection(28, 80)
    assert f"**0.35 [{lo:.2f}, {hi:.2f}]** | {17 / 40:.2f} / {11 / 40:.2f} | 0.50 (chance 0.42) | 0.60 (MoRE) |" in text
    assert "| IL |" in text and "| not available | 0.51 (w/o RL) |" in text
    assert f"| RL beats IL | id | {p1 - p2:+.3f} | [{lower:+.3f}, {upper:+.3f}] | 2/2 | reproduced |" in text
    assert "| more | 2 | failed | 320 |" in text and "more-train exit 1: boom" in text
    assert "SMOKE TEST" in text

    paths = write_report(cfg, records, tmp_path / "report")
    assert sorted(f.name for f in (tmp_path / "report").iterdir()) == ["results.json", "table.md", "table.png"]
    saved = json.loads(paths["json"].read_text())
    assert len(saved["raw_runs"]) == 6 and saved["cells"]["more"]["id"]["go_to"]["successes"] == 20
    from PIL import Image

    with Image.open(paths["png"]) as im:
        assert im.format == "PNG" and im.width >= 600 and im.height >= 300


def test_a_claim_compares_only_the_seeds_both_rows_finished(tiny_data, tmp_path):
    """Mid-matrix: RL has seeds 0 and 1, IL only seed 0. The claim must be 10/40 vs 4/40 (seed 0 against seed 0),
    not RL's two seeds pooled (10+30)/80 against IL's one; the cells still pool every finished seed."""
    path = write_toy_matrix(tmp_path, tiny_data, seeds=[0, 1])
    cfg, base = load_matrix(path, ["eval.episodes_per_task=20"])
    runner = Runner(cfg, [], grounding=False, log=lambda _: None)
    plans = {(p.variant, p.seed): p for p in plan_runs(cfg, base, grounding=False)}
    counts = {
        ("more", 0): {"go_to": (6, 20), "crawl": (4, 20)},
        ("more", 1): {"go_to": (20, 20), "crawl": (10, 20)},
        ("no_rl", 0): {"go_to": (3, 20), "crawl": (1, 20)},
    }
    records = [runner._done_record(plans[key], [(plans[key].evals[0], _unit(c))]) for key, c in counts.items()]
    agg = aggregate(cfg, records)
    assert agg["cells"]["more"]["id"]["average"]["successes"] == 40  # the cell: both seeds
    (claim,) = agg["claims"]
    _, lo, hi = newcombe(10, 40, 4, 40)
    assert claim["diff"] == pytest.approx(6 / 40) and claim["ci95"] == pytest.approx([lo, hi], abs=1e-12)
    assert claim["seeds"] == [0] and claim["seeds_in_favour"] == [1, 1]

    # no seed in common: nothing to compare
    records = [r for r in records if not (r["variant"] == "more" and r["seed"] == 0)]
    (claim,) = aggregate(cfg, records)["claims"]
    assert claim["verdict"] == "not measured" and "diff" not in claim


# -- the real subprocess path --------------------------------------------------------------------------
def _cli(config: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "more_training.cli", "ablations", "run", "--config", str(config), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.timeout(900)  # ~10 subprocesses, each importing torch (and MuJoCo): minutes on a busy machine
def test_matrix_end_to_end_kill_resume_skip(tiny_data, tmp_path):
    """2 variants x 2 seeds through `more-train` and `more-sim eval` subprocesses: the runner is SIGKILLed
    (with its training child) mid-run; the next invocation resumes that run from its checkpoint and finishes
    the matrix; a third launches nothing; a changed evaluation seed re-evaluates without training."""
    config = write_toy_matrix(tmp_path, tiny_data)
    out = tmp_path / "out"
    first = out / "runs" / "more" / "seed-0"
    cmd = [sys.executable, "-m", "more_training.cli", "ablations", "run", "--config", str(config)]
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 600
        ckpts = first / "train" / "checkpoints"
        while time.monotonic() < deadline and proc.poll() is None:
            steps = [int(p.name[5:]) for p in ckpts.glob("step-*")] if ckpts.is_dir() else []
            if steps and max(steps) >= 8:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its training child: their own process group
        proc.wait()
    killed_at = max(int(p.name[5:]) for p in ckpts.glob("step-*"))
    assert 8 <= killed_at < 40, f"killed too late to test anything (step {killed_at})"
    assert not (first / "result.json").exists()

    done = _cli(config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "launched: 4 training, 4 evaluation processes" in done.stdout
    assert f"more/seed-0: training from step {killed_at} to step 40" in done.stdout
    assert "resuming from" in (first / "logs" / "train.log").read_text()

    expect_grounding = grounding_available()
    results = json.loads((out / "results.json").read_text())
    assert len(results["raw_runs"]) == 4
    for rec in results["raw_runs"]:
        assert rec["status"] == "done" and rec["samples"] == 320 and rec["steps"] == 40
        assert rec["checkpoint"].endswith("step-00000040")
        unit = rec["eval"]["id"]["units"]["id-seed0"]
        details = json.loads((Path(rec["checkpoint"]).parents[2] / "eval" / "id-seed0" / "results.json").read_text())
        for task in ("go_to", "crawl"):
            assert unit["tasks"][task]["episodes"] == 1
            assert unit["tasks"][task]["successes"] == details["details"][task]["successes"]
        assert (rec["eval"]["id"]["grounding"] != NOT_AVAILABLE) == expect_grounding
        assert rec["train_minutes"] > 0 and rec["eval_minutes"] > 0
    killed = next(r for r in results["raw_runs"] if (r["variant"], r["seed"]) == ("more", 0))
    assert killed["train_launches"] == 2 and killed["killed_launches"] == 1
    table = (out / "table.md").read_text()
    assert "| RL |" in table and "| IL |" in table and "| RL beats IL | id |" in table
    assert (out / "table.png").stat().st_size > 0
    mtimes = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed-*/result.json")}

    again = _cli(config)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "launched: 0 training, 0 evaluation processes" in again.stdout
    assert again.stdout.count("done before, skipped") == 4
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    reeval = _cli(config, "--only", "more", "seeds=[0]", "eval.seeds=[1]")
    assert reeval.returncode == 0, reeval.stdout + reeval.stderr
    assert "launched: 0 training, 1 evaluation processes" in reeval.stdout
    assert (first / "eval" / "id-seed1" / "results.json").is_file()


def test_a_failed_run_is_recorded_and_the_matrix_goes_on(tiny_data, tmp_path, capsys):
    """A training command that fails (here a launcher that exits 3) fails its run only: every run is tried,
    each record names the exit status, the table lists them, the exit status is 1."""
    launcher = [sys.executable, "-c", "import sys; print('no GPU here', file=sys.stderr); sys.exit(3)"]
    config = write_toy_matrix(tmp_path, tiny_data, launcher=launcher)
    assert ablations_main(["run", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED (train): more-train exit 3: ") == 4 and "launched: 4 training, 0 evaluation" in out
    for variant in ("more", "no_rl"):
        for seed in (0, 1):
            rec = json.loads((tmp_path / "out" / "runs" / variant / f"seed-{seed}" / "result.json").read_text())
            assert rec["status"] == "failed" and rec["stage"] == "train" and "no GPU here" in rec["error"]
    assert (tmp_path / "out" / "table.md").read_text().count("| failed | 320 |") == 4


def test_working_block_limit_starts_no_training(tiny_data, tmp_path, capsys):
    config = write_toy_matrix(tmp_path, tiny_data)
    assert ablations_main(["run", "--config", str(config), "--max-hours", "0.01"]) == 3  # 36 s < 60 s left
    out = capsys.readouterr().out
    assert "launched: 0 training, 0 evaluation processes" in out
    assert not list((tmp_path / "out").glob("runs/*/seed-*/train"))
    assert (tmp_path / "out" / "table.md").read_text().count("| not started | 320 |") == 4


SLEEPY_LAUNCHER = """
import os, sys, time
out = [a for a in sys.argv if a.startswith("run.out_dir=")][0].split("=", 1)[1]
os.makedirs(out, exist_ok=True)
with open(os.path.join(out, "launch.txt"), "w") as f:
    f.write(f"{os.getpid()} {time.time()}\\n")
time.sleep(float(os.environ.get("SLEEPY_S", "1.5")))
with open(os.path.join(out, "launch.txt"), "a") as f:
    f.write(f"{time.time()}\\n")
sys.exit(3)
"""


def _launches(out: Path) -> dict[str, list[str]]:
    """run -> [pid, start, end] of each launch whose start line is written."""
    found = {str(p.parent.relative_to(out)): p.read_text().split() for p in out.glob("runs/*/seed-*/train/launch.txt")}
    return {k: v for k, v in found.items() if len(v) >= 2}


def test_jobs_run_that_many_runs_at_once(tiny_data, tmp_path, capsys, monkeypatch):
    """--jobs 2: the 4 runs go two at a time (each launch overlaps another), every run is recorded in plan
    order, the launch counter counts all of them; --jobs 0 is refused with the option named."""
    monkeypatch.setenv("SLEEPY_S", "1.5")
    config = write_toy_matrix(tmp_path, tiny_data, launcher=[sys.executable, "-c", SLEEPY_LAUNCHER])
    assert ablations_main(["run", "--config", str(config), "--jobs", "2"]) == 1
    out = capsys.readouterr().out
    assert out.count("FAILED (train): more-train exit 3") == 4 and "launched: 4 training, 0 evaluation" in out
    spans = {k: (float(v[1]), float(v[2])) for k, v in _launches(tmp_path / "out").items()}
    assert len(spans) == 4
    for key, (start, end) in spans.items():
        others = [s for k, s in spans.items() if k != key]
        assert any(s < end and start < e for s, e in others), f"{key} ran alone: {spans}"
    ends = sorted(e for _, e in spans.values())
    assert ends[-1] - min(s for s, _ in spans.values()) < 4 * 1.5, "two at a time must beat one after the other"
    with pytest.raises(SystemExit) as exc:
        ablations_main(["run", "--config", str(config), "--jobs", "0"])
    assert exc.value.code == 2 and "--jobs: must be an integer >= 1, got '0'" in capsys.readouterr().err


def test_sigterm_stops_parallel_runs_without_records(tiny_data, tmp_path):
    """SIGTERM to a `--jobs 2` runner: both running trainings get SIGTERM (no orphan), no run is recorded as
    failed, the runner exits at once with one line and status 130."""
    config = write_toy_matrix(tmp_path, tiny_data, launcher=[sys.executable, "-c", SLEEPY_LAUNCHER])
    out = tmp_path / "out"
    env = {**os.environ, "SLEEPY_S": "120"}
    cmd = [sys.executable, "-m", "more_training.cli", "ablations", "run", "--config", str(config), "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(_launches(out)) < 2:
        time.sleep(0.05)
    launched = _launches(out)
    assert len(launched) == 2, launched
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in output, output
    assert "stopped (SIGTERM or Ctrl-C)" in output.splitlines()[-1]
    for pid, *_ in launched.values():
        for _ in range(100):
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"training child {pid} outlived the runner")
    assert not list(out.glob("runs/*/seed-*/result.json")), "a stopped run must not be recorded"


def test_a_run_directory_of_other_settings_is_refused(tiny_data, tmp_path):
    """Checkpoints trained under another fingerprint (config or data) are never resumed or overwritten."""
    cfg, base = load_matrix(write_toy_matrix(tmp_path, tiny_data))
    plan = plan_runs(cfg, base, grounding=False)[0]
    (plan.train_dir / "checkpoints" / "step-00000004").mkdir(parents=True)
    (plan.root / "state.json").write_text(json.dumps({"train_fp": "0123456789abcdef", "wall_s": 1.0, "launches": 1}))
    runner = Runner(cfg, [plan], grounding=False, log=lambda _: None)
    assert runner.status(plan) == "stale"
    (record,) = runner.run()
    assert record["status"] == "failed" and "0123456789abcdef != " + plan.train_fp in record["error"]
    assert runner.launches == {"train": 0, "eval": 0}
    assert (plan.train_dir / "checkpoints" / "step-00000004").is_dir()


def test_prepare_generates_expert_and_failure_only_data(tiny_data, tmp_path, capsys):
    """`prepare` runs `more-sim generate` for each dataset; the failure set holds failed sub-optimal episodes
    only; a second prepare keeps them; a changed spec is refused with the differing setting named."""
    from more_common.dataset import EpisodeDataset

    datasets = {
        "expert": {"out": str(tmp_path / "expert"), "episodes": 4, "seed": 3, "workers": 1,
                   "tasks": ["go_to", "crawl"], "extra_args": ["--image-size", "16"]},
        "failures": {"out": str(tmp_path / "failures"), "episodes": 6, "suboptimal_fraction": 1.0,
                     "failures_only": True, "seed": 4, "workers": 1, "tasks": ["go_to", "crawl"],
                     "extra_args": ["--image-size", "16"]},
    }  # fmt: skip
    mixes = {"mixed": {"datasets": ["expert", "failures"], "suboptimal_fraction": 0.2}}
    config = write_toy_matrix(tmp_path, tiny_data, datasets=datasets, mixes=mixes)
    assert ablations_main(["prepare", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    expert, failures = EpisodeDataset(tmp_path / "expert"), EpisodeDataset(tmp_path / "failures")
    assert len(expert) == 4 and all(ep.expert and ep.success for ep in expert.iter_episodes())
    kept = list(failures.iter_episodes())
    assert kept and all(not ep.expert and not ep.success for ep in kept)
    assert failures.meta["summary"]["episodes"] + failures.meta["summary"]["dropped_suboptimal_successes"] == 6
    e, f = expert.num_transitions, failures.num_transitions
    assert f"mix mixed: on disk {e} expert : {f} sub-optimal (share {f / (e + f):.3f}); training stream 0.200" in out

    assert ablations_main(["prepare", "--config", str(config)]) == 0
    assert "failures: " + str(tmp_path / "failures") + " exists with these settings, kept" in capsys.readouterr().out
    assert ablations_main(["prepare", "--config", str(config), "datasets.failures.seed=5"]) == 2
    err = capsys.readouterr().err
    assert "datasets.failures:" in err and "seed 4 != 5" in err
    prepare = ["prepare", "--config", str(config)]
    assert ablations_main([*prepare, "datasets.failures.extra_args=[--image-size,20x24]"]) == 2
    assert "image_size '16x16' != '20x24'" in capsys.readouterr().err
    assert ablations_main([*prepare, "datasets.expert.extra_args=[--image-size,'16',--name-each]"]) == 2
    assert "name_each False != True" in capsys.readouterr().err
    assert ablations_main([*prepare, "datasets.expert.extra_args=[--image-size,'16',--decision-hz,'2.5']"]) == 2
    assert "decision_hz 5.0 != 2.5" in capsys.readouterr().err
