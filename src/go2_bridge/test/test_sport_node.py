"""go2_sport as a process over DDS (this probe plays the policy, the operator and the robot's sport service): an
invalid command stops the robot with an ERROR on /diagnostics, the services send their calls, bad parameters and a
bad api file exit 2 with one line naming them. The walking end to end is go2_sim's test_sport_chain.py."""

import math
import subprocess
import sys

import pytest

from more_common.action_contract import action_from_mapping
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros

MOVE, STOP_MOVE, DAMP, STAND_DOWN, RECOVERY_STAND, BALANCE_STAND = 1008, 1003, 1001, 1005, 1006, 1002


def test_invalid_command_stops_with_an_error_and_services_send_their_calls():
    from diagnostic_msgs.msg import DiagnosticArray
    from std_srvs.srv import Trigger

    from more_msgs.msg import QuadrupedCommand
    from more_ros.convert import command_to_msg
    from more_ros.qos import COMMAND_QOS, STATUS_QOS
    from unitree_api.msg import Request, Response

    node = NodeProcess("go2_bridge.sport_node", {"stand_up_settle_s": 0.5})
    probe = Probe("sport_node_test")
    try:
        requests = probe.listen(Request, names.SPORT_REQUEST, STATUS_QOS)
        diags = probe.listen(DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS)
        command_pub = probe.node.create_publisher(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
        response_pub = probe.node.create_publisher(Response, names.SPORT_RESPONSE, STATUS_QOS)
        state = {"command": action_from_mapping({"vx": 0.4})}

        def act():
            if state["command"] is not None:
                msg = command_to_msg(action_from_mapping({"vx": 0.4}))
                msg.vx = float(state["command"][0])
                command_pub.publish(msg)

        def ids():
            return [r.header.identity.api_id for r in requests]

        def status():
            for d in reversed(diags):
                for s in d.status:
                    if s.name == "go2_sport: sport mode":
                        return s.level[0], s.message, {kv.key: kv.value for kv in s.values}
            return 0, "", {}

        assert probe.spin_until(lambda: MOVE in ids(), 30.0, act, every=0.1), node.output()
        assert requests[ids().index(MOVE)].parameter == '{"x":0.4000000059604645,"y":0.0,"z":0.0}'
        state["command"] = [math.nan]  # a NaN vx on the wire
        k = len(requests)
        assert probe.spin_until(lambda: STOP_MOVE in ids()[k:], 10.0, act, every=0.1), ids()[k:]
        assert probe.spin_until(lambda: status()[0] == 2, 10.0, act, every=0.1), status()
        assert "invalid" in status()[1] and "'vx'" in status()[1], status()
        probe.spin_for(0.5, act, every=0.1)
        assert MOVE not in ids()[k:]  # invalid commands move nothing

        state["command"] = None  # the operator's calls
        for service, calls in (
            (names.SPORT_DAMP, [STOP_MOVE, DAMP]), (names.SPORT_STAND_DOWN, [STOP_MOVE, STAND_DOWN]),
            (names.SPORT_RECOVERY_STAND, [RECOVERY_STAND, BALANCE_STAND]),
        ):  # fmt: skip
            k = len(requests)
            assert probe.call(Trigger, service).success
            assert probe.spin_until(lambda k=k, calls=calls: ids()[k:] == calls, 5.0), (service, ids()[k:])

        # the robot's answers are reported per call: a refused Damp is an ERROR
        for request in requests:
            answer = Response()
            answer.header.identity = request.header.identity
            answer.header.status.code = 3202 if request.header.identity.api_id == DAMP else 0
            response_pub.publish(answer)
        assert probe.spin_until(lambda: "damp answered 3202" in status()[1], 10.0), status()
        assert status()[0] == 2 and status()[2]["answer.damp"] == "code 3202 (answers 1, non-zero 1)"
    finally:
        probe.close()
        assert node.stop() == 0
        assert "Traceback" not in node.output(), node.output()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "move_rate_hz:=100.0"], "parameter 'move_rate_hz' has invalid value 100.0"),
        (["-p", "firmware_api:=1.1.6"], "parameter 'firmware_api' has invalid value '1.1.6'"),
        (["-p", "vx_limits:=[0.5,1.0]"], "vx_limits must be finite with low < high and low <= 0 <= high"),
        (["-p", "api_config_file:=/nonexistent/api.yaml"], "api_config_file: cannot read config"),
        (["-p", "bogus:=1"], "unknown parameter(s) for node 'go2_sport': ['bogus']"),
    ],
)
def test_bad_parameters_exit_2_naming_them(args, needle):
    proc = subprocess.run(
        [sys.executable, "-m", "go2_bridge.sport_node", "--ros-args", *args], capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_a_bad_api_file_exits_2_naming_the_key(tmp_path):
    path = tmp_path / "api.yaml"
    path.write_text("ids:\n  mvoe: 1008\n")
    proc = subprocess.run(
        [sys.executable, "-m", "go2_bridge.sport_node", "--ros-args", "-p", f"api_config_file:={path}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert "unknown key(s) ['ids.mvoe']" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
