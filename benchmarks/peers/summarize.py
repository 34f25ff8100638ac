"""Merge several run_peers.py JSON files into one Markdown table (median over runs).

Plain Python, no TensorFlow needed::

    python3 benchmarks/peers/summarize.py run1.json run2.json run3.json

``--field=min_ms`` or ``--field=median_cpu_ms`` tabulates that field instead of ``median_ms``.
Each cell is the median of the per-run medians for (target, engine, threads); the run-to-run
spread (min-max of the per-run medians) and the 1-minute load range are shown beside it.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections import defaultdict

ENGINE_ORDER = ("lce-indirect", "lce-default", "xnnpack-int8", "xnnpack-float", "ort-float")


def summarize(paths: list[str], field: str = "median_ms") -> str:
    cells = defaultdict(list)
    loads = []
    order = []
    for p in paths:
        with open(p) as f:
            for r in json.load(f):
                target = r.get("layer") or r.get("model")
                key = (target, r["engine"], r["threads"])
                if target not in order:
                    order.append(target)
                if r.get(field) is None:
                    continue
                cells[key].append(r[field])
                if r.get("loadavg_1m") is not None:
                    loads.append(r["loadavg_1m"])
    threads = sorted({k[2] for k in cells})
    engines = [e for e in ENGINE_ORDER if any(k[1] == e for k in cells)]
    head = ["target", "threads"] + engines
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for target in order:
        for t in threads:
            row = [target, str(t)]
            for e in engines:
                v = cells.get((target, e, t))
                if not v:
                    row.append("-")
                elif len(v) == 1:
                    row.append(f"{v[0]:.3f}")
                else:
                    row.append(f"{statistics.median(v):.3f} ({min(v):.3f}-{max(v):.3f})")
            lines.append("| " + " | ".join(row) + " |")
    runs = max((len(v) for v in cells.values()), default=0)
    if loads:
        lines.append("")
        lines.append(f"{field}: median over {runs} run(s) (min-max of the runs' medians); "
                     f"1-minute load during the runs: {min(loads):.2f}-{max(loads):.2f}")
    return "\n".join(lines)


if __name__ == "__main__":
    args = sys.argv[1:]
    field = "median_ms"
    if args and args[0].startswith("--field="):
        field = args.pop(0).split("=", 1)[1]
    if not args:
        sys.exit("usage: summarize.py [--field=median_ms|min_ms|median_cpu_ms] RUN.json [RUN.json ...]")
    print(summarize(args, field))
