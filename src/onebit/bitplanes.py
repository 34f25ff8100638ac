"""Bit-plane input transform and multi-bit binary weights: the reference (NumPy only, no torch).

CBNN (Li and Ren, "Build a Compact Binary Neural Network through Bit-level Sensitivity and Data
Pruning", arXiv 1802.00904) feeds a binary network the bit planes of its 8-bit input instead of
the pixel values: colour channel ``c`` of a uint8 image ``u`` gives 8 planes

    plane(c, b) = +1 if bit b of u[c] is 1 else -1,     b = 0 (LSB) .. 7 (MSB),

and the first layer (real or int8 weights) reads them as ``len(planes)`` binary input channels.
A plane is named by its **plane id** ``c * 8 + b`` (colour-major, LSB first: for RGB, ids 0..7
are red LSB..MSB, 8..15 green, 16..23 blue). A plane list is sorted and unique; the input layer
reads the planes in that order (docs/format.md, ``bitplanes``).

Multi-bit weights (the engine's ``bconv2d_planes``, docs/format.md): an odd integer weight
``v`` in ``[-(2^M - 1), 2^M - 1]`` is ``sum_j 2^j * s_j`` with ``s_j`` in {-1, +1}, ``j < M``
(``s_j = 2 * bit_j((v + 2^M - 1) / 2) - 1``), so a dot product of such weights with +-1 inputs is
``sum_j 2^j * dot(s_j, x)``: M binary dot products, XOR + popcount each.
"""
from __future__ import annotations

from collections.abc import Iterable

import numpy as np

PLANE_BITS = 8  # bit planes per uint8 channel

__all__ = ["PLANE_BITS", "plane_ids", "parse_input_bits", "top_planes", "describe_planes", "bit_planes",
           "odd_weight_planes", "weight_from_planes", "MAX_WEIGHT_BITS", "WEIGHT_LAYOUTS", "pack_window_weights",
           "taps_weights", "planes_weight_values"]

#: Largest weight width of ``bconv2d_planes`` (int8-like weights: M <= 8).
MAX_WEIGHT_BITS = 8


def top_planes(k: int, channels: int) -> tuple[int, ...]:
    """The ids of the ``k`` most significant planes of every colour channel, sorted."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= PLANE_BITS:
        raise ValueError(f"input_bits must be an int in [1, {PLANE_BITS}] (planes per colour) or a "
                         f"list of plane ids, got {k!r}")
    return tuple(c * PLANE_BITS + b for c in range(channels) for b in range(PLANE_BITS - k, PLANE_BITS))


def plane_ids(input_bits, channels: int) -> tuple[int, ...]:
    """The sorted plane ids meant by ``input_bits``: an int K (the K most significant planes of
    each colour) or an explicit list of plane ids ``c * 8 + b`` (unique, in ``[0, 8*channels)``)."""
    if isinstance(input_bits, (int, np.integer)) and not isinstance(input_bits, bool):
        return top_planes(int(input_bits), channels)
    if isinstance(input_bits, (str, bytes)) or not isinstance(input_bits, Iterable):
        raise ValueError(f"input_bits must be an int in [1, {PLANE_BITS}] or a list of plane ids, "
                         f"got {input_bits!r}")
    ids = list(input_bits)
    n = PLANE_BITS * channels
    for p in ids:
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 0 <= p < n:
            raise ValueError(f"plane id {p!r} out of range: a {channels}-channel input has plane ids "
                             f"0..{n - 1} (id = channel * 8 + bit, bit 0 = LSB)")
    if not ids:
        raise ValueError("input_bits: the plane list is empty (keep at least one plane)")
    if len(set(ids)) != len(ids):
        raise ValueError(f"input_bits: duplicate plane ids in {ids}")
    return tuple(sorted(int(p) for p in ids))


def parse_input_bits(text: str):
    """Command-line form of ``input_bits``: ``"K"`` (an int) or ``"id,id,..."`` (plane ids)."""
    parts = [t.strip() for t in str(text).split(",") if t.strip()]
    try:
        vals = [int(t) for t in parts]
    except ValueError:
        raise ValueError(f"input bits must be an int K or a comma-separated list of plane ids, "
                         f"got {text!r}") from None
    if len(vals) == 1 and "," not in str(text):
        return vals[0]
    return vals


def describe_planes(planes: Iterable[int], channels: int) -> str:
    """``"c0:b7,b6 c1:b7"``-style text of a plane list (MSB first per channel)."""
    parts = []
    for c in range(channels):
        bits = sorted((p % PLANE_BITS for p in planes if p // PLANE_BITS == c), reverse=True)
        parts.append(f"c{c}:" + (",".join(f"b{b}" for b in bits) if bits else "-"))
    return " ".join(parts)


def bit_planes(u: np.ndarray, planes: Iterable[int]) -> np.ndarray:
    """uint8 images ``(..., C)`` (channels last) -> int8 +-1 planes ``(..., len(planes))``:
    plane ``c*8 + b`` is +1 where bit b of channel c is 1, else -1."""
    u = np.asarray(u)
    if u.dtype != np.uint8:
        raise ValueError(f"bit planes are taken of uint8 images, got {u.dtype}")
    planes = list(planes)
    ch = np.asarray([p // PLANE_BITS for p in planes], dtype=np.int64)
    bit = np.asarray([p % PLANE_BITS for p in planes], dtype=np.uint8)
    if len(planes) and int(ch.max()) >= u.shape[-1]:
        raise ValueError(f"plane id {max(planes)} needs channel {int(ch.max())}; the input has {u.shape[-1]}")
    b = (u[..., ch] >> bit) & 1
    return (2 * b.astype(np.int8) - 1).astype(np.int8)


def odd_weight_planes(v: np.ndarray, bits: int) -> np.ndarray:
    """Odd integers ``v`` in ``[-(2^M-1), 2^M-1]`` -> +-1 int8 planes ``(M, *v.shape)`` with
    ``v = sum_j 2^j * planes[j]``."""
    v = np.asarray(v, dtype=np.int64)
    if not 1 <= bits <= MAX_WEIGHT_BITS:
        raise ValueError(f"weight bits must be in [1, {MAX_WEIGHT_BITS}], got {bits}")
    top = (1 << bits) - 1
    if v.size and (np.any(v % 2 == 0) or np.any(np.abs(v) > top)):
        raise ValueError(f"multi-bit weights must be odd integers in [-{top}, {top}]")
    t = (v + top) // 2  # in [0, 2^M - 1]: bit j of t is 1 where s_j = +1
    return np.stack([(2 * ((t >> j) & 1) - 1).astype(np.int8) for j in range(bits)])


def weight_from_planes(planes: np.ndarray) -> np.ndarray:
    """Inverse of :func:`odd_weight_planes`: ``sum_j 2^j * planes[j]`` (int64)."""
    planes = np.asarray(planes, dtype=np.int64)
    return sum((planes[j] << j) for j in range(planes.shape[0]))


#: Stored layouts of ``bconv2d_planes`` weights (docs/format.md, ``weight_layout``).
WEIGHT_LAYOUTS = ("taps", "window")


def pack_window_weights(planes: np.ndarray) -> np.ndarray:
    """+-1 weight planes ``(M, Cout, KH, KW, Cin)`` -> the "window" layout ``(M, Cout,
    ceil(KH*KW*Cin/64))`` uint64: bit ``t*Cin + c`` of a row is tap ``t = i*KW + j``, channel c."""
    from onebit import bits

    planes = np.asarray(planes)
    return bits.pack(planes.reshape(planes.shape[0], planes.shape[1], -1))


def taps_weights(w: np.ndarray, layout: str, kernel, cin: int) -> np.ndarray:
    """Stored ``bconv2d_planes`` weights in either layout -> +-1 int8 planes ``(M, Cout, KH, KW, Cin)``."""
    from onebit import bits

    kh, kw = kernel
    if layout == "window":
        return bits.unpack(w, kh * kw * cin).reshape(w.shape[0], w.shape[1], kh, kw, cin)
    if layout == "taps":
        return bits.unpack(w, cin)
    raise ValueError(f"weight_layout must be one of {WEIGHT_LAYOUTS}, got {layout!r}")


def planes_weight_values(w: np.ndarray, layout: str, kernel, cin: int) -> np.ndarray:
    """The odd integer weights ``(Cout, KH, KW, Cin)`` (int64) of stored ``bconv2d_planes`` weights."""
    return weight_from_planes(taps_weights(w, layout, kernel, cin))
