"""Converter: trained PyTorch model -> one ``.onebit`` file, and its integer simulation.

``export(model, path)`` writes the file (docs/format.md §7); ``simulate(model)`` returns a
torch module computing exactly the integers the engine computes (the engine's reference).
"""
from __future__ import annotations

from onebit.convert.export import export, to_bytes
from onebit.convert.fold import ConversionError
from onebit.convert.simulate import IntegerSimulation, simulate

__all__ = ["ConversionError", "IntegerSimulation", "export", "simulate", "to_bytes"]
