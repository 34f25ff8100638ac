"""Binary conv layer benchmarks (``onebit bench --layer``, ``benchmarks/bench_layers.py``).

One binary conv layer (batch 1, 'same' padding) per ISA, thread count and pipeline: median ms,
G bit-MACs/s and the fraction of the XOR+popcount peak (``onebit.runtime.kernels.popcount_peak``).
Pipelines:

- ``bits-bits``: packed bits in, conv, BN+sign threshold, packed bits out (native BNN layer);
- ``bits-int8``: packed bits in, conv, BN+clip fixed point, int8 out (BNN-Clip data flow);
- ``float-float``: float32 NHWC in, bitpack, conv, BN-fused float32 out (like-for-like with LCE).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from onebit.bench.timing import loadavg, timed
from onebit.runtime.geometry import output_size
from onebit.runtime.provenance import cpu_model, git_commit

PIPELINES = ("bits-bits", "bits-int8", "float-float")
REFERENCE_LAYERS = ("56x56x64-64", "28x28x128-128", "14x14x256-256", "7x7x512-512")
_SPEC = re.compile(r"^(\d+)x(\d+)x(\d+)-(\d+)((?:,[ks]=\d+)*)$")


@dataclass(frozen=True)
class LayerSpec:
    """A square-kernel binary conv layer, batch 1, 'same' padding ((k-1)//2)."""

    h: int
    w: int
    cin: int
    cout: int
    k: int = 3
    s: int = 1

    @property
    def name(self) -> str:
        return f"{self.h}x{self.w}x{self.cin}-{self.cout}"

    @property
    def label(self) -> str:
        return self.name if (self.k, self.s) == (3, 1) else f"{self.name},k={self.k},s={self.s}"

    @property
    def pad(self) -> int:
        return (self.k - 1) // 2

    @property
    def out_hw(self) -> tuple[int, int]:
        return output_size(self.h, self.k, self.s, self.pad), output_size(self.w, self.k, self.s, self.pad)

    @property
    def bitmacs(self) -> int:
        """Nominal bit-MACs: OH*OW*Cout*K*K*Cin (every tap counted, as the peers count)."""
        oh, ow = self.out_hw
        return oh * ow * self.cout * self.k * self.k * self.cin


def parse_layer(text: str) -> LayerSpec:
    """Parse ``HxWxCin-Cout[,k=K][,s=S]`` (odd K; defaults k=3, s=1)."""
    m = _SPEC.match(text.strip().replace(" ", ""))
    if not m:
        raise ValueError(f"layer spec {text!r} is not HxWxCin-Cout[,k=K][,s=S] (e.g. 56x56x64-64,k=3,s=1)")
    h, w, cin, cout = (int(m.group(i)) for i in range(1, 5))
    opts = dict(o.split("=") for o in m.group(5).split(",") if o)
    k, s = int(opts.get("k", 3)), int(opts.get("s", 1))
    if min(h, w, cin, cout, k, s) < 1 or k % 2 == 0:
        raise ValueError(f"layer spec {text!r}: sizes must be >= 1 and k odd")
    return LayerSpec(h, w, cin, cout, k, s)


def layer_workload(spec: LayerSpec, seed: int = 0) -> dict:
    """Random inputs, packed weights and realistic folded-BN stage parameters for one layer."""
    from onebit import bits

    rng = np.random.default_rng(seed)
    k_bits = spec.k * spec.k * spec.cin
    x_float = rng.standard_normal((1, spec.h, spec.w, spec.cin)).astype(np.float32)
    return {
        "x_float": x_float,
        "x_bits": bits.pack(x_float),
        "w_bits": bits.pack(rng.standard_normal((spec.cout, spec.k, spec.k, spec.cin)).astype(np.float32)),
        # BN + sign: thresholds near 0 (sqrt(K) spread), mixed directions.
        "threshold": rng.integers(-int(k_bits**0.5), int(k_bits**0.5) + 1, size=spec.cout).astype(np.int32),
        "direction": rng.choice(np.array([-1, 1], np.int8), size=spec.cout),
        # BN + clip to int8 with S = 16: multiplier ~ 2^16 * 127 / (3 sqrt(K)).
        "multiplier": rng.integers(1, max(2, int(2**16 * 127 / (3 * k_bits**0.5))), size=spec.cout).astype(np.int32),
        "bias": rng.integers(-(2**16), 2**16, size=spec.cout).astype(np.int32),
        "shift": 16,
        "scale": (rng.random(spec.cout) * 0.1 + 0.01).astype(np.float32),
        "fbias": rng.standard_normal(spec.cout).astype(np.float32),
    }


def layer_runner(spec: LayerSpec, pipeline: str, isa: str, threads: int, work: dict, prepared: bool = True):
    """A zero-argument callable running one pipeline of the layer with preallocated outputs.

    ``prepared``: weights re-laid out once beforehand (``prepare_weights``, as a loaded model
    does); otherwise every call re-lays out the packed weights.
    """
    from onebit.runtime import kernels

    oh, ow = spec.out_hw
    conv = dict(in_channels=spec.cin, stride=spec.s, padding=spec.pad, isa=isa, threads=threads)
    x_bits, w_bits = work["x_bits"], work["w_bits"]
    if prepared:
        w_bits = kernels.prepare_weights(w_bits, in_channels=spec.cin, isa=isa)
    if pipeline == "bits-bits":
        out = np.empty((1, oh, ow, (spec.cout + 63) // 64), np.uint64)
        return lambda: kernels.bconv2d(x_bits, w_bits, output="bits", threshold=work["threshold"],
                                       direction=work["direction"], out=out, **conv)
    if pipeline == "bits-int8":
        out = np.empty((1, oh, ow, spec.cout), np.int8)
        return lambda: kernels.bconv2d(x_bits, w_bits, output="int8", multiplier=work["multiplier"],
                                       bias=work["bias"], shift=work["shift"], out=out, **conv)
    if pipeline == "float-float":
        packed = np.empty_like(x_bits)
        out = np.empty((1, oh, ow, spec.cout), np.float32)
        x_float = work["x_float"]

        def run():
            kernels.bitpack(x_float, isa=isa, threads=threads, out=packed)
            return kernels.bconv2d(packed, w_bits, output="float", scale=work["scale"], bias=work["fbias"],
                                   out=out, **conv)

        return run
    raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, got {pipeline!r}")


_PEAKS: dict[str, float] = {}


def peak_bitmacs_per_s(isa: str, seconds: float = 2.0) -> float:
    """Single-thread XOR+popcount peak of ``isa`` (measured once per process)."""
    from onebit.runtime import kernels

    if isa not in _PEAKS:
        _PEAKS[isa] = kernels.popcount_peak(isa, seconds)  # best short run within `seconds`
    return _PEAKS[isa]


def measure_layer(spec: LayerSpec, *, isa: str, threads: int, pipeline: str, repeats: int = 100,
                  warmup: int = 10, work: dict | None = None, commit: str | None = None,
                  cpu: str | None = None, prepared: bool = True) -> dict:
    """Time one (layer, ISA, threads, pipeline) and return a benchmark record.

    ``peak_fraction`` = achieved bit-MACs/s / (single-thread popcount peak x threads).
    """
    work = work if work is not None else layer_workload(spec)
    load = loadavg()
    med, best = timed(layer_runner(spec, pipeline, isa, threads, work, prepared), repeats, warmup)
    rate = spec.bitmacs / (med * 1e-3)
    return {
        "layer": spec.name, "kernel": spec.k, "stride": spec.s, "engine": "onebit", "isa": isa,
        "threads": threads, "pipeline": pipeline, "median_ms": round(med, 4), "min_ms": round(best, 4),
        "bitmacs": spec.bitmacs, "gbitmacs_per_s": round(rate / 1e9, 2),
        "peak_fraction": round(rate / (peak_bitmacs_per_s(isa) * threads), 3),
        "peak_gbitmacs_per_s": round(peak_bitmacs_per_s(isa) / 1e9, 1),
        "weights": "prepared" if prepared else "packed", "repeats": repeats, "batch": 1,
        "loadavg_1m": load,
        "commit": commit or git_commit(), "cpu": cpu or cpu_model(),
    }


def measure_layers(specs, isas, threads, pipelines, *, repeats: int, warmup: int, prepared=(True,),
                   commit: str | None = None, cpu: str | None = None, progress=None) -> list[dict]:
    """:func:`measure_layer` over every (layer, ISA, threads, pipeline, prepared) combination,
    in that nesting order; ``progress()`` is called after each record."""
    records = []
    for spec in specs:
        work = layer_workload(spec)
        for isa in isas:
            for t in threads:
                for p in pipelines:
                    for prep in prepared:
                        records.append(measure_layer(spec, isa=isa, threads=t, pipeline=p, repeats=repeats,
                                                     warmup=warmup, work=work, commit=commit, cpu=cpu,
                                                     prepared=prep))
                        if progress is not None:
                            progress()
    return records


TABLE_COLUMNS = ["layer", "kernel", "stride", "engine", "isa", "threads", "pipeline", "weights", "median_ms",
                 "min_ms", "gbitmacs_per_s", "peak_fraction"]


