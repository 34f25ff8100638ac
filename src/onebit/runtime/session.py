"""``Session``: run a ``.onebit`` model on the C++ runtime (NumPy in, NumPy out; no torch).

    sess = onebit.runtime.Session("model.onebit", threads=2, isa="avx2")
    logits = sess.run(images_u8_nhwc)          # (N, H, W, C) uint8 -> (N, classes) float32

Inputs (docs/format.md §7.2): uint8 NHWC images as the dataset stores them (the normalization
is folded into the first layer), or float32 NCHW tensors normalized ``(u/255 - mean)/std`` (as
``onebit.data.make_loader`` yields them), which are mapped back to uint8 by rounding. Anything
else raises ``ValueError`` naming the expected shape and dtype.

The file is validated once at load by the C++ loader (``onebit.FormatError``), and run by the C++
executor (src/cpp/onebit/runtime): binary weights prepared once for the ISA, buffers planned once
per batch size with liveness-based reuse, the ops dispatched with no Python in the loop and the
GIL released, so several threads may run one or several Sessions at once. ``Session.model`` is the
file as the Python loader (:mod:`onebit.runtime.format`) reads it, for tools such as the
simulation; it is read on first use.
"""
from __future__ import annotations

import os
import statistics

import numpy as np

from onebit.runtime import format as fmt
from onebit.runtime.engine import engine as _e


class Session:
    """A loaded, validated model bound to an ISA and a thread count.

    Args:
        path: a ``.onebit`` file (or its bytes).
        threads: worker threads per kernel (default: the engine default, all cores).
        isa: ``"scalar"``, ``"avx2"``, ``"avxvnni"``, ``"avx512"`` ... (default: the best the CPU has, or
            ``ONEBIT_ISA``). ``ValueError`` if the CPU or build lacks it.
    """

    def __init__(self, path, threads: int | None = None, isa: str | None = None):
        supported = list(_e.supported_isas())
        if isa is not None and isa not in supported:
            raise ValueError(f"ISA {isa!r} is not available on this CPU/build (available: {supported})")
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise ValueError(f"threads must be a positive integer or None, got {threads!r}")
        self.isa = isa or _e.default_isa()
        self.threads = threads or _e.default_num_threads()
        if isinstance(path, (bytes, bytearray, memoryview)):
            self._bytes = bytes(path)
            self.path = None
            self._rt = _e.Runtime.open(self._bytes, isa=self.isa, threads=self.threads)
        else:
            self._bytes = None
            self.path = os.fspath(path)
            self._rt = _e.Runtime.open(self.path, isa=self.isa, threads=self.threads)
        self.input_shape = tuple(int(v) for v in self._rt.input_shape)  # (H, W, C)
        self.mean = np.asarray(self._rt.mean, np.float64)
        self.std = np.asarray(self._rt.std, np.float64)
        self.num_classes = int(self._rt.num_classes)
        self._ops = list(self._rt.ops)  # (name, type, output kind)
        self.fused_ops = {self._ops[i][0]: self._ops[h][0] for i, h in enumerate(self._rt.fused_into) if h >= 0}
        """``{op name: name of the conv whose output stage runs it}``: the int8 adds and bitpacks
        the executor fuses (only with ``ONEBIT_FUSION=1`` at load; default: none); same results as unfused."""
        self._model = None

    @property
    def model(self) -> fmt.ModelFile:
        """The validated file as :mod:`onebit.runtime.format` reads it (metadata, ops, values,
        tensors), read on first use."""
        if self._model is None:
            self._model = fmt.loads(self._bytes) if self._bytes is not None else fmt.load(self.path)
        return self._model

    # ------------------------------------------------------------------------------- public
    def __repr__(self) -> str:
        return (f"Session({self.path or '<bytes>'!r}, ops={len(self._ops)}, input={self.input_shape} "
                f"uint8 NHWC, isa={self.isa!r}, threads={self.threads})")

    def run(self, x) -> np.ndarray:
        """Logits ``(N, classes)`` float32 for a batch of uint8 NHWC images or float32 NCHW tensors."""
        if type(x) is np.ndarray:
            try:  # a uint8 (N, H, W, C) C-contiguous batch is what the engine reads: no check here
                return self._rt.run(x)
            except ValueError:
                pass  # anything else is converted, or rejected with to_uint8's message
        return self._rt.run(self.to_uint8(x))

    def run_values(self, x) -> dict:
        """Every value of one run (copies), keyed by value name: for debugging/tests.

        Uses a plan without buffer sharing, so that no value is overwritten by a later one.
        """
        return self._rt.run_values(self.to_uint8(x))

    def activation_bytes(self, n: int = 1) -> int:
        """Bytes of the activation buffers the executor plans for batch ``n`` (with reuse)."""
        return int(self._rt.activation_bytes(n))

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
        """Median milliseconds of each op on input ``x`` (measured in C++, buffers reused as in
        :meth:`run`); a fused op (``fused_into``: the op that runs it) counts 0 ms, its time is
        in its host's."""
        times = self.op_times(x, repeats)
        return [{"op": name, "type": typ, "output": kind, "median_ms": statistics.median(times[name]),
                 "fused_into": self.fused_ops.get(name)}
                for name, typ, kind in self._ops]

    def op_times(self, x, repeats: int = 20, warmup: int = 1) -> dict[str, list[float]]:
        """Every sample: ``{op name: [ms per round]}``; each round is one run of the whole graph,
        each op timed by the executor (the caches hold what the previous op left, as in :meth:`run`)."""
        u = self.to_uint8(x)
        for _ in range(warmup):
            self._rt.run(u)
        times = {name: [] for name, _, _ in self._ops}
        for _ in range(repeats):
            _, ms = self._rt.run_timed(u)
            for (name, _, _), t in zip(self._ops, ms):
                times[name].append(t)
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
