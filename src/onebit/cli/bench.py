"""``onebit bench``: time binary conv layers (``--layer``) or a model file (``MODEL``).

``onebit bench --layer 56x56x64-64[,k=3,s=1]`` times one binary conv layer (batch 1, 'same'
padding) per ISA, thread count and pipeline, and prints median ms, G bit-MACs/s and the fraction
of the XOR+popcount peak (``onebit.runtime.kernels.popcount_peak``). Pipelines:

- ``bits-bits``: packed bits in, conv, BN+sign threshold, packed bits out (native BNN layer);
- ``bits-int8``: packed bits in, conv, BN+clip fixed point, int8 out (BNN-Clip data flow);
- ``float-float``: float32 NHWC in, bitpack, conv, BN-fused float32 out (like-for-like with LCE).

``onebit bench model.onebit`` hands over to ``onebit.runtime.bench.bench_model`` (the runtime's
model benchmark); ``--baseline other.onebit`` times a second file interleaved with it (pruned vs
unpruned in one run, ratios in the table and the records). The layer-timing functions here are also used by ``benchmarks/bench_layers.py``.
"""
from __future__ import annotations

import gc
import json
import os
import re
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np

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
        return ((self.h + 2 * self.pad - self.k) // self.s + 1, (self.w + 2 * self.pad - self.k) // self.s + 1)

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


def _timed(fn, repeats: int, warmup: int) -> tuple[float, float]:
    """(median_ms, min_ms) of fn() over ``repeats`` runs after ``warmup`` runs, GC off."""
    for _ in range(warmup):
        fn()
    samples = []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    finally:
        if gc_was:
            gc.enable()
    return statistics.median(samples) * 1e3, min(samples) * 1e3


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
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    med, best = _timed(layer_runner(spec, pipeline, isa, threads, work, prepared), repeats, warmup)
    rate = spec.bitmacs / (med * 1e-3)
    return {
        "layer": spec.name, "kernel": spec.k, "stride": spec.s, "engine": "onebit", "isa": isa,
        "threads": threads, "pipeline": pipeline, "median_ms": round(med, 4), "min_ms": round(best, 4),
        "bitmacs": spec.bitmacs, "gbitmacs_per_s": round(rate / 1e9, 2),
        "peak_fraction": round(rate / (peak_bitmacs_per_s(isa) * threads), 3),
        "peak_gbitmacs_per_s": round(peak_bitmacs_per_s(isa) / 1e9, 1),
        "weights": "prepared" if prepared else "packed", "repeats": repeats, "batch": 1,
        "loadavg_1m": None if load is None else round(load, 2),
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


def _split(value: str, allowed=None, what="value") -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    if allowed is not None:
        for v in items:
            if v not in allowed:
                raise click.BadParameter(f"{what} {v!r} is not one of {', '.join(allowed)}")
    return items


@click.command()
@click.argument("model", required=False)
@click.option("--layer", "layers", multiple=True, metavar="HxWxCin-Cout[,k=K,s=S]",
              help="Binary conv layer to time (repeatable); 'reference' = the four reference layers.")
@click.option("--isa", "isas", default=None, help="Comma list of ISAs (default: every ISA this CPU has).")
@click.option("--threads", default="1,2", show_default=True, help="Comma list of thread counts.")
@click.option("--pipeline", "pipelines", default=",".join(PIPELINES), show_default=True,
              help="Comma list of pipelines: " + ", ".join(PIPELINES) + ".")
@click.option("--repeats", type=click.IntRange(min=1), default=100, show_default=True, help="Timed runs.")
@click.option("--unprepared", is_flag=True,
              help="Re-lay out the packed weights inside every call (default: prepared once, as a model).")
@click.option("--batch", type=click.IntRange(min=1), default=1, show_default=True,
              help="Batch size of a MODEL benchmark.")
@click.option("--vs", default=None, metavar="lce,int8,float",
              help="Peers to time beside a MODEL in the same run (default: all when .peers-venv exists; "
                   "'none' for onebit only).")
@click.option("--baseline", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A second model file (e.g. the unpruned model) timed interleaved with MODEL in the same "
                   "run; the table and records give MODEL/BASELINE time ratios.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Write the records as a JSON list to this file.")
def command(model, layers, isas, threads, pipelines, repeats, unprepared, batch, vs, baseline, json_path):
    """Time binary conv layers (--layer) or a model file (MODEL) on the onebit engine."""
    from onebit.runtime.engine import engine
    from onebit.table import format_table

    supported = list(engine.supported_isas())
    isa_list = _split(isas, ("scalar", "avx2", "avxvnni", "avx512", "neon"), "ISA") if isas else supported
    for isa in isa_list:
        if isa not in supported:
            raise click.BadParameter(f"ISA {isa!r} is not supported by this CPU (supported: {', '.join(supported)})",
                                     param_hint="--isa")
    try:
        thread_list = [int(t) for t in _split(threads)]
    except ValueError as e:
        raise click.BadParameter(f"threads must be integers: {e}", param_hint="--threads") from e
    if not thread_list or min(thread_list) < 1:
        raise click.BadParameter("threads must be >= 1", param_hint="--threads")
    if model is not None:
        if layers:
            raise click.UsageError("give either MODEL or --layer, not both")
        try:
            from onebit.runtime.bench import bench_model
        except ImportError as e:
            raise click.ClickException(f"model benchmarks need onebit.runtime.bench.bench_model ({e})") from e
        from onebit.runtime.bench import VS_ENGINES

        peers = None if vs is None else (() if vs == "none" else tuple(_split(vs, tuple(VS_ENGINES), "peer")))
        try:
            records = bench_model(model, isas=isa_list, threads=thread_list, repeats=repeats, batch=batch,
                                  vs=peers, baseline=baseline)
        except (OSError, ValueError) as e:
            raise click.ClickException(str(e)) from e
    else:
        if batch != 1 or vs is not None or baseline is not None:
            raise click.UsageError("--batch, --vs and --baseline apply to a MODEL benchmark, not to --layer")
        if not layers:
            raise click.UsageError("give MODEL or at least one --layer HxWxCin-Cout[,k=K,s=S]")
        specs = []
        for text in layers:
            try:
                specs.extend(parse_layer(t) for t in (REFERENCE_LAYERS if text == "reference" else [text]))
            except ValueError as e:
                raise click.BadParameter(str(e), param_hint="--layer") from e
        pipe_list = _split(pipelines, PIPELINES, "pipeline")
        commit, cpu = git_commit(), cpu_model()
        click.echo(f"cpu: {cpu}   commit: {commit}   supported ISAs: {', '.join(supported)}", err=True)
        records = measure_layers(specs, isa_list, thread_list, pipe_list, repeats=repeats,
                                 warmup=max(2, repeats // 10), prepared=(not unprepared,), commit=commit, cpu=cpu)
    click.echo(format_table(records, [c for c in TABLE_COLUMNS if any(c in r for r in records)]))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(records, indent=1) + "\n")
        click.echo(f"wrote {len(records)} records to {json_path}", err=True)
