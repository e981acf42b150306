"""Test helpers: walk-these-ways-shaped TorchScript runs made on the spot (no real weights needed)."""

import warnings
from pathlib import Path

import numpy as np
import torch


class _Linear(torch.nn.Module):
    def __init__(self, weight: np.ndarray, bias: np.ndarray):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.as_tensor(weight, dtype=torch.float32))
        self.bias = torch.nn.Parameter(torch.as_tensor(bias, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


def make_run(root: Path, seed: int = 0, scale: float = 1e-3, latent_dim: int = 2, zero: bool = False):
    """Write checkpoints/{body,adaptation_module}_latest.jit with linear maps of the real I/O shapes.

    Returns (adaptation weight, adaptation bias, body weight, body bias) as float32 numpy arrays.
    """
    rng = np.random.default_rng(seed)
    aw = (rng.standard_normal((latent_dim, 2100)) * scale).astype(np.float32)
    ab = (rng.standard_normal(latent_dim) * scale).astype(np.float32)
    bw = (rng.standard_normal((12, 2100 + latent_dim)) * scale).astype(np.float32)
    bb = (rng.standard_normal(12) * 0.1).astype(np.float32)
    if zero:
        aw, ab, bw, bb = (np.zeros_like(a) for a in (aw, ab, bw, bb))
    ckpt = root / "checkpoints"
    ckpt.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is walk-these-ways' format
        torch.jit.script(_Linear(aw, ab)).save(str(ckpt / "adaptation_module_latest.jit"))
        torch.jit.script(_Linear(bw, bb)).save(str(ckpt / "body_latest.jit"))
    return aw, ab, bw, bb


def reference_action(history: np.ndarray, aw, ab, bw, bb) -> np.ndarray:
    """What the linear policy must output for a history, computed in float64 numpy."""
    h = history.astype(np.float64)
    latent = aw.astype(np.float64) @ h + ab
    return bw.astype(np.float64) @ np.concatenate([h, latent]) + bb
