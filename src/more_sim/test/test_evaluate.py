"""`more-sim eval`: JSON with the six tasks and the average, a markdown table and a bar chart."""

import json

import pytest
from PIL import Image

from more_sim.cli import main
from more_sim.config import SimConfig
from more_sim.evaluate import eval_jobs, markdown_table, wilson
from more_sim.generate import plan_jobs
from more_sim.splits import TASKS

KEYS = {"distinguish", "go_to", "go_through", "go_avoid", "crawl", "unload", "average"}


def test_wilson_interval_hand_values():
    lo, hi = wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-3)
    lo, hi = wilson(5, 10)
    assert (lo, hi) == (pytest.approx(0.2366, abs=1e-3), pytest.approx(0.7634, abs=1e-3))


def test_eval_scenes_are_not_training_scenes():
    train = {j.seed for j in plan_jobs(TASKS, 600, "id", 0, 0.5)}
    assert not train & {j.seed for j in eval_jobs(TASKS, 100, "id", 0)}


def test_eval_expert_json_and_report(tmp_path, capsys):
    rc = main(
        [
            "eval",
            "--policy",
            "expert",
            "--episodes-per-task",
            "3",
            "--split",
            "id",
            "--json",
            "--out",
            str(tmp_path),
            "--image-size",
            "16",
        ]
    )
    assert rc == 0
    rates = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(rates) == KEYS
    assert rates["average"] == pytest.approx(sum(rates[t] for t in TASKS) / 6)
    assert all(rates[t] == 1.0 for t in TASKS)  # 1200/1200 measured; 3 fixed-seed episodes each
    md = (tmp_path / "results.md").read_text()
    assert "| Go through | 1.00 | 3 |" in md and "**average**" in md
    with Image.open(tmp_path / "results.png") as im:
        assert im.size[0] > 300 and im.size[1] > 150
    details = json.loads((tmp_path / "results.json").read_text())
    assert details["details"]["crawl"]["episodes"] == 3
    assert all(details["details"][t]["ends"] == {"success": 3} for t in TASKS)
    assert "| task | success |\n" in md and "| Go through | 3 |" in md  # the ends table: one column, all succeeded
    rows = details["episodes"]
    assert [(r["task"], r["index"], r["seed"]) for r in rows] == [
        (j.task, i % 3, j.seed) for i, j in enumerate(eval_jobs(TASKS, 3, "id", 0))
    ]
    assert all(r["end"] == "success" and 0 < r["steps"] <= 100 and r["instruction"] for r in rows)


def test_eval_random_is_near_zero(tmp_path, capsys):
    rc = main(
        [
            "eval",
            "--policy",
            "random",
            "--episodes-per-task",
            "10",
            "--json",
            "--out",
            str(tmp_path),
            "--image-size",
            "16",
        ]
    )
    assert rc == 0
    rates = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert rates["average"] <= 0.05
    details = json.loads((tmp_path / "results.json").read_text())
    for task, d in details["details"].items():
        assert sum(d["ends"].values()) == 10 and d["ends"].get("success", 0) == d["successes"]
        assert [r["end"] for r in details["episodes"] if r["task"] == task].count("success") == d["successes"]


def test_markdown_lists_every_task():
    result = {
        "policy": "p",
        "split": "ood",
        "episodes_per_task": 2,
        "seed": 0,
        "image_size": [8, 8],
        "details": {t: {"successes": 1, "episodes": 2, "rate": 0.5, "mean_steps": 3.0} for t in TASKS},
        "rates": {**{t: 0.5 for t in TASKS}, "average": 0.5},
    }
    md = markdown_table(result)
    assert md.count("| 0.50 | 2 | 3.0 |") == 6 and "ood split" in md


def test_eval_a_checkpoint(tmp_path, capsys):
    from more_model.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", seed=0)
    rc = main(
        [
            "eval",
            "--policy",
            str(ckpt),
            "--episodes-per-task",
            "1",
            "--json",
            "--out",
            str(tmp_path / "r"),
            "--max-steps",
            "6",
        ]
    )
    assert rc == 0
    rates = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(rates) == KEYS and all(0.0 <= v <= 1.0 for v in rates.values())
    details = json.loads((tmp_path / "r" / "results.json").read_text())
    assert details["image_size"] == [32, 48]  # the checkpoint's own image size was used


def test_reasoning_counts_by_hand():
    from more_sim.policies import ReasoningCounts

    c = ReasoningCounts()
    c.add("B1D7.D7.", "B1D7.D7.")  # all right
    c.add("B1D7.B1.", "B1D7.D7.")  # the scene right, the wrong box named
    c.add("D7..", "B1D7..")  # the named box is out of view: not a naming decision; the scene wrong
    c.add("..", "..")
    assert c.as_dict() == {"decisions": 4, "exact": 0.5, "scene_exact": 0.75, "named_decisions": 2, "named_exact": 0.5}
    none = ReasoningCounts()
    none.add("..", "..")  # no decision names a thing in view: null in the JSON, not NaN
    assert none.as_dict()["named_exact"] is None


def test_eval_of_a_reasoning_checkpoint_scores_what_it_wrote(tmp_path):
    from more_model.testing import make_tiny_checkpoint, tiny_config
    from more_sim.evaluate import evaluate
    from more_sim.policies import CheckpointPolicy
    from more_sim.scene_text import scene_reasoning

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", seed=0, config=tiny_config(reasoning="scene"))
    policy = CheckpointPolicy(ckpt)
    seen = []
    act = policy.act

    def spy(slots, observations, infos):
        out = act(slots, observations, infos)
        for info, text in zip(infos, policy.last.reasoning, strict=True):
            state, sc = info["state"], info["scenario"]
            seen.append((info["task"], text, scene_reasoning(sc.things, sc.target, state.x, state.y, state.yaw,
                                                             policy._camera, sc.task)))  # fmt: skip
        return out

    policy.act = spy
    result = evaluate(policy, tasks=("distinguish", "go_to"), episodes_per_task=1, seed=3, batch=2)
    for task in ("distinguish", "go_to"):
        mine = [(text, label) for t, text, label in seen if t == task]
        r = result["reasoning"][task]
        assert r["decisions"] == len(mine) > 0
        assert r["exact"] == sum(text == label for text, label in mine) / len(mine)
    assert any(label != ".." for t, _, label in seen if t == "go_to")  # go_to writes its coded objects
    assert "What the policy wrote before acting" in markdown_table(result)


def test_go2_eval_scores_the_reasoning_against_the_d435_labels(tmp_path):
    from more_model.testing import make_tiny_checkpoint, tiny_config
    from more_sim.evaluate import evaluate
    from more_sim.policies import CheckpointPolicy

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", seed=0, config=tiny_config(reasoning="scene"))
    policy = CheckpointPolicy(ckpt)
    config = SimConfig(embodiment="go2", max_episode_steps=2)
    result = evaluate(policy, tasks=("go_to",), episodes_per_task=1, seed=3, batch=1, config=config)
    assert policy._camera.camera_fovy == 42.0  # the labels' camera is the one that rendered
    assert result["reasoning"]["go_to"]["decisions"] == result["details"]["go_to"]["mean_steps"] == 2
