"""The sport API table: ids per firmware as published (written out here from the sources, not from the module),
the request text as unitree_ros2's C++ SportClient writes it, and a bad YAML refused naming the key."""

from pathlib import Path

import pytest

from go2_bridge import sport_api
from go2_bridge.sport_api import GaitCall, api_config, load_api_config
from more_common.typed_config import ConfigError

SHIPPED = Path(sport_api.__file__).parent / "config" / "sport_api.yaml"

# unitree_ros2 example/src/include/common/ros2_sport_client.h (firmware >= 1.1.6)
CURRENT = {
    "damp": 1001, "balance_stand": 1002, "stop_move": 1003, "stand_up": 1004, "stand_down": 1005,
    "recovery_stand": 1006, "euler": 1007, "move": 1008, "static_walk": 1061, "trot_run": 1062,
    "economic_gait": 1063, "free_walk": 2045, "free_bound": 2046, "free_jump": 2047, "classic_walk": 2049,
    "cross_step": 2051, "switch_gait": None, "body_height": None,
}  # fmt: skip
# unitree_sdk2 sport_api.hpp before 2025-05-21: SwitchGait 1011, BodyHeight 1013, EconomicGait 1035, no 106x/204x
LEGACY = {
    **CURRENT, "switch_gait": 1011, "body_height": 1013, "economic_gait": 1035, "static_walk": None,
    "trot_run": None, "free_walk": None, "free_bound": None, "free_jump": None, "classic_walk": None,
    "cross_step": None,
}  # fmt: skip


def test_profiles_carry_the_published_ids():
    assert vars(api_config("current").ids) == CURRENT
    assert vars(api_config("legacy").ids) == LEGACY
    legacy = api_config("legacy").gaits
    assert (legacy.trot, legacy.bound, legacy.pronk, legacy.pace) == (GaitCall("switch_gait", 1), None, None, None)
    current = api_config("current").gaits
    assert (current.bound, current.pronk) == (GaitCall("free_bound", True), GaitCall("free_jump", True))
    assert current.offered("trot") and current.offered("bound") and not current.offered("pace")


def test_the_shipped_yaml_is_the_current_profile():
    assert load_api_config("current", SHIPPED) == api_config("current")


def test_request_text_as_the_cpp_client_writes_it():
    api = api_config("current")
    # nlohmann::json::dump of float32 arguments widened to double: 0.1f is 0.100000001490116119384765625
    assert sport_api.move(api, 0.5, 0.0, 0.0) == sport_api.SportRequest("move", 1008, '{"x":0.5,"y":0.0,"z":0.0}')
    assert sport_api.move(api, 0.1, -0.2, 0.3).parameter == (
        '{"x":0.10000000149011612,"y":-0.20000000298023224,"z":0.30000001192092896}'
    )
    assert sport_api.euler(api, 0.0, -0.25, 0.0).parameter == '{"x":0.0,"y":-0.25,"z":0.0}'
    assert sport_api.request(api, "stop_move") == sport_api.SportRequest("stop_move", 1003, "")
    assert sport_api.request(api, "damp").parameter == ""
    bound = api.gaits.bound
    assert sport_api.gait_request(api, bound).parameter == '{"data":true}'
    assert sport_api.gait_request(api, bound, enter=False).parameter == '{"data":false}'
    legacy = api_config("legacy")
    assert sport_api.body_height(legacy, -0.1) == sport_api.SportRequest(
        "body_height", 1013, '{"data":-0.10000000149011612}'
    )
    assert sport_api.gait_request(legacy, legacy.gaits.trot) == sport_api.SportRequest(
        "switch_gait", 1011, '{"data":1}'
    )


def test_calls_a_firmware_lacks_and_non_finite_arguments_are_refused():
    with pytest.raises(ValueError, match="'current' has no body_height call"):
        sport_api.body_height(api_config("current"), 0.0)
    with pytest.raises(ValueError, match="finite"):
        sport_api.move(api_config("current"), float("nan"), 0.0, 0.0)
    with pytest.raises(ValueError, match="finite"):
        sport_api.move(api_config("current"), 1e39, 0.0, 0.0)  # inf as float32


def test_overrides_and_names_answers():
    api = api_config("current", {"ids": {"move": 3008}})
    assert api.ids.move == 3008 and api.ids.damp == 1001
    assert api.name_of(3008) == "move" and api.name_of(1003) == "stop_move" and api.name_of(4242) == "api_4242"


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("ids:\n  mvoe: 1008\n", "unknown key(s) ['ids.mvoe']"),
        ("ids:\n  move: fast\n", "ids.move: expected int, got str 'fast'"),
        ("ids:\n  move: null\n", "ids: move is required"),
        ("ids:\n  move: 1001\n", "ids: move and damp both have id 1001"),
        ("ids:\n  stop_move: 0\n", "stop_move must be an api id in [1, 2147483647], got 0"),
        ("gaits:\n  bound: {api: bonud, data: true}\n", "api 'bonud' is not a call of ids"),
        ("gaits:\n  default: gallop\n", "gaits.default must be one of ['pronk', 'trot', 'bound', 'pace']"),
        ("ids:\n  free_bound: null\n", "gaits.bound uses ids.free_bound, which is null on this firmware"),
        ("firmware: legacy\n", "the file says 'legacy' but 'current' was selected"),
        ("- 1\n- 2\n", "top level must be a mapping"),
        ("ids: [\n", "is not valid YAML"),
    ],
)
def test_a_bad_api_file_is_refused_naming_the_key(tmp_path, text, needle):
    path = tmp_path / "api.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_api_config("current", path)
    assert needle in str(err.value), str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_firmware_is_refused():
    with pytest.raises(ConfigError, match="firmware must be one of"):
        api_config("1.1.6")
