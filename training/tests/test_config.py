"""TrainConfig: errors name the field, overrides parse, the shipped YAML files load, the fingerprint."""

from pathlib import Path

import pytest

from more_common.typed_config import ConfigError
from more_training.config import TrainConfig, load_config

# ablations*.yaml are matrix definitions (more_training.ablation_config, tested in test_ablations.py)
CONFIGS = sorted(
    p for p in (Path(__file__).parents[1] / "configs").glob("*.yaml") if not p.name.startswith("ablations")
)
# recorded experiments keep loading too (their configs are history, re-runnable)
EXPERIMENTS = sorted((Path(__file__).parents[1] / "experiments").glob("*/*.yaml"))


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ("optim.lr=-1", "lr"),
        ("optim.lr=fast", "optim.lr"),
        ("optim.max_steps=5", "max_steps"),
        ("objective.gamma=1.5", "gamma"),
        ("objective.kind=ppo", "objective.kind"),
        ("data.shuffle_buffer=0", "shuffle_buffer"),
        ("data.suboptimal_fraction=2", "suboptimal_fraction"),
        ("data.shard_by=rows", "data.shard_by"),
        ("model.rank=0", "rank"),
        ("model.top_k=9", "top_k"),
        ("run.keep_last=0", "keep_last"),
        ("optim.learning_rate=1", "optim.learning_rate"),
        ("dist.strategy=zero3", "dist.strategy"),
        ("objective.regression=huber", "objective.regression"),
        ("data.curriculum_steps=10", "curriculum_tasks"),
        ("data.curriculum_tasks=[go_to]", "curriculum_tasks"),
        ("data.curriculum_steps=-1", "curriculum_steps"),
    ],
)
def test_errors_name_the_field(override, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")) as info:
        load_config(None, [override])
    assert field.split(".")[-1] in str(info.value)


def test_overrides_and_defaults():
    cfg = load_config(None, ["optim.lr=3e-4", "model.use_moe=false", "model.num_experts=1", "model.top_k=1"])
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.model.use_moe is False
    # the paper's loss weights are the defaults
    assert cfg.objective.kind == "rl"
    assert cfg.objective.conservative_weight == 0.5
    assert cfg.objective.load_balance_weight == 0.002


def test_global_batch_must_split_evenly():
    cfg = load_config(None, ["optim.batch_size=10", "optim.grad_accum=2"])
    assert cfg.per_rank_batch(1) == 5
    with pytest.raises(ConfigError, match=r"optim\.batch_size"):
        cfg.per_rank_batch(3)


def test_fingerprint_ignores_logging_but_not_training_knobs():
    base = load_config(None, [])
    assert base.fingerprint() == load_config(None, ["run.progress=false", "run.out_dir=x"]).fingerprint()
    assert base.fingerprint() != load_config(None, ["optim.lr=1e-4"]).fingerprint()


def test_contradicting_suboptimal_switches():
    with pytest.raises(ConfigError, match="suboptimal_fraction"):
        load_config(None, ["data.use_suboptimal=false", "data.suboptimal_fraction=0.5"])


@pytest.mark.parametrize(
    "path", CONFIGS + EXPERIMENTS, ids=[f"{p.parent.name}/{p.name}" for p in CONFIGS + EXPERIMENTS]
)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert isinstance(cfg, TrainConfig)


def test_ablation_configs_flip_one_switch_each():
    by_name = {p.stem: load_config(p) for p in CONFIGS}
    base = by_name["tiny_rl"]
    assert by_name["ablation_no_rl"].objective.kind == "il"
    assert by_name["ablation_no_moe"].model.use_moe is False
    assert by_name["ablation_no_suboptimal"].data.use_suboptimal is False
    for name in ("ablation_no_rl", "ablation_no_moe", "ablation_no_suboptimal"):
        assert by_name[name].optim == base.optim, name


def test_curriculum_must_end_before_the_run_and_stay_inside_the_task_filter():
    with pytest.raises(ConfigError, match=r"data\.curriculum_steps \(1000\) must be below optim\.max_steps 1000"):
        load_config(None, ["data.curriculum_tasks=[go_to]", "data.curriculum_steps=1000", "optim.max_steps=1000"])
    with pytest.raises(ConfigError, match=r"\['go_to'\] are outside data\.tasks \['crawl'\]"):
        load_config(None, ["data.curriculum_tasks=[go_to]", "data.curriculum_steps=10", "data.tasks=[crawl]"])
    cfg = load_config(None, ["data.curriculum_tasks=[go_to]", "data.curriculum_steps=10"])
    assert cfg.data.curriculum_tasks == ("go_to",) and cfg.data.curriculum_steps == 10


def test_fields_added_later_keep_old_runs_resumable():
    """A run saved before oversampling, action slots, the imitation term and reasoning existed has the same fingerprint
    as today's config at those fields' neutral values; other values change it."""
    import hashlib
    import json

    cfg = load_config(None)
    old = cfg.to_dict()
    added = (("data", "oversample_steps"), ("data", "oversample_factor"), ("data", "oversample_tasks"),
             ("data", "oversample_last"), ("objective", "imitation_weight"), ("model", "action_slots"),
             ("model", "text_first"), ("data", "curriculum_tasks"), ("data", "curriculum_steps"),
             ("model", "reasoning"), ("objective", "reasoning_weight"), ("data", "drop_tasks"))  # fmt: skip
    for section, key in added:
        del old[section][key]
    for key in ("progress", "tensorboard", "log_every", "out_dir", "resume", "max_time_s", "ckpt_every_s"):
        del old["run"][key]
    del old["eval"]
    assert cfg.fingerprint() == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    for override in ("data.oversample_factor=3", "objective.imitation_weight=0.5", "data.oversample_tasks=[go_to]",
                     'model.action_slots=[{"dim": "wz", "bins": 4}]', "model.reasoning=scene",
                     "objective.reasoning_weight=0.5"):  # fmt: skip
        assert load_config(None, [override]).fingerprint() != cfg.fingerprint()
    dropped = load_config(None, ["data.train=[data/a]", "data.drop_tasks=[data/a:go_avoid]"])
    assert dropped.fingerprint() != load_config(None, ["data.train=[data/a]"]).fingerprint()
    curriculum = load_config(None, ["data.curriculum_tasks=[go_to]", "data.curriculum_steps=10"])
    assert curriculum.fingerprint() != cfg.fingerprint()
