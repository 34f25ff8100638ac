"""``mnist-small``: the small CNN of the latent-weight pruning study, for 28x28x1 inputs.

Layers (width 1; ``*`` = binary, B = BatchNorm, MP = 2x2 max pool)::

    conv0 3x3 1->32 + B + MP | conv1* 3x3 32->64 + B + MP | conv2* 3x3 64->64 + B
    | flatten 7*7*64 = 3136 | fc1* 3136->128 + B | [clip_out] | fc 128->10 (float)

Pooling right after the float first layer keeps the binary work small (5.8 M bit-MACs per
image) so that a few MNIST epochs fit in minutes on a 2-core CPU.
"""
from __future__ import annotations

from onebit.models.common import ch, finish, plain_builder
from onebit.models.registry import register


@register("mnist-small")
def mnist_small(*, width, num_classes, clip_block, float_twin, input_size, stem):
    size, b = plain_builder("mnist-small", stem, input_size, 28, 4, float_twin)
    c0, c1, c2, f1 = ch(32, width), ch(64, width), ch(64, width), ch(128, width)
    b.float_conv(0, 1, c0, 3, padding=1, pool=True)
    b.binary_conv(1, c0, c1, 3, padding=1, pool=True)
    b.binary_conv(2, c1, c2, 3, padding=1)
    s = size // 2 // 2
    b.classifier(c2 * s * s, (f1,), num_classes, clip_block)
    return finish(b.build(), dataset_hint="mnist", input_shape=(1, size, size))
