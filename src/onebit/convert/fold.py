"""Folding float parameters into the engine's integer output stages (docs/format.md §5).

Every producer (binary conv / dense, first int8 conv) yields an integer accumulator ``y`` per
output channel ``c``; whatever float math follows it up to the next layer (conv bias, the
per-channel XNOR scale, BatchNorm) is one affine map

    z[c] = a[c] * y + b[c]                                                       (1)

(BatchNorm in eval mode: ``bn(v) = gamma * (v - mu) / sqrt(var + eps) + beta``, so a producer
``v = s*y + bias`` gives ``a = gamma*s/sigma`` and ``b = gamma*(bias - mu)/sigma + beta``).
The consumer of ``z`` decides the stage:

- sign (next layer binary): threshold + direction, see :func:`threshold_stage`,
- ClipBlock (BNN-Clip int8): multiplier, bias, shift, see :func:`int8_stage`,
- float (classifier head): scale = a, bias = b as float32 (stage (c)).

All math in float64, NumPy only (the callers convert torch tensors).
"""
from __future__ import annotations

import math

import numpy as np

from onebit.errors import OnebitError


class ConversionError(OnebitError):
    """The model cannot be converted (unsupported layer, order, or parameter range)."""


def bn_affine(bn) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) of an eval-mode BatchNorm: bn(v) = scale*v + shift, float64.

    scale = gamma / sqrt(var + eps), shift = beta - mu * scale. A BN without affine params
    has gamma = 1, beta = 0.
    """
    var = bn.running_var.detach().double().cpu().numpy()
    mu = bn.running_mean.detach().double().cpu().numpy()
    sigma = np.sqrt(var + bn.eps)
    gamma = bn.weight.detach().double().cpu().numpy() if bn.weight is not None else np.ones_like(mu)
    beta = bn.bias.detach().double().cpu().numpy() if bn.bias is not None else np.zeros_like(mu)
    scale = gamma / sigma
    return scale, beta - mu * scale


def threshold_stage(a: np.ndarray, b: np.ndarray, k: int, positive_slope=None):
    """BN + sign -> integer threshold t and direction d (docs/format.md §5 (a)).

    With z = a*y + b and the output bit = (z < 0) (bit 1 means -1, sign(0) = +1):
      a > 0:  z >= 0  <=>  y >= -b/a  <=>  y >= ceil(-b/a) =: t,   bit = (y < t), d = +1
      a < 0:  z >= 0  <=>  y <= -b/a  <=>  y <= floor(-b/a) =: t,  bit = (y > t), d = -1
      a = 0:  z = b is constant: bit = 1 always (t = K+1, d = +1) if b < 0, else bit = 0 always
              (t = -K-1, d = +1); y lies in [-K, K] so thresholds outside it make constants.
    ``positive_slope`` (bool per channel, optional) marks channels whose activation before the
    sign is x -> max(x, 0)-like (ReLU, PReLU with slope <= 0): sign is then +1 always.
    Thresholds are clamped to [-K-1, K+1] (same outputs for every reachable y) so they fit int32.
    """
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    t = np.zeros(a.shape, np.int64)
    d = np.ones(a.shape, np.int8)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        tau = -b / a
    pos, neg, zero = a > 0, a < 0, a == 0
    # clamp tau first: ceil/floor of a huge float is meaningless beyond [-K-1, K+1]
    tau = np.clip(np.nan_to_num(tau, nan=0.0, posinf=k + 1, neginf=-k - 1), -k - 1, k + 1)
    t[pos] = np.ceil(tau[pos]).astype(np.int64)
    t[neg] = np.floor(tau[neg]).astype(np.int64)
    # -b/a can round (or underflow) across an integer: settle t against z = a*y + b itself so
    # that bit == (a*y + b < 0) holds exactly in float64 for every y (a few steps at most)
    for _ in range(4):
        z_t, z_p, z_n = a * t + b, a * (t - 1) + b, a * (t + 1) + b
        up = (pos & (z_t < 0)) | (neg & (z_n >= 0))
        down = (pos & (z_p >= 0)) | (neg & (z_t < 0))
        t = np.clip(t + up - down, -k - 1, k + 1)
    d[neg] = -1
    t[zero & (b < 0)] = k + 1
    t[zero & (b >= 0)] = -k - 1
    if positive_slope is not None:  # constant +1 (bit 0): y < -K-1 never holds
        const = np.asarray(positive_slope, bool)
        t[const] = -k - 1
        d[const] = 1
    if not np.isfinite(a).all() or not np.isfinite(b).all():
        raise ConversionError("non-finite BatchNorm / scale parameters cannot be folded")
    return t.astype(np.int32), d


def int8_stage(a: np.ndarray, b: np.ndarray, clip_scale: float, k: int):
    """BN + ClipBlock -> fixed point (M, B, S) (docs/format.md §5 (b), BNN-Clip).

    The clip block computes q = clamp(round(z / s), -127, 127) with s = clip / 127. With (1):
      z / s = (a/s) * y + b/s  ~=  (M * y + B) / 2^S,   M = round(a/s * 2^S), B = round(b/s * 2^S)
    and the engine evaluates q = clamp((y*M + B + 2^(S-1)) >> S, -127, 127) in int64 (rounding
    half up). S is the largest shift in [1, 31] that keeps |M| and |B| within int32, so the
    relative error of the multiplier is <= 2^-(S+1) / |a/s|; the int64 product cannot overflow
    because |y| <= K < 2^31.
    """
    a = np.asarray(a, np.float64) / clip_scale
    b = np.asarray(b, np.float64) / clip_scale
    if not np.isfinite(a).all() or not np.isfinite(b).all():
        raise ConversionError("non-finite BatchNorm / clip parameters cannot be folded")
    lim = 2.0**31 - 1
    big = max(float(np.abs(a).max(initial=0.0)), float(np.abs(b).max(initial=0.0)))
    # largest S with big * 2^S <= 2^31 - 2 (rounding may add 0.5)
    s = 31 if big * 2.0**31 <= lim - 1 else math.floor(math.log2((lim - 1) / big))
    if s < 1:
        raise ConversionError(f"int8 stage: multiplier/bias magnitude {big:.3g} too large for a "
                              f"31-bit fixed point (clip scale {clip_scale:.3g})")
    m = np.round(a * 2.0**s).astype(np.int64)
    bb = np.round(b * 2.0**s).astype(np.int64)
    assert np.abs(m).max(initial=0) <= lim and np.abs(bb).max(initial=0) <= lim
    assert k < 2**31
    return m.astype(np.int32), bb.astype(np.int32), int(s)


def quantize_weights_int8(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel symmetric int8: w[o] ~= q[o] * s[o], s[o] = max|w[o]| / 127, q in [-127, 127].

    An all-zero channel gets s = 1 (q = 0). Axis 0 is the output channel.
    """
    w = np.asarray(w, np.float64)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    s = np.where(amax > 0, amax / 127.0, 1.0)
    q = np.clip(np.round(w / s.reshape((-1,) + (1,) * (w.ndim - 1))), -127, 127).astype(np.int8)
    return q, s


#: Weight bits of a first layer over bit planes (``bconv2d_planes``): odd integers in [-255, 255],
#: 256 levels like int8.
PLANE_WEIGHT_BITS = 8


def quantize_weights_odd(w: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel odd-integer grid: w[o] ~= v[o] * s[o] with v odd in [-(2^M-1), 2^M-1],
    s[o] = max|w[o]| / (2^M - 1); v is the nearest odd integer, 2*round((w/s - 1)/2) + 1 (a grid
    without 0: each v is a sum of M +-1 weight planes, ``onebit.bitplanes.odd_weight_planes``).
    An all-zero channel gets s = 0 (v = 1): the folded stage sees a constant channel.
    Axis 0 is the output channel."""
    w = np.asarray(w, np.float64)
    top = (1 << bits) - 1
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1)
    s = amax / top
    r = w / np.where(amax > 0, s, 1.0).reshape((-1,) + (1,) * (w.ndim - 1))
    v = np.clip(2 * np.round((r - 1) / 2) + 1, -top, top).astype(np.int64)
    return v, s


def odd_weight_bits(w: np.ndarray, rtol: float = 1e-5) -> int:
    """The fewest weight planes M whose odd grid (:func:`quantize_weights_odd`) holds every weight:
    the smallest M in [1, PLANE_WEIGHT_BITS] with ``|w - s[o] v| <= rtol * max|w[o]|`` for every
    weight (weights trained on a grid of 2^M levels, up to float rounding), else
    ``PLANE_WEIGHT_BITS`` (the rounding then is that of the 8-bit grid). Axis 0 is the output channel."""
    w = np.asarray(w, np.float64)
    amax = np.abs(w.reshape(w.shape[0], -1)).max(axis=1).reshape((-1,) + (1,) * (w.ndim - 1))
    for m in range(1, PLANE_WEIGHT_BITS):
        v, s = quantize_weights_odd(w, m)
        if np.all(np.abs(w - v * s.reshape(amax.shape)) <= rtol * amax):
            return m
    return PLANE_WEIGHT_BITS


def first_layer(w: np.ndarray, bias, mean, std):
    """Fold the input normalization into the first float conv and quantize it (uint8 input).

    The model sees x = (u/255 - mean[ci]) / std[ci] for a uint8 pixel u, so
      conv(x)[o] = sum w[o,ci,.] * (u - 255*mean[ci]) / (255*std[ci]) + bias[o].
    With w' = w / (255*std[ci]) and the integer zero point zp[ci] = round(255*mean[ci]):
      conv(x)[o] = sum w'[o] * (u - zp) + sum_taps w'[o] * (zp - 255*mean)  + bias[o]
    The engine pads with u = zp (a padded pixel is then the real value ~0, exactly 0 in the
    first term). The second term is exact for interior outputs and folded into the bias; at the
    border it over-counts the padded taps by at most 0.5/(255*std) per tap (the rounding of zp).
    w' is quantized per output channel to int8: w' ~= q * s[o] (:func:`quantize_weights_int8`),
    so conv(x)[o] ~= s[o] * acc[o] + bias'[o] with the exact integer acc = sum q * (u - zp).
    Input ``w`` is OIHW; returns (q OHWI int8, s[o], bias'[o], zp[ci] int32).
    """
    w = np.asarray(w, np.float64)
    mean = np.asarray(mean, np.float64)
    std = np.asarray(std, np.float64)
    cin = w.shape[1]
    if mean.shape != (cin,) or std.shape != (cin,):
        raise ConversionError(f"input normalization has {mean.size} means / {std.size} stds, "
                              f"the first conv has {cin} input channels")
    wp = w / (255.0 * std).reshape(1, cin, 1, 1)
    zp = np.round(255.0 * mean).astype(np.int32)
    corr = (wp * (zp - 255.0 * mean).reshape(1, cin, 1, 1)).sum(axis=(1, 2, 3))
    b = (np.zeros(w.shape[0]) if bias is None else np.asarray(bias, np.float64)) + corr
    q, s = quantize_weights_int8(wp)
    return np.ascontiguousarray(q.transpose(0, 2, 3, 1)), s, b, zp


def pooled_threshold_stage(a, b, k: int, s2, t2, lo: float = -math.inf, hi: float = math.inf,
                           positive_slope=None):
    """Producer -> (BN) -> [clamp to [lo, hi]] -> max pool -> BN -> sign (BinaryNet / XNOR-Net's
    "conv, pool, BN" order) as per-pixel integer thresholds and a per-channel flip.

    With z1 = a*y + b (1), u = clamp(z1, lo, hi) (a hardtanh / ReLU before the pool, or none),
    the pool takes m = max over the window of u and the BN after it gives z = s2*m + t2; the
    output is sign(z). Per channel the map F(u) = sign(s2*u + t2) is non-decreasing when s2 >= 0,
    so sign(z) = max over the window of F(u) (a max pool of the per-pixel bits, the AND of bit 1
    = -1), and non-increasing when s2 < 0, so sign(z) = min over the window of F(u) (the OR of
    the bits). The engine pools with AND only: a channel with s2 < 0 is stored **flipped**,
    G = -F per pixel (bit = NOT F's bit), which is non-decreasing, so the max pool of G gives
    -sign(z); the consumer, a binary layer, negates its weights of that input channel (x*w =
    (-x)*(-w)), which restores sign(z) exactly.

    F per pixel: for u inside (lo, hi) F = sign((s2*a)*y + s2*b + t2), the thresholds of
    :func:`threshold_stage`; with c = -t2/s2 the clamp makes F constant where c lies outside the
    clamp's range (s2 > 0: +1 if c <= lo, -1 if c > hi; s2 < 0: +1 if c >= hi, -1 if c < lo);
    s2 = 0: sign(t2). ``positive_slope`` (per channel) forces F = +1 (a ReLU after the BN).
    Flipping (t, d) complements the bit exactly on integers: (y < t) -> (y > t - 1),
    (y > t) -> (y < t + 1). Returns (threshold int32, direction int8, flip bool).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    s2, t2 = np.broadcast_to(np.asarray(s2, np.float64), a.shape), np.broadcast_to(np.asarray(t2, np.float64), a.shape)
    t, d = threshold_stage(s2 * a, s2 * b + t2, k)
    t, d = t.astype(np.int64), d.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        c = -t2 / s2
    plus = ((s2 > 0) & (c <= lo)) | ((s2 < 0) & (c >= hi))
    minus = ((s2 > 0) & (c > hi)) | ((s2 < 0) & (c < lo))
    if positive_slope is not None:
        plus |= np.asarray(positive_slope, bool)
        minus &= ~plus
    t[plus], d[plus] = -k - 1, 1  # bit = (y < -K-1): never, +1
    t[minus], d[minus] = k + 1, 1  # bit = (y < K+1): always, -1
    flip = s2 < 0
    up = flip & (d > 0)
    down = flip & (d < 0)
    t[up], d[up] = t[up] - 1, -1
    t[down], d[down] = t[down] + 1, 1
    return t.astype(np.int32), d, flip
