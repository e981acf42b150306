"""PolicyCore with a real tiny MoRE policy: every bad input is a stop naming its fault; good input decodes to
exactly what the model decodes; latest frame only; terminate handling; the rate meter."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from more_common.action_contract import TERMINATE, stand_command
from more_model.testing import make_tiny_policy
from more_vla_policy.policy_core import (
    STATE_DISABLED,
    STATE_DONE,
    STATE_FAULT,
    STATE_RUNNING,
    CoreConfig,
    Decision,
    Pacer,
    PolicyCore,
    RateMeter,
    RawImage,
    instruction_fault,
    percentile,
    rgb_to_raw,
    visible_text,
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


@pytest.mark.parametrize("terminates", [False, True])
def test_good_input_decodes_exactly_like_the_model(policy, seeds, terminates):
    """Both kinds of decision, each checked in full: what a running one publishes is the model's action made
    executable (`for_controller`), and a terminating one is DONE."""
    seed = seeds[0] if terminates else seeds[1]
    core, clock = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(seed), stamp_ns=123_456_789))
    clock.t += 0.2
    d = core.step()
    ref = policy.decode([image(seed)], [INSTRUCTION])
    assert (ref.actions[0][TERMINATE] >= 0.5) == terminates  # the precondition the seeds fixture chose
    np.testing.assert_array_equal(d.bins, ref.bins[0])
    np.testing.assert_array_equal(d.q_values, ref.q_values[0])
    np.testing.assert_array_equal(d.raw_action, ref.actions[0])
    if terminates:
        assert d.state == STATE_DONE
    else:
        assert d.state == STATE_RUNNING
        expected = policy.action_spec.for_controller(ref.actions[0])
        np.testing.assert_array_equal(d.action, expected)
        assert not np.array_equal(expected, stand_command())  # a moving command, so the comparison means something
    assert d.image_stamp_ns == 123_456_789 and d.image_age_s == pytest.approx(0.2)
    assert d.fault == "" and d.inference_ms > 0 and d.instruction == INSTRUCTION
    np.testing.assert_array_equal(d.image, image(seed))
    assert d.reasoning == ""  # a model without reasoning writes nothing


def test_a_reasoning_model_decision_carries_what_it_wrote():
    from more_model.testing import tiny_config

    policy = make_tiny_policy(seed=2, config=tiny_config(reasoning="scene"))
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(1)))
    d = core.step()
    ref = policy.decode([image(1)], [INSTRUCTION])
    assert d.reasoning == ref.reasoning[0] and len(d.reasoning) > 0
    np.testing.assert_array_equal(d.bins, ref.bins[0])


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
        # header.stamp sec = -1 (legal for the message; the command could not carry it) and nanosec past a second
        (RawImage("rgb8", 48, 64, 192, bytes(48 * 192), stamp_ns=-1_000_000_000), "malformed image: stamp -1000000000"),
        (RawImage("rgb8", 48, 64, 192, bytes(48 * 192), stamp_ns=(2**31 - 1) * 10**9 + 4 * 10**9), "past builtin"),
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


# -- instructions with nothing visible in them ---------------------------------------------------------
INVISIBLE = {
    "controls": "\x01\x02\x03",
    "terminal escape": "\x1b[2J\x07",  # clear screen + bell: the "[2J" is part of the escape, not text
    "zero-width spaces": "\u200b\u200b\u200b",
    "lone BOM": "\ufeff",
    "invalid UTF-8": b"\xff\xfe\xfd".decode("utf-8", errors="replace"),  # three U+FFFD, as rclpy decodes it
    "mixed": " \u200b\t\ufeff\u2028\u00a0\u3000\x1b[0m",
}


@pytest.mark.parametrize("name", list(INVISIBLE))
def test_instructions_without_visible_content_stop_like_an_empty_one(policy, name):
    text = INVISIBLE[name]
    assert visible_text(text) == ""
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(text)
    core.submit_image(rgb_to_raw(image(6), stamp_ns=5))
    d = core.step()
    assert_stop(d, STATE_FAULT, "empty instruction")
    assert d.image_stamp_ns == 0 and math.isnan(d.inference_ms)  # the model never ran


def test_the_fault_names_the_invisible_instruction():
    assert instruction_fault("\x01\x02\x03", 100) == r"empty instruction: no visible characters in '\x01\x02\x03'"
    assert instruction_fault("\ufeff", 100) == r"empty instruction: no visible characters in '\ufeff'"
    assert instruction_fault("", 100) == "empty instruction"
    assert instruction_fault("  \n", 100) == "empty instruction"


@pytest.mark.parametrize(
    ("text", "visible"),
    [
        ("go to the red ball", "gototheredball"),
        ("geh zum Ball, schnell!", "gehzumBall,schnell!"),
        ("иди к красному мячу", "идиккрасномумячу"),
        ("赤いボールへ行って", "赤いボールへ行って"),
        ("\x1b[31mcrawl\x1b[0m under\u200b it", "crawlunderit"),  # colour codes and a zero-width space around text
        ("\ufeffturn left", "turnleft"),
        ("e\u0301", "e\u0301"),  # a combining accent on a letter is content
    ],
)
def test_visible_instructions_run_the_model_unchanged(policy, text, visible):
    assert visible_text(text) == visible
    assert instruction_fault(text, 100) == ""
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(text)
    core.submit_image(rgb_to_raw(image(8)))
    d = core.step()
    assert d.bins is not None and d.fault == ""
    np.testing.assert_array_equal(d.bins, policy.decode([image(8)], [text]).bins[0])  # the text as given


# -- stamps, the watchdog and the check at publish time -------------------------------------------------
def test_stops_carry_stamp_zero(policy):
    core, _ = core_for(policy)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(RawImage("mono8", 48, 64, 64, bytes(48 * 64), stamp_ns=987_654_321))
    d = core.step()
    assert_stop(d, STATE_FAULT, "malformed image")
    assert d.image_stamp_ns == 0
    core.submit_image(rgb_to_raw(image(9), stamp_ns=987_654_322))
    assert core.step().image_stamp_ns == 987_654_322  # a decided command keeps its image's stamp


class CountingPolicy:
    """The real tiny policy, counting its decode calls (the watchdog must never wait on the model)."""

    def __init__(self, policy) -> None:
        self.policy, self.calls = policy, 0
        self.action_spec = policy.action_spec

    def decode(self, images, instructions):
        self.calls += 1
        return self.policy.decode(images, instructions)


def test_watchdog_is_silent_while_the_image_is_fresh_and_stops_without_the_model(policy):
    counting = CountingPolicy(policy)
    clock = Clock()
    core = PolicyCore(counting, CoreConfig(image_timeout_s=0.5), clock=clock)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    assert_stop(core.watchdog(), STATE_FAULT, "no image received yet")
    core.submit_image(rgb_to_raw(image(10), stamp_ns=3))
    clock.t += 0.5
    assert core.watchdog() is None
    clock.t += 0.001
    d = core.watchdog()
    assert_stop(d, STATE_FAULT, "stale image: 0.501 s old > image_timeout_s 0.5")
    assert d.image_stamp_ns == 0 and d.image_seq == 1
    core.set_enabled(False)
    assert_stop(core.watchdog(), STATE_DISABLED, "")
    assert counting.calls == 0 and core.decisions == 0  # watchdog stops are not decisions


def test_a_decision_whose_image_went_stale_during_inference_is_published_as_a_stop(policy):
    core, clock = core_for(policy, image_timeout_s=0.5)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    core.submit_image(rgb_to_raw(image(11), stamp_ns=42))
    clock.t += 0.1
    d = core.step()
    assert d.bins is not None and d.image_received_s == 100.0
    assert core.finish(d, now=100.5) is d  # exactly the timeout old: still valid
    late = core.finish(d, now=100.62)
    assert_stop(late, STATE_FAULT, "stale image at publish: decided on an image 0.620 s old > image_timeout_s 0.5")
    assert late.image_stamp_ns == 0 and late.image_age_s == pytest.approx(0.62)
    stop = core.watchdog(now=100.7)
    assert core.finish(stop, now=100.7) is stop  # stops pass unchanged


@settings(max_examples=200, deadline=None)
@given(
    arrivals=st.lists(st.floats(0.0, 0.3), min_size=1, max_size=6),
    decided=st.integers(0, 5),
    watchdog_after=st.floats(0.0, 2.0),
    publish_after=st.floats(0.0, 2.0),
)
def test_no_model_command_follows_a_watchdog_stop_for_an_older_image(
    policy, arrivals, decided, watchdog_after, publish_after
):
    """Whatever the timing: once the watchdog stopped for a stale image, a decision on that image or an older
    one that finish() checks afterwards is a stop too (commands stay ordered)."""
    core, clock = core_for(policy, image_timeout_s=0.5)
    core.set_enabled(True)
    core.set_instruction(INSTRUCTION)
    times = [clock.t + dt for dt in sorted(arrivals)]
    for t in times:
        core.submit_image(rgb_to_raw(image(0)), received_at=t)
    k = min(decided, len(times) - 1)  # the decision read image k + 1 (an older one or the newest)
    decision = Decision(
        action=policy.action_spec.for_controller(np.zeros(12)),
        state=STATE_RUNNING,
        bins=np.zeros(12, np.int64),
        image_seq=k + 1,
        image_received_s=times[k],
        inference_ms=1.0,
    )
    t_watch = times[-1] + watchdog_after
    stopped = core.watchdog(now=t_watch)
    published = core.finish(decision, now=t_watch + publish_after)
    assert (stopped is not None) == (watchdog_after > 0.5)
    if stopped is not None:
        assert published.is_stop
    assert published.is_stop == (t_watch + publish_after - times[k] > 0.5)


# -- pacing: when decisions start ----------------------------------------------------------------------
def simulate(rate_hz, arrivals, decode_s, frame_interval=math.nan):
    """The worker loop of policy_node on a timeline: (start time, arrival of the frame decided on) per decision.
    A frame arriving while a decision runs replaces any earlier such frame (only the newest is kept)."""
    pacer = Pacer(rate_hz)
    starts = []
    free_since, pending = -math.inf, None

    def consider(arrival, now):
        nonlocal free_since
        if pacer.ready(arrival, free_since, frame_interval):
            pacer.started(now)
            starts.append((now, arrival))
            free_since = now + decode_s

    for a in arrivals:
        if pending is not None and a >= free_since:  # the worker became free with a frame waiting
            frame, pending = pending, None
            consider(frame, free_since)
        if a < free_since:
            pending = a
        else:
            consider(a, a)
    if pending is not None:
        consider(pending, free_since)
    return starts


def frames(fps, seconds, jitter=()):
    jitter = list(jitter) or [0.0]
    return [k / fps + jitter[k % len(jitter)] for k in range(int(seconds * fps))]


def test_a_fast_camera_is_decided_on_arrival_at_exactly_the_rate():
    # 30 fps (frame 0 at 0, frame k at k/30 + 4 ms), 5 Hz, 30 ms decode. Frame 0; the slot reopens half a
    # period later, at 100 ms: frame 3 (104 ms); from then on the slots are phase-locked at 300, 500, ... ms:
    # frames 9, 15, ... (304, 504, ... ms), i.e. exactly every 200 ms, each decided at its arrival
    arrivals = [0.0] + [k / 30 + 0.004 for k in range(1, 120)]
    starts = simulate(5.0, arrivals, decode_s=0.03)
    assert [arrivals.index(a) for _, a in starts] == [0, *range(3, 120, 6)]
    assert all(t == a for t, a in starts)


def test_a_camera_at_or_below_the_rate_is_decided_frame_by_frame():
    """(what the old loop risked: a camera no faster than rate_hz decided on every other frame)"""
    # 5 fps at 5 Hz with arrival times varying by up to 90 ms (< half the 200 ms period), and 4 fps at 5 Hz
    jittery = frames(5.0, 10.0, jitter=[0.0, 0.045, -0.045, 0.01, 0.04, -0.02])
    assert [a for _, a in simulate(5.0, jittery, decode_s=0.03)] == jittery
    slow = frames(4.0, 10.0)
    assert [a for _, a in simulate(5.0, slow, decode_s=0.03)] == slow


def test_a_late_frame_beyond_half_a_period_costs_the_next_one():
    # 5 fps at 5 Hz; frame 2 comes 120 ms late (at 520 ms): the slot after it opens 100 ms later, at 620 ms,
    # so frame 3 (600 ms, only 80 ms after it) is skipped; frame 4 (800 ms) is decided and all after it
    arrivals = [0.0, 0.2, 0.52, 0.6, 0.8, 1.0, 1.2]
    assert [a for _, a in simulate(5.0, arrivals, decode_s=0.03)] == [0.0, 0.2, 0.52, 0.8, 1.0, 1.2]


def test_frames_that_wait_for_a_slow_decision_are_used_if_they_waited_under_a_third_of_a_frame():
    # 30 fps at 30 Hz (a third of a frame: 11.1 ms); a 40 ms decode leaves frame 1 (33.3 ms) waiting 6.7 ms:
    # used at 40 ms. That decision ends at 80 ms; frame 2 (66.7 ms) waited 13.3 ms: skipped, frame 3 (100 ms).
    starts = simulate(30.0, frames(30.0, 0.14), decode_s=0.04, frame_interval=1 / 30)
    assert starts == [(0.0, 0.0), (0.04, 1 / 30), (0.1, 0.1)]
    # with the frame interval unknown only frames that come while the worker is free are used: frame 2
    # (66.7 ms, after the first decision ended at 40 ms); frame 3 (100 ms) came during the second decision
    assert simulate(30.0, frames(30.0, 0.14), decode_s=0.04) == [(0.0, 0.0), (2 / 30, 2 / 30)]


def test_a_model_slower_than_the_camera_uses_the_waiting_frame_within_a_third_of_a_frame():
    # 5 fps at 5 Hz, 230 ms decode (a third of a frame: 66.7 ms). Frame 1 (200 ms) waits 30 ms: decided at
    # 230; frame 2 (400) waits 60: at 460; frame 3 (600) would wait 90: skipped; frame 4 (800) comes while the
    # worker is free: decided at once; and so on: 3 decisions per 800 ms (3.75 Hz; 2.5 Hz if only fresh frames)
    starts = simulate(5.0, frames(5.0, 2.6), decode_s=0.23, frame_interval=0.2)
    expect = [(0.0, 0.0), (0.23, 0.2), (0.46, 0.4), (0.8, 0.8), (1.03, 1.0), (1.26, 1.2), (1.6, 1.6), (1.83, 1.8)]
    np.testing.assert_allclose(starts[:8], expect, atol=1e-9)


@settings(max_examples=300, deadline=None)
@given(
    rate_hz=st.floats(1.0, 50.0),
    gaps=st.lists(st.floats(0.0, 0.4), min_size=1, max_size=80),
    decode_s=st.floats(0.0, 0.3),
)
def test_the_rate_is_never_above_rate_hz(rate_hz, gaps, decode_s):
    arrivals = list(np.cumsum(gaps))
    starts = [t for t, _ in simulate(rate_hz, arrivals, decode_s, frame_interval=float(np.mean(gaps)))]
    period = 1 / rate_hz
    for i in range(len(starts)):
        for j in range(i + 1, len(starts)):
            # j - i intervals take at least (j - i) periods less half a period: on average at most rate_hz
            assert starts[j] - starts[i] >= (j - i) * period - period / 2 - 1e-9
