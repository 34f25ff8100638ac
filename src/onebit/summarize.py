"""``onebit.summary(model)``: per-layer parameters by precision, packed memory and MACs.

Shapes come from forward hooks during one forward pass of a zero input of batch 1 (in eval
mode, under ``no_grad``; each module's training flag is restored afterwards).

Conventions (also in ``Summary.to_json()["conventions"]``):

- A *binary MAC* (bit-MAC, = 1 BOP) is a multiply-accumulate of a layer whose input and weight
  quantizers both have ``precision`` 1 (``BinaryConv2d``/``BinaryLinear`` with sign
  quantizers). Every other MAC (float layers -- the first conv, int8 in the engine, and the
  last FC --, binary layers with a non-binary quantizer) is a *float MAC*.
  Conv MACs = H_out * W_out * (number of weights): padding taps are counted, like the papers.
- ``weight_mask``: pruned weights are counted neither as parameters nor as MACs (a layer's
  MACs use the kept weights). Packed memory is unchanged by a mask: it is the dense packed
  layout. (The ``.onebit`` file stores a pruned layer as its kept weights plus a mask, compact
  for word / block pruning, docs/format.md §7.3; ``onebit summary MODEL.onebit`` reports those
  stored bytes per op.)
- Parameters by precision: binary weights 1 bit; ``weight_precision``/quantizer metadata says
  otherwise (8 or 32). Float weights and biases 32 bits. BatchNorm: 2 values per channel (its
  folded form: threshold+direction, multiplier+bias or scale+bias), 32 bits each.
  ClipBlock: its scale, 1 value of 32 bits. Pooling, activations, add: no parameters.
- Packed memory of binary weights follows docs/format.md §2: conv ``Cout*KH*KW*ceil(Cin/64)``
  words, dense ``Cout*ceil(in/64)`` words, 8 bytes each; 8-bit values 1 byte; 32-bit 4 bytes.
- ``size_bytes`` is the sum of packed memory; ``float32_size_bytes`` = 4 bytes per counted
  parameter; ``compression_ratio`` = float32_size_bytes / size_bytes.
- OPs (Bi-Real/ReActNet convention) = binary_macs / 64 + float_macs.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from onebit.nn import ClipBlock
from onebit.nn.layers import is_binary_layer
from onebit.table import format_table

__all__ = ["summary", "Summary", "CONVENTIONS"]

CONVENTIONS = {
    "binary_macs": "MACs of layers whose input and weight are both 1 bit (1 bit-MAC = 1 BOP)",
    "float_macs": "all other MACs (first conv float/int8, last FC float, float shortcuts)",
    "conv_macs": "H_out*W_out*weights per layer, padding taps counted, batch 1",
    "weight_mask": "pruned weights are excluded from params and MACs; packed memory unchanged "
                   "(the .onebit file stores kept weights + mask: onebit summary MODEL.onebit)",
    "batchnorm": "2 values per channel at 32 bits (folded threshold/multiplier form)",
    "clipblock": "1 scale value at 32 bits",
    "packed_memory": "binary weights packed along input channels in 64-bit words (format.md)",
    "ops": "binary_macs/64 + float_macs",
}

_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d,
          nn.MaxPool1d, nn.AvgPool1d)
_SKIP = (nn.Identity, nn.Flatten, nn.Dropout, nn.ReLU, nn.Hardtanh, nn.PReLU, nn.GELU,
         nn.SiLU, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ReLU6)
_ROW_TYPES = (nn.Conv2d, nn.Conv1d, nn.Linear, nn.modules.batchnorm._BatchNorm, ClipBlock) + _POOLS

_INT_KEYS = ("params_1bit", "params_8bit", "params_32bit", "memory_bytes", "binary_macs",
             "float_macs")


@dataclass
class Summary:
    """Result of :func:`summary`: ``rows`` (one dict per layer), ``totals``, ``table()``."""

    model_name: str
    input_shape: tuple[int, ...]
    rows: list[dict] = field(default_factory=list)
    totals: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def table(self) -> str:
        """The per-layer table and the totals as plain text."""
        cols = {
            "name": "layer", "type": "type", "output": "output", "params_1bit": "1-bit",
            "params_8bit": "8-bit", "params_32bit": "32-bit", "memory_bytes": "memory B",
            "binary_macs": "binary MACs", "float_macs": "float MACs",
        }
        shown = []
        for r in self.rows:
            row = dict(r)
            row["output"] = "x".join(str(v) for v in r["output_shape"]) if r["output_shape"] else "-"
            shown.append(row)
        t = self.totals
        shown.append({"name": "total", "type": "", "output": "",
                      **{k: t[k] for k in _INT_KEYS if k != "memory_bytes"},
                      "memory_bytes": t["size_bytes"]})
        shape = "x".join(str(v) for v in self.input_shape)
        lines = [f"Model: {self.model_name}{self._options()}  input {shape} (CxHxW, batch 1)", "",
                 format_table(shown, columns=cols), ""]
        n_params = t["params_1bit"] + t["params_8bit"] + t["params_32bit"]
        lines += [
            f"Params: {n_params:,} ({t['params_1bit']:,} 1-bit, {t['params_8bit']:,} 8-bit, "
            f"{t['params_32bit']:,} 32-bit)",
            f"Model size: {_human(t['size_bytes'])} packed; float-32 equivalent "
            f"{_human(t['float32_size_bytes'])}; compression {t['compression_ratio']:.2f}x",
            f"Binary MACs: {_si(t['binary_macs'])}  Float MACs: {_si(t['float_macs'])}  "
            f"OPs (BOPs/64 + FLOPs): {_si(t['ops'])}",
        ]
        if t.get("pruned_weights"):
            lines.append(f"Pruned binary weights (weight_mask): {t['pruned_weights']:,} "
                         "(excluded from params and MACs)")
        lines.append("Convention: bit-MAC = 1 BOP; float MACs include the first conv "
                     "(float/int8) and the last FC; see onebit.summarize.")
        return "\n".join(lines)

    def _options(self) -> str:
        opts = [f"{k}={v}" for k, v in self.config.items()
                if k not in ("name", "input_size") and v not in (None, False)]
        return f" ({', '.join(opts)})" if opts else ""

    def to_json(self) -> dict:
        """JSON-ready dict: ``model``, ``input_shape``, ``rows``, ``totals``, ``conventions``."""
        return {
            "model": self.model_name,
            "config": dict(self.config),
            "input_shape": list(self.input_shape),
            "rows": [dict(r, output_shape=list(r["output_shape"]) if r["output_shape"] else None)
                     for r in self.rows],
            "totals": dict(self.totals),
            "conventions": dict(CONVENTIONS),
        }

    def __str__(self) -> str:
        return self.table()


def _human(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024 ** 2:
        return f"{n / 1024:.2f} KiB ({n:,} B)"
    return f"{n / 1024 ** 2:.2f} MiB ({n:,} B)"


def _si(n: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.3f} {unit}"
    return f"{n:g}"


def _resolve_input_shape(model: nn.Module, input_size) -> tuple[int, ...]:
    default = getattr(model, "input_shape", None)
    if input_size is None:
        if default is None:
            raise ValueError(
                "summary needs input_size (C, H, W) for a model without an input_shape attribute")
        return tuple(int(v) for v in default)
    if isinstance(input_size, int) and not isinstance(input_size, bool):
        channels = int(default[0]) if default is not None else 3
        shape = (channels, input_size, input_size)
    else:
        shape = tuple(int(v) for v in input_size)
        if len(shape) == 4:
            shape = shape[1:]
    if len(shape) not in (1, 2, 3) or any(v < 1 for v in shape):
        raise ValueError(f"input_size must be an int or (C, H, W) of positive ints, got {input_size!r}")
    return shape


def _row_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules that get a row: known layer types and other leaves with parameters."""
    out, taken = [], []
    for name, m in model.named_modules():
        if any(name.startswith(p + ".") for p in taken):
            continue  # inside a row module (e.g. a binary layer's quantizers)
        is_row = is_binary_layer(m) or isinstance(m, _ROW_TYPES)
        is_leaf_with_params = (not list(m.children()) and not isinstance(m, _SKIP)
                               and any(True for _ in m.parameters(recurse=False)))
        if is_row or is_leaf_with_params:
            out.append((name or type(m).__name__, m))
            taken.append(name)
    return out


def _packed_words(m: nn.Module) -> int:
    w = m.weight
    if w.dim() == 4:  # OHWI, packed along Cin (per group)
        cout, cin_g, kh, kw = w.shape
        return cout * kh * kw * math.ceil(cin_g / 64)
    cout, cin = w.shape
    return cout * math.ceil(cin / 64)


def _static_stats(m: nn.Module) -> dict:
    """Parameters and packed memory of one row module (independent of the forward pass)."""
    s = dict.fromkeys(_INT_KEYS, 0)
    s["pruned"] = 0
    if is_binary_layer(m):
        n = m.weight.numel()
        kept = n if m.weight_mask is None else int(m.weight_mask.detach().sum().item())
        s["pruned"] = n - kept
        wp = m.weight_precision
        if wp == 1:
            s["params_1bit"] += kept
            s["memory_bytes"] += 8 * _packed_words(m)
        elif wp <= 8:
            s["params_8bit"] += kept
            s["memory_bytes"] += n
        else:
            s["params_32bit"] += kept
            s["memory_bytes"] += 4 * n
        if m.bias is not None:
            s["params_32bit"] += m.bias.numel()
            s["memory_bytes"] += 4 * m.bias.numel()
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        s["params_32bit"] += 2 * m.num_features
        s["memory_bytes"] += 8 * m.num_features
    elif isinstance(m, ClipBlock):
        s["params_32bit"] += 1
        s["memory_bytes"] += 4
    else:
        bits = int(getattr(m, "weight_precision", 32))
        for pname, p in m.named_parameters(recurse=True):
            k = "params_8bit" if (pname == "weight" and bits <= 8) else "params_32bit"
            s[k] += p.numel()
            s["memory_bytes"] += p.numel() * (1 if k == "params_8bit" else 4)
    return s


def _macs(m: nn.Module, out: torch.Tensor) -> tuple[int, int]:
    """(binary_macs, float_macs) of one call producing ``out`` (batch 1)."""
    if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.Linear)):
        w = m.weight
        n = w.numel()
        if getattr(m, "weight_mask", None) is not None:
            n = int(m.weight_mask.detach().sum().item())
        positions = 1
        if isinstance(m, (nn.Conv2d, nn.Conv1d)):
            positions = math.prod(out.shape[2:])
        else:
            positions = math.prod(out.shape[1:-1]) if out.dim() > 2 else 1
        macs = positions * n
        binary = is_binary_layer(m) and m.input_precision == 1 and m.weight_precision == 1
        return (macs, 0) if binary else (0, macs)
    return 0, 0


def summary(model: nn.Module, input_size=None) -> Summary:
    """Summarize ``model``: per-layer rows, totals, ``.table()`` and ``.to_json()``.

    Args:
        model: any ``nn.Module``; zoo models carry ``input_shape`` so ``input_size`` is optional.
        input_size: ``(C, H, W)`` (a leading batch dim is dropped) or an int side length
            (channels from ``model.input_shape``, else 3).

    Conventions: see the module docstring (binary MACs need 1-bit input *and* weight; masked
    weights are not counted; OPs = BOPs/64 + FLOPs).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"summary expects a torch.nn.Module, got {type(model).__name__}")
    shape = _resolve_input_shape(model, input_size)
    mods = _row_modules(model)
    calls: dict[int, dict] = {id(m): {"shape": None, "binary": 0, "float": 0} for _, m in mods}

    def hook(module, _inputs, output):
        rec = calls[id(module)]
        if isinstance(output, torch.Tensor):
            rec["shape"] = tuple(output.shape[1:])
            b, f = _macs(module, output)
            rec["binary"] += b
            rec["float"] += f

    handles = [m.register_forward_hook(hook) for _, m in mods]
    modes = {m: m.training for m in model.modules()}
    try:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
        dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
        model.eval()
        with torch.no_grad():
            model(torch.zeros((1,) + shape, device=device, dtype=dtype))
    except Exception as e:
        raise ValueError(
            f"summary: forward pass of a {'x'.join(map(str, shape))} input failed "
            f"({type(e).__name__}: {e}); pass the model's input_size (C, H, W)") from e
    finally:
        for h in handles:
            h.remove()
        for m, mode in modes.items():
            m.training = mode

    rows = []
    totals = dict.fromkeys(_INT_KEYS, 0)
    pruned = 0
    for name, m in mods:
        st = _static_stats(m)
        rec = calls[id(m)]
        row = {
            "name": name,
            "type": type(m).__name__,
            "output_shape": rec["shape"],
            "params_1bit": st["params_1bit"],
            "params_8bit": st["params_8bit"],
            "params_32bit": st["params_32bit"],
            "memory_bytes": st["memory_bytes"],
            "binary_macs": rec["binary"],
            "float_macs": rec["float"],
        }
        pruned += st["pruned"]
        rows.append(row)
        for k in _INT_KEYS:
            totals[k] += row[k]
    size = totals["memory_bytes"]
    n_params = totals["params_1bit"] + totals["params_8bit"] + totals["params_32bit"]
    totals.update(
        size_bytes=size,
        float32_size_bytes=4 * n_params,
        compression_ratio=(4 * n_params / size) if size else 0.0,
        bops=totals["binary_macs"],
        ops=totals["binary_macs"] / 64 + totals["float_macs"],
        pruned_weights=pruned,
    )
    cfg = getattr(model, "onebit_config", None)
    name = cfg.get("name") if isinstance(cfg, dict) and cfg.get("name") else type(model).__name__
    return Summary(model_name=name, input_shape=shape, rows=rows, totals=totals,
                   config=dict(cfg) if isinstance(cfg, dict) else {})
