"""Episode videos: one H.264 mp4 per episode, one frame per decision, the annotated camera image beside the
third-person view; decoded back with PyAV, frames compared with what was composed."""

import av
import numpy as np

from more_bringup.video import EpisodeVideos, compose_frame
from more_common.action_contract import action_from_mapping
from more_vla_policy.monitoring import PANEL_W

S = 1_000_000_000


def test_frame_layout():
    camera = np.full((64, 96, 3), (200, 10, 10), np.uint8)
    view = np.full((240, 320, 3), (10, 200, 10), np.uint8)
    frame = compose_frame(camera, view, action_from_mapping({"vx": 0.5}), np.full(12, 0.5), "go", "episode 0")
    # camera x4 (256 x 384) + the 300 px panel, then the view under a 22 px caption
    assert frame.shape == (288, 384 + PANEL_W + 320, 3)
    np.testing.assert_array_equal(frame[100, 10], (200, 10, 10))
    np.testing.assert_array_equal(frame[100, 384 + PANEL_W + 10], (10, 200, 10))


def test_one_video_per_episode(tmp_path):
    v = EpisodeVideos(tmp_path, fps=5.0)
    rng = np.random.default_rng(0)
    for k in range(6):  # episode 0: stamps 0..3 (the policy skipped image 2), episode 1: 4..5
        stamp = (k + 1) * S
        episode, step = (0, k) if k < 4 else (1, k - 4)
        v.add_image(stamp, rng.integers(0, 255, (32, 48, 3), dtype=np.uint8))  # before its status, as over DDS
        v.add_status(stamp, episode, step, "go_to", "go to the red ball", "SUCCESS" if k == 3 else "")
        v.add_view(stamp, np.full((120, 160, 3), 40 * k, np.uint8))  # after it
        if k != 2:
            v.add_command(stamp, action_from_mapping({"vx": 0.1 * k}), np.full(12, 0.5))
    paths = v.finish()
    assert [p.split("/")[-1] for p in paths] == ["episode-000-go_to.mp4", "episode-001-go_to.mp4"]
    with av.open(paths[0]) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
        assert c.streams.video[0].average_rate == 5
    assert len(frames) == 4
    expected = compose_frame(
        np.zeros((32, 48, 3), np.uint8), np.full((120, 160, 3), 40 * 3, np.uint8), None, None, "", ""
    )
    assert frames[0].shape == expected.shape
    # the view's flat grey (under its 22 px caption) comes through the codec within a few levels
    w = expected.shape[1]
    assert abs(int(frames[3][22 + 60, w - 40, 0]) - 120) <= 4
    assert abs(int(frames[1][22 + 60, w - 40, 0]) - 40) <= 4
