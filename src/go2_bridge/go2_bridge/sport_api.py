"""The Go2 sport API as the sport-mode backend uses it: api ids per firmware, and request text (pure, no ROS).

A request is `unitree_api/Request` on /api/sport/request with `header.identity.api_id` = the id and `parameter` =
JSON text for calls with arguments; the robot answers on /api/sport/response with the same api id and a status
code (0 = done; the RPC error codes below otherwise).

Ids (sources, read 2026-11):
- unitreerobotics/unitree_ros2 `example/src/include/common/ros2_sport_client.h` (current): Damp 1001,
  BalanceStand 1002, StopMove 1003, StandUp 1004, StandDown 1005, RecoveryStand 1006, Euler 1007, Move 1008, ...,
  StaticWalk 1061, TrotRun 1062, EconomicGait 1063, FreeWalk 2045, FreeBound 2046, FreeJump 2047, ClassicWalk
  2049, CrossStep 2051, ...
- Firmware 1.1.6 (May 2025) changed the list. unitree_sdk2 dropped SwitchGait 1011, BodyHeight 1013,
  FootRaiseHeight 1014, TrajectoryFollow 1018, ContinuousGait 1019 and GetState 1034 (commit "update for
  syncretic_motion_control", 2025-05-21); unitree_sdk2_python PR #76 ("Bring Python SDK (Go2 Edu) in line with
  Go2 V 1.1.6 high-level interface") reports that 1.1.6 "moves three base gaits to a new 106x block" and that the
  old client gets "3203 unknown api" on current robots; PR #92 and unitree_ros2 PR #11 (v0.2.0, Unitree) add
  1036, 1061-1063, 2041-2058 and delete the functions "no longer supported". EconomicGait was 1035 before
  (unitree_sdk2's older `sport_api.hpp`, with SwitchGait 1011 {"data": int} and BodyHeight 1013 {"data": float}).
  Hence two profiles, `current` (>= 1.1.6, the default) and `legacy` (< 1.1.6); an id that a firmware does not
  offer is None, and every id can be overridden from YAML.
- Status codes (unitree_sdk2_python `rpc/internal.py`): 0 OK, 3202 server internal error, 3203 API not
  implemented (what a robot answers to an id it does not know), 3204 bad parameter.

Parameter text is what unitree_ros2's SportClient sends (nlohmann::json::dump of float arguments): compact,
keys sorted, each float32 argument widened to double and written with the shortest digits that read back as
that double (0.1 -> 0.10000000149011612, 0 -> 0.0). Calls without arguments send an empty parameter.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from more_common.action_contract import GAIT_NAMES
from more_common.typed_config import ConfigError, build, load_yaml

RPC_OK = 0
RPC_ERR_SERVER_INTERNAL = 3202
RPC_ERR_SERVER_API_NOT_IMPL = 3203
RPC_ERR_SERVER_API_PARAMETER = 3204
FIRMWARES = ("current", "legacy")
# The calls the backend cannot do without: every profile must give them an id.
REQUIRED = ("damp", "balance_stand", "stop_move", "stand_up", "stand_down", "recovery_stand", "euler", "move")
MAX_ID = 2**31 - 1
F32_MAX = float(np.finfo(np.float32).max)  # RequestIdentity.api_id is int64; the SDKs use int32


@dataclass(frozen=True)
class ApiIds:
    """Sport API ids by call; None: this firmware does not offer the call (defaults: the `current` profile)."""

    damp: int | None = 1001
    balance_stand: int | None = 1002
    stop_move: int | None = 1003
    stand_up: int | None = 1004
    stand_down: int | None = 1005
    recovery_stand: int | None = 1006
    euler: int | None = 1007
    move: int | None = 1008
    switch_gait: int | None = None  # 1011 before 1.1.6 {"data": gait}; removed from the SDK 2025-05-21
    body_height: int | None = None  # 1013 before 1.1.6 {"data": metres}; removed from the SDK 2025-05-21
    static_walk: int | None = 1061  # new block in 1.1.6
    trot_run: int | None = 1062
    economic_gait: int | None = 1063  # 1035 before 1.1.6
    free_walk: int | None = 2045  # 2044-2058: added with 1.1.6 (unitree_sdk2_python PR #76/#92)
    free_bound: int | None = 2046
    free_jump: int | None = 2047
    classic_walk: int | None = 2049
    cross_step: int | None = 2051

    def __post_init__(self) -> None:
        seen: dict[int, str] = {}
        for name, value in vars(self).items():
            if value is None:
                if name in REQUIRED:
                    raise ValueError(f"{name} is required (the backend needs this call), got null")
                continue
            if not 1 <= value <= MAX_ID:
                raise ValueError(f"{name} must be an api id in [1, {MAX_ID}], got {value}")
            if value in seen:
                raise ValueError(f"{name} and {seen[value]} both have id {value}")
            seen[value] = name

    def by_id(self) -> dict[int, str]:
        return {v: k for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class GaitCall:
    """The request that selects a gait: call `api` (an `ApiIds` name) with {"data": data} (None: no parameter).
    A boolean `data` is a mode switch: leaving the gait sends the same call with the opposite value."""

    api: str
    data: bool | int | None = None

    def __post_init__(self) -> None:
        if self.api not in {f.name for f in dataclasses.fields(ApiIds)}:
            raise ValueError(f"api {self.api!r} is not a call of ids ({[f.name for f in dataclasses.fields(ApiIds)]})")


@dataclass(frozen=True)
class GaitMap:
    """What selects each of the action contract's gaits on this firmware; None: not offered (reported, not done).
    `default` is the gait the robot walks without any gait call (its own trot)."""

    default: str = "trot"
    trot: GaitCall | None = None
    bound: GaitCall | None = field(default_factory=lambda: GaitCall("free_bound", True))
    pronk: GaitCall | None = field(default_factory=lambda: GaitCall("free_jump", True))
    pace: GaitCall | None = None

    def __post_init__(self) -> None:
        if self.default not in GAIT_NAMES:
            raise ValueError(f"gaits.default must be one of {list(GAIT_NAMES)}, got {self.default!r}")

    def call(self, gait: str) -> GaitCall | None:
        return getattr(self, gait)

    def offered(self, gait: str) -> bool:
        return gait == self.default or self.call(gait) is not None


@dataclass(frozen=True)
class SportApiConfig:
    firmware: Literal["current", "legacy"] = "current"
    ids: ApiIds = field(default_factory=ApiIds)
    gaits: GaitMap = field(default_factory=GaitMap)

    def __post_init__(self) -> None:
        for gait in GAIT_NAMES:
            call = self.gaits.call(gait)
            if call is not None and getattr(self.ids, call.api) is None:
                raise ValueError(f"gaits.{gait} uses ids.{call.api}, which is null on this firmware")

    def name_of(self, api_id: int) -> str:
        return self.ids.by_id().get(int(api_id), f"api_{int(api_id)}")


# Profiles as YAML-shaped data: a user's file only lists what differs from its firmware's profile.
PROFILES: dict[str, dict[str, Any]] = {
    "current": {"firmware": "current"},  # the dataclass defaults
    "legacy": {
        "firmware": "legacy",
        "ids": dict(
            switch_gait=1011,
            body_height=1013,
            economic_gait=1035,
            static_walk=None,
            trot_run=None,
            free_walk=None,
            free_bound=None,
            free_jump=None,
            classic_walk=None,
            cross_step=None,
        ),
        # SwitchGait's data 1 is trot (Go1's gaitType: 0 idle, 1 trot, 2 trot running, 3 climb stairs); no
        # published pre-1.1.6 call selects bound, pronk or pace.
        "gaits": {"trot": {"api": "switch_gait", "data": 1}, "bound": None, "pronk": None, "pace": None},
    },
}


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def api_config(firmware: str = "current", overrides: Mapping[str, Any] | None = None) -> SportApiConfig:
    """The profile of `firmware` with `overrides` (YAML-shaped) applied; ConfigError names the bad key."""
    if firmware not in PROFILES:
        raise ConfigError(f"firmware must be one of {list(FIRMWARES)}, got {firmware!r}")
    data = dict(overrides or {})
    if "firmware" in data and data["firmware"] != firmware:
        raise ConfigError(f"firmware: the file says {data['firmware']!r} but {firmware!r} was selected")
    return build(SportApiConfig, _merge(PROFILES[firmware], data))


def load_api_config(firmware: str = "current", path: str | Path | None = None) -> SportApiConfig:
    """`api_config(firmware, <the YAML mapping at path>)`; no path: the profile as it is."""
    if not path:
        return api_config(firmware)
    data = load_yaml(path)
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of ids/gaits, got {type(data).__name__}")
    try:
        return api_config(firmware, data)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err


# -- requests ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SportRequest:
    name: str  # the ApiIds field
    api_id: int
    parameter: str = ""


def _f32(value: float) -> float:
    """What a C++ client's float argument is once nlohmann::json stores it (a double)."""
    if not (math.isfinite(value) and abs(value) <= F32_MAX):
        raise ValueError(f"sport API arguments must be finite float32 values, got {value!r}")
    return float(np.float32(value))


def parameter_text(values: Mapping[str, Any]) -> str:
    """JSON exactly as nlohmann::json::dump() writes it: no spaces, keys sorted, shortest round-trip doubles."""
    return json.dumps(dict(values), separators=(",", ":"), sort_keys=True, allow_nan=False)


def request(api: SportApiConfig, name: str, **values: Any) -> SportRequest:
    """A call by name with arguments (floats as float32, as the C++ client takes them); ValueError if this
    firmware has no such call."""
    api_id = getattr(api.ids, name)
    if api_id is None:
        raise ValueError(f"firmware profile {api.firmware!r} has no {name} call")
    args = {k: (_f32(v) if isinstance(v, float) else v) for k, v in values.items()}
    return SportRequest(name, int(api_id), parameter_text(args) if args else "")


def move(api: SportApiConfig, vx: float, vy: float, wz: float) -> SportRequest:
    return request(api, "move", x=float(vx), y=float(vy), z=float(wz))


def euler(api: SportApiConfig, roll: float, pitch: float, yaw: float) -> SportRequest:
    return request(api, "euler", x=float(roll), y=float(pitch), z=float(yaw))


def body_height(api: SportApiConfig, height: float) -> SportRequest:
    return request(api, "body_height", data=float(height))


def gait_request(api: SportApiConfig, call: GaitCall, enter: bool = True) -> SportRequest:
    """The call that enters (or, for a boolean mode switch, leaves) a gait."""
    if call.data is None:
        return request(api, call.api)
    data = call.data if enter or not isinstance(call.data, bool) else not call.data
    return request(api, call.api, data=data)
