"""Benchmark the binary conv reference layers on the onebit engine (and the peers, when installed).

For each layer (default: the four reference layers 56x56x64-64, 28x28x128-128, 14x14x256-256,
7x7x512-512; 3x3, stride 1, 'same', batch 1; 115.6 M bit-MACs each), every ISA this CPU has,
threads 1 and 2, and the pipelines bits-bits / bits-int8 / float-float (see ``onebit bench``):
median ms, G bit-MACs/s and the fraction of the XOR+popcount peak measured in the same run
(``popcount_peak``, one thread, L1-resident; x threads for multi-thread rows).

When ``benchmarks/peers/run_peers.py`` and the peer venv ``.peers-venv`` exist, the peers (LCE
indirect/default BGEMM, XNNPACK int8/float) are timed in the same run on the same layers through a
subprocess, and the ratios ``peer median / onebit median`` (float-float pipeline) are printed.

    .venv/bin/python benchmarks/bench_layers.py                       # everything, table only
    .venv/bin/python benchmarks/bench_layers.py --json results/layers.json --repeats 300
    .venv/bin/python benchmarks/bench_layers.py --layers "56x56x64-64;7x7x512-512" --isa avx2 --peers none
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import REPO_ROOT, machine, write_json  # noqa: E402

from onebit.bench.layers import (PIPELINES, REFERENCE_LAYERS, TABLE_COLUMNS,  # noqa: E402
                                 measure_layers, parse_layer, peak_bitmacs_per_s)
from onebit.runtime import kernels  # noqa: E402
from onebit.runtime.engine import engine  # noqa: E402
from onebit.table import format_table  # noqa: E402

PEERS_SCRIPT = REPO_ROOT / "benchmarks" / "peers" / "run_peers.py"
PEERS_PYTHON = REPO_ROOT / ".peers-venv" / "bin" / "python"


def run_peers(specs, threads: list[int], repeats: int) -> list[dict]:
    """Peer records for the same layers, measured now (empty when the peers are not installed)."""
    if not (PEERS_SCRIPT.exists() and PEERS_PYTHON.exists()):
        print("peers: not installed (benchmarks/peers/setup_peers.sh), skipped", file=sys.stderr)
        return []
    cmd = [str(PEERS_PYTHON), str(PEERS_SCRIPT), "--layers", ";".join(s.label for s in specs), "--models", "none",
           "--threads", ",".join(map(str, threads)), "--repeats", str(repeats), "--json", "-"]
    print("peers:", " ".join(cmd), file=sys.stderr)
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    sys.stderr.write(proc.stderr[-4000:])
    try:
        records = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        print(f"peers: unreadable output (exit {proc.returncode})", file=sys.stderr)
        return []
    if proc.returncode != 0:
        print(f"peers: exit {proc.returncode}; keeping the {len(records)} records it made", file=sys.stderr)
    return records


def ratios(onebit_records: list[dict], peer_records: list[dict]) -> list[dict]:
    """peer median / onebit median for the same layer and threads (onebit float-float, best ISA)."""
    rows = []
    best: dict[tuple, dict] = {}
    for r in onebit_records:
        if r["pipeline"] != "float-float" or r.get("weights") != "prepared":
            continue
        key = (r["layer"], r["kernel"], r["stride"], r["threads"])
        if key not in best or r["median_ms"] < best[key]["median_ms"]:
            best[key] = r
    for p in peer_records:
        key = (p.get("layer"), p.get("kernel"), p.get("stride"), p.get("threads"))
        if key in best and p.get("median_ms"):
            o = best[key]
            row = {"layer": o["layer"], "threads": o["threads"], "peer": p["engine"], "onebit_isa": o["isa"],
                   "peer_median_ms": p["median_ms"], "onebit_median_ms": o["median_ms"],
                   "speedup_median": round(p["median_ms"] / o["median_ms"], 2)}
            if p.get("min_ms") and o.get("min_ms"):  # min: least disturbed by other load on the machine
                row.update(peer_min_ms=p["min_ms"], onebit_min_ms=o["min_ms"],
                           speedup_min=round(p["min_ms"] / o["min_ms"], 2))
            rows.append(row)
    return rows


def markdown(records: list[dict], columns: list[str]) -> str:
    """Records as a GitHub markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in records:
        lines.append("| " + " | ".join("" if r.get(c) is None else str(r.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--layers", default="reference",
                    help="'reference' or HxWxCin-Cout[,k=K][,s=S] specs separated by ';' (default: %(default)s)")
    ap.add_argument("--isa", default=None, help="comma list (default: every ISA this CPU has)")
    ap.add_argument("--threads", default="1,2", help="comma list (default: %(default)s)")
    ap.add_argument("--pipelines", default=",".join(PIPELINES), help="comma list (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=200, help="timed runs per row (default: %(default)s)")
    ap.add_argument("--peers", choices=("auto", "none"), default="auto",
                    help="time the peers too when installed (default: %(default)s)")
    ap.add_argument("--peer-repeats", type=int, default=50, help="timed runs per peer row (default: %(default)s)")
    ap.add_argument("--unprepared", action="store_true",
                    help="also time calls that re-lay out the packed weights every time (default: prepared only)")
    ap.add_argument("--json", default=None, metavar="PATH", help="write all records (onebit + peers) as JSON")
    ap.add_argument("--markdown", action="store_true", help="also print the tables as markdown")
    args = ap.parse_args(argv)

    specs = [parse_layer(t) for t in (REFERENCE_LAYERS if args.layers == "reference" else args.layers.split(";"))]
    supported = list(engine.supported_isas())
    isas = args.isa.split(",") if args.isa else supported
    bad = [i for i in isas if i not in supported]
    if bad:
        ap.error(f"ISA {', '.join(bad)} not supported by this CPU (supported: {', '.join(supported)})")
    threads = [int(t) for t in args.threads.split(",")]
    pipelines = args.pipelines.split(",")

    m = machine()
    print(f"cpu: {m['cpu']} ({m['cores']} cores)   commit: {m['commit']}   python {m['python']}")
    print(f"ISAs: {', '.join(supported)} (default {engine.default_isa()})")
    for isa in isas:
        extra = ""
        if isa == "avx2":
            lut = kernels.popcount_peak("avx2", 1.0, "lut") / 1e9
            pc = kernels.popcount_peak("avx2", 1.0, "popcnt") / 1e9
            extra = f"   (classic pshufb LUT {lut:.0f}, scalar POPCNT {pc:.0f})"
        print(f"peak XOR+popcount, 1 thread, {isa}: {peak_bitmacs_per_s(isa) / 1e9:.0f} G bit-MACs/s{extra}")

    records = measure_layers(specs, isas, threads, pipelines, repeats=args.repeats, warmup=20,
                             prepared=(True, False) if args.unprepared else (True,), commit=m["commit"],
                             cpu=m["cpu"], progress=lambda: print(".", end="", file=sys.stderr, flush=True))
    print(file=sys.stderr)
    print(format_table(records, TABLE_COLUMNS))

    peers = run_peers(specs, threads, args.peer_repeats) if args.peers == "auto" else []
    if peers:
        print()
        print(format_table(peers, ["layer", "engine", "threads", "pipeline", "median_ms", "min_ms", "gbitmacs_per_s"]))
        rows = ratios(records, peers)
        if rows:
            print("\nspeedup = peer time / onebit time (float in -> float out, same layer and threads)")
            print(format_table(rows))
    if args.markdown:
        print("\n" + markdown(records, TABLE_COLUMNS + ["loadavg_1m"]))
        if peers:
            print("\n" + markdown(peers, ["layer", "engine", "threads", "pipeline", "median_ms", "min_ms",
                                           "gbitmacs_per_s", "loadavg_1m"]))
            rows = ratios(records, peers)
            if rows:
                print("\n" + markdown(rows, list(rows[0])))
    if args.json:
        write_json(records + peers, args.json)
        print(f"wrote {len(records) + len(peers)} records to {args.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
