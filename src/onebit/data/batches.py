"""Training batches (torch): seeded per-epoch shuffling, vectorized augmentation, normalized NCHW
output (``Loader``, ``make_loader``).

Each epoch draws its permutation and augmentation from generators seeded by
``(seed, epoch)`` (and ``rank`` for the augmentation), so runs are reproducible and a resumed
run (``set_epoch``) sees the same batches.  With ``world_size > 1`` every rank takes the slice
``order[rank::world_size]`` of the same permutation, padded by wrapping so all ranks run the
same number of steps (the ``DistributedSampler`` convention).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from onebit.data.augment import get_policy
from onebit.data.splits import load, normalize_nchw_
from onebit.data.registry import info

__all__ = ["Loader", "make_loader"]


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0]
               & 0x7FFF_FFFF_FFFF_FFFF)


class Loader:
    """Iterable of ``(x float32 (B, C, H, W), y int64 (B,))``; ``len()`` = batches per epoch."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, dataset_info, batch_size: int, *,
                 shuffle: bool = False, augment=None, train: bool = False, seed: int = 0,
                 drop_last: bool = False, rank: int = 0, world_size: int = 1):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        if not (isinstance(world_size, int) and world_size >= 1 and 0 <= rank < world_size):
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, "
                             f"world_size={world_size}")
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self.images, self.labels = images, labels
        self.info = dataset_info
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(seed)
        self.rank, self.world_size = rank, world_size
        self.epoch = 0
        self._augment = get_policy(augment, dataset_info, train)

    @property
    def num_samples(self) -> int:
        """Samples this rank sees per epoch."""
        return math.ceil(len(self.labels) / self.world_size)

    def __len__(self) -> int:
        n = self.num_samples
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shuffle and augmentation the next iteration uses."""
        self.epoch = int(epoch)

    def indices(self) -> np.ndarray:
        """Sample indices this rank visits in the current epoch, in order."""
        n = len(self.labels)
        if self.shuffle:
            g = torch.Generator().manual_seed(_seed(self.seed, self.epoch, 0))
            order = torch.randperm(n, generator=g).numpy()
        else:
            order = np.arange(n)
        if self.world_size > 1:
            total = self.num_samples * self.world_size
            order = np.resize(order, total)  # wraps around: equal step counts on every rank
            order = order[self.rank::self.world_size]
        return order

    def __iter__(self):
        order = self.indices()
        g = torch.Generator().manual_seed(_seed(self.seed, self.epoch, 1, self.rank))
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            # sorted gathers read the memory map sequentially; the batch order is restored
            srt = np.argsort(idx, kind="stable")
            xb = np.empty((len(idx),) + self.images.shape[1:], np.uint8)
            xb[srt] = self.images[idx[srt]]
            x = torch.from_numpy(xb).permute(0, 3, 1, 2)
            x = self._augment(x, g)
            x = x.float().mul_(1 / 255) if x.dtype == torch.uint8 else x.float().div_(255)
            x = normalize_nchw_(x, self.info)
            y = torch.from_numpy(np.asarray(self.labels[idx], dtype=np.int64))
            yield x, y


def make_loader(name: str, split: str = "train", batch_size: int = 128, *, train: bool = False,
                augment=None, size: int | None = None, seed: int = 0, limit: int | None = None,
                root=None, shuffle: bool | None = None, drop_last: bool = False, rank: int = 0,
                world_size: int = 1) -> Loader:
    """A :class:`Loader` over ``load(name, split, root, size)``.

    ``train``: shuffle every epoch and apply the dataset's training augmentation
    (``augment=None`` means "train" then, "none" otherwise; see
    :func:`onebit.data.augment.get_policy`).  ``limit``: keep the first N samples.
    ``shuffle`` overrides the shuffling that ``train`` implies.  ``rank``/``world_size`` shard
    the epoch for data-parallel training.
    """
    ds = info(name, size)
    images, labels = load(ds.name, split, root=root, size=size)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a positive int, got {limit!r}")
        images, labels = images[:limit], labels[:limit]
    return Loader(images, labels, ds, batch_size, shuffle=train if shuffle is None else shuffle,
                  augment=augment, train=train, seed=seed, drop_last=drop_last, rank=rank,
                  world_size=world_size)
