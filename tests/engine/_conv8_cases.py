"""The int8 SIMD ISA fixture and random output-stage parameters for the int8 conv / dense tests."""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime.engine import engine

INT8_SIMD = ("avx2", "avxvnni", "avx512")
OUTPUTS = ("int32", "bits", "int8", "float")


@pytest.fixture(params=INT8_SIMD)
def simd(request):
    """Each int8 SIMD ISA; skipped, with the reason, where this CPU or build lacks it."""
    if request.param not in engine.supported_isas():
        pytest.skip(f"this CPU/build has no {request.param} "
                    f"(supported: {', '.join(engine.supported_isas())})")
    return request.param


def stage_params(rng: np.random.Generator, cout: int, output: str, y_scale: int) -> dict:
    """Random but meaningful stage parameters for accumulators of magnitude ~y_scale."""
    if output == "int32":
        return {}
    if output == "bits":
        return {"threshold": rng.integers(-y_scale, y_scale + 1, cout).astype(np.int32),
                "direction": rng.choice(np.array([-1, 1], np.int8), cout)}
    if output == "int8":
        shift = int(rng.integers(8, 31))
        m = rng.integers(1, max(2, (2**shift * 127) // max(1, y_scale)), cout)
        return {"multiplier": (m * rng.choice([-1, 1], cout)).astype(np.int32),
                "bias": rng.integers(-2**shift * 20, 2**shift * 20, cout).astype(np.int32),
                "shift": shift}
    return {"scale": (rng.standard_normal(cout) * 0.01).astype(np.float32),
            "bias": rng.standard_normal(cout).astype(np.float32)}
