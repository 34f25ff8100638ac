"""Reader of the IDX format (MNIST, Fashion-MNIST), plain or gzip-compressed.

Layout (LeCun et al., 1998): 2 zero bytes, 1 type byte, 1 byte ndim, then ndim big-endian
int32 dimensions, then the data in C order, big-endian.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from onebit.data.errors import DatasetFormatError

__all__ = ["read_idx", "parse_idx"]

_TYPES = {
    0x08: np.dtype(np.uint8), 0x09: np.dtype(np.int8), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}


def parse_idx(buf: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes to an array (native byte order)."""
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _TYPES:
        raise DatasetFormatError(f"{name}: not an IDX file (header {buf[:4].hex()})")
    dtype, ndim = _TYPES[buf[2]], buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise DatasetFormatError(f"{name}: truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(buf, ">u4", count=ndim, offset=4))
    count = int(np.prod(dims, dtype=np.int64))
    if len(buf) - header != count * dtype.itemsize:
        raise DatasetFormatError(
            f"{name}: IDX header says {dims} ({count * dtype.itemsize} bytes of data), "
            f"file holds {len(buf) - header}")
    arr = np.frombuffer(buf, dtype, count=count, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=False) if dtype.itemsize > 1 else arr


def read_idx(path) -> np.ndarray:
    """Read an IDX file; ``.gz`` files are decompressed."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            buf = f.read()
    except (OSError, EOFError) as exc:
        raise DatasetFormatError(f"{path}: cannot read IDX data: {exc}") from exc
    return parse_idx(buf, str(path))
