"""Network kernels of the engine: pooling, residual add, int8 conv / dense, float dense.

Thin NumPy wrappers over ``onebit._engine`` (C++, src/cpp/onebit/{pool,add,conv8,densef}.*).
Every function takes C-contiguous NumPy arrays of the exact dtype it documents (nothing is
converted silently), returns a new array or fills ``out=``, and accepts ``isa`` ("scalar",
"avx2", "avxvnni", "avx512"; default: the engine's active ISA) and ``threads`` (default: all cores).
Results never depend on ``isa`` or ``threads``. Bad input raises ValueError. The math is in
``docs/format.md`` §5-6 and ``docs/kernels.md`` ("Network kernels"); NumPy oracles of every
function are in :mod:`onebit.runtime.reference_net`. No torch.

Padding semantics: PyTorch geometry ``out = floor((in + 2p - k) / s) + 1``. Pooling ignores
padded taps (max) or counts them as zeros only when ``count_include_pad`` (average), and
requires ``p <= k // 2`` like ``torch.nn.MaxPool2d``. Pooling takes ``ceil_mode`` as PyTorch:
``out = ceil((in + 2p - k) / s) + 1``, minus one if the last window would start at or after
``in + p``; such a last window's divisor with ``count_include_pad`` is the window clipped to
the padded input (PyTorch's rule). The int8 convolution pads with the input
zero point, i.e. with real zero, matching ``F.conv2d(x, w, padding=p)`` on the real values.
"""
from __future__ import annotations

import math

import numpy as np

from onebit.runtime.engine import engine
from onebit.runtime.geometry import output_size

__all__ = [
    "maxpool2d_bits", "maxpool2d_int8", "maxpool2d_float", "avgpool2d_int8", "avgpool2d_float",
    "global_avgpool_int8", "global_avgpool_int8_float", "global_avgpool_float",
    "add_int8", "add_float", "add_int8_params", "conv2d_int8", "dwconv2d_int8", "dwconv2d_float", "dense_int8", "dense_float",
]

_INT32 = (-(2**31), 2**31 - 1)


def _array(x, name: str) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise ValueError(f"{name} must be a numpy.ndarray, got {type(x).__name__}")
    return x


def _pair(v, name: str) -> tuple[int, int]:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    try:
        a, b = v
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}") from None
    if not all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in (a, b)):
        raise ValueError(f"{name} must be an int or a pair of ints, got {v!r}")
    return int(a), int(b)


def _int_param(v, name: str, dtype=np.int32) -> np.ndarray | None:
    """Integer per-channel parameter as a contiguous array of `dtype`; refuses floats and
    out-of-range values instead of rounding or wrapping them."""
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integers, got dtype {a.dtype}")
    info = np.iinfo(dtype)
    if a.size and (a.min() < info.min or a.max() > info.max):
        raise ValueError(f"{name} values must fit {np.dtype(dtype).name}")
    return np.ascontiguousarray(a, dtype=dtype)


def _float_param(v, name: str) -> np.ndarray | None:
    if v is None:
        return None
    a = np.asarray(v)
    if a.dtype.kind not in "fiu":
        raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)


def _out(out, shape, dtype, *inputs, name="out") -> np.ndarray:
    """A new output array, or the caller's ``out`` after checking it: exact dtype and shape,
    writeable, and not overlapping the ``inputs`` (only elementwise adds may run in place)."""
    if out is None:
        return np.empty(shape, dtype)
    _array(out, name)
    if out.shape != tuple(shape) or out.dtype != np.dtype(dtype):
        raise ValueError(f"{name} must be {np.dtype(dtype).name} of shape {tuple(shape)}, "
                         f"got {out.dtype} {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} must be writeable")
    if any(np.may_share_memory(out, x) for x in inputs):
        raise ValueError(f"{name} must not overlap the input arrays")
    return out


def _pool_geometry(x, kernel_size, stride, padding, ceil_mode=False):
    _array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must be NHWC with 4 dimensions, got shape {x.shape}")
    kh, kw = _pair(kernel_size, "kernel_size")
    sh, sw = _pair(kernel_size if stride is None else stride, "stride")
    ph, pw = _pair(padding, "padding")
    if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0:
        raise ValueError("kernel_size and stride must be >= 1 and padding >= 0")
    oh = output_size(x.shape[1], kh, sh, ph, ceil_mode)
    ow = output_size(x.shape[2], kw, sw, pw, ceil_mode)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {kh}x{kw} does not fit the padded input {x.shape[1:3]}")
    return (kh, kw, sh, sw, ph, pw), (x.shape[0], oh, ow, x.shape[3])


def _maxpool(fn, dtype, x, kernel_size, stride, padding, ceil_mode, out, isa, threads) -> np.ndarray:
    geo, shape = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    out = _out(out, shape, dtype, x)
    fn(x, out, *geo, ceil_mode=bool(ceil_mode), isa=isa, threads=threads)
    return out


def maxpool2d_bits(x: np.ndarray, kernel_size, stride=None, padding=0, *, ceil_mode=False, out=None, isa=None,
                   threads=None) -> np.ndarray:
    """Max pooling of packed binary activations (N, H, W, W64) uint64 -> (N, OH, OW, W64).

    max over +-1 values is -1 only if every tap is -1, and bit 1 means -1, so the result is the
    bitwise AND of the in-bounds taps (padded taps are ignored). Channel padding bits stay 0.
    Max pooling commutes with sign, so it runs after BN+sign on bits (BinaryNet).
    """
    return _maxpool(engine.maxpool2d_bits, np.uint64, x, kernel_size, stride, padding, ceil_mode, out, isa, threads)


def maxpool2d_int8(x: np.ndarray, kernel_size, stride=None, padding=0, *, ceil_mode=False, out=None, isa=None,
                   threads=None) -> np.ndarray:
    """Max pooling of int8 NHWC (padded taps ignored), like ``torch.nn.MaxPool2d``."""
    return _maxpool(engine.maxpool2d_int8, np.int8, x, kernel_size, stride, padding, ceil_mode, out, isa, threads)


def maxpool2d_float(x: np.ndarray, kernel_size, stride=None, padding=0, *, ceil_mode=False, out=None, isa=None,
                    threads=None) -> np.ndarray:
    """Max pooling of float32 NHWC (padded taps ignored), for float-shortcut stems. Each tap is
    folded in window order as ``acc = acc if acc > t else t`` from -inf (the ``vmaxps`` rule,
    identical on every ISA); unlike PyTorch, a NaN input is not guaranteed to propagate."""
    return _maxpool(engine.maxpool2d_float, np.float32, x, kernel_size, stride, padding, ceil_mode, out, isa, threads)


def avgpool2d_int8(x: np.ndarray, kernel_size, stride=None, padding=0, *,
                   count_include_pad: bool = True, ceil_mode=False, out=None, isa=None, threads=None) -> np.ndarray:
    """Average pooling of int8 NHWC on the same scale: with s the exact sum of the in-bounds
    taps and d = kh*kw (``count_include_pad``) or the number of in-bounds taps,
    ``q = clamp(floor((2s + d) / (2d)), -127, 127)`` = round(s/d) with halves rounded UP
    (the rounding of the int8 output stage; docs/format.md §6)."""
    geo, shape = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    out = _out(out, shape, np.int8, x)
    engine.avgpool2d_int8(x, out, *geo, bool(count_include_pad), ceil_mode=bool(ceil_mode),
                           isa=isa, threads=threads)
    return out


def avgpool2d_float(x: np.ndarray, kernel_size, stride=None, padding=0, *,
                    count_include_pad: bool = True, ceil_mode=False, out=None, isa=None,
                    threads=None) -> np.ndarray:
    """Average pooling of float32 NHWC (float-shortcut residual nets): in-bounds taps summed in
    window order from +0.0, then divided by float32(d); identical on every ISA."""
    geo, shape = _pool_geometry(x, kernel_size, stride, padding, ceil_mode)
    out = _out(out, shape, np.float32, x)
    engine.avgpool2d_float(x, out, *geo, bool(count_include_pad), ceil_mode=bool(ceil_mode),
                           isa=isa, threads=threads)
    return out


def _gap_shape(x):
    _array(x, "x")
    if x.ndim != 4:
        raise ValueError(f"x must be NHWC with 4 dimensions, got shape {x.shape}")
    return (x.shape[0], x.shape[3])


def global_avgpool_int8(x: np.ndarray, *, out=None, isa=None, threads=None) -> np.ndarray:
    """Global average pooling (N, H, W, C) int8 -> (N, C) int8, rounding as avgpool2d_int8
    with d = H*W."""
    out = _out(out, _gap_shape(x), np.int8, x)
    engine.global_avgpool_int8(x, out, isa=isa, threads=threads)
    return out


def global_avgpool_int8_float(x: np.ndarray, scale: float = 1.0, *, out=None, isa=None,
                              threads=None) -> np.ndarray:
    """Global average pooling (N, H, W, C) int8 -> (N, C) float32 for a float classifier head:
    ``float32(s) * float32(scale / (H*W))`` with s the exact integer sum (one rounding of the
    multiplier, one of the product). ``scale`` is the int8 tensor's scale."""
    if not np.isfinite(scale):
        raise ValueError(f"scale must be finite, got {scale}")
    out = _out(out, _gap_shape(x), np.float32, x)
    engine.global_avgpool_int8_float(x, out, float(scale), isa=isa, threads=threads)
    return out


def global_avgpool_float(x: np.ndarray, *, out=None, isa=None, threads=None) -> np.ndarray:
    """Global average pooling (N, H, W, C) float32 -> (N, C): pixels summed in row-major
    order from +0.0, divided by float32(H*W)."""
    out = _out(out, _gap_shape(x), np.float32, x)
    engine.global_avgpool_float(x, out, isa=isa, threads=threads)
    return out


def add_int8_params(scale_a: float, scale_b: float, scale_out: float,
                    shift: int | None = None) -> tuple[int, int, int]:
    """Fixed-point multipliers of an int8 residual add: ``(ma, mb, shift)`` with
    ``ma = round(scale_a / scale_out * 2^shift)`` (likewise mb). Without ``shift``, the largest
    shift <= 31 that keeps ``128*(|ma| + |mb|) + 2^(shift-1) < 2^31`` (the engine's exact
    int32 fast path; the int64 path handles any int32 multipliers)."""
    ra, rb = scale_a / scale_out, scale_b / scale_out
    if not all(math.isfinite(r) and r >= 0 for r in (ra, rb)) or scale_out <= 0:
        raise ValueError("scales must be finite and positive")
    if shift is None:
        shift = 1
        for s in range(31, 0, -1):
            ma, mb = round(ra * 2**s), round(rb * 2**s)
            if 128 * (ma + mb) + 2 ** (s - 1) < 2**31:
                shift = s
                break
    if not 1 <= shift <= 31:
        raise ValueError(f"shift must be in [1, 31], got {shift}")
    ma, mb = round(ra * 2**shift), round(rb * 2**shift)
    if max(ma, mb) > _INT32[1]:
        raise ValueError("multiplier does not fit int32; use a smaller shift")
    return int(ma), int(mb), int(shift)


def add_int8(a: np.ndarray, b: np.ndarray, ma: int, mb: int, shift: int, *, out=None, isa=None,
             threads=None) -> np.ndarray:
    """int8 residual add with rescaling and saturation (BNN-Clip shortcuts), any shape:
    ``q = clamp((a*ma + b*mb + 2^(shift-1)) >> shift, -127, 127)``, exact int64 math,
    arithmetic shift (halves round up), ``1 <= shift <= 31``, int32 ``ma``/``mb``; see
    :func:`add_int8_params`. Equal scales: ``ma = mb = 2^shift`` is the saturating sum."""
    _array(a, "a"), _array(b, "b")
    for v, name in ((ma, "ma"), (mb, "mb")):
        if not isinstance(v, (int, np.integer)) or not _INT32[0] <= int(v) <= _INT32[1]:
            raise ValueError(f"{name} must be an int32 integer, got {v!r}")
    if not isinstance(shift, (int, np.integer)):
        raise ValueError(f"shift must be an integer, got {shift!r}")
    out = _out(out, a.shape, np.int8)
    engine.add_int8(a, b, out, int(ma), int(mb), int(shift), isa=isa, threads=threads)
    return out


def add_float(a: np.ndarray, b: np.ndarray, *, out=None, isa=None, threads=None) -> np.ndarray:
    """float32 elementwise ``a + b`` (float-shortcut variant of residual nets)."""
    _array(a, "a"), _array(b, "b")
    out = _out(out, a.shape, np.float32)
    engine.add_float(a, b, out, isa=isa, threads=threads)
    return out


def _stage_kwargs(output, threshold, direction, multiplier, bias, shift, scale):
    if output not in ("int32", "bits", "int8", "float"):
        raise ValueError(f"output must be 'int32', 'bits', 'int8' or 'float', got {output!r}")
    kw = {
        "threshold": _int_param(threshold, "threshold"),
        "direction": _int_param(direction, "direction", np.int8),
        "multiplier": _int_param(multiplier, "multiplier"),
        "scale": _float_param(scale, "scale"),
        "shift": None if shift is None else int(shift),
    }
    if bias is not None:
        kw["bias"] = _float_param(bias, "bias") if output == "float" else _int_param(bias, "bias")
    else:
        kw["bias"] = None
    return kw


def _zero_point(zero_point, cin):
    if np.ndim(zero_point) == 0:
        zero_point = np.full(cin, zero_point)  # one zero point for every input channel
    return _int_param(zero_point, "zero_point")


def _stage_out_shape(lead, cout, output):
    last = -(-cout // 64) if output == "bits" else cout
    dtype = {"int32": np.int32, "bits": np.uint64, "int8": np.int8, "float": np.float32}[output]
    return tuple(lead) + (last,), dtype


def conv2d_int8(x: np.ndarray, weight: np.ndarray, *, stride=1, padding=0, zero_point=0,
                output: str = "int32", threshold=None, direction=None, multiplier=None,
                bias=None, shift=None, scale=None, out=None, isa=None,
                threads=None, padding_end=None) -> np.ndarray:
    """int8 convolution (first layer on uint8 images; 1x1 int8 downsample shortcuts).

    ``padding`` (int or (h, w)): rows / columns before the input (top, left); ``padding_end``:
    after it (bottom, right; default ``padding``; Keras "same" puts the odd one there).

    ``x``: (N, H, W, Cin) uint8 or int8; ``weight``: (Cout, KH, KW, Cin) int8 (OHWI);
    ``zero_point``: int or (Cin,) ints in [-255, 255], the value meaning real 0, also used
    as the padding value. Exact int32 accumulation:
    ``y = sum_{in-bounds taps, c} (x - zp[c]) * w``; a ValueError is raised when
    ``K * max|x - zp| * 128`` could exceed int32 (K = KH*KW*Cin).
    ``output`` (docs/format.md §5): "int32" (y), "bits" (``threshold``/``direction`` ->
    (N, OH, OW, ceil(Cout/64)) uint64), "int8" (``multiplier``, int32 ``bias``, ``shift``:
    ``clamp((y*M + B + 2^(S-1)) >> S, -127, 127)``), "float" (``scale``, float ``bias``:
    ``float32(y) * scale + bias``). AVX2 widens to int16 and uses vpmaddwd (exact; vpmaddubsw
    would saturate); avxvnni and avx512 use VNNI vpdpbusd (ymm / zmm). A network prepares the
    weights once per ISA instead (``engine.prepare_conv8`` + ``engine.conv2d_int8_prepared``).
    """
    _array(x, "x"), _array(weight, "weight")
    if x.ndim != 4 or weight.ndim != 4:
        raise ValueError(f"x must be NHWC and weight OHWI (4 dimensions each), got {x.shape} "
                         f"and {weight.shape}")
    (sh, sw), (ph, pw), (eh, ew), (oh, ow) = _conv_geometry(x, weight.shape[1:3], stride, padding, padding_end)
    kw = _stage_kwargs(output, threshold, direction, multiplier, bias, shift, scale)
    shape, dtype = _stage_out_shape((x.shape[0], oh, ow), weight.shape[0], output)
    out = _out(out, shape, dtype, x, weight)
    engine.conv2d_int8(x, weight, out, sh, sw, ph, pw, _zero_point(zero_point, x.shape[3]),
                       output, **kw, isa=isa, threads=threads, ph_end=eh, pw_end=ew)
    return out


def _conv_geometry(x, kernel, stride, padding, padding_end):
    """((sh, sw), (ph, pw), (eh, ew), (oh, ow)) of a convolution of the NHWC ``x`` with a
    ``kernel`` = (KH, KW) window: ``padding`` before the input, ``padding_end`` after it (default
    ``padding``), checked."""
    sh, sw = _pair(stride, "stride")
    ph, pw = _pair(padding, "padding")
    eh, ew = (ph, pw) if padding_end is None else _pair(padding_end, "padding_end")
    if min(sh, sw) < 1 or min(ph, pw, eh, ew) < 0:
        raise ValueError("stride must be >= 1 and padding >= 0")
    oh = output_size(x.shape[1], kernel[0], sh, ph, padding_end=eh)
    ow = output_size(x.shape[2], kernel[1], sw, pw, padding_end=ew)
    if oh < 1 or ow < 1:
        raise ValueError(f"kernel {tuple(kernel)} does not fit the padded input {x.shape[1:3]}")
    return (sh, sw), (ph, pw), (eh, ew), (oh, ow)


def _dw_geometry(x, weight, stride, padding, padding_end):
    """:func:`_conv_geometry` of a depthwise call: x NHWC, weight (KH, KW, C)."""
    if x.ndim != 4 or weight.ndim != 3:
        raise ValueError(f"x must be NHWC (4 dimensions) and weight (KH, KW, C) (3 dimensions), got "
                         f"{x.shape} and {weight.shape}")
    return _conv_geometry(x, weight.shape[:2], stride, padding, padding_end)


def dwconv2d_int8(x: np.ndarray, weight: np.ndarray, *, stride=1, padding=0, output: str = "int32",
                  threshold=None, direction=None, multiplier=None, bias=None, shift=None,
                  scale=None, out=None, isa=None, threads=None, padding_end=None) -> np.ndarray:
    """int8 depthwise convolution (depth multiplier 1): one KxK filter per channel.

    ``x``: (N, H, W, C) int8 whose 0 is real 0 (the padding value); ``weight``: (KH, KW, C)
    int8. Exact int32 accumulation ``y[c] = sum_{in-bounds taps} x[c] * w[i, j, c]``, then the
    output stage of :func:`conv2d_int8`. ``padding`` before the input (top, left),
    ``padding_end`` after it (bottom, right; default ``padding``).
    """
    _array(x, "x"), _array(weight, "weight")
    (sh, sw), (ph, pw), (eh, ew), (oh, ow) = _dw_geometry(x, weight, stride, padding, padding_end)
    kw = _stage_kwargs(output, threshold, direction, multiplier, bias, shift, scale)
    shape, dtype = _stage_out_shape((x.shape[0], oh, ow), x.shape[3], output)
    out = _out(out, shape, dtype, x, weight)
    engine.dwconv2d_int8(x, weight, out, sh, sw, ph, pw, output, **kw, isa=isa, threads=threads, ph_end=eh,
                         pw_end=ew)
    return out


def dwconv2d_float(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, *, stride=1, padding=0, out=None,
                   isa=None, threads=None, padding_end=None) -> np.ndarray:
    """float32 depthwise convolution (depth multiplier 1), zero padding: ``x`` (N, H, W, C),
    ``weight`` (KH, KW, C), ``bias`` (C,). Per output: ``acc = +0.0``, then ``acc = acc +
    float32(x * w)`` over the in-bounds taps in row-major order (no FMA), then ``acc + bias``: the
    same floats on every ISA. ``padding_end``: padding after the input (default ``padding``)."""
    _array(x, "x"), _array(weight, "weight"), _array(bias, "bias")
    (sh, sw), (ph, pw), (eh, ew), (oh, ow) = _dw_geometry(x, weight, stride, padding, padding_end)
    out = _out(out, (x.shape[0], oh, ow, x.shape[3]), np.float32, x, weight, bias)
    engine.dwconv2d_float(x, weight, bias, out, sh, sw, ph, pw, isa=isa, threads=threads, ph_end=eh, pw_end=ew)
    return out


def dense_int8(x: np.ndarray, weight: np.ndarray, *, zero_point=0, output: str = "int32",
               threshold=None, direction=None, multiplier=None, bias=None, shift=None,
               scale=None, out=None, isa=None, threads=None) -> np.ndarray:
    """int8 dense (classifier on int8 features): (N, in) int8/uint8 x (out, in) int8 -> int32
    ``y = (x - zp) @ weight.T``, then the output stage of :func:`conv2d_int8` (same kernel:
    a 1x1 convolution on a 1x1 image)."""
    _array(x, "x"), _array(weight, "weight")
    if x.ndim != 2 or weight.ndim != 2:
        raise ValueError(f"x must be (N, in) and weight (out, in), got {x.shape} and {weight.shape}")
    kw = _stage_kwargs(output, threshold, direction, multiplier, bias, shift, scale)
    shape, dtype = _stage_out_shape((x.shape[0],), weight.shape[0], output)
    out = _out(out, shape, dtype, x, weight)
    engine.dense_int8(x, weight, out, _zero_point(zero_point, x.shape[1]), output, **kw,
                      isa=isa, threads=threads)
    return out


def dense_float(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None, *, out=None,
                isa=None, threads=None) -> np.ndarray:
    """float32 classifier ``x @ weight.T + bias``: (N, in) x (out, in) -> (N, out).

    Summation order (the contract, identical on every ISA): 8 partial sums over ``i % 8``
    (each product rounded to float32, then added; no FMA), combined as
    ``((a0+a4)+(a2+a6)) + ((a1+a5)+(a3+a7))``, then ``+ bias``. Equals PyTorch's Linear to
    float32 rounding (PyTorch sums in another order)."""
    _array(x, "x"), _array(weight, "weight")
    if bias is not None:
        _array(bias, "bias")
    if x.ndim != 2 or weight.ndim != 2:
        raise ValueError(f"x must be (N, in) and weight (out, in), got {x.shape} and {weight.shape}")
    out = _out(out, (x.shape[0], weight.shape[0]), np.float32, x, weight)
    engine.dense_float(x, weight, bias, out, isa=isa, threads=threads)
    return out


def affine_float(x: np.ndarray, scale: np.ndarray, bias: np.ndarray, *, out=None, isa=None,
                 threads=None) -> np.ndarray:
    """float32 per-channel affine map ``float32(x * scale) + bias`` over (pixels, channels):
    the product rounded, then the sum (no FMA), identical on every ISA (the ``affine_f32`` op)."""
    _array(x, "x"), _array(scale, "scale"), _array(bias, "bias")
    if x.ndim != 2:
        raise ValueError(f"x must be (pixels, channels), got shape {x.shape}")
    out = _out(out, x.shape, np.float32, x, scale)
    engine.affine_float(x, scale, bias, out, isa=isa, threads=threads)
    return out
