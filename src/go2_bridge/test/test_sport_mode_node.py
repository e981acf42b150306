"""Sport-mode release over DDS: the bridge (release_sport_mode:=true) against a fake motion switcher.

The safety property: not a single LowCmd before the motion switcher reports no active mode."""

import json
import time

import numpy as np
import pytest

from go2_bridge.go2 import STAND_POSE
from go2_bridge.lowstate_wire import lowstate_crc
from go2_bridge.sport_mode import CHECK_MODE, RELEASE_MODE, SPORT_STAND_DOWN
from more_ros import names
from more_ros.testing import NodeProcess, Probe

pytestmark = pytest.mark.ros


def test_no_lowcmd_until_sport_mode_is_released():
    from more_ros.qos import SENSOR_QOS, STATUS_QOS
    from unitree_api.msg import Request, Response
    from unitree_go.msg import LowCmd, LowState

    params = {"release_sport_mode": True, "sport_release_stand_down_s": 1.0, "sport_release_wait_s": 0.5}
    bridge = NodeProcess("go2_bridge.bridge_node", params)
    probe = Probe("fake_motion_switcher")
    try:
        node = probe.node
        lowcmds = probe.listen(LowCmd, names.LOWCMD, SENSOR_QOS, stamp=True)
        switcher_requests = probe.listen(Request, names.MOTION_SWITCHER_REQUEST, STATUS_QOS, stamp=True)
        sport_requests = probe.listen(Request, names.SPORT_REQUEST, STATUS_QOS, stamp=True)
        response_pub = node.create_publisher(Response, names.MOTION_SWITCHER_RESPONSE, STATUS_QOS)
        lowstate_pub = node.create_publisher(LowState, names.LOWSTATE, SENSOR_QOS)
        mode = {"name": "normal", "answered": 0, "released_at": None}

        def act():
            ls = LowState()
            for i in range(12):
                ls.motor_state[i].q = float(STAND_POSE[i])
            ls.imu_state.quaternion = np.array([1, 0, 0, 0], dtype=np.float32)
            ls.crc = lowstate_crc(ls)  # the bridge drops LowState without a valid CRC
            lowstate_pub.publish(ls)
            # answer each CheckMode once; ReleaseMode clears the mode
            for _, req in switcher_requests[mode["answered"] :]:
                mode["answered"] += 1
                if req.header.identity.api_id == RELEASE_MODE:
                    mode["name"] = ""
                elif req.header.identity.api_id == CHECK_MODE:
                    if mode["name"] == "":
                        mode["released_at"] = time.monotonic()
                    r = Response()
                    r.header.identity.id = req.header.identity.id
                    r.header.identity.api_id = CHECK_MODE
                    r.data = json.dumps({"form": "0", "name": mode["name"]})
                    response_pub.publish(r)

        ok = probe.spin_until(lambda: mode["released_at"] is not None and len(lowcmds) > 10, 60.0, act)
        assert ok, bridge.output()
        ids = [r.header.identity.api_id for _, r in switcher_requests]
        assert ids[:3] == [CHECK_MODE, RELEASE_MODE, CHECK_MODE], ids
        assert [r.header.identity.api_id for _, r in sport_requests] == [SPORT_STAND_DOWN]
        # StandDown precedes ReleaseMode by the stand-down wait (1 s here)
        assert switcher_requests[1][0] - sport_requests[0][0] > 0.8
        assert min(t for t, _ in lowcmds) > mode["released_at"]  # nothing before the release was confirmed
        assert all(m.motor_cmd[0].kp == 0 and m.motor_cmd[0].kd == 0 for _, m in lowcmds)  # PASSIVE: zero torque
    finally:
        probe.close()
        assert bridge.stop() == 0
        assert "Traceback" not in bridge.output(), bridge.output()
