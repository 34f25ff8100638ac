"""``cifar-alexnet``: binary AlexNet, CIFAR variant (32x32x3), of the flip-frequency study.

Five convs and three FCs as AlexNet, sized for 32x32 inputs (5x5 then 3x3 kernels, 2x2 max
pools after the BN, hidden FCs of 1024 instead of 4096)::

    conv0 5x5 3->96 + B + MP | conv1* 5x5 96->256 + B + MP | conv2* 3x3 256->384 + B
    | conv3* 3x3 384->384 + B | conv4* 3x3 384->256 + B + MP | flatten 4*4*256 = 4096
    | fc1* 4096->1024 + B | fc2* 1024->1024 + B | [clip_out] | fc 1024->10 (float)
"""
from __future__ import annotations

from onebit.models.common import ch, finish, plain_builder
from onebit.models.registry import register


@register("cifar-alexnet")
def cifar_alexnet(*, width, num_classes, clip_block, float_twin, input_size, stem):
    size, b = plain_builder("cifar-alexnet", stem, input_size, 32, 8, float_twin)
    c0, c1, c2, c3, f = ch(96, width), ch(256, width), ch(384, width), ch(256, width), ch(1024, width)
    b.float_conv(0, 3, c0, 5, padding=2, pool=True)
    b.binary_conv(1, c0, c1, 5, padding=2, pool=True)
    b.binary_conv(2, c1, c2, 3, padding=1)
    b.binary_conv(3, c2, c2, 3, padding=1)
    b.binary_conv(4, c2, c3, 3, padding=1, pool=True)
    s = size // 8
    b.classifier(c3 * s * s, (f, f), num_classes, clip_block)
    return finish(b.build(), dataset_hint="cifar10", input_shape=(3, size, size))
