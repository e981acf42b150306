"""Property tests: no input yields a LowCmd outside the Go2's joint, velocity, torque and gain limits,
judged on the float32 values the robot reads out of the packed bytes."""

import struct

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from go2_bridge.crc import crc32_words_reference
from go2_bridge.go2 import Q_MAX, Q_MIN, STAND_POSE, TORQUE_MAX, VELOCITY_MAX
from go2_bridge.limits import limit_commands
from go2_bridge.lowcmd import LowCmdData, MotorCommands, fill_lowcmd, init_lowcmd, pack_lowcmd
from go2_bridge.lowstate import RobotState
from go2_bridge.safety import JointTargetsData, Mode, SafetyConfig, SafetyCore

KP_MAX, KD_MAX = 100.0, 10.0
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
vec12 = arrays(np.float64, 12, elements=any_float)
# Mostly-plausible values with occasional garbage, so the torque bound is exercised on real targets.
plausible = arrays(np.float64, 12, elements=st.one_of(st.floats(-5, 5), any_float))
# Values at and just past every limit (30.1 rounds up to 30.100000381 in float32), huge and non-finite.
EDGES = [30.1, 20.07, 23.7, 45.43, 100.0, 10.0, 1e30, 3.4e38, 1.7e308, np.inf, np.nan, 30.100001, 1.0472]
extreme = st.sampled_from([s * v for v in EDGES for s in (1.0, -1.0)])
extreme12 = arrays(np.float64, 12, elements=st.one_of(extreme, any_float))


def check_safe(q, dq, kp, kd, tau, q_meas, kp_max=KP_MAX, kd_max=KD_MAX):
    """Every value within its limit, with no tolerance: these are the values the motor reads."""
    for a in (q, dq, kp, kd, tau):
        assert np.all(np.isfinite(a))
    assert np.all(q >= Q_MIN) and np.all(q <= Q_MAX), q
    assert np.all(np.abs(dq) <= VELOCITY_MAX), dq
    assert np.all((kp >= 0) & (kp <= kp_max)) and np.all((kd >= 0) & (kd <= kd_max)), (kp, kd)
    assert np.all(np.abs(tau) <= TORQUE_MAX), tau
    if q_meas is None:
        assert np.all(kp == 0)
        return
    ok = np.isfinite(q_meas)
    assert np.all(kp[~ok] == 0)
    torque = tau[ok] + kp[ok] * (q[ok] - q_meas[ok])
    assert np.all(np.abs(torque) <= TORQUE_MAX[ok]), (torque, TORQUE_MAX[ok])


def wire_values(lowcmd_bytes: bytes) -> tuple[np.ndarray, ...]:
    """(q, dq, kp, kd, tau) of the 12 leg motors, read out of the 812 bytes as the robot reads them, after
    checking the CRC against the bit-by-bit reference."""
    assert len(lowcmd_bytes) == 812
    words = struct.unpack("<203I", lowcmd_bytes)
    assert words[202] == crc32_words_reference(words[:202]), "CRC does not match"
    motors = [struct.unpack_from("<B3x5f", lowcmd_bytes, 24 + 36 * i) for i in range(12)]
    mode, q, dq, tau, kp, kd = (np.array(col, dtype=np.float64) for col in zip(*motors, strict=True))
    assert np.all(mode == 1)
    return q, dq, kp, kd, tau


@settings(max_examples=400, deadline=None)
@given(q=plausible, dq=extreme12, kp=extreme12, kd=extreme12, tau=extreme12, q_meas=st.one_of(st.none(), plausible))
def test_limit_commands_any_input(q, dq, kp, kd, tau, q_meas):
    out = limit_commands(MotorCommands(q, dq, kp, kd, tau), q_meas, KP_MAX, KD_MAX)
    check_safe(out.q, out.dq, out.kp, out.kd, out.tau, q_meas)
    for a in (out.q, out.dq, out.kp, out.kd, out.tau):  # float32-exact: what is checked is what is sent
        assert np.array_equal(a.astype(np.float32).astype(np.float64), a)


def test_extreme_velocity_stays_within_its_limit_after_float32_rounding():
    # The reported case: a 1e30 target velocity went out as float32(30.1) = 30.100000381 > 30.1.
    assert float(np.float32(30.1)) > 30.1
    cmd = MotorCommands(STAND_POSE.copy(), np.full(12, 1e30), np.full(12, 1e30), np.full(12, 1e30), np.full(12, -1e30))
    # Gain limits that float32 cannot hold exactly either (0.1 -> 0.100000001).
    out = limit_commands(cmd, STAND_POSE, kp_max=33.3, kd_max=0.1)
    q, dq, kp, kd, tau = wire_values(pack_lowcmd(fill_lowcmd(init_lowcmd(LowCmdData()), out)))
    check_safe(q, dq, kp, kd, tau, STAND_POSE, kp_max=33.3, kd_max=0.1)
    assert np.all(dq > VELOCITY_MAX - 1e-5) and np.all(kd > 0.1 - 1e-7)  # at the limit, not below it by much
    assert np.all(tau < -TORQUE_MAX + 1e-3)


def healthy_state(q=None):
    return RobotState(
        q=STAND_POSE.copy() if q is None else q, dq=np.zeros(12), tau_est=np.zeros(12),
        quaternion_wxyz=np.array([1.0, 0, 0, 0]), gyroscope=np.zeros(3), accelerometer=np.array([0, 0, 9.81]),
        foot_force=np.zeros(4), wireless_remote=bytes(40),
    )  # fmt: skip


def active_core(blend_s: float) -> tuple[SafetyCore, float]:
    """A core taken into ACTIVE by the book (healthy robot, sane targets); asserts it got there."""
    core = SafetyCore(SafetyConfig(stand_up_duration_s=0.1, activate_blend_s=blend_s))
    sane = JointTargetsData(STAND_POSE.copy(), np.zeros(12), np.full(12, 20.0), np.full(12, 0.5), np.zeros(12))
    now = 0.0
    core.on_lowstate(healthy_state(), now)
    core.step(now)
    assert core.request("stand_up", now)[0]
    for _ in range(60):
        now += 0.002
        core.on_lowstate(healthy_state(), now)
        core.on_targets(sane, now)
        core.step(now)
    assert core.request("activate", now) == (True, "active")
    return core, now


def step_and_check_wire(core: SafetyCore, robot: RobotState, now: float) -> None:
    core.on_lowstate(robot, now)
    out = core.step(now)
    check_safe(*wire_values(pack_lowcmd(fill_lowcmd(init_lowcmd(LowCmdData()), out))), q_meas=robot.q)


@settings(max_examples=150, deadline=None)
@given(
    position=extreme12, velocity=extreme12, kp=extreme12, kd=extreme12, tau=extreme12, q_meas=plausible,
    dq_meas=st.one_of(st.just(np.zeros(12)), vec12),
    quat=st.one_of(st.just(np.array([1.0, 0, 0, 0])), arrays(np.float64, 4, elements=any_float)),
    estop=st.booleans(), blend=st.sampled_from([0.0, 0.5]),
)  # fmt: skip
def test_state_machine_and_packed_lowcmd(position, velocity, kp, kd, tau, q_meas, dq_meas, quat, estop, blend):
    """ACTIVE first (deterministically), then extreme targets on a healthy robot, then arbitrary readings:
    every LowCmd's bytes are checked as the robot reads them (CRC, then each float32 against its limit)."""
    core, now = active_core(blend)
    tgt = JointTargetsData(position, velocity, kp, kd, tau)
    for _ in range(3):
        now += 0.3  # past the blend: the targets themselves reach the clamp
        core.on_targets(tgt, now)
        step_and_check_wire(core, healthy_state(), now)
    # A healthy robot with finite targets stays ACTIVE whatever they ask, so the clamp was exercised in
    # ACTIVE; non-finite targets damp.
    assert (core.mode is Mode.ACTIVE) == tgt.finite, core.reason
    robot = RobotState(
        q=q_meas, dq=dq_meas, tau_est=np.zeros(12), quaternion_wxyz=quat, gyroscope=np.zeros(3),
        accelerometer=np.zeros(3), foot_force=np.zeros(4), wireless_remote=bytes(40),
    )  # fmt: skip
    core.set_estop(estop, now)
    for _ in range(3):
        now += 0.002
        core.on_targets(tgt, now)
        step_and_check_wire(core, robot, now)
