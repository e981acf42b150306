"""`more-sim render` and `more-sim info`, and argument errors."""

import json

import pytest
from PIL import Image

from more_sim.cli import main


def test_render_writes_a_strip(tmp_path, capsys):
    out = tmp_path / "strip.png"
    assert (
        main(["render", "--task", "unload", "--seed", "2", "--out", str(out), "--image-size", "24x32", "--frames", "5"])
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    assert summary["success"] and "container" in summary["instruction"]
    with Image.open(out) as im:
        assert im.size == (5 * 32, 24)


def test_render_replays_the_episodes_eval_listed(tmp_path, capsys):
    """Each eval row's seed, given to render with the same policy and settings, gives the same end and length."""
    common = ["--image-size", "16", "--max-steps", "30"]
    assert main(["eval", "--policy", "suboptimal", "--tasks", "go_avoid,crawl", "--episodes-per-task", "3",
                 "--json", "--out", str(tmp_path / "eval"), *common]) == 0  # fmt: skip
    capsys.readouterr()
    rows = json.loads((tmp_path / "eval" / "results.json").read_text())["episodes"]
    assert len(rows) == 6 and len({r["end"] for r in rows}) > 1  # sub-optimal: stops early, touches, times out
    for k, row in enumerate(rows):
        out = tmp_path / f"ep{k}.gif"
        assert main(["render", "--policy", "suboptimal", "--task", row["task"], "--seed", str(row["seed"]),
                     "--out", str(out), *common]) == 0  # fmt: skip
        shown = json.loads(capsys.readouterr().out)
        assert (shown["end"], shown["steps"], shown["instruction"]) == (row["end"], row["steps"], row["instruction"])
        with Image.open(out) as im:  # one frame per decision, shown for the 0.2 s decision period
            assert im.n_frames == shown["frames"] == row["steps"] and im.size == (16, 16)
            assert im.info["duration"] == 200


def test_render_of_a_checkpoint_uses_its_image_size(tmp_path, capsys):
    from more_model.testing import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "ckpt", seed=0)
    out = tmp_path / "strip.png"
    args = ["render", "--policy", str(ckpt), "--task", "go_to", "--out", str(out), "--max-steps", "3", "--frames", "2"]
    assert main(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["policy"] == "checkpoint:ckpt" and 1 <= shown["frames"] <= 3
    with Image.open(out) as im:
        assert im.size == (min(2, shown["frames"]) * 48, 32)


def test_render_refuses_a_bad_output_and_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "clip.mp4"
    assert main(["render", "--out", str(out), "--image-size", "16"]) == 2
    assert "--out must end in .png" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit) as exc:
        main(["render", "--out", str(tmp_path / "a.png"), "--frames", "0"])
    assert exc.value.code == 2 and "argument --frames: must be an integer >= 1, got '0'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_info_lists_the_ids(capsys):
    assert main(["info"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["env_ids"]["crawl"] == "MoRE/Crawl-v0" and info["default_config"]["image_height"] == 96


def test_bad_arguments_exit_with_usage_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--tasks", "fly", "--episodes", "1", "--out", "x"])
    assert exc.value.code == 2 and "unknown task" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--policy", "expert", "--image-size", "4"])
    assert main(["eval", "--policy", "/no/such/dir", "--episodes-per-task", "1"]) == 2
    assert "checkpoint directory" in capsys.readouterr().err
    # counts, seeds and thresholds are checked before anything runs, naming the option, in one line
    for argv, needle in (
        (
            ["eval", "--policy", "expert", "--episodes-per-task", "0"],
            "argument --episodes-per-task: must be an integer >= 1",
        ),
        (["eval", "--policy", "expert", "--batch", "0"], "argument --batch: must be an integer >= 1, got '0'"),
        (
            ["grounding", "--policy", "expert", "--scenes-per-task", "-1"],
            "argument --scenes-per-task: must be an integer",
        ),
        (
            ["eval", "--policy", "expert", "--min-separation", "nan"],
            "argument --min-separation: must be a finite number",
        ),
        (["render", "--seed", "-5"], "argument --seed: must be an integer >= 0, got '-5'"),
        (["generate", "--episodes", "1", "--out", "x", "--seed", "-1"], "argument --seed: must be an integer >= 0"),
    ):
        with pytest.raises(SystemExit) as exc:
            main(argv)
        err = capsys.readouterr().err
        assert exc.value.code == 2 and needle in err and err.count("\n") == 1, (argv, err)


def test_an_output_that_cannot_be_a_directory_is_refused_before_the_run(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    for command in ("eval", "grounding"):
        argv = [command, "--policy", "expert", "--tasks", "go_to", "--out", str(tmp_path / "afile" / "results")]
        assert main(argv) == 2
        assert "is a file, not a directory" in capsys.readouterr().err
    assert (tmp_path / "afile").read_text() == "x"


def _expert_eval(tmp_path, name: str, *extra: str) -> dict:
    out = tmp_path / name
    args = ["eval", "--policy", "expert", "--tasks", "go_to", "--episodes-per-task", "3", "--image-size", "16"]
    assert main([*args, "--out", str(out), *extra]) == 0
    return json.loads((out / "results.json").read_text())


def test_decision_rate_changes_the_period_and_keeps_the_time_limit(tmp_path, capsys):
    """At 2.5 Hz a decision lasts twice as long: the expert reaches the same goals (same scenes) in far fewer
    decisions, and the 20 s limit becomes 50 decisions unless --max-steps says otherwise."""
    at5 = _expert_eval(tmp_path, "at5")
    at25 = _expert_eval(tmp_path, "at25", "--decision-hz", "2.5")
    assert (at5["decision_hz"], at5["max_episode_steps"]) == (5.0, 100)
    assert (at25["decision_hz"], at25["max_episode_steps"]) == (2.5, 50)
    assert at5["rates"]["go_to"] == at25["rates"]["go_to"] == 1.0
    # the same path in half the decisions, plus the few decisions that stop and terminate
    assert at25["details"]["go_to"]["mean_steps"] < 0.75 * at5["details"]["go_to"]["mean_steps"]
    assert "2.5 decisions/s, limit 50 decisions" in capsys.readouterr().out
    assert _expert_eval(tmp_path, "limit", "--decision-hz", "2.5", "--max-steps", "7")["max_episode_steps"] == 7


@pytest.mark.parametrize("rate", ["3", "0", "-5", "100", "fast"])
def test_a_rate_that_is_not_whole_control_steps_is_refused(rate, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["eval", "--policy", "expert", "--decision-hz", rate])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "--decision-hz" in err and repr(rate) in err


def test_suboptimal_noise_follows_the_decision_period():
    from more_sim.policies import make_policy

    policy = make_policy("suboptimal", decision_hz=2.5)
    policy.begin(0, seed=1)
    assert policy._policies[0].dt == pytest.approx(0.4)
