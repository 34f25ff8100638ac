"""Masked (pruned) binary conv layers on the engine: speed of each pruning granularity vs the dense
kernel, all variants timed in ONE run, interleaved round-robin (so machine load hits them alike).

Per layer (default: 56x56x64-64, 14x14x256-256 and the 16x16x256-256 CIFAR layer; 3x3, stride 1,
'same', batch 1; and the binary dense layers 8192-1024 at batch 1 (cifar-binarynet fc1) and
1024-1024 at batch 8; bits in -> bits out, prepared weights, 1 thread) the variants are:

- ``dense``: the unmasked kernel (no weight_mask);
- ``kept``: an all-ones mask (the masked kernel doing the dense work: its overhead);
- ``unstructured-40``: 40% of the weights pruned at random;
- ``word-40``: 40% of the 64-bit (tap, word) units pruned per output channel independently;
- ``block-20/40/60``: the same (tap, word) units pruned for 8 consecutive output channels.

Columns: median and min ms, ``speed_min`` / ``speed_median`` = dense time / variant time (> 1 is
faster), ``vs_kept_min`` = all-kept masked time / variant time (what pruning buys inside the
masked kernel), ``pruned`` = fraction of weights pruned, ``skipped`` = fraction of the kernel's 8-channel
(tap, word) entries with no kept weight (skipped), ``partial`` = fraction of entries that need the
mask AND. Every variant is checked against the scalar masked kernel before timing.

    .venv/bin/python benchmarks/bench_masked.py                       # table
    .venv/bin/python benchmarks/bench_masked.py --repeats 400 --json benchmarks/results/masked.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import machine, write_json  # noqa: E402

from onebit import bits  # noqa: E402
from onebit.bench.layers import layer_workload, parse_layer  # noqa: E402
from onebit.runtime import kernels  # noqa: E402
from onebit.runtime.engine import engine  # noqa: E402
from onebit.table import format_table  # noqa: E402

LAYERS = ("56x56x64-64", "14x14x256-256", "16x16x256-256")
DENSE = ("8192-1024", "1024-1024,b=8")  # cifar-binarynet fc1 at batch 1; a 1024-wide layer at batch 8
VARIANTS = ("dense", "kept", "unstructured-40", "word-40", "block-20", "block-40", "block-60")
COLUMNS = ["layer", "variant", "isa", "threads", "median_ms", "min_ms", "speed_median", "speed_min",
           "vs_kept_min", "pruned", "skipped", "partial"]


def make_mask(rng: np.random.Generator, variant: str, w_shape: tuple[int, ...], cin: int) -> np.ndarray | None:
    """The mask of one variant (None for the dense kernel); bit 1 = kept."""
    if variant == "dense":
        return None
    full = bits.pack(-np.ones(w_shape[:-1] + (cin,), dtype=np.int8))
    kind, _, pct = variant.partition("-")
    ratio = int(pct) / 100 if pct else 0.0
    if kind == "kept":
        return full
    if kind == "unstructured":
        keep = rng.random(w_shape[:-1] + (cin,)) >= ratio
        return bits.pack(np.where(keep, -1, 1).astype(np.int8))
    if kind not in ("word", "block"):
        raise ValueError(f"unknown variant {variant!r}")
    # word / block: exactly round(ratio * units) (tap, word) units pruned over the whole layer
    rows = w_shape[0] if kind == "word" else (w_shape[0] + 7) // 8
    units = int(np.prod(w_shape[1:]))
    keep = np.ones(rows * units, dtype=bool)
    keep[rng.choice(keep.size, int(round(ratio * keep.size)), replace=False)] = False
    keep = keep.reshape(rows, units)
    if kind == "block":  # the same units for the 8 channels of a block
        keep = np.repeat(keep, 8, axis=0)[:w_shape[0]]
    return full * keep.reshape(full.shape).astype(np.uint64)


def entry_stats(mask: np.ndarray | None, cin: int) -> tuple[float, float, float]:
    """(pruned weight fraction, skipped entry fraction, partial entry fraction) of the list kernel."""
    if mask is None:
        return 0.0, 0.0, 0.0
    cout = mask.shape[0]
    flat = mask.reshape(cout, -1)
    full = bits.pack(-np.ones(mask.shape[:-1] + (cin,), dtype=np.int8)).reshape(cout, -1)
    pad = (-cout) % 8
    flat = np.concatenate([flat, np.zeros((pad, flat.shape[1]), np.uint64)])
    is_full = np.concatenate([flat[:cout] == full, np.ones((pad, flat.shape[1]), bool)])
    blocks = flat.reshape(-1, 8, flat.shape[1])
    active = (blocks != 0).any(axis=1)
    partial = active & ~is_full.reshape(-1, 8, flat.shape[1]).all(axis=1)
    kept = bits.popcount(mask).sum() / (cout * (mask.size // cout // mask.shape[-1]) * cin)
    return round(1 - float(kept), 3), round(1 - float(active.mean()), 3), round(float(partial.mean()), 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default=";".join(LAYERS), help="HxWxCin-Cout[,k=K][,s=S] specs separated by ';'")
    ap.add_argument("--dense", default=";".join(DENSE),
                    help="binary dense layers CIN-COUT[,b=BATCH] separated by ';' ('' for none; default: %(default)s)")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list (default: %(default)s)")
    ap.add_argument("--isa", default=engine.default_isa(), help="ISA (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=200, help="timed calls per variant (default: %(default)s)")
    ap.add_argument("--json", default=None, metavar="PATH", help="write the records as JSON")
    args = ap.parse_args(argv)
    variants = args.variants.split(",")
    if "dense" not in variants:
        ap.error("--variants must include 'dense' (the speed ratios are relative to it)")

    m = machine()
    print(f"cpu: {m['cpu']} ({m['cores']} cores)   commit: {m['commit']}   isa: {args.isa}   threads: {args.threads}")
    records = []
    layers = [("conv", t) for t in args.layers.split(";") if t] + [("dense", t) for t in args.dense.split(";") if t]
    for kind, spec_text in layers:
        rng = np.random.default_rng(1)
        if kind == "conv":
            spec = parse_layer(spec_text)
            work = layer_workload(spec)
            oh, ow = spec.out_hw
            name, cin, k, stride = spec.name, spec.cin, spec.k, spec.s
            out_shape = (1, oh, ow, (spec.cout + 63) // 64)
            call = kernels.bconv2d
            args_ = dict(in_channels=cin, stride=stride, padding=spec.pad)
        else:  # dense "CIN-COUT[,b=N]"
            dims, _, b = spec_text.partition(",b=")
            cin, cout = (int(v) for v in dims.split("-"))
            batch = int(b or 1)
            work = {"x_bits": bits.pack(rng.standard_normal((batch, cin)).astype(np.float32)),
                    "w_bits": bits.pack(rng.standard_normal((cout, cin)).astype(np.float32)),
                    "threshold": rng.integers(-int(cin**0.5), int(cin**0.5) + 1, size=cout).astype(np.int32),
                    "direction": rng.choice(np.array([-1, 1], np.int8), size=cout)}
            name, k, stride = f"fc {cin}-{cout} b{batch}", 1, 1
            out_shape = (batch, (cout + 63) // 64)
            call = kernels.bdense
            args_ = dict(in_features=cin)
        w_shape = work["w_bits"].shape
        conv = dict(args_, output="bits", threshold=work["threshold"], direction=work["direction"], isa=args.isa,
                    threads=args.threads)
        runs, stats = {}, {}
        for v in variants:
            mask = make_mask(rng, v, w_shape, cin)
            w = work["w_bits"] if mask is None else work["w_bits"] & mask
            prep = kernels.prepare_weights(w, in_channels=cin, isa=args.isa, weight_mask=mask)
            out = np.empty(out_shape, np.uint64)
            ref = call(work["x_bits"], w, **{**conv, "isa": "scalar"}, weight_mask=mask)
            np.testing.assert_array_equal(call(work["x_bits"], prep, **conv), ref)
            runs[v] = (lambda p=prep, o=out, c=call, a=conv: c(work["x_bits"], p, out=o, **a))
            stats[v] = entry_stats(mask, cin)
        samples = {v: [] for v in variants}
        load0 = os.getloadavg()[0]
        for _ in range(10):  # warm-up
            for v in variants:
                runs[v]()
        for _ in range(args.repeats):  # round robin: drifts in machine load hit every variant alike
            for v in variants:
                t0 = time.perf_counter()
                runs[v]()
                samples[v].append(time.perf_counter() - t0)
        load1 = os.getloadavg()[0]
        med = {v: statistics.median(s) * 1e3 for v, s in samples.items()}
        best = {v: min(s) * 1e3 for v, s in samples.items()}
        for v in variants:
            pruned, skipped, partial = stats[v]
            records.append({
                "layer": name, "kernel": k, "stride": stride, "variant": v, "isa": args.isa,
                "threads": args.threads, "pipeline": "bits-bits", "weights": "prepared", "batch": out_shape[0],
                "median_ms": round(med[v], 4), "min_ms": round(best[v], 4),
                "speed_median": round(med["dense"] / med[v], 2), "speed_min": round(best["dense"] / best[v], 2),
                "vs_kept_min": round(best["kept"] / best[v], 2) if "kept" in best else None,
                "pruned": pruned, "skipped": skipped, "partial": partial, "repeats": args.repeats,
                "loadavg_1m": round((load0 + load1) / 2, 2), **m,
            })
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(format_table(records, COLUMNS + ["loadavg_1m"]))
    if args.json:
        write_json(records, args.json)
        print(f"wrote {len(records)} records to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
