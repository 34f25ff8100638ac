"""Random packed operands and output-stage parameters for the bconv / bdense tests (fixed seeds)."""
from __future__ import annotations

import numpy as np

from onebit import bits


def packed(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Packed sign bits of a random +-1 tensor with channels last."""
    return bits.pack(rng.standard_normal(shape).astype(np.float32))


def stage_params(rng: np.random.Generator, cout: int, k_bits: int, output: str, *,
                 int8_wide: bool = False) -> dict:
    """Parameters of one output stage for ``cout`` channels and accumulators in [-K, K].

    bits: thresholds spread over [-K-2, K+2] (some outside: constant outputs) and mixed
    directions; int8: small multipliers (int32 fast path) or, with ``int8_wide``, multipliers up
    to 2^30 that force the exact int64 path; float: random scale and bias.
    """
    if output == "int32":
        return {}
    if output == "bits":
        return {
            "threshold": rng.integers(-k_bits - 2, k_bits + 3, size=cout).astype(np.int32),
            "direction": rng.choice(np.array([-1, 1], dtype=np.int8), size=cout),
        }
    if output == "int8":
        shift = int(rng.integers(1, 32)) if int8_wide else int(rng.integers(4, 16))
        hi = 2 ** 30 if int8_wide else max(2, 2 ** shift // max(1, k_bits) * 64)
        return {
            "multiplier": rng.integers(-hi, hi, size=cout).astype(np.int32),
            "bias": rng.integers(-(2 ** 20), 2 ** 20, size=cout).astype(np.int32),
            "shift": shift,
        }
    if output == "float":
        return {
            "scale": (rng.standard_normal(cout) * 0.05).astype(np.float32),
            "bias": rng.standard_normal(cout).astype(np.float32),
        }
    raise ValueError(output)


OUTPUTS = ("int32", "bits", "int8", "float")
