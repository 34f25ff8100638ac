"""onebit: binary neural networks — train, prune, compile to a bit-packed integer graph, run fast.

Subpackages (imported on first use so that ``import onebit.runtime`` never pulls in torch):
``onebit.nn``, ``onebit.models``, ``onebit.data``, ``onebit.train``, ``onebit.prune``,
``onebit.convert`` (torch side) and ``onebit.runtime`` (NumPy + the C++ engine only).
"""
from __future__ import annotations

import importlib

from onebit.errors import FormatError, OnebitError

__version__ = "0.1.0"
__all__ = ["FormatError", "OnebitError", "summary", "__version__"]


def summary(model, *args, **kwargs):
    """Per-layer table of a model's parameters, binary and float MACs (see onebit.summary)."""
    from onebit.summarize import summary as _summary

    return _summary(model, *args, **kwargs)


def __getattr__(name):
    if name in {"nn", "models", "data", "train", "prune", "convert", "runtime", "bits", "cli"}:
        return importlib.import_module(f"onebit.{name}")
    raise AttributeError(f"module 'onebit' has no attribute {name!r}")
