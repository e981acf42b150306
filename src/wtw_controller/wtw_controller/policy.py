"""Runs a walk-these-ways policy exported as TorchScript: adaptation module + body.

Run directory layout (as walk-these-ways writes it; point `run_dir` at the run or its checkpoints/):
    <run_dir>/checkpoints/body_latest.jit                input [1, 2100 + L] -> action [1, 12]
    <run_dir>/checkpoints/adaptation_module_latest.jit   input [1, 2100]     -> latent [1, L] (L = 2)
    <run_dir>/parameters.pkl                             (training config; not read here)
latent = adaptation_module(history); action = body(cat(history, latent)).
TorchScript files are programs: load them only from a directory you trust. This class never
downloads anything and never unpickles parameters.pkl.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

BODY_FILE = "body_latest.jit"
ADAPTATION_FILE = "adaptation_module_latest.jit"


class PolicyLoadError(RuntimeError):
    """The run directory is missing a file or its modules have the wrong shapes."""


def find_checkpoints(run_dir: str | Path) -> tuple[Path, Path]:
    root = Path(run_dir).expanduser()
    for folder in (root / "checkpoints", root):
        body, adapt = folder / BODY_FILE, folder / ADAPTATION_FILE
        if body.is_file() and adapt.is_file():
            return body, adapt
    raise PolicyLoadError(
        f"no walk-these-ways run in {root}: expected checkpoints/{BODY_FILE} and checkpoints/{ADAPTATION_FILE}"
    )


class WtwPolicy:
    def __init__(self, run_dir: str | Path, history_dim: int = 2100, num_actions: int = 12) -> None:
        body_path, adapt_path = find_checkpoints(run_dir)
        try:
            with warnings.catch_warnings():
                # walk-these-ways ships TorchScript; torch >= 2.10 marks jit.load deprecated, not removed.
                warnings.simplefilter("ignore", DeprecationWarning)
                self.body = torch.jit.load(str(body_path), map_location="cpu").eval()
                self.adaptation = torch.jit.load(str(adapt_path), map_location="cpu").eval()
        except (RuntimeError, ValueError) as err:
            raise PolicyLoadError(f"cannot load TorchScript from {body_path.parent}: {err}") from err
        self.history_dim, self.num_actions = history_dim, num_actions
        self.latent_dim = self._check_shapes()

    def _check_shapes(self) -> int:
        with torch.inference_mode():
            try:
                latent = self.adaptation(torch.zeros(1, self.history_dim))
                action = self.body(torch.cat([torch.zeros(1, self.history_dim), latent], dim=-1))
            except RuntimeError as err:
                raise PolicyLoadError(f"policy does not take a [1, {self.history_dim}] history: {err}") from err
        if latent.ndim != 2 or latent.shape[0] != 1:
            raise PolicyLoadError(f"adaptation module must return [1, L], got {tuple(latent.shape)}")
        if tuple(action.shape) != (1, self.num_actions):
            raise PolicyLoadError(f"body must return [1, {self.num_actions}], got {tuple(action.shape)}")
        return int(latent.shape[1])

    def __call__(self, history: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            h = torch.as_tensor(history, dtype=torch.float32).reshape(1, self.history_dim)
            latent = self.adaptation(h)
            action = self.body(torch.cat([h, latent], dim=-1))
        return action.reshape(self.num_actions).double().numpy()
