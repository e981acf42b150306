"""rollout: how an episode ended (Outcome.end), counted per task, from real closed-loop episodes."""

import math

import numpy as np
import pytest

from more_common.action_contract import TERMINATE, VX, VY, WZ
from more_sim.config import SimConfig
from more_sim.evaluate import eval_jobs
from more_sim.expert import ScriptedExpert
from more_sim.policies import ExpertPolicy, Policy
from more_sim.rollout import ENDS, Job, Outcome, run_jobs, success_rates

CONFIG = SimConfig(image_height=16, image_width=16)


class Steer(Policy):
    """Walks at `thing` (a scene name, or the start heading if None) with the expert's gait; stops if `stop`."""

    name = "steer"

    def __init__(self, thing: str | None, stop: bool = False, speed: float = 1.0) -> None:
        self.thing, self.stop, self.speed = thing, stop, speed
        self._experts: dict[int, ScriptedExpert] = {}

    def begin(self, slot: int, seed: int) -> None:
        self._experts[slot] = ScriptedExpert()

    def act(self, slots, observations, infos) -> np.ndarray:
        commands = []
        for slot, info in zip(slots, infos, strict=True):
            command = np.array(self._experts[slot].act(info), dtype=np.float32)
            state = info["state"]
            wz = 0.0
            if self.thing is not None:
                t = info["scenario"].thing(self.thing)
                error = math.atan2(t.y - state.y, t.x - state.x) - state.yaw
                wz = float(np.clip(2.0 * math.atan2(math.sin(error), math.cos(error)), -1.0, 1.0))
            command[[VX, VY, WZ, TERMINATE]] = (self.speed, 0.0, wz, float(self.stop))
            commands.append(command)
        return np.stack(commands)


def _ends(policy: Policy, task: str, n: int = 4, config: SimConfig = CONFIG) -> dict[str, int]:
    results = run_jobs(eval_jobs([task], n, "id", 0), policy, config, batch=4)
    return success_rates([o for o, _ in results])[task]["ends"]


def test_end_of_each_outcome_by_hand():
    job = Job("go_avoid", "id", 1)
    assert Outcome(job, True, 9, "", False, "i", "m").end == "success"
    assert Outcome(job, False, 9, "", False, "i", "m").end == "wrong_stop"
    assert Outcome(job, False, 100, "", True, "i", "m").end == "time_limit"
    assert Outcome(job, False, 9, "contact:obstacle12", False, "i", "m").end == "contact:obstacle"
    assert Outcome(job, False, 9, "contact:target", False, "i", "m").end == "contact:target"
    assert Outcome(job, False, 9, "fall", False, "i", "m").end == "fall"
    assert Outcome(job, False, 9, "out_of_bounds", False, "i", "m").end == "out_of_bounds"


def test_stopping_at_the_start_is_a_wrong_stop_in_every_task():
    for task in ("go_to", "go_through", "go_avoid", "distinguish"):
        assert _ends(Steer(None, stop=True, speed=0.0), task) == {"wrong_stop": 4}


def test_never_stopping_is_the_time_limit():
    config = SimConfig(image_height=16, image_width=16, max_episode_steps=3)
    assert _ends(Steer(None, speed=0.0), "go_to", config=config) == {"time_limit": 4}


def test_walking_into_a_thing_names_its_role():
    assert _ends(Steer("obstacle0"), "go_avoid") == {"contact:obstacle": 4}
    assert _ends(Steer("target"), "go_to") == {"contact:target": 4}  # never stopping: it walks into the target
    assert _ends(Steer("distractor1"), "go_to") == {"contact:distractor": 4}


def test_ends_are_counted_in_order_and_sum_to_the_episodes():
    job = Job("go_to", "id", 1)
    outcomes = [
        Outcome(job, False, 5, "contact:box3", False, "i", "m"),
        Outcome(job, False, 100, "", True, "i", "m"),
        Outcome(job, True, 7, "", False, "i", "m"),
        Outcome(job, False, 100, "", True, "i", "m"),
        Outcome(job, False, 5, "contact:shelf", False, "i", "m"),  # a name ENDS does not know goes last
    ]
    d = success_rates(outcomes)["go_to"]
    assert list(d["ends"].items()) == [("success", 1), ("time_limit", 2), ("contact:box", 1), ("contact:shelf", 1)]
    assert sum(d["ends"].values()) == d["episodes"] == 5 and d["successes"] == d["ends"]["success"]
    assert set(d["ends"]) - {"contact:shelf"} <= set(ENDS)


@pytest.mark.parametrize("task", ["go_through", "crawl"])
def test_the_expert_only_succeeds(task):
    assert _ends(ExpertPolicy(), task) == {"success": 4}
