"""The .onebit file: round trip, safetensors compatibility, one error per malformed-file class, fuzz."""
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from onebit import FormatError
from onebit.runtime import format as fmt

from file_edits import loads_both


@pytest.fixture(scope="module")
def valid_bytes():
    from onebit.convert import to_bytes
    from tiny_models import MNIST_SPEC, tiny_model

    return to_bytes(tiny_model(0, clip=True, size=12), input_spec=dict(MNIST_SPEC, shape=[12, 12, 1]))


def split(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header, body):
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + body


def edit_meta(data, key, fn):
    header, body = split(data)
    doc = json.loads(header["__metadata__"][key])
    fn(doc)
    header["__metadata__"][key] = json.dumps(doc)
    return join(header, body)


def test_format_roundtrip_is_deterministic(valid_bytes):
    mf = fmt.loads(valid_bytes)
    graph = {"input": mf.input_name, "output": mf.output_name,
             "values": {k: v.to_json() for k, v in mf.values.items()}, "ops": [op.to_json() for op in mf.ops]}
    meta = {k: mf.metadata[k] for k in ("producer", "input", "output")}
    assert fmt.dumps(meta, graph, mf.tensors) == valid_bytes


def test_format_readable_by_safetensors(valid_bytes, tmp_path):
    from safetensors.numpy import load

    tensors = load(valid_bytes)
    mf = fmt.loads(valid_bytes)
    assert set(tensors) == set(mf.tensors)
    for k, v in tensors.items():
        assert np.array_equal(v, mf.tensors[k]) and v.dtype == mf.tensors[k].dtype


def test_format_data_is_8_byte_aligned(valid_bytes):
    n = struct.unpack("<Q", valid_bytes[:8])[0]
    assert (8 + n) % 8 == 0


def _expect(data, match):
    # both loaders reject the file, with a message naming the problem
    from onebit.runtime.engine import engine

    with pytest.raises(FormatError, match=match):
        fmt.loads(data)
    with pytest.raises(FormatError, match=match):
        engine.validate_model(data)


def test_format_rejects_truncated_file(valid_bytes):
    _expect(valid_bytes[:5], "truncated")
    _expect(valid_bytes[:100], "truncated")
    _expect(valid_bytes[:-3], "outside the .*data section|truncated|cover")


def test_format_rejects_absurd_header_length(valid_bytes):
    _expect(struct.pack("<Q", 2**62) + valid_bytes[8:], "header length")
    _expect(struct.pack("<Q", 0) + valid_bytes[8:], "header length")


def test_format_rejects_bad_json(valid_bytes):
    n = struct.unpack("<Q", valid_bytes[:8])[0]
    bad = valid_bytes[:8] + b"{" + b"x" * (n - 1) + valid_bytes[8 + n:]
    _expect(bad, "malformed JSON")
    deep = b"{" + b'"a":' * 0 + b"[" * 100 + b"]" * 100 + b"}"
    _expect(struct.pack("<Q", len(deep)) + deep, "nested")


def test_format_rejects_wrong_magic_and_version(valid_bytes):
    header, body = split(valid_bytes)
    header["__metadata__"]["format"] = "other"
    _expect(join(header, body), "expected 'onebit'")
    header["__metadata__"]["format"] = "onebit"
    header["__metadata__"]["format_version"] = "3"
    _expect(join(header, body), "format_version '3' is not supported")
    del header["__metadata__"]
    _expect(join(header, body), "__metadata__")


def test_format_rejects_tensor_dtype_shape_offsets(valid_bytes):
    header, body = split(valid_bytes)
    name = next(k for k, v in header.items() if k != "__metadata__" and v["dtype"] == "I32")
    h = json.loads(json.dumps(header))
    h[name]["dtype"] = "F64"
    _expect(join(h, body), "dtype 'F64' not supported")
    h = json.loads(json.dumps(header))
    h[name]["shape"] = [h[name]["shape"][0] + 1]
    _expect(join(h, body), "needs .* bytes")
    h = json.loads(json.dumps(header))
    b, e = h[name]["data_offsets"]
    h[name]["data_offsets"] = [b + 4, e + 4]
    _expect(join(h, body), "overlaps|outside|unaccounted")
    h = json.loads(json.dumps(header))
    h[name]["data_offsets"] = [len(body) - 4, len(body) + 2**40]
    _expect(join(h, body), "outside")


def test_format_rejects_tensor_mismatching_graph(valid_bytes):
    # a weight with the right byte count but the wrong shape for its op
    header, body = split(valid_bytes)
    name = next(k for k in header if k.endswith(".weight") and header[k]["dtype"] == "U64")
    shape = header[name]["shape"]
    header[name]["shape"] = [shape[0] * shape[1]] + [1] + shape[2:]
    _expect(join(header, body), "expected U64|expected uint64")


def test_format_rejects_unknown_op_and_undefined_input(valid_bytes):
    def unknown(g):
        g["ops"][1]["type"] = "conv3d"
    _expect(edit_meta(valid_bytes, "graph", unknown), "unknown op type 'conv3d'")

    def undefined(g):
        g["ops"][1]["inputs"] = ["nowhere"]
    _expect(edit_meta(valid_bytes, "graph", undefined), "not defined before")

    def reorder(g):
        g["ops"][0], g["ops"][1] = g["ops"][1], g["ops"][0]
    _expect(edit_meta(valid_bytes, "graph", reorder), "not defined before|input must")


def test_format_rejects_inconsistent_shapes(valid_bytes):
    def wrong_channels(g):
        g["ops"][1]["attrs"]["in_channels"] += 1
    _expect(edit_meta(valid_bytes, "graph", wrong_channels), "in_channels")

    def wrong_value(g):
        v = g["ops"][1]["output"]
        g["values"][v]["shape"][0] += 1
    _expect(edit_meta(valid_bytes, "graph", wrong_value), "declared value")


def test_format_rejects_accumulator_too_narrow(valid_bytes):
    def narrow(g):
        op = next(o for o in g["ops"] if o["type"] == "bconv2d")
        op["attrs"]["accumulator_bound"] = 40000
    _expect(edit_meta(valid_bytes, "graph", narrow), "accumulator_bound")

    # a consistent bound above 32767 with a 16-bit accumulator is refused
    from onebit.runtime.graph import Op, Value, infer

    op = Op("c", "bconv2d", ["input2"], "c", dict(in_channels=4096, out_channels=1, kernel=[3, 3],
            stride=[1, 1], padding=[1, 1], output="f32", accumulator_bound=36864, accumulator_bits=16), {})
    with pytest.raises(FormatError, match="cannot hold"):
        from onebit.runtime.graph import SPECS
        SPECS["bconv2d"](op, [Value("bits", (4, 4, 4096))])
    del infer


def test_format_rejects_bad_tensor_contents(valid_bytes):
    header, body = split(valid_bytes)
    body = bytearray(body)
    name = next(k for k in header if k.endswith(".direction"))
    b, _ = header[name]["data_offsets"]
    body[b] = 0  # direction 0
    _expect(join(header, bytes(body)), "direction values")
    header, body = split(valid_bytes)
    body = bytearray(body)
    mf = fmt.loads(valid_bytes)
    op = next(o for o in mf.ops if o.type == "bconv2d" and o.attrs["in_channels"] % 64)
    b, e = header[op.tensors["weight"]]["data_offsets"]
    body[e - 1] |= 0x80  # top bit of the last word: a channel padding bit
    _expect(join(header, bytes(body)), "padding bits")


def test_format_load_names_the_file(tmp_path, valid_bytes):
    p = tmp_path / "m.onebit"
    p.write_bytes(valid_bytes[:50])
    with pytest.raises(FormatError, match="m.onebit"):
        fmt.load(p)
    with pytest.raises(FileNotFoundError):
        fmt.load(tmp_path / "missing.onebit")


# ----------------------------------------------------------------------------- fuzz
# Every fuzz input goes through both loaders (Python: onebit.runtime.format, C++: the loader
# behind Session, onebit-run and the C API): they must accept and reject the same files.

mutation = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10**9), st.integers(0, 7)),
    st.tuples(st.just("truncate"), st.integers(0, 10**9), st.just(0)),
    st.tuples(st.just("byte"), st.integers(0, 10**9), st.integers(0, 255)),
    st.tuples(st.just("header"), st.integers(0, 10**9), st.integers(0, 255)),
    st.tuples(st.just("length"), st.integers(0, 2**64 - 1), st.just(0)),
)


def _mutate(data: bytes, muts) -> bytes:
    d = bytearray(data)
    n = struct.unpack("<Q", data[:8])[0]
    for kind, pos, val in muts:
        if not d:
            break
        if kind == "flip":
            d[pos % len(d)] ^= 1 << val
        elif kind == "truncate":
            d = d[: pos % (len(d) + 1)]
        elif kind == "byte":
            d[pos % len(d)] = val
        elif kind == "header":  # edits inside the JSON, where structure lives
            if len(d) > 8:
                d[8 + pos % min(n, len(d) - 8)] = val
        else:
            d[:8] = struct.pack("<Q", pos)
    return bytes(d)


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(muts=st.lists(mutation, min_size=1, max_size=4))
def test_format_fuzz_mutations_raise_only_format_error(valid_bytes, muts):
    data = _mutate(valid_bytes, muts)
    try:
        loads_both(data)
    except FormatError:
        pass


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**65, 2**65) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=8)


def _paths(doc, prefix=()):
    yield prefix
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from _paths(v, prefix + (i,))


_VALID = []


@pytest.fixture()
def cached_valid(valid_bytes):
    _VALID[:] = [valid_bytes]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["graph", "input", "output", "producer"]), pick=st.integers(0, 10**6),
       value=json_values, delete=st.booleans())
def test_format_fuzz_metadata_edits_raise_only_format_error(cached_valid, key, pick, value, delete):
    # structural edits inside the JSON documents: wrong types, missing keys, odd values
    from onebit.runtime import Session

    header, body = split(_VALID[0])
    doc = json.loads(header["__metadata__"][key])
    paths = list(_paths(doc))
    path = paths[pick % len(paths)]
    if not path:
        doc = value
    else:
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        if delete and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = value
    header["__metadata__"][key] = json.dumps(doc)
    data = join(header, body)
    try:
        loads_both(data)
    except FormatError:
        return
    # a file that still validates must also run
    sess = Session(data)
    x = np.zeros((1,) + sess.input_shape, np.uint8)
    assert sess.run(x).shape == (1, sess.num_classes)


# ----------------------------------------------------------------------------- fuzz: pruned ops

@pytest.fixture(scope="module")
def masked_valid_bytes():
    from onebit.convert import to_bytes
    from tiny_models import MNIST_SPEC, pruned, tiny_model

    m = pruned(tiny_model(0, clip=True, size=12), "weight", 0.4, input_size=(1, 12, 12))
    return to_bytes(m, input_spec=dict(MNIST_SPEC, shape=[12, 12, 1]))


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(muts=st.lists(mutation, min_size=1, max_size=4))
def test_format_fuzz_masked_file_mutations_raise_only_format_error(masked_valid_bytes, muts):
    assert any("weight_mask" in op.tensors for op in fmt.loads(masked_valid_bytes).ops)
    try:
        loads_both(_mutate(masked_valid_bytes, muts))
    except FormatError:
        pass


_MASKED = []


@pytest.fixture()
def cached_masked(masked_valid_bytes):
    _MASKED[:] = [masked_valid_bytes]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**9), bit=st.integers(0, 63), role=st.sampled_from(["weight", "mask"]))
def test_format_fuzz_masked_tensor_bits_rejected_or_exact(cached_masked, pick, bit, role):
    _flip_rejected_or_exact(_MASKED[0], "weight_mask", role, pick, bit)


def _flip_rejected_or_exact(data, mask_role, role, pick, bit):
    # one flipped bit in a pruned op's weights (role "weight": weight_kept, the kept weights only,
    # or weight) or mask (role "mask": mask_role): the loader rejects a non-canonical file
    # (padding bit, weight bit under a pruned position, bound no longer the largest kept count);
    # a file that still loads runs on the engine exactly as its simulation says
    from onebit.convert import simulate
    from onebit.convert.compare import engine_vs_simulation
    from onebit.runtime import Session

    header, body = split(data)
    ops = [op for op in fmt.loads(data).ops if mask_role in op.tensors]
    op = ops[pick % len(ops)]
    wrole = "weight_kept" if "weight_kept" in op.tensors else "weight"
    b, e = header[op.tensors[wrole if role == "weight" else mask_role]]["data_offsets"]
    word = (pick // len(ops)) % ((e - b) // 8)
    body = bytearray(body)
    off = b + 8 * word + bit // 8
    body[off] ^= 1 << (bit % 8)
    mutated = join(header, bytes(body))
    try:
        mf = loads_both(mutated)
    except FormatError as exc:
        assert op.name in str(exc)
        return
    x = np.random.default_rng(pick).integers(0, 256, (2, 12, 12, 1), dtype=np.uint8)
    engine_vs_simulation(Session(mutated), simulate(mf), x)


# ----------------------------------------------------------------------------- fuzz: compact masks

@pytest.fixture(scope="module")
def compact_valid_bytes():
    from onebit.convert import to_bytes
    from tiny_models import MNIST_SPEC, pruned, tiny_model

    # word pruning: the two convs store weight_word_mask, the map-sized dense layer weight_mask
    m = pruned(tiny_model(0, clip=True, size=12), "word", 0.4, input_size=(1, 12, 12))
    return to_bytes(m, input_spec=dict(MNIST_SPEC, shape=[12, 12, 1]))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(muts=st.lists(mutation, min_size=1, max_size=4))
def test_format_fuzz_compact_masked_file_mutations_raise_only_format_error(compact_valid_bytes, muts):
    roles = {r for op in fmt.loads(compact_valid_bytes).ops for r in op.tensors}
    assert {"weight_word_mask", "weight_mask"} <= roles
    try:
        loads_both(_mutate(compact_valid_bytes, muts))
    except FormatError:
        pass


_COMPACT = []


@pytest.fixture()
def cached_compact(compact_valid_bytes):
    _COMPACT[:] = [compact_valid_bytes]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(pick=st.integers(0, 10**9), bit=st.integers(0, 63), role=st.sampled_from(["weight", "mask"]))
def test_format_fuzz_compact_mask_bits_rejected_or_exact(cached_compact, pick, bit, role):
    _flip_rejected_or_exact(_COMPACT[0], "weight_word_mask", role, pick, bit)


def test_format_nul_byte_in_the_header_rejected_by_both(valid_bytes):
    # a raw NUL is invalid JSON anywhere, also in the space padding after the document
    header_len = struct.unpack("<Q", valid_bytes[:8])[0]
    data = bytearray(valid_bytes)
    data[8 + header_len - 1] = 0
    _expect(bytes(data), "malformed JSON")
