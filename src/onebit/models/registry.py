"""The model registry: ``create(name, **kw)``, ``list_models()``, ``register(name)``."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

from onebit.errors import OnebitError

__all__ = ["UnknownModelError", "register", "create", "list_models", "get_builder"]

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


class UnknownModelError(OnebitError, KeyError, ValueError):
    """No model of that name is registered; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would repr-quote the message
        return str(self.args[0]) if self.args else ""


def register(name: str) -> Callable:
    """Decorator registering ``builder(**kw) -> nn.Module`` under ``name``."""

    def deco(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = builder
        return builder

    return deco


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_REGISTRY)


def get_builder(name: str) -> Callable[..., nn.Module]:
    """The builder registered under ``name`` (``UnknownModelError`` lists the known names)."""
    if not isinstance(name, str) or name not in _REGISTRY:
        raise UnknownModelError(
            f"unknown model {name!r}; known models: {', '.join(list_models())}"
        )
    return _REGISTRY[name]


def create(
    name: str,
    *,
    width: float = 1.0,
    num_classes: int | None = None,
    clip_block: bool = False,
    float_twin: bool = False,
    input_size: int | None = None,
    stem: str | None = None,
    input_bits=None,
) -> nn.Module:
    """Build a registered model.

    Args:
        name: one of :func:`list_models`.
        width: channel multiplier (every hidden width is ``max(1, round(c * width))``).
        num_classes: logits; default 10 (all of onebit's datasets have 10 classes).
        clip_block: BNN-Clip: pass every real-valued tensor that crosses a layer boundary through
            a :class:`~onebit.nn.ClipBlock` (int8 data between layers).
        float_twin: the same architecture with float ``nn.Conv2d``/``nn.Linear`` and ReLU where
            the binary model binarizes its input (a comparison baseline).
        input_size: spatial input size (square); default per model (28, 32, 64 or 224).
        stem: ``"cifar"`` or ``"imagenet"`` for the residual networks (None elsewhere).
        input_bits: CBNN bit-plane input (:mod:`onebit.models.planes`): an int K keeps the K most
            significant bit planes of each colour, a list keeps those plane ids (``c * 8 + b``,
            b = 0 the LSB); None (default) reads the image itself.

    The model carries ``onebit_config`` (``create(**model.onebit_config)`` rebuilds it),
    ``dataset_hint`` (the dataset it is meant for) and ``input_shape`` ``(C, H, W)``.
    """
    builder = get_builder(name)
    if not isinstance(width, (int, float)) or isinstance(width, bool) or not width > 0:
        raise ValueError(f"width must be a positive number, got {width!r}")
    if num_classes is None:
        num_classes = 10
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if input_size is not None and (
        isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1
    ):
        raise ValueError(f"input_size must be a positive int, got {input_size!r}")
    model = builder(
        width=float(width), num_classes=num_classes, clip_block=bool(clip_block),
        float_twin=bool(float_twin), input_size=input_size, stem=stem,
    )
    if input_bits is not None:
        from onebit.models.planes import with_input_planes

        model = with_input_planes(model, input_bits, name)
    model.onebit_config = {
        "name": name,
        "width": float(width),
        "num_classes": num_classes,
        "clip_block": bool(clip_block),
        "float_twin": bool(float_twin),
        "input_size": int(model.input_shape[-1]),
        "stem": getattr(model, "stem_type", None),
    }
    if input_bits is not None:
        model.onebit_config["input_bits"] = (
            int(input_bits) if isinstance(input_bits, int) else list(model.planes.planes))
    return model
