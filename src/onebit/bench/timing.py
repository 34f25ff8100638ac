"""Timing helpers of the benchmarks (torch-free): median/min wall times of a callable, of a
``Session`` on a random uint8 batch, and of several sessions interleaved run by run."""
from __future__ import annotations

import gc
import os
import statistics
import time

import numpy as np


def samples_ms(fn, repeats: int, warmup: int, min_time_s: float = 0.0, gc_off: bool = False) -> list[float]:
    """Wall times (ms) of ``fn()`` after ``warmup`` untimed runs: at least ``repeats`` runs and
    ``min_time_s`` seconds in all (at most ``100 * repeats`` runs); ``gc_off``: the garbage
    collector paused meanwhile."""
    for _ in range(warmup):
        fn()
    times = []
    gc_was = gc.isenabled()
    if gc_off:
        gc.disable()
    try:
        start = time.perf_counter()
        while len(times) < repeats or (time.perf_counter() - start < min_time_s and len(times) < 100 * repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    finally:
        if gc_was:
            gc.enable()
    return times


def timed(fn, repeats: int, warmup: int) -> tuple[float, float]:
    """(median_ms, min_ms) of fn() over ``repeats`` runs after ``warmup`` runs, GC off."""
    times = samples_ms(fn, repeats, warmup, gc_off=True)
    return statistics.median(times), min(times)


def median_ms(fn, repeats: int = 50, warmup: int = 5, min_time_s: float = 0.2) -> float:
    """Median wall time (ms) of ``fn()``; keeps sampling until ``min_time_s`` has passed."""
    return statistics.median(samples_ms(fn, repeats, warmup, min_time_s))


def loadavg() -> float | None:
    """The 1-minute load average (2 decimals), recorded beside every timing; None if unknown."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def random_batch(session, batch: int = 1, seed: int = 0) -> np.ndarray:
    """A fixed random uint8 batch of ``session``'s input shape (weights and data do not change
    latency)."""
    return np.random.default_rng(seed).integers(0, 256, (batch,) + tuple(session.input_shape), dtype=np.uint8)


def time_session(session, batch: int = 1, repeats: int = 50, warmup: int = 5, seed: int = 0) -> float:
    """Median ms of ``session.run`` on one random uint8 batch (:func:`median_ms`)."""
    x = random_batch(session, batch, seed)
    return median_ms(lambda: session.run(x), repeats=repeats, warmup=warmup)


def time_interleaved(sessions, batch: int = 1, repeats: int = 50, warmup: int = 5, seed: int = 0,
                     min_time_s: float = 0.2) -> list[tuple[float, float]]:
    """``[(min_ms, median_ms)]`` of ``Session.run`` for each session, timed run by run in turn
    (A B A B ..., the order rotating every round) so that a change of machine load affects every
    session alike; at least ``repeats`` runs each and ``min_time_s`` in total."""
    xs = [random_batch(s, batch, seed) for s in sessions]
    for s, x in zip(sessions, xs):
        for _ in range(warmup):
            s.run(x)
    samples = [[] for _ in sessions]
    start = time.perf_counter()
    k = 0
    while k < repeats or time.perf_counter() - start < min_time_s:
        for j in range(len(sessions)):
            i = (j + k) % len(sessions)
            t0 = time.perf_counter()
            sessions[i].run(xs[i])
            samples[i].append((time.perf_counter() - t0) * 1e3)
        k += 1
        if k >= 100 * repeats:
            break
    return [(min(v), statistics.median(v)) for v in samples]


