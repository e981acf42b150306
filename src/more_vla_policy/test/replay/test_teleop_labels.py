"""Teleoperated bags -> dataset: labels from /more/episode/status, commands between episodes left out
(`--between-episodes drop`), stand and terminate commands kept (`--include-stops`), a discarded episode skipped."""

import json

import numpy as np

from more_common.action_contract import INDEX, TERMINATE, stand_command
from more_common.dataset import EpisodeDataset
from more_ros import names
from more_vla_policy.replay import cli
from more_vla_policy.replay.testing import BagBuilder

MS = 1_000_000
INSTRUCTION = "go to the red ball"


def teleop_bag(path):
    """Images at 5 Hz, one teleop command 50 ms after each image. Script (image index: what happens):
    0-1 driving before any episode; 2 start ep 0; 2-4 in ep 0 (4: terminate); stop success after 4;
    5-6 driving between episodes; 7 start ep 1; 7-8 in ep 1 (8: a stand command); stop failure after 8;
    9 between; 10 start ep 2; 10-12 in ep 2; discarded (no final status); 13 after it. After each label a stand
    command is sent before the next image.
    Returns {episode: [(image value, command vx)]} of what a dataset must hold."""
    b = BagBuilder(path)
    t0 = 1_000 * MS
    b.instruction(t0 - 10 * MS, INSTRUCTION)
    expected = {0: [], 1: []}
    for i in range(14):
        t = t0 + i * 200 * MS
        if i in (2, 7, 10):  # episode_control's start status, just before the image
            b.episode(t - 5 * MS, "go_to", INSTRUCTION, {2: 0, 7: 1, 10: 2}[i], 0, topic=names.EPISODE_STATUS)
        b.image(t, np.full((8, 8, 3), i, np.uint8))
        cmd = stand_command()
        cmd[INDEX["vx"]] = 0.1 * i
        if i == 4:
            cmd[INDEX["vx"]], cmd[TERMINATE] = 0.0, 1.0  # the operator's terminate: a stop-like command, kept
        if i == 8:
            cmd[INDEX["vx"]] = 0.0  # standing still during an episode is a decision too
        b.command(t + 50 * MS, cmd)
        if 2 <= i <= 4:
            expected[0].append((i, cmd))
        if 7 <= i <= 8:
            expected[1].append((i, cmd))
        if i == 4:
            b.episode(t + 100 * MS, "go_to", INSTRUCTION, 0, 3, done=True, success=True, topic=names.EPISODE_STATUS)
        if i == 8:
            b.episode(t + 100 * MS, "go_to", INSTRUCTION, 1, 2, done=True, success=False, topic=names.EPISODE_STATUS)
        if i in (4, 8):  # sent after the label, still on the episode's last image: not part of the episode
            b.command(t + 150 * MS, stand_command())
    b.close()
    return expected


def convert(capsys, bag, out, *extra):
    rc = cli.main([str(bag), "--to-dataset", str(out), "--episode-topic", names.EPISODE_STATUS, *extra, "--json"])
    captured = capsys.readouterr()
    return rc, (json.loads(captured.out) if rc == 0 else captured.err)


def test_teleop_episodes_become_exactly_their_labelled_commands(tmp_path, capsys):
    expected = teleop_bag(tmp_path / "bag")
    rc, r = convert(capsys, tmp_path / "bag", tmp_path / "ds", "--between-episodes", "drop", "--include-stops")
    assert rc == 0, r
    assert r["dataset"]["episodes"] == 2 and r["dataset"]["steps"] == 5 and r["dataset"]["successes"] == 1
    episodes = list(EpisodeDataset(tmp_path / "ds").iter_episodes())
    assert [(e.task, e.success, e.terminated, e.instruction) for e in episodes] == [
        ("go_to", True, True, INSTRUCTION),
        ("go_to", False, True, INSTRUCTION),
    ]
    for e, key in zip(episodes, (0, 1), strict=True):
        assert [int(img[0, 0, 0]) for img in e.images] == [i for i, _ in expected[key]]
        np.testing.assert_allclose(e.actions, np.stack([c for _, c in expected[key]]).astype(np.float32))
    assert episodes[0].actions[-1][TERMINATE] == 1.0
    assert episodes[0].rewards.tolist() == [0.0, 0.0, 1.0]


def test_without_drop_the_driving_between_episodes_leaks_into_the_next_one(tmp_path, capsys):
    """Why teleop bags need --between-episodes drop: the simulator's rule gives the gap to the next episode."""
    teleop_bag(tmp_path / "bag")
    rc, r = convert(capsys, tmp_path / "bag", tmp_path / "ds", "--include-stops")
    assert rc == 0, r
    lengths = [e.length for e in EpisodeDataset(tmp_path / "ds").iter_episodes()]
    # episode 0 got the stand command sent after its label; episode 1 that one and images 5 and 6, before its start
    assert lengths == [4, 5]


def test_an_episode_topic_that_is_not_in_the_bag_is_rejected_by_name(tmp_path, capsys):
    teleop_bag(tmp_path / "bag")
    rc, err = convert(capsys, tmp_path / "bag", tmp_path / "ds", "--episode-topic", "/more/episode/state")
    assert rc == 2
    assert "--episode-topic /more/episode/state is not a more_msgs/msg/EpisodeStatus topic of the bag" in err
    assert "['/more/episode/status']" in err and "Traceback" not in err
    assert not (tmp_path / "ds").exists()
