"""Binary layers, quantizers and the BNN-Clip clipping block (torch).

- :mod:`onebit.nn.quantizers`: ``ste_sign``, ``approx_sign``, ``identity`` and ``get()``.
- :class:`BinaryConv2d`, :class:`BinaryLinear`: binary layers with latent weights, true-zero
  padding, optional pruning mask and per-channel scale (see :mod:`onebit.nn.layers`).
- :class:`ClipBlock`: clip + int8 fake quantization (see :mod:`onebit.nn.clip`).
- :class:`BitPlanes`: the CBNN bit-plane input transform (see :mod:`onebit.nn.planes`).
- :func:`clip_latent_weights`: clamp all binary layers' latent weights to [-1, 1] (call it after
  each optimizer step).
"""
from onebit.nn import quantizers
from onebit.nn.clip import ClipBlock
from onebit.nn.planes import BitPlanes
from onebit.nn.layers import (
    INT16_MAX_BOUND,
    AccumulatorWidthWarning,
    BinaryConv2d,
    BinaryLinear,
    LatentClipWarning,
    clip_latent_weights,
    is_binary_layer,
)

__all__ = [
    "quantizers",
    "BinaryConv2d",
    "BinaryLinear",
    "ClipBlock",
    "BitPlanes",
    "clip_latent_weights",
    "is_binary_layer",
    "AccumulatorWidthWarning",
    "LatentClipWarning",
    "INT16_MAX_BOUND",
]
