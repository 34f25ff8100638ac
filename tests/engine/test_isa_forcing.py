"""ONEBIT_ISA forces a kernel family; an unknown or unsupported name is a clear error (subprocess,
since the choice is made once per process)."""
from __future__ import annotations

import os
import subprocess
import sys

from onebit.runtime.engine import engine

SNIPPET = (
    "import numpy as np; from onebit.runtime import kernels, engine; "
    "x = np.zeros((1, 3, 3, 1), np.uint64); w = np.zeros((2, 3, 3, 1), np.uint64); "
    "y = kernels.bconv2d(x, w, in_channels=64, padding=1); "
    "print(engine.active_isa(), int(y[0, 1, 1, 0]))"
)


def _run(isa: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ONEBIT_ISA=isa)
    return subprocess.run([sys.executable, "-c", SNIPPET], env=env, capture_output=True, text=True, timeout=60)


def test_isa_forcing_each_supported():
    for isa in engine.supported_isas():
        r = _run(isa)
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == [isa, "576"]  # 9 taps x 64 channels, all +1


def test_isa_forcing_unknown_name_errors():
    r = _run("sse9")
    assert r.returncode != 0
    assert "unknown ISA 'sse9'" in r.stderr
    assert "Traceback" in r.stderr  # a Python exception, not a crash


def test_isa_forcing_unsupported_errors():
    missing = [i for i in ("avx512", "avxvnni", "avx2", "neon") if i not in engine.supported_isas()]
    r = _run(missing[0])
    assert r.returncode != 0
    assert f"ONEBIT_ISA={missing[0]} but this CPU does not support it" in r.stderr
    assert "Traceback" in r.stderr
