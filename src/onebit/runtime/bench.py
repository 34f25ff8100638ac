"""Whole-model latency: ``onebit bench model.onebit`` (torch-free).

:func:`bench_model` times ``Session.run`` on one fixed random uint8 batch (median of
``repeats`` runs after ``warmup``), for each thread count, and — when asked with ``vs`` and
when the peer environment exists (``.peers-venv``, ``benchmarks/peers/run_peers.py``) — the
peers on the same architecture in the same run: LCE's indirect-BGEMM and default paths
(``lce``), TFLite/XNNPACK int8 (``int8``) and float32 (``float``). Peers use random weights of
the same architecture (weights do not change latency) at width 1.

Records (one per measurement, the shape of the layer benchmark): ``model``, ``engine``, ``isa``,
``threads``, ``batch``, ``median_ms``, ``commit``, ``cpu`` (+ ``width``, ``file``, ``loadavg``).
onebit records also carry ``ops_sum_ms``, the sum of the per-op medians: on a shared machine a
whole run is often preempted (time slices of several ms), which inflates ``median_ms`` but not
the per-op medians; the gap between the two measures the interference.

Pruned vs unpruned in one run: ``baseline`` (``onebit bench pruned.onebit --baseline
dense.onebit``) times a second model file on the same ISA and thread counts, *interleaved* with
the first one run by run (so load changes hit both alike). Records then carry ``role``
(``"model"`` / ``"baseline"``), ``min_ms``, ``bit_macs`` (kept, ``onebit.runtime.opstats``),
``file_bytes``, and the model's records ``x_baseline_median`` / ``x_baseline_min`` (model time /
baseline time: below 1 is faster).
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from onebit.runtime.provenance import cpu_model, git_commit
from onebit.runtime.session import Session

VS_ENGINES = {"lce": ("lce-indirect", "lce-default"), "int8": ("xnnpack-int8",), "float": ("xnnpack-float",)}
PEER_MODELS = ("cifar-binarynet", "quicknet-small", "birealnet18", "binary-resnet-e18")


def repo_root() -> Path | None:
    """The source checkout holding ``benchmarks/peers`` (editable install), else None."""
    here = Path(__file__).resolve()
    for p in here.parents:
        if (p / "benchmarks" / "peers" / "run_peers.py").is_file():
            return p
    return None


def median_ms(fn, repeats: int = 50, warmup: int = 5, min_time_s: float = 0.2) -> float:
    """Median wall time (ms) of ``fn()``; keeps sampling until ``min_time_s`` has passed."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeats or time.perf_counter() - start < min_time_s:
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
        if len(times) >= 100 * repeats:
            break
    return statistics.median(times)


def _loadavg():
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def model_name(session: Session) -> tuple[str, float | None]:
    cfg = session.model.metadata.get("producer", {}).get("model") or {}
    return str(cfg.get("name", "unknown")), cfg.get("width")


def time_session(session: Session, batch: int = 1, repeats: int = 50, warmup: int = 5, seed: int = 0) -> float:
    x = np.random.default_rng(seed).integers(0, 256, (batch,) + session.input_shape, dtype=np.uint8)
    return median_ms(lambda: session.run(x), repeats=repeats, warmup=warmup)


def time_interleaved(sessions, batch: int = 1, repeats: int = 50, warmup: int = 5, seed: int = 0,
                     min_time_s: float = 0.2) -> list[tuple[float, float]]:
    """``[(min_ms, median_ms)]`` of ``Session.run`` for each session, timed run by run in turn
    (A B A B ..., the order rotating every round) so that a change of machine load affects every
    session alike; at least ``repeats`` runs each and ``min_time_s`` in total."""
    xs = [np.random.default_rng(seed).integers(0, 256, (batch,) + s.input_shape, dtype=np.uint8)
          for s in sessions]
    for s, x in zip(sessions, xs):
        for _ in range(warmup):
            s.run(x)
    samples = [[] for _ in sessions]
    start = time.perf_counter()
    k = 0
    while k < repeats or time.perf_counter() - start < min_time_s:
        for j in range(len(sessions)):
            i = (j + k) % len(sessions)
            t0 = time.perf_counter()
            sessions[i].run(xs[i])
            samples[i].append((time.perf_counter() - t0) * 1e3)
        k += 1
        if k >= 100 * repeats:
            break
    return [(min(v), statistics.median(v)) for v in samples]


def _file_stats(session: Session) -> dict:
    from onebit.runtime import opstats

    tot = opstats.totals(opstats.op_stats(session.model))
    return {"bit_macs": tot["bit_macs"], "dense_bit_macs": tot["dense_bit_macs"],
            "pruned_weights": tot["pruned_weights"]}


def run_peers(name: str, engines, threads, repeats: int = 50, echo=print) -> list[dict]:
    """Peer records from ``run_peers.py`` in ``.peers-venv`` (empty list, with a note, if absent)."""
    root = repo_root()
    py = None if root is None else root / ".peers-venv" / "bin" / "python"
    if py is None or not py.exists():
        echo("peers: .peers-venv not found (benchmarks/peers/setup_peers.sh builds it): skipped")
        return []
    if name not in PEER_MODELS:
        echo(f"peers: no peer build of {name!r} (peers exist for {', '.join(PEER_MODELS)}): skipped")
        return []
    cmd = [str(py), str(root / "benchmarks" / "peers" / "run_peers.py"), "--models", name, "--layers", "none",
           "--engines", ",".join(engines), "--threads", ",".join(map(str, threads)),
           "--repeats", str(repeats), "--json", "-"]
    env = dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=root)
    try:
        recs = json.loads(r.stdout) if r.stdout.strip() else []
    except json.JSONDecodeError:
        recs = []
    if r.returncode != 0:
        echo(f"peers: run_peers.py exited {r.returncode}: {r.stderr.strip().splitlines()[-1:]}")
    return [rec for rec in recs if isinstance(rec, dict)]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr)


def bench_model(path, threads=(1, 2), batch: int = 1, vs=None, isa: str | None = None, isas=None,
                repeats: int = 50, warmup: int = 5, echo=_stderr, baseline=None) -> list[dict]:
    """Time a model file on the engine (and its peers); returns the records and prints a table.

    ``threads``: thread counts; ``isa`` or ``isas``: the ISA(s) to time (default: the best one);
    ``vs``: peers, any of ``"lce"``, ``"int8"``, ``"float"``; ``None`` means all of them when the
    peer environment exists (``onebit bench MODEL`` compares with every peer in one run), ``()``
    none. ``baseline``: a second model file (e.g. the unpruned model) timed interleaved with
    ``path`` (module docstring). The table (with ratios to onebit) goes to ``echo`` (stderr by
    default).
    """
    if vs is None:
        root = repo_root()
        vs = tuple(VS_ENGINES) if root is not None and (root / ".peers-venv" / "bin" / "python").exists() else ()
    bad = [v for v in vs if v not in VS_ENGINES]
    if bad:
        raise ValueError(f"unknown peer(s) {bad}: choose from {sorted(VS_ENGINES)}")
    if isas is not None and isa is not None:
        raise ValueError("give isa or isas, not both")
    base = {"commit": git_commit(), "cpu": cpu_model(), "batch": batch, "file": os.fspath(path)}
    records = []
    name = width = None
    files = [("model", path)] + ([("baseline", baseline)] if baseline is not None else [])
    for t, isa_ in [(t, i) for i in (isas or [isa]) for t in threads]:
        sessions = [Session(p, threads=t, isa=isa_) for _, p in files]
        name, width = model_name(sessions[0])
        load = _loadavg()
        timings = time_interleaved(sessions, batch, repeats, warmup)
        t = int(t)
        group = []
        for (role, p), sess, (mn, med) in zip(files, sessions, timings):
            x = np.random.default_rng(0).integers(0, 256, (batch,) + sess.input_shape, dtype=np.uint8)
            ops = sum(r["median_ms"] for r in sess.profile(x, repeats))
            rec = dict(base, model=model_name(sess)[0], width=model_name(sess)[1], engine="onebit",
                       isa=sess.isa, threads=t, median_ms=med, min_ms=mn, ops_sum_ms=ops,
                       loadavg=load, loadavg_after=_loadavg())
            if baseline is not None:
                rec.update(role=role, file=os.fspath(p), file_bytes=os.path.getsize(p), **_file_stats(sess))
            group.append(rec)
        if baseline is not None:
            m, b = group
            m["x_baseline_median"] = m["median_ms"] / b["median_ms"]
            m["x_baseline_min"] = m["min_ms"] / b["min_ms"]
            m["x_baseline_bit_macs"] = m["bit_macs"] / b["bit_macs"] if b["bit_macs"] else None
        records.extend(group)
    if vs:
        engines = [e for v in vs for e in VS_ENGINES[v]]
        if batch != 1:
            echo("peers: the peer harness times batch 1 only: skipped")
        elif width not in (None, 1, 1.0):
            echo(f"peers: the peers build width 1; this model has width {width}: skipped")
        else:
            for rec in run_peers(name, engines, threads, repeats, echo):
                records.append(dict(base, **{k: rec.get(k) for k in ("engine", "isa", "threads", "median_ms")},
                                    model=name, width=1, peer_cpu=rec.get("cpu"), loadavg=_loadavg()))
    echo(format_records(records))
    return records


def format_records(records: list[dict]) -> str:
    """Table: engine x threads median ms and the ratio to onebit at the same thread count."""
    from onebit.table import format_table

    # ratios against onebit's best ISA at the same thread count
    ours = {}
    for r in records:
        if r["engine"] == "onebit" and r.get("role", "model") == "model":
            ours[r["threads"]] = min(ours.get(r["threads"], float("inf")), r["median_ms"])
    with_baseline = any("role" in r for r in records)
    rows = []
    for r in records:
        o = ours.get(r["threads"])
        row = {"model": r["model"], "engine": r["engine"], "isa": r["isa"], "threads": r["threads"],
               "batch": r["batch"], "median ms": round(r["median_ms"], 3) if r["median_ms"] is not None else None}
        if with_baseline:
            row.update({"role": r.get("role", ""), "min ms": round(r["min_ms"], 3) if r.get("min_ms") else "",
                        "bit-MACs": r.get("bit_macs", ""),
                        "x baseline (median)": round(r["x_baseline_median"], 3) if "x_baseline_median" in r else "",
                        "x baseline (min)": round(r["x_baseline_min"], 3) if "x_baseline_min" in r else "",
                        "x baseline (bit-MACs)": round(r["x_baseline_bit_macs"], 3)
                        if r.get("x_baseline_bit_macs") is not None else ""})
        row.update({"sum of op medians": round(r["ops_sum_ms"], 3) if r.get("ops_sum_ms") else "",
                    "x onebit": round(r["median_ms"] / o, 2) if o and r["median_ms"] else None,
                    "load": r.get("loadavg")})
        rows.append(row)
    head = f"cpu: {records[0]['cpu']}  commit: {records[0]['commit']}" if records else ""
    return head + "\n" + format_table(rows)


def main(argv=None) -> int:  # python -m onebit.runtime.bench model.onebit
    import argparse

    ap = argparse.ArgumentParser(description="time a .onebit model")
    ap.add_argument("model")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--vs", default="", help="comma list of lce,int8,float (default: none)")
    ap.add_argument("--isa", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--baseline", default=None, help="a second model file timed interleaved (ratios)")
    a = ap.parse_args(argv)
    recs = bench_model(a.model, threads=[int(t) for t in a.threads.split(",")], batch=a.batch,
                       vs=[v for v in a.vs.split(",") if v], isa=a.isa, echo=print, baseline=a.baseline)
    if a.json:
        Path(a.json).write_text(json.dumps(recs, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
