"""int8 convolution with weights prepared once per ISA (prepare_conv8 + conv2d_int8_prepared):
every SIMD kernel (avx2: vpmaddwd, avxvnni: 256-bit vpdpbusd, avx512: 512-bit vpdpbusd) equal
to the scalar reference bit for bit on the zoo's shapes and a boundary grid around the vector
widths (8 and 16 int32 lanes, 64-channel register blocks), with extreme inputs and weights."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit.runtime import netkernels as nk
from onebit.runtime.engine import engine

from _conv8_cases import OUTPUTS, simd, stage_params  # noqa: F401 (simd: fixture)


def _out(x, cout, s, p, k, output):
    oh = (x.shape[1] + 2 * p[0] - k[0]) // s[0] + 1
    ow = (x.shape[2] + 2 * p[1] - k[1]) // s[1] + 1
    last = -(-cout // 64) if output == "bits" else cout
    dt = {"int32": np.int32, "bits": np.uint64, "int8": np.int8, "float": np.float32}[output]
    return np.zeros((x.shape[0], oh, ow, last), dt)


def _run_prepared(x, wt, zp, s, p, output, stage, isa, threads=None):
    prep = engine.prepare_conv8(wt, zero_point=zp, signed=x.dtype == np.int8, isa=isa)
    out = _out(x, wt.shape[0], s, p, wt.shape[1:3], output)
    engine.conv2d_int8_prepared(x, prep, out, s[0], s[1], p[0], p[1], output, **stage,
                                threads=threads)
    assert prep.isa == (isa or engine.active_isa())
    if isa == "avx512" or isa == "avxvnni":  # zero points within bytes: the VNNI kernel runs
        zu = np.asarray(zp) + (128 if x.dtype == np.int8 else 0)
        assert prep.kernel == (isa if ((zu >= 0) & (zu <= 255)).all() else "avx2")
    return out


def _scalar(x, wt, zp, s, p, output, stage):
    return nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                          isa="scalar")


def _values(rng, shape, dtype, extreme):
    """Random values, or only the range's ends (0/255, -128/127): the products that saturate a
    16-bit pair sum (255*127*2 > 32767) and the largest accumulators."""
    lo, hi = (0, 255) if dtype == np.uint8 else (-128, 127)
    if extreme:
        return rng.choice(np.array([lo, hi], dtype), shape)
    return rng.integers(lo, hi + 1, shape, dtype=dtype)


# (kh, kw), (sh, sw), (ph, pw), H, W, input dtype, cin: the zoo's shapes first.
ZOO_SHAPES = [
    ((7, 7), (2, 2), (3, 3), 23, 21, np.uint8, 3),   # 7x7 stride-2 stem on an RGB image
    ((3, 3), (2, 2), (1, 1), 17, 19, np.uint8, 3),   # 3x3 stride-2 stem
    ((2, 2), (2, 2), (0, 0), 14, 10, np.int8, 64),   # 2x2 stride-2 shortcut (pool folded in)
    ((1, 1), (1, 1), (0, 0), 9, 7, np.int8, 32),     # 1x1 transition conv
    ((1, 1), (2, 2), (0, 0), 9, 8, np.int8, 16),     # 1x1 stride-2 shortcut
    ((1, 1), (1, 1), (0, 0), 7, 7, np.int8, 40),     # 1x1 on 7-pixel rows (folded into longer)
]


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("shape", ZOO_SHAPES, ids=["stem7", "stem3", "short2x2", "trans1x1", "short1x1s2", "trans1x1x7"])
@pytest.mark.parametrize("extreme", [False, True], ids=["random", "extreme"])
def test_conv8_prepared_zoo_shapes_equal_scalar(simd, shape, output, extreme):
    k, s, p, h, w, dt, cin = shape
    for cout in (64, 17):
        rng = np.random.default_rng(cout * 7 + cin)
        x = _values(rng, (2, h, w, cin), dt, extreme)
        wt = _values(rng, (cout, *k, cin), np.int8, extreme)
        zp = (np.array([124, 116, 104], np.int32) if cin == 3 and not extreme
              else np.zeros(cin, np.int32))
        stage = stage_params(rng, cout, output, int(np.sqrt(wt[0].size) * 128 * 100))
        want = _scalar(x, wt, zp, s, p, output, stage)
        got = _run_prepared(x, wt, zp, s, p, output, stage, simd)
        np.testing.assert_array_equal(got, want, err_msg=f"{simd} cout={cout}")


def _grid():
    """Cin and Cout around the lane counts (8, 16) and the 64-channel blocks, odd sizes,
    strides, paddings, both input types, per-channel zero points; a fixed-seed cycle through
    the combinations keeps the run short."""
    cins = (1, 3, 4, 5, 8, 15, 16, 17, 31, 33, 64, 65)
    couts = (1, 7, 8, 9, 16, 24, 33, 48, 63, 65, 129)
    geoms = itertools.cycle([((3, 3), (1, 1), (1, 1)), ((2, 2), (2, 2), (0, 0)),
                             ((1, 1), (1, 1), (0, 0)), ((3, 1), (2, 1), (1, 0)),
                             ((5, 5), (3, 2), (2, 1)), ((7, 7), (2, 2), (3, 3)),
                             ((1, 3), (1, 3), (0, 2))])
    sizes = itertools.cycle([(1, 1), (2, 3), (5, 7), (9, 13), (4, 17), (13, 5)])
    kinds = itertools.cycle(["uint8", "int8", "int8-zp", "uint8-zp", "extreme"])
    outputs = itertools.cycle(OUTPUTS)
    cases = []
    for cin, cout in itertools.product(cins, couts):
        (k, s, p), (h, w), kind, o = next(geoms), next(sizes), next(kinds), next(outputs)
        h, w = max(h, k[0]), max(w, k[1])
        cases.append(pytest.param(cin, cout, k, s, p, h, w, kind, o,
                                  id=f"ci{cin}-co{cout}-k{k[0]}x{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}-{h}x{w}-{kind}-{o}"))
    return cases


@pytest.mark.parametrize("cin,cout,k,s,p,h,w,kind,output", _grid())
def test_conv8_prepared_grid_equals_scalar(cin, cout, k, s, p, h, w, kind, output):
    rng = np.random.default_rng(cin * 1000 + cout)
    dt = np.uint8 if kind.startswith("uint8") or (kind == "extreme" and cin % 2) else np.int8
    x = _values(rng, (3 if cin % 3 == 0 else 1, h, w, cin), dt, kind == "extreme")
    wt = _values(rng, (cout, *k, cin), np.int8, kind == "extreme")
    if kind.endswith("-zp"):
        lo, hi = (0, 256) if dt == np.uint8 else (-128, 128)
        zp = rng.integers(lo, hi, cin).astype(np.int32)
    else:
        zp = np.zeros(cin, np.int32)
    stage = stage_params(rng, cout, output, int(np.sqrt(wt[0].size) * 128 * 100))
    want = _scalar(x, wt, zp, s, p, output, stage)
    for isa in engine.supported_isas():
        got = _run_prepared(x, wt, zp, s, p, output, stage, isa, threads=1 + cin % 2)
        np.testing.assert_array_equal(got, want, err_msg=isa)
        got = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                             isa=isa)  # unprepared entry point: same result
        np.testing.assert_array_equal(got, want, err_msg=f"{isa} unprepared")


@pytest.mark.parametrize("shift", [24, 30])
def test_conv8_prepared_int8_stage_large_multipliers(shift):
    """int8 output with multipliers near 2^27: rows of small accumulators take the int32 stage
    path, rows of large ones (extreme inputs) the exact wide path; both equal the scalar one."""
    rng = np.random.default_rng(shift)
    x = np.full((2, 9, 11, 16), 0, np.int8)
    x[:, ::3] = rng.choice(np.array([-128, 127], np.int8), x[:, ::3].shape)  # large |y| rows
    x[:, 1::3] = rng.integers(-3, 4, x[:, 1::3].shape, dtype=np.int8)        # small |y| rows
    wt = rng.integers(-128, 128, (40, 3, 3, 16), dtype=np.int8)
    cout = wt.shape[0]
    m = rng.integers(2**26, 2**27, cout).astype(np.int32) * rng.choice([-1, 1], cout).astype(np.int32)
    stage = {"multiplier": m, "bias": rng.integers(-2**29, 2**29, cout).astype(np.int32),
             "shift": shift}
    zp = np.zeros(16, np.int32)
    want = _scalar(x, wt, zp, (1, 1), (1, 1), "int8", stage)
    assert (np.abs(want) == 127).any() and (np.abs(want) < 127).any()
    for isa in engine.supported_isas():
        got = _run_prepared(x, wt, zp, (1, 1), (1, 1), "int8", stage, isa)
        np.testing.assert_array_equal(got, want, err_msg=isa)


def test_conv8_prepared_zero_points_outside_bytes_use_avx2_kernel():
    """VNNI needs zp (+128 for int8 input) in [0, 255]; otherwise the avx2 kernel runs, exact."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (1, 6, 6, 5), dtype=np.uint8)
    wt = rng.integers(-128, 128, (9, 3, 3, 5), dtype=np.int8)
    zp = np.array([-3, 0, 255, 10, 200], np.int32)
    want = _scalar(x, wt, zp, (1, 1), (1, 1), "int32", {})
    for isa in ("avxvnni", "avx512"):
        if isa not in engine.supported_isas():
            continue
        prep = engine.prepare_conv8(wt, zero_point=zp, isa=isa)
        assert prep.isa == isa and prep.kernel == "avx2"
        assert engine.prepare_conv8(wt, zero_point=np.abs(zp), isa=isa).kernel == isa
        got = _run_prepared(x, wt, zp, (1, 1), (1, 1), "int32", {}, isa)
        np.testing.assert_array_equal(got, want)


def test_conv8_prepared_rejects_mismatches():
    wt = np.zeros((4, 3, 3, 5), np.int8)
    prep = engine.prepare_conv8(wt)
    assert prep.shape == (4, 3, 3, 5) and not prep.signed
    out = np.zeros((1, 4, 4, 4), np.int32)
    with pytest.raises(ValueError, match="prepared for uint8 input, got int8"):
        engine.conv2d_int8_prepared(np.zeros((1, 6, 6, 5), np.int8), prep, out, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="5 input channels, x has 6"):
        engine.conv2d_int8_prepared(np.zeros((1, 6, 6, 6), np.uint8), prep, out, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="out must have shape"):
        engine.conv2d_int8_prepared(np.zeros((1, 7, 6, 5), np.uint8), prep, out, 1, 1, 0, 0)
    with pytest.raises(ValueError, match="zero point 300"):
        engine.prepare_conv8(wt, zero_point=np.full(5, 300, np.int32))
    with pytest.raises(ValueError, match="zero_point must have 5 entries"):
        engine.prepare_conv8(wt, zero_point=np.zeros(4, np.int32))
    with pytest.raises(ValueError, match="overflow the int32 accumulator"):
        engine.prepare_conv8(np.zeros((1, 1, 1, 70000), np.int8))
    with pytest.raises(ValueError, match="unknown ISA"):
        engine.prepare_conv8(wt, isa="sse9")


def test_int8_mac_peak_positive_per_isa():
    for isa in engine.supported_isas():
        assert engine.int8_mac_peak(isa, 0.01) > 0
    with pytest.raises(ValueError):
        engine.int8_mac_peak("scalar", 0)


@pytest.mark.parametrize("shift", [1, 12, 23, 26, 31])
def test_conv8_prepared_int8_stage_saturation_window(shift):
    """int8 output whose y*M leaves int32 (the zoo's M ~ 2^S / 2^k): y is clamped per channel to
    the window outside which the output saturates, then the int32 formula runs. Outputs spread
    over [-127, 127] with exact ties, plus M = 0, M = +-(2^31 - 1), -2^31 and biases at the int32
    ends (windows that do not fit: the other exact paths); all equal the scalar reference."""
    rng = np.random.default_rng(shift + 100)
    cin, cout = 19, 40
    x = rng.integers(-128, 128, (2, 9, 11, cin), dtype=np.int8)
    x[0, ::4] = rng.choice(np.array([-128, 127], np.int8), x[0, ::4].shape)
    wt = rng.integers(-128, 128, (cout, 3, 3, cin), dtype=np.int8)
    ys = 3 * 3 * cin * 128 * 40  # about the spread of y
    m = (rng.uniform(-300, 300, cout) * 2.0**shift / ys).round()
    m = np.clip(m, -(2**31), 2**31 - 1).astype(np.int64)
    m[:8] = [0, 2 ** (shift - 1), -(2 ** (shift - 1)), 2**31 - 1, -(2**31), -(2**31) + 1, 1, -1]
    b = rng.integers(-(2**shift) * 60, 2**shift * 60, cout).clip(-(2**31), 2**31 - 1)
    b[8:12] = [2**31 - 1, -(2**31), 2**31 - 1, -(2**31)]
    stage = {"multiplier": m.astype(np.int32), "bias": b.astype(np.int32), "shift": shift}
    zp = np.zeros(cin, np.int32)
    for s, p in (((1, 1), (1, 1)), ((2, 2), (0, 0))):
        want = _scalar(x, wt, zp, s, p, "int8", stage)
        if shift >= 12:
            assert np.unique(want).size > 100  # not just saturated outputs
        for isa in engine.supported_isas():
            got = _run_prepared(x, wt, zp, s, p, "int8", stage, isa)
            np.testing.assert_array_equal(got, want, err_msg=isa)
        # every channel's window fits when the extremes are left out
        sub = {k: (v[12:] if k != "shift" else v) for k, v in stage.items()}
        want = _scalar(x, wt[12:], zp, s, p, "int8", sub)
        for isa in engine.supported_isas():
            got = _run_prepared(x, wt[12:], zp, s, p, "int8", sub, isa)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} windows only")
