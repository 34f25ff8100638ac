"""Larq models run by onebit and by Larq Compute Engine, the same ``.h5`` file, side by side in one run.

Each ``NAME.h5`` (Larq Zoo architectures with random weights, written by
``larq_zoo_reference.py``) is imported by onebit (``onebit import``: h5py only, the default
integer data flow) and converted by LCE (``larq_compute_engine.convert_keras_model``, in
``.peers-venv``, through ``run_peers.py --h5``). Rounds alternate a onebit process and an LCE
process so both see the same machine load; batch 1, threads 1 and 2. A model onebit cannot
export is recorded with the converter's reason, never left out.

    .peers-venv/bin/python benchmarks/peers/larq_zoo_reference.py --out /tmp/larq-ref --images 64
    .venv/bin/python benchmarks/peers/larq_models.py --ref /tmp/larq-ref --rounds 3 \\
        --json benchmarks/peers/results/larq_models.json
    .venv/bin/python benchmarks/peers/larq_models.py --ref /tmp/larq-ref --only QuickNet,QuickNetSmall \\
        --update --json benchmarks/peers/results/larq_models.json   # these models' rows replaced, others kept

Each record: ``model``, ``engine`` (onebit | lce-indirect | lce-default), ``threads``,
``median_ms`` / ``min_ms`` (median / min over the rounds of each round's median / min),
``median_cpu_ms`` (LCE, 1 thread), ``rounds``, ``repeats``, ``loadavg``, CPU, commit; per model
a ``speedup`` record (LCE's best median / onebit's median, per thread count) or ``export_error``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _records import REPO_ROOT, machine, write_json  # noqa: E402
from larq_import_check import identity_flags  # noqa: E402

PEERS_PY = REPO_ROOT / ".peers-venv" / "bin" / "python"
LCE_ENGINES = ("lce-indirect", "lce-default")

# argv: JSON job {models: {name: path}, threads, repeats}; prints JSON records
WORKER = r"""
import json, os, statistics, sys, time
import numpy as np
from onebit.runtime import Session
job = json.loads(sys.argv[1])
out = []
for name, path in job["models"].items():
    for th in job["threads"]:
        s = Session(path, threads=th)
        x = np.random.default_rng(0).integers(0, 256, (1, *s.input_shape), dtype=np.uint8)
        for _ in range(3):
            s.run(x)
        ts = []
        for _ in range(job["repeats"]):
            t0 = time.perf_counter(); s.run(x); ts.append((time.perf_counter() - t0) * 1e3)
        out.append({"model": name, "engine": "onebit", "isa": s.isa, "threads": th,
                    "median_ms": statistics.median(ts), "min_ms": min(ts), "loadavg": os.getloadavg()[0]})
print(json.dumps(out))
"""


def export(h5: Path, dest: Path, *flags: str) -> str | None:
    """Import + export with onebit's CLI (``flags``: more options of ``onebit import``); None on
    success, else the CLI's error (its last lines)."""
    r = subprocess.run([sys.executable, "-c", "from onebit.cli import main; main()", "import", str(h5), "-o", str(dest),
                        *flags], capture_output=True, text=True)
    if r.returncode == 0 and dest.is_file():
        return None
    return (r.stderr.strip() or r.stdout.strip())[-1500:] or f"exit status {r.returncode}"


def onebit_round(models: dict[str, str], threads: list[int], repeats: int) -> list[dict]:
    job = {"models": models, "threads": threads, "repeats": repeats}
    r = subprocess.run([sys.executable, "-c", WORKER, json.dumps(job)], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"larq_models: onebit worker failed:\n{r.stderr[-2000:]}")
    return json.loads(r.stdout)


def lce_round(h5s: dict[str, Path], threads: list[int], repeats: int) -> list[dict]:
    cmd = [str(PEERS_PY), str(REPO_ROOT / "benchmarks/peers/run_peers.py"), "--models", "none",
           "--layers", "none", "--engines", ",".join(LCE_ENGINES), "--threads", ",".join(map(str, threads)),
           "--repeats", str(repeats), "--json", "-"]
    for p in h5s.values():
        cmd += ["--h5", str(p)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"larq_models: run_peers failed ({r.returncode}):\n{r.stderr[-2000:]}")
    by_path = {str(p.resolve()): n for n, p in h5s.items()}
    recs = json.loads(r.stdout)
    for rec in recs:
        rec["model"] = by_path[rec["model"].split(":", 1)[1]]
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="directory written by larq_zoo_reference.py")
    ap.add_argument("--only", help="comma list of model names (default: every NAME.h5 in --ref)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--json", help="write the records here")
    ap.add_argument("--update", action="store_true",
                    help="keep the records of the other models already in --json (this run's models replaced)")
    a = ap.parse_args(argv)
    if a.update and not a.json:
        ap.error("--update needs --json")
    if a.rounds < 1 or a.repeats < 1:
        ap.error("--rounds and --repeats must be >= 1")
    if not PEERS_PY.exists():
        ap.error(f"{PEERS_PY} missing: run benchmarks/peers/setup_peers.sh first")
    ref = Path(a.ref)
    h5s = {p.stem: p for p in sorted(ref.glob("*.h5"))}
    if a.only:
        wanted = a.only.split(",")
        missing = [n for n in wanted if n not in h5s]
        if missing:
            ap.error(f"not in {ref}: {', '.join(missing)}")
        h5s = {n: h5s[n] for n in wanted}
    if not h5s:
        ap.error(f"no .h5 files in {ref}")
    threads = [int(t) for t in a.threads.split(",")]

    records: list[dict] = []
    exported: dict[str, str] = {}
    tmp = Path(tempfile.mkdtemp(prefix="larq-models-"))
    for name, h5 in h5s.items():
        err = export(h5, tmp / f"{name}.onebit", *identity_flags(name))
        if err is None:
            exported[name] = str(tmp / f"{name}.onebit")
        else:
            records.append({**machine(), "model": name, "export_error": err})
            print(f"{name}: onebit cannot export it:\n  {err.splitlines()[-1]}", file=sys.stderr)

    runs: dict[tuple, list[dict]] = {}
    timed = {n: h5s[n] for n in exported}
    for i in range(a.rounds if timed else 0):
        for r in onebit_round(exported, threads, a.repeats) + lce_round(timed, threads, a.repeats):
            runs.setdefault((r["model"], r["engine"], r["threads"]), []).append(r)
        print(f"round {i + 1}/{a.rounds} done", file=sys.stderr)

    med: dict[tuple, float] = {}
    for (model, engine, th), rs in runs.items():
        rec = {**machine(), "model": model, "engine": engine, "threads": th, "batch": 1,
               "median_ms": statistics.median(r["median_ms"] for r in rs),
               "min_ms": min(r["min_ms"] for r in rs), "rounds": len(rs), "repeats": a.repeats,
               "loadavg": [r.get("loadavg", r.get("loadavg_1m")) for r in rs]}
        if engine == "onebit":
            rec["isa"] = rs[0]["isa"]
        else:
            rec["median_cpu_ms"] = (statistics.median(r["median_cpu_ms"] for r in rs)
                                    if th == 1 else None)
            rec["peer_versions"], rec["lce_options"] = rs[0]["peer_versions"], rs[0]["lce_options"]
        med[(model, engine, th)] = rec["median_ms"]
        records.append(rec)
    for model in exported:
        for th in threads:
            lce = [med[(model, e, th)] for e in LCE_ENGINES if (model, e, th) in med]
            if lce and (model, "onebit", th) in med:
                records.append({**machine(), "model": model, "threads": th,
                                "speedup": min(lce) / med[(model, "onebit", th)]})

    print(f"CPU: {machine()['cpu']}; batch 1; {a.rounds} alternating rounds x {a.repeats} runs")
    print(f"{'model':22} {'threads':>7} {'onebit ms':>10} {'LCE best ms':>11} {'speedup':>8}")
    for model in exported:
        for th in threads:
            lce = [med[(model, e, th)] for e in LCE_ENGINES if (model, e, th) in med]
            ob = med.get((model, "onebit", th))
            if ob is not None and lce:
                print(f"{model:22} {th:7d} {ob:10.3f} {min(lce):11.3f} {min(lce) / ob:7.2f}x")
    for r in records:
        if "export_error" in r:
            print(f"{r['model']:22} not exported: {r['export_error'].splitlines()[-1][:90]}")
    if a.json:
        kept = []
        if a.update and Path(a.json).is_file():
            kept = [r for r in json.loads(Path(a.json).read_text()) if r.get("model") not in h5s]
        write_json(kept + records, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
