import gzip
import struct

import numpy as np
import pytest

from onebit.data.errors import DatasetFormatError
from onebit.data.idx import parse_idx, read_idx


def _idx(arr: np.ndarray, code: int) -> bytes:
    head = bytes([0, 0, code, arr.ndim]) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def test_idx_uint8_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    p = tmp_path / "x-idx3-ubyte.gz"
    p.write_bytes(gzip.compress(_idx(a, 0x08)))
    out = read_idx(p)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, a)


def test_idx_int32_is_big_endian():
    a = np.array([1, -2, 70000], dtype=np.int32)
    raw = _idx(a, 0x0C)
    assert raw[8:12] == b"\x00\x00\x00\x01"
    np.testing.assert_array_equal(parse_idx(raw), a)


def test_idx_rejects_bad_header_and_size():
    with pytest.raises(DatasetFormatError, match="not an IDX file"):
        parse_idx(b"\x1f\x8b\x08\x00garbage")
    good = _idx(np.zeros((3, 2), np.uint8), 0x08)
    with pytest.raises(DatasetFormatError, match=r"header says \(3, 2\)"):
        parse_idx(good[:-1], "cut.idx")
