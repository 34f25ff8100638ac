"""The core engine kernels as Python functions: NumPy arrays in, NumPy arrays out.

Thin wrappers over ``onebit._engine`` (C++). Every function takes ``isa`` ("scalar", "avx2",
"avxvnni", "avx512"; default: the active ISA, see ``onebit.runtime.capabilities()``) and ``threads``
(default: all cores, or ``ONEBIT_NUM_THREADS``); the result never depends on either.
``out`` lets a caller reuse a preallocated result array (checked for dtype and shape).
Bad input (dtype, non-contiguous array, shape, channel count, missing stage parameter) raises
ValueError with a message naming the problem. Bit layout and stage math: ``docs/format.md``;
the NumPy oracles are in ``onebit.runtime.reference``.
"""
from __future__ import annotations

import numpy as np

from onebit.runtime.engine import engine

__all__ = ["bitpack", "bconv2d", "bdense", "bitplanes", "bconv2d_planes", "prepare_weights", "PreparedWeights", "accumulator_bits",
           "popcount_peak", "int8_mac_peak"]

PreparedWeights = engine.PreparedWeights


def bitpack(x: np.ndarray, *, isa: str | None = None, threads: int | None = None,
            out: np.ndarray | None = None) -> np.ndarray:
    """Binarize and pack along the last axis: float32/int8 ``(..., C)`` -> uint64 ``(..., ceil(C/64))``.

    bit = (x < 0): bit 1 means -1, ``sign(0) = +1``; channel c -> word c // 64, bit c % 64;
    padding bits 0. Equals ``onebit.bits.pack(x)``.
    """
    return engine.bitpack(x, isa=isa, threads=threads, out=out)


def prepare_weights(w_packed: np.ndarray, *, in_channels: int, isa: str | None = None,
                    threads: int | None = None, weight_mask: np.ndarray | None = None) -> PreparedWeights:
    """Re-lay out packed weights once for one ISA's kernel; pass the result as ``w_packed``.

    Conv weights (Cout, KH, KW, W64) or dense weights (Cout, W64). Without it every call re-lays
    the weights out (for 512x3x3x512 that is ~15% of an AVX2 layer call). The result is tied to
    ``isa`` (a call with another ISA raises ValueError) and copies the weights (later changes to
    ``w_packed`` are not seen).

    ``weight_mask`` (a pruned layer, see :func:`bconv2d`) is copied into the result, which then
    runs the masked kernels (``.masked`` is True); calls with it take no ``weight_mask``.
    """
    return engine.prepare_weights(w_packed, in_channels=in_channels, isa=isa, threads=threads,
                                  weight_mask=weight_mask)


def bconv2d(x_packed: np.ndarray, w_packed: np.ndarray | PreparedWeights, *, in_channels: int, stride: int = 1,
            padding: int | str = 0, output: str = "int32", threshold: np.ndarray | None = None,
            direction: np.ndarray | None = None, multiplier: np.ndarray | None = None,
            bias: np.ndarray | None = None, shift: int | None = None, scale: np.ndarray | None = None,
            isa: str | None = None, threads: int | None = None, out: np.ndarray | None = None,
            weight_mask: np.ndarray | None = None, padding_end: int | None = None,
            pad_value: int = 0) -> np.ndarray:
    """Binary direct convolution with a fused output stage (no im2col).

    ``x_packed`` (N, H, W, W64) uint64, ``w_packed`` (Cout, KH, KW, W64) uint64 (or
    :func:`prepare_weights` of it), both packed along ``in_channels``. ``padding``: int
    (rows/columns before the input, top and left), "same" ((K-1)//2, odd square K) or "valid";
    ``padding_end``: rows/columns after it (bottom and right; default ``padding``).
    ``pad_value`` 0, TRUE-ZERO padding: with T in-bounds taps, ``y = T*Cin - 2*popcount(x XOR w)``
    over them; 1, one-padding: padded taps hold +1 (bit 0), ``y = K - 2*popcount`` over all taps.
    Output (docs/format.md §5), per output channel c:

    - ``"int32"``: y itself, (N, OH, OW, Cout) int32;
    - ``"bits"`` (BN + sign folded): ``threshold`` int32, ``direction`` int8/int32 of +-1;
      bit = y < t (d=+1) or y > t (d=-1); packed (N, OH, OW, ceil(Cout/64)) uint64;
    - ``"int8"`` (BN + clip block folded, BNN-Clip): ``multiplier`` int32, ``bias`` int32,
      ``shift`` in 1..31: ``clamp((y*M + B + 2^(S-1)) >> S, -127, 127)``, (N, OH, OW, Cout) int8;
    - ``"float"``: ``scale``, ``bias`` float32: ``float32(y) * scale + bias`` (no FMA).

    Pruned layers: ``weight_mask`` uint64 of the packed weight shape, bit 1 = weight kept, bit 0 =
    weight pruned (value 0: ternary weights). It must be canonical (padding bits 0, no weight bit
    set under a 0 mask bit; ValueError otherwise). Then ``y = L_T - 2*popcount((x XOR w) AND m)``
    over the in-bounds taps, L_T = kept weights at those taps; an all-ones mask gives the dense
    result. Not together with prepared weights (pass the mask to :func:`prepare_weights`).
    """
    return engine.bconv2d(x_packed, w_packed, in_channels=in_channels, stride=stride, padding=padding,
                          output=output, threshold=threshold, direction=direction, multiplier=multiplier,
                          bias=bias, shift=shift, scale=scale, isa=isa, threads=threads, out=out,
                          weight_mask=weight_mask, padding_end=padding_end, pad_value=pad_value)


def bdense(x_packed: np.ndarray, w_packed: np.ndarray | PreparedWeights, *, in_features: int, output: str = "int32",
           threshold: np.ndarray | None = None, direction: np.ndarray | None = None,
           multiplier: np.ndarray | None = None, bias: np.ndarray | None = None, shift: int | None = None,
           scale: np.ndarray | None = None, isa: str | None = None, threads: int | None = None,
           out: np.ndarray | None = None, weight_mask: np.ndarray | None = None) -> np.ndarray:
    """Binary fully connected layer: ``x_packed`` (N, W64) x ``w_packed`` (Cout, W64) -> (N, Cout[/64]).

    ``y = in_features - 2*popcount(x XOR w)``; output stages and ``weight_mask`` (Cout, W64) as in
    :func:`bconv2d` (masked: ``y = kept - 2*popcount((x XOR w) AND m)``).
    """
    return engine.bdense(x_packed, w_packed, in_features=in_features, output=output, threshold=threshold,
                         direction=direction, multiplier=multiplier, bias=bias, shift=shift, scale=scale,
                         isa=isa, threads=threads, out=out, weight_mask=weight_mask)


def accumulator_bits(k_bits: int) -> int:
    """Accumulator width for a binary dot product over K bits: 16 if K <= 32767 else 32 (|y| <= K)."""
    return engine.accumulator_bits(k_bits)


def popcount_peak(isa: str | None = None, seconds: float = 0.2, method: str | None = None) -> float:
    """Peak XOR + popcount + add rate of one thread on L1-resident data, in bit-MACs per second.

    The ceiling a binary kernel can reach on this ISA (best of short timed runs). ``method``
    picks the popcount timed; default: the one the ISA's conv kernel uses. scalar: "builtin";
    avx2: "split" (pshufb LUT on nibble-pre-split operands), "lut" (classic pshufb nibble LUT),
    "popcnt" (scalar 64-bit POPCNT); avx512: "vpopcntq".
    """
    return engine.popcount_peak(isa=isa, seconds=seconds, method=method or "")


def int8_mac_peak(isa: str | None = None, seconds: float = 0.2) -> float:
    """Peak int8 multiply-add rate of one thread, in MACs per second: the inner step of the ISA's
    int8 conv kernel on registers (scalar: int8 x int8 -> int32 loop over an L1-resident row;
    avx2: ``vpmaddwd`` + ``vpaddd``; avxvnni: ``vpdpbusd`` ymm; avx512: ``vpdpbusd`` zmm), with
    as many independent accumulators as the kernel's register block. One timed run of about
    ``seconds``; take the best of several on a busy machine.
    """
    return engine.int8_mac_peak(isa=isa, seconds=seconds)


def bitplanes(u: np.ndarray, planes, *, isa: str | None = None, threads: int | None = None) -> np.ndarray:
    """CBNN bit planes: uint8 ``(..., C)`` -> packed uint64 ``(..., ceil(P/64))``; plane ``i`` is
    plane id ``planes[i] = c*8 + b`` (b = 0 the LSB), +1 where bit b of channel c is 1.
    Equals ``onebit.runtime.reference.bitplanes``."""
    return engine.bitplanes(u, np.ascontiguousarray(planes, dtype=np.int32), isa=isa, threads=threads)


def bconv2d_planes(x_packed: np.ndarray, w_planes: np.ndarray, *, in_channels: int, stride: int = 1,
                   padding: int | str = 0, kernel: int | None = None, output: str = "int32",
                   threshold: np.ndarray | None = None, direction: np.ndarray | None = None,
                   multiplier: np.ndarray | None = None, bias: np.ndarray | None = None, shift: int | None = None,
                   scale: np.ndarray | None = None, isa: str | None = None, threads: int | None = None) -> np.ndarray:
    """Binary conv with multi-bit weights: ``w_planes`` uint64 holds M planes of +-1 weights, plane
    j worth 2^j, in the "taps" layout (M, Cout, KH, KW, W64) or the "window" layout (M, Cout,
    ceil(KH*KW*Cin/64)) with ``kernel`` = K (docs/format.md, ``bconv2d_planes``);
    ``y = sum_j 2^j * y_j`` with ``y_j`` the :func:`bconv2d` accumulator of plane j, then the
    output stage of :func:`bconv2d`."""
    return engine.bconv2d_planes(x_packed, w_planes, in_channels=in_channels, stride=stride, padding=padding,
                                 kernel=kernel, output=output, threshold=threshold, direction=direction,
                                 multiplier=multiplier, bias=bias, shift=shift, scale=scale, isa=isa,
                                 threads=threads)
