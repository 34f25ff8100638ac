"""Quantization-aware fine-tuning (QAT): train through the integer simulation's arithmetic.

The float-latent model and the exported engine differ only where the converter rounds
(docs/format.md §7.3): the first layer's int8 weights and integer input zero point, the int8
weights of float convolutions on int8 data (BNN-Clip shortcuts and transitions), and the int8
rounding of clip blocks (half up in the engine, half to even in ``ClipBlock``). Binary layers and
BatchNorm + sign are exact already (a binary conv of +-1 values is an integer, and the folded
threshold reproduces ``sign(bn(y))``). :func:`prepare` swaps those layers for versions whose
forward pass computes what the simulation computes, with straight-through gradients:

- :class:`QATInputConv` (first ``nn.Conv2d``): the input mapped back to uint8 ``u``, the
  integer zero point ``zp = round(255 mean)``, padding with ``u = zp``, weights
  ``w' = w / (255 std)`` rounded per output channel to ``q = clamp(round(w'/s), -127, 127)``,
  ``s = max|w'| / 127``: ``y = s * conv(u - zp, q) + bias'`` with the converter's ``bias'``
  (:func:`onebit.convert.fold.first_layer`). ``conv(u - zp, q)`` is the engine's exact integer
  accumulator; d q / d w' is 1 inside the grid (straight through), 0 where clamped.
- :class:`QATClip` (every ``ClipBlock``): ``clamp(floor(x/s + 1/2), -127, 127) * s`` (the
  engine's round-half-up), the ClipBlock's gradients (STE inside the clip, PACT for the clip).
- :class:`QATInt8Conv` (float convs of residual blocks whose data is int8): per-output-channel
  int8 weights as the converter's :func:`~onebit.convert.fold.quantize_weights_int8`, STE.

What stays approximate (float rounding, measure-zero ties): BatchNorm in float32 instead of the
folded float64 threshold, the int8 stages' 31-bit fixed-point multipliers, the residual add's
multipliers, and the int8 rounding of an average pool that cannot be folded into the following
1x1 conv (odd maps with ``ceil_mode``). Everything else equals the simulation bit for bit.

:func:`finetune` runs a few hundred steps with BatchNorm statistics frozen (``freeze_bn``: the
training forward then *is* the engine's computation) and returns a plain model (:func:`strip`)
that exports as usual. ``onebit export CKPT -o FILE --qat-steps N`` does both.
"""
from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from onebit.nn.clip import ClipBlock, _ClipQuantFn

__all__ = ["QATInputConv", "QATClip", "QATInt8Conv", "prepare", "strip", "finetune"]


class _RoundClampSTE(torch.autograd.Function):
    """q = clamp(round(v), -127, 127) (half to even, as NumPy's round in the converter);
    gradient 1 where |v| <= 127, else 0."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return torch.clamp(torch.round(v), -127, 127)

    @staticmethod
    def backward(ctx, grad):
        (v,) = ctx.saved_tensors
        return grad * (v.abs() <= 127).to(grad.dtype)


def _int8_weights(w: torch.Tensor):
    """(q, s): per-output-channel symmetric int8 (``fold.quantize_weights_int8``), q with STE.

    The scale is computed in float64 from the detached weights (as the converter does) and
    treated as a constant; q is exact integers in the forward pass.
    """
    amax = w.detach().double().reshape(w.shape[0], -1).abs().amax(dim=1)
    s = torch.where(amax > 0, amax / 127.0, torch.ones_like(amax))
    shape = (-1,) + (1,) * (w.dim() - 1)
    q = _RoundClampSTE.apply(w.double() / s.view(shape))
    return q, s


class QATInputConv(nn.Module):
    """The first conv as the engine computes it (see the module docstring); wraps ``conv``."""

    def __init__(self, conv: nn.Conv2d, mean, std):
        super().__init__()
        if conv.groups != 1 or conv.padding_mode != "zeros" or tuple(conv.dilation) != (1, 1):
            raise ValueError("QATInputConv: groups, dilation and padding modes are not supported")
        self.conv = conv
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64).view(1, -1, 1, 1))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float64).view(1, -1, 1, 1))
        self.register_buffer("zp", torch.round(255.0 * self.mean))

    def quantized(self):
        """(q: int8 values OIHW, float64, straight-through; s[o]; bias'[o]) of the current weights."""
        wp = self.conv.weight.double() / (255.0 * self.std)
        q, s = _int8_weights(wp)
        corr = (wp * (self.zp - 255.0 * self.mean)).sum(dim=(1, 2, 3))
        bias = corr if self.conv.bias is None else self.conv.bias.double() + corr
        return q, s, bias

    def accumulator(self, x: torch.Tensor, q=None) -> torch.Tensor:
        """The engine's int32 accumulator ``conv(u - zp, q)`` (float64, exact integers)."""
        u = torch.round((x.detach().double() * self.std + self.mean) * 255.0).clamp(0, 255)
        q = self.quantized()[0] if q is None else q
        return F.conv2d(u - self.zp, q, stride=self.conv.stride, padding=self.conv.padding)

    def forward(self, x):
        q, s, bias = self.quantized()
        y = self.accumulator(x, q) * s.view(1, -1, 1, 1) + bias.view(1, -1, 1, 1)
        return y.to(x.dtype)


class _HalfUpClipFn(_ClipQuantFn):
    """ClipBlock quantization with the engine's rounding (half up); the ClipBlock's gradients."""

    @staticmethod
    def forward(ctx, x, clip, qmax):
        s = clip / qmax
        q = torch.clamp(torch.floor(x / s + 0.5), -qmax, qmax)
        ctx.save_for_backward(x, clip)
        return q * s


class QATClip(nn.Module):
    """A ClipBlock rounding half up like the engine's int8 stages; wraps ``clip``."""

    def __init__(self, clip: ClipBlock):
        super().__init__()
        self.clip = clip

    def forward(self, x):
        c = self.clip._clip_tensor().to(dtype=x.dtype, device=x.device)
        return _HalfUpClipFn.apply(x, c, self.clip.qmax)


class QATInt8Conv(nn.Module):
    """A float conv on int8 data with the converter's per-channel int8 weights (STE); wraps ``conv``."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        q, s = _int8_weights(self.conv.weight)
        w = (q * s.view(-1, 1, 1, 1)).to(x.dtype)
        c = self.conv
        return F.conv2d(x, w, c.bias, c.stride, c.padding, c.dilation, c.groups)


_WRAPPERS = (QATInputConv, QATClip, QATInt8Conv)


def _first_conv_name(model: nn.Module, input_shape) -> str:
    """Name of the float conv that reads the image (the first leaf conv run by the model)."""
    order = []
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: order.append(n))
             for n, m in model.named_modules() if type(m) is nn.Conv2d]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1,) + tuple(input_shape)))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    if not order:
        raise ValueError("QAT: the model has no float first convolution")
    return order[0]


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, module)


def prepare(model: nn.Module, mean, std, input_shape=None) -> nn.Module:
    """Swap (in place) the layers the converter rounds for their QAT versions; returns ``model``.

    ``mean``/``std``: the input normalization (per channel) the model was trained with;
    ``input_shape`` (C, H, W), default ``model.input_shape``. Parameters are shared, not copied.
    """
    from onebit.models.blocks import DownsampleShortcut, TransitionBlock

    if any(isinstance(m, _WRAPPERS) for m in model.modules()):
        raise ValueError("QAT: the model is already prepared")
    shape = input_shape or getattr(model, "input_shape", None)
    if shape is None:
        raise ValueError("QAT: pass input_shape=(C, H, W) (the model has no input_shape)")
    first = _first_conv_name(model, shape)
    int8_convs = [f"{n}.conv" for n, m in model.named_modules()
                  if isinstance(m, (DownsampleShortcut, TransitionBlock)) and isinstance(m.clip, ClipBlock)]
    clips = [n for n, m in model.named_modules() if isinstance(m, ClipBlock)]
    _set(model, first, QATInputConv(model.get_submodule(first), mean, std))
    for n in int8_convs:
        _set(model, n, QATInt8Conv(model.get_submodule(n)))
    for n in clips:
        _set(model, n, QATClip(model.get_submodule(n)))
    return model


def strip(model: nn.Module) -> nn.Module:
    """Undo :func:`prepare` in place (the wrapped layers, with their trained parameters, return)."""
    for n, m in list(model.named_modules()):
        if isinstance(m, QATInputConv):
            _set(model, n, m.conv)
        elif isinstance(m, QATInt8Conv):
            _set(model, n, m.conv)
        elif isinstance(m, QATClip):
            _set(model, n, m.clip)
    return model


def _freeze_bn(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _forever(loader):
    """Batches of ``loader``, epoch after epoch (``set_epoch`` reshuffles where it exists)."""
    for epoch in itertools.count():
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        yield from loader


def finetune(model: nn.Module, loader, steps: int, *, mean, std, lr: float = 1e-5,
             freeze_bn: bool = True, train_binary: bool = False, distill: float = 0.0,
             input_shape=None, log_every: int = 0, echo=print) -> nn.Module:
    """Fine-tune a copy of ``model`` for ``steps`` batches of ``loader`` through the QAT forward.

    ``loader`` yields ``(x, y)`` with ``x`` normalized NCHW (``onebit.data.make_loader``),
    re-run epoch after epoch if shorter than ``steps``. Adam at ``lr`` with the training
    recipe's parameter groups (:func:`onebit.train.optim.make_optimizer`, no weight decay),
    the learning rate on a cosine from ``lr`` to 0 over ``steps``. Only the float parameters
    train by default (first and int8 convs, BatchNorm affine, clip values, the classifier): the
    rounding QAT compensates is theirs, and a converged binary network loses accuracy when its
    latent weights move again (measured, docs/results.md); ``train_binary=True`` trains the
    latent binary weights too (clipped to [-1, 1] after every step). ``freeze_bn`` keeps
    BatchNorm on its running statistics (affine parameters still train), so the forward pass is
    the engine's arithmetic. The loss is cross-entropy on the labels plus ``distill`` times the KL divergence from the
    float model's (``model``, eval mode) softmax to the QAT model's: ``distill > 0`` pulls the
    engine's arithmetic towards the float model's decisions. Returns the fine-tuned plain model
    (QAT layers stripped) in eval mode; ``model`` is not modified.
    """
    import onebit.nn
    from onebit.train.optim import binary_layer_types, make_optimizer

    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")

    m = prepare(copy.deepcopy(model).cpu(), mean, std, input_shape or getattr(model, "input_shape", None))
    frozen = [] if train_binary else [mod.weight for mod in m.modules()
                                      if isinstance(mod, binary_layer_types()) and mod.weight.requires_grad]
    for p in frozen:
        p.requires_grad_(False)
    opt = make_optimizer(m, lr, 0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.5 * (1 + math.cos(math.pi * min(i, steps) / steps)))
    teacher = copy.deepcopy(model).cpu().eval() if distill else None
    m.train()
    if freeze_bn:
        _freeze_bn(m)
    losses = []
    batches = _forever(loader)
    for step in range(steps):
        x, y = next(batches)
        logits = m(x)
        loss = F.cross_entropy(logits, y)
        if teacher is not None:
            with torch.no_grad():
                target = F.log_softmax(teacher(x), dim=1)
            loss = loss + distill * F.kl_div(F.log_softmax(logits, dim=1), target, log_target=True,
                                             reduction="batchmean")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        onebit.nn.clip_latent_weights(m)
        losses.append(float(loss.detach()))
        if not math.isfinite(losses[-1]):
            raise FloatingPointError(f"QAT: loss became {losses[-1]} at step {step + 1}")
        if log_every and (step + 1) % log_every == 0:
            echo(f"[qat] step {step + 1}/{steps}  loss {np.mean(losses[-log_every:]):.4f}")
    m.eval()
    for p in frozen:
        p.requires_grad_(True)
    m.qat_losses = losses
    return strip(m)
