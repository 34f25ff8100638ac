"""int8 convolution / int8 dense (onebit.runtime.netkernels) vs the NumPy oracle, every SIMD
ISA vs scalar on boundary shapes, all output stages, the int32 accumulator bound, threads."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine

from _conv8_cases import OUTPUTS, simd, stage_params  # noqa: F401 (simd: fixture)


def _cases():
    """Boundary grid: Cin and Cout at word / vector boundaries, H/W in {1,2,3,7,9,17}, odd
    strides and paddings, uint8 and int8 input, scalar and per-channel zero points, all
    output stages; a fixed-seed cycle through the combinations keeps the run short."""
    cins = (1, 3, 7, 63, 64, 65, 127, 129)
    couts = (1, 7, 15, 16, 17, 63, 64, 65, 129)
    sizes = itertools.cycle([(1, 1), (2, 3), (3, 2), (7, 7), (9, 5), (17, 9), (5, 17)])
    geoms = itertools.cycle([(3, 1, 1), (1, 1, 0), (3, 2, 1), (5, 1, 2), (3, 3, 0), (7, 2, 3),
                             (2, 1, 1), (5, 3, 1), ((3, 1), (2, 1), (1, 0))])
    dtypes = itertools.cycle(["uint8", "int8", "uint8"])
    outputs = itertools.cycle(OUTPUTS)
    out = []
    for cin, cout in itertools.product(cins, couts):
        (h, w), (k, s, p), dt, o = next(sizes), next(geoms), next(dtypes), next(outputs)
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (p, p) if isinstance(p, int) else p
        if h + 2 * ph < kh or w + 2 * pw < kw:
            k, s, p = 1, 1, 0
        out.append(pytest.param(cin, cout, h, w, k, s, p, dt, o,
                                id=f"ci{cin}-co{cout}-{h}x{w}-k{k}-s{s}-p{p}-{dt}-{o}"))
    return out


CASES = _cases()


def _data(seed, n, h, w, cin, cout, k, dtype):
    rng = np.random.default_rng(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    if dtype == "uint8":
        x = rng.integers(0, 256, (n, h, w, cin), dtype=np.uint8)
        zp = rng.integers(0, 256, cin).astype(np.int32) if cin % 2 else int(rng.integers(0, 256))
    else:
        x = rng.integers(-128, 128, (n, h, w, cin), dtype=np.int8)
        zp = rng.integers(-128, 128, cin).astype(np.int32) if cin % 2 else 0
    wt = rng.integers(-128, 128, (cout, kh, kw, cin), dtype=np.int8)
    return rng, x, wt, zp


@pytest.mark.parametrize("cin,cout,h,w,k,s,p,dt,output", CASES)
def test_network_conv8_equals_oracle_and_simd(cin, cout, h, w, k, s, p, dt, output):
    seed = cin * 1000 + cout
    rng, x, wt, zp = _data(seed, 2, h, w, cin, cout, k, dt)
    y_scale = int(np.sqrt(wt[0].size) * 128 * 100)
    stage = stage_params(rng, cout, output, y_scale)
    want = ref.conv2d_int8(x, wt, s, p, zp, output, **stage)
    got = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                         isa="scalar")
    np.testing.assert_array_equal(got, want, err_msg=f"scalar seed={seed}")
    if output == "bits":  # output channel padding bits are zero
        np.testing.assert_array_equal(bits.pack(bits.unpack(got, cout)), got)
    for isa in engine.supported_isas():
        got = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                             isa=isa)
        np.testing.assert_array_equal(got, want, err_msg=f"{isa} seed={seed}")


@pytest.mark.parametrize("output", OUTPUTS)
def test_network_conv8_simd_equals_scalar_first_layer(simd, output):
    """The typical first layer: 3-channel uint8 image, 3x3 (and 7x7 stride 2) convs."""
    for k, s, p, h in ((3, 1, 1, 17), (7, 2, 3, 23)):
        rng, x, wt, _ = _data(k, 2, h, h + 2, 3, 64, k, "uint8")
        zp = np.array([124, 116, 104], np.int32)  # ImageNet mean * 255: padding means real 0
        stage = stage_params(rng, 64, output, 20000)
        a = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                           isa=simd)
        b = nk.conv2d_int8(x, wt, stride=s, padding=p, zero_point=zp, output=output, **stage,
                           isa="scalar")
        np.testing.assert_array_equal(a, b)


def test_network_conv8_padding_means_real_zero():
    """A constant image equal to its zero point is real zero everywhere: every output is 0,
    including at the borders (the zero point is the padding value)."""
    x = np.full((1, 5, 5, 3), 77, np.uint8)
    wt = np.random.default_rng(0).integers(-128, 128, (8, 3, 3, 3), dtype=np.int8)
    for isa in engine.supported_isas():
        y = nk.conv2d_int8(x, wt, padding=1, zero_point=77, isa=isa)
        assert (y == 0).all(), isa


def test_network_conv8_matches_torch_conv():
    """On real values (x - zp), the engine equals F.conv2d with zero padding."""
    torch = pytest.importorskip("torch")
    rng, x, wt, zp = _data(4, 2, 9, 8, 3, 16, 3, "uint8")
    want = torch.nn.functional.conv2d(
        torch.from_numpy(x.astype(np.float64) - zp).permute(0, 3, 1, 2),
        torch.from_numpy(wt.astype(np.float64)).permute(0, 3, 1, 2), stride=2, padding=1)
    got = nk.conv2d_int8(x, wt, stride=2, padding=1, zero_point=zp)
    np.testing.assert_array_equal(got, want.permute(0, 2, 3, 1).numpy().astype(np.int64))


def test_network_conv8_threads_identical():
    rng, x, wt, zp = _data(9, 3, 17, 13, 65, 33, 3, "int8")
    for output in OUTPUTS:
        stage = stage_params(rng, 33, output, 100000)
        for isa in engine.supported_isas():
            one = nk.conv2d_int8(x, wt, stride=2, padding=1, zero_point=zp, output=output,
                                 **stage, isa=isa, threads=1)
            for t in (2, 3):
                two = nk.conv2d_int8(x, wt, stride=2, padding=1, zero_point=zp, output=output,
                                     **stage, isa=isa, threads=t)
                np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("fin", [1, 7, 63, 64, 65, 129, 512])
@pytest.mark.parametrize("output", OUTPUTS)
def test_network_dense_int8_equals_oracle_and_simd(fin, output):
    rng = np.random.default_rng(fin)
    x = rng.integers(-127, 128, (3, fin), dtype=np.int8)
    wt = rng.integers(-128, 128, (17, fin), dtype=np.int8)
    stage = stage_params(rng, 17, output, int(np.sqrt(fin) * 127 * 40))
    want = ref.dense_int8(x, wt, 0, output, **stage)
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.dense_int8(x, wt, output=output, **stage, isa=isa), want,
                                      err_msg=isa)


def test_network_conv8_accumulator_bound_is_exact_and_enforced():
    """K * max|x - zp| * 128 <= 2^31 - 1 is accepted and exact at the extreme
    (y = -K*255*128 close to -2^31); one tap more is refused, never wrapped."""
    k_max = (2**31 - 1) // (255 * 128)
    x = np.full((1, k_max), 255, np.uint8)
    wt = np.full((2, k_max), -128, np.int8)
    wt[1, ::2] = 127
    want = ref.dense_int8(x, wt)
    assert want[0, 0] == -k_max * 255 * 128
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.dense_int8(x, wt, isa=isa), want)
    with pytest.raises(ValueError, match="overflow the int32 accumulator"):
        nk.dense_int8(np.full((1, k_max + 1), 255, np.uint8), np.ones((1, k_max + 1), np.int8))


def test_network_conv8_int8_stage_extremes():
    """Stage (b) with int32-extreme multipliers and accumulators: exact int64 math."""
    rng = np.random.default_rng(11)
    fin = 4000
    x = np.full((2, fin), -128, np.int8)
    x[1] = 127
    wt = rng.choice(np.array([-128, 127], np.int8), (40, fin))
    mult = np.array([2**31 - 1, -(2**31), 1, -1] * 10, np.int32)
    bias = np.array([2**31 - 1, -(2**31)] * 20, np.int32)
    for shift in (1, 17, 31):
        want = ref.dense_int8(x, wt, 0, "int8", multiplier=mult, bias=bias, shift=shift)
        for isa in engine.supported_isas():
            got = nk.dense_int8(x, wt, output="int8", multiplier=mult, bias=bias, shift=shift,
                                isa=isa)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} shift={shift}")


@pytest.mark.parametrize("k, s, pads, h, w, cin", [
    (3, 2, ((0, 0), (1, 1)), 8, 8, 3),       # Keras "same", stride 2, even input: after only
    (7, 2, ((2, 2), (3, 3)), 12, 14, 3),     # 7x7 stride 2 on an even image
    (11, 4, ((3, 3), (4, 4)), 20, 20, 3),    # AlexNet / XNOR-Net first layer
    (3, 1, ((0, 1), (2, 0)), 5, 6, 65),      # per-axis, bigger before than after
    (1, 1, ((0, 0), (0, 0)), 4, 4, 64),
], ids=["k3s2-0+1", "k7s2-2+3", "k11s4-3+4", "k3-axes", "k1"])
def test_network_conv8_padding_before_and_after(k, s, pads, h, w, cin):
    """Padding before (top, left) and after (bottom, right) the input: every ISA equals the
    oracle, which pads with the zero point (real 0) on each side as asked."""
    (ph, pw), (eh, ew) = pads
    for dt in ("uint8", "int8"):
        rng, x, wt, zp = _data(k * 100 + h, 2, h, w, cin, 20, k, dt)
        for output in OUTPUTS:
            stage = stage_params(rng, 20, output, 20000)
            want = ref.conv2d_int8(x, wt, s, (ph, pw), zp, output, padding_end=(eh, ew), **stage)
            assert want.shape[1:3] == ((h + ph + eh - k) // s + 1, (w + pw + ew - k) // s + 1)
            for isa in engine.supported_isas():
                got = nk.conv2d_int8(x, wt, stride=s, padding=(ph, pw), padding_end=(eh, ew), zero_point=zp,
                                     output=output, **stage, isa=isa)
                np.testing.assert_array_equal(got, want, err_msg=f"{isa} {dt} {output}")
    with pytest.raises(ValueError, match="padding >= 0"):
        nk.conv2d_int8(x, wt, stride=s, padding=0, padding_end=-1, zero_point=zp)
