"""Corrupt ROS 2 parameter files through `more-stack --params`: the sim stack's YAML cut at every offset class,
flipped bytes, invalid UTF-8 and YAML, wrong types. Always exit 2 with one line naming the file before any node
starts, never a traceback; or, where the damage leaves a valid file (a shorter comment), parameters that pass the
same checks the nodes make."""

import subprocess
import sys

import pytest

from more_bringup.runner import build_parser, config_file, effective_params, load_modules
from more_common.errors import ConfigurationError
from more_common.fuzz import check_bad_input, flips, truncations


@pytest.fixture(scope="module")
def modules():
    return load_modules("sim", record=False)


def test_cut_and_flipped_parameter_files(modules, tmp_path):
    text = config_file("sim").read_bytes()
    bad = tmp_path / "bad.yaml"
    refused = 0
    for label, payload in [*truncations(text), *flips(text, range(0, len(text), 23))]:
        bad.write_bytes(payload)
        args = build_parser().parse_args(["sim", "--params", str(bad)])
        try:
            effective_params(args, modules)
        except ConfigurationError as err:
            assert "\n" not in str(err) and str(bad) in str(err), f"{label}: {err}"
            refused += 1
    assert refused >= 20


CASES = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00",
    "a YAML syntax error": b"policy_node:\n  ros__parameters:\n    rate_hz: [1, 2\n",
    "a wrong type": b"policy_node:\n  ros__parameters:\n    rate_hz: fast\n",
    "a list": b"- policy_node\n",
    "an unknown node": b"pilot_node:\n  ros__parameters:\n    rate_hz: 5.0\n",
    "no ros__parameters": b"policy_node:\n  rate_hz: 5.0\n",
}


@pytest.mark.parametrize("label", ["binary", "a wrong type"])
def test_more_stack_refuses_before_starting_nodes(tmp_path, label):
    """As a user runs it: a separate process, exit 2 and one line, no node started (no result printed)."""
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(CASES[label])
    cmd = [sys.executable, "-m", "more_bringup.runner", "sim", "--params", str(bad), "--timeout", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    check_bad_input(proc.returncode, proc.stderr, bad, label)
    assert proc.stdout == ""


def test_every_case_in_process(modules, tmp_path, capsys):
    from more_bringup.runner import main

    bad = tmp_path / "bad.yaml"
    for label, payload in CASES.items():
        bad.write_bytes(payload)
        rc = main(["sim", "--params", str(bad), "--timeout", "1"])
        captured = capsys.readouterr()
        check_bad_input(rc, captured.err, bad, label)
        assert captured.out == "", label
