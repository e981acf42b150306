"""The policy node as its own process, driven over real DDS: no motion until enabled, exact decoding, a stop
command and an ERROR diagnostic for every bad input, markers and annotated image matching the command, the
watchdog's stop after the last image, no command from an image that went stale during inference."""

import time

import numpy as np
import pytest

from more_ros.testing import NodeProcess, Probe, image_message

pytestmark = pytest.mark.ros

INSTRUCTION = "go to the red ball"
TIMEOUT_S = 0.6


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from more_model.testing import make_tiny_checkpoint

    return make_tiny_checkpoint(tmp_path_factory.mktemp("policy") / "ckpt", seed=3)


STALE_TIMEOUT_S = 0.005  # the stale-at-publish test's image_timeout_s


@pytest.fixture(scope="module")
def slow_checkpoint(tmp_path_factory):
    """A wider, deeper test model whose greedy decode takes far longer than STALE_TIMEOUT_S on any CPU (~50 ms on
    the build machine's core; the default test model's draft decode of a repeated image can take under 5 ms)."""
    from more_model.config import TinyBackboneConfig
    from more_model.testing import make_tiny_checkpoint, tiny_config

    wide = TinyBackboneConfig(hidden_size=256, intermediate_size=1024, num_layers=6, num_heads=4, patch_size=16)
    config = tiny_config(tiny=wide, image_height=96, image_width=144)
    return make_tiny_checkpoint(tmp_path_factory.mktemp("slow_policy") / "ckpt", seed=3, config=config)


@pytest.fixture(scope="module")
def rig(checkpoint):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image
    from std_msgs.msg import String
    from std_srvs.srv import SetBool
    from visualization_msgs.msg import MarkerArray

    from more_msgs.msg import PolicyStatus, QuadrupedCommand
    from more_ros import names
    from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS

    proc = NodeProcess(
        "more_vla_policy.policy_node",
        {"checkpoint": str(checkpoint), "rate_hz": 10.0, "image_timeout_s": TIMEOUT_S, "torch_threads": 1},
    )
    probe = Probe("policy_node_probe")
    probe.image_pub = probe.node.create_publisher(Image, names.CAMERA_IMAGE, SENSOR_QOS)
    probe.instruction_pub = probe.node.create_publisher(String, names.INSTRUCTION, LATCHED_QOS)
    probe.enable = probe.node.create_client(SetBool, names.POLICY_ENABLE)
    probe.commands = probe.listen(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
    probe.status = probe.listen(PolicyStatus, names.POLICY_STATUS, STATUS_QOS)
    probe.diagnostics = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
    probe.markers = probe.listen(MarkerArray, names.MARKERS, STATUS_QOS)
    probe.annotated = probe.listen(Image, names.ANNOTATED_IMAGE, SENSOR_QOS)
    try:
        up = probe.spin_until(lambda: probe.status or not proc.alive, timeout=90)
        if not up or not proc.alive:
            pytest.fail(f"policy node did not come up: {_stopped(proc)[-2000:]}")
        yield probe
    finally:
        probe.close()
        err = _stopped(proc)
        assert "Traceback" not in err, err[-3000:]


def good_image(seed=11):
    return np.random.default_rng(seed).integers(0, 256, (48, 64, 3), dtype=np.uint8)


def now_ns(probe):
    return probe.node.get_clock().now().nanoseconds


def publish_instruction(probe, text):
    from std_msgs.msg import String

    probe.instruction_pub.publish(String(data=text))


def set_enabled(probe, enabled):
    from std_srvs.srv import SetBool

    assert probe.enable.wait_for_service(timeout_sec=30)
    future = probe.enable.call_async(SetBool.Request(data=enabled))
    assert probe.spin_until(future.done, timeout=10)
    assert future.result().success


def stream(probe, rgb, publisher=None, **kw):
    """An action for spin_until that publishes `rgb` with a fresh stamp each call (`act.stamps`: those used)."""
    stamps = []
    publisher = publisher or probe.image_pub

    def act():
        stamps.append(now_ns(probe))
        publisher.publish(image_message(rgb, stamps[-1], **kw))

    act.stamps = stamps
    return act


def is_stop(cmd):
    return list(cmd.bins) == [-1] * 12 and cmd.vx == 0.0 and cmd.vy == 0.0 and cmd.wz == 0.0


def stamp_of(msg):
    return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec


def _moving_image_seed(policy):
    """The first image seed the tiny model does not terminate on: its published command must be the model's."""
    for seed in range(11, 60):
        if policy.decode([good_image(seed)], [INSTRUCTION]).actions[0][11] < 0.5:
            return seed
    pytest.fail("no image seed among 11..59 that the tiny model walks on")


def test_no_motion_until_enabled_then_exactly_the_models_decision(rig, checkpoint):
    from more_model import load_policy
    from more_ros.convert import msg_to_command
    from more_vla_policy import monitoring as mon

    probe = rig
    seed = _moving_image_seed(load_policy(checkpoint))
    publish_instruction(probe, INSTRUCTION)
    act = stream(probe, good_image(seed))
    n = len(probe.commands)
    assert probe.spin_until(lambda: len(probe.commands) > n + 3, timeout=20, action=act)
    assert all(is_stop(c) for c in probe.commands[n:])
    disabled = lambda: [m for m in probe.status if m.state == 0 and m.instruction == INSTRUCTION]  # noqa: E731
    assert probe.spin_until(disabled, timeout=10, action=act)

    set_enabled(probe, True)
    decided = lambda: [c for c in probe.commands if c.bins[0] >= 0]  # noqa: E731
    assert probe.spin_until(lambda: len(decided()) >= 3, timeout=20, action=act)
    cmd = decided()[-1]
    stamp = cmd.header.stamp.sec * 1_000_000_000 + cmd.header.stamp.nanosec
    assert stamp in act.stamps, "the command must carry the stamp of the image it was computed from"
    ref = load_policy(checkpoint).decode([good_image(seed)], [INSTRUCTION])
    assert list(cmd.bins) == ref.bins[0].tolist()
    np.testing.assert_allclose(cmd.q_values, ref.q_values[0], rtol=0, atol=1e-6)
    spec = load_policy(checkpoint).action_spec
    assert ref.actions[0][11] < 0.5 and not cmd.terminate
    np.testing.assert_allclose(msg_to_command(cmd), spec.for_controller(ref.actions[0]), atol=1e-6)
    # (status and command are separate topics: wait for the status of a decided step rather than take the last)
    running = lambda: [m for m in probe.status if m.state in (1, 3)]  # noqa: E731
    assert probe.spin_until(running, timeout=10, action=act)
    assert running()[-1].fault == "" and running()[-1].inference_ms > 0

    # monitoring: the markers and the annotated image of a decided command carry its values. Each carries the
    # stamp of the command it shows; markers of other (stop) commands may arrive in between, so match by stamp.
    def shown():
        markers = {stamp_of(a.markers[0]): a for a in probe.markers if a.markers}
        images = {stamp_of(m): m for m in probe.annotated}
        both = [c for c in decided() if stamp_of(c) in markers and stamp_of(c) in images]
        return (both[-1], markers[stamp_of(both[-1])], images[stamp_of(both[-1])]) if both else None

    assert probe.spin_until(shown, timeout=10, action=act)
    cmd, marker_array, img_msg = shown()
    assert stamp_of(cmd) in act.stamps and list(cmd.bins) == ref.bins[0].tolist()
    arrow = next(m for m in marker_array.markers if m.ns == "velocity")
    assert arrow.header.frame_id == "base_link"
    assert (arrow.points[1].x, arrow.points[1].y) == pytest.approx((cmd.vx, cmd.vy), abs=1e-6)
    text = next(m for m in marker_array.markers if m.ns == "text")
    assert f'"{INSTRUCTION}"' in text.text and text.text.splitlines()[-1] in ("running", "done")
    img = np.frombuffer(bytes(img_msg.data), np.uint8).reshape(img_msg.height, img_msg.width, 3)
    np.testing.assert_array_equal(img[:48, :64], good_image(seed))
    for i in range(12):
        r0, _ = mon.bar_row_span(i)
        row = img[r0, 64 + mon.BAR_X0 : 64 + mon.BAR_X0 + mon.BAR_PX]
        length = int(np.all(row == np.array(mon.BAR_COLOR, np.uint8), axis=1).sum())
        assert length == round(float(ref.q_values[0][i]) * mon.BAR_PX)


def _bad_mono(probe):
    return stream(probe, good_image(), encoding="mono8")  # 3 bytes per pixel claimed as mono8


def _publish_raw(probe, mutate):
    def act():
        msg = image_message(good_image(), now_ns(probe))
        mutate(msg)
        probe.image_pub.publish(msg)

    return act


def _set(**fields):
    def mutate(msg):
        for k, v in fields.items():
            setattr(msg, k, v)

    return mutate


def _negative_stamp(msg):
    msg.header.stamp.sec, msg.header.stamp.nanosec = -1, 0


INSTRUCTION_CASES = {
    "empty_instruction": ("", "empty instruction"),
    "escape_instruction": ("\x1b[2J\x07", r"empty instruction: no visible characters in '\x1b[2J\x07'"),
    "zero_width_instruction": ("\u200b\ufeff", r"empty instruction: no visible characters in '\u200b\ufeff'"),
}
CASES = {
    "stale_image": (lambda probe: lambda: None, "stale image"),
    **{name: (None, needle) for name, (_, needle) in INSTRUCTION_CASES.items()},
    "wrong_encoding": (_bad_mono, "malformed image: unsupported encoding 'mono8'"),
    "zero_height": (lambda p: _publish_raw(p, _set(height=0, data=b"")), "malformed image: bad size 64x0"),
    "short_step": (lambda p: _publish_raw(p, _set(step=64 * 3 - 1)), "malformed image: step 191 is shorter"),
    "data_length": (
        lambda p: _publish_raw(p, _set(data=bytes(48 * 64 * 3 - 7))),
        "malformed image: data length 9209 != step * height = 192 * 48 = 9216",
    ),
    # legal for the message, but no command can carry it: once silenced the node (no command, no diagnostics)
    "negative_stamp": (lambda p: _publish_raw(p, _negative_stamp), "malformed image: stamp -1000000000 ns"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_each_bad_input_yields_a_stop_and_an_error_diagnostic(rig, case):
    probe = rig
    set_enabled(probe, True)
    publish_instruction(probe, INSTRUCTION)
    good = stream(probe, good_image())
    # back to normal operation first, so the stop below is caused by this case
    n = len(probe.commands)
    assert probe.spin_until(lambda: any(c.bins[0] >= 0 for c in probe.commands[n:]), timeout=20, action=good)
    make_action, needle = CASES[case]
    if case in INSTRUCTION_CASES:
        publish_instruction(probe, INSTRUCTION_CASES[case][0])
        action = good
    else:
        action = make_action(probe)
    n_cmd, n_diag, n_status = len(probe.commands), len(probe.diagnostics), len(probe.status)
    start = time.monotonic()

    def stopped_and_reported():
        stops = [c for c in probe.commands[n_cmd:] if is_stop(c)]
        errors = [
            s
            for d in probe.diagnostics[n_diag:]
            for s in d.status
            if s.level == b"\x02" and s.name == "more_vla_policy: policy_node" and needle in s.message
        ]
        return bool(stops) and bool(errors)

    assert probe.spin_until(stopped_and_reported, timeout=TIMEOUT_S + 4.0, action=action), (
        f"{case}: no stop + ERROR diagnostic containing {needle!r}; statuses since: "
        f"{[(m.state, m.fault) for m in probe.status[n_status:]][-5:]}"
    )
    assert time.monotonic() - start < TIMEOUT_S + 4.0
    faulted = lambda: [m for m in probe.status[n_status:] if m.state == 2 and needle in m.fault]  # noqa: E731
    assert probe.spin_until(faulted, timeout=5, action=action), "no FAULT PolicyStatus naming the fault"
    stops = [c for c in probe.commands[n_cmd:] if is_stop(c)]
    assert all(stamp_of(c) == 0 for c in stops), "a stop is not computed from an image: its stamp is zero"
    if case in INSTRUCTION_CASES:
        publish_instruction(probe, INSTRUCTION)


def test_the_watchdog_stops_within_the_timeout_after_the_last_image_and_nothing_follows_but_stops(rig):
    """5 trials (bench/bench_faults.py runs 30): images until the model decides, then none. The first stop
    arrives within image_timeout_s + 100 ms of the last image (not before the timeout), and after it only
    stops."""
    from more_msgs.msg import QuadrupedCommand
    from more_ros import names
    from more_ros.qos import COMMAND_QOS

    probe = rig
    set_enabled(probe, True)
    publish_instruction(probe, INSTRUCTION)
    timed = probe.listen(QuadrupedCommand, names.COMMAND, COMMAND_QOS, stamp=True)
    reactions = []
    for _ in range(5):
        act = stream(probe, good_image())
        n = len(timed)
        assert probe.spin_until(lambda: any(c.bins[0] >= 0 for _, c in timed[n:]), timeout=20, action=act)  # noqa: B023
        act()
        last_image = time.monotonic()
        n = len(timed)
        assert probe.spin_until(lambda: any(is_stop(c) for _, c in timed[n:]), timeout=TIMEOUT_S + 3)  # noqa: B023
        first = next(i for i, (_, c) in enumerate(timed[n:], n) if is_stop(c))
        reactions.append(timed[first][0] - last_image)
        probe.spin_for(0.3)
        assert all(is_stop(c) for _, c in timed[first:]), "a model command followed the watchdog's stop"
    assert all(TIMEOUT_S - 0.01 <= r <= TIMEOUT_S + 0.1 for r in reactions), reactions


def test_a_decision_on_an_image_that_went_stale_during_inference_is_published_as_a_stop(slow_checkpoint):
    """image_timeout_s 5 ms, shorter than any greedy decode of the slow model (checked here first): every
    decision's image is stale by the time it would be published, so not one model command goes out; FAULT status
    and ERROR diagnostic name it."""
    import torch
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image

    from more_model import load_policy
    from more_msgs.msg import PolicyStatus, QuadrupedCommand
    from more_ros.qos import COMMAND_QOS, SENSOR_QOS, STATUS_QOS

    policy = load_policy(slow_checkpoint)
    image = np.zeros((*policy.image_size, 3), np.uint8)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the node below (torch_threads 1)
    try:
        times = []
        for _ in range(4):
            start = time.perf_counter()
            policy.decode([image], [INSTRUCTION])
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert min(times[1:]) > 4 * STALE_TIMEOUT_S, f"the test's premise fails: a decode took {min(times[1:]):.4f} s"

    topic = "/test_stale_at_publish/image"  # its own image topic: the module's node hears none of these images
    proc = NodeProcess(
        "more_vla_policy.policy_node",
        {
            "checkpoint": str(slow_checkpoint),
            "rate_hz": 10.0,
            "image_timeout_s": STALE_TIMEOUT_S,
            "torch_threads": 1,
            "decoder": "greedy",  # a draft of a repeated image verifies in one pass: not slow by construction
            "enabled": True,
            "instruction": INSTRUCTION,
            "image_topic": topic,
        },
    )
    probe = Probe("stale_at_publish_probe")
    try:
        from more_ros import names

        publisher = probe.node.create_publisher(Image, topic, SENSOR_QOS)
        commands = probe.listen(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
        status = probe.listen(PolicyStatus, names.POLICY_STATUS, STATUS_QOS)
        diagnostics = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        act = stream(probe, good_image(), publisher=publisher)
        needle = "stale image at publish: decided on an image"
        replaced = lambda: [m for m in status if m.state == 2 and needle in m.fault]  # noqa: E731
        reported = lambda: [  # noqa: E731
            s for d in diagnostics for s in d.status if s.level == b"\x02" and needle in s.message
        ]
        ok = probe.spin_until(lambda: len(replaced()) >= 3 and reported(), timeout=90, action=act, every=0.05)
        assert ok, f"no decision replaced by a stop: {[m.fault for m in status][-5:]} {proc.output()[-1500:]}"
        # a model command would carry its image's stamp; stops carry zero
        assert not [c for c in commands if stamp_of(c) in set(act.stamps)], "a stale decision went out"
    finally:
        probe.close()
        err = _stopped(proc)
        assert "Traceback" not in err, err[-3000:]


def test_bad_parameters_end_the_node_with_one_line(tmp_path):
    cases = [
        ({"checkpoint": str(tmp_path / "missing")}, f"checkpoint directory {tmp_path / 'missing'} does not exist"),
        ({"checkpoint": str(tmp_path), "rate": 5.0}, "unknown parameter(s) for node 'policy_node': ['rate']"),
        ({"checkpoint": str(tmp_path), "rate_hz": 5}, "parameter 'rate_hz'"),
    ]
    procs = [(NodeProcess("more_vla_policy.policy_node", p), needle) for p, needle in cases]
    for proc, needle in procs:
        proc.wait(60)
        err = proc.output()
        assert proc.returncode == 2, err
        assert needle in err and "Traceback" not in err


def _stopped(node: NodeProcess) -> str:
    node.stop()
    return node.output()
