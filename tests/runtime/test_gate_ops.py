"""The float32 ops of a squeeze-excitation gate (``sigmoid_f32``, ``prelu_f32``, ``mul_channels_f32``,
docs/format.md §7.3) on a hand-written graph whose values reach the edges of float32 (saturated
sigmoids, infinities, NaN, subnormals, signed zeros): the engine equals the integer simulation
value by value on every ISA, and each op meets its definition."""
from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import onebit.convert as cv
from onebit.runtime import Session
from onebit import FormatError
from onebit.runtime.graph import Value

from file_edits import join, loads_both, split
from graph_files import GraphFile

H, W, C = 3, 4, 7
SLOPE = np.array([0.25, -0.5, 0.0, 1.5, -2.0, 0.1, 1.0], np.float32)


def _graph():
    """u8 -> conv2d_f32 1x1 (x: channels spanning [-768, 762], near zero, +-inf, NaN (inf - inf),
    mixed, subnormal, zero) -> sigmoid (s), PReLU (p); global pool of s -> sigmoid (gate g);
    p * g (mul_channels_f32) + s -> global pool -> dense."""
    gf = GraphFile((H, W, 3))
    op = gf.op

    w = np.zeros((C, 1, 1, 3), np.float32)
    w[0, 0, 0, 0] = 6.0
    w[1, 0, 0, 0] = 0.01
    w[2, 0, 0, 0] = 3e38
    w[3, 0, 0, :2] = (3e38, 3e38)
    w[4, 0, 0] = (-0.05, 0.03, 0.02)
    w[5, 0, 0, 0] = 1e-39
    op("x", "conv2d_f32", ["input"], Value("f32", (H, W, C)),
       dict(in_channels=3, out_channels=C, kernel=[1, 1], stride=[1, 1], padding=[0, 0]),
       dict(weight=w, bias=np.zeros(C, np.float32), in_scale=np.ones(3, np.float32),
            in_offset=np.full(3, -128.0, np.float32)))
    op("s", "sigmoid_f32", ["x"], Value("f32", (H, W, C)))
    op("p", "prelu_f32", ["x"], Value("f32", (H, W, C)), tensors=dict(slope=SLOPE))
    op("sg", "global_avgpool", ["s"], Value("f32", (C,)))
    op("g", "sigmoid_f32", ["sg"], Value("f32", (C,)))
    op("m", "mul_channels_f32", ["p", "g"], Value("f32", (H, W, C)))
    op("a", "add", ["m", "s"], Value("f32", (H, W, C)))
    op("f", "global_avgpool", ["a"], Value("f32", (C,)))
    rng = np.random.default_rng(0)
    op("logits", "dense_f32", ["f"], Value("f32", (4,)), dict(in_features=C, out_features=4),
       dict(weight=rng.standard_normal((4, C)).astype(np.float32), bias=np.zeros(4, np.float32)))
    return gf.dumps("logits", mean=[0.5] * 3, std=[0.25] * 3, zero_point=[128] * 3)


@pytest.fixture(scope="module")
def gate_bytes():
    return _graph()


def _inputs():
    rng = np.random.default_rng(1)
    u = rng.integers(0, 256, (5, H, W, 3), dtype=np.uint8)
    u[0, 0, 0] = (128, 128, 128)  # x = 0 everywhere: +0.0 through PReLU, sigmoid 0.5
    u[0, 0, 1] = (255, 0, 0)  # channel 3: inf + -inf = NaN
    u[0, 0, 2] = (0, 255, 0)
    u[1, 1, 1] = (0, 0, 0)  # the most negative inputs
    u[1, 1, 2] = (255, 255, 255)
    return u


def test_engine_equals_simulation_at_the_edges_of_float32(gate_bytes, isa):
    sess = Session(gate_bytes, isa=isa)
    u = _inputs()
    eng = sess.run_values(u)
    import torch

    _, env = cv.simulate(sess.model)(torch.from_numpy(u), return_values=True)
    x = eng["x"]
    assert np.isnan(x).any() and np.isposinf(x).any() and np.isneginf(x).any()
    assert (np.abs(x[..., 0]) > 700).any() and ((x != 0) & (np.abs(x) < np.finfo(np.float32).tiny)).any()
    for name in ("x", "s", "p", "sg", "g", "m", "a", "f", "logits"):
        s = env[name]
        s = (s.permute(0, 2, 3, 1) if s.dim() == 4 else s).numpy()
        np.testing.assert_array_equal(eng[name], s, err_msg=name)  # NaN where NaN, else equal
        same_bits = (eng[name].view(np.uint32) == s.view(np.uint32)) | np.isnan(eng[name])
        assert same_bits.all(), name  # signed zeros too


def test_the_ops_meet_their_definitions(gate_bytes):
    sess = Session(gate_bytes)
    v = sess.run_values(_inputs())
    x, s, p, g, m = v["x"], v["s"], v["p"], v["g"], v["m"]
    with np.errstate(over="ignore", invalid="ignore"):
        ref = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))
    ok = np.isnan(x)
    assert np.isnan(s[ok]).all()
    # float32 of the float64 logistic: within one float32 rounding of the exact value
    assert (np.abs(s[~ok] - ref[~ok]) <= np.spacing(np.abs(ref[~ok]).astype(np.float32))).all()
    assert s[np.isposinf(x)].min() == 1.0 and s[np.isneginf(x)].max() == 0.0
    assert ((s >= 0) & (s <= 1) | ok).all()
    with np.errstate(invalid="ignore"):  # a zero slope times -inf is NaN, in the engine too
        want = np.where(x >= 0, x, SLOPE * x)
    np.testing.assert_array_equal(p, want)
    assert (p.view(np.uint32)[x == 0] == x.view(np.uint32)[x == 0]).all()  # x >= 0 keeps x (and +0.0)
    np.testing.assert_array_equal(m, p * g[:, None, None, :])


def test_session_refuses_wrong_input_shape(gate_bytes):
    sess = Session(gate_bytes)
    with pytest.raises((ValueError, TypeError)):
        sess.run(np.zeros((2, H + 1, W, 3), np.uint8))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**33, 2**33) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=6)
GATE_TYPES = ("sigmoid_f32", "prelu_f32", "mul_channels_f32")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**6), key=st.sampled_from(["inputs", "attrs", "tensors", "type", "output"]),
       value=json_values, shape=st.lists(st.integers(0, 9), max_size=4))
def test_edits_of_gate_ops_are_rejected_alike_or_run(gate_bytes, pick, key, value, shape):
    """Random edits of the new ops (their inputs, attributes, tensor roles, type, output, and
    their tensors' shapes): both loaders accept or reject alike, and an accepted file runs."""
    header, body = split(gate_bytes)
    graph = json.loads(header["__metadata__"]["graph"])
    ops = [o for o in graph["ops"] if o["type"] in GATE_TYPES]
    op = ops[pick % len(ops)]
    if key == "tensors" and op["tensors"] and pick % 2:
        header[next(iter(op["tensors"].values()))]["shape"] = shape
    else:
        op[key] = value
    header["__metadata__"]["graph"] = json.dumps(graph)
    data = join(header, body)
    try:
        loads_both(data)
    except FormatError:
        return
    out = Session(data).run(_inputs())
    assert out.shape == (5, 4)
