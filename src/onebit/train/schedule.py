"""Learning-rate schedule: linear warmup, then cosine annealing to 0, stepped once per batch.

    lr(t) = lr0 * (t+1)/W                            for t < W   (warmup, W steps)
    lr(t) = lr0 * 0.5 * (1 + cos(pi * (t-W)/(T-W)))  for W <= t < T
(Loshchilov & Hutter, SGDR, 2017). The multiplier is a picklable object, so the scheduler's
state_dict round-trips through a checkpoint.
"""
from __future__ import annotations

import math

import torch


class WarmupCosine:
    def __init__(self, total_steps: int, warmup_steps: int):
        if total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {total_steps}")
        if not 0 <= warmup_steps < total_steps:
            warmup_steps = max(0, min(warmup_steps, total_steps - 1))
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))


def make_scheduler(optimizer: torch.optim.Optimizer, total_steps: int, warmup_fraction: float):
    warmup = int(round(warmup_fraction * total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, WarmupCosine(total_steps, warmup))
