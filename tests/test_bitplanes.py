"""onebit.bitplanes: plane ids, the transform (LSB..MSB, +-1) and multi-bit weight planes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from onebit.bitplanes import (bit_planes, odd_weight_planes, parse_input_bits, plane_ids, top_planes,
                              weight_from_planes)


def test_bitplanes_top_planes_are_the_msbs_of_each_colour():
    assert top_planes(2, 3) == (6, 7, 14, 15, 22, 23)
    assert plane_ids(8, 1) == tuple(range(8))
    assert plane_ids([23, 7], 3) == (7, 23)


@pytest.mark.parametrize("bad,match", [(0, "input_bits"), (9, "input_bits"), ([8], "out of range"),
                                       ([], "empty"), ([1, 1], "duplicate"), ("4", "input_bits"),
                                       ([True], "out of range")])
def test_bitplanes_plane_ids_reject_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        plane_ids(bad, 1)


def test_bitplanes_parse_command_line_forms():
    assert parse_input_bits("4") == 4
    assert parse_input_bits("7,15,23") == [7, 15, 23]
    assert parse_input_bits("7,") == [7]
    with pytest.raises(ValueError, match="comma-separated"):
        parse_input_bits("msb")


def test_bitplanes_one_hot_bit_order():
    # pixel value 2^b: plane b is +1, every other plane -1 (bit 0 = LSB)
    u = (1 << np.arange(8, dtype=np.uint8)).reshape(8, 1)
    p = bit_planes(u, range(8))
    assert np.array_equal(p, 2 * np.eye(8, dtype=np.int8) - 1)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 255), st.integers(0, 255))
def test_bitplanes_planes_rebuild_the_pixel(a, b):
    u = np.array([[a, b]], dtype=np.uint8)
    p = bit_planes(u, range(16)).astype(np.int64)
    bits = (p + 1) // 2
    assert int((bits[0, :8] << np.arange(8)).sum()) == a
    assert int((bits[0, 8:] << np.arange(8)).sum()) == b


@pytest.mark.parametrize("m", [1, 2, 5, 8])
def test_bitplanes_odd_weights_roundtrip(m):
    top = (1 << m) - 1
    v = np.arange(-top, top + 1, 2)
    planes = odd_weight_planes(v, m)
    assert planes.shape == (m, v.size) and set(np.unique(planes)) <= {-1, 1}
    assert np.array_equal(weight_from_planes(planes), v)


def test_bitplanes_odd_weights_reject_even_or_wide():
    with pytest.raises(ValueError, match="odd"):
        odd_weight_planes(np.array([2]), 3)
    with pytest.raises(ValueError, match="odd"):
        odd_weight_planes(np.array([9]), 3)
    with pytest.raises(ValueError, match="weight bits"):
        odd_weight_planes(np.array([1]), 9)
