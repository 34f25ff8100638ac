"""Pruned (ternary) models: export with a packed weight mask, full (``weight_mask``) or compact
(``weight_word_mask``, one bit per packed word), and the kept weights only (``weight_kept``)
(docs/format.md §7.3), simulation == float model where no rounding is involved, engine ==
simulation on every ISA for each pruning granularity, compact == long storage forms, malformed
masked files, and `onebit prune` -> `onebit export` -> `onebit eval` on MNIST."""
import json
import os
import struct

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import onebit.convert as cv
from onebit import FormatError, bits
from onebit.convert.compare import engine_vs_simulation
from onebit.convert.long_form import long_form_bytes
from onebit.models import randomize_bn
from onebit.runtime import Session, capabilities
from onebit.runtime import format as fmt
from onebit.runtime.graph import MASK_ROLES

from tiny_models import MNIST_SPEC, RAW_SPEC, assert_simulation_equals_float, exact_model, pruned, tiny_model

GRANULARITIES = ["weight", "word", "block", "channel"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _masked_ops(mf):
    return [op for op in mf.ops if any(r in op.tensors for r in MASK_ROLES)]


def _mask_role(op):
    (role,) = [r for r in MASK_ROLES if r in op.tensors]
    return role


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_pruned_simulation_equals_float_model_when_exact(granularity):
    m = pruned(exact_model(1), granularity, 0.4, input_size=(2, 12, 12))
    sim = cv.simulate(m, input_spec=RAW_SPEC)
    assert bool(_masked_ops(sim.file)) == (granularity != "channel")
    assert_simulation_equals_float(sim, m, 64)


@pytest.mark.parametrize("granularity", ["weight", "word", "block"])
def test_pruned_export_stores_canonical_mask(granularity):
    m = pruned(tiny_model(2), granularity, 0.4, input_size=(1, 28, 28))
    mf = fmt.loads(cv.to_bytes(m, input_spec=MNIST_SPEC))
    ops = {op.name: op for op in _masked_ops(mf)}
    assert set(ops) == {"3", "7", "11"}
    # word and block masks are constant inside every packed word of the convs: stored compact;
    # layer 11 (dense over a 70-channel map, a map-sized bconv2d) groups words of the NHWC flat
    # vector, which straddle its per-tap words: full mask
    compact = granularity != "weight"
    assert {n: _mask_role(o) for n, o in ops.items()} == {
        "3": "weight_word_mask" if compact else "weight_mask",
        "7": "weight_word_mask" if compact else "weight_mask", "11": "weight_mask"}
    conv = ops["3"]
    w, mask = mf.weight(conv), mf.weight_mask(conv)
    assert mask.dtype == np.uint64 and mask.shape == w.shape == (16, 3, 3, 1)
    for op in ops.values():  # only the kept weights' bits are stored, in order
        assert "weight" not in op.tensors and op.attrs["kept_weights"] == bits.kept_counts(mf.weight_mask(op)).sum()
        kept = mf.tensors[op.tensors["weight_kept"]]
        assert kept.shape == (bits.num_words(op.attrs["kept_weights"]),)
        cin = op.attrs["in_channels"]
        seq = (bits.unpack(mf.weight(op), cin) < 0)[bits.unpack(mf.weight_mask(op), cin) < 0]
        assert np.array_equal(bits.unpack(kept, 64 * kept.size)[:seq.size] < 0, seq)
    stored = mf.tensors[conv.tensors[_mask_role(conv)]]
    assert stored.shape == ((16, 1) if compact else (16, 3, 3, 1))
    if compact:  # bit j of row o = packed word j (tap-major, OHWI order) of output channel o kept
        assert np.array_equal(bits.unpack(stored, 9) < 0, (mask != 0).reshape(16, 9))
    # bit layout: the layer's mask in OHWI order, bit 1 = kept
    keep = m[3].weight_mask.numpy().transpose(0, 2, 3, 1) != 0
    assert np.array_equal(bits.unpack(mask, 8) < 0, keep)
    assert not (w & ~mask).any()  # weight bits under pruned positions are 0
    # the kept weights carry the signs of the latent weights
    signs = bits.unpack(w, 8)
    wq = np.where(m[3].weight.detach().numpy().transpose(0, 2, 3, 1) >= 0, 1, -1)
    assert np.array_equal(signs[keep], wq[keep])
    for op in ops.values():
        a = op.attrs
        k = a["kernel"][0] * a["kernel"][1] * a["in_channels"] if op.type == "bconv2d" else a["in_features"]
        counts = bits.kept_counts(mf.weight_mask(op))
        assert a["accumulator_bound"] == counts.max() <= k


def test_unpruned_layer_of_a_pruned_model_has_no_mask():
    m = tiny_model(0)
    keep = torch.ones_like(m[7].weight)
    keep[3, 5, 1, 2] = 0
    m[7].set_weight_mask(keep)
    m[3].set_weight_mask(torch.ones_like(m[3].weight))  # all kept: stored as a plain layer
    mf = fmt.loads(cv.to_bytes(m, input_spec=MNIST_SPEC))
    assert [op.name for op in _masked_ops(mf)] == ["7"]
    op = next(o for o in mf.ops if o.name == "7")
    assert op.attrs["accumulator_bound"] == 3 * 3 * 16  # another channel keeps all its weights


def _engine_equals_simulation(path, n=6, seed=0):
    sim = cv.simulate(path)
    shape = tuple(sim.file.input_spec["shape"])
    u = np.random.default_rng(seed).integers(0, 256, (n,) + shape, dtype=np.uint8)
    for isa in capabilities()["supported"]:
        for threads in (1, 2):
            sess = Session(path, isa=isa, threads=threads)
            engine_vs_simulation(sess, sim, u)  # integers exact, float head to float32 rounding


@pytest.mark.parametrize("clip", [False, True], ids=["f32-head", "int8-clip"])
@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_pruned_tiny_engine_equals_simulation_every_isa(granularity, clip, tmp_path):
    m = pruned(tiny_model(5, clip=clip), granularity, 0.4, input_size=(1, 28, 28))
    p = cv.export(m, tmp_path / "p.onebit", input_spec=MNIST_SPEC)
    assert bool(_masked_ops(fmt.load(p))) == (granularity != "channel")
    _engine_equals_simulation(p)


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_pruned_mnist_small_engine_equals_simulation_every_isa(granularity, tmp_path):
    import onebit.models as om

    torch.manual_seed(0)
    m = randomize_bn(om.create("mnist-small"), 0, input_shape=(1, 28, 28)).eval()
    m = pruned(m, granularity, 0.5)
    p = cv.export(m, tmp_path / "p.onebit")
    _engine_equals_simulation(p, n=4)


# ----------------------------------------------------------------------------- malformed files

@pytest.fixture(scope="module")
def masked_bytes():
    m = pruned(tiny_model(1, size=12), "weight", 0.4, input_size=(1, 12, 12))
    return cv.to_bytes(m, input_spec=dict(MNIST_SPEC, shape=[12, 12, 1]))


def _split(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), bytearray(data[8 + n:])


def _join(header, body):
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + bytes(body)


def _edit_op(data, fn):
    header, body = _split(data)
    g = json.loads(header["__metadata__"]["graph"])
    fn(next(o for o in g["ops"] if "weight_mask" in o["tensors"] and o["attrs"].get("in_channels") == 16))
    header["__metadata__"]["graph"] = json.dumps(g)
    return _join(header, body)


def _word(header, body, tensor, index):
    """(offset, value) of uint64 word ``index`` of ``tensor`` in the data section."""
    b, _ = header[tensor]["data_offsets"]
    off = b + 8 * index
    return off, int.from_bytes(body[off:off + 8], "little")


def _op16(data):
    return next(o for o in fmt.loads(data).ops if "weight_mask" in o.tensors and o.attrs.get("in_channels") == 16)


def test_masked_file_loads_and_rejects_mask_dtype_and_shape(masked_bytes):
    op = _op16(masked_bytes)
    header, body = _split(masked_bytes)
    name = op.tensors["weight_mask"]
    shape = header[name]["shape"]
    h = json.loads(json.dumps(header))
    h[name]["dtype"], h[name]["shape"] = "U8", [int(np.prod(shape)) * 8]
    with pytest.raises(FormatError, match=r"\(weight_mask\) is uint8\[\d+\], expected uint64\["):
        fmt.loads(_join(h, body))
    h = json.loads(json.dumps(header))
    h[name]["shape"] = [shape[1], shape[0]] + shape[2:]
    with pytest.raises(FormatError, match=r"\(weight_mask\) is uint64\[\d+, \d+, 3, 1\], expected uint64\[\d+, 3, 3, 1\]"):
        fmt.loads(_join(h, body))


def test_masked_file_rejects_mask_padding_bits(masked_bytes):
    op = _op16(masked_bytes)
    header, body = _split(masked_bytes)
    off, v = _word(header, body, op.tensors["weight_mask"], 0)
    body[off:off + 8] = (v | (1 << 40)).to_bytes(8, "little")  # channel 40 of a 16-channel word
    with pytest.raises(FormatError, match="weight_mask has non-zero channel padding bits"):
        fmt.loads(_join(header, body))


def test_masked_file_rejects_weight_bits_under_pruned_positions(masked_bytes):
    masked_bytes = long_form_bytes(masked_bytes)  # the full weights (files before weight_kept)
    op = _op16(masked_bytes)
    mf = fmt.loads(masked_bytes)
    mask = mf.tensors[op.tensors["weight_mask"]].reshape(-1)
    i = int(np.flatnonzero(mask != (1 << 16) - 1)[0])  # a word with a pruned weight
    bit = next(b for b in range(16) if not (int(mask[i]) >> b) & 1)
    header, body = _split(masked_bytes)
    off, v = _word(header, body, op.tensors["weight"], i)
    body[off:off + 8] = (v | (1 << bit)).to_bytes(8, "little")
    with pytest.raises(FormatError, match=r"weight bits under pruned positions must be 0 \(canonical form\)"):
        fmt.loads(_join(header, body))


def test_masked_file_rejects_wrong_accumulator_bound(masked_bytes):
    op = _op16(masked_bytes)
    bound = op.attrs["accumulator_bound"]
    for wrong in (bound - 1, bound + 1):
        def edit(o, wrong=wrong):
            o["attrs"]["accumulator_bound"] = wrong
        with pytest.raises(FormatError, match=f"accumulator_bound = {wrong} but weight_mask keeps at most {bound}"):
            fmt.loads(_edit_op(masked_bytes, edit))

    def too_big(o):
        o["attrs"]["accumulator_bound"] = 3 * 3 * 16 + 1
    with pytest.raises(FormatError, match=r"accumulator_bound = 145 exceeds kh\*kw\*Cin = 144"):
        fmt.loads(_edit_op(masked_bytes, too_big))


def test_masked_file_rejects_missing_or_misnamed_mask(masked_bytes):
    def rename(o):
        o["tensors"]["mask"] = o["tensors"].pop("weight_mask")
    # (an unknown role: the op then reads as unpruned, whose bound must be K)
    with pytest.raises(FormatError, match="op '7'.*(tensor roles|accumulator_bound = 103 but kh)"):
        fmt.loads(_edit_op(masked_bytes, rename))

    def drop(o):
        del o["tensors"]["weight_mask"]
    # the mask tensor is then unused, and the bound no longer equals K
    with pytest.raises(FormatError, match="accumulator_bound|not used"):
        fmt.loads(_edit_op(masked_bytes, drop))


def test_summary_of_pruned_model_file(tmp_path):
    from onebit.cli import main

    m = pruned(tiny_model(0), "block", 0.4, input_size=(1, 28, 28))
    p = cv.export(m, tmp_path / "p.onebit", input_spec=MNIST_SPEC)
    dense = cv.export(tiny_model(0), tmp_path / "d.onebit", input_spec=MNIST_SPEC)
    recs = {}
    for name, path in (("pruned", p), ("dense", dense)):
        j = tmp_path / f"{name}.json"
        r = CliRunner().invoke(main, ["summary", str(path), "--json", str(j)])
        assert r.exit_code == 0, r.output
        assert "bit-MACs kept of" in r.output
        recs[name] = json.loads(j.read_text())
    tp, td = recs["pruned"]["totals"], recs["dense"]["totals"]
    assert td["pruned_weights"] == 0 and td["bit_macs"] == td["dense_bit_macs"] == tp["dense_bit_macs"]
    # kept bit-MACs are the pruner's count: positions x live weights of every binary layer
    from onebit.prune import count_bops

    assert tp["bit_macs"] == count_bops(m, input_size=(1, 28, 28)).bops <= 0.6 * td["bit_macs"]
    mf = fmt.load(p)
    # the stored masks: compact for the block-pruned convs (one bit per packed word), full for
    # the map-sized dense layer
    stored = {op.name: mf.tensors[op.tensors[_mask_role(op)]].nbytes for op in _masked_ops(mf)}
    assert stored == {"3": 16 * 8, "7": 70 * 8, "11": 32 * 12 * 12 * 2 * 8}
    assert tp["mask_bytes"] == sum(stored.values())
    assert tp["bytes"] == sum(r["bytes"] for r in recs["pruned"]["ops"])
    assert tp["pruned_ops"] == [op.name for op in _masked_ops(mf)]
    assert recs["pruned"]["bytes"] == os.path.getsize(p) > recs["dense"]["bytes"]


def test_fully_pruned_channels_and_layer_run_exactly():
    # a layer with every weight pruned (bound 0: y = 0, constant outputs) and a layer with four
    # fully pruned output channels
    m = tiny_model(0)
    m[7].set_weight_mask(torch.zeros_like(m[7].weight))
    keep = torch.ones_like(m[3].weight)
    keep[:4] = 0
    m[3].set_weight_mask(keep)
    data = cv.to_bytes(m, input_spec=MNIST_SPEC)
    mf = fmt.loads(data)
    assert {o.name: o.attrs["accumulator_bound"] for o in _masked_ops(mf)} == {"3": 72, "7": 0}
    sim = cv.simulate(mf)
    u = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    for isa in capabilities()["supported"]:
        engine_vs_simulation(Session(data, isa=isa), sim, u)


# ----------------------------------------------------------------------------- compact storage

@pytest.mark.parametrize("granularity", ["word", "block", "weight"])
@pytest.mark.parametrize("name", ["tiny", "mnist-small"])
def test_compact_storage_equals_long_forms_every_isa(granularity, name):
    # the converter's file (compact mask where exact, kept weights only) against the same model
    # with full masks and with full masks and full weights (the files before compact storage)
    import onebit.models as om

    torch.manual_seed(0)
    if name == "tiny":
        m, kw = pruned(tiny_model(5, clip=True), granularity, 0.4, input_size=(1, 28, 28)), {"input_spec": MNIST_SPEC}
    else:
        m, kw = pruned(randomize_bn(om.create("mnist-small"), 0, input_shape=(1, 28, 28)).eval(), granularity, 0.5), {}
    compact = cv.to_bytes(m, **kw)
    full_mask, full = long_form_bytes(compact, weight=False), long_form_bytes(compact)
    files = [fmt.loads(d) for d in (compact, full_mask, full)]
    mc, mfull = files[0], files[2]
    roles = [_mask_role(op) for op in _masked_ops(mc)]
    assert ("weight_word_mask" in roles) == (granularity != "weight")
    assert all("weight_kept" in op.tensors for op in _masked_ops(mc))
    assert all(_mask_role(op) == "weight_mask" and "weight" in op.tensors for op in _masked_ops(mfull))
    # compact masks: one bit per packed word instead of one per weight; kept weights: one bit per
    # kept weight instead of one per weight. The files shrink by exactly those bytes (+- header)
    fops = {op.name: op for op in _masked_ops(mfull)}
    saved_mask = sum(mfull.tensors[fops[op.name].tensors["weight_mask"]].nbytes
                     - mc.tensors[op.tensors["weight_word_mask"]].nbytes
                     for op in _masked_ops(mc) if _mask_role(op) == "weight_word_mask")
    saved_weight = sum(mfull.tensors[fops[op.name].tensors["weight"]].nbytes
                       - mc.tensors[op.tensors["weight_kept"]].nbytes for op in _masked_ops(mc))
    assert (saved_mask > 0) == (granularity != "weight") and saved_weight > 0
    assert abs(len(full) - len(compact) - saved_mask - saved_weight) < 4096
    assert abs(len(full_mask) - len(compact) - saved_mask) < 4096
    for f in files[1:]:
        for a, b in zip(_masked_ops(mc), _masked_ops(f)):
            assert a.name == b.name and a.attrs["accumulator_bound"] == b.attrs["accumulator_bound"]
            np.testing.assert_array_equal(mc.weight_mask(a), f.weight_mask(b))
            np.testing.assert_array_equal(mc.weight(a), f.weight(b))
    u = np.random.default_rng(1).integers(0, 256, (5, 28, 28, 1), dtype=np.uint8)
    sim = cv.simulate(mc)
    for isa in capabilities()["supported"]:
        for threads in (1, 2):
            sessions = [Session(d, isa=isa, threads=threads) for d in (compact, full_mask, full)]
            vals = [s.run_values(u) for s in sessions]
            for v in vals[1:]:
                assert v.keys() == vals[0].keys()
                for k in v:  # every intermediate value, bit for bit
                    assert np.array_equal(v[k], vals[0][k]), (isa, threads, k)
            engine_vs_simulation(sessions[0], sim, u)


def test_weight_granularity_keeps_full_mask_and_channel_uniform_mask_is_compact():
    m = pruned(tiny_model(3), "weight", 0.4, input_size=(1, 28, 28))
    mf = fmt.loads(cv.to_bytes(m, input_spec=MNIST_SPEC))
    assert [_mask_role(op) for op in _masked_ops(mf)] == ["weight_mask"] * 3
    # whole output channels pruned without shrinking, and one whole input word at one tap
    m = tiny_model(3)
    keep = torch.ones_like(m[7].weight)
    keep[[1, 4, 9]] = 0
    keep[20, :, 2, 1] = 0
    m[7].set_weight_mask(keep)
    mf = fmt.loads(cv.to_bytes(m, input_spec=MNIST_SPEC))
    (op,) = _masked_ops(mf)
    assert _mask_role(op) == "weight_word_mask" and mf.tensors[op.tensors["weight_word_mask"]].shape == (70, 1)
    assert np.array_equal(bits.unpack(mf.weight_mask(op), 16) < 0, keep.numpy().transpose(0, 2, 3, 1) != 0)
    assert op.attrs["accumulator_bound"] == 9 * 16


@pytest.fixture(scope="module")
def compact_bytes():
    m = pruned(tiny_model(1, size=12), "word", 0.4, input_size=(1, 12, 12))
    return cv.to_bytes(m, input_spec=dict(MNIST_SPEC, shape=[12, 12, 1]))


def _compact_op(data):
    return next(o for o in fmt.loads(data).ops if "weight_word_mask" in o.tensors and o.attrs.get("in_channels") == 16)


def _edit_compact_op(data, fn):
    header, body = _split(data)
    g = json.loads(header["__metadata__"]["graph"])
    fn(next(o for o in g["ops"] if "weight_word_mask" in o["tensors"] and o["attrs"].get("in_channels") == 16))
    header["__metadata__"]["graph"] = json.dumps(g)
    return _join(header, body)


def test_compact_mask_rejects_dtype_and_shape(compact_bytes):
    op = _compact_op(compact_bytes)
    assert op.name == "7"
    header, body = _split(compact_bytes)
    name = op.tensors["weight_word_mask"]
    assert header[name]["shape"] == [70, 1]
    h = json.loads(json.dumps(header))
    h[name]["dtype"], h[name]["shape"] = "U8", [70 * 8]
    with pytest.raises(FormatError, match=r"op '7'.*\(weight_word_mask\) is uint8\[560\], expected uint64\[70, 1\]"):
        fmt.loads(_join(h, body))
    h = json.loads(json.dumps(header))
    h[name]["shape"] = [1, 70]
    with pytest.raises(FormatError, match=r"op '7'.*\(weight_word_mask\) is uint64\[1, 70\], expected uint64\[70, 1\]"):
        fmt.loads(_join(h, body))


def test_compact_mask_rejects_padding_bits(compact_bytes):
    op = _compact_op(compact_bytes)
    header, body = _split(compact_bytes)
    off, v = _word(header, body, op.tensors["weight_word_mask"], 5)
    body[off:off + 8] = (v | (1 << 9)).to_bytes(8, "little")  # a 3x3 kernel of 1 word: bits 0..8
    with pytest.raises(FormatError, match=r"op '7' \(bconv2d\): weight_word_mask has non-zero padding "
                                          r"bits \(bits 9\.\. of a row\) in 1 output channel"):
        fmt.loads(_join(header, body))


def test_compact_mask_rejects_weight_bits_under_pruned_word(compact_bytes):
    compact_bytes = long_form_bytes(compact_bytes, mask=False)  # compact mask, full weights
    op = _compact_op(compact_bytes)
    mf = fmt.loads(compact_bytes)
    full = mf.weight_mask(op).reshape(-1)
    i = int(np.flatnonzero(full == 0)[0])  # a pruned word (all 16 channels)
    header, body = _split(compact_bytes)
    off, v = _word(header, body, op.tensors["weight"], i)
    assert v == 0
    body[off:off + 8] = (1 << 15).to_bytes(8, "little")
    with pytest.raises(FormatError, match=r"op '7'.*weight bits under pruned positions must be 0 \(canonical "
                                          r"form\): 1 packed words have a weight bit set where weight_word_mask is 0"):
        fmt.loads(_join(header, body))


def test_compact_mask_rejects_wrong_bound_and_both_roles(compact_bytes):
    op = _compact_op(compact_bytes)
    bound = op.attrs["accumulator_bound"]
    assert bound % 16 == 0 and 0 < bound <= 144  # whole 16-channel words kept
    for wrong in (bound - 1, bound + 16):
        def edit(o, wrong=wrong):
            o["attrs"]["accumulator_bound"] = wrong
        with pytest.raises(FormatError, match=f"op '7'.*accumulator_bound = {wrong} but weight_word_mask "
                                              f"keeps at most {bound}"):
            fmt.loads(_edit_compact_op(compact_bytes, edit))

    def both(o):
        o["tensors"]["weight_mask"] = o["tensors"]["weight_kept"]
    with pytest.raises(FormatError, match="op '7'.*has both 'weight_mask' and 'weight_word_mask'"):
        fmt.loads(_edit_compact_op(compact_bytes, both))

    def drop(o):
        del o["tensors"]["weight_word_mask"]
    with pytest.raises(FormatError, match="accumulator_bound|not used"):
        fmt.loads(_edit_compact_op(compact_bytes, drop))


def test_kept_weights_rejects_count_padding_and_role_mixes(compact_bytes):
    op = _compact_op(compact_bytes)
    n = op.attrs["kept_weights"]
    assert n % 64 not in (0, 1) and op.attrs["accumulator_bound"] < 144
    header, body = _split(compact_bytes)
    name = op.tensors["weight_kept"]
    assert header[name]["shape"] == [bits.num_words(n)]

    def count(o, v):
        o["attrs"]["kept_weights"] = v
    with pytest.raises(FormatError, match=f"op '7'.*kept_weights = {n - 1} but weight_word_mask keeps {n} weights"):
        fmt.loads(_edit_compact_op(compact_bytes, lambda o: count(o, n - 1)))
    with pytest.raises(FormatError, match=rf"op '7'.*\(weight_kept\) is uint64\[{bits.num_words(n)}\], "
                                          rf"expected uint64\[{bits.num_words(n + 64)}\]"):
        fmt.loads(_edit_compact_op(compact_bytes, lambda o: count(o, n + 64)))
    with pytest.raises(FormatError, match="op '7'.*attribute 'kept_weights' must be an integer"):
        fmt.loads(_edit_compact_op(compact_bytes, lambda o: o["attrs"].pop("kept_weights")))
    # a bit past the kept weights in the last word
    off, v = _word(header, body, name, bits.num_words(n) - 1)
    body[off:off + 8] = (v | (1 << (n % 64))).to_bytes(8, "little")
    with pytest.raises(FormatError, match=rf"op '7'.*weight_kept has non-zero padding bits \(bits {n % 64}\.\. "
                                          r"of its last word\)"):
        fmt.loads(_join(header, body))

    def both(o):
        o["tensors"]["weight"] = o["tensors"]["weight_word_mask"]
    with pytest.raises(FormatError, match="op '7'.*has both 'weight' and 'weight_kept'"):
        fmt.loads(_edit_compact_op(compact_bytes, both))

    def no_mask(o):
        del o["tensors"]["weight_word_mask"]
        o["attrs"]["accumulator_bound"] = 144
    with pytest.raises(FormatError, match="op '7'.*'weight_kept' needs a mask"):
        fmt.loads(_edit_compact_op(compact_bytes, no_mask))


def test_kept_weights_of_a_fully_pruned_layer():
    m = tiny_model(0)
    m[7].set_weight_mask(torch.zeros_like(m[7].weight))
    data = cv.to_bytes(m, input_spec=MNIST_SPEC)
    op = next(o for o in fmt.loads(data).ops if o.name == "7")
    mf = fmt.loads(data)
    assert op.attrs["kept_weights"] == 0 and mf.tensors[op.tensors["weight_kept"]].shape == (0,)
    assert _mask_role(op) == "weight_word_mask" and not mf.weight(op).any()


def test_compact_forms_cannot_expand_past_the_file_limit(compact_bytes, monkeypatch):
    # the expansions of weight_word_mask and weight_kept are bounded like a file (1 GiB), so a
    # small file cannot make the loader allocate more than a long-form file could hold
    mf = fmt.loads(compact_bytes)
    expanded = sum(8 * mf.weight(op).size * (("weight_word_mask" in op.tensors) + ("weight_kept" in op.tensors))
                   for op in _masked_ops(mf))
    monkeypatch.setattr(fmt, "MAX_FILE_BYTES", expanded - 1)
    with pytest.raises(FormatError, match=f"compact masks and kept weights expand to {expanded} bytes, more than"):
        fmt.loads(compact_bytes)
    monkeypatch.setattr(fmt, "MAX_FILE_BYTES", expanded)
    fmt.loads(compact_bytes)
