"""``Session``: run a ``.onebit`` model on the C++ engine (NumPy in, NumPy out; no torch).

    sess = onebit.runtime.Session("model.onebit", threads=2, isa="avx2")
    logits = sess.run(images_u8_nhwc)          # (N, H, W, C) uint8 -> (N, classes) float32

Inputs (docs/format.md §7.2): uint8 NHWC images as the dataset stores them (the normalization
is folded into the first layer), or float32 NCHW tensors normalized ``(u/255 - mean)/std`` (as
``onebit.data.make_loader`` yields them), which are mapped back to uint8 by rounding. Anything
else raises ``ValueError`` naming the expected shape and dtype.

The file is validated once at load (``onebit.FormatError``). Buffers are planned once per batch
size: every op writes into a preallocated output array (kernels take ``out=``), so a run
allocates only the input conversion (if any) and the returned logits.
"""
from __future__ import annotations

import os

import numpy as np

from onebit.bits import num_words
from onebit.runtime import format as fmt
from onebit.runtime.engine import engine as _e

_STAGE_NAMES = {"bits": "bits", "int8": "int8", "f32": "float"}
_MAX_PLANS = 4


class Session:
    """A loaded, validated model bound to an ISA and a thread count.

    Args:
        path: a ``.onebit`` file (or its bytes).
        threads: worker threads per kernel (default: the engine default, all cores).
        isa: ``"scalar"``, ``"avx2"``, ``"avxvnni"``, ``"avx512"`` ... (default: the best the CPU has, or
            ``ONEBIT_ISA``). ``ValueError`` if the CPU or build lacks it.
    """

    def __init__(self, path, threads: int | None = None, isa: str | None = None):
        if isinstance(path, (bytes, bytearray, memoryview)):
            self.model = fmt.loads(path)
            self.path = None
        else:
            self.model = fmt.load(path)
            self.path = os.fspath(path)
        supported = list(_e.supported_isas())
        if isa is not None and isa not in supported:
            raise ValueError(f"ISA {isa!r} is not available on this CPU/build (available: {supported})")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        self.isa = isa or _e.default_isa()
        self.threads = threads or _e.default_num_threads()
        spec = self.model.input_spec
        self.input_shape = tuple(int(v) for v in spec["shape"])  # (H, W, C)
        self.mean = np.asarray(spec["mean"], np.float64)
        self.std = np.asarray(spec["std"], np.float64)
        self.num_classes = int(self.model.output_spec["shape"][0])
        self._steps = [self._compile(op) for op in self.model.ops]
        self._plans: dict[int, dict] = {}

    # ------------------------------------------------------------------------------- public
    def __repr__(self) -> str:
        return (f"Session({self.path or '<bytes>'!r}, ops={len(self.model.ops)}, input={self.input_shape} "
                f"uint8 NHWC, isa={self.isa!r}, threads={self.threads})")

    def run(self, x) -> np.ndarray:
        """Logits ``(N, classes)`` float32 for a batch of uint8 NHWC images or float32 NCHW tensors."""
        u = self.to_uint8(x)
        return self._execute(u)[self.model.output_name].copy()

    def run_values(self, x) -> dict:
        """Every intermediate value of one run (copies), keyed by value name: for debugging/tests.

        Uses a plan without buffer sharing, so that no value is overwritten by a later one.
        """
        u = self.to_uint8(x)
        return {k: v.copy() for k, v in self._execute(u, share=False).items()}

    def predict(self, images, batch_size: int = 256, progress=None) -> np.ndarray:
        """Argmax class of every image (uint8 NHWC or float32 NCHW), run in batches."""
        n = len(images)
        out = np.empty(n, np.int64)
        for i in range(0, n, batch_size):
            out[i:i + batch_size] = self.run(images[i:i + batch_size]).argmax(axis=1)
            if progress is not None:
                progress(min(batch_size, n - i))
        return out

    def evaluate(self, images, labels, batch_size: int = 256, progress=None) -> float:
        """Top-1 accuracy on ``(images, labels)``."""
        labels = np.asarray(labels)
        if len(labels) != len(images) or len(labels) == 0:
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        return float((self.predict(images, batch_size, progress) == labels).mean())

    def profile(self, x, repeats: int = 20) -> list[dict]:
        """Median milliseconds of each op on input ``x`` (buffers reused as in :meth:`run`)."""
        import statistics

        times = self.op_times(x, repeats)
        return [{"op": op.name, "type": op.type, "output": self.model.values[op.output].kind,
                 "median_ms": statistics.median(times[op.name])} for op in self.model.ops]

    def op_times(self, x, repeats: int = 20, warmup: int = 1) -> dict[str, list[float]]:
        """Every sample: ``{op name: [ms per round]}``; each round runs the ops once in graph
        order (the caches hold what the previous op left, as in :meth:`run`)."""
        import time

        u = self.to_uint8(x)
        n = u.shape[0]
        bufs = self._buffers(n)
        for _ in range(warmup):
            self._execute(u)
        times = {op.name: [] for op in self.model.ops}
        for _ in range(repeats):
            env = {self.model.input_name: u}
            for op, step in zip(self.model.ops, self._steps):
                xin = env[op.inputs[0]]
                t0 = time.perf_counter()
                if op.type == "flatten":
                    env[op.output] = xin.reshape(n, -1)
                elif op.type == "add":
                    step(xin, env[op.inputs[1]], bufs[op.output])
                    env[op.output] = bufs[op.output]
                else:
                    step(xin, bufs[op.output])
                    env[op.output] = bufs[op.output]
                times[op.name].append((time.perf_counter() - t0) * 1e3)
        return times

    def to_uint8(self, x) -> np.ndarray:
        """Validate the input and return the uint8 NHWC batch the engine reads."""
        h, w, c = self.input_shape
        if not isinstance(x, np.ndarray):
            if type(x).__module__.startswith("torch"):
                raise ValueError("Session.run takes NumPy arrays (convert a torch tensor with .numpy())")
            raise ValueError(f"input must be a NumPy array, got {type(x).__name__}")
        if x.dtype == np.uint8:
            if x.ndim == 3 and x.shape == (h, w, c):
                x = x[None]
            if x.ndim != 4 or x.shape[1:] != (h, w, c):
                hint = " (channels last: NHWC)" if x.ndim == 4 and x.shape[1] == c else ""
                raise ValueError(f"uint8 input must have shape (N, {h}, {w}, {c}) NHWC, got "
                                 f"{x.shape}{hint}")
            if x.shape[0] < 1:
                raise ValueError("input batch is empty")
            return np.ascontiguousarray(x)
        if x.dtype == np.float32:
            if x.ndim == 3 and x.shape == (c, h, w):
                x = x[None]
            if x.ndim != 4 or x.shape[1:] != (c, h, w):
                raise ValueError(f"float32 input must be normalized NCHW with shape (N, {c}, {h}, {w}), "
                                 f"got {x.shape}")
            if x.shape[0] < 1:
                raise ValueError("input batch is empty")
            if not np.isfinite(x).all():
                raise ValueError("float32 input contains NaN or infinity")
            u = (x.astype(np.float64) * self.std.reshape(1, -1, 1, 1) + self.mean.reshape(1, -1, 1, 1)) * 255.0
            u = np.clip(np.round(u), 0, 255).astype(np.uint8)
            return np.ascontiguousarray(u.transpose(0, 2, 3, 1))
        raise ValueError(f"input dtype must be uint8 (NHWC images) or float32 (normalized NCHW), "
                         f"got {x.dtype}")

    # ------------------------------------------------------------------------------- plan
    def _buffers(self, n: int, share: bool = True) -> dict:
        """Output buffer of every op for batch ``n``, allocated once and reused by later runs.

        With ``share`` a buffer is handed to a later op once every reader of its value has run
        (liveness over the op list; ``flatten`` outputs are views and keep their base alive), so
        memory is the peak of live values, not their sum.
        """
        key = (n, share)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.pop(next(iter(self._plans)))
            plan = _plan(self.model, n, share)
            self._plans[key] = plan
        return plan

    def _execute(self, u: np.ndarray, share: bool = True) -> dict:
        n = u.shape[0]
        bufs = self._buffers(n, share)
        env = {self.model.input_name: u}
        for op, step in zip(self.model.ops, self._steps):
            x = env[op.inputs[0]]
            if op.type == "flatten":
                env[op.output] = x.reshape(n, -1)
            elif op.type == "add":
                out = bufs[op.output]
                step(x, env[op.inputs[1]], out)
                env[op.output] = out
            else:
                out = bufs[op.output]
                step(x, out)
                env[op.output] = out
        return env

    def _prepared(self, w, in_channels: int, mask=None):
        """Binary weights re-laid out once for this session's ISA (not on every call); a pruned
        op's mask (docs/format.md §7.3; a compact ``weight_word_mask`` and kept-only weights
        ``weight_kept`` arrive expanded by the loader) is laid out with them for the masked kernel."""
        if mask is None:
            return _e.prepare_weights(w, in_channels=in_channels, isa=self.isa, threads=self.threads)
        return _e.prepare_weights(w, in_channels=in_channels, weight_mask=mask, isa=self.isa,
                                  threads=self.threads)

    def _compile(self, op):
        """A closure ``step(x, out)`` running one op on the engine with fixed parameters."""
        t = {role: self.model.tensors[name] for role, name in op.tensors.items()}
        a = op.attrs
        if "accumulator_bound" in a:
            # the loader proved K fits the recorded width; the engine must use at least that width
            k = a["accumulator_bound"]
            if k > 32767 and _e.accumulator_bits(k) < 32:
                raise fmt.FormatError(f"op {op.name!r}: the engine would accumulate K = {k} bits in "
                                      f"{_e.accumulator_bits(k)} bits")
        kw = {"isa": self.isa, "threads": self.threads}
        if "output" in a:
            stage = _stage_kwargs(a, t)
        if op.type in ("conv2d_u8", "conv2d_i8"):
            (sh, sw), (ph, pw) = a["stride"], a["padding"]
            # weights laid out once for this session's ISA (with the zero points and input type)
            w8 = _e.prepare_conv8(t["weight"], zero_point=t.get("zero_point"),
                                  signed=op.type == "conv2d_i8", isa=self.isa, threads=self.threads)

            def step(x, out):
                _e.conv2d_int8_prepared(x, w8, out, sh, sw, ph, pw, **stage, threads=self.threads)
        elif op.type == "conv1x1_f32":
            w, b, cin, cout = t["weight"], t["bias"], a["in_channels"], a["out_channels"]

            def step(x, out):  # a 1x1 conv is a dense layer over the N*H*W pixels (views, no copy)
                _e.dense_float(x.reshape(-1, cin), w, b, out.reshape(-1, cout), **kw)
        elif op.type == "avgpool2d":
            (kh, kw_), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
            cip, ceil = a["count_include_pad"], a.get("ceil_mode", False)
            fn = _e.avgpool2d_int8 if self.model.values[op.inputs[0]].kind == "int8" else _e.avgpool2d_float

            def step(x, out):
                fn(x, out, kh, kw_, sh, sw, ph, pw, cip, ceil_mode=ceil, **kw)
        elif op.type == "global_avgpool":
            xv = self.model.values[op.inputs[0]]
            if xv.kind == "int8":
                scale = float(xv.scale)

                def step(x, out):
                    _e.global_avgpool_int8_float(x, out, scale, **kw)
            else:
                def step(x, out):
                    _e.global_avgpool_float(x, out, **kw)
        elif op.type == "add":
            if self.model.values[op.inputs[0]].kind == "int8":
                ma, mb, sh_ = a["ma"], a["mb"], a["shift"]

                def step(x, y, out):
                    _e.add_int8(x, y, out, ma, mb, sh_, **kw)
            else:
                def step(x, y, out):
                    _e.add_float(x, y, out, **kw)
        elif op.type == "bconv2d":
            stride, pad = _square(op, "stride"), _square(op, "padding")
            cin = a["in_channels"]
            w = self._prepared(self.model.weight(op), cin, self.model.weight_mask(op))

            def step(x, out):
                _e.bconv2d(x, w, in_channels=cin, stride=stride, padding=pad, out=out, **stage, **kw)
        elif op.type == "bdense":
            cin = a["in_features"]
            w = self._prepared(self.model.weight(op), cin, self.model.weight_mask(op))

            def step(x, out):
                _e.bdense(x, w, in_features=cin, out=out, **stage, **kw)
        elif op.type == "maxpool2d":
            (kh, kw_), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
            kind, ceil = self.model.values[op.inputs[0]].kind, a.get("ceil_mode", False)
            fn = {"bits": _e.maxpool2d_bits, "int8": _e.maxpool2d_int8, "f32": _e.maxpool2d_float}[kind]

            def step(x, out):
                fn(x, out, kh, kw_, sh, sw, ph, pw, ceil_mode=ceil, **kw)
        elif op.type == "bitpack":

            def step(x, out):
                _e.bitpack(x, out=out, **kw)
        elif op.type == "dequantize":
            scale = np.float32(self.model.values[op.inputs[0]].scale)

            def step(x, out):
                np.copyto(out, x, casting="unsafe")  # int8 -> float32 is exact
                np.multiply(out, scale, out=out)  # one float32 rounding, as the simulation
        elif op.type == "clamp_f32":
            lo, hi = np.float32(a["min"]), np.float32(a["max"])

            def step(x, out):
                np.clip(x, lo, hi, out=out)
        elif op.type == "flatten":
            step = None  # _execute reshapes the input buffer (NHWC order, no copy)
        elif op.type == "dense_f32":
            w, b = t["weight"], t["bias"]

            def step(x, out):
                _e.dense_float(x, w, b, out, **kw)
        else:  # the loader rejects unknown types; a new op type must be added here
            raise fmt.FormatError(f"op {op.name!r}: type {op.type!r} has no engine implementation")
        return step


def _plan(model, n: int, share: bool) -> dict:
    ops = model.ops
    base = {model.input_name: model.input_name}
    for op in ops:  # flatten is a view: its value lives in its input's buffer
        base[op.output] = base[op.inputs[0]] if op.type == "flatten" else op.output
    last = {}
    for i, op in enumerate(ops):
        for name in op.inputs:
            last[base[name]] = i
    last[base[model.output_name]] = len(ops)
    plan, free, live = {}, [], []  # live: (value name, buffer) still to be read
    for i, op in enumerate(ops):
        if op.type == "flatten":
            continue
        if share:  # values whose last reader ran before op i give their buffer back
            still = []
            for name, buf in live:
                if last.get(name, -1) < i:
                    free.append(buf)
                else:
                    still.append((name, buf))
            live = still
        dtype, shape = _alloc_spec(n, model.values[op.output])
        buf = next((b for b in free if b.dtype == dtype and b.shape == shape), None)
        if buf is None:
            buf = np.zeros(shape, dtype)
        else:
            free = [b for b in free if b is not buf]
        plan[op.output] = buf
        live.append((op.output, buf))
    return plan


def _square(op, key):
    a, b = op.attrs[key]
    if a != b:
        raise fmt.FormatError(f"op {op.name!r} ({op.type}): the engine's binary convolution needs "
                              f"the same {key} on both axes, got {[a, b]}")
    return a


def _stage_kwargs(a: dict, t: dict) -> dict:
    out = a["output"]
    if out == "bits":
        return {"output": "bits", "threshold": t["threshold"], "direction": t["direction"]}
    if out == "int8":
        return {"output": "int8", "multiplier": t["multiplier"], "bias": t["bias"], "shift": a["shift"]}
    return {"output": "float", "scale": t["scale"], "bias": t["bias"]}


def _alloc_spec(n: int, v) -> tuple:
    """(dtype, shape) of the batch-``n`` buffer of value ``v`` (bits: packed uint64 words)."""
    if v.kind == "bits":
        return np.dtype(np.uint64), (n,) + tuple(v.shape[:-1]) + (num_words(v.shape[-1]),)
    dtype = {"int8": np.int8, "f32": np.float32, "u8": np.uint8}[v.kind]
    return np.dtype(dtype), (n,) + tuple(v.shape)
