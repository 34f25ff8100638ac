"""onebit's int8 convolutions against int8 XNNPACK on the same shapes, side by side in one run.

The shapes are the int8 convolutions of the given ``.onebit`` networks (stems, shortcut and
transition convs; ``benchmarks/make_zoo_models.py --clip``). onebit's time of each is its op time
inside the network (``Session.op_times``, prepared weights, 1 thread, per ISA); XNNPACK's is a
one-layer TFLite model of the same shape (``run_peers.py`` layer target, ``xnnpack-int8``:
a float conv + BatchNorm + ReLU twin, full-integer post-training quantization, int8 in and out;
TensorFlow's "same" padding gives the same output size). Rounds alternate onebit and XNNPACK
processes so both see the same machine load; every record holds CPU, ISA, threads, commit and
load. XNNPACK picks its own ISA (it has no switch): its record says "auto".

    .venv/bin/python benchmarks/make_zoo_models.py --out runs/zoo --clip
    .venv/bin/python benchmarks/peers/int8_convs.py --model runs/zoo/birealnet18-clip.onebit \\
        --model runs/zoo/quicknet-small-clip.onebit --model runs/zoo/cifar-binarynet.onebit \\
        --rounds 3 --json benchmarks/peers/results/int8_convs.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _records import REPO_ROOT, machine, write_json  # noqa: E402

PEERS_PY = REPO_ROOT / ".peers-venv" / "bin" / "python"

# argv: JSON job; prints JSON: one entry per (model, isa, int8 conv op)
WORKER = r"""
import json, os, statistics, sys
import numpy as np
from onebit.bench.layers import LayerSpec
from onebit.runtime import Session
from onebit.runtime.engine import engine as e
job = json.loads(sys.argv[1])
out = []
for model in job["models"]:
    for isa in job["isas"]:
        if isa not in e.supported_isas():
            continue
        s = Session(model, threads=1, isa=isa)
        h, w, c = s.input_shape
        x = np.random.default_rng(0).integers(0, 256, (1, h, w, c), dtype=np.uint8)
        times = s.op_times(x, job["repeats"])
        for op in s.model.ops:
            if op.type not in ("conv2d_u8", "conv2d_i8"):
                continue
            wt = s.model.tensors[op.tensors["weight"]]
            ih, iw, cin = s.model.values[op.inputs[0]].shape[:3]
            cout = wt.shape[0]
            out.append({"model": os.path.basename(model), "op": op.name, "isa": isa,
                        # run_peers.py's name of the same layer (k=3, s=1 left out)
                        "shape": LayerSpec(ih, iw, cin, cout, wt.shape[1], op.attrs["stride"][0]).label,
                        "median_ms": statistics.median(times[op.name]), "min_ms": min(times[op.name]),
                        "loadavg": os.getloadavg()[0]})
print(json.dumps(out))
"""


def onebit_round(models: list[str], isas: list[str], repeats: int) -> list[dict]:
    job = {"models": models, "isas": isas, "repeats": repeats}
    r = subprocess.run([sys.executable, "-c", WORKER, json.dumps(job)], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def xnnpack_round(shapes: list[str], repeats: int) -> list[dict]:
    r = subprocess.run([str(PEERS_PY), str(REPO_ROOT / "benchmarks/peers/run_peers.py"),
                        "--layers", ";".join(shapes), "--models", "none", "--engines", "xnnpack-int8",
                        "--threads", "1", "--repeats", str(repeats), "--json", "-"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"int8_convs: run_peers failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", required=True, help="a .onebit file (repeatable)")
    ap.add_argument("--isas", default="avx2,avxvnni,avx512")
    ap.add_argument("--rounds", type=int, default=3, help="onebit/XNNPACK process pairs")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json", help="write the records here")
    a = ap.parse_args(argv)
    if a.rounds < 1 or a.repeats < 1:
        ap.error("--rounds and --repeats must be >= 1")
    if not PEERS_PY.exists():
        ap.error(f"{PEERS_PY} missing: run benchmarks/peers/setup_peers.sh first")
    for m in a.model:
        if not Path(m).is_file():
            ap.error(f"no such model file: {m}")
    isas = [s for s in a.isas.split(",") if s]

    ours: dict[tuple, list[dict]] = {}
    theirs: dict[str, list[dict]] = {}
    shapes: list[str] = []
    for i in range(a.rounds):
        for r in onebit_round(a.model, isas, a.repeats):
            ours.setdefault((r["model"], r["op"], r["shape"], r["isa"]), []).append(r)
            if r["shape"] not in shapes:
                shapes.append(r["shape"])
        for r in xnnpack_round(shapes, a.repeats):
            theirs.setdefault(r["layer"], []).append(r)
        print(f"round {i + 1}/{a.rounds} done", file=sys.stderr)

    def med(rs, field):
        return statistics.median(r[field] for r in rs)

    records = []
    for (model, op, shape, isa), rs in ours.items():
        x = theirs.get(shape, [])
        rec = {**machine(), "model": model, "op": op, "shape": shape, "isa": isa, "threads": 1,
               "onebit_median_ms": med(rs, "median_ms"), "onebit_min_ms": min(r["min_ms"] for r in rs),
               "xnnpack_median_ms": med(x, "median_ms") if x else None,
               "xnnpack_median_cpu_ms": med(x, "median_cpu_ms") if x else None,
               "xnnpack_min_ms": min(r["min_ms"] for r in x) if x else None,
               "xnnpack_isa": "auto", "rounds": a.rounds, "repeats": a.repeats,
               "loadavg": [r["loadavg"] for r in rs] + [r.get("loadavg_1m") for r in x],
               "peer_versions": x[0].get("peer_versions") if x else None}
        rec["speedup_min"] = (rec["xnnpack_min_ms"] / rec["onebit_min_ms"]) if x else None
        records.append(rec)

    print(f"CPU: {machine()['cpu']}, 1 thread, {a.rounds} alternating rounds x {a.repeats} runs; "
          f"XNNPACK chooses its own ISA")
    print(f"{'model':26} {'shape':26} {'isa':8} {'onebit ms':>10} {'XNNPACK ms':>10} "
          f"{'min/min':>8}")
    for r in records:
        xm = f"{r['xnnpack_min_ms']:10.3f}" if r["xnnpack_min_ms"] is not None else "         -"
        sp = f"{r['speedup_min']:7.2f}x" if r["speedup_min"] is not None else "       -"
        print(f"{r['model']:26} {r['shape']:26} {r['isa']:8} {r['onebit_min_ms']:10.3f} {xm} {sp}")
    if a.json:
        write_json(records, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
