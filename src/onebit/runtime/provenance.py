"""Where a measurement was taken: CPU model and source commit (torch-free).

Every benchmark record (``onebit bench``, ``benchmarks/*.py``) carries these fields, so one
definition serves them all.
"""
from __future__ import annotations

import platform
import subprocess
from pathlib import Path


def repo_root() -> Path | None:
    """The source checkout onebit runs from (an editable install), else None."""
    for p in Path(__file__).resolve().parents:
        if (p / ".git").exists() and (p / "src" / "onebit").is_dir():
            return p
    return None


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo (Linux), else platform.processor()."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_commit() -> str:
    """Short commit of the checkout ("+dirty" with local changes), else "onebit-<version>"."""
    root = repo_root()
    if root is not None:
        try:
            run = dict(cwd=root, capture_output=True, text=True, check=True, timeout=10)
            rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], **run).stdout.strip()
            dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], **run).stdout.strip()
            if rev:
                return rev + ("+dirty" if dirty else "")
        except (OSError, subprocess.SubprocessError):
            pass
    from importlib.metadata import version

    return "onebit-" + version("onebit")
