"""Residual building blocks of the zoo (Bi-Real Net / QuickNet style), with their exact dataflow.

The converter relies on the dataflow written here. Notation: ``x`` is the block input, a
real-valued tensor (on the int8 grid of the previous ClipBlock when ``clip_block=True``);
``clip*`` are :class:`~onebit.nn.ClipBlock` (learnable clip, 8 bits) when ``clip_block=True``
and ``nn.Identity`` otherwise, so with BNN-Clip every tensor that crosses a block is int8.

:class:`BinaryResidualBlock` (Bi-Real Net, Liu et al. 2018: one binary 3x3 conv per shortcut)::

    y   = clip1(bn(conv(act(x))))     conv: BinaryConv2d 3x3, stride s, padding 1, no bias;
                                      it binarizes its own input (ste_sign or approx_sign);
                                      act = nn.Identity (binary) or nn.ReLU (float twin,
                                      where conv is a float nn.Conv2d)
    sc  = x                           if s == 1 and cin == cout (shortcut = nn.Identity)
    sc  = shortcut(x)                 otherwise, a DownsampleShortcut (below)
    out = clip2(y + sc)

:class:`DownsampleShortcut` (real-valued, Bi-Real / ReActNet style)::

    sc = clip(bn(conv(pool(x))))      pool = AvgPool2d(s, ceil_mode=True) (nn.Identity if s == 1),
                                      conv = float nn.Conv2d 1x1 cin->cout, no bias

:class:`TransitionBlock` (QuickNet, Bannink et al. 2021, simplified: no depthwise conv)::

    out = clip(bn(conv(pool(x))))     pool = MaxPool2d(2, ceil_mode=True), conv = float 1x1

:class:`ResidualNet`: ``head(body(stem(x)))`` where ``stem``, ``body`` (an ``nn.Sequential`` of
the blocks above) and ``head`` (``AdaptiveAvgPool2d(1)``, ``Flatten``, float ``nn.Linear``) are
``nn.Sequential``. Stems: ``"imagenet"`` = float conv 7x7/2 (birealnet18) or 3x3/2 (quicknet)
+ BN + max pool, ``"cifar"`` = float conv 3x3/1 + BN; each ends with ``clip`` (ClipBlock or
Identity).
"""
from __future__ import annotations

from torch import nn

from onebit.nn import ClipBlock

__all__ = [
    "BLOCK_CLIP",
    "make_clip",
    "BinaryResidualBlock",
    "DownsampleShortcut",
    "TransitionBlock",
    "ResidualNet",
]

#: Initial clip value of the ClipBlocks inside residual networks (learnable, PACT-like).
BLOCK_CLIP = 4.0


def make_clip(clip_block: bool) -> nn.Module:
    """A learnable 8-bit ClipBlock when ``clip_block`` else ``nn.Identity``."""
    return ClipBlock(BLOCK_CLIP, bits=8, learnable=True) if clip_block else nn.Identity()


class _PooledProjection(nn.Module):
    """``clip(bn(conv1x1(pool(x))))``: the real-valued path of shortcuts and transitions."""

    def __init__(self, pool: nn.Module, cin: int, cout: int, clip_block: bool):
        super().__init__()
        self.pool = pool
        self.conv = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.clip = make_clip(clip_block)

    def forward(self, x):
        return self.clip(self.bn(self.conv(self.pool(x))))


class DownsampleShortcut(_PooledProjection):
    """Real-valued shortcut: ``clip(bn(conv1x1(avgpool(x))))`` (see the module docstring)."""

    def __init__(self, cin: int, cout: int, stride: int, clip_block: bool):
        super().__init__(nn.AvgPool2d(stride, ceil_mode=True) if stride > 1 else nn.Identity(),
                         cin, cout, clip_block)


class BinaryResidualBlock(nn.Module):
    """``out = clip2(clip1(bn(conv(act(x)))) + shortcut(x))`` (see the module docstring).

    ``layers`` is a :class:`onebit.models.common.Layers` (binary or float twin).
    """

    def __init__(self, layers, cin: int, cout: int, stride: int = 1, clip_block: bool = False):
        super().__init__()
        self.act = layers.act() or nn.Identity()
        self.conv = layers.conv(cin, cout, 3, stride=stride, padding=1)
        self.bn = nn.BatchNorm2d(cout)
        self.clip1 = make_clip(clip_block)
        if stride == 1 and cin == cout:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = DownsampleShortcut(cin, cout, stride, clip_block)
        self.clip2 = make_clip(clip_block)

    def forward(self, x):
        y = self.clip1(self.bn(self.conv(self.act(x))))
        return self.clip2(y + self.shortcut(x))


class TransitionBlock(_PooledProjection):
    """``out = clip(bn(conv1x1(maxpool2(x))))``: changes width and halves the resolution."""

    def __init__(self, cin: int, cout: int, clip_block: bool):
        super().__init__(nn.MaxPool2d(2, ceil_mode=True), cin, cout, clip_block)


class ResidualNet(nn.Module):
    """``head(body(stem(x)))`` with three ``nn.Sequential`` parts (see the module docstring)."""

    def __init__(self, stem: nn.Sequential, body: nn.Sequential, head: nn.Sequential):
        super().__init__()
        self.stem = stem
        self.body = body
        self.head = head

    def forward(self, x):
        return self.head(self.body(self.stem(x)))
