"""Edit a ``.onebit`` file's header (docs/format.md §7.1) for the malformed-file tests, and check
that both loaders (Python ``onebit.runtime.format``, C++ engine) reject the result alike."""
from __future__ import annotations

import json
import struct

import pytest

from onebit import FormatError


def split(data: bytes):
    """(header dict, data section bytes)."""
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header: dict, body: bytes) -> bytes:
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + bytes(body)


def edit_graph(data: bytes, fn) -> bytes:
    """The file with ``fn(graph, header)`` applied to its graph (parsed) and header."""
    header, body = split(data)
    graph = json.loads(header["__metadata__"]["graph"])
    fn(graph, header)
    header["__metadata__"]["graph"] = json.dumps(graph)
    return join(header, body)


def edit_op(data: bytes, op_type: str, fn) -> bytes:
    """The file with ``fn(op, graph, header)`` applied to its first op of type ``op_type``."""
    def edit(graph, header):
        fn(next(o for o in graph["ops"] if o["type"] == op_type), graph, header)
    return edit_graph(data, edit)


def both_reject(data: bytes, match: str):
    from onebit.runtime import format as fmt
    from onebit.runtime.engine import engine

    with pytest.raises(FormatError, match=match):
        fmt.loads(data)
    with pytest.raises(FormatError, match=match):
        engine.validate_model(data)


def loads_both(data: bytes):
    """fmt.loads(data), after checking that the C++ loader agrees on accepting it."""
    from onebit.runtime import format as fmt
    from onebit.runtime.engine import engine

    try:
        mf = fmt.loads(data)
    except FormatError as py_err:
        with pytest.raises(FormatError):
            engine.validate_model(data)
        raise py_err
    try:
        engine.validate_model(data)
    except FormatError as e:
        raise AssertionError(f"the C++ loader rejects a file the Python loader accepts: {e}") from None
    return mf
