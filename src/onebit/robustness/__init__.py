"""Bit-flip robustness of ``.onebit`` models, measured on the engine (RA-BNN, Rakin et al. 2021).

``study(model, dataset, flips, mode, kinds)`` flips bits of the stored weights in copies of the
model file (binary weights, thresholds, int8 weights; :mod:`onebit.robustness.sites`), either
uniformly at random or by the progressive bit search of the bit-flip attack run on the PyTorch
checkpoint (:mod:`onebit.robustness.progressive`), and measures the engine's accuracy;
:mod:`onebit.robustness.report` prints the table and draws the plot.
"""
from onebit.robustness.sites import KINDS, RobustnessError, find_sites
from onebit.robustness.study import MODES, parse_flips, parse_kinds, study

__all__ = ["KINDS", "MODES", "RobustnessError", "find_sites", "parse_flips", "parse_kinds", "study"]
