"""Deterministic sample order for copies stored one folder per class.

Folder-per-class copies (the CIFAR-10 JPEG tarball, Imagenette) lose the original interleaved
order.  Sorting by class would make ``limit=N`` prefixes (and unshuffled evaluation batches)
single-class, so samples are *interleaved round robin*: sorted by (position within its class,
class id).  Sample i of a split with equal class counts has class ``i % num_classes``; with
unequal counts a class that runs out is skipped.  Positions are file-name order within a class.
"""
from __future__ import annotations

import numpy as np

__all__ = ["interleave"]


def interleave(labels: np.ndarray) -> np.ndarray:
    """Permutation that reorders samples given in class-sorted (then file-name) order so that
    classes alternate round robin.  ``labels`` is the label of each sample in the input order."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    # rank of each sample among the samples of its class, in input order
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    rank = np.empty_like(labels)
    rank[order] = np.arange(labels.size) - starts
    return np.lexsort((labels, rank))
