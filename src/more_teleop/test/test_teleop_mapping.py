"""Keyboard and joystick mappings onto the 12-dim command, the Go2 remote's episode combos, episode labelling."""

import math

import numpy as np
import pytest

from go2_bridge.remote import RemoteState, encode_remote, keys_of, parse_remote
from more_common.action_contract import DEFAULT_SPEC, GAITS, INDEX, TERMINATE, stand_command
from more_teleop.episodes import IDLE, RECORDING, EpisodeControl
from more_teleop.joymap import JoyConfig, JoyError, JoyMapper
from more_teleop.keymap import KEYMAP, key_action, key_table
from more_teleop.remote_episodes import RemoteEpisodeButtons
from more_teleop.teleop_core import Action, TeleopConfig, TeleopState


def press(state, keys):
    for k in keys:
        action = key_action(k)
        assert action is not None, k
        state.apply(action)
    return state.command()


def test_keys_build_the_command_in_contract_order():
    state = TeleopState()
    assert np.array_equal(state.command(), stand_command())  # nothing pressed: the stand command
    cmd = press(state, "wwwaqq3rrtx"[:-1])  # 3 x forward, 1 x left, 2 x turn left, bound, height up twice, pitch
    expected = stand_command()
    expected[INDEX["vx"]], expected[INDEX["vy"]], expected[INDEX["wz"]] = 0.3, 0.1, 0.4
    expected[INDEX["gait_phase"] : INDEX["gait_bound"] + 1] = GAITS["bound"]
    expected[INDEX["body_height"]] = 0.1  # presets (-0.22, -0.1, 0.0, 0.1): from 0.0 up twice stops at the top
    expected[INDEX["pitch"]] = 0.2
    assert np.allclose(cmd, expected, atol=1e-12)
    cmd = press(state, "x")
    assert cmd[TERMINATE] == 1.0 and cmd[INDEX["vx"]] == cmd[INDEX["wz"]] == 0.0
    assert cmd[INDEX["body_height"]] == 0.1  # terminate keeps the posture
    cmd = press(state, "w")  # a motion key clears terminate
    assert cmd[TERMINATE] == 0.0 and math.isclose(cmd[INDEX["vx"]], 0.1)


def test_repeated_presses_return_exactly_to_zero_and_stop_at_the_bounds():
    state = TeleopState()
    cmd = press(state, "w" * 7 + "s" * 7)
    assert cmd[INDEX["vx"]] == 0.0
    cmd = press(state, "w" * 30)
    assert cmd[INDEX["vx"]] == DEFAULT_SPEC.high[INDEX["vx"]]
    cmd = press(state, "d" * 30 + "e" * 30)
    assert cmd[INDEX["vy"]] == DEFAULT_SPEC.low[INDEX["vy"]] and cmd[INDEX["wz"]] == DEFAULT_SPEC.low[INDEX["wz"]]
    cmd = press(state, " ")
    assert cmd[INDEX["vx"]] == cmd[INDEX["vy"]] == cmd[INDEX["wz"]] == 0.0
    cmd = press(state, "f" * 9 + "g" * 9)
    assert cmd[INDEX["body_height"]] == -0.22 and cmd[INDEX["pitch"]] == -0.2


def test_every_gait_key_gives_a_trained_gait_and_the_key_table_lists_every_key():
    for key, gait in zip("1234", ("pronk", "trot", "bound", "pace"), strict=True):
        cmd = press(TeleopState(), key)
        assert tuple(cmd[INDEX["gait_phase"] : INDEX["gait_bound"] + 1]) == GAITS[gait]
    table = key_table()
    assert all(f"  {'space' if k == ' ' else k} " in table for k in KEYMAP)
    assert key_action("W") == key_action("w") and key_action("Z") is None
    assert key_action("b") == Action("episode", "start") and key_action("y") == Action("episode", "success")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"vx_step": 0.0}, "vx_step"),
        ({"height_presets": (-0.5, 0.0)}, "height_presets"),
        ({"pitch_presets": (0.1, 0.2)}, "pitch_presets"),
        ({"step_frequency": 5.0}, "step_frequency"),
        ({"gait": "gallop"}, "gait"),
        ({"height_presets": (0.1, 0.0)}, "height_presets"),
    ],
)
def test_bad_teleop_config_is_rejected_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TeleopConfig(**kwargs)


def joy(lx=0.0, ly=0.0, rx=0.0, pressed=()):
    axes = [lx, ly, rx, 0.0, 1.0, 1.0]
    buttons = [0] * 15
    for b in pressed:
        buttons[b] = 1
    return axes, buttons


def test_joystick_sticks_map_to_velocities_with_deadzone_and_bounds():
    m = JoyMapper(JoyConfig(deadzone=0.1, scale=0.5))
    r = m.read(*joy(lx=0.4, ly=1.0, rx=-0.5, pressed=(9,)))
    assert r.enabled
    assert r.velocity == pytest.approx((1.0 * 0.5, 0.4 * 0.6 * 0.5, -0.5 * 1.0 * 0.5))  # vx, vy (left +), wz
    r = m.read(*joy(lx=0.05, ly=-0.09, rx=2.0))
    assert not r.enabled  # LB released
    assert r.velocity == pytest.approx((0.0, 0.0, 0.5))  # deadzone; a deflection past 1 reads as 1


def test_joystick_buttons_act_once_per_press_with_the_episode_modifier():
    m = JoyMapper()
    assert m.read(*joy(pressed=(0,))).actions == (Action("gait", "trot"),)
    assert m.read(*joy(pressed=(0,))).actions == ()  # held: no repeat
    assert m.read(*joy(pressed=())).actions == ()
    assert m.read(*joy(pressed=(10, 0))).actions == (Action("episode", "success"),)
    assert m.read(*joy(pressed=(10, 3, 1))).actions == (Action("episode", "failure"), Action("episode", "start"))
    acts = m.read(*joy(pressed=(6, 11, 14))).actions
    assert acts == (Action("terminate"), Action("height", +1), Action("pitch", +1))
    state = TeleopState()
    for a in acts:
        state.apply(a)
    assert state.command()[TERMINATE] == 1.0 and state.body_height == 0.1 and state.pitch == 0.2


def test_bad_joy_messages_are_rejected_by_name():
    m = JoyMapper()
    with pytest.raises(JoyError, match="joy message has 11 buttons; the mapping uses button index 14"):
        m.read([0.0] * 6, [0] * 11)
    with pytest.raises(JoyError, match="joy message has 2 axes; axis_wz=2 needs 3"):
        m.read([0.0, 0.0], [0] * 15)
    with pytest.raises(JoyError, match="axis_vx=1 is not finite"):
        m.read([0.0, math.nan, 0.0], [1] + [0] * 14)
    with pytest.raises(ValueError, match="enable_button"):
        JoyConfig(enable_button=-1)


def frames(buttons, n):
    return [parse_remote(encode_remote(keys=keys_of(*buttons)))] * n


def test_remote_episode_combos_need_their_exact_buttons_held():
    r = RemoteEpisodeButtons(hold_frames=5)
    assert [r.update(f) for f in frames(("R2", "Y"), 6)] == [None] * 4 + ["start", None]  # once per hold
    assert [r.update(f) for f in frames(("R2", "A", "L1"), 10)] == [None] * 10  # extra button: not the combo
    assert [r.update(f) for f in frames(("R2", "B"), 4)] == [None] * 4
    assert r.update(RemoteState(keys=keys_of("R2", "B"), lx=0, ly=0, rx=0, ry=0, plausible=False)) is None
    assert [r.update(f) for f in frames(("R2", "B"), 5)] == [None] * 4 + ["failure"]  # the count restarted
    assert [r.update(f) for f in frames(("R2", "X"), 5)][-1] == "discard"
    assert [r.update(f) for f in frames(("R2", "A"), 5)][-1] == "success"


def test_episode_control_labels_and_refusals():
    ep = EpisodeControl("go_to")
    reply = ep.start()
    assert not reply.ok and "no instruction" in reply.message
    assert not ep.stop(True).ok and not ep.discard().ok
    ep.set_instruction("  go to the red ball ")
    reply = ep.start()
    assert reply.ok and ep.state == RECORDING and reply.status.episode == 0 and not reply.status.terminated
    assert not ep.start().ok  # already recording
    for _ in range(7):
        ep.count_command()
    ep.set_instruction("go to the blue cube")  # a new instruction is for the next episode
    final = ep.stop(True).status
    assert (final.episode, final.step, final.terminated, final.success, final.reward) == (0, 7, True, True, 1.0)
    assert final.instruction == "go to the red ball" and final.task == "go_to" and ep.state == IDLE
    ep.count_command()  # idle: not counted
    assert ep.start().status.instruction == "go to the blue cube"
    assert ep.status().step == 0
    assert ep.discard().ok and ep.discarded == 1
    ep.start()
    final = ep.stop(False).status
    assert (final.episode, final.success, final.reward) == (2, False, 0.0)
    assert (ep.successes, ep.failures) == (1, 1)
    with pytest.raises(ValueError, match="task"):
        EpisodeControl(" ")
