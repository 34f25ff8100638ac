"""``cifar-nin``: binary Network-in-Network (Lin et al. 2014) of the flip-frequency study.

Three mlpconv stages on 32x32x3 inputs; pools are 2x2 max pools after the BN (they run on
bits); the final 1x1 class conv of NIN becomes global average pooling + a float FC::

    conv0 5x5 3->192 + B | conv1* 1x1 192->160 + B | conv2* 1x1 160->96 + B + MP
    | conv3* 5x5 96->192 + B | conv4* 1x1 192->192 + B | conv5* 1x1 192->192 + B + MP
    | conv6* 3x3 192->192 + B | conv7* 1x1 192->192 + B | [clip_out] | avgpool (global)
    | flatten | fc 192->10 (float)
"""
from __future__ import annotations

from torch import nn

from onebit.models.common import HEAD_CLIP, ch, finish, plain_builder
from onebit.nn import ClipBlock
from onebit.models.registry import register


@register("cifar-nin")
def cifar_nin(*, width, num_classes, clip_block, float_twin, input_size, stem):
    size, b = plain_builder("cifar-nin", stem, input_size, 32, 4, float_twin)
    c192, c160, c96 = ch(192, width), ch(160, width), ch(96, width)
    b.float_conv(0, 3, c192, 5, padding=2)
    b.binary_conv(1, c192, c160, 1)
    b.binary_conv(2, c160, c96, 1, pool=True)
    b.binary_conv(3, c96, c192, 5, padding=2)
    b.binary_conv(4, c192, c192, 1)
    b.binary_conv(5, c192, c192, 1, pool=True)
    b.binary_conv(6, c192, c192, 3, padding=1)
    b.binary_conv(7, c192, c192, 1)
    if clip_block:
        b.add("clip_out", ClipBlock(HEAD_CLIP))
    b.add("avgpool", nn.AdaptiveAvgPool2d(1))
    b.add("flatten", nn.Flatten())
    b.add("fc", nn.Linear(c192, num_classes))
    return finish(b.build(), dataset_hint="cifar10", input_shape=(3, size, size))
