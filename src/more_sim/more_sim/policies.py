"""Policies the rollout runner drives: scripted expert, sub-optimal generator, random, and a checkpoint.

All follow one batched interface so that a neural policy decodes many environments at once:
`begin(slot, seed)` starts an episode in a slot, `act(slots, observations, infos)` returns one
12-dim command per slot (contract order; the environment makes it executable).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from more_common.action_contract import DEFAULT_SPEC
from more_sim.expert import ScriptedExpert
from more_sim.suboptimal import SuboptimalPolicy


class Policy:
    name = "policy"
    image_size: tuple[int, int] | None = None  # the image size the policy wants (None: any)

    def begin(self, slot: int, seed: int) -> None:
        """A new episode starts in `slot` (its environment was reset with `seed`)."""

    def act(self, slots: Sequence[int], observations: Sequence[dict], infos: Sequence[dict]) -> np.ndarray:
        raise NotImplementedError

    def labels(self) -> np.ndarray | None:
        """The commands to record for the last `act` (None: the executed ones; DAgger records the expert's)."""
        return None


class ExpertPolicy(Policy):
    """The scripted expert (`strafe`: it keeps the target in view in the reach tasks, more_sim.expert)."""

    def __init__(self, strafe: bool = False) -> None:
        self.strafe = strafe
        self.name = "expert-strafe" if strafe else "expert"
        self._experts: dict[int, ScriptedExpert] = {}

    def begin(self, slot: int, seed: int) -> None:
        self._experts[slot] = ScriptedExpert(strafe=self.strafe)

    def act(self, slots: Sequence[int], observations: Sequence[dict], infos: Sequence[dict]) -> np.ndarray:
        return np.stack([self._experts[s].act(info) for s, info in zip(slots, infos, strict=True)])


class SuboptimalBatch(Policy):
    name = "suboptimal"

    def __init__(self, mode: str | None = None, decision_hz: float = 5.0) -> None:
        self.mode = mode
        self.decision_dt = 1.0 / decision_hz  # its noise is a continuous-time process sampled per decision
        self._policies: dict[int, SuboptimalPolicy] = {}

    def begin(self, slot: int, seed: int) -> None:
        self._policies[slot] = SuboptimalPolicy(seed, self.mode, self.decision_dt)

    def mode_of(self, slot: int) -> str:
        return self._policies[slot].mode

    def act(self, slots: Sequence[int], observations: Sequence[dict], infos: Sequence[dict]) -> np.ndarray:
        return np.stack([self._policies[s].act(info) for s, info in zip(slots, infos, strict=True)])


class RandomPolicy(Policy):
    """Uniform over the action contract's box (terminate too, so episodes end early)."""

    name = "random"

    def __init__(self) -> None:
        self._rngs: dict[int, np.random.Generator] = {}

    def begin(self, slot: int, seed: int) -> None:
        self._rngs[slot] = np.random.default_rng([seed, 0xDA7A])

    def act(self, slots: Sequence[int], observations: Sequence[dict], infos: Sequence[dict]) -> np.ndarray:
        lo, hi = DEFAULT_SPEC.low_array, DEFAULT_SPEC.high_array
        return np.stack([self._rngs[s].uniform(lo, hi) for s in slots])


class CheckpointPolicy(Policy):
    """A trained MoRE policy (more_model.load_policy), decoding a batch of images at once."""

    def __init__(self, checkpoint_dir: str | Path, device: str = "cpu") -> None:
        try:
            from more_model import load_policy
        except ImportError as err:  # the model package is optional for the simulator
            raise RuntimeError(f"cannot load a checkpoint: more_model is unavailable ({err})") from err
        self.policy = load_policy(str(checkpoint_dir), device=device)
        self.name = f"checkpoint:{Path(checkpoint_dir).name}"
        size = getattr(self.policy, "image_size", None)
        self.image_size = tuple(int(v) for v in size) if size is not None else None
        self.last: Any = None
        self._camera: Any = None
        self.reasoning_counts: dict[str, ReasoningCounts] = {}

    def track_reasoning(self, camera: Any) -> None:
        """Score what a reasoning model writes at every decision against the label of the state it saw
        (more_sim.scene_text.scene_reasoning, for the camera of SimConfig `camera`)."""
        self._camera = camera
        self.reasoning_counts = {}

    def act(self, slots: Sequence[int], observations: Sequence[dict], infos: Sequence[dict]) -> np.ndarray:
        out = self.policy.decode([o["image"] for o in observations], [o["instruction"] for o in observations])
        self.last = out
        written = getattr(out, "reasoning", None)
        if self._camera is not None and written is not None:
            from more_sim.scene_text import scene_reasoning

            for info, text in zip(infos, written, strict=True):
                state, scenario = info["state"], info["scenario"]
                label = scene_reasoning(
                    scenario.things, scenario.target, state.x, state.y, state.yaw, self._camera, scenario.task
                )
                self.reasoning_counts.setdefault(info["task"], ReasoningCounts()).add(text, label)
        return np.asarray(out.actions, dtype=np.float64)


class ReasoningCounts:
    """How often written reasoning matched its label: whole text, the scene (up to the first full stop), and the
    named box (after it) where the label names one in view."""

    def __init__(self) -> None:
        self.decisions = self.exact = self.scene = self.named_decisions = self.named = 0

    def add(self, written: str, label: str) -> None:
        scene, _, named = label.partition(".")
        w_scene, _, w_named = written.partition(".")
        self.decisions += 1
        self.exact += written == label
        self.scene += w_scene == scene
        if named != ".":  # the label names a box in view ("C5.")
            self.named_decisions += 1
            self.named += w_named == named

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "decisions": self.decisions,
            "exact": self.exact / self.decisions,
            "scene_exact": self.scene / self.decisions,
            "named_decisions": self.named_decisions,
            "named_exact": self.named / self.named_decisions if self.named_decisions else None,  # JSON null
        }


class DaggerPolicy(Policy):
    """DAgger: a learner drives, the privileged expert labels every state the learner visits.

    Per decision the executed command is the expert's with probability `beta`, else the learner's; `labels()`
    returns the expert's commands, which is what a dataset records (so the episodes are imitation data on the
    learner's own state distribution; their transitions do not follow the recorded actions: not for RL).
    """

    def __init__(self, learner: Policy, beta: float = 0.0, strafe: bool = False) -> None:
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"DAgger beta must lie in [0, 1], got {beta}")
        self.learner = learner
        self.beta = beta
        self.strafe = strafe  # the labelling expert's style (ExpertPolicy)
        self.name = f"dagger(beta={beta:g}):{learner.name}"
        self.image_size = learner.image_size
        self._experts: dict[int, ScriptedExpert] = {}
        self._rngs: dict[int, np.random.Generator] = {}
        self._labels: np.ndarray | None = None

    def begin(self, slot: int, seed: int) -> None:
        self.learner.begin(slot, seed)
        self._experts[slot] = ScriptedExpert(strafe=self.strafe)
        self._rngs[slot] = np.random.default_rng([seed, 0xDA66])

    def act(self, slots: Sequence[int], observations: Sequence[dict], infos: Sequence[dict]) -> np.ndarray:
        expert = np.stack([self._experts[s].act(info) for s, info in zip(slots, infos, strict=True)])
        learner = np.asarray(self.learner.act(slots, observations, infos), dtype=np.float64)
        use_expert = np.array([self._rngs[s].random() < self.beta for s in slots])
        self._labels = expert
        return np.where(use_expert[:, None], expert, learner)

    def labels(self) -> np.ndarray | None:
        return self._labels


def make_policy(name: str, device: str = "cpu", decision_hz: float = 5.0) -> Policy:
    """'expert', 'expert-strafe', 'random', 'suboptimal' or a checkpoint directory (`decision_hz`: the
    simulator's rate)."""
    if name in ("expert", "expert-strafe"):
        return ExpertPolicy(strafe=name == "expert-strafe")
    if name == "random":
        return RandomPolicy()
    if name == "suboptimal":
        return SuboptimalBatch(decision_hz=decision_hz)
    path = Path(name)
    if not path.is_dir():
        raise ValueError(
            f"policy must be expert, expert-strafe, random, suboptimal or a checkpoint directory; {name!r} is none"
        )
    return CheckpointPolicy(path, device)
