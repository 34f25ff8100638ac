"""Larq Zoo architectures, for the weights-only files Larq Zoo publishes (``model.save_weights``).

``zoo/NAME.json.gz`` holds the Keras 2 config of ``larq_zoo.NAME(weights=None)`` (written by
``benchmarks/peers/larq_zoo_architectures.py``). :func:`with_architecture` pairs it with the
weights of a file: by layer name (default), or by order (``match="order"``: the i-th layer with
weights in the file goes to the i-th layer with weights in the architecture, as Keras'
``load_weights`` does for ``.h5`` files); every unmatched or missing name is listed.
"""
from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

from onebit.convert.larq.h5file import KerasFile, LarqImportError

_DIR = Path(__file__).resolve().parent / "zoo"

#: Keras / Larq layer classes that carry weights
WEIGHTED = {"Conv2D", "QuantConv2D", "DepthwiseConv2D", "QuantDepthwiseConv2D", "Dense", "QuantDense",
            "BatchNormalization", "PReLU", "Normalization"}


#: Lambda layers of an architecture that return their input, known from larq_zoo's source
#: (``real_to_bin_nets.py``: ``Lambda(lambda x: x, name=f"{name}_out")``): declared for the files
#: imported with that architecture (``larq_zoo=NAME``), whose Lambdas are this copy's, not the file's
IDENTITY_LAMBDAS = {"RealToBinaryNet": ("r2b_bnn_block_*_out",)}


def identity_lambdas(name: str) -> tuple[str, ...]:
    """The ``fnmatch`` patterns of architecture ``name``'s Lambda layers that return their input."""
    return IDENTITY_LAMBDAS.get(name, ())


def names() -> list[str]:
    """The architectures available (Larq Zoo model names)."""
    return sorted(p.name[: -len(".json.gz")] for p in _DIR.glob("*.json.gz"))


def architecture(name: str) -> dict:
    """The Keras model config of Larq Zoo model ``name``."""
    path = _DIR / f"{name}.json.gz"
    if not path.is_file():
        raise LarqImportError(f"unknown Larq Zoo architecture {name!r}; known: {', '.join(names())}")
    with gzip.open(path, "rb") as f:
        return json.loads(f.read().decode("utf-8"))


def _weighted_layers(config: dict) -> list[str]:
    return [ly.get("name") or ly["config"]["name"] for ly in config["config"]["layers"]
            if ly.get("class_name") in WEIGHTED]


def with_architecture(kf: KerasFile, name: str, match: str = "name") -> KerasFile:
    """``kf`` (a weights-only file) with the architecture of Larq Zoo model ``name``."""
    if kf.config is not None:
        raise LarqImportError(f"{kf.path}: the file holds its own architecture (model.save); "
                              f"an architecture name is for weights-only files")
    if match not in ("name", "order"):
        raise LarqImportError(f"match must be 'name' or 'order', got {match!r}")
    config = architecture(name)
    want = _weighted_layers(config)
    have = [n for n, w in kf.weights.items() if w]
    if match == "order":
        if len(have) != len(want):
            raise LarqImportError(f"{kf.path}: {len(have)} layers with weights, architecture {name} has "
                                  f"{len(want)}: the file is not {name}'s weights")
        weights = {w: kf.weights[h] for h, w in zip(have, want)}
    else:
        unmatched = [n for n in have if n not in set(want)]
        missing = [n for n in want if n not in set(have)]
        if unmatched or missing:
            raise LarqImportError(
                f"{kf.path}: weights do not match architecture {name} by layer name: "
                f"{len(unmatched)} layer(s) of the file not in {name}: {unmatched[:20]}"
                f"{' ...' if len(unmatched) > 20 else ''}; {len(missing)} layer(s) of {name} without weights: "
                f"{missing[:20]}{' ...' if len(missing) > 20 else ''} (try matching by order)")
        weights = {n: kf.weights[n] for n in want}
    return replace(kf, config=config, weights=weights)
