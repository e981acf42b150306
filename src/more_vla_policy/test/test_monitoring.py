"""Marker and annotated-image content: positions, lengths and colours computed by hand."""

import math

import numpy as np
import pytest

from more_common.action_contract import ACTION_NAMES, stand_command
from more_vla_policy import monitoring as mon
from more_vla_policy.policy_core import STATE_DONE, STATE_FAULT, STATE_RUNNING


def _action(**values):
    a = stand_command()
    for k, v in values.items():
        a[ACTION_NAMES.index(k)] = v
    return a


def test_velocity_arrow_yaw_arc_body_and_text():
    a = _action(vx=0.6, vy=-0.2, wz=0.5, body_height=-0.1, pitch=0.2, gait_phase=0.0, gait_offset=0.5)
    arrow, arc, body, text = mon.command_markers(a, STATE_RUNNING, "go to the red ball")
    assert arrow.kind == "arrow" and arrow.points == ((0.0, 0.0, 0.3), (0.6, -0.2, 0.3))
    assert arrow.color == (0.1, 0.8, 0.2, 1.0)
    assert arc.kind == "line_strip" and len(arc.points) == 17
    assert arc.points[0] == pytest.approx((0.4, 0.0, 0.3))
    # one second of yaw at 0.5 rad/s ends at angle 0.5 on the 0.4 m circle
    assert arc.points[-1] == pytest.approx((0.4 * math.cos(0.5), 0.4 * math.sin(0.5), 0.3))
    assert body.position == pytest.approx((0.0, 0.0, 0.2))  # 0.30 nominal - 0.1
    assert body.orientation == pytest.approx((0.0, math.sin(0.1), 0.0, math.cos(0.1)))
    lines = text.text.split("\n")
    assert lines[0].startswith("bound 3.0 Hz") and "h -0.10 m" in lines[0] and "pitch +0.20 rad" in lines[0]
    assert lines[1] == '"go to the red ball"'
    assert lines[2] == "running"


def test_fault_is_red_and_names_the_fault():
    *_, text = mon.command_markers(stand_command(), STATE_FAULT, "", "stale image")
    assert text.text.split("\n")[1:] == ["(no instruction)", "fault: stale image"]
    arrow = mon.command_markers(stand_command(), STATE_FAULT, "")[0]
    assert arrow.color == (1.0, 0.1, 0.1, 1.0)
    assert arrow.points[1] == (0.0, 0.0, 0.3)  # stop: zero-length arrow


def _bar_length(img, x0, i):
    r0, r1 = mon.bar_row_span(i)
    band = img[r0:r1, x0 + mon.BAR_X0 : x0 + mon.BAR_X0 + mon.BAR_PX]
    is_bar = np.all(band == np.array(mon.BAR_COLOR, np.uint8), axis=2)
    cols = is_bar.all(axis=0)
    assert cols.sum() == is_bar.any(axis=0).sum()  # full-height bar, no partial columns
    return int(cols.sum())


def test_annotated_image_keeps_the_frame_and_draws_q_bars():
    frame = np.random.default_rng(1).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    q = np.linspace(0.0, 1.0, 12).astype(np.float32)
    q[3] = np.nan
    out = mon.annotate(frame, _action(vx=0.5), q, STATE_DONE, "stop at the door")
    assert out.shape == (300, 200 + mon.PANEL_W, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[:, :200], frame)
    for i in range(12):
        expect = 0 if i == 3 else round(float(q[i]) * 100)
        assert _bar_length(out, 200, i) == expect, i
    # the panel carries text (header rows are not plain background)
    assert (out[0 : mon.ROW_H, 200:] != np.array(mon.PANEL_BG, np.uint8)).any()


def test_small_frame_gets_a_panel_tall_enough():
    out = mon.annotate(np.zeros((10, 10, 3), np.uint8), stand_command(), None, STATE_FAULT, "")
    assert out.shape == (mon.MIN_HEIGHT, 10 + mon.PANEL_W, 3)
    assert all(_bar_length(out, 10, i) == 0 for i in range(12))
