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
    if hasattr(np, "bitwise_count"):  # NumPy >= 2.0: the CPU's popcount, same counts
        return np.bitwise_count(words).astype(np.int64)
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


def word_ones(channels: int) -> np.ndarray:
    """The all-kept mask word of each of the ``ceil(channels/64)`` words of a packed row, uint64:
    all 64 bits, except the last word of a row whose channels are not a multiple of 64, which
    keeps only its ``channels % 64`` real channels (padding bits stay 0)."""
    w = num_words(channels)
    ones = np.full(w, np.uint64(0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    rem = channels % WORD_BITS
    if w and rem:
        ones[-1] = np.uint64((1 << rem) - 1)
    return ones


def pack_word_mask(mask: np.ndarray, channels: int) -> np.ndarray | None:
    """The compact form of a packed mask (docs/format.md §7.3, ``weight_word_mask``), or None.

    ``mask``: a packed weight mask ``(Cout, ..., W64)`` uint64 over ``channels`` input channels.
    When every word is all kept or all pruned (word / block pruning, whole output channels), the
    mask holds one bit per (output channel, word): returns ``(Cout, ceil(P/64))`` uint64 with
    ``P = prod(mask.shape[1:])``, bit ``j`` of row ``o`` (word ``j // 64``, bit ``j % 64``) = 1 when
    packed word ``j`` of output channel ``o`` (C-order index over the axes after the first) is kept;
    padding bits 0. Returns None when some word is partly kept (weight granularity)."""
    mask = np.asarray(mask, dtype=np.uint64)
    ones = word_ones(channels)
    if mask.ndim < 2 or mask.shape[-1] != ones.size:
        raise ValueError(f"mask of shape {mask.shape} is not packed over {channels} channels")
    kept = mask == ones
    if not (kept | (mask == 0)).all():
        return None
    return pack_mask(kept.reshape(mask.shape[0], -1))


def unpack_word_mask(word_mask: np.ndarray, shape: tuple, channels: int) -> np.ndarray:
    """Inverse of :func:`pack_word_mask`: the packed mask of ``shape`` ``(Cout, ..., W64)``."""
    shape = tuple(int(s) for s in shape)
    per = int(np.prod(shape[1:], dtype=np.int64))
    keep = unpack(np.asarray(word_mask), per) < 0  # bit 1 = kept = unpack's -1
    return np.where(keep.reshape(shape), word_ones(channels), np.uint64(0)).astype(np.uint64)


def word_mask_kept_counts(word_mask: np.ndarray, shape: tuple, channels: int) -> np.ndarray:
    """Kept weights per output channel of a compact mask (= ``kept_counts(unpack_word_mask(...))``),
    int64 ``(Cout,)``: 64 per kept word, ``channels % 64`` for a kept last word of a row."""
    shape = tuple(int(s) for s in shape)
    per = int(np.prod(shape[1:], dtype=np.int64))
    keep = (unpack(np.asarray(word_mask), per) < 0).reshape(shape[0], -1, shape[-1])
    width = popcount(word_ones(channels))
    return (keep * width).sum(axis=(1, 2)).astype(np.int64)


def _bit_vector(words: np.ndarray) -> np.ndarray:
    """Every bit of a uint64 array as uint8 0/1, in order: word by word (C order), bit 0 first."""
    by = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).astype("<u8")).view(np.uint8)
    return np.unpackbits(by.reshape(-1), bitorder="little")


def _words_of(bit_vector: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_bit_vector` (length a multiple of 64): flat uint64 words."""
    return np.packbits(bit_vector, bitorder="little").view("<u8").astype(np.uint64)


def pack_kept(weight: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The weight bits of the kept weights only (docs/format.md §7.3, ``weight_kept``).

    ``weight`` and ``mask``: packed uint64 of one shape. Returns ``(words, n)``: the ``n`` weight
    bits at the mask's 1 bits, in order (word by word in C order, bit 0 first), packed into
    ``ceil(n/64)`` uint64 words, bit ``i`` of the sequence = bit ``i % 64`` of word ``i // 64``;
    padding bits 0."""
    weight, mask = np.asarray(weight, dtype=np.uint64), np.asarray(mask, dtype=np.uint64)
    if weight.shape != mask.shape:
        raise ValueError(f"weight {weight.shape} and mask {mask.shape} differ in shape")
    kept = _bit_vector(weight)[_bit_vector(mask).astype(bool)]
    n = int(kept.size)
    padded = np.zeros(num_words(n) * WORD_BITS, dtype=np.uint8)
    padded[:n] = kept
    return _words_of(padded), n


def unpack_kept(words: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Inverse of :func:`pack_kept`: the packed weights of ``mask``'s shape, bit 0 where it is 0.

    Byte-wise (a model's tens of millions of weights in milliseconds): each mask byte takes the
    next ``popcount(byte)`` bits of the sequence and deposits them at its 1 bits (a 256 x 256
    table, the PDEP instruction's job)."""
    mask = np.asarray(mask, dtype=np.uint64)
    full_words = mask == np.uint64(0xFFFFFFFFFFFFFFFF)
    if (full_words | (mask == 0)).all():  # whole words kept or pruned (word / block pruning)
        n = int(np.count_nonzero(full_words))
        seq = np.asarray(words, dtype=np.uint64).reshape(-1)
        if seq.size < n:
            raise ValueError(f"{seq.size} words hold fewer than the mask's {64 * n} kept weights")
        out = np.zeros(mask.shape, dtype=np.uint64)
        out[full_words] = seq[:n]
        return out
    mb = np.ascontiguousarray(mask.astype("<u8", copy=False)).view(np.uint8).reshape(-1)
    cnt = _POP8[mb]
    off = np.cumsum(cnt, dtype=np.int32 if 8 * mb.size < 2**31 else np.int64)
    n = int(off[-1]) if off.size else 0
    off -= cnt  # bit offset of each mask byte's first kept weight in the sequence
    seq = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).astype("<u8", copy=False)).view(np.uint8).reshape(-1)
    if 8 * seq.size < n:
        raise ValueError(f"{seq.size // 8} words hold fewer than the mask's {n} kept weights")
    s16 = np.zeros(seq.size + 1, dtype=np.uint16)  # s16[i] = the 16 sequence bits from byte i
    s16[:-1] = seq
    s16[:-1] |= s16[1:] << 8
    nxt = s16[off >> 3]
    nxt >>= (off & 7).astype(np.uint16)
    nxt &= 0xFF
    nxt |= mb.astype(np.uint16) << 8  # index of (mask byte, next 8 bits) in the flat table
    out = _deposit_table().reshape(-1)[nxt]
    return out.view("<u8").astype(np.uint64, copy=False).reshape(mask.shape)


_POP8 = np.unpackbits(np.arange(256, dtype=np.uint8)[:, None], axis=1).sum(axis=1).astype(np.uint8)
_DEPOSIT: list = []


def _deposit_table() -> np.ndarray:
    """``T[m, v]``: the low ``popcount(m)`` bits of ``v`` placed at the 1 bits of ``m`` (uint8)."""
    if not _DEPOSIT:
        m = np.arange(256, dtype=np.uint16)[:, None]
        v = np.arange(256, dtype=np.uint16)[None, :]
        out = np.zeros((256, 256), dtype=np.uint16)
        taken = np.zeros((256, 1), dtype=np.uint16)
        for b in range(8):
            at = (m >> b) & 1
            out |= (((v >> taken) & 1) & at) << b
            taken = taken + at
        _DEPOSIT.append(out.astype(np.uint8))
    return _DEPOSIT[0]
