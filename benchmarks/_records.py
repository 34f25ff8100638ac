"""Shared record helpers for every benchmark: machine, commit, CPU, median timing, JSON output.

Each benchmark prints a table with the machine, ISA, threads and commit, and can write a list of
records (dicts) as JSON. These helpers keep the common fields identical across benchmarks.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Callable, Iterable

from onebit.runtime.provenance import cpu_model, git_commit  # noqa: F401 (re-exported)

REPO_ROOT = Path(__file__).resolve().parents[1]


def machine() -> dict:
    """Common machine fields for every record: cpu, cores, commit, python, platform."""
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def median_ms(fn: Callable[[], object], *, repeats: int = 50, warmup: int = 5,
              min_time_s: float = 0.0) -> float:
    """Median wall time of ``fn()`` in milliseconds over ``repeats`` runs after ``warmup`` runs.

    Keeps running (beyond ``repeats``) until ``min_time_s`` seconds of samples are collected.
    """
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    total = 0.0
    while len(samples) < repeats or total < min_time_s:
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        samples.append(dt)
        total += dt
    return statistics.median(samples) * 1e3


def write_json(records: Iterable[dict], path: str | os.PathLike) -> None:
    """Write records as a JSON list (indent 1), creating parent folders."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(list(records), indent=1) + "\n")


def extract_commit(commit: str, dest: Path, *paths: str) -> None:
    """Extract the tree of ``commit`` (only ``paths`` when given) into ``dest`` with ``git
    archive``: the baseline source of the before/after engine benchmarks."""
    archive = subprocess.run(["git", "archive", commit, *paths], cwd=REPO_ROOT, capture_output=True,
                             check=True).stdout
    tar_path = Path(dest).parent / f"{Path(dest).name}.tar"
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(dest)
    tar_path.unlink()
