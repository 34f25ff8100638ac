"""NumPy oracles of the network kernels (pooling, residual add, int8 conv/dense, float dense).

Each function restates the math of ``docs/format.md`` §5-6 and ``docs/kernels.md`` ("Network
kernels") in plain NumPy, written independently of the C++ code (padding by identity elements
instead of skipping taps), so the engine can be tested against it. Integer results are exact;
the float oracles reproduce the engine's summation order so they are exact too. No torch.
"""
from __future__ import annotations

import numpy as np

from onebit import bits
from onebit.runtime.geometry import output_size
from onebit.runtime.reference import output_stage

__all__ = [
    "maxpool2d_bits", "maxpool2d_int8", "maxpool2d_float", "avgpool2d_int8", "avgpool2d_float",
    "global_avgpool_int8", "global_avgpool_int8_float", "global_avgpool_float", "add_int8",
    "add_float", "conv2d_int8", "dwconv2d_int8", "dwconv2d_float", "dense_int8", "dense_float", "round_half_up_div",
]


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _windows(xp: np.ndarray, k, s, oh: int, ow: int):
    """Yield (i, j, tap) for each window offset: tap[n, oy, ox, c] = xp[n, oy*sh+i, ox*sw+j, c]."""
    (kh, kw), (sh, sw) = k, s
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw, :]


def _pool(x, kernel_size, stride, padding, fill, combine, init, ceil_mode=False):
    k = _pair(kernel_size)
    s = _pair(stride if stride is not None else kernel_size)
    p = _pair(padding)
    n, h, w, c = x.shape
    oh, ow = output_size(h, k[0], s[0], p[0], ceil_mode), output_size(w, k[1], s[1], p[1], ceil_mode)
    # bottom/right: the padding, or as far as ceil_mode's last window reaches
    eh, ew = max(p[0], (oh - 1) * s[0] + k[0] - h - p[0]), max(p[1], (ow - 1) * s[1] + k[1] - w - p[1])
    xp = np.full((n, h + p[0] + eh, w + p[1] + ew, c), fill, dtype=x.dtype)
    xp[:, p[0]:p[0] + h, p[1]:p[1] + w] = x
    acc = init(n, oh, ow, c)
    for _, _, tap in _windows(xp, k, s, oh, ow):
        acc = combine(acc, tap)
    return acc, k, s, p, (oh, ow)


def maxpool2d_bits(x, kernel_size, stride=None, padding=0, ceil_mode=False) -> np.ndarray:
    """Max of +-1 values on packed words = AND of the bits (bit 1 = -1); padding = all ones."""
    acc, *_ = _pool(np.asarray(x, np.uint64), kernel_size, stride, padding, np.uint64(2**64 - 1),
                    np.bitwise_and, lambda *sh: np.full(sh, 2**64 - 1, np.uint64), ceil_mode)
    return acc


def maxpool2d_int8(x, kernel_size, stride=None, padding=0, ceil_mode=False) -> np.ndarray:
    """int8 max pooling; padding taps are -128 (the identity of max)."""
    acc, *_ = _pool(np.asarray(x, np.int8), kernel_size, stride, padding, -128, np.maximum,
                    lambda *sh: np.full(sh, -128, np.int8), ceil_mode)
    return acc


def maxpool2d_float(x, kernel_size, stride=None, padding=0, ceil_mode=False) -> np.ndarray:
    """float32 max pooling; padding taps are -inf. Taps folded as acc = acc if acc > t else t."""
    x = np.asarray(x, np.float32)
    acc, *_ = _pool(x, kernel_size, stride, padding, np.float32(-np.inf),
                    lambda acc, t: np.where(acc > t, acc, t),
                    lambda *sh: np.full(sh, -np.inf, np.float32), ceil_mode)
    return acc


def _counts(h, w, k, s, p, oh, ow, count_include_pad):
    """Divisor per window: the in-bounds taps, or with ``count_include_pad`` the taps inside the
    padded input (k[0]*k[1] except ceil_mode's last windows), PyTorch's rule."""
    eh, ew = max(p[0], (oh - 1) * s[0] + k[0] - h - p[0]), max(p[1], (ow - 1) * s[1] + k[1] - w - p[1])
    ones = np.zeros((h + p[0] + eh, w + p[1] + ew), np.int64)
    if count_include_pad:
        ones[:h + 2 * p[0], :w + 2 * p[1]] = 1
    else:
        ones[p[0]:p[0] + h, p[1]:p[1] + w] = 1
    cnt = np.zeros((oh, ow), np.int64)
    for _, _, tap in _windows(ones[None, :, :, None], k, s, oh, ow):
        cnt += tap[0, :, :, 0]
    return cnt


def round_half_up_div(s, d) -> np.ndarray:
    """round(s / d) with halves rounded up (towards +inf): floor((2s + d) / 2d), integers."""
    s = np.asarray(s, np.int64)
    d = np.asarray(d, np.int64)
    return np.floor_divide(2 * s + d, 2 * d)


def avgpool2d_int8(x, kernel_size, stride=None, padding=0, count_include_pad=True,
                   ceil_mode=False) -> np.ndarray:
    """int8 average pooling: clamp(round_half_up(sum / d), -127, 127)."""
    x = np.asarray(x, np.int8)
    acc, k, s, p, (oh, ow) = _pool(x.astype(np.int64), kernel_size, stride, padding, 0, np.add,
                                   lambda *sh: np.zeros(sh, np.int64), ceil_mode)
    d = _counts(x.shape[1], x.shape[2], k, s, p, oh, ow, count_include_pad)[None, :, :, None]
    return np.clip(round_half_up_div(acc, d), -127, 127).astype(np.int8)


def avgpool2d_float(x, kernel_size, stride=None, padding=0, count_include_pad=True,
                    ceil_mode=False) -> np.ndarray:
    """float32 average pooling: taps summed in window order from +0.0 (a padded tap adds +0.0,
    which never changes a sum that started at +0.0), then divided by float32(d)."""
    x = np.asarray(x, np.float32)
    acc, k, s, p, (oh, ow) = _pool(x, kernel_size, stride, padding, np.float32(0), np.add,
                                   lambda *sh: np.zeros(sh, np.float32), ceil_mode)
    d = _counts(x.shape[1], x.shape[2], k, s, p, oh, ow, count_include_pad)
    return (acc / d.astype(np.float32)[None, :, :, None]).astype(np.float32)


def global_avgpool_int8(x) -> np.ndarray:
    """(N, H, W, C) int8 -> (N, C) int8 with d = H*W, same rounding as avgpool2d_int8."""
    x = np.asarray(x, np.int8)
    s = x.astype(np.int64).sum(axis=(1, 2))
    return np.clip(round_half_up_div(s, x.shape[1] * x.shape[2]), -127, 127).astype(np.int8)


def global_avgpool_int8_float(x, scale: float = 1.0) -> np.ndarray:
    """(N, H, W, C) int8 -> (N, C) float32: float32(sum) * float32(scale / (H*W))."""
    x = np.asarray(x, np.int8)
    s = x.astype(np.int64).sum(axis=(1, 2))
    m = np.float32(np.float64(np.float32(scale)) / (x.shape[1] * x.shape[2]))
    return (s.astype(np.float32) * m).astype(np.float32)


def global_avgpool_float(x) -> np.ndarray:
    """(N, H, W, C) float32 -> (N, C): pixels summed in row-major order, divided by H*W."""
    x = np.asarray(x, np.float32)
    n, h, w, c = x.shape
    acc = np.zeros((n, c), np.float32)
    for px in x.reshape(n, h * w, c).transpose(1, 0, 2):
        acc = acc + px
    return (acc / np.float32(h * w)).astype(np.float32)


def add_int8(a, b, ma: int, mb: int, shift: int) -> np.ndarray:
    """clamp((a*ma + b*mb + 2^(shift-1)) >> shift, -127, 127), exact in int64."""
    t = np.asarray(a, np.int64) * int(ma) + np.asarray(b, np.int64) * int(mb) + (1 << (shift - 1))
    return np.clip(t >> shift, -127, 127).astype(np.int8)


def add_float(a, b) -> np.ndarray:
    return (np.asarray(a, np.float32) + np.asarray(b, np.float32)).astype(np.float32)


def _geometry(h, wd, kh, kw, stride, padding, padding_end):
    """((sh, sw), (ph, pw), (eh, ew), (oh, ow)) of a KHxKW convolution of an HxW input:
    ``padding`` before it, ``padding_end`` after it (default ``padding``)."""
    (sh, sw), (ph, pw) = _pair(stride), _pair(padding)
    eh, ew = (ph, pw) if padding_end is None else _pair(padding_end)
    oh, ow = output_size(h, kh, sh, ph, padding_end=eh), output_size(wd, kw, sw, pw, padding_end=ew)
    return (sh, sw), (ph, pw), (eh, ew), (oh, ow)


def conv2d_int8(x, weight, stride=1, padding=0, zero_point=0, output="int32", padding_end=None,
                **stage) -> np.ndarray:
    """int8 conv: the input is padded with its zero point (real 0; ``padding`` before it,
    ``padding_end`` after it, default ``padding``), then y = sum over taps and channels of
    (x - zp) * w in int64, then the output stage."""
    x = np.asarray(x)
    w = np.asarray(weight, np.int64)
    n, h, wd, cin = x.shape
    cout, kh, kw, _ = w.shape
    (sh, sw), (ph, pw), (eh, ew), (oh, ow) = _geometry(h, wd, kh, kw, stride, padding, padding_end)
    zp = np.broadcast_to(np.asarray(zero_point, np.int64), (cin,))
    xp = np.broadcast_to(zp, (n, h + ph + eh, wd + pw + ew, cin)).copy()
    xp[:, ph:ph + h, pw:pw + wd] = x
    xp -= zp
    y = np.zeros((n, oh, ow, cout), np.int64)
    for i, j, tap in _windows(xp, (kh, kw), (sh, sw), oh, ow):
        y += tap @ w[:, i, j, :].T
    return output_stage(y, output, **stage)


def dwconv2d_int8(x, weight, stride=1, padding=0, output="int32", padding_end=None, **stage) -> np.ndarray:
    """int8 depthwise conv (weight (KH, KW, C)): zero padding (real 0; ``padding`` before the
    input, ``padding_end`` after it, default ``padding``), y[c] = sum over taps of
    x[c] * w[i, j, c] in int64, then the output stage."""
    x = np.asarray(x, np.int64)
    w = np.asarray(weight, np.int64)
    n, h, wd, c = x.shape
    kh, kw, _ = w.shape
    (sh, sw), (ph, pw), (eh, ew), (oh, ow) = _geometry(h, wd, kh, kw, stride, padding, padding_end)
    xp = np.zeros((n, h + ph + eh, wd + pw + ew, c), np.int64)
    xp[:, ph:ph + h, pw:pw + wd] = x
    y = np.zeros((n, oh, ow, c), np.int64)
    for i, j, tap in _windows(xp, (kh, kw), (sh, sw), oh, ow):
        y += tap * w[i, j]
    return output_stage(y, output, **stage)


def dwconv2d_float(x, weight, bias, stride=1, padding=0, padding_end=None) -> np.ndarray:
    """float32 depthwise conv in the engine's order: acc = +0.0, acc = acc + float32(x * w) over the
    in-bounds taps in row-major order (padded taps skipped; ``padding_end`` after the input,
    default ``padding``), then acc + bias."""
    x = np.asarray(x, np.float32)
    w = np.asarray(weight, np.float32)
    n, h, wd, c = x.shape
    kh, kw, _ = w.shape
    (sh, sw), (ph, pw), (eh, ew), (oh, ow) = _geometry(h, wd, kh, kw, stride, padding, padding_end)
    y = np.zeros((n, oh, ow, c), np.float32)
    for oy in range(oh):
        for ox in range(ow):
            acc = np.zeros((n, c), np.float32)
            for i in range(kh):
                iy = oy * sh - ph + i
                for j in range(kw):
                    ix = ox * sw - pw + j
                    if 0 <= iy < h and 0 <= ix < wd:
                        acc = acc + x[:, iy, ix, :] * w[i, j]
            y[:, oy, ox, :] = acc + np.asarray(bias, np.float32)
    return y


def dense_int8(x, weight, zero_point=0, output="int32", **stage) -> np.ndarray:
    """int8 dense = 1x1 conv on a 1x1 image: y = (x - zp) @ w.T in int64, then the stage."""
    x = np.asarray(x, np.int64) - np.asarray(zero_point, np.int64)
    return output_stage(x @ np.asarray(weight, np.int64).T, output, **stage)


def dense_float(x, weight, bias=None) -> np.ndarray:
    """float32 dense with the engine's summation order (onebit/densef.h): 8 partial sums over
    i % 8 (products rounded to float32, zero products past `in`), then
    ((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7)) + bias."""
    x = np.asarray(x, np.float32)
    w = np.asarray(weight, np.float32)
    n, fin = x.shape
    fout = w.shape[0]
    in8 = -(-fin // 8) * 8
    xp = np.zeros((n, in8), np.float32)
    xp[:, :fin] = x
    wp = np.zeros((fout, in8), np.float32)
    wp[:, :fin] = w
    acc = np.zeros((n, fout, 8), np.float32)
    for c in range(in8 // 8):
        acc = acc + xp[:, None, 8 * c:8 * c + 8] * wp[None, :, 8 * c:8 * c + 8]
    a = [acc[..., j] for j in range(8)]
    s = ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
    b = np.zeros(fout, np.float32) if bias is None else np.asarray(bias, np.float32)
    return (s + b).astype(np.float32)
