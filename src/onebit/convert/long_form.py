"""Rewrite a model file's pruned ops in the long storage forms (docs/format.md §7.3).

The converter writes the compact forms (``weight_word_mask``, ``weight_kept``); the long forms
(full ``weight_mask``, full packed ``weight``) describe the same model and every reader accepts
them.
"""
from __future__ import annotations

import json
import struct

from onebit.runtime import format as fmt


def long_form_bytes(data: bytes, *, mask: bool = True, weight: bool = True) -> bytes:
    """A model file's bytes with its pruned ops rewritten in the long storage forms of
    docs/format.md §7.3: every compact ``weight_word_mask`` as the full ``weight_mask`` (``mask``)
    and every ``weight_kept`` as the full packed ``weight`` (``weight``). The same model in the
    forms every reader also accepts (tests and benchmarks compare the forms)."""
    mf = fmt.loads(data)
    n = struct.unpack("<Q", data[:8])[0]
    graph = json.loads(json.loads(data[8:8 + n])["__metadata__"]["graph"])
    tensors = dict(mf.tensors)
    for op, d in zip(mf.ops, graph["ops"]):
        roles = d["tensors"]
        if mask and "weight_word_mask" in roles:
            del tensors[roles.pop("weight_word_mask")]
            roles["weight_mask"] = f"{op.name}.weight_mask"
            tensors[roles["weight_mask"]] = mf.weight_mask(op)
        if weight and "weight_kept" in roles:
            del tensors[roles.pop("weight_kept")]
            del d["attrs"]["kept_weights"]
            roles["weight"] = f"{op.name}.weight"
            tensors[roles["weight"]] = mf.weight(op)
    out = fmt.dumps(mf.metadata, graph, tensors)
    fmt.loads(out)  # still a valid file
    return out
