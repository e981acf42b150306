"""End-to-end training on a tiny synthetic dataset: the loss goes down (RL and IL), the Table II ablation
switches change what they should, checkpoints are complete MoRE checkpoints."""

import json
import weakref

import numpy as np
import pytest
import torch
from helpers import tiny_config

from more_model.checkpoint import load_checkpoint
from more_training.trainer import Trainer, train


def _records(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _mean(values):
    return sum(values) / len(values)


@pytest.mark.parametrize("kind", ["rl", "il"])
def test_loss_decreases(tiny_data, tmp_path, kind):
    out = tmp_path / kind
    cfg = tiny_config(tiny_data, out, objective__kind=kind, optim__max_steps=40, run__ckpt_every=40)
    last = train(cfg)
    losses = [r["loss"] for r in _records(out)]
    assert len(losses) == 40
    assert _mean(losses[-5:]) < 0.6 * _mean(losses[:5]), losses
    # the result is a complete policy checkpoint with its training config
    ckpt = load_checkpoint(last)
    assert ckpt.extra["trainer"]["state"]["step"] == 40
    assert (ckpt.target is not None) == (kind == "rl")
    assert (last / "train_config.yaml").is_file()
    assert (out / "curves.png").stat().st_size > 1000


def test_rl_step_uses_the_target_network(tiny_data, tmp_path):
    """tau=1 makes the target a copy of the online tensors after every step."""
    cfg = tiny_config(tiny_data, tmp_path, objective__target_tau=1.0, optim__max_steps=3, run__ckpt_every=3)
    trainer = Trainer(cfg)
    before = {k: v.clone() for k, v in trainer.target.state.items()}
    trainer.train()
    online = trainer.policy.trainable_state_dict()
    assert all(torch.equal(trainer.target.state[k], online[k]) for k in online)
    assert any(not torch.equal(before[k], online[k]) for k in online)
    trainer.close()


def test_close_releases_the_model_and_optimizer(tiny_data, tmp_path):
    """Under torchrun the model (FSDP's device mesh, DDP's reducer) holds the process group; close() must let go
    of it before destroying the group, or gloo's threads die during interpreter finalisation (a rank aborted)."""
    trainer = Trainer(tiny_config(tiny_data, tmp_path, optim__max_steps=3, run__ckpt_every=3))
    trainer.train()
    held = [weakref.ref(o) for o in (trainer.policy, trainer.optimizer, trainer.target)]
    trainer.close()
    assert [ref() for ref in held] == [None, None, None]


def test_ablation_switches(tiny_data, tmp_path):
    dense = Trainer(
        tiny_config(
            tiny_data, tmp_path / "a", model__use_moe=False, model__num_experts=1, model__top_k=1, optim__max_steps=3
        )
    )
    assert not any(".router." in n for n, _ in dense.policy.named_parameters())
    moe = Trainer(tiny_config(tiny_data, tmp_path / "b", optim__max_steps=3))
    assert any(".router." in n for n, _ in moe.policy.named_parameters())
    il = Trainer(tiny_config(tiny_data, tmp_path / "c", objective__kind="il", optim__max_steps=3))
    assert il.target is None
    # IL and "w/o sub-optimal data" read expert episodes only
    for trainer in (
        il,
        Trainer(tiny_config(tiny_data, tmp_path / "d", data__use_suboptimal=False, optim__max_steps=3)),
    ):
        loader = iter(trainer._loader())
        assert all(bool(next(loader).expert.all()) for _ in range(6))
    mixed = iter(moe._loader())
    assert not all(bool(next(mixed).expert.all()) for _ in range(6))


def test_adapters_only_keeps_the_backbone_frozen(tiny_data, tmp_path):
    cfg = tiny_config(tiny_data, tmp_path, init__train_backbone=False, optim__max_steps=3, run__ckpt_every=3)
    trainer = Trainer(cfg)
    frozen = {k: v.clone() for k, v in trainer.policy.base_state_dict().items()}
    adapters = {k: v.detach().clone() for k, v in trainer.policy.named_parameters() if v.requires_grad}
    assert adapters
    trainer.train()
    assert all(torch.equal(frozen[k], v) for k, v in trainer.policy.base_state_dict().items())
    after = dict(trainer.policy.named_parameters())
    assert any(not torch.equal(adapters[k], after[k]) for k in adapters), "training moved no adapter"
    trainer.close()


def test_export_keeps_the_policy_and_drops_training_state(tiny_data, tmp_path):
    import numpy as np

    from more_model.checkpoint import load_policy
    from more_training.export import export_policy

    last = train(tiny_config(tiny_data, tmp_path / "run", optim__max_steps=3, run__ckpt_every=3))
    out = export_policy(last, tmp_path / "demo")
    names = {p.name for p in out.iterdir()}
    assert "optimizer.safetensors" not in names and "target.safetensors" not in names
    assert {"more_checkpoint.json", "adapters.safetensors", "train_config.yaml", "training_summary.json"} <= names
    images = [np.full((40, 60, 3), v, np.uint8) for v in (30, 200)]
    instructions = ["go to the red ball", "go to the blue ball"]
    a = load_policy(last).decode(images, instructions)
    b = load_policy(out).decode(images, instructions)
    assert np.array_equal(a.bins, b.bins)
    assert json.loads((out / "training_summary.json").read_text())["step"] == 3


def test_periodic_eval_runs_more_sim_eval_and_logs_rates(tiny_data, tmp_path, monkeypatch):
    """The evaluation command must parse with more-sim's own parser; its JSON rates land in the metrics."""
    import subprocess

    from more_sim.cli import build_parser

    calls = []

    def fake_run(cmd, **kwargs):
        assert cmd[1:4] == ["-m", "more_sim.cli", "eval"]
        args = build_parser().parse_args(cmd[3:])
        calls.append(args)
        return subprocess.CompletedProcess(cmd, 0, stdout='{"go_to": 0.25, "average": 0.25}\n', stderr="")

    monkeypatch.setattr("more_training.trainer.subprocess.run", fake_run)
    cfg = tiny_config(tiny_data, tmp_path, optim__max_steps=4, run__ckpt_every=2, eval__every_steps=2, eval__episodes=3)
    train(cfg)
    assert [a.episodes_per_task for a in calls] == [3, 3]
    assert calls[-1].policy.endswith("step-00000004") and calls[-1].split == "id"
    evals = [r for r in _records(tmp_path) if "eval/go_to" in r]
    assert [(r["step"], r["eval/go_to"]) for r in evals] == [(2, 0.25), (4, 0.25)]


@pytest.mark.parametrize("kind", ["rl", "il"])
def test_action_slot_model_trains(tiny_data, tmp_path, kind):
    """A model that decodes 3 slots (turn 9 bins, speed 5, stop 2) with a short prompt: the loss falls and the
    checkpoint keeps its slots."""
    slots = json.dumps([{"dim": "vx", "bins": 5, "first": 0.0, "last": 1.0},
                        {"dim": "wz", "bins": 9, "first": -1.0, "last": 1.0},
                        {"dim": "terminate", "bins": 2, "first": 0.0, "last": 1.0}])  # fmt: skip
    out = tmp_path / kind
    cfg = tiny_config(tiny_data, out, objective__kind=kind, optim__max_steps=40, run__ckpt_every=40,
                      model__action_slots=slots, model__prompt_template='"{instruction}"')  # fmt: skip
    last = train(cfg)
    losses = [r["loss"] for r in _records(out)]
    assert _mean(losses[-5:]) < 0.6 * _mean(losses[:5]), losses
    ckpt = load_checkpoint(last)
    assert ckpt.policy.num_slots == 3 and [s.dim for s in ckpt.policy.config.action_slots] == ["vx", "wz", "terminate"]


def test_init_from_with_other_action_slots_decodes_them_from_the_same_weights(tiny_data, tmp_path, caplog):
    """A trained 2-slot model continues with a third slot (vy, between vx and terminate): every weight is carried
    over, the new slot's logits come from the same lm_head rows, and the checkpoint keeps the new slots."""
    two = [{"dim": "vx", "bins": 5, "first": 0.0, "last": 1.0},
           {"dim": "terminate", "bins": 2, "first": 0.0, "last": 1.0}]  # fmt: skip
    three = [two[0], {"dim": "vy", "bins": 9, "first": -0.5, "last": 0.5}, two[1]]
    short = {"optim__max_steps": 3, "optim__warmup_steps": 1, "run__ckpt_every": 3}
    first = train(tiny_config(tiny_data, tmp_path / "two", model__action_slots=json.dumps(two), **short))
    source = load_checkpoint(first).policy
    with caplog.at_level("WARNING"):
        trainer = Trainer(tiny_config(tiny_data, tmp_path / "three", init__init_from=str(first),
                                      model__action_slots=json.dumps(three)))  # fmt: skip
    assert "action_slots" not in caplog.text  # applied, so not named as "not applied"
    policy = trainer.policy
    assert [s.dim for s in policy.config.action_slots] == ["vx", "vy", "terminate"] and policy.num_slots == 3
    assert policy.valid_bins.sum(dim=1).tolist() == [5, 9, 2] and policy.bin_token_ids.numel() == 9
    theirs = source.state_dict()
    assert all(torch.equal(v, theirs[k]) for k, v in policy.state_dict().items())
    # the vx and terminate logits of a prompt are the source's: the slots read the same rows of lm_head
    image = np.zeros((32, 48, 3), np.uint8)
    batch = policy.encode([image], ["go to the red ball"])
    with torch.no_grad():
        a = policy.first_slot_logits(batch)[0, :5]
        b = source.first_slot_logits(source.encode([image], ["go to the red ball"]))[0, :5]
    assert torch.allclose(a, b)
    out = policy.decode([image], ["go to the red ball"])
    assert out.bins[0, 1] in range(9) and -0.5 <= out.actions[0, 1] <= 0.5  # vy decoded from its 9 bins
    trainer.close()
    last = train(tiny_config(tiny_data, tmp_path / "three2", init__init_from=str(first),
                             model__action_slots=json.dumps(three), **short))  # fmt: skip
    assert [s.dim for s in load_checkpoint(last).policy.config.action_slots] == ["vx", "vy", "terminate"]


def test_imitation_term_on_expert_steps(tiny_data, tmp_path):
    """objective.imitation_weight adds w x the cross-entropy of the expert samples only (checked by hand)."""
    import itertools

    from more_model.losses import imitation_loss
    from more_training.data import TrainBatches
    from more_training.objective import loss_config, step_loss

    cfg = tiny_config(tiny_data, tmp_path, objective__imitation_weight=0.5)
    trainer = Trainer(cfg)
    try:
        policy, target = trainer.policy, trainer.target
        ds = TrainBatches(cfg.data, policy.encoder, policy.image_size, 8, seed=0)
        batch = next(b for b in itertools.islice(iter(ds), 20) if 0 < int(b.expert.sum()) < 8)
        policy.eval()
        torch.manual_seed(0)
        with_term = step_loss(loss_config(cfg.objective), policy, policy, target, batch, 0.5)
        plain = step_loss(loss_config(cfg.objective), policy, policy, target, batch, 0.0)
        logits = policy(batch.current).slot_logits
        e = batch.expert
        ce = imitation_loss(logits[e], batch.current.bins[e])
        torch.testing.assert_close(with_term.loss, plain.loss + 0.5 * ce)
        assert with_term.metrics["imitation"] == pytest.approx(float(ce.detach()), rel=1e-5)
    finally:
        trainer.close()


def test_bf16_autocast_keeps_router_and_q_head_fp32_and_balances_every_top_k_choice(tiny_data, tmp_path):
    """run.precision=bf16 runs the step under torch.autocast (CPU here, CUDA on GPUs): every forward (target and
    online) still gives fp32 slot logits and router probabilities, and the logged load balance counts both top-2
    choices (recomputed by hand from the online forward's routing)."""
    cfg = tiny_config(tiny_data, tmp_path, run__precision="bf16", optim__max_steps=3, run__ckpt_every=3)
    trainer = Trainer(cfg)
    outputs = []
    hook = trainer.policy.register_forward_hook(lambda module, args, out: outputs.append(out))
    try:
        trainer.train()
    finally:
        hook.remove()
        trainer.close()
    assert len(outputs) == 3 * 3  # per step: target on s_t, target on s_{t+1}, online
    for out in outputs:
        assert out.slot_logits.dtype == torch.float32
        assert [p.dtype for p in out.router_probs] == [torch.float32]  # one adapted layer
    online = outputs[-1]
    probs, experts = online.router_probs[0].detach(), online.router_experts[0]
    assert experts.shape[-1] == 2 and torch.equal(experts, probs.topk(2, dim=-1).indices)
    real = online.token_mask
    counts = torch.bincount(experts[real].reshape(-1), minlength=4).float()  # both choices of each real token
    f = counts / (2 * int(real.sum()))
    expected = 4 * float((f * probs[real].mean(dim=0)).sum())
    assert _records(tmp_path)[-1]["load_balance"] == pytest.approx(expected, rel=1e-5)


def test_curriculum_stage_is_counted_in_micro_batches(tiny_data, tmp_path, monkeypatch):
    """data.curriculum_steps counts optimizer steps: with grad_accum 2 the data stream's first stage is
    2x as many micro-batches, and the run's metrics cover every step of both stages."""
    import more_training.trainer as trainer_module

    seen = {}
    real = trainer_module.TrainBatches

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "TrainBatches", spy)
    cfg = tiny_config(tiny_data, tmp_path / "run", optim__max_steps=6, optim__grad_accum=2,
                      data__curriculum_tasks="[go_to]", data__curriculum_steps=3)  # fmt: skip
    trainer_module.train(cfg)
    assert seen["curriculum_batches"] == 6
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 6
