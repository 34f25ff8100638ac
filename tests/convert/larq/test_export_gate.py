"""Real-to-Binary Net's scaled binary blocks (Larq Zoo ``RealToBinaryNet``): BN -> (a) binary conv
and (b) a gate from the real-valued BN output (average pool over the whole map -> flatten -> dense
ReLU -> dense sigmoid -> reshape to [1, 1, C]) -> multiply -> PReLU -> add. Written as Keras ``.h5``
files with h5py: the gate becomes ``sigmoid_f32`` and ``mul_channels_f32``, the PReLUs
``prelu_f32``; engine == integer simulation bit for bit on every ISA, the float-boundary engine ==
the imported float module to float32 rounding; malformed gates and multiplications are clear
errors, and both loaders reject malformed new ops alike."""
import json

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("h5py")

import larq_h5_writer as K  # noqa: E402
from file_edits import both_reject, edit_graph, edit_op, join, split  # noqa: E402

import onebit.convert as cv  # noqa: E402
from onebit.convert.compare import engine_vs_simulation  # noqa: E402
from onebit.convert.fold import ConversionError  # noqa: E402
from onebit.convert.larq import LarqImportError, from_larq  # noqa: E402
from onebit.runtime import Session  # noqa: E402
from onebit.runtime import format as fmt  # noqa: E402

RNG = np.random.default_rng(12)
SPEC = K.SPEC16


def _bnl(name, src):
    return K.layer("BatchNormalization", name, [src], axis=[3], epsilon=1e-5)


def _prelu(name, src):
    return K.layer("PReLU", name, [src], shared_axes=[1, 2])


def _block(L, W, name, x, hw, cin, cout, stride=1, gate_units=None, reshape_c=None):
    """One scaled binary block (larq_zoo ``RealToBinaryNet.half_binary_block``) reading ``x``
    (``hw`` x ``hw`` x ``cin``); a strided block has the average-pool + 1x1-conv + BN shortcut."""
    r = max(1, cin // 8)
    gate_units = cout if gate_units is None else gate_units
    reshape_c = gate_units if reshape_c is None else reshape_c
    L += [_bnl(f"{name}_bn", x),
          K.layer("AveragePooling2D", f"{name}_gpool", [f"{name}_bn"], pool_size=[hw, hw], strides=[hw, hw],
                  padding="valid"),
          K.layer("Flatten", f"{name}_gflat", [f"{name}_gpool"]),
          K.layer("Dense", f"{name}_reduce", [f"{name}_gflat"], units=r, activation="relu", use_bias=False),
          K.layer("Dense", f"{name}_expand", [f"{name}_reduce"], units=gate_units, activation="sigmoid",
                  use_bias=False),
          K.layer("QuantConv2D", f"{name}_conv", [f"{name}_bn"], filters=cout, kernel_size=[3, 3],
                  strides=[stride, stride], padding="same", use_bias=False, activation="linear", pad_values=0.0,
                  input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
          K.layer("Reshape", f"{name}_reshape", [f"{name}_expand"], target_shape=[1, 1, reshape_c]),
          K.layer("Multiply", f"{name}_mul", [f"{name}_conv", f"{name}_reshape"]),
          _prelu(f"{name}_prelu", f"{name}_mul")]
    W.update({f"{name}_bn": K.bn_weights(RNG, cin), f"{name}_reduce": [("kernel", RNG.normal(0, 0.5, (cin, r)))],
              f"{name}_expand": [("kernel", RNG.normal(0, 0.5, (r, gate_units)))],
              f"{name}_conv": [("kernel", RNG.normal(0, 1, (3, 3, cin, cout)))],
              f"{name}_prelu": [("alpha", RNG.uniform(-0.3, 0.5, (1, 1, cout)))]})
    skip = x
    if stride != 1:
        L += [K.layer("AveragePooling2D", f"{name}_spool", [x], pool_size=[2, 2], strides=[2, 2], padding="same"),
              K.layer("Conv2D", f"{name}_sconv", [f"{name}_spool"], filters=cout, kernel_size=[1, 1], strides=[1, 1],
                      padding="valid", use_bias=False, activation="linear"),
              _bnl(f"{name}_sbn", f"{name}_sconv")]
        W.update({f"{name}_sconv": [("kernel", RNG.normal(0, 0.3, (1, 1, cin, cout)))],
                  f"{name}_sbn": K.bn_weights(RNG, cout)})
        skip = f"{name}_sbn"
    L.append(K.layer("Add", f"{name}_add", [f"{name}_prelu", skip]))
    return f"{name}_add"


def r2b_like(tmp_path, **gate):
    """Real-to-Binary Net's dataflow at 16x16: stem conv 3x3 s2 -> BN -> PReLU -> max pool 3 s2
    (4x4x8); a scaled block, an identity Lambda (``*_out``), a strided scaled block (2x2x16);
    average pool over the map -> flatten -> dense. ``gate`` changes the first block's gate
    (``gate_units``, ``reshape_c``) for the malformed variants."""
    L, W = [K.input_layer("in", (16, 16, 3)),
            K.layer("Conv2D", "stem", ["in"], filters=8, kernel_size=[3, 3], strides=[2, 2], padding="same",
                    use_bias=False, activation="linear"),
            _bnl("stem_bn", "stem"), _prelu("stem_prelu", "stem_bn"),
            K.layer("MaxPooling2D", "stem_pool", ["stem_prelu"], pool_size=[3, 3], strides=[2, 2], padding="same")], {}
    W.update(stem=[("kernel", RNG.normal(0, 0.3, (3, 3, 3, 8)))], stem_bn=K.bn_weights(RNG, 8),
             stem_prelu=[("alpha", RNG.uniform(-0.3, 0.5, (1, 1, 8)))])
    x = _block(L, W, "b1", "stem_pool", 4, 8, 8, **gate)
    L.append(K.layer("Lambda", "b1_out", [x], function=["4wEAAAAA", None, None], function_type="lambda",
                     module="larq_zoo.literature.real_to_bin_nets"))
    x = _block(L, W, "b2", "b1_out", 4, 8, 16, stride=2)
    L += [K.layer("AveragePooling2D", "head_pool", [x], pool_size=[2, 2], strides=[2, 2], padding="valid"),
          K.layer("Flatten", "head_flat", ["head_pool"]),
          K.layer("Dense", "head", ["head_flat"], units=10, use_bias=True, activation="linear")]
    W["head"] = [("kernel", RNG.normal(0, 0.3, (16, 10))), ("bias", RNG.normal(0, 0.1, 10))]
    return K.write(tmp_path / "r2b_like.h5", K.functional(L, "in", "head"), W)


def _import(path):
    return from_larq(path, identity_lambdas=("*_out",))


def _inputs(n=32):
    return RNG.integers(0, 256, (n, *SPEC["shape"]), dtype=np.uint8)


def _module_logits(m, u):
    return K.module_logits(m, u, SPEC)


@pytest.fixture(scope="module")
def r2b_path(tmp_path_factory):
    return r2b_like(tmp_path_factory.mktemp("r2b"))


@pytest.mark.parametrize("float_boundary", [False, True], ids=["int8-first", "float-boundary"])
def test_engine_equals_simulation(r2b_path, float_boundary, isa):
    data = cv.to_bytes(_import(r2b_path), input_spec=SPEC, float_boundary=float_boundary)
    types = [op.type for op in fmt.loads(data).ops]
    assert (types.count("sigmoid_f32"), types.count("mul_channels_f32"), types.count("prelu_f32")) == (2, 2, 3), types
    sess = Session(data, isa=isa, threads=2)
    diffs = engine_vs_simulation(sess, cv.simulate(sess.model), _inputs(8))
    assert max(diffs.values()) == 0.0, diffs


def test_float_boundary_engine_follows_the_module(r2b_path):
    """Every non-binary layer in float32: the engine is the float module to rounding."""
    m = _import(r2b_path)
    u = _inputs(32)
    got = Session(cv.to_bytes(m, input_spec=SPEC, float_boundary=True)).run(u)
    ref = _module_logits(m, u)
    assert np.abs(got - ref).max() <= 1e-4 * np.abs(ref).max(), (np.abs(got - ref).max(), np.abs(ref).max())


def test_int8_first_layer_follows_the_module(r2b_path):
    m = _import(r2b_path)
    u = _inputs(64)
    got, ref = Session(cv.to_bytes(m, input_spec=SPEC)).run(u), _module_logits(m, u)
    gc, rc = got - got.mean(0), ref - ref.mean(0)
    assert np.corrcoef(gc.ravel(), rc.ravel())[0, 1] > 0.95
    assert (gc.argmax(1) == rc.argmax(1)).mean() >= 0.75


def test_import_cli_exports_the_gate(r2b_path, tmp_path):
    from click.testing import CliRunner

    from onebit.cli import main

    out = tmp_path / "r2b.onebit"
    r = CliRunner().invoke(main, ["import", str(r2b_path), "-o", str(out), "--identity-lambda", "*_out"])
    assert r.exit_code == 0, r.output
    assert "mul_channels_f32" in [op.type for op in fmt.load(out).ops]


@pytest.mark.parametrize("slopes", [8, 1], ids=["per-channel", "shared"])
def test_prelu_after_a_float_stage_in_a_torch_chain(slopes, isa):
    """The PyTorch converter, a chain conv -> BN -> PReLU -> max pool -> float head: the PReLU is
    prelu_f32 after the float stage (one slope repeated over the channels when shared), in both
    modes; the float-boundary engine follows the module."""
    torch.manual_seed(slopes)
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.PReLU(slopes), nn.MaxPool2d(2),
                      nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    with torch.no_grad():
        m[2].weight.uniform_(-0.5, 0.5)
        m[1].running_mean.normal_()
    u = _inputs(8)
    for fb in (False, True):
        data = cv.to_bytes(m, input_spec=SPEC, float_boundary=fb)
        ops = fmt.loads(data).ops
        assert [op.type for op in ops].count("prelu_f32") == 1
        sess = Session(data, isa=isa)
        assert max(engine_vs_simulation(sess, cv.simulate(sess.model), u).values()) == 0.0
        if fb:
            x = (torch.from_numpy(u).permute(0, 3, 1, 2).double() / 255
                 - torch.tensor(SPEC["mean"]).view(1, 3, 1, 1)) / torch.tensor(SPEC["std"]).view(1, 3, 1, 1)
            with torch.no_grad():
                ref = m(x.float()).double().numpy()
            assert np.abs(sess.run(u) - ref).max() <= 1e-4 * np.abs(ref).max()


# -- malformed gates and multiplications -----------------------------------------------------------

def test_gate_with_wrong_channel_count_is_refused(tmp_path):
    """A gate of 4 channels multiplying an 8-channel conv output: the import names the layer."""
    with pytest.raises(LarqImportError, match=r"b1_mul.*do not broadcast"):
        _import(r2b_like(tmp_path, gate_units=4))


def test_gate_reshape_that_does_not_hold_the_gate_is_refused(tmp_path):
    with pytest.raises(LarqImportError, match=r"b1_reshape.*does not hold"):
        _import(r2b_like(tmp_path, reshape_c=4))


def _two_maps(tmp_path, second_shape):
    """conv -> BN -> Multiply(BN, other) -> flatten -> dense, ``other`` a Reshape of a dense layer
    to ``second_shape``."""
    n = int(np.prod(second_shape))
    L = [K.input_layer("in", (8, 8, 3)),
         K.layer("Conv2D", "c", ["in"], filters=4, kernel_size=[3, 3], strides=[1, 1], padding="same",
                 use_bias=False, activation="linear"), _bnl("bn", "c"),
         K.layer("AveragePooling2D", "p", ["bn"], pool_size=[8, 8], strides=[8, 8], padding="valid"),
         K.layer("Flatten", "f", ["p"]),
         K.layer("Dense", "d", ["f"], units=n, activation="sigmoid", use_bias=False),
         K.layer("Reshape", "r", ["d"], target_shape=list(second_shape)),
         K.layer("Multiply", "mul", ["bn", "r"]),
         K.layer("Flatten", "flat", ["mul"]),
         K.layer("Dense", "head", ["flat"], units=3, use_bias=True, activation="linear")]
    W = {"c": [("kernel", RNG.normal(0, 0.3, (3, 3, 3, 4)))], "bn": K.bn_weights(RNG, 4),
         "d": [("kernel", RNG.normal(0, 0.3, (4, n)))],
         "head": [("kernel", RNG.normal(0, 0.3, (8 * 8 * 4, 3))), ("bias", np.zeros(3))]}
    return K.write(tmp_path / "two_maps.h5", K.functional(L, "in", "head"), W)


@pytest.mark.parametrize("shape", [(8, 1, 4), (1, 8, 4)], ids=["per-row", "per-column"])
def test_multiply_of_unsupported_shapes_is_a_conversion_error(tmp_path, shape):
    """A multiplication that broadcasts along rows or columns (not a per-channel vector): the
    module imports (it is valid Keras), the export names the layer and the shapes."""
    m = from_larq(_two_maps(tmp_path, shape))
    with pytest.raises(ConversionError, match=r"'mul'.*per-channel vector"):
        cv.to_bytes(m, input_spec={**SPEC, "shape": [8, 8, 3]})


def test_multiply_by_a_per_channel_gate_of_a_plain_model(tmp_path, isa):
    """The same graph with a [1, 1, C] gate: mul_channels_f32, engine == simulation."""
    data = cv.to_bytes(from_larq(_two_maps(tmp_path, (1, 1, 4))), input_spec={**SPEC, "shape": [8, 8, 3]})
    assert "mul_channels_f32" in [op.type for op in fmt.loads(data).ops]
    sess = Session(data, isa=isa)
    u = RNG.integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    assert max(engine_vs_simulation(sess, cv.simulate(sess.model), u).values()) == 0.0


# -- malformed new ops ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def r2b_bytes(r2b_path):
    return cv.to_bytes(_import(r2b_path), input_spec=SPEC)


def test_malformed_mul_channels_rejected_by_both_loaders(r2b_bytes):
    def swapped(op, graph, header):  # the vector first, the map second
        op["inputs"] = op["inputs"][::-1]
    both_reject(edit_op(r2b_bytes, "mul_channels_f32", swapped), "float32 vector")

    def map_by_map(op, graph, header):  # a map times itself: not a per-channel vector
        op["inputs"] = [op["inputs"][0], op["inputs"][0]]
    both_reject(edit_op(r2b_bytes, "mul_channels_f32", map_by_map), "float32 vector")

    def bits_operand(op, graph, header):  # a packed-bits value
        op["inputs"][0] = next(o["output"] for o in graph["ops"] if o["type"] == "bitpack")
    both_reject(edit_op(r2b_bytes, "mul_channels_f32", bits_operand), "float32 vector")

    def one_input(op, graph, header):
        op["inputs"] = op["inputs"][:1]
    both_reject(edit_op(r2b_bytes, "mul_channels_f32", one_input), "takes 2 input")


def test_malformed_prelu_and_sigmoid_rejected_by_both_loaders(r2b_bytes):
    def slope_shape(op, graph, header):
        header[op["tensors"]["slope"]]["shape"] = [2, 4]
    both_reject(edit_op(r2b_bytes, "prelu_f32", slope_shape), "slope")

    def slope_dtype(op, graph, header):  # same bytes, read as int32
        header[op["tensors"]["slope"]]["dtype"] = "I32"
    both_reject(edit_op(r2b_bytes, "prelu_f32", slope_dtype), "slope")

    def no_slope(op, graph, header):
        del op["tensors"]["slope"]
    both_reject(edit_op(r2b_bytes, "prelu_f32", no_slope), "slope")

    def prelu_on_image(op, graph, header):
        op["inputs"] = [graph["input"]]
    both_reject(edit_op(r2b_bytes, "prelu_f32", prelu_on_image), "float32")

    def sigmoid_on_bits(graph, header):  # the second block's gate reads the first block's signs
        ops = graph["ops"]
        packs = [k for k, o in enumerate(ops) if o["type"] == "bitpack"]
        sig = next(o for o in ops[packs[0]:] if o["type"] == "sigmoid_f32")
        sig["inputs"] = [ops[packs[0]]["output"]]
    both_reject(edit_graph(r2b_bytes, sigmoid_on_bits), "float32")

    def sigmoid_with_tensor(op, graph, header):
        op["tensors"] = {"slope": next(o for o in graph["ops"] if o["type"] == "prelu_f32")["tensors"]["slope"]}
    both_reject(edit_op(r2b_bytes, "sigmoid_f32", sigmoid_with_tensor), "tensor")


def test_non_finite_slope_rejected_by_both_loaders(r2b_bytes):
    header, body = split(r2b_bytes)
    graph = json.loads(header["__metadata__"]["graph"])
    name = next(o for o in graph["ops"] if o["type"] == "prelu_f32")["tensors"]["slope"]
    begin = header[name]["data_offsets"][0]
    body = bytearray(body)
    body[begin:begin + 4] = np.array([np.inf], np.float32).tobytes()
    both_reject(join(header, bytes(body)), "non-finite")
