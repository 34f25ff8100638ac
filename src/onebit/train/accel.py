"""Accelerator options of a training run: bf16 autocast, channels_last, torch.compile.

Each option is resolved once per run (:func:`resolve`) into an :class:`Accel` record that the
loop applies and the JSON record reports:

- ``bf16``: ``torch.autocast(dtype=bfloat16)`` around the forward pass and the loss. Default:
  on for CUDA, off for CPU. A model with ``ClipBlock`` s (BNN-Clip) runs in float32 whatever
  was asked: its blocks round activations onto an int8 grid ``q * s`` that bf16 (8 significant
  bits) cannot hold exactly, and the engine relies on that grid. ``bf16`` on a CUDA device
  without bf16 support is an error.
- ``channels_last``: the model's 4-D parameters and every input batch in NHWC memory order
  (faster convolutions on tensor cores; the maths is unchanged).
- ``compile``: the forward pass through ``torch.compile`` (checkpoints hold the plain model).
- ``deterministic``: cuDNN deterministic algorithms (default); off lets cuDNN benchmark and
  pick the fastest, non-deterministic kernels.
"""
from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass

import torch

from onebit.train.config import TrainConfigError


@dataclass(frozen=True)
class Accel:
    device_type: str
    bf16: bool
    bf16_reason: str
    channels_last: bool
    compile: bool
    deterministic: bool
    resident: bool

    def autocast(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=torch.bfloat16)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """An input batch in the memory order the model runs in."""
        if self.channels_last and x.dim() == 4:
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def to_json(self) -> dict:
        return asdict(self)


def has_clip_blocks(model: torch.nn.Module) -> bool:
    from onebit.nn import ClipBlock

    return any(isinstance(m, ClipBlock) for m in model.modules())


def resolve(config, device: torch.device, model: torch.nn.Module) -> Accel:
    """The options this run uses on ``device`` for ``model`` (``None`` = the device's default)."""
    cuda = device.type == "cuda"
    want = config.bf16 if config.bf16 is not None else cuda
    if want and has_clip_blocks(model):
        bf16, reason = False, "off: ClipBlock outputs must lie exactly on the int8 grid (float32 needed)"
    elif want:
        if cuda and not torch.cuda.is_bf16_supported():
            raise TrainConfigError(f"bf16 requested but {torch.cuda.get_device_name(device)} has no bf16 support")
        bf16, reason = True, "on"
    else:
        bf16, reason = False, "off" if config.bf16 is False else f"off (default on {device.type})"
    resident = config.resident if config.resident is not None else cuda
    return Accel(device_type=device.type, bf16=bf16, bf16_reason=reason,
                 channels_last=bool(config.channels_last), compile=bool(config.compile),
                 deterministic=bool(config.deterministic), resident=bool(resident))


def apply_backend(accel: Accel) -> None:
    torch.backends.cudnn.deterministic = accel.deterministic
    torch.backends.cudnn.benchmark = not accel.deterministic


def apply_model(accel: Accel, model: torch.nn.Module) -> torch.nn.Module:
    """The model's memory order (in place)."""
    if accel.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def maybe_compile(accel: Accel, net: torch.nn.Module) -> torch.nn.Module:
    """The module to call for training: ``net`` compiled when asked (the plain model, not the
    compiled wrapper, is the one whose state checkpoints hold)."""
    return torch.compile(net) if accel.compile else net
