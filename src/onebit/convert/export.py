"""``onebit.convert.export(model, path)``: write a trained model as one ``.onebit`` file.

The file (docs/format.md §7) holds the engine graph built by :mod:`onebit.convert.dag` (chains
by :mod:`onebit.convert.graph`), the
folded and packed tensors, the input spec (uint8 NHWC image, the dataset's normalization and
the zero points of the first layer), the output spec (float32 logits) and the producer
versions. Export validates its own output with the runtime loader before writing, so a file
this function writes always loads.
"""
from __future__ import annotations

import copy
import os

import torch
from torch import nn

import onebit
from onebit.convert.dag import build
from onebit.runtime import format as fmt


def input_spec_for(model: nn.Module, dataset: str | None = None, input_size: int | None = None) -> dict:
    """Input spec from the dataset the model was built for (``model.dataset_hint``)."""
    from onebit.data import info

    name = dataset or getattr(model, "dataset_hint", None)
    if name is None:
        raise ValueError("the model has no dataset_hint: pass dataset=NAME (or input_spec=...) to export")
    cfg = getattr(model, "onebit_config", {}) or {}
    size = input_size or cfg.get("input_size")
    ds = info(name, size=size) if size is not None and name == "imagenette" else info(name)
    side = int(size or ds.image_size)
    return {"dataset": ds.name, "shape": [side, side, int(ds.channels)],
            "mean": [float(v) for v in ds.mean], "std": [float(v) for v in ds.std],
            "num_classes": int(ds.num_classes), "class_names": list(ds.class_names)}


def to_bytes(model: nn.Module, *, input_spec: dict | None = None, dataset: str | None = None,
             float_boundary: bool = False) -> bytes:
    """Convert and serialize (the model is not modified: a deep copy is put in eval mode).

    ``float_boundary``: the first convolution runs in float32 (``conv2d_f32`` on the normalized
    image) instead of int8, so that the engine follows the float model to float32 rounding up to
    the first sign (float shortcuts and the float head are float32 in both modes)."""
    spec = input_spec or input_spec_for(model, dataset)
    m = copy.deepcopy(model).cpu().eval()
    shape = [int(v) for v in spec["shape"]]
    ops, values, tensors = build(m, shape, spec["mean"], spec["std"], float_boundary=float_boundary)
    out = ops[-1].output
    graph = {"input": "input", "output": out, "values": {k: v.to_json() for k, v in values.items()},
             "ops": [op.to_json() for op in ops]}
    first = ops[0]
    meta = {
        "producer": {"onebit": onebit.__version__, "torch": torch.__version__.split("+")[0],
                     "model": dict(getattr(model, "onebit_config", {}) or {})},
        "input": {"name": "input", "dtype": "uint8", "layout": "NHWC", "shape": shape,
                  "dataset": spec.get("dataset"), "mean": list(spec["mean"]), "std": list(spec["std"]),
                  "normalization": "x = (u / 255 - mean[c]) / std[c]",
                  "zero_point": [int(v) for v in tensors[first.tensors["zero_point"]]]
                  if "zero_point" in first.tensors else None},
        "output": {"name": out, "dtype": "float32", "shape": list(values[out].shape),
                   "class_names": spec.get("class_names")},
    }
    data = fmt.dumps(meta, graph, tensors)
    fmt.loads(data)  # the converter's output must pass the loader's validation
    return data


def export(model: nn.Module, path, *, input_spec: dict | None = None, dataset: str | None = None,
           float_boundary: bool = False) -> str:
    """Convert ``model`` and write ``path``; returns the path.

    ``input_spec`` (optional) overrides the dataset-derived spec:
    ``{"shape": [H, W, C], "mean": [...], "std": [...], "dataset": name}``.
    ``float_boundary``: see :func:`to_bytes`.
    Raises :class:`onebit.convert.ConversionError` naming an unsupported layer and its type.
    """
    data = to_bytes(model, input_spec=input_spec, dataset=dataset, float_boundary=float_boundary)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return path
