"""SIMD bconv2d equals the scalar reference on the shapes that pick each SIMD code path.

The AVX2 kernel picks its kernel-row loop by words per tap (W64 = ceil(Cin/64)): compiled-in
runs for 3-wide kernels with W64 in 1..8 (W64 3, 5, 6, 7 are the counts channel pruning in
multiples of 64 keeps), run-time runs in 4-word steps then single words otherwise; tiles are
2 pixels x 16 channels, 1..4 x 8 for a lone 8-channel block; tasks are bands of output rows x
64-channel chunks; edge pixels read the zero-padded input and are corrected. The
general grid of test_bconv_simd.py has no W64 = 4 layer and few multi-chunk, multi-band or
non-square-kernel shapes, so these cases pin them: every W64 from 1 to 10 (and 18) with Cin at both ends of
the word (padding bits), Cout around the 8/16/64-channel block boundaries, rows of 1..13 pixels,
stride 2, 'valid' padding, KH != KW (KW 1 and 2: u8 folds inside the run-time loop), batch > 1, and
1/2/3 threads.
"""
from __future__ import annotations

import numpy as np
import pytest

from onebit.runtime import kernels

from _bconv_cases import OUTPUTS, packed, stage_params

# (n, h, w, cin, cout, kh, kw, stride, padding)
CASES = [
    # compiled-in runs (3-wide kernels), one per W64, Cout not a multiple of 16 / 64
    (1, 6, 13, 64, 72, 3, 3, 1, 1),      # W64 1: 2x16 tiles + a lone 8-channel block (4x8)
    (1, 5, 11, 100, 24, 3, 3, 1, 1),     # W64 2 with padding bits
    (1, 9, 10, 256, 136, 3, 3, 1, 1),    # W64 4: 2x16 tiles, 3 chunks, 3 bands
    (2, 4, 5, 200, 40, 3, 3, 1, 1),      # W64 4 with padding bits, batch 2
    (1, 7, 7, 512, 80, 3, 3, 1, 1),      # W64 8: 7-pixel rows (tiles 2 + 2 + 2 + 1)
    (1, 3, 9, 449, 16, 3, 3, 1, 1),      # W64 8 with 63 padding bits
    # W64 3, 5, 6, 7 (pruned channel counts): 2x16 tiles, 4x8 for a lone block, runs of 9-21 words
    (1, 5, 6, 192, 24, 3, 3, 1, 1),      # W64 3: one 2x16 column + a lone 8-channel block
    (1, 6, 13, 192, 72, 3, 3, 1, 1),     # W64 3: rows of 13 (2-pixel tiles + a 1-pixel tile), 2 chunks
    (2, 5, 7, 130, 40, 3, 3, 1, 1),      # W64 3 with 62 padding bits, batch 2, lone block (7 = 4 + 3)
    (1, 1, 1, 192, 24, 3, 3, 1, 1),      # W64 3: a single output pixel (every tap but the centre out)
    (1, 4, 7, 320, 17, 3, 3, 1, 1),      # W64 5: Cout 17 (a lone block with 1 live channel)
    (1, 4, 6, 257, 24, 3, 3, 1, 1),      # W64 5 with 1 live bit in the last word
    (1, 9, 9, 320, 136, 3, 3, 2, 1),     # W64 5, stride 2, 3 chunks (the last one 8 channels)
    (1, 6, 1, 320, 40, 3, 3, 1, 1),      # W64 5: one-pixel rows
    (1, 8, 8, 384, 100, 3, 3, 1, 1),     # W64 6: Cout 100 (second chunk 36: 16 + 16 + 4 of 8)
    (3, 4, 5, 383, 16, 3, 3, 1, 0),      # W64 6 with 1 padding bit, 'valid', batch 3
    (1, 7, 6, 352, 24, 5, 3, 1, 1),      # W64 6, KH 5 (a u8 fold every kernel row)
    (1, 10, 11, 384, 64, 3, 3, 2, 0),    # W64 6, stride 2, 'valid'
    (1, 5, 5, 448, 9, 3, 3, 1, 1),       # W64 7: Cout 9
    (1, 7, 7, 448, 80, 3, 3, 1, 1),      # W64 7: 7-pixel rows (tiles 2 + 2 + 2 + 1), lone block
    (1, 10, 11, 400, 33, 3, 3, 2, 1),    # W64 7 with padding bits, stride 2, Cout 33
    (2, 6, 5, 448, 24, 5, 3, 1, 2),      # W64 7, KH 5, pad 2 (two out-of-bounds columns a side)
    # generic runs
    (1, 3, 4, 576, 33, 3, 3, 1, 1),      # W64 9 (a kernel row is 27 words)
    (1, 3, 3, 1100, 8, 3, 3, 1, 1),      # W64 18: a kernel row longer than 31 words
    (1, 12, 5, 192, 24, 11, 1, 1, 0),    # KW 1, W64 3: 3 single words per row, a fold after 31 of them
    (1, 13, 4, 100, 16, 13, 2, 1, 0),    # KW 2, W64 2: one 4-word step per row, a fold every 7 rows
    (1, 5, 9, 640, 24, 3, 3, 1, 1),      # W64 10: 7 4-word steps + 2 single words per kernel row
    # stride, padding, kernel shapes
    (1, 9, 11, 128, 72, 3, 3, 2, 1),     # stride 2, W64 2
    (1, 8, 9, 256, 24, 3, 3, 2, 1),      # stride 2, W64 4
    (1, 6, 7, 512, 8, 3, 3, 1, 0),       # valid, W64 8
    (1, 7, 8, 64, 40, 5, 3, 1, 1),       # KH 5, KW 3 (compiled-in run, 5 kernel rows)
    (1, 6, 9, 128, 16, 1, 3, 1, 0),      # KH 1, KW 3
    (1, 8, 6, 256, 24, 3, 5, 1, 2),      # KW 5 (generic), pad 2
    (3, 5, 5, 64, 20, 5, 5, 2, 2),       # 5x5 stride 2, batch 3
    # one-pixel rows and a single output pixel
    (1, 6, 1, 128, 24, 3, 3, 1, 1),
    (1, 1, 1, 256, 40, 3, 3, 1, 1),
]


def _id(c) -> str:
    return "n{}_{}x{}x{}-{}_k{}x{}_s{}_p{}".format(*c)


def _run(x, w, cin, stride, pad, output, isa, threads, params):
    return kernels.bconv2d(x, w, in_channels=cin, stride=stride, padding=pad, output=output, isa=isa,
                           threads=threads, **params)


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bconv_tile_paths_equal_scalar(simd_isa, case):
    n, h, w, cin, cout, kh, kw, stride, pad = case
    rng = np.random.default_rng([n, h, w, cin, cout, kh, kw, stride, pad])
    x, wt = packed(rng, (n, h, w, cin)), packed(rng, (cout, kh, kw, cin))
    prepared = kernels.prepare_weights(wt, in_channels=cin, isa=simd_isa)
    for output in OUTPUTS:
        params = stage_params(rng, cout, kh * kw * cin, output)
        ref = _run(x, wt, cin, stride, pad, output, "scalar", 1, params)
        for threads in (1, 2, 3):
            got = _run(x, prepared, cin, stride, pad, output, simd_isa, threads, params)
            np.testing.assert_array_equal(got, ref, err_msg=f"output={output} threads={threads}")
        got = _run(x, wt, cin, stride, pad, output, simd_isa, 2, params)  # packed weights path
        np.testing.assert_array_equal(got, ref, err_msg=f"output={output} packed weights")


@pytest.mark.parametrize("cin", [64, 128, 192, 256, 320, 384, 448, 512, 576, 640, 1152])
def test_bconv_tile_paths_extreme_inputs(simd_isa, cin):
    # All-agree / all-disagree inputs: y = +-(in-bounds taps * Cin) exactly, including the
    # corrected edge pixels (corner: 4 taps, edge: 6, interior: 9).
    h, w, cout = 5, 9, 24
    x = np.zeros((1, h, w, cin // 64), dtype=np.uint64)
    for wbits, sign in ((np.zeros((cout, 3, 3, cin // 64), dtype=np.uint64), 1),
                        (np.full((cout, 3, 3, cin // 64), np.uint64(2**64 - 1)), -1)):
        got = kernels.bconv2d(x, wbits, in_channels=cin, padding=1, isa=simd_isa)
        taps = np.full((h, w), 9)
        taps[0, :] -= 3
        taps[-1, :] -= 3
        taps[:, 0] -= 3
        taps[:, -1] -= 3
        taps[0, 0] = taps[0, -1] = taps[-1, 0] = taps[-1, -1] = 4
        np.testing.assert_array_equal(got[0], sign * cin * np.repeat(taps[..., None], cout, axis=2))


# Pointwise path (1x1 kernels: dense layers, 1x1 convs): unsplit weights, 1-pixel tiles (batch-1
# dense) and 2..4-pixel tiles; u8 lanes folded every 31 words (Cin 1984 = 31 words, 1985 = 32).
DENSE = [(n, cin, cout) for n in (1, 2, 3, 5, 9) for cin, cout in ((1, 1), (65, 9), (1984, 17), (1985, 72))] + [
    (1, 8192, 130), (2, 4000, 7), (4, 640, 200)]


@pytest.mark.parametrize("n, cin, cout", DENSE, ids=lambda v: str(v))
def test_bdense_pointwise_equals_scalar(simd_isa, n, cin, cout):
    rng = np.random.default_rng([n, cin, cout, 7])
    x, wt = packed(rng, (n, cin)), packed(rng, (cout, cin))
    prepared = kernels.prepare_weights(wt, in_channels=cin, isa=simd_isa)
    for output in OUTPUTS:
        params = stage_params(rng, cout, cin, output)
        ref = kernels.bdense(x, wt, in_features=cin, output=output, isa="scalar", threads=1, **params)
        for w, threads in ((prepared, 1), (prepared, 3), (wt, 2)):
            got = kernels.bdense(x, w, in_features=cin, output=output, isa=simd_isa, threads=threads, **params)
            np.testing.assert_array_equal(got, ref, err_msg=f"output={output} threads={threads}")


@pytest.mark.parametrize("case", [(1, 5, 7, 128, 24, 1), (2, 6, 5, 70, 9, 2), (1, 9, 9, 2048, 16, 3)],
                         ids=lambda c: "n{}_{}x{}x{}-{}_s{}".format(*c))
def test_bconv_pointwise_equals_scalar(simd_isa, case):
    n, h, w, cin, cout, stride = case
    rng = np.random.default_rng(list(case))
    x, wt = packed(rng, (n, h, w, cin)), packed(rng, (cout, 1, 1, cin))
    for output in OUTPUTS:
        params = stage_params(rng, cout, cin, output)
        ref = _run(x, wt, cin, stride, 0, output, "scalar", 1, params)
        for threads in (1, 2):
            got = _run(x, wt, cin, stride, 0, output, simd_isa, threads, params)
            np.testing.assert_array_equal(got, ref, err_msg=f"output={output} threads={threads}")


def test_bconv_bits_extreme_thresholds(simd_isa):
    # The AVX2 bits stage compares d*y with a clamped d*t: thresholds at the int32 limits (where
    # d*t itself would overflow) and at +-K, +-(K+1) must give the scalar bits.
    rng = np.random.default_rng(11)
    cin, cout = 64, 72
    k_bits = 9 * cin
    x, wt = packed(rng, (1, 4, 5, cin)), packed(rng, (cout, 3, 3, cin))
    choices = np.array([-2**31, 2**31 - 1, -k_bits - 1, -k_bits, k_bits, k_bits + 1, 0, 1, -1], dtype=np.int64)
    threshold = rng.choice(choices, size=cout).astype(np.int32)
    direction = rng.choice(np.array([-1, 1], dtype=np.int8), size=cout)
    params = {"threshold": threshold, "direction": direction}
    ref = _run(x, wt, cin, 1, 1, "bits", "scalar", 1, params)
    got = _run(x, wt, cin, 1, 1, "bits", simd_isa, 1, params)
    np.testing.assert_array_equal(got, ref)
