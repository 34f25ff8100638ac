"""Binary layers: ``BinaryConv2d`` and ``BinaryLinear``.

Both keep float *latent* weights ``w`` and compute, in the forward pass,

    y = conv(q_in(x), q_w(clamp(w, -1, 1)) [* weight_mask] [* alpha], padding)  (+ bias)

with ``q_in = q_w = ste_sign`` by default (BinaryNet, Courbariaux et al. 2016). Padding is a
**true zero** (docs/format.md §3): the input is binarized first and the zero padding is added
afterwards, so out-of-bounds taps contribute nothing -- exactly ``F.conv2d(sign(x), sign(w),
padding=p)``.

* ``weight_mask`` (buffer, ``None`` unless pruning sets it): a 0/1 tensor shaped like ``weight``;
  the effective weight becomes ternary ``sign(w) * mask`` and masked weights get zero gradient.
* ``scale="channel"``: XNOR-Net per-output-channel scale ``alpha_c = mean(|w_c|)`` over the
  kept weights of channel c (Rastegari et al. 2016), applied to the binary weights; read it
  with :meth:`channel_scale`.
* ``accumulator_bound`` K = kh*kw*Cin/groups (or ``in_features``): a binary dot product lies in
  [-K, K]; ``accumulator_bits`` is 16 when K <= 32767 (exact in int16), else 32.
"""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from onebit.nn import quantizers as _q

__all__ = [
    "BinaryConv2d",
    "BinaryLinear",
    "clip_latent_weights",
    "is_binary_layer",
    "AccumulatorWidthWarning",
    "LatentClipWarning",
    "INT16_MAX_BOUND",
]

#: Largest accumulator bound K that int16 holds exactly: the dot product lies in [-K, K].
INT16_MAX_BOUND = 32767


class AccumulatorWidthWarning(UserWarning):
    """A binary layer's accumulator bound K exceeds 32767, forcing a 32-bit accumulator."""


class LatentClipWarning(UserWarning):
    """A binary layer was built without latent-weight clipping to [-1, 1]."""


class _BinaryMixin:
    """Shared state and logic of the binary layers (quantizers, mask, scale, bounds)."""

    def _init_binary(self, input_quantizer, weight_quantizer, clip_latent, scale) -> None:
        if scale not in (None, "channel"):
            raise ValueError(f"scale must be None or 'channel', got {scale!r}")
        self.input_quantizer = _q.get(input_quantizer)
        self.weight_quantizer = _q.get(weight_quantizer)
        self.clip_latent = bool(clip_latent)
        self.scale = scale
        self.register_buffer("weight_mask", None)
        kind = type(self).__name__
        if not self.clip_latent and self.weight_precision == 1:
            warnings.warn(
                f"{kind} built with clip_latent=False: latent weights can drift beyond [-1, 1] "
                "where the clipped STE gives them zero gradient (they freeze); "
                "keep clip_latent=True and call onebit.nn.clip_latent_weights after each step",
                LatentClipWarning,
                stacklevel=3,
            )
        k = self.accumulator_bound
        if k > INT16_MAX_BOUND:
            warnings.warn(
                f"{kind} accumulator bound K={k} > {INT16_MAX_BOUND}: a binary dot product in "
                f"[-{k}, {k}] needs a 32-bit accumulator (int16 is exact only for K <= 32767)",
                AccumulatorWidthWarning,
                stacklevel=3,
            )

    # -- metadata read by the summary and the converter --------------------------------------
    @property
    def input_precision(self) -> int:
        """Bits of the quantized input (1 for sign quantizers, 32 for identity)."""
        return _q.precision_of(self.input_quantizer)

    @property
    def weight_precision(self) -> int:
        """Bits of the quantized weight (1 for sign quantizers, 32 for identity)."""
        return _q.precision_of(self.weight_quantizer)

    @property
    def accumulator_bits(self) -> int:
        """Narrowest exact accumulator width: 16 if K <= 32767 else 32."""
        return 16 if self.accumulator_bound <= INT16_MAX_BOUND else 32

    # -- pruning mask -----------------------------------------------------------------------
    def set_weight_mask(self, mask: torch.Tensor | None) -> None:
        """Set (or clear with ``None``) the 0/1 pruning mask; must have ``weight``'s shape."""
        if mask is None:
            self.weight_mask = None
            return
        mask = torch.as_tensor(mask)
        if tuple(mask.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"weight_mask shape {tuple(mask.shape)} != weight shape {tuple(self.weight.shape)}"
            )
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("weight_mask must contain only 0 and 1")
        self.weight_mask = mask.to(device=self.weight.device, dtype=self.weight.dtype).detach()

    def _check_mask(self) -> None:
        m = self.weight_mask
        if m is not None and tuple(m.shape) != tuple(self.weight.shape):
            raise ValueError(
                f"{type(self).__name__}.weight_mask shape {tuple(m.shape)} != weight shape "
                f"{tuple(self.weight.shape)}"
            )

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A pruned checkpoint carries weight_mask while a freshly built layer holds None (and
        # torch skips None buffers): allocate it so the standard loader copies it in.
        key = prefix + "weight_mask"
        if key in state_dict and self.weight_mask is None and state_dict[key] is not None:
            self.weight_mask = torch.empty_like(self.weight, requires_grad=False)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # -- forward helpers --------------------------------------------------------------------
    def channel_scale(self, weight: torch.Tensor | None = None) -> torch.Tensor:
        """XNOR-Net scale alpha_c = mean |w| over the kept latent weights of output channel c.

        Uses the clipped latent weights (what the forward pass sees). Shape ``(out,)``.
        """
        w = self.weight if weight is None else weight
        if self.clip_latent:
            w = w.clamp(-1.0, 1.0)
        a = w.abs()
        dims = tuple(range(1, w.dim()))
        if self.weight_mask is not None:
            kept = self.weight_mask.sum(dim=dims).clamp_min(1.0)
            return (a * self.weight_mask).sum(dim=dims) / kept
        return a.mean(dim=dims)

    def quantized_weight(self) -> torch.Tensor:
        """The effective weight used by the forward pass (differentiable w.r.t. ``weight``)."""
        self._check_mask()
        w = self.weight
        if self.clip_latent:
            w = w.clamp(-1.0, 1.0)
        wq = self.weight_quantizer(w)
        if self.weight_mask is not None:
            # ternary {-1, 0, +1}; the product also zeroes the gradient of pruned weights
            wq = wq * self.weight_mask
        if self.scale == "channel":
            alpha = self.channel_scale()
            wq = wq * alpha.view((-1,) + (1,) * (wq.dim() - 1))
        return wq

    def _binary_repr(self) -> str:
        parts = []
        # module quantizers print as children; plain functions are named here
        for label in ("input_quantizer", "weight_quantizer"):
            q = getattr(self, label)
            if not isinstance(q, nn.Module):
                parts.append(f"{label}={getattr(q, '__name__', type(q).__name__)}")
        if not self.clip_latent:
            parts.append("clip_latent=False")
        if self.scale is not None:
            parts.append(f"scale={self.scale!r}")
        if self.weight_mask is not None:
            parts.append("masked")
        return ", ".join(parts)


class BinaryConv2d(_BinaryMixin, nn.Conv2d):
    """Binary 2-D convolution: ``F.conv2d(q_in(x), q_w(w) [* mask], padding=p)``, true-zero padding.

    Accepts every ``nn.Conv2d`` argument (it is one), plus keyword-only ``input_quantizer``,
    ``weight_quantizer`` (aliases of :mod:`onebit.nn.quantizers` or callables),
    ``clip_latent`` (clamp latent weights to [-1, 1]) and ``scale`` (None or ``"channel"``).
    ``padding_mode`` must be ``"zeros"`` (the padding the engine implements).

    Padding options of the engine (docs/format.md §3), keyword-only: ``pad_value`` 0 (true zero,
    padded taps add nothing) or 1 (one-padding, Larq's ``pad_values=1``: the binarized input is
    padded with +1, so a padded tap adds like an input pixel of +1s); ``padding_end`` (int or
    (h, w)): rows/columns after the input (bottom, right) where they differ from ``padding``
    (Keras "same" with stride 2 on an even input pads only after it). With either, the
    binarized input is padded explicitly, then convolved without padding.
    """

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        padding_mode="zeros",
        device=None,
        dtype=None,
        *,
        input_quantizer="ste_sign",
        weight_quantizer="ste_sign",
        clip_latent=True,
        scale=None,
        pad_value=0,
        padding_end=None,
    ):
        if pad_value not in (0, 1) or isinstance(pad_value, bool):
            raise ValueError(f"pad_value must be 0 (true zero) or 1 (one-padding), got {pad_value!r}")
        if padding_mode != "zeros":
            raise ValueError(
                f"BinaryConv2d supports padding_mode='zeros' only (true-zero padding after "
                f"binarization, docs/format.md §3), got {padding_mode!r}"
            )
        super().__init__(
            in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
            padding_mode, device, dtype,
        )
        self._init_binary(input_quantizer, weight_quantizer, clip_latent, scale)
        self.pad_value = int(pad_value)
        self.padding_end = None
        if padding_end is not None:
            end = (padding_end, padding_end) if isinstance(padding_end, int) else tuple(int(v) for v in padding_end)
            if isinstance(self.padding, str) or len(end) != 2 or min(end) < 0:
                raise ValueError(f"padding_end must be one or two integers >= 0 next to an integer padding, "
                                 f"got padding={self.padding!r}, padding_end={padding_end!r}")
            self.padding_end = end

    @property
    def accumulator_bound(self) -> int:
        """K = kh * kw * in_channels / groups: a binary output lies in [-K, K]."""
        kh, kw = self.kernel_size
        return int(kh * kw * (self.in_channels // self.groups))

    def explicit_padding(self):
        """((top, left), (bottom, right)) pads when the layer pads explicitly (a ``pad_value`` of
        1 or a ``padding_end``), else None (``F.conv2d``'s own symmetric zero padding)."""
        if self.pad_value == 0 and self.padding_end is None:
            return None
        if isinstance(self.padding, str):
            if self.padding == "valid":
                return (0, 0), (0, 0)
            kh, kw = self.kernel_size
            if kh % 2 == 0 or kw % 2 == 0:
                raise ValueError(f"padding='same' needs an odd kernel, got {self.kernel_size}")
            begin = ((kh - 1) // 2, (kw - 1) // 2)
        else:
            begin = tuple(self.padding)
        return begin, self.padding_end if self.padding_end is not None else begin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xq = self.input_quantizer(x)
        pads = self.explicit_padding()
        if pads is None:  # binarize first, then F.conv2d zero-pads: padding contributes exactly 0
            return F.conv2d(xq, self.quantized_weight(), self.bias, self.stride, self.padding, self.dilation,
                            self.groups)
        (t, left), (b, r) = pads
        xq = F.pad(xq, (left, r, t, b), value=float(self.pad_value))
        return F.conv2d(xq, self.quantized_weight(), self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        extra = self._binary_repr()
        if self.pad_value:
            extra = ", ".join(filter(None, [extra, f"pad_value={self.pad_value}"]))
        if self.padding_end is not None:
            extra = ", ".join(filter(None, [extra, f"padding_end={self.padding_end}"]))
        return super().extra_repr() + (", " + extra if extra else "")


class BinaryLinear(_BinaryMixin, nn.Linear):
    """Binary fully connected layer: ``F.linear(q_in(x), q_w(w) [* mask])`` (+ bias).

    Accepts every ``nn.Linear`` argument plus the keyword-only options of :class:`BinaryConv2d`.
    """

    def __init__(
        self,
        in_features,
        out_features,
        bias=True,
        device=None,
        dtype=None,
        *,
        input_quantizer="ste_sign",
        weight_quantizer="ste_sign",
        clip_latent=True,
        scale=None,
    ):
        super().__init__(in_features, out_features, bias, device, dtype)
        self._init_binary(input_quantizer, weight_quantizer, clip_latent, scale)

    @property
    def accumulator_bound(self) -> int:
        """K = in_features: a binary output lies in [-K, K]."""
        return int(self.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.input_quantizer(x), self.quantized_weight(), self.bias)

    def extra_repr(self) -> str:
        extra = self._binary_repr()
        return super().extra_repr() + (", " + extra if extra else "")


def is_binary_layer(module: nn.Module) -> bool:
    """True for :class:`BinaryConv2d` and :class:`BinaryLinear` instances."""
    return isinstance(module, _BinaryMixin)


@torch.no_grad()
def clip_latent_weights(model: nn.Module) -> int:
    """Clamp the latent weights of every binary layer (with ``clip_latent``) to [-1, 1] in place.

    Call after each optimizer step. Returns the number of layers clipped.
    """
    n = 0
    for m in model.modules():
        if is_binary_layer(m) and m.clip_latent:
            m.weight.clamp_(-1.0, 1.0)
            n += 1
    return n
