"""One split of a dataset as arrays: ``load`` (decoded, verified uint8 NHWC images and int64
labels) and ``normalize`` (to float32 NCHW). Torch-free; training batches are in ``batches``."""
from __future__ import annotations

import numpy as np

from onebit.data import cache, cifar, imagenette, mnist
from onebit.data.errors import DatasetFormatError
from onebit.data.registry import DatasetInfo, canonical_split, info
from onebit.data.sources import data_roots

__all__ = ["load", "normalize"]

_READERS = {"mnist": mnist, "fashion-mnist": mnist, "cifar10": cifar, "imagenette": imagenette}


def _check(ds: DatasetInfo, split: str, images, labels, where) -> None:
    want = (ds.split_sizes[split], ds.image_size, ds.image_size, ds.channels)
    if images.dtype != np.uint8 or tuple(images.shape) != want:
        raise DatasetFormatError(
            f"{where}: {ds.name} {split} decoded to {images.dtype} {tuple(images.shape)}, "
            f"expected uint8 {want}")
    if labels.dtype != np.int64 or labels.shape != (want[0],):
        raise DatasetFormatError(f"{where}: labels are {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= ds.num_classes):
        raise DatasetFormatError(f"{where}: labels outside [0, {ds.num_classes})")


def load(name: str, split: str = "train", root=None, size: int | None = None):
    """Images and labels of one split: ``(uint8 (N, H, W, C), int64 (N,))``.

    ``name``: "mnist", "fashion-mnist", "cifar10" or "imagenette".  ``split``: "train" or
    "test" (Imagenette's "val" is its test split).  ``root``: a folder (or list of folders)
    holding the files; default ``ONEBIT_DATA``, then the user cache.  ``size``: Imagenette only,
    side of the square images (default 64).

    The first call verifies and decodes the source files and caches the arrays (see
    :mod:`onebit.data.cache`); later calls return read-only memory maps of that cache.
    Raises :class:`DatasetNotFoundError` or :class:`ChecksumError`.
    """
    ds = info(name, size)
    split = canonical_split(split)
    roots = data_roots(root)
    source = _READERS[ds.name].resolve(ds.name, split, roots, ds.image_size)
    key = cache.cache_key(ds.name, split, ds.image_size, source.tag)
    hit = cache.load(key)
    if hit is not None:
        return hit
    # One decoder per source at a time: concurrent processes (DDP ranks, parallel test runs)
    # wait for the first one and then read its cache instead of decoding again.
    with cache.lock(f"{ds.name}-{ds.image_size}px-{source.tag}"):
        hit = cache.load(key)
        if hit is not None:
            return hit
        decoded = source.decode(ds.image_size)
        for s, (images, labels) in decoded.items():
            _check(ds, s, images, labels, source.paths[0])
            cache.save(cache.cache_key(ds.name, s, ds.image_size, source.tag), images, labels)
    hit = cache.load(key)
    return hit if hit is not None else decoded[split]


def normalize(images, name: str, size: int | None = None):
    """uint8 NHWC images -> float32 NCHW, ``(u8 / 255 - mean) / std`` per channel.

    NumPy in, NumPy out (usable without torch, e.g. to feed the runtime); a torch tensor in
    gives a torch tensor out.
    """
    ds = info(name, size)
    shape = tuple(images.shape)
    if len(shape) != 4 or shape[-1] != ds.channels:
        raise ValueError(f"normalize expects uint8 images (N, H, W, {ds.channels}) for "
                         f"{ds.name}, got shape {shape}")
    mean = np.asarray(ds.mean, np.float32).reshape(1, -1, 1, 1)
    inv_std = (1.0 / np.asarray(ds.std, np.float32)).reshape(1, -1, 1, 1)
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8:
            raise ValueError(f"normalize expects uint8 images, got {images.dtype}")
        x = images.transpose(0, 3, 1, 2).astype(np.float32) * np.float32(1 / 255)
        return np.ascontiguousarray((x - mean) * inv_std)
    import torch

    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        raise ValueError(f"normalize expects a uint8 numpy array or torch tensor, "
                         f"got {type(images).__name__} {getattr(images, 'dtype', '')}")
    x = images.permute(0, 3, 1, 2).float().mul_(1 / 255)
    return normalize_nchw_(x, ds)


def normalize_nchw_(x, ds: DatasetInfo):
    """In place: float NCHW on the [0, 1] scale -> ``(x - mean) / std`` (torch)."""
    import torch

    mean = torch.tensor(ds.mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    inv_std = (1.0 / torch.tensor(ds.std, dtype=x.dtype, device=x.device)).view(1, -1, 1, 1)
    return x.sub_(mean).mul_(inv_std).contiguous()
