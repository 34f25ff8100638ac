"""``BitPlanes``: the CBNN input transform as a layer (normalized image -> +-1 bit planes).

The data pipeline gives normalized float images ``x = (u/255 - mean[c]) / std[c]``; the layer
recovers the uint8 pixels ``u = clamp(round((x*std + mean) * 255), 0, 255)`` (exact for data that
came from uint8 images, the same map as ``Session.run``'s float input) and returns the planes of
:func:`onebit.bitplanes.bit_planes` as float +-1 channels, NCHW, in plane-id order. The planes
are constants of the input: no gradient flows through them.

``randomize`` (a set of positions in the plane list, or None) replaces those planes with random
+-1 drawn from ``generator``: the sensitivity analysis of Li and Ren (arXiv 1802.00904).
"""
from __future__ import annotations

import torch
from torch import nn

from onebit.bitplanes import PLANE_BITS, describe_planes, plane_ids

__all__ = ["BitPlanes", "pixel_planes"]


def pixel_planes(u: torch.Tensor, planes, dtype=torch.float32) -> torch.Tensor:
    """Integer pixels ``u`` (N, C, H, W) in [0, 255] -> +-1 planes (N, P, H, W) of ``dtype``
    (:func:`onebit.bitplanes.bit_planes` in torch: +1 where bit b of channel c is 1)."""
    u = u.to(torch.int32)
    ch = torch.tensor([p // PLANE_BITS for p in planes], device=u.device)
    bit = torch.tensor([p % PLANE_BITS for p in planes], device=u.device, dtype=torch.int32)
    b = (u.index_select(1, ch) >> bit.view(1, -1, 1, 1)) & 1
    return (2 * b - 1).to(dtype)


class BitPlanes(nn.Module):
    """Normalized NCHW image with ``channels`` colours -> ``len(planes)`` +-1 planes."""

    def __init__(self, planes, channels: int, mean, std):
        super().__init__()
        self.channels = int(channels)
        self.planes = plane_ids(planes, self.channels)
        if len(mean) != self.channels or len(std) != self.channels:
            raise ValueError(f"BitPlanes: mean/std need {self.channels} values, got {len(mean)}/{len(std)}")
        self.register_buffer("mean", torch.tensor([float(v) for v in mean]))
        self.register_buffer("std", torch.tensor([float(v) for v in std]))
        self.randomize: set[int] | None = None
        self.generator: torch.Generator | None = None

    @property
    def out_channels(self) -> int:
        return len(self.planes)

    def set_normalization(self, mean, std) -> None:
        """The normalization of the data the model sees (the training dataset's)."""
        with torch.no_grad():
            self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
            self.std.copy_(torch.as_tensor(std, dtype=self.std.dtype))

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 pixel values (as int32) of a normalized NCHW batch."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"BitPlanes expects (N, {self.channels}, H, W), got {tuple(x.shape)}")
        m = self.mean.view(1, -1, 1, 1).to(x.dtype)
        s = self.std.view(1, -1, 1, 1).to(x.dtype)
        return torch.round((x.detach() * s + m) * 255).clamp(0, 255).to(torch.int32)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = pixel_planes(self.pixels(x), self.planes, x.dtype)
        if self.randomize:
            idx = torch.tensor(sorted(self.randomize), device=x.device)
            shape = (out.shape[0], len(idx)) + tuple(out.shape[2:])
            noise = torch.randint(0, 2, shape, generator=self.generator, device="cpu").to(out)
            out = out.clone()
            out[:, idx] = 2 * noise - 1
        return out

    def extra_repr(self) -> str:
        return f"planes={len(self.planes)} ({describe_planes(self.planes, self.channels)})"
