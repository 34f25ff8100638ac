"""Channel concatenation (``concat``) of int8, float32 and packed-bit feature maps: the engine equals
the integer simulation value by value on every ISA, the definition holds (channels of the first
input, then the second's; bits at word-unaligned offsets with zero padding bits), and both
loaders reject malformed concats with the same error."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import onebit.convert as cv
from onebit import bits
from onebit.convert.compare import engine_vs_simulation
from onebit.runtime import Session
from onebit.runtime import format as fmt
from onebit.runtime.graph import Value

from file_edits import both_reject, edit_graph
from graph_files import GraphFile

H, W, C = 6, 5, 70  # 70 + 70 bits: three words per pixel, the second input at bit offset 70


def _graph(seed=0):
    """u8 -> conv2d_u8 (a, int8) -> dwconv2d_i8 (b, int8, same scale) -> concat(a, b) (int8);
    bitpack(a), bitpack(b) -> concat (bits) -> bconv2d (f32); dequantize(int8 concat) ->
    concat with the bconv2d output (f32) -> global_avgpool -> dense_f32."""
    rng = np.random.default_rng(seed)
    s = 0.05
    gf = GraphFile((H, W, 3))
    op = gf.op

    def int8_stage(n):
        return {"multiplier": rng.integers(1, 1 << 12, n).astype(np.int32),
                "bias": rng.integers(-(1 << 20), 1 << 20, n).astype(np.int32)}

    geo = dict(kernel=[3, 3], stride=[1, 1], padding=[1, 1])
    op("a", "conv2d_u8", ["input"], Value("int8", (H, W, C), s),
       dict(in_channels=3, out_channels=C, output="int8", shift=20, out_scale=s, **geo),
       dict(weight=rng.integers(-127, 128, (C, 3, 3, 3)).astype(np.int8),
            zero_point=np.array([110, 120, 100], np.int32), **int8_stage(C)))
    op("b", "dwconv2d_i8", ["a"], Value("int8", (H, W, C), s),
       dict(in_channels=C, out_channels=C, output="int8", shift=14, out_scale=s, **geo),
       dict(weight=rng.integers(-127, 128, (3, 3, C)).astype(np.int8), **int8_stage(C)))
    op("c", "concat", ["a", "b"], Value("int8", (H, W, 2 * C), s))
    op("pa", "bitpack", ["a"], Value("bits", (H, W, C)))
    op("pb", "bitpack", ["b"], Value("bits", (H, W, C)))
    op("q", "concat", ["pa", "pb"], Value("bits", (H, W, 2 * C)))
    k = 9 * 2 * C
    signs = rng.choice([-1.0, 1.0], (24, 3, 3, 2 * C))
    op("d", "bconv2d", ["q"], Value("f32", (H, W, 24)),
       dict(in_channels=2 * C, out_channels=24, accumulator_bound=k, accumulator_bits=16, output="f32", **geo),
       dict(weight=bits.pack(signs), scale=rng.random(24).astype(np.float32),
            bias=rng.standard_normal(24).astype(np.float32)))
    op("cf", "dequantize", ["c"], Value("f32", (H, W, 2 * C)))
    op("e", "concat", ["cf", "d"], Value("f32", (H, W, 2 * C + 24)))
    op("g", "global_avgpool", ["e"], Value("f32", (2 * C + 24,)))
    op("logits", "dense_f32", ["g"], Value("f32", (10,)), dict(in_features=2 * C + 24, out_features=10),
       dict(weight=rng.standard_normal((10, 2 * C + 24)).astype(np.float32),
            bias=rng.standard_normal(10).astype(np.float32)))
    return gf.dumps("logits", mean=[0.45] * 3, std=[0.25] * 3, zero_point=[110, 120, 100])


@pytest.fixture(scope="module")
def concat_bytes():
    return _graph()


def test_concat_engine_equals_simulation(concat_bytes, isa):
    sess = Session(concat_bytes, isa=isa, threads=2)
    u = np.random.default_rng(1).integers(0, 256, (3, H, W, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert {"c", "q", "e"} <= set(diffs)


def test_concat_is_the_channel_concatenation(concat_bytes):
    """The engine's values against their definition, from the engine's own inputs."""
    sess = Session(concat_bytes, threads=3)
    u = np.random.default_rng(2).integers(0, 256, (2, H, W, 3), dtype=np.uint8)
    v = sess.run_values(u)
    np.testing.assert_array_equal(v["c"], np.concatenate([v["a"], v["b"]], axis=-1))
    np.testing.assert_array_equal(v["e"], np.concatenate([v["cf"], v["d"]], axis=-1))
    q = bits.unpack(v["q"], 2 * C)
    np.testing.assert_array_equal(q, np.concatenate([bits.unpack(v["pa"], C), bits.unpack(v["pb"], C)], axis=-1))
    np.testing.assert_array_equal(bits.pack(q), v["q"])  # padding bits are zero
    assert len(np.unique(v["q"])) > 10  # not a constant map


def _edit(data, fn):
    return edit_graph(data, lambda graph, header: fn(graph))


def _op(graph, name):
    return next(o for o in graph["ops"] if o["name"] == name)


def test_concat_malformed_rejected_by_both_loaders(concat_bytes):
    def scales(g):  # the dwconv's int8 output on another grid than the conv's
        _op(g, "b")["attrs"]["out_scale"] = 0.07
        g["values"]["b"]["scale"] = 0.07
    both_reject(_edit(concat_bytes, scales), "one scale")

    def kinds(g):  # float32 next to bits
        _op(g, "e")["inputs"] = ["cf", "pb"]
    both_reject(_edit(concat_bytes, kinds), "two int8, two float32 or two bits")

    def arity(g):
        _op(g, "c")["inputs"] = ["a"]
    both_reject(_edit(concat_bytes, arity), "input")

    def declared(g):
        g["values"]["c"]["shape"] = [H, W, C]
    both_reject(_edit(concat_bytes, declared), "declared value")


def test_concat_simulation_is_torch_cat(concat_bytes):
    sim = cv.simulate(fmt.loads(concat_bytes))
    u = torch.randint(0, 256, (2, H, W, 3), dtype=torch.uint8)
    _, env = sim(u, return_values=True)
    assert torch.equal(env["c"], torch.cat([env["a"], env["b"]], 1))
    assert env["c"].shape == (2, 2 * C, H, W)
