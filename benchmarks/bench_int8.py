"""Where whole BNN-Clip networks spend their time, per ISA and thread count, for the working
tree with and without fusion (and optionally a baseline build) side by side: the per-op profile
(``Session.op_times``) summed by category (binary conv, int8 convs, int8 first layer, int8 add,
bitpack, the rest; a fused op counts in the conv that runs it), total / binary-conv ratio, and
each int8 conv's rate against the same machine's int8 multiply-add peak (``int8_mac_peak``, like
``popcount_peak``).

Versions: ``cur`` (the working tree, fused: int8 adds and bitpacks inside the conv before them),
``unfused`` (the same build with ``ONEBIT_FUSION=0``; ``cur`` sets ``ONEBIT_FUSION=1``) and, with ``--baseline``, ``base`` (that
commit's tree: Python package and engine, built once under ``runs/engine-builds/<commit>/``).
They run in fresh processes that alternate base, unfused, cur, base ... (``--rounds``), so all
see the same machine load; ISAs a build lacks are skipped for it. Every record holds CPU, ISA,
threads, commit, ``os.getloadavg()`` and the per-op medians (``ops_ms``).

    .venv/bin/python benchmarks/make_zoo_models.py --out runs/zoo --clip
    .venv/bin/python benchmarks/bench_int8.py --baseline a71f34e \\
        --model runs/zoo/birealnet18-clip.onebit --model runs/zoo/quicknet-small-clip.onebit \\
        --isas scalar,avx2,avxvnni,avx512 --threads 1,2 --rounds 2 --json PATH
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import REPO_ROOT, extract_commit, machine, write_json  # noqa: E402
from bench_bconv_versions import BUILDS, build_baseline, uptime  # noqa: E402

CATEGORIES = ("binary", "int8 conv", "first layer", "add", "bitpack", "other")

# argv: engine .so (or "-" for the installed one), package root (or "-"), JSON job; prints JSON.
WORKER = r"""
import importlib.util, json, os, statistics, sys
so, root, job = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
if root != "-":  # the baseline's package, ahead of an editable install's redirecting finder
    sys.path.insert(0, root)
    sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in type(f).__module__]
if so != "-":
    spec = importlib.util.spec_from_file_location("onebit._engine", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["onebit._engine"] = mod
import numpy as np
import onebit
from onebit.runtime import Session
from onebit.runtime.engine import engine as e
out = []
supported = list(e.supported_isas())
for model in job["models"]:
    for isa in job["isas"]:
        if isa not in supported:
            continue
        for th in job["threads"]:
            s = Session(model, threads=th, isa=isa)
            h, w, c = s.input_shape
            x = np.random.default_rng(0).integers(0, 256, (1, h, w, c), dtype=np.uint8)
            reps = job["repeats"] if isa != "scalar" else max(3, job["repeats"] // 10)
            times = s.op_times(x, reps)
            # the ISA's 1-thread int8 MAC peak right after, in the same process: the best of many
            # runs of a few milliseconds, as short as the ops (on a shared machine a longer run
            # is more often preempted); builds without it: None
            peak = (max(e.int8_mac_peak(isa, 0.004) for _ in range(int(job["peak_seconds"] / 0.004)))
                    if hasattr(e, "int8_mac_peak") else None)
            ops = []
            for op in s.model.ops:
                info = {"op": op.name, "type": op.type, "min_ms": min(times[op.name]),
                        "median_ms": statistics.median(times[op.name])}
                if op.type in ("conv2d_u8", "conv2d_i8"):
                    wt = s.model.tensors[op.tensors["weight"]]
                    oh, ow, cout = s.model.values[op.output].shape[:3]
                    info["macs"] = int(oh * ow * cout * wt.shape[1] * wt.shape[2] * wt.shape[3])
                    info["shape"] = (f"{wt.shape[1]}x{wt.shape[2]}/s{op.attrs['stride'][0]} "
                                     f"{s.model.values[op.inputs[0]].shape[2]}->{cout} "
                                     f"{s.model.values[op.inputs[0]].shape[0]}px")
                ops.append(info)
            out.append({"model": os.path.basename(model), "isa": isa, "threads": th, "ops": ops,
                        "int8_mac_peak": peak, "loadavg": os.getloadavg(),
                        "fused_ops": len(getattr(s, "fused_ops", {}))})
print(json.dumps(out))
"""


def category(op: dict) -> str:
    t = op["type"]
    if t in ("bconv2d", "bdense"):
        return "binary"
    if t == "conv2d_u8":
        return "first layer"
    if t == "conv2d_i8":
        return "int8 conv"
    if t in ("add", "bitpack"):
        return t
    return "other"


def base_tree(commit: str) -> Path:
    """The baseline commit's Python package (src/), extracted once next to its engine build."""
    full = subprocess.run(["git", "rev-parse", commit], cwd=REPO_ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    dest = BUILDS / full[:12] / "tree"
    if not (dest / "src" / "onebit").is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        extract_commit(full, dest, "src/onebit")
    return dest / "src"


def run_worker(so: str, root: str, job: dict, extra_env: dict) -> list[dict]:
    env = dict(os.environ)
    env.pop("ONEBIT_ISA", None)
    env.pop("ONEBIT_FUSION", None)
    env.update(extra_env)
    res = subprocess.run([sys.executable, "-c", WORKER, so, root, json.dumps(job)],
                         capture_output=True, text=True, env=env)
    if res.returncode != 0:
        raise RuntimeError(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def summarize(runs: list[dict]) -> dict:
    """Per (model, isa, threads): category sums of op medians (median over processes' sums)."""
    acc: dict[tuple, dict[str, list[float]]] = {}
    convs: dict[tuple, dict[str, list[float]]] = {}
    peaks: dict[tuple, list[float]] = {}
    per_op: dict[tuple, dict[str, list[float]]] = {}
    for r in runs:
        key = (r["model"], r["isa"], r["threads"])
        for op in r["ops"]:
            per_op.setdefault(key, {}).setdefault(op["op"], []).append(op["median_ms"])
        if r.get("int8_mac_peak"):
            peaks.setdefault(key, []).append(r["int8_mac_peak"])
        sums = {c: 0.0 for c in CATEGORIES}
        sums.update({f"{c} (min)": 0.0 for c in CATEGORIES})
        for op in r["ops"]:
            sums[category(op)] += op["median_ms"]
            sums[f"{category(op)} (min)"] += op["min_ms"]
            if "macs" in op:
                convs.setdefault(key, {}).setdefault(f"{op['op']} {op['shape']}|{op['macs']}", []).append(op["median_ms"])
        sums["total"] = sum(sums[c] for c in CATEGORIES)
        sums["total (min)"] = sum(sums[f"{c} (min)"] for c in CATEGORIES)
        for c, v in sums.items():
            acc.setdefault(key, {}).setdefault(c, []).append(v)
    return {k: ({c: statistics.median(v) for c, v in d.items()},
                {n: statistics.median(v) for n, v in convs.get(k, {}).items()},
                statistics.median(peaks[k]) if k in peaks else None,
                {n: statistics.median(v) for n, v in per_op[k].items()}) for k, d in acc.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", help="commit whose tree and engine are the 'base' column")
    ap.add_argument("--model", action="append", required=True, help="a .onebit file (repeatable)")
    ap.add_argument("--isas", default="scalar,avx2,avxvnni,avx512")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=2, help="base/cur process pairs")
    ap.add_argument("--repeats", type=int, default=30, help="profile rounds per process (scalar: /10)")
    ap.add_argument("--peak-seconds", type=float, default=0.5)
    ap.add_argument("--json", help="write the records here")
    a = ap.parse_args(argv)
    job = {"models": [str(Path(m).resolve()) for m in a.model], "isas": a.isas.split(","),
           "threads": [int(t) for t in a.threads.split(",")], "repeats": a.repeats,
           "peak_seconds": a.peak_seconds}
    builds = {"unfused": ("-", "-", {"ONEBIT_FUSION": "0"}), "cur": ("-", "-", {"ONEBIT_FUSION": "1"})}
    if a.baseline:
        builds = {"base": (str(build_baseline(a.baseline)), str(base_tree(a.baseline)), {}), **builds}
    up0 = uptime()
    print(up0, flush=True)
    runs: dict[str, list[dict]] = {v: [] for v in builds}
    for _ in range(a.rounds):
        for version, (so, root, env) in builds.items():
            runs[version] += run_worker(so, root, job, env)
    up1 = uptime()
    info = machine()
    summ = {v: summarize(r) for v, r in runs.items()}
    records = []
    print(f"\n{info['cpu']}, commit {info['commit']}, baseline {a.baseline or '-'}; "
          f"median over {a.rounds} processes of the sum of op medians (ms); 'min' columns: "
          f"sums of op minima (on a busy machine a long op's median can include preemptions)")
    hdr = (f"{'model':24} {'isa':8} {'thr':>3} {'ver':7} {'total':>8} {'binary':>8} {'int8cv':>8} "
           f"{'first':>8} {'add':>7} {'bitpack':>7} {'other':>7} {'tot/bin':>7} {'min tot':>8} {'min bin':>8} {'min t/b':>7}")
    print(hdr)
    keys = sorted({k for s in summ.values() for k in s}, key=lambda k: (k[0], job["isas"].index(k[1]), k[2]))
    for key in keys:
        for version in builds:
            if key not in summ[version]:
                print(f"{key[0]:24} {key[1]:8} {key[2]:3d} {version:7} (ISA not in this build)")
                continue
            cats, convs, peak, ops_ms = summ[version][key]
            ratio = cats["total"] / cats["binary"] if cats["binary"] else float("nan")
            print(f"{key[0]:24} {key[1]:8} {key[2]:3d} {version:7} {cats['total']:8.3f} {cats['binary']:8.3f} "
                  f"{cats['int8 conv']:8.3f} {cats['first layer']:8.3f} {cats['add']:7.3f} {cats['bitpack']:7.3f} "
                  f"{cats['other']:7.3f} {ratio:7.2f} "
                  f"{cats['total (min)']:8.3f} {cats['binary (min)']:8.3f} {cats['total (min)'] / cats['binary (min)']:7.2f}")
            conv_rows = []
            for name, ms in convs.items():
                label, macs = name.rsplit("|", 1)
                rate = int(macs) / (ms * 1e-3)
                frac = rate / peak / key[2] if peak else None
                conv_rows.append({"op": label, "macs": int(macs), "median_ms": ms, "gmacs": rate / 1e9,
                                  "peak_fraction": frac})
            records.append({**info, "version": version, "model": key[0], "isa": key[1], "threads": key[2],
                            "categories_ms": cats, "total_over_binary": ratio,
                            "total_over_binary_min": cats["total (min)"] / cats["binary (min)"], "int8_convs": conv_rows,
                            "int8_mac_peak": peak, "uptime_before": up0, "uptime_after": up1,
                            "ops_ms": ops_ms, "fused_ops": max(r["fused_ops"] for r in runs[version]
                                                               if (r["model"], r["isa"], r["threads"]) == key),
                            "loadavg": [r["loadavg"] for r in runs[version]
                                        if (r["model"], r["isa"], r["threads"]) == key],
                            "baseline": a.baseline})
    print("\nint8 convs (cur build): G MAC/s, and the fraction of threads x the ISA's 1-thread int8 "
          "MAC peak (median over the processes, each measured right after its profile)")
    for r in records:
        if r["version"] != "cur":
            continue
        print(f"  {r['model']} {r['isa']} t{r['threads']}: peak {r['int8_mac_peak'] / 1e9:.1f} G MAC/s")
        for c in r["int8_convs"]:
            frac = f"{c['peak_fraction'] * 100:5.1f}%" if c["peak_fraction"] is not None else "  -"
            print(f"  {r['model']:24} {r['isa']:8} t{r['threads']} {c['op']:44} {c['macs'] / 1e6:7.1f} M "
                  f"{c['median_ms']:7.3f} ms {c['gmacs']:7.1f} G/s {frac}")
    print(up1)
    if a.json:
        write_json(records, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
