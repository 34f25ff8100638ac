"""Pure-NumPy oracles of the core engine kernels (no torch): the tests' and converter's ground truth.

Binary convolution is computed the slow, obvious way: unpack the bits to +-1 integers, pad
(TRUE zero: padded taps contribute nothing, or +1 with one-padding, docs/format.md §3) and sum
products tap by tap in int64. The output stages follow docs/format.md §5 literally:

- (a) bits:  ``bit = y < t`` where ``d = +1``, ``bit = y > t`` where ``d = -1`` (bit 1 means -1);
- (b) int8:  ``q = clamp((y*M + B + 2**(S-1)) >> S, -127, 127)`` in int64 (BNN-Clip folding);
- (c) float: ``float32(y) * scale + bias`` (multiply, round, add, round).

Pruned layers (``weight_mask``, bit 1 = kept, bit 0 = pruned): the weights become ternary
{-1, 0, +1} (``w * keep``) and the same sums give ``y = L_T - 2*popcount((x XOR w) AND m)``.
"""
from __future__ import annotations

import numpy as np

from onebit import bits
from onebit.runtime.geometry import output_size

__all__ = [
    "bconv2d_int",
    "bdense_int",
    "ternary_weights",
    "stage_bits",
    "stage_int8",
    "stage_float",
    "output_stage",
    "bconv2d",
    "bdense",
    "bitplanes",
    "bconv2d_planes",
]


def _padding(padding: int | str, kh: int, kw: int) -> int:
    if padding == "valid":
        return 0
    if padding == "same":
        if kh != kw or kh % 2 == 0:
            raise ValueError("padding='same' needs a square kernel of odd size")
        return (kh - 1) // 2
    return int(padding)


def ternary_weights(w_packed: np.ndarray, in_channels: int, weight_mask: np.ndarray | None = None) -> np.ndarray:
    """Unpacked weights as int64: +-1, times 0 where ``weight_mask`` has bit 0 (pruned).

    The mask must have the packed weight shape and be canonical (no weight bit set under a pruned
    mask bit, padding bits 0); ValueError otherwise, as the engine.
    """
    w = bits.unpack(w_packed, in_channels).astype(np.int64)
    if weight_mask is None:
        return w
    m = np.asarray(weight_mask)
    if m.dtype != np.uint64 or m.shape != w_packed.shape:
        raise ValueError(f"weight_mask must be uint64 of shape {w_packed.shape}, got {m.dtype} {m.shape}")
    if np.any(w_packed & ~m):
        raise ValueError("weight bits are set where weight_mask is 0")
    if in_channels % 64 and np.any(m[..., -1] >> np.uint64(in_channels % 64)):
        raise ValueError("weight_mask has nonzero padding bits")
    keep = bits.unpack(m, in_channels) < 0  # bit 1 (unpacks to -1) = kept
    return w * keep


def bconv2d_int(x_packed: np.ndarray, w_packed: np.ndarray, in_channels: int, stride: int = 1,
                padding: int | str = 0, weight_mask: np.ndarray | None = None,
                padding_end: int | None = None, pad_value: int = 0) -> np.ndarray:
    """Binary conv accumulator ``y`` (int64, NHWC) of packed input and packed OHWI weights.

    ``y[n, oh, ow, co] = sum over taps and channels of x * w`` with x, w in {-1, +1} and the
    padded taps (``padding`` rows/columns before the input, ``padding_end`` after it, default
    ``padding``) holding ``pad_value``: 0 (true zero: ``T*Cin - 2*popcount(x XOR w)`` over the T
    in-bounds taps) or +1 (one-padding). With ``weight_mask`` the pruned weights are 0 (see
    :func:`ternary_weights`).
    """
    cout, kh, kw, _ = w_packed.shape
    pad = _padding(padding, kh, kw)
    end = pad if padding_end is None else int(padding_end)
    if pad_value not in (0, 1):
        raise ValueError(f"pad_value must be 0 or 1, got {pad_value!r}")
    x = bits.unpack(x_packed, in_channels).astype(np.int64)
    w = ternary_weights(w_packed, in_channels, weight_mask)
    n, h, wd, _ = x.shape
    oh, ow = output_size(h, kh, stride, pad, padding_end=end), output_size(wd, kw, stride, pad, padding_end=end)
    xp = np.pad(x, ((0, 0), (pad, end), (pad, end), (0, 0)), constant_values=pad_value)
    y = np.zeros((n, oh, ow, cout), dtype=np.int64)
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * (oh - 1) + 1:stride, j:j + stride * (ow - 1) + 1:stride, :]
            y += patch @ w[:, i, j, :].T
    return y


def bdense_int(x_packed: np.ndarray, w_packed: np.ndarray, in_features: int,
               weight_mask: np.ndarray | None = None) -> np.ndarray:
    """Binary dense accumulator ``y = x @ w.T`` (int64) on +-1 values of packed rows (pruned
    weights 0 with ``weight_mask``)."""
    x = bits.unpack(x_packed, in_features).astype(np.int64)
    w = ternary_weights(w_packed, in_features, weight_mask)
    return x @ w.T


def stage_bits(y: np.ndarray, threshold: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Output stage (a): packed bits (..., ceil(C/64)) uint64; bit 1 (value -1) where
    ``y < t`` for ``d = +1`` and ``y > t`` for ``d = -1``."""
    y = np.asarray(y, dtype=np.int64)
    t = np.asarray(threshold, dtype=np.int64)
    d = np.asarray(direction)
    bit = np.where(d > 0, y < t, y > t)
    return bits.pack(np.where(bit, -1, 1).astype(np.int8))


def stage_int8(y: np.ndarray, multiplier: np.ndarray, bias: np.ndarray, shift: int) -> np.ndarray:
    """Output stage (b): ``clamp((y*M + B + 2**(S-1)) >> S, -127, 127)`` in int64, as int8."""
    if not 0 < shift < 32:
        raise ValueError(f"shift must satisfy 0 < shift < 32, got {shift}")
    v = np.asarray(y, dtype=np.int64) * np.asarray(multiplier, dtype=np.int64)
    v = (v + np.asarray(bias, dtype=np.int64) + (1 << (shift - 1))) >> shift
    return np.clip(v, -127, 127).astype(np.int8)


def stage_float(y: np.ndarray, scale: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Output stage (c): ``float32(y) * scale + bias`` with two float32 roundings."""
    prod = np.asarray(y).astype(np.float32) * np.asarray(scale, dtype=np.float32)
    return (prod + np.asarray(bias, dtype=np.float32)).astype(np.float32)


def output_stage(y: np.ndarray, output: str = "int32", *, threshold=None, direction=None, multiplier=None,
                 bias=None, shift=None, scale=None) -> np.ndarray:
    """docs/format.md §5 applied to integer accumulators ``y`` (..., Cout): ``int32`` (as is),
    ``bits`` (:func:`stage_bits`), ``int8`` (:func:`stage_int8`) or ``float`` (:func:`stage_float`)."""
    if output == "int32":
        return np.asarray(y).astype(np.int32)
    if output == "bits":
        return stage_bits(y, threshold, direction)
    if output == "int8":
        return stage_int8(y, multiplier, bias, shift)
    if output == "float":
        return stage_float(y, scale, bias)
    raise ValueError(f"output must be 'int32', 'bits', 'int8' or 'float', got {output!r}")


def bconv2d(x_packed: np.ndarray, w_packed: np.ndarray, *, in_channels: int, stride: int = 1,
            padding: int | str = 0, output: str = "int32", weight_mask: np.ndarray | None = None,
            padding_end: int | None = None, pad_value: int = 0, **stage) -> np.ndarray:
    """Oracle of ``onebit.runtime.kernels.bconv2d`` (same arguments, same result)."""
    y = bconv2d_int(x_packed, w_packed, in_channels, stride, padding, weight_mask, padding_end, pad_value)
    return output_stage(y, output, **stage)


def bdense(x_packed: np.ndarray, w_packed: np.ndarray, *, in_features: int, output: str = "int32",
           weight_mask: np.ndarray | None = None, **stage) -> np.ndarray:
    """Oracle of ``onebit.runtime.kernels.bdense`` (same arguments, same result)."""
    return output_stage(bdense_int(x_packed, w_packed, in_features, weight_mask), output, **stage)


def bitplanes(u: np.ndarray, planes) -> np.ndarray:
    """Oracle of ``onebit.runtime.kernels.bitplanes``: uint8 NHWC -> packed +-1 bit planes
    (:func:`onebit.bitplanes.bit_planes`, plane +1 where the bit is 1, packed per docs/format.md §2)."""
    from onebit.bitplanes import bit_planes

    return bits.pack(bit_planes(u, planes))


def bconv2d_planes(x_packed: np.ndarray, w_planes: np.ndarray, *, in_channels: int, stride: int = 1,
                   padding: int | str = 0, kernel: int | None = None, output: str = "int32",
                   **stage) -> np.ndarray:
    """Oracle of ``onebit.runtime.kernels.bconv2d_planes``: weight planes ``(M, Cout, KH, KW, W64)``
    (or the window layout ``(M, Cout, ceil(KH*KW*Cin/64))`` with ``kernel``),
    ``y = sum_j 2^j * bconv2d_int(x, w_planes[j])`` (odd integer weights on +-1 inputs)."""
    if w_planes.ndim == 3:
        from onebit.bitplanes import taps_weights

        w_planes = bits.pack(taps_weights(w_planes, "window", (kernel, kernel), in_channels))
    y = sum(bconv2d_int(x_packed, w_planes[j], in_channels, stride, padding) << j
            for j in range(w_planes.shape[0]))
    return output_stage(y, output, **stage)
