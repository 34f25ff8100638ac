"""Torch-free inference runtime: NumPy in, NumPy out, over the C++ engine ``onebit._engine``.

``Session(path, threads=None, isa=None).run(x)`` runs a ``.onebit`` model file
(docs/format.md §7); ``capabilities()`` reports the ISAs and threads the engine can use.
"""
from __future__ import annotations

from onebit.runtime.engine import capabilities, engine
from onebit.runtime.session import Session

__all__ = ["Session", "capabilities", "engine"]
