"""int8 depthwise convolution (``dwconv2d_int8``) per ISA and thread count on the depthwise layers
of the QuickNet family (3x3 stride 2 on the stem and on each transition, 224-px input), int8 output
stage. ISAs are timed in alternating rounds in one process so they see the same machine load;
the table gives the median of the rounds' medians and each ISA's speed-up over the scalar kernel.
Every record holds CPU, ISA, threads, commit and ``os.getloadavg()``.

    .venv/bin/python benchmarks/bench_dwconv8.py --threads 1,2 --rounds 3 \\
        --json benchmarks/results/dwconv8.json
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import machine, median_ms, write_json  # noqa: E402

# (name, H, W, C): QuickNet's stem depthwise (after the 3x3 stride-2 first conv) and transitions
LAYERS = [("stem", 112, 112, 32), ("transition1", 56, 56, 64), ("transition2", 28, 28, 128),
          ("transition3", 14, 14, 256)]


def main() -> int:
    from onebit.runtime import netkernels as nk
    from onebit.runtime.engine import engine
    from onebit.table import format_table

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    threads = [int(t) for t in a.threads.split(",")]
    isas = [i for i in ("scalar", "avx2", "avx512", "neon") if i in engine.supported_isas()]
    rng = np.random.default_rng(0)
    times: dict = {}
    for _ in range(a.rounds):
        for name, h, w, c in LAYERS:
            x = rng.integers(-127, 128, (1, h, w, c), dtype=np.int8)
            wt = rng.integers(-127, 128, (3, 3, c), dtype=np.int8)
            stage = dict(output="int8", multiplier=np.full(c, 1 << 10, np.int32), bias=np.zeros(c, np.int32),
                         shift=16)
            out = nk.dwconv2d_int8(x, wt, stride=2, padding=1, **stage)
            for t in threads:
                for isa in isas:
                    def run(isa=isa, t=t):
                        nk.dwconv2d_int8(x, wt, stride=2, padding=1, **stage, out=out, isa=isa, threads=t)
                    times.setdefault((name, t, isa), []).append(median_ms(run, repeats=a.repeats, warmup=2))
    m = machine()
    load = os.getloadavg()
    records, rows = [], []
    for name, h, w, c in LAYERS:
        for t in threads:
            base = statistics.median(times[(name, t, "scalar")])
            for isa in isas:
                ms = statistics.median(times[(name, t, isa)])
                records.append(dict(m, bench="dwconv8", layer=name, shape=[h, w, c], kernel=[3, 3], stride=2,
                                    isa=isa, threads=t, median_ms=ms, speedup_vs_scalar=base / ms,
                                    rounds=a.rounds, loadavg=list(load)))
                rows.append({"layer": name, "input": f"{h}x{w}x{c}", "threads": t, "ISA": isa,
                             "median ms": f"{ms:.3f}", "vs scalar": f"{base / ms:.1f}x"})
    print(f"int8 depthwise 3x3 stride 2, batch 1, int8 stage; CPU {m['cpu']}, commit {m['commit']}, "
          f"load {load[0]:.1f}")
    print(format_table(rows))
    if a.json:
        write_json(records, a.json)
        print(f"wrote {a.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
