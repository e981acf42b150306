"""Property tests: no input whatsoever yields a LowCmd outside the Go2's joint and torque limits."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from go2_bridge.go2 import Q_MAX, Q_MIN, TORQUE_MAX, VELOCITY_MAX
from go2_bridge.limits import limit_commands
from go2_bridge.lowcmd import LowCmdData, MotorCommands, fill_lowcmd, init_lowcmd, pack_lowcmd, unpack_lowcmd
from go2_bridge.lowstate import RobotState
from go2_bridge.safety import JointTargetsData, SafetyCore

KP_MAX, KD_MAX = 100.0, 10.0
any_float = st.floats(allow_nan=True, allow_infinity=True, width=64)
vec12 = arrays(np.float64, 12, elements=any_float)
# Mostly-plausible values with occasional garbage, so the torque bound is exercised on real targets.
plausible = arrays(np.float64, 12, elements=st.one_of(st.floats(-5, 5), any_float))


def check_safe(q, dq, kp, kd, tau, q_meas, tol=0.0):
    assert np.all(np.isfinite(q)) and np.all(np.isfinite(dq)) and np.all(np.isfinite(kp))
    assert np.all(np.isfinite(kd)) and np.all(np.isfinite(tau))
    assert np.all(q >= Q_MIN) and np.all(q <= Q_MAX)
    assert np.all(np.abs(dq) <= VELOCITY_MAX)
    assert np.all((kp >= 0) & (kp <= KP_MAX)) and np.all((kd >= 0) & (kd <= KD_MAX))
    assert np.all(np.abs(tau) <= TORQUE_MAX)
    if q_meas is None:
        assert np.all(kp == 0)
        return
    ok = np.isfinite(q_meas)
    assert np.all(kp[~ok] == 0)
    torque = tau[ok] + kp[ok] * (q[ok] - q_meas[ok])
    assert np.all(np.abs(torque) <= TORQUE_MAX[ok] + tol), (torque, TORQUE_MAX[ok])


@settings(max_examples=400, deadline=None)
@given(q=plausible, dq=vec12, kp=vec12, kd=vec12, tau=vec12, q_meas=st.one_of(st.none(), plausible))
def test_limit_commands_any_input(q, dq, kp, kd, tau, q_meas):
    out = limit_commands(MotorCommands(q, dq, kp, kd, tau), q_meas, KP_MAX, KD_MAX)
    check_safe(out.q, out.dq, out.kp, out.kd, out.tau, q_meas)


@settings(max_examples=150, deadline=None)
@given(
    position=plausible, velocity=vec12, kp=vec12, kd=vec12, tau=vec12, q_meas=plausible,
    dq_meas=st.one_of(st.just(np.zeros(12)), vec12),
    quat=st.one_of(st.just(np.array([1.0, 0, 0, 0])), arrays(np.float64, 4, elements=any_float)),
    estop=st.booleans(), dt=st.floats(0.0, 0.2),
)  # fmt: skip
def test_state_machine_and_packed_lowcmd_any_input(position, velocity, kp, kd, tau, q_meas, dq_meas, quat, estop, dt):
    """Drive the core through stand-up into ACTIVE with arbitrary robot readings and targets, then
    check the bytes that would go on the wire (float32, as the robot reads them)."""
    core = SafetyCore()
    good_state = RobotState(
        q=np.zeros(12) + np.clip(0.5 * (Q_MIN + Q_MAX), Q_MIN, Q_MAX), dq=np.zeros(12), tau_est=np.zeros(12),
        quaternion_wxyz=np.array([1.0, 0, 0, 0]), gyroscope=np.zeros(3), accelerometer=np.zeros(3),
        foot_force=np.zeros(4), wireless_remote=bytes(40),
    )  # fmt: skip
    bad_state = RobotState(
        q=q_meas, dq=dq_meas, tau_est=np.zeros(12), quaternion_wxyz=quat, gyroscope=np.zeros(3),
        accelerometer=np.zeros(3), foot_force=np.zeros(4), wireless_remote=bytes(40),
    )  # fmt: skip
    tgt = JointTargetsData(position, velocity, kp, kd, tau)
    now = 0.0
    core.on_lowstate(good_state, now)
    core.step(now)
    core.request("stand_up", now)
    now += 2.1
    core.on_lowstate(good_state, now)
    core.on_targets(tgt, now)
    core.step(now)
    core.request("activate", now)
    outputs = []
    for _ in range(3):
        now += dt
        core.on_lowstate(bad_state, now)
        core.on_targets(tgt, now)
        core.set_estop(estop, now)
        outputs.append(core.step(now))
    for out in outputs:
        wire = unpack_lowcmd(pack_lowcmd(fill_lowcmd(init_lowcmd(LowCmdData()), out)))
        m = wire.motor_cmd[:12]
        f = [np.array([getattr(x, k) for x in m], dtype=np.float64) for k in ("q", "dq", "kp", "kd", "tau")]
        # float32 rounding of kp and q on the wire can move the product by ~1e-4 Nm
        check_safe(*f, q_meas=q_meas, tol=1e-3)
