"""Whole-model latency: ``onebit bench model.onebit`` (torch-free).

:func:`bench_model` times ``Session.run`` on one fixed random uint8 batch (median of
``repeats`` runs after ``warmup``), for each thread count, and, when asked with ``vs`` and
when the peer environment exists (``onebit.bench.peers``), the peers on the same
architecture in the same run.

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

import os
import sys

from onebit.bench.peers import VS_ENGINES, peers_python, run_peers
from onebit.bench.timing import loadavg, random_batch, time_interleaved
from onebit.runtime.provenance import cpu_model, git_commit
from onebit.runtime.session import Session


def model_name(session: Session) -> tuple[str, float | None]:
    """The zoo name and width recorded by the converter in the file's metadata."""
    cfg = session.model.metadata.get("producer", {}).get("model") or {}
    return str(cfg.get("name", "unknown")), cfg.get("width")


def _file_stats(session: Session) -> dict:
    from onebit.runtime import opstats

    tot = opstats.totals(opstats.op_stats(session.model))
    return {"bit_macs": tot["bit_macs"], "dense_bit_macs": tot["dense_bit_macs"],
            "pruned_weights": tot["pruned_weights"]}


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
        vs = tuple(VS_ENGINES) if peers_python()[1] is not None else ()
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
        load = loadavg()
        timings = time_interleaved(sessions, batch, repeats, warmup)
        t = int(t)
        group = []
        for (role, p), sess, (mn, med) in zip(files, sessions, timings):
            x = random_batch(sess, batch)
            ops = sum(r["median_ms"] for r in sess.profile(x, repeats))
            rec = dict(base, model=model_name(sess)[0], width=model_name(sess)[1], engine="onebit",
                       isa=sess.isa, threads=t, median_ms=med, min_ms=mn, ops_sum_ms=ops,
                       loadavg=load, loadavg_after=loadavg())
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
                                    model=name, width=1, peer_cpu=rec.get("cpu"), loadavg=loadavg()))
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
