"""The simulation's float32 layers equal the engine's float kernels bit for bit (same documented
operation order: docs/kernels.md "float32 dense", src/cpp/onebit/{densef,pool}.h), and differ
from PyTorch's own float32 order only by rounding."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from onebit.convert.simulate import avgpool_f32, dense_f32, global_avgpool_f32
from onebit.runtime import netkernels as nk


# p >= 4 rows: AVX-512's outer-product kernel (row tails of 1-3, outputs across 16 / 64; at most
# 8 outputs: 8-row tiles, row tails of 1-7)
@pytest.mark.parametrize("p, n, o", [(5, 1, 3), (7, 8, 4), (3, 13, 9), (64, 130, 17), (2, 512, 10),
                                     (4, 1, 1), (9, 33, 65), (70, 257, 130), (6, 960, 64), (13, 7, 16),
                                     (23, 72, 8), (15, 9, 7)])
def test_simulate_dense_f32_equals_engine(isa, p, n, o):
    g = torch.Generator().manual_seed(n * 31 + o)
    # magnitudes spread over 2^-10..2^10 so that the summation order matters
    x = torch.randn(p, n, generator=g) * 2.0 ** torch.randint(-10, 11, (p, n), generator=g).float()
    w = torch.randn(o, n, generator=g)
    b = torch.randn(o, generator=g)
    ref = nk.dense_float(x.numpy(), w.numpy(), b.numpy(), isa=isa)
    out = dense_f32(x, w, b, block=64)  # small blocks: the row chunking is exercised too
    assert np.array_equal(out.numpy(), ref)
    torch_order = (x.double() @ w.double().T + b.double()).numpy()
    bound = (n + 1) * 2.0**-23 * (np.abs(x.double().numpy()) @ np.abs(w.double().numpy()).T + np.abs(b.numpy()))
    assert np.all(np.abs(out.numpy() - torch_order) <= bound)


@pytest.mark.parametrize("k, s, p, cip, hw", [(3, 2, 1, True, (9, 8)), (3, 2, 1, False, (9, 8)),
                                              (2, 2, 0, True, (6, 6)), (5, 3, 2, False, (11, 4))])
def test_simulate_avgpool_f32_equals_engine(isa, k, s, p, cip, hw):
    g = torch.Generator().manual_seed(k + 10 * s)
    x = torch.randn(2, 5, *hw, generator=g) * 2.0 ** torch.randint(-8, 9, (2, 5, *hw), generator=g).float()
    out = avgpool_f32(x, [k, k], [s, s], [p, p], cip)
    ref = nk.avgpool2d_float(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()), k, s, p,
                             count_include_pad=cip, isa=isa)
    assert np.array_equal(out.permute(0, 2, 3, 1).numpy(), ref)
    torch_ref = F.avg_pool2d(x.double(), k, s, p, count_include_pad=cip)
    assert torch.allclose(out.double(), torch_ref, rtol=1e-5, atol=1e-5 * x.abs().max().item())


def test_simulate_global_avgpool_f32_equals_engine(isa):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(3, 7, 5, 6, generator=g) * 2.0 ** torch.randint(-8, 9, (3, 7, 5, 6), generator=g).float()
    out = global_avgpool_f32(x)
    ref = nk.global_avgpool_float(np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy()), isa=isa)
    assert np.array_equal(out.numpy(), ref)


@pytest.mark.parametrize("pixels, c", [(0, 3), (1, 1), (5, 15), (9, 16), (40, 17), (300, 100), (3000, 64)])
def test_affine_float_equals_numpy_float32(isa, pixels, c):
    """x * scale + bias in float32 with two roundings (NumPy's float32 ops), NaN and infinities
    included, every ISA and thread count."""
    rng = np.random.default_rng(pixels * 7 + c)
    x = (rng.standard_normal((pixels, c)) * 2.0 ** rng.integers(-20, 21, (pixels, c))).astype(np.float32)
    specials = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-40], np.float32)
    x.flat[: min(x.size, specials.size)] = specials[: min(x.size, specials.size)]
    scale = rng.standard_normal(c).astype(np.float32)
    bias = rng.standard_normal(c).astype(np.float32)
    want = (x * scale) + bias
    for threads in (1, 2, 3):
        got = nk.affine_float(x, scale, bias, isa=isa, threads=threads)
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_affine_float_rejects_bad_shapes():
    x = np.zeros((4, 3), np.float32)
    with pytest.raises(ValueError, match="scale"):
        nk.affine_float(x, np.zeros(2, np.float32), np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="pixels, channels"):
        nk.affine_float(np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros(3, np.float32))
