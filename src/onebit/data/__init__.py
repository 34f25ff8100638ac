"""Datasets for onebit: MNIST, Fashion-MNIST, CIFAR-10, Imagenette.

``load(name, split)`` returns uint8 NHWC images and int64 labels (verified, decoded once and
cached); ``make_loader(...)`` yields normalized float32 NCHW torch batches; ``normalize``
converts uint8 images the same way (NumPy in, NumPy out).  Importing this package does not
import torch; ``make_loader`` does.

Where files are searched, verified and downloaded: :mod:`onebit.data.sources`.
"""
from __future__ import annotations

from onebit.data.errors import ChecksumError, DatasetFormatError, DatasetNotFoundError
from onebit.data.splits import load, normalize
from onebit.data.registry import DATASETS, DatasetInfo, info

__all__ = ["load", "info", "make_loader", "normalize", "DATASETS", "DatasetInfo",
           "DatasetNotFoundError", "ChecksumError", "DatasetFormatError"]


def make_loader(name, split="train", batch_size=128, **kwargs):
    """See :func:`onebit.data.batches.make_loader` (imported lazily: it needs torch)."""
    from onebit.data.batches import make_loader as _make_loader

    return _make_loader(name, split, batch_size, **kwargs)
