"""Edit a ``.onebit`` file's header for loader tests: split it into (header, body) and join it
back, edit one op of the graph, and check that both loaders (Python ``onebit.runtime.format``
and the C++ loader) reject the result with the same message."""
from __future__ import annotations

import json
import struct

import pytest


def split(data: bytes):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def join(header, body) -> bytes:
    hb = json.dumps(header).encode()
    return struct.pack("<Q", len(hb)) + hb + body


def edit_graph(data: bytes, fn) -> bytes:
    """``fn(graph, header)`` edits the parsed graph and the header in place."""
    header, body = split(data)
    graph = json.loads(header["__metadata__"]["graph"])
    fn(graph, header)
    header["__metadata__"]["graph"] = json.dumps(graph)
    return join(header, body)


def edit_op(data: bytes, op_type: str, fn) -> bytes:
    """``fn(op, graph, header)`` edits the first op of ``op_type`` in place."""
    return edit_graph(data, lambda graph, header: fn(next(o for o in graph["ops"] if o["type"] == op_type),
                                                     graph, header))


def both_reject(data: bytes, match: str) -> None:
    from onebit import FormatError
    from onebit.runtime import format as fmt
    from onebit.runtime.engine import engine

    with pytest.raises(FormatError, match=match):
        fmt.loads(data)
    with pytest.raises(FormatError, match=match):
        engine.validate_model(data)
