"""Read a Keras 2 ``.h5`` file with h5py alone: the architecture JSON and the weights by layer.

Two layouts (Keras 2's ``hdf5_format``):

- ``model.save("x.h5")``: root attributes ``model_config`` (JSON), ``keras_version``, ``backend``;
  the weights in the group ``model_weights``.
- ``model.save_weights("x.h5")`` (what Larq Zoo publishes): no ``model_config``; the weights at
  the root.

In both, the weights group has the attribute ``layer_names`` (one entry per layer, weighted or
not) and each layer's group has ``weight_names`` (``"layer/kernel:0"``, ...) naming datasets
below that group. An attribute too large for one HDF5 object header is split by Keras into
``name0``, ``name1``, ... and is read back joined.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from onebit.errors import OnebitError


class LarqImportError(OnebitError, ValueError):
    """A Keras / Larq file cannot be imported exactly (malformed, or a layer onebit cannot represent)."""


@dataclass
class KerasFile:
    """What an ``.h5`` file holds: the model config (``None`` for weights-only files) and the
    weights, ``{layer name: {short weight name: array}}`` in the file's layer order."""

    path: str
    config: dict | None
    weights: dict = field(default_factory=dict)
    keras_version: str | None = None


def _text(v) -> str:
    return v.decode("utf-8") if isinstance(v, (bytes, np.bytes_)) else str(v)


def _attr_list(group, name: str, where: str) -> list[str] | None:
    """A string-list attribute, joined from Keras' chunks ``name0``, ``name1``... if split."""
    if name in group.attrs:
        return [_text(v) for v in np.atleast_1d(group.attrs[name])]
    if f"{name}0" in group.attrs:
        out, i = [], 0
        while f"{name}{i}" in group.attrs:
            out.extend(_text(v) for v in np.atleast_1d(group.attrs[f"{name}{i}"]))
            i += 1
        return out
    return None


def short_name(weight_name: str) -> str:
    """``"block/quant_conv2d/kernel:0"`` -> ``"kernel"``."""
    return weight_name.rsplit("/", 1)[-1].split(":", 1)[0]


def read(path) -> KerasFile:
    """Open ``path`` and read its config and weights; :class:`LarqImportError` if it is not a
    Keras 2 HDF5 model or weights file."""
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency of the importer
        raise LarqImportError("importing Keras .h5 files needs h5py (pip install h5py)") from e
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LarqImportError(f"{path}: no such file")
    if not h5py.is_hdf5(path):
        raise LarqImportError(f"{path}: not an HDF5 file (a Keras 2 model saved with model.save('x.h5') "
                              f"or model.save_weights('x.h5') is expected)")
    with h5py.File(path, "r") as f:
        config = None
        if "model_config" in f.attrs:
            try:
                config = json.loads(_text(f.attrs["model_config"]))
            except (ValueError, TypeError) as e:
                raise LarqImportError(f"{path}: attribute model_config is not valid JSON: {e}") from None
            if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
                raise LarqImportError(f"{path}: model_config has no class_name/config: not a Keras model")
        version = _text(f.attrs["keras_version"]) if "keras_version" in f.attrs else None
        if version is not None and version.split(".")[0] not in ("2",):
            raise LarqImportError(f"{path}: saved by Keras {version}; Keras 2 files (tf.keras / tf-keras, "
                                  f"as Larq uses) are supported")
        if config is not None:
            if "model_weights" not in f:
                raise LarqImportError(f"{path}: a model_config but no model_weights group: the file "
                                      f"holds no weights")
            group = f["model_weights"]
        else:
            group = f
        names = _attr_list(group, "layer_names", path)
        if names is None:
            what = "model_weights has" if config is not None else "the file has no model_config and"
            raise LarqImportError(f"{path}: {what} no layer_names attribute: not a Keras 2 .h5 model or "
                                  f"weights file")
        weights = {}
        for lname in names:
            if lname not in group:
                raise LarqImportError(f"{path}: layer {lname!r} is listed in layer_names but has no group")
            lg = group[lname]
            wnames = _attr_list(lg, "weight_names", path) or []
            ws = {}
            for wn in wnames:
                if wn not in lg:
                    raise LarqImportError(f"{path}: layer {lname!r}: weight {wn!r} is listed but missing")
                ds = lg[wn]
                if not isinstance(ds, h5py.Dataset):
                    raise LarqImportError(f"{path}: layer {lname!r}: weight {wn!r} is not a dataset")
                arr = np.asarray(ds[()])
                if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
                    raise LarqImportError(f"{path}: layer {lname!r}: weight {wn!r} has dtype {arr.dtype}, "
                                          f"numbers expected")
                key = short_name(wn)
                if key in ws:
                    raise LarqImportError(f"{path}: layer {lname!r}: two weights named {key!r}")
                ws[key] = arr.astype(np.float32)
            weights[lname] = ws
    return KerasFile(path, config, weights, version)
