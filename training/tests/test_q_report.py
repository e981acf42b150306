"""`more-train q-report`: positions, per-slot values against hand-computed numbers, and the CLI on a tiny
trained checkpoint (bad input: one line, exit 2)."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import tiny_config

from more_training.q_report import SlotRow, main, positions_of, slot_rows, summarise
from more_training.trainer import train


@pytest.mark.parametrize(
    "length, expected",
    [
        (1, {"first": 0}),
        (2, {"first": 0, "second": 1}),
        (3, {"first": 0, "second": 1, "stop": 2}),  # middle and before_stop are step 1, reported as "second"
        (5, {"first": 0, "second": 1, "middle": 2, "before_stop": 3, "stop": 4}),
        (10, {"first": 0, "second": 1, "middle": 5, "before_stop": 8, "stop": 9}),
    ],
)
def test_positions(length, expected):
    assert positions_of(length) == expected


def test_slot_rows_against_hand_values():
    """Two samples, two slots of 3 bins, slot 1 has only bins 0-1: Q of the stored bin, the best other valid
    bin (an invalid bin never counts), argmax membership and offset."""
    q = torch.tensor([[[0.1, 0.5, 0.2], [0.3, 0.1, 0.9]], [[0.7, 0.5, 0.2], [0.3, 0.4, 0.0]]])
    bins = torch.tensor([[0, 0], [0, 1]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    rows = slot_rows(q, bins, valid)
    assert rows[0][0] == SlotRow(pytest.approx(0.1), pytest.approx(0.5), False, 1)
    assert rows[0][1] == SlotRow(pytest.approx(0.3), pytest.approx(0.1), True, 0)  # 0.9 is in an invalid bin
    assert rows[1][0] == SlotRow(pytest.approx(0.7), pytest.approx(0.5), True, 0)
    assert rows[1][1] == SlotRow(pytest.approx(0.4), pytest.approx(0.3), True, 0)


def test_summarise_means_and_discounted_return():
    a = [SlotRow(0.2, 0.4, False, -3)]
    b = [SlotRow(0.6, 0.1, True, 0)]
    records = [("first", 3, True, a), ("first", 5, False, b), ("stop", 1, True, b)]
    out = summarise(records, ["wz"], gamma=0.5)
    first = out["first"]
    assert first["samples"] == 2 and first["steps_to_end"] == 4.0
    assert first["discounted_return"] == pytest.approx((0.5**2 * 1 + 0.5**4 * 0) / 2)
    assert first["slots"]["wz"] == pytest.approx(
        {"q_taken": 0.4, "q_best_other": 0.25, "taken_is_argmax": 0.5, "argmax_offset_abs": 1.5}
    )
    assert out["stop"]["discounted_return"] == 1.0 and list(out) == ["first", "stop"]


def test_cli_on_a_tiny_checkpoint(tiny_data, tmp_path, capsys):
    train(tiny_config(tiny_data, tmp_path / "run", optim__max_steps=4, run__ckpt_every=4))
    ckpt = tmp_path / "run" / "checkpoints" / "step-00000004"
    assert main(["--checkpoint", str(ckpt), "--data", str(tiny_data), "--episodes", "3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["episodes"] == 3 and report["gamma"] == 0.9
    first = report["positions"]["first"]
    assert first["samples"] == 3 and len(first["slots"]) == 12  # the tiny model's default 12-slot decoder
    for slot in first["slots"].values():
        assert 0.0 <= slot["q_taken"] <= 1.0 and 0.0 <= slot["taken_is_argmax"] <= 1.0

    assert main(["--checkpoint", str(tmp_path / "nowhere"), "--data", str(tiny_data)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("more-train q-report:") and "nowhere" in err[0]
    assert main(["--checkpoint", str(ckpt), "--data", str(tiny_data), "--tasks", "fly"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no episode matches --tasks fly; its tasks: ['" in err
