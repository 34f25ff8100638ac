"""Torch-free inference runtime: NumPy in, NumPy out, over the C++ engine ``onebit._engine``."""
from __future__ import annotations

from onebit.runtime.engine import capabilities, engine

__all__ = ["capabilities", "engine"]
