"""The reference bit layout (docs/format.md §1-2) checked against its own definition."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from onebit import bits


@pytest.mark.parametrize("c", [1, 7, 63, 64, 65, 127, 128, 129])
def test_bits_one_hot_order(c):
    # A single -1 at channel i sets exactly bit i % 64 of word i // 64.
    for i in range(c):
        x = np.ones(c, np.float32)
        x[i] = -1
        words = bits.pack(x)
        expected = np.zeros(bits.num_words(c), np.uint64)
        expected[i // 64] = np.uint64(1) << np.uint64(i % 64)
        np.testing.assert_array_equal(words, expected)


@pytest.mark.parametrize("c", [1, 7, 63, 65, 127, 129])
def test_bits_padding_bits_zero(c):
    words = bits.pack(-np.ones((3, c), np.float32))  # every real channel is -1 (bit 1)
    assert int(bits.popcount(words).sum()) == 3 * c


def test_bits_sign_of_zero_is_plus_one():
    assert bits.sign(np.array([0.0, -0.0, 1e-30, -1e-30])).tolist() == [1, 1, 1, -1]
    assert bits.pack(np.zeros(5))[0] == 0


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=140),
                  elements=st.floats(-2, 2, width=32)))
def test_bits_unpack_pack_is_sign(x):
    np.testing.assert_array_equal(bits.unpack(bits.pack(x), x.shape[-1]), bits.sign(x))


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1))
def test_bits_dot_equals_integer_dot(k, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(k), rng.standard_normal(k)
    expected = int(bits.sign(a).astype(np.int64) @ bits.sign(b).astype(np.int64))
    assert int(bits.dot(bits.pack(a), bits.pack(b), k)) == expected


def test_bits_unpack_rejects_bad_input():
    with pytest.raises(ValueError, match="uint64"):
        bits.unpack(np.zeros(2, np.int64), 70)
    with pytest.raises(ValueError, match="cannot hold"):
        bits.unpack(np.zeros(2, np.uint64), 200)
