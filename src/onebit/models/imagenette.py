"""``imagenette-small``: small CNN of the latent-weight pruning study, for Imagenette.

Input ``input_size`` x ``input_size`` x 3 with input_size in [32, 224] (default 64). Five
stages of 3x3 conv + BN + 2x2 max pool, then a binary FC and the float classifier::

    conv0 3->32 + B + MP | conv1* 32->64 + B + MP | conv2* 64->128 + B + MP
    | conv3* 128->256 + B + MP | conv4* 256->256 + B + MP | flatten (s/32)^2 * 256
    | fc1* ->256 + B | [clip_out] | fc 256->10 (float)
"""
from __future__ import annotations

from onebit.models.common import ch, finish, plain_builder
from onebit.models.registry import register


@register("imagenette-small")
def imagenette_small(*, width, num_classes, clip_block, float_twin, input_size, stem):
    size, b = plain_builder("imagenette-small", stem, input_size, 64, 32, float_twin)
    if size > 224:
        raise ValueError(f"imagenette-small takes input_size in [32, 224], got {size}")
    c0, c1, c2, c3, f = ch(32, width), ch(64, width), ch(128, width), ch(256, width), ch(256, width)
    b.float_conv(0, 3, c0, 3, padding=1, pool=True)
    b.binary_conv(1, c0, c1, 3, padding=1, pool=True)
    b.binary_conv(2, c1, c2, 3, padding=1, pool=True)
    b.binary_conv(3, c2, c3, 3, padding=1, pool=True)
    b.binary_conv(4, c3, c3, 3, padding=1, pool=True)
    s = size // 32
    b.classifier(c3 * s * s, (f,), num_classes, clip_block)
    return finish(b.build(), dataset_hint="imagenette", input_shape=(3, size, size))
