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
