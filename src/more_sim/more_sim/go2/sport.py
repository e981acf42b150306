"""The Go2 walked by its own locomotion behind the sport API, in process: what `more-stack robot --backend sport`
does, without ROS and without delays.

Each 50 Hz control step: the sport backend's core (`go2_bridge.sport_core.SportCore`, default `SportConfig`, as
the go2_sport node builds it) gets the contract command and says which sport API requests to send now (Move at
most 20 Hz, Euler on a pitch change of > 0.02 rad at most 2 Hz, StopMove and Euler 0 on terminate, BodyHeight only
on the legacy firmware); the simulated sport service (`go2_sim.sport_server.SportServer`, on this world's body)
answers each and its locomotion runs one step (the open velocity policy standing in for Unitree's, its posture
playing Euler and BodyHeight). The answers go back to the core, as the node does with /api/sport/response.

The core and the service come from the ROS packages go2_bridge and go2_sim (their pure modules only), imported
lazily: only a sport run needs them.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from more_common.action_contract import INDEX, TERMINATE, InvalidActionError
from more_common.errors import ConfigurationError
from more_sim.go2.body import Go2Body

FIRMWARES = {"sport": "current", "sport_legacy": "legacy"}  # SimConfig.go2_backend -> sport_api profile


class SportLocomotion:
    def __init__(self, body: Go2Body, backend: str, policy: Any) -> None:  # policy: obs (45,) -> action (12,)
        if backend not in FIRMWARES:
            raise ValueError(f"backend must be one of {list(FIRMWARES)}, got {backend!r}")
        try:
            from go2_bridge.sport_api import api_config
            from go2_bridge.sport_core import SportCore
            from go2_sim.sport_server import SportServer
        except ImportError as err:
            raise ConfigurationError(
                f"go2_backend {backend!r} needs the sport core and service (packages go2_bridge, go2_sim): {err}"
            ) from err
        self.body = body
        api = api_config(FIRMWARES[backend])
        self.core = SportCore(api=api)
        self.server = SportServer(policy, api, body=body)
        assert math.isclose(self.server.decimation * body.timestep, 0.02), "the service's locomotion runs at 50 Hz"

    def control_step(self, command: np.ndarray | None) -> None:
        """One 50 Hz step: the command to the core, its requests answered by the service, one locomotion step."""
        now = self.body.time
        if command is not None:
            self.core.on_command(command, now)
        for request in self.core.step(now):
            self.core.on_response(request.api_id, self.server.handle(request.api_id, request.parameter))
        self.server.control()

    def commanded_velocity(self, command: np.ndarray) -> tuple[float, float, float]:
        """The (vx, vy, wz) a Move would carry for `command` (clipped to the core's limits; 0 on terminate or an
        invalid command, which the core answers with StopMove)."""
        try:
            a = self.core.spec.for_controller(command)
        except InvalidActionError:
            return 0.0, 0.0, 0.0
        if a[TERMINATE] >= 0.5:
            return 0.0, 0.0, 0.0
        return float(a[INDEX["vx"]]), float(a[INDEX["vy"]]), float(a[INDEX["wz"]])

    def requests(self) -> dict[str, int]:
        """Requests sent so far, by call."""
        return dict(self.core.sent)
