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


@pytest.mark.parametrize("shape", [(5, 3, 3, 16), (4, 1, 1, 64), (3, 2, 2, 130), (6, 200), (2, 7, 5, 70)])
def test_bits_word_mask_round_trip_and_bit_order(shape):
    # a mask constant inside every packed word packs to one bit per (output channel, word), in
    # the C order of the packed weight's axes after the first (docs/format.md §7.3)
    rng = np.random.default_rng(sum(shape))
    cout, c = shape[0], shape[-1]
    wshape = shape[:-1] + (bits.num_words(c),)
    word_keep = rng.random(wshape) < 0.6
    keep = np.repeat(word_keep, 64, axis=-1)[..., :c]
    mask = bits.pack_mask(keep)
    compact = bits.pack_word_mask(mask, c)
    per = int(np.prod(wshape[1:]))
    assert compact.dtype == np.uint64 and compact.shape == (cout, bits.num_words(per))
    flat = word_keep.reshape(cout, per)
    for o in range(cout):
        for j in range(per):
            assert (int(compact[o, j // 64]) >> (j % 64)) & 1 == int(flat[o, j])
    if per % 64:
        assert not (compact[:, -1] >> np.uint64(per % 64)).any()  # padding bits 0
    np.testing.assert_array_equal(bits.unpack_word_mask(compact, wshape, c), mask)
    np.testing.assert_array_equal(bits.word_mask_kept_counts(compact, wshape, c), bits.kept_counts(mask))
    np.testing.assert_array_equal(bits.kept_counts(mask), keep.reshape(cout, -1).sum(axis=1))


@pytest.mark.parametrize("c", [16, 64, 70])
def test_bits_word_mask_none_when_a_word_is_partly_kept(c):
    keep = np.ones((4, 3, 3, c), bool)
    assert bits.pack_word_mask(bits.pack_mask(keep), c) is not None  # all kept is word-constant
    keep[2, 1, 0, c - 1] = False  # one weight of the last word
    assert bits.pack_word_mask(bits.pack_mask(keep), c) is None
    keep[2, 1, 0, 64 * (bits.num_words(c) - 1):] = False  # now the whole (real part of the) word
    assert bits.pack_word_mask(bits.pack_mask(keep), c) is not None


@pytest.mark.parametrize("shape,c,p", [((5, 3, 3, 2), 70, 0.6), ((9, 1, 1, 1), 64, 0.5), ((7, 3), 150, 0.0),
                                        ((7, 3), 150, 1.0), ((3, 1), 1, 0.5), ((4, 2, 2, 4), 200, 0.97)])
def test_bits_kept_weights_round_trip_and_order(shape, c, p):
    # only the weight bits at the mask's 1 bits, in order (word by word, bit 0 first), padded with
    # 0 to whole words (docs/format.md §7.3, weight_kept)
    rng = np.random.default_rng(c)
    keep = rng.random(shape[:-1] + (c,)) < p
    w = bits.pack(rng.standard_normal(shape[:-1] + (c,))) & bits.pack_mask(keep)
    mask = bits.pack_mask(keep)
    words, n = bits.pack_kept(w, mask)
    assert n == keep.sum() and words.dtype == np.uint64 and words.shape == (bits.num_words(n),)
    seq = (bits.unpack(w, c) < 0)[keep]  # the kept weights' bits in C order
    got = [(int(words[i // 64]) >> (i % 64)) & 1 for i in range(64 * words.size)]
    assert got[:n] == seq.astype(int).tolist() and not any(got[n:])
    np.testing.assert_array_equal(bits.unpack_kept(words, mask), w)
    if n:
        with pytest.raises(ValueError, match="fewer than the mask's"):
            bits.unpack_kept(words[:-1], mask)


@pytest.mark.parametrize("c", [128, 130])
def test_bits_kept_weights_of_whole_word_masks(c):
    # whole 64-bit words kept or pruned (word pruning, C % 64 == 0) take the word-wise path of
    # unpack_kept; a partial last word (C % 64 != 0) the bit-wise one: same result
    rng = np.random.default_rng(c)
    word_keep = rng.random((6, 3, 3, bits.num_words(c))) < 0.5
    keep = np.repeat(word_keep, 64, axis=-1)[..., :c]
    mask = bits.pack_mask(keep)
    w = bits.pack(rng.standard_normal(keep.shape)) & mask
    words, n = bits.pack_kept(w, mask)
    assert n == keep.sum()
    np.testing.assert_array_equal(bits.unpack_kept(words, mask), w)
    seq = (bits.unpack(w, c) < 0)[keep]
    assert [(int(words[i // 64]) >> (i % 64)) & 1 for i in range(n)] == seq.astype(int).tolist()


def test_bits_popcount_matches_python():
    rng = np.random.default_rng(0)
    words = np.concatenate([rng.integers(0, 2**63, 200, dtype=np.uint64) * np.uint64(2) + np.uint64(1),
                            np.array([0, 2**64 - 1, 2**63, 1], dtype=np.uint64)]).reshape(17, 12)
    got = bits.popcount(words)
    assert got.dtype == np.int64 and got.shape == (17, 12)
    assert got.reshape(-1).tolist() == [bin(int(v)).count("1") for v in words.reshape(-1)]
