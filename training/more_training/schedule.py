"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (the paper's recipe family)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class WarmupCosine:
    base_lr: float
    warmup_steps: int
    total_steps: int
    final_fraction: float = 0.1  # lr at the last step, as a fraction of base_lr

    def __post_init__(self) -> None:
        if not self.base_lr > 0:
            raise ValueError(f"base_lr must be > 0, got {self.base_lr}")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if self.total_steps <= self.warmup_steps:
            raise ValueError(f"total_steps ({self.total_steps}) must exceed warmup_steps ({self.warmup_steps})")
        if not 0 <= self.final_fraction <= 1:
            raise ValueError(f"final_fraction must be in [0, 1], got {self.final_fraction}")

    def __call__(self, step: int) -> float:
        """Learning rate for optimiser step `step` (0-based); constant at the floor after total_steps."""
        if step < self.warmup_steps:
            return self.base_lr * (step + 1) / self.warmup_steps
        progress = min(1.0, (step - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        floor = self.base_lr * self.final_fraction
        return floor + (self.base_lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
