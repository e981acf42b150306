"""Proof that the ROS side is real: two OS processes exchange a QuadrupedCommand over DDS."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ros
PEER = str(Path(__file__).with_name("dds_peer.py"))


def test_quadruped_command_crosses_processes():
    sub = subprocess.Popen(
        [sys.executable, PEER, "subscribe"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    pub = subprocess.Popen(
        [sys.executable, PEER, "publish"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        out, err = sub.communicate(timeout=60)
    finally:
        pub.terminate()
        pub.wait(timeout=10)
    assert sub.returncode == 0, f"subscriber failed ({sub.returncode}): {err[-2000:]}"
    received = json.loads(out.strip().splitlines()[-1])
    # the one publisher DDS discovered is the other process's node (a same-process loopback would show none)
    assert received["publishers"] == ["dds_peer_publisher"]
    # Reference values, as the publisher process defines them (float32 on the wire).
    sent = [0.42, -0.1, 0.3, 0.5, 0.0, 0.0, 2.75, -0.05, 0.1, 0.3, 0.12, 0.0]
    np.testing.assert_allclose(received["action"], sent, rtol=0, atol=1e-6)
    assert received["bins"] == list(range(10, 130, 10))
    np.testing.assert_allclose(received["q_values"][:11], [0.5 + 0.01 * i for i in range(11)], atol=1e-6)
    assert received["q_values"][11] is None  # NaN survives the trip: "not from a Q-policy"
    assert received["frame_id"] == "base_link"
