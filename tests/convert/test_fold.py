"""Folding math: BN + sign -> threshold/direction, BN + clip -> (M, B, S), first-layer int8."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from onebit.convert.fold import first_layer, int8_stage, quantize_weights_int8, threshold_stage

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(a=finite, b=finite, k=st.integers(1, 40000), seed=st.integers(0, 2**31))
def test_threshold_stage_equals_sign_of_affine(a, b, k, seed):
    # bit (= -1) exactly when z = a*y + b < 0, for every reachable y in [-K, K]
    ys = np.random.default_rng(seed).integers(-k, k + 1, 64)
    ys = np.concatenate([ys, [-k, k, 0]])
    t, d = threshold_stage(np.array([a]), np.array([b]), k)
    bit = np.where(d[0] > 0, ys < t[0], ys > t[0])
    z = a * ys.astype(np.float64) + b
    assert np.array_equal(bit, z < 0)
    assert -k - 1 <= t[0] <= k + 1


def test_threshold_stage_negative_gamma_flips_direction():
    t, d = threshold_stage(np.array([2.0, -2.0]), np.array([-3.0, 3.0]), 10)
    # a>0: z>=0 <=> y >= 1.5 -> t = 2, d = +1 ; a<0: z>=0 <=> y <= 1.5 -> t = 1, d = -1
    assert t.tolist() == [2, 1] and d.tolist() == [1, -1]


def test_threshold_stage_zero_gamma_is_constant_outside_range():
    t, d = threshold_stage(np.array([0.0, 0.0]), np.array([-1.0, 1.0]), 9)
    assert t.tolist() == [10, -10] and d.tolist() == [1, 1]  # always -1, always +1


def test_threshold_stage_relu_channels_are_constant_plus_one():
    t, d = threshold_stage(np.array([1.0, 1.0]), np.array([-5.0, -5.0]), 9, np.array([True, False]))
    assert t.tolist() == [-10, 5] and d.tolist() == [1, 1]


@settings(max_examples=200, deadline=None)
@given(a=st.floats(-50, 50, allow_nan=False), b=st.floats(-2000, 2000, allow_nan=False),
       clip=st.floats(0.05, 8.0), k=st.integers(1, 32767), seed=st.integers(0, 2**31))
def test_int8_stage_matches_clip_of_affine(a, b, clip, k, seed):
    s = clip / 127.0
    m, bb, sh = int8_stage(np.array([a]), np.array([b]), s, k)
    assert 1 <= sh <= 31
    ys = np.random.default_rng(seed).integers(-k, k + 1, 64).astype(np.int64)
    q = np.clip((ys * int(m[0]) + int(bb[0]) + (1 << (sh - 1))) >> sh, -127, 127)
    exact = np.clip(np.floor((a * ys + b) / s + 0.5), -127, 127)
    # the fixed point differs from the real map by at most |y|*2^-S*... : one grid step at most,
    # and only where the real value sits within the multiplier error of a rounding boundary
    err = (np.abs(ys) * 0.5 + 0.5 + 1) / 2.0**sh
    v = (a * ys + b) / s
    near = np.abs(v - np.floor(v) - 0.5) <= err
    assert np.all(np.abs(q - exact) <= 1)
    assert np.array_equal(q[~near], exact[~near])


def test_quantize_weights_int8_symmetric_per_channel():
    w = np.array([[1.0, -0.5, 0.25], [0.0, 0.0, 0.0], [-3.0, 1.0, 2.0]])
    q, s = quantize_weights_int8(w)
    assert q.dtype == np.int8 and q.min() >= -127
    assert q[0].tolist() == [127, -64, 32] and q[1].tolist() == [0, 0, 0] and q[2, 0] == -127
    assert s[1] == 1.0 and np.isclose(s[0], 1 / 127)


def test_first_layer_folds_normalization_exactly_for_interior_pixels():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3))
    bias = rng.normal(size=4)
    mean, std = np.array([0.49, 0.48, 0.45]), np.array([0.25, 0.24, 0.26])
    q, s, b2, zp = first_layer(w, bias, mean, std)
    assert q.shape == (4, 3, 3, 3) and zp.tolist() == [125, 122, 115]
    u = rng.integers(0, 256, size=(3, 3, 3))  # one interior 3x3 patch, HWC
    x = (u / 255.0 - mean) / std
    real = np.einsum("oihw,hwi->o", w, x) + bias
    acc = np.einsum("ohwi,hwi->o", q.astype(np.int64), u - zp)
    approx = s * acc + b2
    # only the int8 rounding of the weights remains: <= half a step per tap
    bound = 0.5 * s * np.abs(u - zp).sum()
    assert np.all(np.abs(approx - real) <= bound + 1e-9)
