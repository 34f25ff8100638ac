"""``birealnet18`` and ``quicknet-small``: residual BNNs with real-valued shortcuts.

Built from :mod:`onebit.models.blocks` (read it for the exact dataflow).

- ``birealnet18`` (Bi-Real Net 18, Liu et al. 2018): stem, 4 stages x 4 binary 3x3 convs each
  with its own shortcut (64, 128, 256, 512 channels x width; stride 2 and a downsample shortcut
  at the first block of stages 2-4), global average pool, float FC. Input quantizer:
  ``approx_sign``. Stems: ``"imagenet"`` (default, 224 px: conv 7x7/2 + BN + max pool 3x3/2)
  or ``"cifar"`` (32 px: conv 3x3/1 + BN).
- ``quicknet-small`` (QuickNet-like, Bannink et al. 2021 / larq zoo QuickNetSmall): stem,
  4 sections of 4 binary residual blocks (32, 64, 256, 512 channels x width) joined by
  transition blocks (max pool + float 1x1 conv + BN), global average pool, float FC. Input
  quantizer ``ste_sign``. Stems: ``"imagenet"`` (default, 224 px: conv 3x3/2 + BN + max pool
  2x2) or ``"cifar"``.
"""
from __future__ import annotations

from collections import OrderedDict

from torch import nn

from onebit.models.blocks import BinaryResidualBlock, ResidualNet, TransitionBlock, make_clip
from onebit.models.common import Layers, ch, finish, resolve_size
from onebit.models.registry import register

STEMS = ("imagenet", "cifar")


def _stem_config(name: str, stem: str | None, input_size) -> tuple[str, int]:
    stem = "imagenet" if stem is None else stem
    if stem not in STEMS:
        raise ValueError(f"{name}: unknown stem {stem!r}; choose one of {', '.join(STEMS)}")
    default = 224 if stem == "imagenet" else 32
    return stem, resolve_size(name, input_size, default, 32 if stem == "imagenet" else 8)


def _stem(stem: str, cout: int, imagenet_kernel: int, imagenet_pool: nn.Module,
          clip_block: bool) -> nn.Sequential:
    if stem == "imagenet":
        k = imagenet_kernel
        conv = nn.Conv2d(3, cout, k, stride=2, padding=k // 2, bias=False)
        return nn.Sequential(OrderedDict(
            conv=conv, bn=nn.BatchNorm2d(cout), pool=imagenet_pool, clip=make_clip(clip_block)))
    return nn.Sequential(OrderedDict(
        conv=nn.Conv2d(3, cout, 3, stride=1, padding=1, bias=False), bn=nn.BatchNorm2d(cout),
        clip=make_clip(clip_block)))


def _head(cin: int, num_classes: int) -> nn.Sequential:
    return nn.Sequential(OrderedDict(
        avgpool=nn.AdaptiveAvgPool2d(1), flatten=nn.Flatten(), fc=nn.Linear(cin, num_classes)))


def _hint(stem: str) -> str:
    return "imagenette" if stem == "imagenet" else "cifar10"


@register("birealnet18")
def birealnet18(*, width, num_classes, clip_block, float_twin, input_size, stem):
    stem, size = _stem_config("birealnet18", stem, input_size)
    layers = Layers(float_twin, input_quantizer="approx_sign")
    widths = [ch(c, width) for c in (64, 128, 256, 512)]
    blocks: list[tuple[str, nn.Module]] = []
    cin = widths[0]
    for s, cout in enumerate(widths):
        for i in range(4):
            stride = 2 if (s > 0 and i == 0) else 1
            blocks.append((f"s{s + 1}b{i + 1}",
                           BinaryResidualBlock(layers, cin, cout, stride, clip_block)))
            cin = cout
    model = ResidualNet(
        _stem(stem, widths[0], 7, nn.MaxPool2d(3, stride=2, padding=1), clip_block),
        nn.Sequential(OrderedDict(blocks)),
        _head(widths[-1], num_classes),
    )
    return finish(model, dataset_hint=_hint(stem), input_shape=(3, size, size), stem=stem)


@register("quicknet-small")
def quicknet_small(*, width, num_classes, clip_block, float_twin, input_size, stem):
    stem, size = _stem_config("quicknet-small", stem, input_size)
    layers = Layers(float_twin, input_quantizer="ste_sign")
    widths = [ch(c, width) for c in (32, 64, 256, 512)]
    blocks: list[tuple[str, nn.Module]] = []
    for s, c in enumerate(widths):
        if s > 0:
            blocks.append((f"t{s + 1}", TransitionBlock(widths[s - 1], c, clip_block)))
        for i in range(4):
            blocks.append((f"s{s + 1}b{i + 1}", BinaryResidualBlock(layers, c, c, 1, clip_block)))
    model = ResidualNet(
        _stem(stem, widths[0], 3, nn.MaxPool2d(2), clip_block),
        nn.Sequential(OrderedDict(blocks)),
        _head(widths[-1], num_classes),
    )
    return finish(model, dataset_hint=_hint(stem), input_shape=(3, size, size), stem=stem)
