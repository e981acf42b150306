"""PolicyCore with a real tiny MoRE policy: every bad input is a stop naming its fault; good input decodes to
exactly what the model decodes; latest frame only; terminate handling; the rate meter."""

import math

import numpy as np
import pytest
import torch

from more_common.action_contract import TERMINATE, stand_command
from more_model.testing import make_tiny_policy
from more_vla_policy.policy_core import (
    STATE_DISABLED,
    STATE_DONE,
    STATE_FAULT,
    STATE_RUNNING,
    CoreConfig,
    PolicyCore,
    RateMeter,
    RawImage,
    percentile,
    rgb_to_raw,
)

INSTRUCTION = "go to the red ball"


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def policy():
    return make_tiny_policy(seed=0)


def image(seed: int, h: int = 48, w: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def core_for(policy, **config):
    clock = Clock()
    core = PolicyCore(policy, CoreConfig(**config), clock=clock)
    return core, clock


def assert_stop(decision, state, fault_part):
    np.testing.assert_array_equal(decision.action, stand_command())
    assert decision.state == state and decision.bins is None and decision.q_values is None
    assert fault_part in decision.fault


def test_disabled_publishes_stop_and_never_decodes(policy):
    core, _ = core_for(policy)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(0)))
    d = core.step()
    assert_stop(d, STATE_DISABLED, "")
    assert d.fault == "" and d.is_stop


def test_good_input_decodes_exactly_like_the_model(policy):
    core, clock = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(1), stamp_ns=123_456_789))
    clock.t += 0.2
    d = core.step()
    ref = policy.decode([image(1)], [INSTRUCTION])
    np.testing.assert_array_equal(d.bins, ref.bins[0])
    np.testing.assert_array_equal(d.q_values, ref.q_values[0])
    np.testing.assert_array_equal(d.raw_action, ref.actions[0])
    if ref.actions[0][TERMINATE] >= 0.5:
        assert d.state == STATE_DONE
    else:
        assert d.state == STATE_RUNNING
        np.testing.assert_array_equal(d.action, policy.action_spec.for_controller(ref.actions[0]))
    assert d.image_stamp_ns == 123_456_789 and d.image_age_s == pytest.approx(0.2)
    assert d.fault == "" and d.inference_ms > 0 and d.instruction == INSTRUCTION
    np.testing.assert_array_equal(d.image, image(1))


def test_only_the_latest_frame_is_used(policy):
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    for seed in (2, 3, 4):
        core.submit_image(rgb_to_raw(image(seed), stamp_ns=seed))
    assert core.image_seq == 3
    d = core.step()
    assert d.image_stamp_ns == 4
    np.testing.assert_array_equal(d.bins, policy.decode([image(4)], [INSTRUCTION]).bins[0])


def test_stale_image_stops_after_the_timeout(policy):
    core, clock = core_for(policy, image_timeout_s=0.5)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(5)))
    clock.t += 0.49
    assert core.step().state in (STATE_RUNNING, STATE_DONE)
    clock.t += 0.02
    d = core.step()
    assert_stop(d, STATE_FAULT, "stale image: 0.510 s old > image_timeout_s 0.5")
    assert d.image_age_s == pytest.approx(0.51)


def test_no_image_yet(policy):
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    assert_stop(core.step(), STATE_FAULT, "no image received yet")


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_instruction_stops(policy, text):
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(text)
    core.submit_image(rgb_to_raw(image(6)))
    assert_stop(core.step(), STATE_FAULT, "empty instruction")


def test_too_long_instruction_stops(policy):
    core, _ = core_for(policy, max_instruction_chars=10)
    core.set_enabled(True)
    core.set_instruction("walk " * 3)
    core.submit_image(rgb_to_raw(image(6)))
    assert_stop(core.step(), STATE_FAULT, "instruction too long: 15 > 10 characters")


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (RawImage("mono8", 48, 64, 64, bytes(48 * 64)), "malformed image: unsupported encoding 'mono8'"),
        (RawImage("rgb8", 0, 64, 192, b""), "malformed image: bad size 64x0"),
        (RawImage("rgb8", 48, 64, 100, bytes(4800)), "malformed image: step 100 is shorter"),
        (RawImage("rgb8", 48, 64, 192, bytes(100)), "malformed image: data length 100 != step * height"),
    ],
)
def test_malformed_images_stop(policy, raw, needle):
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(raw)
    assert_stop(core.step(), STATE_FAULT, needle)


def test_a_real_inference_error_stops_and_the_core_recovers():
    broken = make_tiny_policy(seed=0)
    good_head = broken.backbone.lm_head.weight
    core, _ = core_for(broken)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(7)))
    # A 3-row head makes the model's own gather of the 256 bin rows fail: a genuine torch error, no stand-in.
    broken.backbone.lm_head.weight = torch.nn.Parameter(torch.zeros(3, 3))
    d = core.step()
    assert_stop(d, STATE_FAULT, "inference failed: IndexError: index out of range")
    assert math.isfinite(d.inference_ms)
    broken.backbone.lm_head.weight = good_head
    assert core.step().state in (STATE_RUNNING, STATE_DONE)


@pytest.fixture(scope="module")
def seeds(policy):
    return _find_images(policy)


def _find_images(policy):
    """Seeds of one image the tiny model decodes as terminate and one it does not."""
    found = {}
    for seed in range(40):
        term = policy.decode([image(seed)], [INSTRUCTION]).actions[0][TERMINATE] >= 0.5
        found.setdefault(bool(term), seed)
        if len(found) == 2:
            return found[True], found[False]
    pytest.fail("no terminating / non-terminating image among 40 seeds")


def test_terminate_stands_and_hold_on_terminate_latches(policy, seeds):
    term_seed, go_seed = seeds
    core, _ = core_for(policy, hold_on_terminate=True)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(term_seed)))
    d = core.step()
    expect = stand_command()
    expect[TERMINATE] = 1.0
    assert d.state == STATE_DONE and d.bins is not None and not d.is_stop
    np.testing.assert_array_equal(d.action, expect)
    # latched: even an image the model would act on keeps it standing ...
    core.submit_image(rgb_to_raw(image(go_seed)))
    held = core.step()
    assert held.state == STATE_DONE and held.bins is None
    np.testing.assert_array_equal(held.action, expect)
    # ... until a new instruction arrives
    core.set_instruction(INSTRUCTION + " again")
    again = core.step()
    assert again.bins is not None  # the model decides again
    ref = policy.decode([image(go_seed)], [INSTRUCTION + " again"])
    np.testing.assert_array_equal(again.bins, ref.bins[0])


def test_without_hold_every_decision_is_fresh(policy, seeds):
    term_seed, go_seed = seeds
    core, _ = core_for(policy, hold_on_terminate=False)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(term_seed)))
    assert core.step().state == STATE_DONE
    core.submit_image(rgb_to_raw(image(go_seed)))
    assert core.step().state == STATE_RUNNING


def test_config_is_checked():
    with pytest.raises(ValueError, match="image_timeout_s must be > 0"):
        CoreConfig(image_timeout_s=0.0)
    with pytest.raises(ValueError, match="max_instruction_chars"):
        CoreConfig(max_instruction_chars=0)


def test_rate_meter_and_percentile():
    meter = RateMeter(window=4)
    assert math.isnan(meter.rate_hz)
    for t in (0.0, 0.1, 0.2, 0.3, 0.4, 0.5):
        meter.tick(t)
    assert meter.rate_hz == pytest.approx(10.0)  # 4 intervals over 0.4 s
    assert percentile([1.0, 2.0, 3.0, float("nan")], 50) == 2.0
    assert percentile([0.0, 10.0], 99) == pytest.approx(9.9)
    assert math.isnan(percentile([], 50))
