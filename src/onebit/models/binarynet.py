"""``cifar-binarynet``: BinaryNet VGG-small (Courbariaux et al. 2016) for 32x32x3 inputs.

128C3-128C3-MP-256C3-256C3-MP-512C3-512C3-MP-1024FC-1024FC-10; widths scale with ``width``.
The first conv is float (int8 in the engine) and the last FC float; the five other convs and
the two hidden FCs are binary, each followed by BatchNorm (max pool after the BN)::

    conv0 3->128 + B | conv1* 128->128 + B + MP | conv2* 128->256 + B | conv3* 256->256 + B + MP
    | conv4* 256->512 + B | conv5* 512->512 + B + MP | flatten 4*4*512 = 8192
    | fc1* 8192->1024 + B | fc2* 1024->1024 + B | [clip_out] | fc 1024->10

Binary work at width 1: convs 0.604 G bit-MACs, FCs 9.44 M bit-MACs.
"""
from __future__ import annotations

from onebit.models.common import ch, finish, plain_builder
from onebit.models.registry import register


@register("cifar-binarynet")
def cifar_binarynet(*, width, num_classes, clip_block, float_twin, input_size, stem):
    size, b = plain_builder("cifar-binarynet", stem, input_size, 32, 8, float_twin)
    c1, c2, c3, f = ch(128, width), ch(256, width), ch(512, width), ch(1024, width)
    b.float_conv(0, 3, c1, 3, padding=1)
    b.binary_conv(1, c1, c1, 3, padding=1, pool=True)
    b.binary_conv(2, c1, c2, 3, padding=1)
    b.binary_conv(3, c2, c2, 3, padding=1, pool=True)
    b.binary_conv(4, c2, c3, 3, padding=1)
    b.binary_conv(5, c3, c3, 3, padding=1, pool=True)
    s = size // 8
    b.classifier(c3 * s * s, (f, f), num_classes, clip_block)
    return finish(b.build(), dataset_hint="cifar10", input_shape=(3, size, size))
