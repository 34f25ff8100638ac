"""Which layers of an imported model the ``.onebit`` converter cannot represent, and why.

The converter (:mod:`onebit.convert.dag`, chains by :mod:`onebit.convert.graph`) exports graphs
of onebit layers joined by additions (and per-channel multiplications); this lists, before it runs, every imported layer that it
would refuse, with the reason in Keras
terms, so that ``onebit import`` reports all of them at once. A model with no entry still goes
through the converter, which checks the op order itself.
"""
from __future__ import annotations

from torch import nn

from onebit.convert.larq import modules as M
from onebit.convert.larq.quantizers import SteHeaviside


def _reason(mod: nn.Module, reads_input: bool = False) -> str | None:
    from onebit.nn.layers import is_binary_layer

    if isinstance(mod, M.PaddedConv):
        v = mod.pad.value
        return (f"padding with {v:g} (Larq pad_values={v:g}): the .onebit format pads binary "
                f"convolutions with a true zero or +1 only")
    if isinstance(mod, M.KerasPool2d):
        return ("pooling with uneven 'same' padding whose windows torch's ceil_mode does not reproduce: "
                "the .onebit format pads pooling windows symmetrically")
    if isinstance(mod, M.Concatenate) and mod.dim not in (1, -3):
        return f"concatenation along dimension {mod.dim} (NCHW): the .onebit format concatenates channels"
    if isinstance(mod, M.Merge) and mod.op not in ("add", "multiply"):
        return (f"{mod.op} of branches of a Keras graph: the .onebit format joins branches by addition, "
                f"or multiplies a value by a per-channel vector")
    if is_binary_layer(mod):
        if getattr(mod, "groups", 1) != 1:
            return (f"grouped binary convolution (groups={mod.groups}): the .onebit format's binary "
                    f"convolutions read all input channels")
        for role in ("input_quantizer", "weight_quantizer"):
            q = getattr(mod, role)
            if isinstance(q, SteHeaviside):
                return f"{role} ste_heaviside ({{0, 1}} levels): the .onebit format stores sign bits (+-1)"
        if mod.input_precision != 1 and not (reads_input and isinstance(mod, nn.Conv2d)):
            return ("a binary-weight layer with a float (unquantized) input inside the network: the .onebit "
                    "format has no such op (as the first layer it becomes the int8 input convolution)")
    if isinstance(mod, M.NHWCFlatten):
        return "a flatten that does not directly feed a dense layer"
    if isinstance(mod, M.Reshape) and (len(mod.target_shape) != 3 or mod.target_shape[:2] != (1, 1)):
        return (f"reshape to {list(mod.target_shape)}: the converter supports a reshape to [1, 1, C] read by a "
                f"1x1 binary convolution (a binary dense layer) or by a multiplication (a per-channel gate)")
    if isinstance(mod, (M.Rescaling, M.Normalization)):
        return ("input scaling inside the network: the .onebit file normalizes its input once, before "
                "the first layer (a Rescaling/Normalization right after the input is folded into it)")
    if isinstance(mod, (M.FullPReLU, M.HardSigmoid, M.KerasPad2d)):
        return f"{type(mod).__name__}: no .onebit op"
    return None


def unsupported(model: M.KerasGraph) -> list[tuple[str, str]]:
    """``[(Keras layer name, reason)]`` for every layer the converter cannot represent."""
    out = []
    first = {key for key, ins in model.nodes if ins == [model.input_key]}
    for key, mod in model.layers.items():
        name = model.keras_names.get(key, key)
        for sub in [mod, *mod.modules()]:
            r = _reason(sub, key in first)
            if r is not None:
                out.append((name, r))
                break
    return out


def strip_softmax(model: M.KerasGraph) -> bool:
    """Replace a final softmax by identity (the engine outputs logits; the top-1 is the same).
    Returns True when one was removed."""
    key = model.output_key
    mod = model.layers[key]
    if isinstance(mod, nn.Softmax):
        model.layers[key] = nn.Identity()
        return True
    if isinstance(mod, nn.Sequential) and isinstance(mod[-1], nn.Softmax):
        model.layers[key] = mod[0] if len(mod) == 2 else nn.Sequential(*list(mod)[:-1])
        return True
    return False


def fold_input_scaling(model: M.KerasGraph, channels: int):
    """Leading ``Rescaling`` / ``Normalization`` layers (the model reads raw pixels 0..255) as the
    .onebit input normalization ``x = (u/255 - mean[c]) / std[c]``: returns ``(mean, std, names)``
    and replaces those layers by identity, or ``None`` when the model does not start with one."""
    import numpy as np

    a, b = np.ones(channels), np.zeros(channels)  # x = a*u + b per channel
    names, cur = [], model.input_key
    for key, ins in model.nodes:
        if ins != [cur]:
            break
        mod = model.layers[key]
        if isinstance(mod, M.Rescaling):
            a, b = a * mod.scale, b * mod.scale + mod.offset
        elif isinstance(mod, M.Normalization) and mod.mean.numel() == channels:
            s = np.maximum(np.sqrt(mod.variance.double().numpy()), 1e-7)
            a, b = a / s, (b - mod.mean.double().numpy()) / s
        else:
            break
        names.append(key)
        cur = key
    if not names or not (a > 0).all():
        return None
    for key in names:
        model.layers[key] = nn.Identity()
    std = 1.0 / (255.0 * a)
    return [float(v) for v in -b * std], [float(v) for v in std], [model.keras_names.get(k, k) for k in names]
