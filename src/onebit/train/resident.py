"""Device-resident training data: decoded once into uint8 tensors on the training device.

:class:`ResidentLoader` wraps an ``onebit.data`` :class:`~onebit.data.batches.Loader` and yields
the same batches, built on the device instead of the host:

- the split is copied once, as uint8 NCHW (4x smaller than float32), to the device; labels too;
- per epoch the shuffle order and every batch's augmentation parameters (crop offsets, flip
  mask, Inception boxes) are drawn on the CPU from the same generators, in the same order, as
  the host loader draws them, then moved to the device in one copy;
- per batch the gather, crop (zero padding), flip, resampling, scaling to [0, 1] and
  normalization run on the device: no host-device copy inside the epoch.

Because the random draws and the arithmetic are the host loader's, on the CPU both loaders
give bit-identical batches (the tests assert it); on an accelerator the batches hold the same
pixels (crop and flip are copies; the bilinear resampling of ``rrc`` may differ in the last
float bit).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from onebit.data.augment import POLICIES, TRAIN_POLICY, resample, rrc_params
from onebit.data.batches import _seed

__all__ = ["ResidentLoader", "policy_name"]


def policy_name(dataset: str, augment: bool) -> str:
    """The augmentation ``onebit.train`` uses: the dataset's training policy, or "none"."""
    return TRAIN_POLICY[dataset] if augment else "none"


class ResidentLoader:
    """Iterable of ``(x float32 (B, C, H, W), y int64 (B,))`` on ``device``; same batches as
    ``host`` (a ``Loader``), same ``len``, ``set_epoch`` and ``num_samples``."""

    def __init__(self, host, device: torch.device | str, policy: str = "none"):
        if policy not in POLICIES:
            raise ValueError(f"unknown augmentation policy {policy!r}; use one of {', '.join(POLICIES)}")
        self.host = host
        self.device = torch.device(device)
        self.policy = policy
        self.info = host.info
        images = torch.from_numpy(np.array(host.images, copy=True))  # (N, H, W, C) uint8
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"resident data must be uint8 (N, H, W, C), got {images.dtype} {tuple(images.shape)}")
        self.images = images.to(self.device).permute(0, 3, 1, 2).contiguous()
        self.labels = torch.from_numpy(np.asarray(host.labels, dtype=np.int64)).to(self.device)
        self.mean = torch.tensor(self.info.mean, dtype=torch.float32, device=self.device).view(1, -1, 1, 1)
        self.inv_std = (1.0 / torch.tensor(self.info.std, dtype=torch.float32,
                                           device=self.device)).view(1, -1, 1, 1)
        self.padding = max(1, self.info.image_size // 8)

    @property
    def num_samples(self) -> int:
        return self.host.num_samples

    def __len__(self) -> int:
        return len(self.host)

    def set_epoch(self, epoch: int) -> None:
        self.host.set_epoch(epoch)

    @property
    def batch_size(self) -> int:
        return self.host.batch_size

    def _plan(self, sizes: list[int]) -> dict[str, torch.Tensor]:
        """All batches' augmentation parameters, drawn as the host loader's policy draws them."""
        h = self.host
        g = torch.Generator().manual_seed(_seed(h.seed, h.epoch, 1, h.rank))
        _, _, height, width = self.images.shape
        p = self.padding
        parts: dict[str, list[torch.Tensor]] = {}
        for n in sizes:
            if self.policy in ("crop", "crop+flip"):
                parts.setdefault("dy", []).append(torch.randint(0, height + 2 * p - height + 1, (n,), generator=g))
                parts.setdefault("dx", []).append(torch.randint(0, width + 2 * p - width + 1, (n,), generator=g))
            if self.policy in ("flip", "crop+flip"):
                parts.setdefault("flip", []).append(torch.rand(n, generator=g) < 0.5)
            if self.policy == "rrc":
                parts.setdefault("theta", []).append(rrc_params(n, g))
        return {k: torch.cat(v).to(self.device) for k, v in parts.items()}

    def __iter__(self):
        order = self.host.indices()
        bs = self.host.batch_size
        sizes = [len(order[b * bs:(b + 1) * bs]) for b in range(len(self))]
        plan = self._plan(sizes)
        order_d = torch.from_numpy(np.ascontiguousarray(order, dtype=np.int64)).to(self.device)
        for b in range(len(self)):
            sl = slice(b * bs, b * bs + sizes[b])
            idx = order_d[sl]
            x = self.images.index_select(0, idx)
            x = self._augment(x, {k: v[sl] for k, v in plan.items()})
            x = x.float().mul_(1 / 255) if x.dtype == torch.uint8 else x.float().div_(255)
            x = x.sub_(self.mean).mul_(self.inv_std).contiguous()
            if x.shape[1] == 1:
                # the host loader's batch is a permuted NHWC array: with one channel it is both
                # NCHW- and NHWC-contiguous and keeps NHWC strides, which steer the convolution
                # to its channels_last kernels; the same strides give the same arithmetic
                n, _, h, w = x.shape
                x = x.as_strided((n, 1, h, w), (h * w, 1, w, 1))  # same memory, NHWC strides
            yield x, self.labels.index_select(0, idx)

    def _augment(self, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
        if "dy" in p:
            x = crop(x, self.padding, p["dy"], p["dx"])
        if "flip" in p:
            x = torch.where(p["flip"].view(-1, 1, 1, 1), x.flip(-1), x)
        if "theta" in p:
            x = resample(x, p["theta"], self.info.image_size)
        return x


def crop(x: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
    """Zero-pad each side by ``padding``, crop back to H x W at offsets ``dy``, ``dx`` (N,)."""
    n, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    bidx = torch.arange(n, device=x.device)[:, None, None, None]
    cidx = torch.arange(c, device=x.device)[None, :, None, None]
    return xp[bidx, cidx, rows, cols]


def resident_bytes(host) -> int:
    """Device memory the resident copy of ``host``'s split takes (images + labels)."""
    return int(math.prod(host.images.shape)) + 8 * len(host.labels)
