"""The bit-plane first layer kernels (bitplanes, bconv2d_planes) equal the NumPy oracles bit for bit
on every ISA the CPU has, on shapes that straddle the packed-word boundaries, with every output
stage; bad planes and weight widths get a clear error."""
from __future__ import annotations

import numpy as np
import pytest

from onebit import bits
from onebit.bitplanes import odd_weight_planes, pack_window_weights
from onebit.runtime import kernels, reference

from _bconv_cases import OUTPUTS, stage_params

# (channels, planes): 1..72 planes; 64 and 65 straddle the word boundary
PLANE_CASES = [(1, [7]), (1, list(range(8))), (3, [6, 7, 14, 15, 22, 23]), (8, list(range(64))),
               (9, list(range(65))), (9, list(range(0, 72, 1)))]


@pytest.mark.parametrize("channels,planes", PLANE_CASES, ids=lambda v: str(v if isinstance(v, int) else len(v)))
def test_bplanes_bitplanes_equal_reference(isa, channels, planes):
    u = np.random.default_rng(channels).integers(0, 256, (2, 3, 5, channels), dtype=np.uint8)
    got = kernels.bitplanes(u, planes, isa=isa)
    assert got.dtype == np.uint64 and np.array_equal(got, reference.bitplanes(u, planes))


def _planes(rng, m, cout, k, cin):
    top = (1 << m) - 1
    v = np.clip(2 * rng.integers(-(top + 1) // 2, (top + 1) // 2 + 1, (cout, k, k, cin)) + 1, -top, top)
    return odd_weight_planes(v, m)


def _weights(rng, m, cout, k, cin):
    return bits.pack(_planes(rng, m, cout, k, cin))


CONV_CASES = [  # (n, h, w, cin, cout, k, stride, padding, weight bits)
    (1, 7, 9, 24, 16, 3, 1, 1, 8), (2, 5, 5, 1, 7, 3, 2, 1, 3), (1, 8, 8, 64, 9, 3, 1, 0, 1),
    (1, 6, 7, 65, 17, 3, 2, 1, 5), (3, 4, 4, 12, 64, 1, 1, 0, 8), (1, 9, 9, 8, 65, 5, 1, 2, 2),
]


@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "n{}_{}x{}x{}-{}_k{}_s{}_p{}_m{}".format(*c))
@pytest.mark.parametrize("output", OUTPUTS)
def test_bplanes_conv_equals_reference(isa, case, output):
    n, h, w, cin, cout, k, s, p, m = case
    rng = np.random.default_rng(cin * 131 + cout)
    x = bits.pack(rng.standard_normal((n, h, w, cin)).astype(np.float32))
    wp = _weights(rng, m, cout, k, cin)
    stage = stage_params(rng, cout, ((1 << m) - 1) * k * k * cin, output)
    ref = reference.bconv2d_planes(x, wp, in_channels=cin, stride=s, padding=p, output=output, **stage)
    for threads in (1, 2):
        got = kernels.bconv2d_planes(x, wp, in_channels=cin, stride=s, padding=p, output=output, isa=isa,
                                     threads=threads, **stage)
        assert got.dtype == ref.dtype and np.array_equal(got, ref)


WINDOW_CASES = CONV_CASES + [  # windows of 9, 63 (one word), 64, 65 bits, and past 31 words (2,250 bits)
    (1, 5, 6, 1, 8, 3, 1, 1, 8), (1, 6, 5, 7, 9, 3, 2, 1, 4), (2, 4, 4, 64, 3, 1, 1, 0, 2),
    (1, 4, 5, 13, 5, 5, 1, 2, 3), (1, 5, 5, 250, 10, 3, 1, 1, 2),
]


@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: "n{}_{}x{}x{}-{}_k{}_s{}_p{}_m{}".format(*c))
def test_bplanes_window_layout_equals_taps_layout(isa, case):
    n, h, w, cin, cout, k, s, p, m = case
    rng = np.random.default_rng(cin * 7 + cout)
    x = bits.pack(rng.standard_normal((n, h, w, cin)).astype(np.float32))
    planes = _planes(rng, m, cout, k, cin)
    taps, window = bits.pack(planes), pack_window_weights(planes)
    assert window.shape == (m, cout, -(-k * k * cin // 64))
    ref = reference.bconv2d_planes(x, taps, in_channels=cin, stride=s, padding=p)
    assert np.array_equal(reference.bconv2d_planes(x, window, in_channels=cin, stride=s, padding=p, kernel=k), ref)
    for threads in (1, 2):
        for wt, kw in ((window, dict(kernel=k)), (taps, {})):
            got = kernels.bconv2d_planes(x, wt, in_channels=cin, stride=s, padding=p, isa=isa, threads=threads, **kw)
            assert np.array_equal(got, ref)


def test_bplanes_window_layout_needs_kernel_and_clean_padding():
    x = np.zeros((1, 3, 3, 1), np.uint64)
    with pytest.raises(ValueError, match="kernel"):
        kernels.bconv2d_planes(x, np.zeros((2, 2, 2), np.uint64), in_channels=8)
    with pytest.raises(ValueError, match="words per window"):
        kernels.bconv2d_planes(x, np.zeros((2, 2, 1), np.uint64), in_channels=8, kernel=3)
    with pytest.raises(ValueError, match="padding bits"):
        kernels.bconv2d_planes(x, np.full((2, 2, 2), 1 << 9, np.uint64), in_channels=8, kernel=3)


def test_bplanes_conv_is_the_sum_of_weighted_binary_convs(isa):
    rng = np.random.default_rng(3)
    x = bits.pack(rng.standard_normal((1, 6, 6, 24)).astype(np.float32))
    wp = _weights(rng, 4, 8, 3, 24)
    y = kernels.bconv2d_planes(x, wp, in_channels=24, padding=1, isa=isa)
    parts = [kernels.bconv2d(x, wp[j], in_channels=24, padding=1, isa=isa).astype(np.int64) << j for j in range(4)]
    assert np.array_equal(y, sum(parts))


def test_bplanes_rejects_plane_ids_out_of_range():
    u = np.zeros((1, 2, 2, 3), np.uint8)
    with pytest.raises(ValueError, match="plane id 24 outside"):
        kernels.bitplanes(u, [0, 24])
    with pytest.raises(ValueError, match="plane id -1 outside"):
        kernels.bitplanes(u, [-1])


def test_bplanes_rejects_too_many_weight_planes():
    x = np.zeros((1, 3, 3, 1), np.uint64)
    with pytest.raises(ValueError, match="1 to 8 weight planes"):
        kernels.bconv2d_planes(x, np.zeros((9, 2, 3, 3, 1), np.uint64), in_channels=8)
    with pytest.raises(ValueError, match="padding bits"):
        kernels.bconv2d_planes(x, np.full((2, 2, 3, 3, 1), 1 << 9, np.uint64), in_channels=8)
