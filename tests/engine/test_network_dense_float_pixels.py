"""float32 dense over many rows (the 1x1 float convolution of float-shortcut networks runs as
a dense layer over the N*H*W pixels): the AVX2 kernel's 2-row x 4-output register block, its
row chunks and its 8-way transposed reduction equal the scalar reference and the NumPy oracle
bit for bit, for odd row counts, several chunks, input/output tails, signed zeros and
infinities, and any thread count."""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine


def _chunk_rows(fin):  # kernels/densef_kernels.h: ~64 KB of x per chunk, even
    rows = (64 << 10) // (fin * 4)
    return max(2, rows // 2 * 2)


@pytest.mark.parametrize("n,fin,fout", [
    (1, 1, 1), (2, 7, 3), (3, 9, 5), (5, 64, 4), (7, 65, 9), (49, 256, 13), (196, 128, 20),
    (2 * _chunk_rows(300) + 1, 300, 6),   # three chunks, the last one a single row
    (_chunk_rows(17) + 3, 17, 2),         # many rows per chunk, odd remainder
])
def test_network_dense_float_pixels_simd_equals_scalar_equals_oracle(n, fin, fout):
    rng = np.random.default_rng(n * 1000 + fin + fout)
    x = rng.standard_normal((n, fin)).astype(np.float32)
    w = rng.standard_normal((fout, fin)).astype(np.float32)
    bias = rng.standard_normal(fout).astype(np.float32)
    x.flat[rng.integers(0, x.size, 5)] = -0.0
    w.flat[rng.integers(0, w.size, 3)] = -0.0
    want = ref.dense_float(x, w, bias)
    np.testing.assert_array_equal(nk.dense_float(x, w, bias, isa="scalar"), want)
    for isa in engine.supported_isas():
        for threads in (1, 2, 3):
            got = nk.dense_float(x, w, bias, isa=isa, threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads}")


def test_network_dense_float_pixels_signed_zero_and_inf():
    """Sums that are -0.0 stay bit-identical to the reference (the +0.0 products past `in`
    turn -0.0 into +0.0 there too), and infinities propagate the same way."""
    x = np.array([[-0.0] * 5, [1.0, -1.0, 0.0, 0.0, 0.0], [np.inf, 1, 1, 1, 1]], np.float32)
    w = np.array([[1.0] * 5, [0.0] * 5, [-1.0, 2, 3, 4, 5]], np.float32)
    want = ref.dense_float(x, w)
    for isa in engine.supported_isas():
        got = nk.dense_float(x, w, isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)
        np.testing.assert_array_equal(np.signbit(got), np.signbit(want), err_msg=isa)
