"""Larq Zoo's Lambda layers read from their stored data (no bytecode run): TFOpLayer split ->
Conv2D per part -> concat as one grouped convolution, and MeliusNet's improvement merge as
concat(y, d + x[1]); small files in Larq's layout checked against a NumPy forward, exported in
both precision modes (engine == integer simulation), and each malformed variant a clear error.
``conv2d_f32`` with ``groups``: engine == simulation on every ISA, malformed groups rejected by
both loaders."""
import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402

import onebit.convert as cv  # noqa: E402
from onebit.convert.compare import engine_vs_simulation  # noqa: E402
from onebit.convert.graph import ungrouped  # noqa: E402
from onebit.convert.larq import LarqImportError, from_larq  # noqa: E402
from onebit.convert.larq.modules import ConcatAdd  # noqa: E402

RNG = np.random.default_rng(12)
CODE = "4wEAAAAAAAAAAAAAAAUAAAATAAAA8x"  # stands for the stored bytecode, never read
SPEC = {"dataset": None, "shape": [8, 8, 4], "mean": [0.45] * 4, "std": [0.25] * 4}


def tf_op(name, inbound, args, kwargs, op):
    """A ``larq_zoo.core.utils.TFOpLayer`` Lambda; ``inbound``: [(layer, output index)]."""
    e = K.layer("Lambda", name, None, function=[CODE, None, [args, kwargs, op]], function_type="lambda",
                module="larq_zoo.core.utils", output_shape=None, arguments={})
    e["inbound_nodes"] = [[[n, 0, i, {}] for n, i in inbound]]
    return e


def merge(name, inbound, f_in):
    e = K.layer("Lambda", name, inbound, function=[CODE, None, [f_in]], function_type="lambda",
                module="larq_zoo.literature.meliusnet", output_shape=None, arguments={})
    return e


def conv(name, src, filters, index=0, use_bias=True):
    e = K.layer("Conv2D", name, None, filters=filters, kernel_size=[3, 3], strides=[1, 1], padding="same",
                use_bias=use_bias, activation="linear", data_format="channels_last", dilation_rate=[1, 1], groups=1)
    e["inbound_nodes"] = [[[src, 0, index, {}]]]
    return e


def qconv(name, src, filters=64):
    return K.layer("QuantConv2D", name, [src], filters=filters, kernel_size=[3, 3], strides=[1, 1], padding="same",
                   use_bias=False, activation="linear", pad_values=0.0, input_quantizer="ste_sign",
                   kernel_quantizer="ste_sign")


def group(prefix, src, n, filters, cin, W, op_form=str):
    """split(n) -> n Conv2D -> concat, the layers of larq_zoo's MeliusNet ``group_conv``."""
    L = [tf_op(f"{prefix}_split", [(src, 0)], [n], {"axis": -1}, op_form("split"))]
    L += [conv(f"{prefix}_conv{i}", f"{prefix}_split", filters, i) for i in range(n)]
    L += [tf_op(f"{prefix}_concat", [(f"{prefix}_conv{i}", 0) for i in range(n)], [], {"axis": -1},
                op_form("concat"))]
    for i in range(n):
        W[f"{prefix}_conv{i}"] = [("kernel", RNG.normal(0, 0.4, (3, 3, cin // n, filters))),
                                  ("bias", RNG.normal(0, 0.2, filters))]
    return L


def serialized(op):
    return {"class_name": "function", "config": op, "module": "builtins", "registered_name": "function"}


def meliusnet_like(tmp_path, name="m.h5", f_in=70, edit=None):
    """A MeliusNet in miniature: a grouped-conv stem (on the input, then on a float map), one dense
    block (BN -> 64-filter binary conv, concatenated) and one improvement block (BN -> binary conv,
    merged into the last 64 channels), head BN -> global pool -> dense."""
    W = {}
    L = [K.input_layer("in", (8, 8, 4))]
    L += group("s1", "in", 2, 3, 4, W)
    L += [K.layer("BatchNormalization", "s1_bn", ["s1_concat"], axis=[3], epsilon=1e-5),
          K.layer("Activation", "s1_relu", ["s1_bn"], activation="relu")]
    L += group("s2", "s1_relu", 3, 2, 6, W, serialized)
    L += [K.layer("BatchNormalization", "s2_bn", ["s2_concat"], axis=[3], epsilon=1e-5),
          K.layer("Activation", "s2_relu", ["s2_bn"], activation="relu"),
          K.layer("BatchNormalization", "b_dense_bn", ["s2_relu"], axis=[3], epsilon=1e-5),
          qconv("b_dense_binconv", "b_dense_bn"),
          tf_op("b_dense_concat", [("s2_relu", 0), ("b_dense_binconv", 0)], [], {"axis": -1}, "concat"),
          K.layer("BatchNormalization", "b_improve_bn", ["b_dense_concat"], axis=[3], epsilon=1e-5),
          qconv("b_improve_binconv", "b_improve_bn"),
          merge("b_improve_merge", ["b_dense_concat", "b_improve_binconv"], f_in),
          K.layer("BatchNormalization", "head_bn", ["b_improve_merge"], axis=[3], epsilon=1e-5),
          K.layer("GlobalAveragePooling2D", "gap", ["head_bn"]),
          K.layer("Dense", "head", ["gap"], units=5, use_bias=True, activation="linear")]
    for n, c in (("s1_bn", 6), ("s2_bn", 6), ("b_dense_bn", 6), ("b_improve_bn", 70), ("head_bn", 70)):
        W[n] = K.bn_weights(RNG, c)
    W["b_dense_binconv"] = [("kernel", RNG.normal(0, 1, (3, 3, 6, 64)))]
    W["b_improve_binconv"] = [("kernel", RNG.normal(0, 1, (3, 3, 70, 64)))]
    W["head"] = [("kernel", RNG.normal(0, 0.1, (70, 5))), ("bias", RNG.normal(0, 0.1, 5))]
    if edit is not None:
        edit(L, W)
    return K.write(tmp_path / name, K.functional(L, "in", "head"), W), W


def reference(x, W):
    def bn(v, name):
        return K.bn(v, *[a for _, a in W[name]], eps=1e-5)

    def grouped(v, prefix, n):
        parts = np.split(v, n, axis=-1)
        return np.concatenate([K.conv(p, W[f"{prefix}_conv{i}"][0][1], 1, "same") + W[f"{prefix}_conv{i}"][1][1]
                               for i, p in enumerate(parts)], axis=-1)

    a = np.maximum(bn(grouped(x, "s1", 2), "s1_bn"), 0)
    y = np.maximum(bn(grouped(a, "s2", 3), "s2_bn"), 0)
    d = K.conv(K.sign(bn(y, "b_dense_bn")), K.sign(W["b_dense_binconv"][0][1]), 1, "same")
    cat = np.concatenate([y, d], axis=-1)
    imp = K.conv(K.sign(bn(cat, "b_improve_bn")), K.sign(W["b_improve_binconv"][0][1]), 1, "same")
    merged = cat + np.pad(imp, [(0, 0), (0, 0), (0, 0), (cat.shape[-1] - 64, 0)])  # larq_zoo's lambda
    h = bn(merged, "head_bn").mean(axis=(1, 2))
    return h @ W["head"][0][1] + W["head"][1][1]


def _run(m, x):
    with torch.no_grad():
        return m.forward_nhwc(torch.from_numpy(x).float()).double().numpy()


def test_grouped_convs_and_improvement_merge_equal_numpy(tmp_path):
    path, W = meliusnet_like(tmp_path)
    m = from_larq(path)
    groups = sorted(mod.groups for mod in m.modules() if isinstance(mod, nn.Conv2d) and mod.groups > 1)
    assert groups == [2, 3]
    assert sum(isinstance(mod, ConcatAdd) for mod in m.modules()) == 1
    assert "s1_conv0" not in m.keras_names.values() and "s1_concat" in m.keras_names.values()
    x = RNG.normal(0, 1, (4, 8, 8, 4))
    np.testing.assert_allclose(_run(m, x), reference(x, W), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("float_boundary", [False, True], ids=["integer", "float-boundary"])
def test_both_modes_export_and_the_engine_equals_the_simulation(tmp_path, float_boundary):
    from onebit.runtime import Session

    path, _ = meliusnet_like(tmp_path)
    m = from_larq(path)
    out = cv.export(m, tmp_path / "m.onebit", input_spec=SPEC, float_boundary=float_boundary)
    sess = Session(out)
    types = [op.type for op in sess.model.ops]
    first = "conv2d_f32" if float_boundary else "conv2d_u8"
    assert types[0] == first and types.count("conv2d_f32") == 1 + float_boundary
    groups = [op.attrs.get("groups", 1) for op in sess.model.ops if op.type == "conv2d_f32"]
    assert groups == ([2, 3] if float_boundary else [3])  # the int8 first layer: block-diagonal
    assert types.count("concat") == 2 and types.count("add") == 1 and types.count("bconv2d") == 2
    u = RNG.integers(0, 256, (16, 8, 8, 4), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(str(out)), u)
    assert max(diffs.values()) == 0.0, diffs
    if float_boundary:  # every non-binary value float32: the engine follows the module to rounding
        x = (u / 255.0 - 0.45) / 0.25
        got, ref = sess.run(u), _run(m, x)
        assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max()


@pytest.mark.parametrize("groups,cin,cout", [(2, 6, 4), (4, 8, 8), (3, 9, 6)])
def test_ungrouped_is_the_grouped_convolution(groups, cin, cout):
    """The block-diagonal dense kernel (the int8 convolutions' form of a grouped conv): equal to the
    grouped conv exactly on integers and to rounding on floats."""
    torch.manual_seed(groups)
    g = nn.Conv2d(cin, cout, 3, padding=1, groups=groups, bias=True).eval()
    with torch.no_grad():
        g.weight.copy_(torch.randint(-127, 128, g.weight.shape).float())
        g.bias.copy_(torch.randint(-9, 10, g.bias.shape).float())
    d = ungrouped(g)
    assert d.groups == 1 and d.weight.shape == (cout, cin, 3, 3)
    x = torch.randint(-127, 128, (2, cin, 5, 6)).float()
    with torch.no_grad():
        assert torch.equal(d(x), g(x))
        x = torch.randn(2, cin, 5, 6)
        torch.testing.assert_close(d(x), g(x), rtol=1e-5, atol=1e-4)


def _set(L, name, **changes):
    e = next(e for e in L if e["config"]["name"] == name)
    for k, v in changes.items():
        if k == "inbound":
            e["inbound_nodes"] = [[[n, 0, i, {}] for n, i in v]]
        else:
            e["config"][k] = v


@pytest.mark.parametrize("edit,msg", [
    (lambda L, W: _set(L, "s1_split", function=[CODE, None, [[2], {"axis": -1}, "reduce_sum"]]),
     r"layer 's1_split' \(Lambda TFOpLayer tf.reduce_sum\): op 'reduce_sum' with arguments \[2\]"),
    (lambda L, W: _set(L, "s1_split", function=[CODE, None, [[2], {"axis": 1}, "split"]]),
     r"layer 's1_split' \(Lambda TFOpLayer tf.split\): keyword arguments \{'axis': 1\}"),
    (lambda L, W: _set(L, "s1_split", function=[CODE, None, [[2, 2], {"axis": -1}, "split"]]),
     r"layer 's1_split' \(Lambda TFOpLayer tf.split\): arguments \[2, 2\]"),
    (lambda L, W: _set(L, "s2_concat", function=[CODE, None, [[0], {"axis": -1}, "concat"]]),
     r"layer 's2_concat' \(Lambda TFOpLayer tf.concat\): arguments \[0\]"),
    (lambda L, W: _set(L, "s1_concat", inbound=[("s1_conv1", 0), ("s1_conv0", 0)]),
     r"layer 's1_split' \(Lambda TFOpLayer tf.split\): its convolutions .* not joined, in order"),
    (lambda L, W: _set(L, "s1_conv1", inbound=[("s1_split", 0)]),
     r"layer 's1_split' \(Lambda TFOpLayer tf.split\): into 2 parts read by 's1_conv0' \(Conv2D\) output 0, "
     r"'s1_conv1' \(Conv2D\) output 0"),
    (lambda L, W: _set(L, "s1_conv1", filters=4),
     r"layer 's1_split' \(Lambda TFOpLayer tf.split\): its parts 's1_conv0' and 's1_conv1' differ in \['filters'\]"),
    (lambda L, W: W["s1_conv1"].__setitem__(0, ("kernel", np.zeros((3, 3, 3, 3)))),
     r"layer 's1_conv1' \(Conv2D\): weight 'kernel' has shape \[3, 3, 3, 3\], expected \[3, 3, 2, 3\]"),
    (lambda L, W: _set(L, "s2_split", function=[CODE, None, [[4], {"axis": -1}, "split"]]),
     r"layer 's2_split' \(Lambda TFOpLayer tf.split\): into 4 parts read by"),
    (lambda L, W: _set(L, "b_improve_merge", function=[CODE, None, [71]]),
     r"layer 'b_improve_merge' \(Lambda MeliusNet improvement merge\): x\[0\] = 'b_dense_concat' concatenates "
     r"inputs of shapes \[\[6, 8, 8\], \[64, 8, 8\]\] \(NCHW\) and x\[1\] has shape \[64, 8, 8\]; .*f_in=71"),
    (lambda L, W: _set(L, "b_improve_merge", inbound=[("b_improve_bn", 0), ("b_improve_binconv", 0)]),
     r"layer 'b_improve_merge' \(Lambda MeliusNet improvement merge\): x\[0\] = 'b_improve_bn' is not a "
     r"channel concatenation"),
    (lambda L, W: _set(L, "b_improve_merge", function=[CODE, None, ["f_in"]]),
     r"layer 'b_improve_merge' \(Lambda MeliusNet improvement merge\): closure \['f_in'\]"),
], ids=["unknown-op", "split-axis", "split-args", "concat-args", "concat-order", "split-index", "parts-differ",
        "part-kernel", "split-count", "merge-f_in", "merge-not-concat", "merge-closure"])
def test_malformed_zoo_lambdas_are_clear_errors(tmp_path, edit, msg):
    path, _ = meliusnet_like(tmp_path, edit=edit)
    with pytest.raises(LarqImportError, match=msg):
        from_larq(path)


def test_split_count_not_dividing_the_channels(tmp_path):
    """split(4) of 6 channels (TensorFlow refuses it too): named at the split."""
    def edit(L, W):
        _set(L, "s2_split", function=[CODE, None, [[4], {"axis": -1}, "split"]])
        L.insert(next(i for i, e in enumerate(L) if e["config"]["name"] == "s2_concat"), conv("s2_conv3", "s2_split", 2, 3))
        _set(L, "s2_concat", inbound=[(f"s2_conv{i}", 0) for i in range(4)])
        W["s2_conv3"] = W["s2_conv0"]
    path, _ = meliusnet_like(tmp_path, edit=edit)
    with pytest.raises(LarqImportError, match=r"layer 's2_split' \(Lambda TFOpLayer tf.split\): splits 6 channels "
                                              r"into 4 parts: equal parts are supported"):
        from_larq(path)


def test_improvement_merge_needs_64_channels(tmp_path):
    def edit(L, W):
        _set(L, "b_improve_binconv", filters=32)
        W["b_improve_binconv"] = [("kernel", RNG.normal(0, 1, (3, 3, 70, 32)))]
    path, _ = meliusnet_like(tmp_path, edit=edit)
    with pytest.raises(LarqImportError, match=r"'b_improve_merge' \(Lambda MeliusNet improvement merge\): .* "
                                              r"x\[1\] has shape \[32, 8, 8\]"):
        from_larq(path)


def test_other_lambdas_keep_the_bytecode_error(tmp_path):
    """A Lambda of another module, or a meliusnet one not named *_improve_merge, is refused as before."""
    def edit(L, W):
        _set(L, "b_improve_merge", module="my_module")
    path, _ = meliusnet_like(tmp_path, edit=edit)
    with pytest.raises(LarqImportError, match=r"layer 'b_improve_merge' \(Lambda\).*bytecode"):
        from_larq(path)


def _grouped_float_model(groups=4):
    """conv -> BN -> ReLU -> grouped 3x3 conv (float32 data) -> BN -> ReLU -> pool -> dense."""
    torch.manual_seed(groups)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                      nn.Conv2d(8, 12, 3, stride=2, padding=1, groups=groups), nn.BatchNorm2d(12), nn.ReLU(),
                      nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(12, 5))
    from onebit.models import randomize_bn
    randomize_bn(m, groups, input_shape=(3, 9, 7))
    return m.eval()


GSPEC = {"dataset": None, "shape": [9, 7, 3], "mean": [0.45] * 3, "std": [0.25] * 3}


@pytest.mark.parametrize("groups", [2, 4])
def test_grouped_conv2d_f32_engine_equals_simulation(groups, isa):
    from onebit.runtime import Session

    m = _grouped_float_model(groups)
    data = cv.to_bytes(m, input_spec=GSPEC, float_boundary=True)
    sess = Session(data, isa=isa, threads=2)
    ops = [op for op in sess.model.ops if op.type == "conv2d_f32"]
    assert [op.attrs.get("groups", 1) for op in ops] == [1, groups]
    assert sess.model.tensors[ops[1].tensors["weight"]].shape == (12, 3, 3, 8 // groups)
    u = RNG.integers(0, 256, (3, 9, 7, 3), dtype=np.uint8)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), u)
    assert max(diffs.values()) == 0.0, diffs
    x = torch.from_numpy((u / 255.0 - 0.45) / 0.25).float().permute(0, 3, 1, 2)
    with torch.no_grad():
        want = m(x).double().numpy()
    np.testing.assert_allclose(sess.run(u), want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_malformed_groups_rejected_by_both_loaders():
    from file_edits import both_reject, edit_graph

    data = cv.to_bytes(_grouped_float_model(4), input_spec=GSPEC, float_boundary=True)

    def grouped(fn):  # fn applied to the attributes of the second conv2d_f32 (the grouped one)
        def pick(graph, header):
            fn([o for o in graph["ops"] if o["type"] == "conv2d_f32"][1]["attrs"])
        return edit_graph(data, pick)

    both_reject(grouped(lambda a: a.update(groups=3)), r"groups = 3 must divide in_channels \(8\) and out_channels \(12\)")
    both_reject(grouped(lambda a: a.update(groups=0)), r"'groups'")
    both_reject(grouped(lambda a: a.update(groups="4")), r"'groups'")
    both_reject(grouped(lambda a: a.pop("groups")), "weight")
