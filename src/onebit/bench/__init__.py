"""Benchmarks behind ``onebit bench`` (torch-free): binary conv layers (``layers``), whole model
files (``model``), the peer engines timed beside them (``peers``) and the timing helpers
(``timing``) that ``benchmarks/*.py`` share."""
