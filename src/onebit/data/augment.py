"""Batch augmentations on torch tensors (NCHW), vectorized, deterministic with a generator.

Every function takes a whole batch and draws its random numbers from a ``torch.Generator``, so
a given (seed, epoch) reproduces the same batches.  No per-sample Python loops.

- :func:`random_crop`: zero-pad by ``padding`` then crop back at a random offset (the CIFAR
  recipe of He et al. 2016: pad 4, crop 32).  Works on uint8 (pads with black).
- :func:`hflip` / :func:`random_hflip`: mirror along the width.
- :func:`random_resized_crop`: a random box of ``scale`` x the image area and aspect ratio in
  ``ratio`` (Szegedy et al. 2015, "Inception" crop), resampled bilinearly to ``size`` with one
  ``affine_grid``/``grid_sample`` call for the whole batch; also flips half the samples.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["random_crop", "hflip", "random_hflip", "random_resized_crop", "get_policy",
           "POLICIES"]


def _check(x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"augmentations expect an NCHW tensor, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator | None = None,
                size: int | None = None) -> torch.Tensor:
    """Zero-pad each side by ``padding`` and crop ``size`` (default: H, W) at random offsets."""
    _check(x)
    n, c, h, w = x.shape
    oh, ow = (h, w) if size is None else (size, size)
    if padding < 0 or oh > h + 2 * padding or ow > w + 2 * padding:
        raise ValueError(f"cannot crop {oh}x{ow} from {h}x{w} padded by {padding}")
    xp = F.pad(x, (padding, padding, padding, padding)) if padding else x
    dy = torch.randint(0, h + 2 * padding - oh + 1, (n,), generator=generator)
    dx = torch.randint(0, w + 2 * padding - ow + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(oh))[:, None, :, None]           # (N,1,oh,1)
    cols = (dx[:, None] + torch.arange(ow))[:, None, None, :]           # (N,1,1,ow)
    bidx = torch.arange(n)[:, None, None, None]
    cidx = torch.arange(c)[None, :, None, None]
    return xp[bidx, cidx, rows, cols]


def hflip(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mirror along the width: every sample, or those where ``mask`` (bool, (N,)) is True."""
    _check(x)
    if mask is None:
        return x.flip(-1)
    mask = mask.to(torch.bool).view(-1, 1, 1, 1)
    return torch.where(mask, x.flip(-1), x)


def random_hflip(x: torch.Tensor, generator: torch.Generator | None = None,
                 p: float = 0.5) -> torch.Tensor:
    _check(x)
    return hflip(x, torch.rand(x.shape[0], generator=generator) < p)


def random_resized_crop(x: torch.Tensor, size: int | None = None,
                        generator: torch.Generator | None = None,
                        scale: tuple = (0.25, 1.0), ratio: tuple = (3 / 4, 4 / 3),
                        flip_p: float = 0.5) -> torch.Tensor:
    """Inception-style crop + flip, resampled to ``size`` x ``size``; returns float32 on the
    input's value scale (uint8 input gives floats in [0, 255]).

    In normalized coordinates ([-1, 1] over the image) a box of area fraction ``s`` and aspect
    ``r`` has half-width ``sw = sqrt(s r)`` and half-height ``sh = sqrt(s / r)`` (clamped to 1),
    centre uniform in ``[-(1 - sw), 1 - sw]``; the sampling grid is the affine map
    ``[[±sw, 0, cx], [0, sh, cy]]`` (negative ``sw`` = mirrored).
    """
    _check(x)
    n, _, h, w = x.shape
    size = h if size is None else int(size)
    u = torch.rand(n, 5, generator=generator, dtype=torch.float64)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    r = torch.exp(log_r)
    sw = torch.sqrt(area * r).clamp(max=1.0)
    sh = torch.sqrt(area / r).clamp(max=1.0)
    cx = (2 * u[:, 2] - 1) * (1 - sw)
    cy = (2 * u[:, 3] - 1) * (1 - sh)
    sign = torch.where(u[:, 4] < flip_p, -1.0, 1.0).to(torch.float64)
    theta = torch.zeros(n, 2, 3, dtype=torch.float64)
    theta[:, 0, 0] = sw * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sh
    theta[:, 1, 2] = cy
    xf = x.float()
    grid = F.affine_grid(theta.float(), (n, x.shape[1], size, size), align_corners=False)
    return F.grid_sample(xf, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _none(x, g, info):
    return x


def _flip(x, g, info):
    return random_hflip(x, g)


def _crop(x, g, info):
    return random_crop(x, max(1, info.image_size // 8), g)


def _crop_flip(x, g, info):
    return random_hflip(random_crop(x, max(1, info.image_size // 8), g), g)


def _rrc(x, g, info):
    return random_resized_crop(x, info.image_size, g)


POLICIES = {"none": _none, "flip": _flip, "crop": _crop, "crop+flip": _crop_flip, "rrc": _rrc}
# What augment="train" means per dataset.  Digits must not be mirrored; MNIST-scale networks
# reach their accuracy without shifts, so they train on the plain images.
TRAIN_POLICY = {"mnist": "none", "fashion-mnist": "none", "cifar10": "crop+flip",
                "imagenette": "rrc"}


def get_policy(augment, info, train: bool):
    """Resolve ``augment`` to ``f(x_uint8_nchw, generator) -> tensor`` (uint8 or float on the
    0..255 scale).  ``None`` means "train" when ``train`` is true, else "none"; "train" is the
    dataset's default (:data:`TRAIN_POLICY`); a callable ``f(x, generator)`` is used as is.
    Crop padding is ``image_size // 8`` (4 for CIFAR-10's 32 px)."""
    if augment is None:
        augment = "train" if train else "none"
    if callable(augment):
        return lambda x, g: augment(x, g)
    if augment is False:
        augment = "none"
    if augment is True:
        augment = "train"
    if not isinstance(augment, str):
        raise TypeError(f"augment must be None, a policy name or a callable, got {augment!r}")
    key = TRAIN_POLICY[info.name] if augment == "train" else augment
    if key not in POLICIES:
        raise ValueError(f"unknown augment {augment!r}; use one of "
                         f"{', '.join(['train', *POLICIES])} or a callable")
    fn = POLICIES[key]
    return lambda x, g: fn(x, g, info)
