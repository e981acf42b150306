"""The simulated stack's bridge bring-up: PASSIVE -> stand_up, STAND_UP -> activate, DAMPING -> reset (recovery),
nothing while ACTIVE; refused calls retried at most every retry_s, one at a time."""

from more_ros import names
from more_sim_ros.bridge_bringup import BridgeBringup


def test_sequence_with_refusals_and_a_fall():
    b = BridgeBringup(retry_s=0.5)
    assert b.next_call(0.0) is None  # no state heard yet
    b.on_state("PASSIVE: start-up")
    assert b.next_call(0.0) == names.BRIDGE_STAND_UP
    assert b.next_call(1.0) is None  # one call at a time
    b.on_result(names.BRIDGE_STAND_UP, False)  # refused: no LowState yet
    assert b.next_call(0.3) is None  # retried after retry_s only
    assert b.next_call(0.5) == names.BRIDGE_STAND_UP
    b.on_result(names.BRIDGE_STAND_UP, True)
    b.on_state("STAND_UP: operator stand_up request")
    assert b.next_call(1.0) == names.BRIDGE_ACTIVATE
    b.on_result(names.BRIDGE_ACTIVATE, True)
    b.on_state("ACTIVE: operator activate request")
    assert b.next_call(5.0) is None and b.next_call(50.0) is None
    b.on_state("DAMPING: tilt 0.91 rad > 0.8")
    assert b.next_call(60.0) == names.BRIDGE_RESET
    b.on_result(names.BRIDGE_RESET, True)
    b.on_state("PASSIVE: reset")
    assert b.next_call(61.0) == names.BRIDGE_STAND_UP
    assert b.summary() == {
        "state": "PASSIVE",
        "calls": {names.BRIDGE_STAND_UP: 3, names.BRIDGE_ACTIVATE: 1, names.BRIDGE_RESET: 1},
        "accepted": {names.BRIDGE_STAND_UP: 1, names.BRIDGE_ACTIVATE: 1, names.BRIDGE_RESET: 1},
        "dampings": 1,
    }


def test_without_recovery_a_damped_bridge_stays_damped():
    b = BridgeBringup(recover=False)
    b.on_state("DAMPING: e-stop")
    assert b.next_call(10.0) is None
