"""int8 depthwise convolution (onebit.runtime.netkernels.dwconv2d_int8) vs the NumPy oracle, every
ISA vs scalar bit for bit on boundary shapes (channels around the 16 / 32 / 64 blocks, odd
sizes, stride 1 / 2, padding), all output stages, threads, and bad input."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import netkernels as nk
from onebit.runtime import reference_net as ref
from onebit.runtime.engine import engine

from _conv8_cases import OUTPUTS, stage_params


def _cases():
    chans = (1, 3, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 96, 129)
    sizes = itertools.cycle([(1, 1), (2, 3), (7, 7), (9, 5), (17, 9), (5, 16), (8, 8)])
    geoms = itertools.cycle([(3, 2, 1), (3, 1, 1), (3, 2, 0), (1, 1, 0), (5, 2, 2), ((3, 1), (2, 1), (1, 0)),
                             (2, 2, 1)])
    outputs = itertools.cycle(OUTPUTS)
    out = []
    for c, _ in itertools.product(chans, range(3)):
        (h, w), (k, s, p), o = next(sizes), next(geoms), next(outputs)
        kh, kw = (k, k) if isinstance(k, int) else k
        ph, pw = (p, p) if isinstance(p, int) else p
        if h + 2 * ph < kh or w + 2 * pw < kw:
            k, s, p = 1, 1, 0
        out.append(pytest.param(c, h, w, k, s, p, o, id=f"c{c}-{h}x{w}-k{k}-s{s}-p{p}-{o}"))
    return out


def _data(seed, n, h, w, c, k, extreme=False):
    rng = np.random.default_rng(seed)
    kh, kw = (k, k) if isinstance(k, int) else k
    if extreme:  # |x * w| at its maximum: x = -128, w = -128 or 127 per channel
        x = np.full((n, h, w, c), -128, np.int8)
        wt = np.ascontiguousarray(np.broadcast_to(np.where(np.arange(c) % 2, 127, -128), (kh, kw, c)), np.int8)
    else:
        x = rng.integers(-128, 128, (n, h, w, c), dtype=np.int8)
        wt = rng.integers(-128, 128, (kh, kw, c), dtype=np.int8)
    return rng, x, wt


@pytest.mark.parametrize("c,h,w,k,s,p,output", _cases())
def test_dwconv8_equals_oracle_on_every_isa(c, h, w, k, s, p, output):
    seed = c * 100 + h * 10 + w
    rng, x, wt = _data(seed, 2, h, w, c, k)
    stage = stage_params(rng, c, output, 128 * 128 * 3)
    want = ref.dwconv2d_int8(x, wt, s, p, output, **stage)
    for isa in engine.supported_isas():
        for threads in (1, 3):
            got = nk.dwconv2d_int8(x, wt, stride=s, padding=p, output=output, **stage, isa=isa,
                                   threads=threads)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} threads={threads} seed={seed}")
    if output == "bits":  # padding bits past the channels are zero
        np.testing.assert_array_equal(bits.pack(bits.unpack(got, c)), got)


@pytest.mark.parametrize("c", (16, 33, 64))
def test_dwconv8_extreme_products_exact(c):
    """x = -128 and w = -128 / 127 everywhere: the largest products (2^14) stay exact."""
    _, x, wt = _data(c, 1, 6, 7, c, 5, extreme=True)
    want = ref.dwconv2d_int8(x, wt, 1, 2)
    assert want.max() == 25 * 128 * 128 and want.min() == -25 * 128 * 127
    for isa in engine.supported_isas():
        np.testing.assert_array_equal(nk.dwconv2d_int8(x, wt, stride=1, padding=2, isa=isa), want)


def test_dwconv8_equals_torch_depthwise():
    """The definition: PyTorch's grouped convolution (groups = C) with zero padding."""
    torch = pytest.importorskip("torch")
    _, x, wt = _data(5, 2, 9, 10, 24, 3)
    want = torch.nn.functional.conv2d(torch.from_numpy(x).permute(0, 3, 1, 2).double(),
                                      torch.from_numpy(wt).permute(2, 0, 1).unsqueeze(1).double(),
                                      stride=2, padding=1, groups=24)
    got = nk.dwconv2d_int8(x, wt, stride=2, padding=1)
    np.testing.assert_array_equal(got, want.permute(0, 2, 3, 1).numpy().astype(np.int32))


@pytest.mark.parametrize("bad,match", [
    (lambda x, w: nk.dwconv2d_int8(x.astype(np.uint8), w), "int8"),
    (lambda x, w: nk.dwconv2d_int8(x, np.ascontiguousarray(w[..., :3])), "channels"),
    (lambda x, w: nk.dwconv2d_int8(x, w[None]), "weight"),
    (lambda x, w: nk.dwconv2d_int8(x, w.astype(np.int16)), "int8"),
    (lambda x, w: nk.dwconv2d_int8(x, w, stride=0), "stride"),
    (lambda x, w: nk.dwconv2d_int8(x, w, padding=-1), "padding"),
    (lambda x, w: nk.dwconv2d_int8(x[:, :1, :1], w), "kernel"),
    (lambda x, w: nk.dwconv2d_int8(x, w, output="int8", multiplier=np.ones(8, np.int32),
                                   bias=np.zeros(8, np.int32), shift=40), "shift"),
    (lambda x, w: nk.dwconv2d_int8(x, w, output="bits"), "threshold"),
    (lambda x, w: nk.dwconv2d_int8(x, w, output="float", scale=np.ones(7, np.float32),
                                   bias=np.zeros(8, np.float32)), "scale"),
    (lambda x, w: nk.dwconv2d_int8(x, w, isa="nonesuch"), "ISA|isa"),
])
def test_dwconv8_bad_input_is_a_clear_error(bad, match):
    _, x, wt = _data(1, 1, 5, 5, 8, 3)
    with pytest.raises(ValueError, match=match):
        bad(x, wt)


def test_dwconv8_accumulator_bound_refused():
    """A kernel so large that kh*kw*128*128 can exceed int32 is refused, never wrapped."""
    x = np.zeros((1, 400, 400, 1), np.int8)
    with pytest.raises(ValueError, match="overflow"):
        nk.dwconv2d_int8(x, np.zeros((363, 363, 1), np.int8))


def _tricky_floats(rng, shape):
    """Normal values with a spread of magnitudes, some exact zeros and negative zeros."""
    v = (rng.standard_normal(shape) * 10.0 ** rng.integers(-3, 4, shape)).astype(np.float32)
    v[rng.random(shape) < 0.05] = 0.0
    v[rng.random(shape) < 0.05] = -0.0
    return v


@pytest.mark.parametrize("c,h,w,k,s,p,output", [c for c in _cases() if c.values[-1] == "float"] +
                         [pytest.param(c, 7, 6, 3, 2, 1, "float", id=f"c{c}-7x6-k3-s2-p1") for c in (4, 8, 9, 16, 17)])
def test_dwconv_float_equals_oracle_bitwise_on_every_isa(c, h, w, k, s, p, output):
    rng = np.random.default_rng(c * 7 + h)
    kh, kw = (k, k) if isinstance(k, int) else k
    x = _tricky_floats(rng, (2, h, w, c))
    wt = _tricky_floats(rng, (kh, kw, c))
    b = _tricky_floats(rng, (c,))
    want = ref.dwconv2d_float(x, wt, b, s, p)
    for isa in engine.supported_isas():
        for threads in (1, 2):
            got = nk.dwconv2d_float(x, wt, b, stride=s, padding=p, isa=isa, threads=threads)
            assert got.tobytes() == want.tobytes(), f"{isa} threads={threads}"


# Keras "same" with stride 2: the odd padding row / column after the input (padding_end), on
# both axes or one, around the channel blocks and on inputs where the last window is all padding
_UNEVEN = [pytest.param(c, h, w, k, s, p, e, id=f"c{c}-{h}x{w}-k{k}-s{s}-p{p}-e{e}")
           for c, (h, w), (k, s, p, e) in zip(
               (1, 15, 16, 17, 31, 33, 64, 65, 129, 8),
               itertools.cycle([(8, 8), (7, 6), (2, 3), (16, 9), (1, 4)]),
               itertools.cycle([(3, 2, (0, 0), (1, 1)), (3, 2, (0, 1), (1, 2)), (3, 1, (1, 0), (0, 2)),
                                (5, 2, (1, 2), (2, 1)), ((3, 1), 2, (0, 0), (2, 0))]))]


@pytest.mark.parametrize("c,h,w,k,s,p,e", _UNEVEN)
def test_dwconv_uneven_padding_equals_oracle_on_every_isa(c, h, w, k, s, p, e):
    """int8 (every output stage) and float32: every ISA equals the oracle bit for bit."""
    rng, x, wt = _data(c * 13 + h, 2, h, w, c, k)
    for output in OUTPUTS:
        stage = stage_params(rng, c, output, 128 * 128 * 25)
        want = ref.dwconv2d_int8(x, wt, s, p, output, padding_end=e, **stage)
        for isa in engine.supported_isas():
            got = nk.dwconv2d_int8(x, wt, stride=s, padding=p, padding_end=e, output=output, **stage, isa=isa,
                                   threads=2)
            np.testing.assert_array_equal(got, want, err_msg=f"{isa} {output}")
    xf, wf = _tricky_floats(rng, x.shape), _tricky_floats(rng, wt.shape)
    b = _tricky_floats(rng, (c,))
    want = ref.dwconv2d_float(xf, wf, b, s, p, padding_end=e)
    for isa in engine.supported_isas():
        got = nk.dwconv2d_float(xf, wf, b, stride=s, padding=p, padding_end=e, isa=isa, threads=2)
        assert got.tobytes() == want.tobytes(), isa


def test_dwconv_uneven_padding_equals_torch():
    """The definition: PyTorch's grouped convolution on the input zero padded 0 before, 1 after."""
    torch = pytest.importorskip("torch")
    _, x, wt = _data(11, 2, 8, 10, 24, 3)
    xp = torch.nn.functional.pad(torch.from_numpy(x).permute(0, 3, 1, 2).double(), (0, 1, 0, 1))
    want = torch.nn.functional.conv2d(xp, torch.from_numpy(wt).permute(2, 0, 1).unsqueeze(1).double(),
                                      stride=2, groups=24)
    got = nk.dwconv2d_int8(x, wt, stride=2, padding=0, padding_end=1)
    assert got.shape == (2, 4, 5, 24)
    np.testing.assert_array_equal(got, want.permute(0, 2, 3, 1).numpy().astype(np.int32))
    with pytest.raises(ValueError, match="padding"):
        nk.dwconv2d_int8(x, wt, padding_end=-1)


def test_dwconv_float_bad_input_is_a_clear_error():
    x = np.zeros((1, 5, 5, 8), np.float32)
    w = np.zeros((3, 3, 8), np.float32)
    with pytest.raises(ValueError, match="float32|dtype"):
        nk.dwconv2d_float(x.astype(np.float64), w, np.zeros(8, np.float32))
    with pytest.raises(ValueError, match="bias"):
        nk.dwconv2d_float(x, w, np.zeros(7, np.float32))
    with pytest.raises(ValueError, match="channels"):
        nk.dwconv2d_float(x, np.zeros((3, 3, 4), np.float32), np.zeros(8, np.float32))
