"""Shared fixtures of the engine tests: the ISAs this CPU runs, and SIMD ISAs to compare.

Tests run once per ISA the CPU has; ISAs it lacks are skipped (never failed), with the reason.
"""
from __future__ import annotations

import pytest

from onebit.runtime.engine import engine

ALL_ISAS = ("scalar", "avx2", "avx512")
SIMD_ISAS = ("avx2", "avx512")


def isa_or_skip(isa: str) -> str:
    if isa not in engine.supported_isas():
        pytest.skip(f"this CPU/build has no {isa} (supported: {', '.join(engine.supported_isas())})")
    return isa


@pytest.fixture(params=ALL_ISAS)
def isa(request) -> str:
    """Every ISA, skipped where the CPU lacks it."""
    return isa_or_skip(request.param)


@pytest.fixture(params=SIMD_ISAS)
def simd_isa(request) -> str:
    """SIMD ISAs (compared against the scalar reference), skipped where the CPU lacks them."""
    return isa_or_skip(request.param)
