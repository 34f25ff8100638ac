"""Reference bit packing: the executable spec of docs/format.md §1-2 (NumPy only, no torch).

Bit 1 means -1, bit 0 means +1; ``sign(0) = +1``. Channels are packed along the last axis into
little-endian uint64 words (channel c -> word c // 64, bit c % 64); padding bits are 0.
Every engine kernel is tested against these functions.
"""
from __future__ import annotations

import numpy as np

WORD_BITS = 64


def num_words(channels: int) -> int:
    """Words needed for ``channels`` binary channels: ceil(channels / 64)."""
    if channels < 0:
        raise ValueError(f"channel count must be >= 0, got {channels}")
    return (channels + WORD_BITS - 1) // WORD_BITS


def sign(x: np.ndarray) -> np.ndarray:
    """+1 where x >= 0, -1 elsewhere (never 0), as int8."""
    return np.where(np.asarray(x) >= 0, 1, -1).astype(np.int8)


def pack(x: np.ndarray) -> np.ndarray:
    """Pack sign(x) along the last axis: (..., C) -> (..., ceil(C/64)) uint64."""
    x = np.asarray(x)
    if x.ndim == 0:
        raise ValueError("pack needs at least one axis (the channel axis)")
    c = x.shape[-1]
    w = num_words(c)
    neg = (x < 0).astype(np.uint8)
    padded = np.zeros(x.shape[:-1] + (w * WORD_BITS,), dtype=np.uint8)
    padded[..., :c] = neg
    # little bit order inside each byte, little-endian bytes inside each word
    by = np.packbits(padded.reshape(x.shape[:-1] + (w * 8, 8)), axis=-1, bitorder="little")
    return np.ascontiguousarray(by.reshape(x.shape[:-1] + (w * 8,))).view("<u8").astype(np.uint64)


def unpack(words: np.ndarray, channels: int) -> np.ndarray:
    """Inverse of pack: (..., W64) uint64 -> (..., channels) int8 in {-1, +1}."""
    words = np.asarray(words)
    if words.dtype != np.uint64:
        raise ValueError(f"packed words must be uint64, got {words.dtype}")
    w = words.shape[-1]
    if channels > w * WORD_BITS or num_words(channels) != w:
        raise ValueError(f"{w} words cannot hold exactly {channels} channels")
    by = np.ascontiguousarray(words.astype("<u8")).view(np.uint8)
    bits = np.unpackbits(by.reshape(words.shape[:-1] + (w * 8, 1)), axis=-1, bitorder="little")
    bits = bits.reshape(words.shape[:-1] + (w * WORD_BITS,))[..., :channels]
    return (1 - 2 * bits.astype(np.int8)).astype(np.int8)


def popcount(words: np.ndarray) -> np.ndarray:
    """Population count of each uint64 word (int64)."""
    words = np.ascontiguousarray(np.asarray(words, dtype=np.uint64))
    by = words.view(np.uint8).reshape(words.shape + (8,))
    return np.unpackbits(by, axis=-1).sum(axis=-1).astype(np.int64)


def dot(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Binary dot product of packed vectors over the last axis: K - 2 * popcount(a XOR b)."""
    return k - 2 * popcount(np.bitwise_xor(a, b)).sum(axis=-1)


def pack_mask(keep: np.ndarray) -> np.ndarray:
    """Pack a pruning mask like weights (docs/format.md §7.3): (..., C) -> (..., ceil(C/64)) uint64.

    Bit 1 = kept weight (``keep`` true / non-zero), bit 0 = pruned; padding bits 0.
    """
    keep = np.asarray(keep)
    return pack(np.where(keep != 0, -1, 1).astype(np.int8))


def kept_counts(mask: np.ndarray) -> np.ndarray:
    """Kept weights per output channel (axis 0) of a packed mask, int64 ``(Cout,)``."""
    mask = np.asarray(mask)
    return popcount(mask).reshape(mask.shape[0], -1).sum(axis=1)
