"""The ``.onebit`` model file: safetensors tensors + JSON metadata (docs/format.md §7). Torch-free.

Layout (safetensors): 8-byte little-endian header length ``N``, ``N`` bytes of UTF-8 JSON, then
the tensor data. The JSON maps tensor names to ``{"dtype", "shape", "data_offsets"}`` and holds
``"__metadata__"``: string keys to *string* values, here ``format`` ("onebit"),
``format_version``, ``producer``, ``input``, ``output`` and ``graph`` (the last four are JSON
documents encoded as strings).

:func:`loads` checks everything before trusting anything: header length bounds before any
allocation, well-formed JSON, version, every tensor's dtype / shape / offsets (in bounds,
contiguous, non-overlapping), the graph (known ops, inputs defined before use, shapes consistent,
accumulator bounds vs widths; :mod:`onebit.runtime.graph`), every tensor against its op, and
tensor contents the kernels rely on (channel padding bits zero, directions +-1, zero points in
[0, 255], finite floats; for pruned ops a weight mask, full or compact, with zero padding bits,
weight bits 0 under pruned positions and the accumulator bound equal to the largest kept count).
Any failure is an ``onebit.FormatError`` naming the problem. A compact mask
(``weight_word_mask``) and kept-only weights (``weight_kept``) are expanded here, once, to the full
packed mask and weights the engine takes (:meth:`ModelFile.weight_mask`, :meth:`ModelFile.weight`).
"""
from __future__ import annotations

import json
import math
import os
import re
import struct
from dataclasses import dataclass, field

import numpy as np

from onebit.bits import kept_counts, unpack_kept, unpack_word_mask, word_mask_kept_counts
from onebit.errors import FormatError
from onebit.runtime.graph import (KEPT_ROLE, MASK_ROLE, WORD_MASK_ROLE, Op, Value, infer, op_from_json,
                                  value_from_json, weight_shape)

FORMAT_NAME = "onebit"
FORMAT_VERSION = 1
ONE_PADDING_VERSION = 2  # first version with one-padded binary convolutions (docs/format.md §7.4)
SUPPORTED_VERSIONS = (1, 2)
MAX_HEADER_BYTES = 16 << 20  # the JSON header of a real model is a few tens of KiB
MAX_FILE_BYTES = 1 << 30
MAX_JSON_DEPTH = 32

# safetensors dtype names <-> NumPy (little-endian on disk)
DTYPES = {"U8": "uint8", "I8": "int8", "I32": "int32", "U64": "uint64", "F32": "float32"}
ST_NAMES = {v: k for k, v in DTYPES.items()}
METADATA_KEYS = ("format", "format_version", "producer", "input", "output", "graph")


@dataclass
class ModelFile:
    """A validated model: metadata, graph (ops in execution order, values) and tensors."""

    metadata: dict  # the decoded metadata documents (format, format_version, producer, input, output)
    ops: list  # list[Op]
    values: dict  # value name -> Value (inferred and equal to the declared ones)
    tensors: dict  # tensor name -> np.ndarray (owned, aligned, C-contiguous)
    input_name: str
    output_name: str
    weights: dict = field(default_factory=dict)  # op name -> packed weights of a binary op
    masks: dict = field(default_factory=dict)  # op name -> full packed mask of a pruned op

    def weight(self, op) -> np.ndarray:
        """The packed weights of a ``bconv2d`` / ``bdense`` (uint64 ``(Cout, ..., W64)``,
        docs/format.md §2), placed from ``weight_kept`` at the mask's kept positions when the file
        stores only the kept weights (§7.3); other ops: their ``weight`` tensor."""
        w = self.weights.get(op.name)
        return self.tensors[op.tensors["weight"]] if w is None else w

    def weight_mask(self, op) -> np.ndarray | None:
        """The full packed mask of a pruned ``bconv2d`` / ``bdense`` (uint64 of the weight's shape,
        bit 1 = kept; docs/format.md §7.3), expanded from ``weight_word_mask`` when the file stores
        the compact form; None for an unpruned op."""
        return self.masks.get(op.name)

    @property
    def input_spec(self) -> dict:
        return self.metadata["input"]

    @property
    def output_spec(self) -> dict:
        return self.metadata["output"]


# ----------------------------------------------------------------------------- writing

def _one_padded(op: dict) -> bool:
    return isinstance(op, dict) and isinstance(op.get("attrs"), dict) and op["attrs"].get("pad_value") == 1


def file_version(graph: dict) -> int:
    """The format version a graph needs: 2 when an op pads with +1 (``pad_value`` 1, which a
    version-1 reader would silently read as true-zero padding), else 1."""
    return ONE_PADDING_VERSION if any(_one_padded(op) for op in graph.get("ops", [])) else FORMAT_VERSION


def dumps(metadata: dict, graph: dict, tensors: dict) -> bytes:
    """Serialize to bytes. ``metadata`` holds producer/input/output; ``graph`` the graph document.

    Deterministic: tensors sorted by name, JSON with sorted keys and no spaces, header padded
    with spaces to a multiple of 8 bytes (as safetensors does) so tensor data is 8-aligned.
    """
    meta = {
        "format": FORMAT_NAME,
        "format_version": str(file_version(graph)),
        "producer": _dump_json(metadata["producer"]),
        "input": _dump_json(metadata["input"]),
        "output": _dump_json(metadata["output"]),
        "graph": _dump_json(graph),
    }
    header: dict = {"__metadata__": meta}
    chunks = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        dt = arr.dtype.newbyteorder("=").name if arr.dtype.byteorder not in "=|" else arr.dtype.name
        if dt not in ST_NAMES:
            raise ValueError(f"tensor {name!r}: dtype {arr.dtype} is not one of {sorted(ST_NAMES)}")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": ST_NAMES[dt], "shape": [int(s) for s in arr.shape],
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    hb = _dump_json(header).encode("utf-8")
    hb += b" " * (-(8 + len(hb)) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(chunks)


def save(path, metadata: dict, graph: dict, tensors: dict) -> None:
    data = dumps(metadata, graph, tensors)
    tmp = f"{os.fspath(path)}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _dump_json(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


# ----------------------------------------------------------------------------- reading

def load(path) -> ModelFile:
    """Read and validate a model file (FormatError on anything malformed)."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise FileNotFoundError(f"cannot open model file {os.fspath(path)!r}: {e.strerror}") from None
    if size > MAX_FILE_BYTES:
        raise FormatError(f"{os.fspath(path)}: file of {size} bytes exceeds the {MAX_FILE_BYTES}-byte limit")
    with open(path, "rb") as f:
        data = f.read(MAX_FILE_BYTES + 1)
    try:
        return loads(data)
    except FormatError as e:
        raise FormatError(f"{os.fspath(path)}: {e}") from None


def loads(data: bytes) -> ModelFile:
    """Parse and validate the bytes of a model file."""
    data = memoryview(bytes(data)) if not isinstance(data, (bytes, bytearray)) else memoryview(data)
    header, body = _split(data)
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict):
        raise FormatError("header has no '__metadata__' object: not a onebit model file")
    try:
        docs = _metadata(meta)
        entries = _tensor_entries(header, len(body))
        graph = docs.pop("graph")
        ops, values, input_name, output_name = _graph(graph, docs)
        tensors, weights, masks = _tensors(ops, values, input_name, entries, body)
    except FormatError:
        raise
    except (TypeError, KeyError, AttributeError, IndexError, ValueError, OverflowError) as e:
        # the checks above name every problem they anticipate; a value of an unexpected JSON type
        # in an unexpected place still ends here, as a format error, never as a crash
        raise FormatError(f"malformed model metadata ({type(e).__name__}: {e})") from None
    return ModelFile(docs, ops, values, tensors, input_name, output_name, weights, masks)


def _split(data: memoryview):
    if len(data) < 8:
        raise FormatError(f"file truncated: {len(data)} bytes, the header length alone takes 8")
    (n,) = struct.unpack("<Q", bytes(data[:8]))
    if n < 2 or n > MAX_HEADER_BYTES:
        raise FormatError(f"header length {n} outside [2, {MAX_HEADER_BYTES}]: not a model file")
    if 8 + n > len(data):
        raise FormatError(f"file truncated: header claims {n} bytes but only {len(data) - 8} follow")
    raw = bytes(data[8:8 + n])
    if raw[:1] != b"{":
        raise FormatError("header does not start with '{': not a safetensors file")
    header = _parse_json(raw, "header")
    if not isinstance(header, dict):
        raise FormatError("header must be a JSON object")
    return header, data[8 + n:]


def _parse_json(raw, what: str):
    depth = _nesting(raw)
    if depth > MAX_JSON_DEPTH:
        raise FormatError(f"{what}: JSON nested {depth} levels deep (limit {MAX_JSON_DEPTH})")
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float,
                         parse_int=_float_sized_int)
        if _SURROGATE_ESCAPE.search(text):  # a \uD8xx escape must be half of a pair
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        return doc
    except FormatError:
        raise
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeError are ValueErrors
        raise FormatError(f"{what}: malformed JSON ({e})") from None


# The JSON rules of the C++ loader (nlohmann/json), which reads the same files: numbers that do
# not fit a double and unpaired UTF-16 surrogate escapes are malformed.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _reject_constant(name):
    raise FormatError(f"JSON constant {name} is not allowed")


def _finite_float(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number overflow parsing {text[:40]!r}")
    return v


def _float_sized_int(text: str) -> int:
    v = int(text)
    if abs(v) >= 1 << 64:
        _finite_float(text)  # beyond 64 bits it must still fit a double
    return v


def _nesting(raw) -> int:
    """Upper bound of the JSON nesting depth (brackets inside strings count too: cheap and safe)."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    b = np.frombuffer(raw, dtype=np.uint8)
    if b.size == 0:
        return 0
    step = ((b == 0x5B) | (b == 0x7B)).astype(np.int64) - ((b == 0x5D) | (b == 0x7D))
    return int(np.cumsum(step).max())


def _metadata(meta: dict) -> dict:
    if meta.get("format") != FORMAT_NAME:
        raise FormatError(f"metadata 'format' is {meta.get('format')!r}, expected {FORMAT_NAME!r}")
    for k in METADATA_KEYS:
        if not isinstance(meta.get(k), str):
            raise FormatError(f"metadata key {k!r} missing or not a string")
    v = meta["format_version"]
    if not (v.isascii() and v.isdigit()) or int(v) not in SUPPORTED_VERSIONS:
        raise FormatError(f"format_version {v!r} is not supported (this onebit reads {list(SUPPORTED_VERSIONS)})")
    docs = {"format": FORMAT_NAME, "format_version": int(v)}
    for k in ("producer", "input", "output", "graph"):
        doc = _parse_json(meta[k], f"metadata {k!r}")
        if not isinstance(doc, dict):
            raise FormatError(f"metadata {k!r} must be a JSON object")
        docs[k] = doc
    producer = docs["producer"]
    if not isinstance(producer.get("onebit"), str):
        raise FormatError("metadata 'producer' must name the onebit version")
    _input_spec(docs["input"])
    out = docs["output"]
    if not isinstance(out.get("name"), str) or out.get("dtype") != "float32":
        raise FormatError("metadata 'output' must have a name and dtype 'float32'")
    return docs


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _input_spec(spec: dict):
    if not isinstance(spec.get("name"), str):
        raise FormatError("metadata 'input' must have a name")
    if spec.get("dtype") != "uint8" or spec.get("layout") != "NHWC":
        raise FormatError("metadata 'input' must describe a uint8 NHWC image")
    shape = spec.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(s) for s in shape)):
        raise FormatError("metadata 'input' shape must be [H, W, C]")
    c = shape[2]
    for k in ("mean", "std"):
        vals = spec.get(k)
        if not (isinstance(vals, list) and len(vals) == c and all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in vals)):
            raise FormatError(f"metadata 'input' {k} must be {c} finite numbers (one per channel)")
    if not all(x > 0 for x in spec["std"]):
        raise FormatError("metadata 'input' std must be positive")


def _tensor_entries(header: dict, body_len: int) -> dict:
    entries = {}
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise FormatError(f"tensor {name!r}: entry must have exactly dtype, shape, data_offsets")
        dt = e["dtype"]
        if dt not in DTYPES:
            raise FormatError(f"tensor {name!r}: dtype {dt!r} not supported (known: {sorted(DTYPES)})")
        shape = e["shape"]
        if not (isinstance(shape, list) and len(shape) <= 8 and all(
                isinstance(s, int) and not isinstance(s, bool) and 0 <= s < (1 << 40) for s in shape)):
            raise FormatError(f"tensor {name!r}: shape {shape!r} is not a list of non-negative integers")
        off = e["data_offsets"]
        if not (isinstance(off, list) and len(off) == 2 and all(
                isinstance(o, int) and not isinstance(o, bool) for o in off)):
            raise FormatError(f"tensor {name!r}: data_offsets must be two integers")
        b, end = off
        if not 0 <= b <= end <= body_len:
            raise FormatError(f"tensor {name!r}: data_offsets {off} outside the {body_len}-byte data "
                              f"section (file truncated?)")
        nbytes = math.prod(shape) * np.dtype(DTYPES[dt]).itemsize
        if nbytes != end - b:
            raise FormatError(f"tensor {name!r}: {dt}{shape} needs {nbytes} bytes, offsets span {end - b}")
        entries[name] = (DTYPES[dt], tuple(shape), b, end)
    pos = 0
    for name, (_, _, b, end) in sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3])):
        if b < pos:
            raise FormatError(f"tensor {name!r}: data overlaps the previous tensor (offset {b} < {pos})")
        if b > pos:
            raise FormatError(f"tensor {name!r}: {b - pos} unaccounted bytes before it (offset {b})")
        pos = end
    if pos != body_len:
        raise FormatError(f"data section has {body_len} bytes but the tensors cover {pos}")
    return entries


def _graph(graph: dict, docs: dict):
    keys = {"input", "output", "values", "ops"}
    if set(graph) != keys:
        raise FormatError(f"graph must have exactly the keys {sorted(keys)}, got {sorted(graph)}")
    if not isinstance(graph["ops"], list) or not graph["ops"]:
        raise FormatError("graph 'ops' must be a non-empty list")
    if not isinstance(graph["values"], dict):
        raise FormatError("graph 'values' must be an object")
    declared = {name: value_from_json(f"value {name!r}", v) for name, v in graph["values"].items()}
    input_name, output_name = graph["input"], graph["output"]
    if not isinstance(input_name, str) or input_name not in declared:
        raise FormatError(f"graph input {input_name!r} is not a declared value")
    if input_name != docs["input"]["name"]:
        raise FormatError(f"graph input {input_name!r} differs from metadata input {docs['input']['name']!r}")
    in_val = declared[input_name]
    if list(in_val.shape) != docs["input"]["shape"]:
        raise FormatError(f"graph input shape {list(in_val.shape)} differs from metadata {docs['input']['shape']}")
    ops = [op_from_json(i, d) for i, d in enumerate(graph["ops"])]
    values, specs = infer(ops, input_name, in_val, declared)
    for op in ops:
        if docs["format_version"] < ONE_PADDING_VERSION and op.attrs.get("pad_value") == 1:
            raise FormatError(f"op {op.name!r} ({op.type}): pad_value 1 (one-padding) needs format_version "
                              f"{ONE_PADDING_VERSION}, the file declares {docs['format_version']}")
    if output_name != ops[-1].output or output_name != docs["output"]["name"]:
        raise FormatError(f"graph output {output_name!r} must be the last op's output "
                          f"{ops[-1].output!r} and the metadata output {docs['output']['name']!r}")
    out = values[output_name]
    if out.kind != "f32" or len(out.shape) != 1:
        raise FormatError(f"graph output must be flat float32 logits, got {out.kind} {list(out.shape)}")
    oshape = docs["output"].get("shape")
    if not (isinstance(oshape, list) and all(_is_int(s) for s in oshape)) or oshape != list(out.shape):
        raise FormatError(f"metadata output shape {docs['output'].get('shape')} differs from the graph's {list(out.shape)}")
    for op in ops:
        op.specs = specs[op.name]  # role -> (dtype, shape), used by the tensor checks
    return ops, values, input_name, output_name


def _tensors(ops, values, input_name, entries: dict, body: memoryview) -> dict:
    used = {}
    for op in ops:
        for role, tname in op.tensors.items():
            if tname in used:
                raise FormatError(f"op {op.name!r}: tensor {tname!r} is already used by op {used[tname]!r}")
            used[tname] = op.name
            if tname not in entries:
                raise FormatError(f"op {op.name!r}: tensor {tname!r} ({role}) is missing from the file")
            dt, shape = op.specs[role]
            fdt, fshape, _, _ = entries[tname]
            if (fdt, fshape) != (dt, shape):
                raise FormatError(f"op {op.name!r}: tensor {tname!r} ({role}) is {fdt}{list(fshape)}, "
                                  f"expected {dt}{list(shape)}")
    extra = sorted(set(entries) - set(used))
    if extra:
        raise FormatError(f"tensors {extra[:5]} are not used by the graph")
    # compact masks and kept-only weights expand at load: together at most the file limit, so a
    # small file cannot make the loader allocate more than a file in the long form could hold
    expanded = sum(8 * math.prod(weight_shape(op)) * ((WORD_MASK_ROLE in op.tensors) + (KEPT_ROLE in op.tensors))
                   for op in ops if op.type in ("bconv2d", "bdense"))
    if expanded > MAX_FILE_BYTES:
        raise FormatError(f"compact masks and kept weights expand to {expanded} bytes, more than the "
                          f"{MAX_FILE_BYTES}-byte file limit")
    tensors = {}
    for name, (dt, shape, b, end) in entries.items():
        arr = np.frombuffer(body[b:end], dtype=np.dtype(dt).newbyteorder("<")).astype(dt).reshape(shape)
        tensors[name] = np.ascontiguousarray(arr)  # astype copied it: owned and aligned
    weights, masks = {}, {}
    for op in ops:
        wm = _check_contents(op, values[op.inputs[0]], {r: tensors[t] for r, t in op.tensors.items()})
        if wm is not None:
            weights[op.name] = wm[0]
            if wm[1] is not None:
                masks[op.name] = wm[1]
    return tensors, weights, masks


def _check_contents(op: Op, x: Value, t: dict):
    """Contents the kernels rely on (a violation would be a silent wrong answer, not a crash).

    Returns ``(weight, mask)`` of a binary op in the full packed form (:func:`_check_binary`)."""
    def bad(msg):
        raise FormatError(f"op {op.name!r} ({op.type}): {msg}")

    if "direction" in t and not np.isin(t["direction"], (-1, 1)).all():
        bad("direction values must be +1 or -1")
    for role in ("scale", "bias", "weight", "in_scale", "in_offset", "lower", "upper", "slope"):
        a = t.get(role)
        if a is not None and a.dtype == np.float32 and not np.isfinite(a).all():
            bad(f"tensor {role!r} has non-finite values")
    if "lower" in t:  # clamp_f32 per channel
        over = np.flatnonzero(~(t["lower"] <= t["upper"]))
        if over.size:
            bad(f"tensor 'lower' exceeds 'upper' at channel {int(over[0])}")
    if "zero_point" in t and ((t["zero_point"] < 0) | (t["zero_point"] > 255)).any():
        bad("zero_point values must lie in [0, 255]")
    if op.type in ("conv2d_u8", "conv2d_i8", "dwconv2d_i8") and (t["weight"] == -128).any():
        bad("int8 weights must lie on the symmetric grid [-127, 127]")
    if op.type in ("bconv2d", "bdense"):
        return _check_binary(op, t, bad)
    if op.type == "bconv2d_planes":
        a = op.attrs
        if a.get("weight_layout", "taps") == "window":  # rows of KH*KW*Cin bits
            k = a["kernel"][0] * a["kernel"][1] * a["in_channels"]
            if k % 64 and (t["weight"][..., -1] >> np.uint64(k % 64)).any():
                bad(f"window weights have non-zero padding bits (bits {k}.. of a row)")
        else:
            _check_padding_bits(t["weight"], a["in_channels"], "packed weights", bad)
    return None


def _check_padding_bits(w: np.ndarray, cin: int, what: str, bad):
    """Channel padding bits (channels ``cin`` .. of the last word of each row) must be 0."""
    rem = cin % 64
    if rem and (w[..., -1] >> np.uint64(rem)).any():
        bad(f"{what} have non-zero channel padding bits (channels {cin}..)")


def _check_binary(op: Op, t: dict, bad):
    """Weights and mask of a ``bconv2d`` / ``bdense`` (docs/format.md §2, §7.3) in any stored form;
    returns ``(weight, mask)`` in the full packed form (mask None for an unpruned op)."""
    cin = op.attrs["in_channels"] if op.type == "bconv2d" else op.attrs["in_features"]
    shape = weight_shape(op)
    rem = cin % 64
    pad_mask = np.uint64(((1 << 64) - 1) ^ ((1 << rem) - 1)) if rem else None
    m = role = counts = None
    if MASK_ROLE in t:
        m, role = t[MASK_ROLE], MASK_ROLE
        if rem and (m[..., -1] & pad_mask).any():
            bad(f"weight_mask has non-zero channel padding bits (channels {cin}..)")
        counts = kept_counts(m)
    elif WORD_MASK_ROLE in t:
        m, role = _expand_word_mask(shape, cin, t[WORD_MASK_ROLE], bad), WORD_MASK_ROLE
        # (counted from the kept words: cheaper than a popcount of the expansion)
        counts = word_mask_kept_counts(t[WORD_MASK_ROLE], shape, cin)
    if KEPT_ROLE in t:  # the kept weights only, placed at the mask's 1 bits
        n, wk = int(counts.sum()), t[KEPT_ROLE]
        if op.attrs["kept_weights"] != n:
            bad(f"kept_weights = {op.attrs['kept_weights']} but {role} keeps {n} weights")
        if n % 64 and wk[-1] >> np.uint64(n % 64):
            bad(f"weight_kept has non-zero padding bits (bits {n % 64}.. of its last word)")
        w = unpack_kept(wk, m)
    else:
        w = t["weight"]
        _check_padding_bits(w, cin, "packed weights", bad)
        if m is not None and (w & ~m).any():
            n = int(np.count_nonzero(w & ~m))
            bad(f"weight bits under pruned positions must be 0 (canonical form): {n} packed "
                f"words have a weight bit set where {role} is 0")
    if m is not None:
        bound = int(counts.max(initial=0))
        if op.attrs["accumulator_bound"] != bound:
            bad(f"accumulator_bound = {op.attrs['accumulator_bound']} but {role} keeps at "
                f"most {bound} weights of one output channel")
    return w, m


def _expand_word_mask(shape: tuple, cin: int, wm: np.ndarray, bad) -> np.ndarray:
    """The full mask of a compact ``weight_word_mask`` (docs/format.md §7.3): one bit per packed
    weight word, bits past the op's words per output channel (padding) must be 0."""
    words = int(np.prod(shape[1:]))
    rem = words % 64
    if rem and (wm[:, -1] >> np.uint64(rem)).any():
        rows = int(np.count_nonzero(wm[:, -1] >> np.uint64(rem)))
        bad(f"weight_word_mask has non-zero padding bits (bits {words}.. of a row) in {rows} "
            f"output channel(s)")
    return unpack_word_mask(wm, shape, cin)
