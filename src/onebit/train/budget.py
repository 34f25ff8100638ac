"""Fit the number of epochs to a wall-clock budget (``TrainConfig.budget_s``).

The cosine schedule needs its length before the first step, so the step time is measured
first: a few training steps on a copy of the model and optimizer (same device, same options,
the random generators restored afterwards, so the run itself is unchanged), then

    epochs = min(max_epochs, floor(left / (steps_per_epoch * t_step + t_eval)))

with ``left`` the budget minus the time already spent since ``train`` was called (data,
measurement; ``onebit train`` also deducts the process's start-up, :func:`process_seconds`) and
``t_eval`` the test pass, estimated as a third of a training step per image (forward only).
At least one epoch is always trained.
"""
from __future__ import annotations

import copy
import math
import os
import time

import torch

EVAL_COST = 1 / 3  # a forward pass costs about a third of forward + backward


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def process_seconds() -> float | None:
    """Seconds since this process started (Linux ``/proc``), or None where unknown."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def measure_step_seconds(model, make_optimizer, loader, criterion, accel, device, steps: int = 10,
                         warmup: int = 2, max_seconds: float | None = None) -> float:
    """Median seconds per training step, measured on copies (the model and the RNG are
    untouched): ``warmup`` steps, then up to ``steps`` timed ones, stopping early (after at
    least two) once ``max_seconds`` have passed."""
    from onebit.train import accel as accel_mod

    rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    probe = copy.deepcopy(model)
    probe.train()
    opt = make_optimizer(probe)
    net = accel_mod.maybe_compile(accel, probe)
    loader.set_epoch(0)
    times = []
    start = time.perf_counter()
    try:
        it = iter(loader)
        for i in range(warmup + steps):
            try:
                x, y = next(it)
            except StopIteration:
                it = iter(loader)
                x, y = next(it)
            _sync(device)
            t0 = time.perf_counter()
            x, y = accel.prepare(x.to(device, non_blocking=True)), y.to(device, non_blocking=True)
            with accel.autocast():
                loss = criterion(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - t0)
                if max_seconds is not None and len(times) >= 2 and time.perf_counter() - start > max_seconds:
                    break
    finally:
        torch.set_rng_state(rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    times.sort()
    return times[len(times) // 2]


def fit_epochs(left_s: float, steps_per_epoch: int, step_s: float, test_images: int, batch_size: int,
               max_epochs: int) -> int:
    """Whole epochs that fit in ``left_s`` seconds (at least 1, at most ``max_epochs``)."""
    per_image = step_s / max(1, batch_size)
    epoch_s = steps_per_epoch * step_s + test_images * per_image * EVAL_COST
    return max(1, min(max_epochs, int(math.floor(left_s / max(epoch_s, 1e-9)))))
