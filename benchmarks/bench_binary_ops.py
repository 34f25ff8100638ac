"""Per-op latency of whole networks, binary ops against the XOR+popcount peak (batch 1).

For each ``.onebit`` file: ``Session(path, threads, isa)``, one uint8 input, then ``--rounds``
rounds in which every op runs once in graph order (as in ``Session.run``: the caches hold what
the previous ops left) and is timed on its own; per op the minimum and median over the rounds,
for binary ops (``bconv2d``, ``bdense``) also G bit-MACs/s (from the minimum) and the fraction of
``popcount_peak`` measured in the same run; per model the sums of the per-op minima and medians
and the whole ``Session.run`` minimum and median. Prints a table, writes JSON records (``model``,
``op``, ``type``, ``isa``, ``threads``, ``batch``, ``min_ms``, ``median_ms``, ``bit_macs``,
``peak_fraction``, ``commit``, ``cpu``, ``load``, ``label``).

``--compare OLD.json NEW.json`` prints old/new ratios per op and per model from two such runs
(e.g. the previous commit's build and this one, run alternately by one shell command).

    .venv/bin/python benchmarks/make_zoo_models.py --out runs/zoo
    .venv/bin/python benchmarks/bench_binary_ops.py runs/zoo/cifar-binarynet.onebit --json out.json
    .venv/bin/python benchmarks/bench_binary_ops.py --compare old.json new.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import machine, write_json  # noqa: E402

import numpy as np  # noqa: E402

from onebit.runtime import Session, kernels  # noqa: E402
from onebit.runtime.engine import engine  # noqa: E402
from onebit.table import format_table  # noqa: E402

BINARY = ("bconv2d", "bdense")


def bit_macs(model, op, batch: int) -> int:
    """Dense binary MACs of one op at ``batch`` (0 for non-binary ops)."""
    a = op.attrs
    if op.type == "bconv2d":
        kh, kw = a["kernel"]
        oh, ow = model.values[op.output].shape[:2]
        return batch * oh * ow * a["out_channels"] * kh * kw * a["in_channels"]
    if op.type == "bdense":
        return batch * a["out_features"] * a["in_features"]
    return 0


def profile(path: str, threads: int, isa: str | None, rounds: int, batch: int, seed: int = 0):
    """(per-op rows, whole-run min/median ms) for one model file."""
    s = Session(path, threads=threads, isa=isa)
    x = np.random.default_rng(seed).integers(0, 256, (batch,) + tuple(s.input_shape), dtype=np.uint8)
    times = s.op_times(x, rounds, warmup=3)
    whole = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        s.run(x)
        whole.append((time.perf_counter() - t0) * 1e3)
    rows = [{"op": op.name, "type": op.type, "output": s.model.values[op.output].kind,
             "min_ms": min(times[op.name]), "median_ms": statistics.median(times[op.name]),
             "bit_macs": bit_macs(s.model, op, batch)} for op in s.model.ops]
    return rows, (min(whole), statistics.median(whole)), s.isa


def run(args) -> list[dict]:
    m = machine()
    isa = args.isa or None
    peak = kernels.popcount_peak(isa or engine.default_isa(), 1.0)
    load = os.getloadavg()[0]
    print(f"cpu: {m['cpu']}   commit: {m['commit']}   label: {args.label}   load: {load:.2f}")
    print(f"XOR+popcount peak, 1 thread: {peak / 1e9:.0f} G bit-MACs/s")
    records = []
    for path in args.models:
        name = Path(path).stem
        rows, (wmin, wmed), used_isa = profile(path, args.threads, isa, args.rounds, args.batch)
        base = dict(model=name, isa=used_isa, threads=args.threads, batch=args.batch, commit=m["commit"],
                    cpu=m["cpu"], load=round(os.getloadavg()[0], 2), label=args.label)
        for r in rows:
            rec = dict(base, **r)
            if r["bit_macs"]:
                rate = r["bit_macs"] / (r["min_ms"] * 1e-3)
                rec["gbitmacs_per_s"] = round(rate / 1e9, 1)
                rec["peak_fraction"] = round(rate / (peak * args.threads), 3)
            records.append(rec)
        binary = [r for r in rows if r["type"] in BINARY]
        records.append(dict(base, op="(model)", type="model", min_ms=wmin, median_ms=wmed,
                            ops_min_sum_ms=sum(r["min_ms"] for r in rows),
                            ops_median_sum_ms=sum(r["median_ms"] for r in rows),
                            binary_min_sum_ms=sum(r["min_ms"] for r in binary),
                            binary_median_sum_ms=sum(r["median_ms"] for r in binary),
                            bit_macs=sum(r["bit_macs"] for r in binary), peak_bitmacs_per_s=peak))
        print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    show = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()
             if k in ("model", "op", "type", "min_ms", "median_ms", "gbitmacs_per_s", "peak_fraction",
                      "ops_min_sum_ms", "ops_median_sum_ms", "binary_min_sum_ms", "binary_median_sum_ms")}
            for r in records if r["type"] in BINARY + ("model",)]
    print(format_table(show))
    return records


def _merge(paths: str) -> list[dict]:
    """Records of several runs (comma-separated JSON files, e.g. alternating rounds) merged per
    (model, op): minimum of the minima, median of the medians and of the sums."""
    groups: dict[tuple, list[dict]] = {}
    for p in paths.split(","):
        for r in json.loads(Path(p).read_text()):
            groups.setdefault((r["model"], r["op"]), []).append(r)
    merged = []
    for rs in groups.values():
        m = dict(rs[0])
        m["min_ms"] = min(r["min_ms"] for r in rs)
        for k in ("median_ms", "ops_median_sum_ms", "binary_median_sum_ms"):
            if k in m:
                m[k] = statistics.median(r[k] for r in rs)
        for k in ("ops_min_sum_ms", "binary_min_sum_ms"):
            if k in m:
                m[k] = min(r[k] for r in rs)
        if m.get("bit_macs") and "peak_fraction" in m:
            m["peak_fraction"] = max(r["peak_fraction"] for r in rs)
        merged.append(m)
    return merged


def compare(old_paths: str, new_paths: str) -> None:
    """old / new ratios of the minima and medians, per op and per model."""
    old = {(r["model"], r["op"]): r for r in _merge(old_paths)}
    rows = []
    for r in _merge(new_paths):
        o = old.get((r["model"], r["op"]))
        if not o or r["type"] not in BINARY + ("model",):
            continue
        row = {"model": r["model"], "op": r["op"], "old min": round(o["min_ms"], 4), "new min": round(r["min_ms"], 4),
               "x (min)": round(o["min_ms"] / r["min_ms"], 2), "old median": round(o["median_ms"], 4),
               "new median": round(r["median_ms"], 4), "x (median)": round(o["median_ms"] / r["median_ms"], 2)}
        if r["type"] == "model":
            for k in ("binary_min_sum_ms", "binary_median_sum_ms", "ops_median_sum_ms"):
                row[f"old {k}"] = round(o[k], 3)
                row[f"new {k}"] = round(r[k], 3)
        else:
            row["old peak"] = o.get("peak_fraction")
            row["new peak"] = r.get("peak_fraction")
        rows.append(row)
    print(format_table(rows))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", nargs="*", help=".onebit files")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--isa", default=None, help="default: the best this CPU has")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=100, help="timed rounds per model (default: %(default)s)")
    ap.add_argument("--label", default="", help="free text stored in every record (e.g. 'before')")
    ap.add_argument("--json", default=None, metavar="PATH")
    ap.add_argument("--compare", nargs=2, metavar=("OLD", "NEW"),
                    help="print old/new ratios of two runs and exit (each: JSON files, comma-separated rounds)")
    args = ap.parse_args(argv)
    if args.compare:
        compare(*args.compare)
        return 0
    if not args.models:
        ap.error("give .onebit files (or --compare OLD NEW)")
    records = run(args)
    if args.json:
        write_json(records, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
