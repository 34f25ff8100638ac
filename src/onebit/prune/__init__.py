"""Pruning of binary neural networks: a third weight state, 0 (weights become ternary).

- :class:`Pruner` — optimizer-like lifecycle (``prepare`` / ``prune`` / ``step`` / ``finalize``,
  ``state_dict`` round trip), targets in binary ops (``target=0.4``: 40% fewer bit-MACs).
- Ratio allocation (``onebit.prune.allocation``): per-layer ratios -> masks -> exact binary-op
  reduction, and the solver that meets a target (uniform, global, flip; channel multiples).
- Scores (``onebit.prune.scores``): latent-weight magnitude, flip frequency
  (:class:`FlipCounter`), random.
- Granularities (``onebit.prune.granularity``): ``weight``, ``word`` (64 input channels at one
  kernel tap: the engine's packed word), ``block`` (8 output channels x one word x one tap: the
  engine's AVX2 tile), ``channel`` (filters; :func:`shrink` removes them).
- Layer sensitivity sweep and target allocator (``onebit.prune.sensitivity``), fine-tuning and
  iterative schedules (``onebit.prune.finetune``), pruned checkpoints
  (``onebit.prune.checkpoint``), plots (``onebit.prune.plots``).
"""
from onebit.prune.bops import BopsReport, count_bops, layer_positions
from onebit.prune.checkpoint import load_checkpoint, rebuild, save_pruned
from onebit.prune.finetune import evaluate, iterative_prune
from onebit.prune.flips import FlipCounter
from onebit.prune.granularity import GRANULARITIES
from onebit.prune.layers import PruneError, binary_layers, ensure_mask_buffers, get_mask, set_mask
from onebit.prune.allocation import ALLOCATIONS
from onebit.prune.pruner import Pruner
from onebit.prune.scores import METHODS
from onebit.prune.sensitivity import SensitivityCurves, allocate, sweep
from onebit.prune.shrink import apply_plan, shrink

__all__ = [
    "ALLOCATIONS", "GRANULARITIES", "METHODS", "BopsReport", "FlipCounter", "PruneError", "Pruner",
    "SensitivityCurves", "allocate", "apply_plan", "binary_layers", "count_bops",
    "ensure_mask_buffers", "evaluate", "get_mask", "iterative_prune", "layer_positions",
    "load_checkpoint", "rebuild", "save_pruned", "set_mask", "shrink", "sweep",
]
