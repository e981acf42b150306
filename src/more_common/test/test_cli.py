"""The workspace's argument parser: a bad argument is one line naming it, exit status 2; --help is argparse's."""

import pytest

from more_common.cli import OneLineArgumentParser


def test_a_bad_argument_is_one_line_naming_it(capsys):
    parser = OneLineArgumentParser(prog="tool")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--mode", choices=("a", "b"), default="a")
    for argv, needle in (
        (["--batch", "x"], "argument --batch: invalid int value: 'x'"),
        ([], "the following arguments are required: --batch"),
        (["--batch", "1", "--mode", "c"], "argument --mode: invalid choice: 'c'"),
        (["--batch", "1", "--bogus"], "unrecognized arguments: --bogus"),
    ):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1, err
        assert err.startswith("tool: error: ") and needle in err and "usage" not in err


def test_help_is_unchanged(capsys):
    parser = OneLineArgumentParser(prog="tool", description="does things")
    parser.add_argument("--batch", type=int, default=8, help="how many")
    with pytest.raises(SystemExit) as exit_:
        parser.parse_args(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: tool") and "how many" in out


def test_subcommands_inherit_the_one_line_error(capsys):
    parser = OneLineArgumentParser(prog="tool")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("run").add_argument("--n", type=int)
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--n", "many"])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("tool run: error: argument --n")


def test_int_at_least_and_torch_device(capsys):
    import torch

    from more_common.cli import int_at_least, torch_device

    parser = OneLineArgumentParser(prog="tool")
    parser.add_argument("--n", type=int_at_least(1, 4), default=2)
    parser.add_argument("--device", type=torch_device, default="cpu")
    assert parser.parse_args(["--n", "4"]).n == 4 and parser.parse_args([]).device == "cpu"
    bad = [["--n", "0"], ["--n", "5"], ["--n", "x"], ["--device", "gpu0"]]
    if not torch.cuda.is_available():
        bad.append(["--device", "cuda"])
    for argv in bad:
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"argument {argv[0]}" in err, err


def test_file_in_the_way(tmp_path):
    from more_common.cli import file_in_the_way

    (tmp_path / "afile").write_text("x")
    assert file_in_the_way(tmp_path / "afile") == tmp_path / "afile"
    assert file_in_the_way(tmp_path / "afile" / "deeper" / "out") == tmp_path / "afile"
    assert file_in_the_way(tmp_path / "new" / "out") is None and file_in_the_way(tmp_path) is None


def test_task_label_is_what_a_dataset_accepts(capsys):
    from more_common.cli import task_label

    parser = OneLineArgumentParser(prog="tool")
    parser.add_argument("--task", type=task_label, default="")
    assert parser.parse_args(["--task", "go to"]).task == "go to" and parser.parse_args([]).task == ""
    for bad in ("pick/place", "../x", " go_to", "x" * 65):
        with pytest.raises(SystemExit):
            parser.parse_args(["--task", bad])
        assert "is not a plain name" in capsys.readouterr().err
