"""The simulator node in its own process, driven over real DDS from this test process.

The test publishes QuadrupedCommands and checks that camera images (rgb8, realsense topic and
optical frame), camera info, episode status, odometry and the latched instruction arrive; that the
base moves forward under a forward command; that terminate ends the episode; that the reset service
starts the next one.
"""

import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from more_common.action_contract import INDEX, TERMINATE, stand_command
from more_ros import names
from more_sim.session import SimSession, camera_matrix

pytestmark = pytest.mark.ros

H, W = 24, 32


@pytest.fixture
def sim_process():
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "more_sim_ros.world_node",
            "--ros-args",
            "-p",
            "task:=go_through",
            "-p",
            "seed:=4",
            "-p",
            "rate_hz:=10.0",
            "-p",
            f"image_width:={W}",
            "-p",
            f"image_height:={H}",
            "-p",
            "reset_delay_s:=0.3",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def ros():
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor

    context = Context()
    rclpy.init(context=context)
    node = rclpy.create_node("test_sim_node_probe", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    yield node, executor
    executor.shutdown()
    node.destroy_node()
    rclpy.shutdown(context=context)


def spin_until(executor, proc, condition, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        executor.spin_once(timeout_sec=0.05)
        if proc.poll() is not None:
            raise AssertionError(f"sim_node exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
        if condition():
            return True
    return False


def test_sim_node_over_dds(sim_process, ros):
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String
    from std_srvs.srv import Trigger

    from more_msgs.msg import EpisodeEnd, EpisodeStatus, QuadrupedCommand
    from more_ros.convert import command_to_msg, stamp_to_ns
    from more_ros.qos import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, STATUS_QOS

    node, executor = ros
    got = {"image": [], "info": [], "status": [], "odom": [], "instruction": []}
    ends = []
    node.create_subscription(EpisodeEnd, names.SIM_EPISODE_END, ends.append, STATUS_QOS)
    node.create_subscription(Image, names.CAMERA_IMAGE, got["image"].append, SENSOR_QOS)
    node.create_subscription(CameraInfo, names.CAMERA_INFO, got["info"].append, SENSOR_QOS)
    node.create_subscription(EpisodeStatus, names.SIM_EPISODE, got["status"].append, STATUS_QOS)
    node.create_subscription(Odometry, names.SIM_ODOM, got["odom"].append, SENSOR_QOS)
    node.create_subscription(String, names.INSTRUCTION, got["instruction"].append, LATCHED_QOS)
    pub = node.create_publisher(QuadrupedCommand, names.COMMAND, COMMAND_QOS)
    reset = node.create_client(Trigger, names.SIM_RESET)

    assert spin_until(executor, sim_process, lambda: all(got.values()), 60), {k: len(v) for k, v in got.items()}
    img = got["image"][-1]
    assert (img.height, img.width, img.encoding, img.step) == (H, W, "rgb8", W * 3)
    assert img.header.frame_id == names.CAMERA_OPTICAL_FRAME and len(img.data) == H * W * 3
    assert np.asarray(img.data).reshape(H, W, 3).std() > 0  # a rendered scene, not a blank buffer
    np.testing.assert_allclose(got["info"][-1].k, camera_matrix(H, W, 60.0))
    # fy = (24 / 2) / tan(30 deg) = 20.78
    assert got["info"][-1].k[0] == pytest.approx(12 / math.tan(math.radians(30)))
    status = got["status"][-1]
    assert status.task == "go_through" and status.instruction == got["instruction"][-1].data
    assert "gate" in status.instruction or "doorway" in status.instruction

    # Drive forward for 1.5 s: the base moves along its heading.
    start = got["odom"][-1].pose.pose
    forward = stand_command()
    forward[INDEX["vx"]] = 0.5
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:
        pub.publish(command_to_msg(forward))
        spin_until(executor, sim_process, lambda: False, 0.1)
    end = got["odom"][-1].pose.pose
    moved = math.hypot(end.position.x - start.position.x, end.position.y - start.position.y)
    assert 0.25 < moved < 0.5 * 1.5 + 0.2, moved
    assert got["odom"][-1].header.frame_id == names.ODOM_FRAME and got["odom"][-1].child_frame_id == names.BASE_FRAME

    # Terminate: the episode ends (terminated, not a success this far from the gate).
    stop = stand_command()
    stop[TERMINATE] = 1.0
    episode = got["status"][-1].episode
    pub.publish(command_to_msg(stop))
    assert spin_until(executor, sim_process, lambda: got["status"][-1].terminated, 10)
    assert not got["status"][-1].success and got["status"][-1].reward == 0.0
    ended = f"episode {episode} ended: wrong_stop after {got['status'][-1].step} decisions"  # in the log, below
    # How it ended goes out once on its own topic: a stop far from the gate is a wrong stop.
    assert spin_until(executor, sim_process, lambda: len(ends) == 1, 10)
    end = ends[0]
    assert (end.episode, end.task, end.end) == (episode, "go_through", "wrong_stop")
    assert end.steps == got["status"][-1].step and end.terminated and not end.truncated and not end.success
    assert end.instruction == got["status"][-1].instruction and stamp_to_ns(end.header.stamp) > 0
    # After the reset delay the next episode starts by itself (step counter back to 0).
    pub.publish(command_to_msg(stand_command()))
    assert spin_until(executor, sim_process, lambda: got["status"][-1].episode == episode + 1, 10)

    # The reset service starts yet another episode.
    assert reset.wait_for_service(timeout_sec=10)
    future = reset.call_async(Trigger.Request())
    assert spin_until(executor, sim_process, future.done, 10)
    assert future.result().success
    assert spin_until(executor, sim_process, lambda: got["status"][-1].episode == episode + 2, 10)
    assert got["status"][-1].step == 0

    # A decision on an image from before this episode began (the policy still deciding on the previous
    # episode's frames) does not act in it: terminate stamped with an old image is ignored ...
    old_stamp = got["image"][0].header.stamp
    for _ in range(5):
        pub.publish(command_to_msg(stop, stamp=old_stamp))
        spin_until(executor, sim_process, lambda: False, 0.1)
    assert got["status"][-1].episode == episode + 2 and not got["status"][-1].terminated
    # ... and the same command on an image of this episode ends it.
    pub.publish(command_to_msg(stop, stamp=got["image"][-1].header.stamp))
    assert spin_until(executor, sim_process, lambda: got["status"][-1].terminated, 10)
    assert spin_until(executor, sim_process, lambda: len(ends) == 2, 10)
    # Episode episode + 1 was cut short by the reset service: it never ended, so it has no EpisodeEnd.
    assert [(e.episode, e.end) for e in ends] == [(episode, "wrong_stop"), (episode + 2, "wrong_stop")]
    spin_until(executor, sim_process, lambda: False, 1.0)  # the ended status repeats; its end is not sent again
    assert len(ends) == 2
    sim_process.terminate()  # each end is in the log too
    log = sim_process.communicate(timeout=10)[1]
    assert ended in log and f"episode {episode + 2} ended: wrong_stop after" in log, log[-2000:]
    assert log.count(f"episode {episode} ended:") == 1  # once, though the ended status repeats until the reset


def test_session_without_ros_runs_episodes_back_to_back():
    session = SimSession("go_to", seed=1, config=None, reset_delay_ticks=2)
    first = session.tick(None)
    assert first.new_episode and first.episode == 0 and first.step == 0
    cmd = stand_command()
    cmd[TERMINATE] = 1.0
    ended = session.tick(cmd)
    assert ended.terminated and not ended.new_episode
    assert session.tick(None).episode == 0  # waiting out the reset delay
    nxt = session.tick(None)
    assert nxt.new_episode and nxt.episode == 1 and nxt.instruction
    session.request_reset()
    assert session.tick(None).episode == 2
    session.close()
