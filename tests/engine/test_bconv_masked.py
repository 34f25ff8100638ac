"""Masked (pruned) binary conv / dense: every ISA equals the scalar masked kernel, which equals the
NumPy oracle (ternary weights), bit for bit, for all four output stages and any thread count.

Masks: all kept (== the unmasked result), all pruned, random unstructured, word-structured
(whole 64-bit words per channel and tap), block-structured (the same pruned words for 8
consecutive output channels), mixed (block-pruned words plus unstructured holes).
Shapes: Cin in {1, 63, 64, 65, 128, 200}, k 1/3/5, stride 1/2, padding 0/1/2, tiny and odd H/W,
Cout not a multiple of 8, batch 2.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from onebit import bits
from onebit.runtime import kernels, reference

from _bconv_cases import OUTPUTS, packed, stage_params

MASKS = ("kept", "pruned", "unstructured", "word", "block", "mixed")


def full_mask(shape: tuple[int, ...], cin: int) -> np.ndarray:
    """All real channels kept (padding bits 0)."""
    return bits.pack(-np.ones(shape[:-1] + (cin,), dtype=np.int8))


def make_mask(rng: np.random.Generator, kind: str, w_shape: tuple[int, ...], cin: int,
              ratio: float = 0.4) -> np.ndarray:
    """A canonical-shape mask (padding bits 0) of one structure; `ratio` = pruned fraction."""
    full = full_mask(w_shape, cin)
    cout, words = w_shape[0], w_shape[-1]
    if kind == "kept":
        return full
    if kind == "pruned":
        return np.zeros_like(full)
    if kind == "unstructured":
        keep = rng.random(w_shape[:-1] + (cin,)) >= ratio
        return bits.pack(np.where(keep, -1, 1).astype(np.int8))
    if kind == "word":  # whole words per (channel, tap)
        return full * (rng.random(full.shape) >= ratio).astype(np.uint64)
    if kind == "block":  # the same words for 8 consecutive output channels
        blocks = (cout + 7) // 8
        keep = rng.random((blocks,) + full.shape[1:]) >= ratio
        return full * np.repeat(keep, 8, axis=0)[:cout].astype(np.uint64)
    if kind == "mixed":
        block = make_mask(rng, "block", w_shape, cin, ratio)
        return block & make_mask(rng, "unstructured", w_shape, cin, 0.2)
    raise ValueError(kind)


def masked_weights(rng, w_shape, cin, kind, ratio=0.4):
    """Random packed weights and a mask of `kind`, in canonical form (w AND m)."""
    wt = packed(rng, w_shape[:-1] + (cin,))
    m = make_mask(rng, kind, w_shape, cin, ratio)
    return wt & m, m


def test_make_mask_structures():
    rng = np.random.default_rng(0)
    shape = (20, 3, 3, 2)
    word = make_mask(rng, "word", shape, 100)
    full = full_mask(shape, 100)
    assert np.all((word == 0) | (word == full))
    block = make_mask(rng, "block", shape, 100)
    assert np.all((block == 0) | (block == full))
    for b in range(0, 16, 8):
        assert np.all(block[b:b + 8] == block[b])
    assert 0 < np.count_nonzero(block == 0) < block.size


# --- the oracle itself -------------------------------------------------------------------------

def test_oracle_ternary_by_hand():
    # one output channel, one tap, 3 channels: x = (+1, -1, -1), w = (-1, +1, -1), m = (1, 0, 1)
    x = bits.pack(np.array([[[[1, -1, -1]]]], dtype=np.int8))
    w = bits.pack(np.array([[[[-1, 1, -1]]]], dtype=np.int8))
    m = bits.pack(np.array([[[[-1, 1, -1]]]], dtype=np.int8))  # bit 1 (-1) = kept
    y = reference.bconv2d(x, w, in_channels=3, weight_mask=m)
    assert y.item() == (1 * -1) + 0 + (-1 * -1) == 0
    x2 = bits.pack(np.array([[[[-1, -1, -1]]]], dtype=np.int8))
    assert reference.bconv2d(x2, w, in_channels=3, weight_mask=m).item() == 1 + 1
    for isa in kernels.engine.supported_isas():
        assert kernels.bconv2d(x2, w, in_channels=3, weight_mask=m, isa=isa).item() == 2


# --- conv: every ISA == scalar == oracle ---------------------------------------------------------

CINS = (1, 63, 64, 65, 128, 200)
GEOMS = [  # (n, h, w, cout, k, stride, pad)
    (2, 7, 9, 17, 3, 1, 1),
    (1, 1, 1, 9, 1, 1, 0),
    (2, 3, 2, 8, 3, 2, 1),
    (1, 5, 6, 7, 5, 1, 2),
    (2, 8, 8, 24, 3, 2, 0),
    (1, 9, 5, 13, 5, 2, 1),
    (1, 2, 3, 16, 3, 1, 2),
    (1, 11, 4, 33, 1, 2, 0),
    (1, 6, 13, 16, 3, 1, 1),  # interior tiles of 4 (8 channels) and 2 (16 channels) between edges
]


def _cases():
    rng = np.random.default_rng(4242)
    out = []
    for cin, geom, kind in itertools.product(CINS, GEOMS, MASKS):
        if kind in ("kept", "pruned") and rng.random() < 0.5:
            continue  # cheap structures: half the grid is enough
        out.append((cin,) + geom + (kind,))
    return out


CASES = _cases()


def _id(c):
    return "cin{}_n{}_{}x{}-{}_k{}_s{}_p{}_{}".format(*c)


def _run_all_stages(fn_ref, fn, cout, k_bits, rng):
    for output in OUTPUTS:
        variants = [stage_params(rng, cout, k_bits, output)]
        if output == "int8":
            variants.append(stage_params(rng, cout, k_bits, output, int8_wide=True))
        for params in variants:
            ref = fn_ref(output, params)
            got = fn(output, params)
            assert got.dtype == ref.dtype and got.shape == ref.shape
            np.testing.assert_array_equal(got, ref, err_msg=f"output={output}")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_masked_bconv_equals_oracle(isa, case):
    cin, n, h, w, cout, k, stride, pad, kind = case
    rng = np.random.default_rng([cin, n, h, w, cout, k, stride, pad, MASKS.index(kind)])
    x = packed(rng, (n, h, w, cin))
    wt, m = masked_weights(rng, (cout, k, k, (cin + 63) // 64), cin, kind)
    y_ref = reference.bconv2d(x, wt, in_channels=cin, stride=stride, padding=pad, weight_mask=m)
    prep = kernels.prepare_weights(wt, in_channels=cin, isa=isa, weight_mask=m)
    assert prep.masked
    for threads in (1, 2, 3):
        got = kernels.bconv2d(x, wt, in_channels=cin, stride=stride, padding=pad, weight_mask=m, isa=isa,
                              threads=threads)
        np.testing.assert_array_equal(got, y_ref, err_msg=f"threads={threads}")
        got = kernels.bconv2d(x, prep, in_channels=cin, stride=stride, padding=pad, isa=isa, threads=threads)
        np.testing.assert_array_equal(got, y_ref, err_msg=f"prepared threads={threads}")
    if kind == "kept":  # an all-ones mask is the dense layer
        np.testing.assert_array_equal(
            y_ref, kernels.bconv2d(x, wt, in_channels=cin, stride=stride, padding=pad, isa=isa))

    def ref(output, params):
        return reference.bconv2d(x, wt, in_channels=cin, stride=stride, padding=pad, weight_mask=m,
                                 output=output, **params)

    def run(output, params):
        return kernels.bconv2d(x, prep, in_channels=cin, stride=stride, padding=pad, output=output, isa=isa,
                               threads=2, **params)

    _run_all_stages(ref, run, cout, k * k * cin, rng)


@pytest.mark.parametrize("kind", MASKS)
@pytest.mark.parametrize("n, cin, cout", [(1, 1, 1), (3, 63, 7), (2, 65, 64), (2, 200, 9), (1, 1024, 70)],
                         ids=lambda v: str(v))
def test_masked_bdense_equals_oracle(isa, kind, n, cin, cout):
    rng = np.random.default_rng([n, cin, cout, MASKS.index(kind)])
    x = packed(rng, (n, cin))
    wt, m = masked_weights(rng, (cout, (cin + 63) // 64), cin, kind)
    prep = kernels.prepare_weights(wt, in_channels=cin, isa=isa, weight_mask=m)

    def ref(output, params):
        return reference.bdense(x, wt, in_features=cin, weight_mask=m, output=output, **params)

    for threads in (1, 3):
        def run(output, params, threads=threads):
            return kernels.bdense(x, wt, in_features=cin, weight_mask=m, output=output, isa=isa, threads=threads,
                                  **params)

        _run_all_stages(ref, run, cout, cin, rng)

    def run_prep(output, params):
        return kernels.bdense(x, prep, in_features=cin, output=output, isa=isa, threads=2, **params)

    _run_all_stages(ref, run_prep, cout, cin, rng)


@pytest.mark.parametrize("stride", [1, 2])
def test_masked_1x1_on_1x1_images(isa, stride):
    """A batch of 1x1 images with a 1x1 kernel (the dense-layer case the AVX2 kernel runs as one
    1 x N image), any stride."""
    rng = np.random.default_rng(stride)
    x = packed(rng, (5, 1, 1, 70))
    wt, m = masked_weights(rng, (19, 1, 1, 2), 70, "mixed")
    got = kernels.bconv2d(x, wt, in_channels=70, stride=stride, weight_mask=m, isa=isa, threads=2)
    np.testing.assert_array_equal(got, reference.bconv2d(x, wt, in_channels=70, stride=stride, weight_mask=m))


def test_masked_all_pruned_is_zero(isa):
    rng = np.random.default_rng(3)
    x = packed(rng, (2, 5, 5, 70))
    wt, m = masked_weights(rng, (9, 3, 3, 2), 70, "pruned")
    y = kernels.bconv2d(x, wt, in_channels=70, padding=1, weight_mask=m, isa=isa)
    assert y.shape == (2, 5, 5, 9) and not y.any()


@pytest.mark.parametrize("ratio", [0.2, 0.4, 0.6, 0.9])
@pytest.mark.parametrize("kind", ["word", "block", "unstructured", "mixed"])
def test_masked_larger_layer(isa, kind, ratio):
    """A layer with multi-word taps, several 8-channel blocks and long entry lists (> 31 words
    per block, so the u8 lanes are widened inside the list)."""
    rng = np.random.default_rng([int(ratio * 10), MASKS.index(kind)])
    cin, cout = 300, 21
    x = packed(rng, (1, 6, 7, cin))
    wt, m = masked_weights(rng, (cout, 3, 3, 5), cin, kind, ratio)
    ref = reference.bconv2d(x, wt, in_channels=cin, padding=1, weight_mask=m)
    prep = kernels.prepare_weights(wt, in_channels=cin, isa=isa, weight_mask=m)
    np.testing.assert_array_equal(kernels.bconv2d(x, prep, in_channels=cin, padding=1, isa=isa, threads=2), ref)
    np.testing.assert_array_equal(
        kernels.bconv2d(x, prep, in_channels=cin, stride=2, padding=1, isa=isa, threads=1),
        reference.bconv2d(x, wt, in_channels=cin, stride=2, padding=1, weight_mask=m))


# --- large K: accumulators stay exact -----------------------------------------------------------

@pytest.mark.parametrize("cin, k", [(32767, 1), (3640, 3), (32768, 1), (3641, 3)])
def test_masked_large_k(isa, cin, k):
    """K near the int16 boundary: kept-count and popcount sums exact on every ISA (all-agree and
    all-disagree inputs give y = +-kept exactly; a random mask and input match the oracle)."""
    rng = np.random.default_rng([cin, k])
    words = (cin + 63) // 64
    m = make_mask(rng, "unstructured", (3, k, k, words), cin, 0.3)
    m[0] = full_mask((k, k, words), cin)  # channel 0 keeps everything: y = +-K
    ones = -np.ones((1, k, k, cin), dtype=np.int8)
    x_neg = bits.pack(ones)  # every value -1
    wt = bits.pack(np.broadcast_to(ones, (3, k, k, cin)).copy()) & m  # kept weights -1
    kept = np.array([bits.popcount(m[c]).sum() for c in range(3)])
    y = kernels.bconv2d(x_neg, wt, in_channels=cin, weight_mask=m, isa=isa)
    np.testing.assert_array_equal(y.reshape(-1), kept)
    assert y[0, 0, 0, 0] == k * k * cin
    x_pos = np.zeros_like(x_neg)  # every value +1: y = -kept
    np.testing.assert_array_equal(kernels.bconv2d(x_pos, wt, in_channels=cin, weight_mask=m, isa=isa).reshape(-1),
                                  -kept)
    x = packed(rng, (1, k, k, cin))
    wr = packed(rng, (3, k, k, cin)) & m
    np.testing.assert_array_equal(kernels.bconv2d(x, wr, in_channels=cin, weight_mask=m, isa=isa, threads=2),
                                  reference.bconv2d(x, wr, in_channels=cin, weight_mask=m))


# --- validation -------------------------------------------------------------------------------------

def test_masked_validation_errors():
    rng = np.random.default_rng(5)
    cin = 70
    x = packed(rng, (1, 5, 5, cin))
    wt, m = masked_weights(rng, (8, 3, 3, 2), cin, "unstructured")
    with pytest.raises(ValueError, match="weight_mask must have dtype uint64"):
        kernels.bconv2d(x, wt, in_channels=cin, padding=1, weight_mask=m.astype(np.int64))
    with pytest.raises(ValueError, match=r"weight_mask must have the packed weight shape \(8, 3, 3, 2\)"):
        kernels.bconv2d(x, wt, in_channels=cin, padding=1, weight_mask=np.ascontiguousarray(m[:, :2]))
    with pytest.raises(ValueError, match="C-contiguous"):
        kernels.bconv2d(x, wt, in_channels=cin, padding=1, weight_mask=np.asfortranarray(m))
    bad = m.copy()
    bad[3, 1, 2, 1] |= np.uint64(1) << np.uint64(cin % 64)
    with pytest.raises(ValueError, match=r"weight_mask has nonzero padding bits above channel 70 \(output channel 3"):
        kernels.bconv2d(x, wt, in_channels=cin, padding=1, weight_mask=bad)
    with pytest.raises(ValueError, match="nonzero padding bits"):
        kernels.prepare_weights(wt, in_channels=cin, weight_mask=bad)
    wbad = wt.copy()
    pos = np.argwhere(~m[..., 0] & np.uint64(1))[0]  # a pruned weight (bit 0 of word 0)
    wbad[tuple(pos) + (0,)] |= np.uint64(1)
    for isa in kernels.engine.supported_isas():
        with pytest.raises(ValueError, match="weight bits are set where weight_mask is 0"):
            kernels.bconv2d(x, wbad, in_channels=cin, padding=1, weight_mask=m, isa=isa)
        with pytest.raises(ValueError, match="weight bits are set where weight_mask is 0"):
            kernels.prepare_weights(wbad, in_channels=cin, weight_mask=m, isa=isa)
    with pytest.raises(ValueError, match="weight bits are set"):
        reference.bconv2d(x, wbad, in_channels=cin, padding=1, weight_mask=m)
    prep = kernels.prepare_weights(wt, in_channels=cin, weight_mask=m)
    with pytest.raises(ValueError, match="weight_mask cannot be combined with prepared weights"):
        kernels.bconv2d(x, prep, in_channels=cin, padding=1, weight_mask=m)
    plain = kernels.prepare_weights(wt, in_channels=cin)
    assert not plain.masked and "masked" not in repr(plain) and "masked=True" in repr(prep)
    with pytest.raises(ValueError, match="weight_mask cannot be combined with prepared weights"):
        kernels.bconv2d(x, plain, in_channels=cin, padding=1, weight_mask=m)
    # dense
    xd = packed(rng, (2, cin))
    wd, md = masked_weights(rng, (5, 2), cin, "unstructured")
    with pytest.raises(ValueError, match=r"weight_mask must have the packed weight shape \(5, 2\)"):
        kernels.bdense(xd, wd, in_features=cin, weight_mask=md[:4])
    with pytest.raises(ValueError, match="weight_mask must have dtype uint64"):
        kernels.bdense(xd, wd, in_features=cin, weight_mask=md.view(np.int64))
    with pytest.raises(ValueError, match="weight bits are set"):
        kernels.bdense(xd, wd | np.uint64(1), in_features=cin, weight_mask=md & ~np.uint64(1))
    with pytest.raises(ValueError, match="weight_mask cannot be combined"):
        kernels.bdense(xd, kernels.prepare_weights(wd, in_channels=cin, weight_mask=md), in_features=cin,
                       weight_mask=md)
    # the raw engine functions validate the same way
    with pytest.raises(ValueError, match="weight_mask must have dtype uint64"):
        kernels.engine.bconv2d(x, wt, in_channels=cin, padding=1, weight_mask=m.astype(np.uint32))
