"""Where the stored weights of a ``.onebit`` file can be flipped, and flipping them (torch-free).

A *site* is one bit of the file's tensor data. Three kinds are studied separately:

- ``binary``: the packed weight bits of every ``bconv2d`` / ``bdense`` (docs/format.md §2):
  the bits of real input channels (channel padding bits are not weights and must stay 0), and
  in a pruned op the kept weights only (a pruned weight is 0, not a bit; a file that stores
  ``weight_kept`` holds exactly those bits). Flipping one changes one weight's sign.
- ``thresholds``: the 32 bits of every int32 threshold ``t[c]`` of a ``bits`` output stage (§5a).
  The direction ``d[c]`` is not a site: it must be +1 or -1, one flipped bit is neither.
- ``int8``: the 8 bits of every int8 weight of ``conv2d_u8`` / ``conv2d_i8`` (two's complement).
  A flip that would give -128 (outside the symmetric grid [-127, 127], which the loader
  rejects) is not a site; where two flips meet in one weight and the second would give -128,
  that flip is skipped and the next drawn site is taken instead (counted as ``redrawn``).

Flips are applied to the raw bytes of a copy of the file (little-endian tensor data, header
untouched) and the result is read back through the loader's checks
(:func:`onebit.runtime.format.loads`), so every evaluated model is a valid file.
"""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import numpy as np

from onebit.errors import OnebitError
from onebit.runtime import format as fmt
from onebit.runtime.graph import KEPT_ROLE

KINDS = ("binary", "thresholds", "int8")


class RobustnessError(OnebitError, ValueError):
    """A bad robustness request (unknown kind, more flips than bits, a model without the kind)."""


@dataclass
class TensorSites:
    """The flippable bits of one stored tensor: ``bits`` are bit indices into its data
    (bit ``8 * byte + b``, little-endian), ``offset`` its first byte in the file."""

    op: str
    tensor: str
    role: str
    offset: int
    bits: np.ndarray  # int64, sorted


@dataclass
class Sites:
    kind: str
    tensors: list  # list[TensorSites]

    @property
    def count(self) -> int:
        return int(sum(len(t.bits) for t in self.tensors))

    def per_op(self) -> dict:
        return {t.op: len(t.bits) for t in self.tensors}

    def locate(self, flat: np.ndarray) -> list[tuple[int, int]]:
        """``(tensor index, bit index in that tensor)`` of global site numbers ``flat``."""
        ends = np.cumsum([len(t.bits) for t in self.tensors])
        which = np.searchsorted(ends, flat, side="right")
        starts = ends - np.array([len(t.bits) for t in self.tensors])
        return [(int(i), int(self.tensors[i].bits[f - starts[i]])) for i, f in zip(which, flat)]


def header_entries(data: bytes) -> dict:
    """Tensor name -> (dtype, shape, absolute byte offset) from the safetensors header."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(bytes(data[8:8 + n]))
    header.pop("__metadata__", None)
    return {k: (v["dtype"], tuple(v["shape"]), 8 + n + v["data_offsets"][0]) for k, v in header.items()}


def _bits_of(valid: np.ndarray) -> np.ndarray:
    """Indices of the set bits of a little-endian integer array (bit 8 * byte + b)."""
    return np.flatnonzero(np.unpackbits(np.ascontiguousarray(valid).view(np.uint8), bitorder="little"))


def _channel_bits(shape: tuple, cin: int) -> np.ndarray:
    """uint64 words with the real-channel bits set (all bits but the last word's padding)."""
    valid = np.full(shape, np.uint64((1 << 64) - 1), dtype=np.uint64)
    if cin % 64:
        valid[..., -1] = np.uint64((1 << (cin % 64)) - 1)
    return valid


def int8_bits(weights: np.ndarray) -> np.ndarray:
    """The flippable bits of int8 weights (two's complement, bit ``8 * i + b`` of weight ``i``):
    every bit but those whose flip gives -128, outside the symmetric grid [-127, 127]."""
    w = np.ascontiguousarray(weights, dtype=np.int8).reshape(-1).view(np.uint8)
    flipped = w[:, None] ^ (np.uint8(1) << np.arange(8, dtype=np.uint8))[None, :]
    return np.flatnonzero(flipped != 0x80)


def find_sites(data: bytes, kind: str, model: fmt.ModelFile | None = None) -> Sites:
    """Every flippable bit of ``kind`` in the model file ``data`` (validated first)."""
    if kind not in KINDS:
        raise RobustnessError(f"unknown kind {kind!r}; use one of {', '.join(KINDS)} (or all)")
    model = model if model is not None else fmt.loads(data)
    entries = header_entries(data)
    out = []
    for op in model.ops:
        if kind == "binary" and op.type in ("bconv2d", "bdense"):
            if KEPT_ROLE in op.tensors:
                name, role = op.tensors[KEPT_ROLE], KEPT_ROLE
                bits = np.arange(int(op.attrs["kept_weights"]), dtype=np.int64)
            else:
                name, role = op.tensors["weight"], "weight"
                w = model.tensors[name]
                cin = op.attrs["in_channels"] if op.type == "bconv2d" else op.attrs["in_features"]
                valid = _channel_bits(w.shape, cin)
                mask = model.weight_mask(op)
                if mask is not None:
                    valid &= mask
                bits = _bits_of(valid)
        elif kind == "thresholds" and "threshold" in op.tensors:
            name, role = op.tensors["threshold"], "threshold"
            bits = np.arange(32 * model.tensors[name].size, dtype=np.int64)
        elif kind == "int8" and op.type in ("conv2d_u8", "conv2d_i8"):
            name, role = op.tensors["weight"], "weight"
            bits = int8_bits(model.tensors[name])
        else:
            continue
        out.append(TensorSites(op.name, name, role, entries[name][2], bits.astype(np.int64)))
    return Sites(kind, out)


def check_count(sites: Sites, flips: int) -> None:
    if flips > sites.count:
        raise RobustnessError(f"{flips} flips requested but the model has only {sites.count} "
                              f"{sites.kind} bits")


def draw(sites: Sites, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct site numbers, uniform over all sites of the kind (an ordered draw)."""
    check_count(sites, n)
    return rng.choice(sites.count, size=n, replace=False)


def random_order(sites: Sites, n: int, seed: int, trial: int, stream: int = 0) -> np.ndarray:
    """The site order of one random trial: distinct sites, uniform, seeded by ``(seed, trial,
    stream)``; int8 draws spare sites for the flips :func:`flip_bits` has to skip (64, or 1% of
    ``n`` beyond 6,400 flips: two flips in one weight grow with ``n^2 / weights``)."""
    check_count(sites, n)
    rng = np.random.default_rng([seed, trial, stream])
    extra = max(64, n // 100) if sites.kind == "int8" else 0
    return rng.choice(sites.count, size=min(sites.count, n + extra), replace=False)


def apply_flips(data: bytes, sites: Sites, order: np.ndarray, n: int) -> tuple[bytes, dict]:
    """Flip the first ``n`` valid sites of ``order`` (site numbers) in a copy of the model file
    ``data`` (:func:`flip_bits`); the result is read back through the loader's checks."""
    out, info = flip_bits(data, sites, order, n)
    fmt.loads(out)  # every flipped model goes through the loader's checks
    return out, info


def flip_bits(data: bytes, sites: Sites, order: np.ndarray, n: int) -> tuple[bytes, dict]:
    """Flip the first ``n`` valid sites of ``order`` (site numbers) in a copy of ``data``.

    Returns the new bytes and ``{"flipped", "redrawn"}``; ``redrawn`` counts int8 sites
    skipped because, after an earlier flip in the same weight, they would give -128. Raises
    RobustnessError when ``order`` runs out first."""
    check_count(sites, n)
    buf = bytearray(data)
    done, skipped = 0, 0
    for ti, bit in sites.locate(np.asarray(order)):
        if done == n:
            break
        t = sites.tensors[ti]
        pos = t.offset + bit // 8
        new = buf[pos] ^ (1 << (bit % 8))
        if sites.kind == "int8" and new == 0x80:
            skipped += 1
            continue
        buf[pos] = new
        done += 1
    if done < n:
        raise RobustnessError(f"only {done} of {n} {sites.kind} flips could be placed")
    return bytes(buf), {"flipped": done, "redrawn": skipped}


def diff_bits(a: bytes, b: bytes, sites: Sites) -> list[tuple[int, int]]:
    """``(tensor index, bit)`` of the sites where two files of one layout differ."""
    out = []
    for ti, t in enumerate(sites.tensors):
        nbytes = (int(t.bits.max()) // 8 + 1) if len(t.bits) else 0
        x = np.frombuffer(a, np.uint8, nbytes, t.offset) ^ np.frombuffer(b, np.uint8, nbytes, t.offset)
        out.extend((ti, int(k)) for k in _bits_of(x))
    return out
