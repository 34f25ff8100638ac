"""The C++ executor against the Python-loop Session of a BASELINE commit, and onebit-run, side by
side in one run, on zoo networks with random weights (benchmarks/make_zoo_models.py).

Per model, fresh processes alternate base, cur, base, cur ... (``--rounds``), each one loading
its build (the baseline: its own ``onebit`` package and engine, extracted with ``git archive``
and built once under runs/engine-builds/<commit>/), running one warm-up and ``--repeats`` timed
``Session.run`` calls on one fixed batch, and reporting the median and minimum milliseconds. The
current build also reports the sum of its kernel times (each op timed inside the executor,
``Session.op_times``). onebit-run (plain CMake build, ``--onebit-run``) runs the same batch in the
same rounds. Every build's logits must be equal bit for bit (checked, recorded). The baseline also
reports the sum of its op times (each op timed in Python around its kernel call, its
``Session.op_times``). The table gives per model the min of the processes' minima and the median
of their medians, and cur / base; a second table sets the speedup over the baseline beside its
bound with these kernels, base end to end / the current sum of kernel times (what an executor with
no overhead at all would reach).

    .venv/bin/python benchmarks/runtime/bench_executor.py --baseline a71f34e \\
        --onebit-run build-c/onebit-run --json benchmarks/results/executor.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _records import REPO_ROOT, extract_commit, machine, write_json  # noqa: E402
from bench_bconv_versions import build_baseline  # noqa: E402

# argv: engine .so, python package root ('' = installed), model, input .npy, repeats, threads, isa, out .json
WORKER = r"""
import importlib.util, json, sys, time, statistics
so, root, model, inp, repeats, threads, isa, out = sys.argv[1:9]
if root:  # the baseline's package, not the installed (editable) one
    sys.meta_path[:] = [f for f in sys.meta_path if "Redirect" not in type(f).__name__]
    sys.path.insert(0, root)
    spec = importlib.util.spec_from_file_location("onebit._engine", so)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.modules["onebit._engine"] = mod
import numpy as np
from onebit.runtime import Session
u = np.load(inp)
s = Session(model, threads=int(threads), isa=isa)
y = s.run(u)
samples = []
for _ in range(int(repeats)):
    t0 = time.perf_counter(); s.run(u); samples.append((time.perf_counter() - t0) * 1e3)
rec = {"median_ms": statistics.median(samples), "min_ms": min(samples), "logits": y.tobytes().hex()}
if hasattr(s, "_rt"):  # the C++ executor: each op timed inside it, and the same run end to end
    walls, sums = [], []
    for _ in range(int(repeats)):
        t0 = time.perf_counter(); _, ms = s._rt.run_timed(u); walls.append((time.perf_counter() - t0) * 1e3)
        sums.append(sum(ms))
    rec["kernel_sum_median_ms"] = statistics.median(sums)
    rec["kernel_sum_min_ms"] = min(sums)
    rec["timed_run_median_ms"] = statistics.median(walls)
    rec["timed_run_min_ms"] = min(walls)
    rec["overhead_ratio_median"] = statistics.median(w / k for w, k in zip(walls, sums))
    rec["activation_bytes"] = s.activation_bytes(u.shape[0])
    rec["ops"] = len(s._ops)
else:  # the Python loop: each op timed in Python around its kernel call (Session.op_times)
    times = s.op_times(u, int(repeats))
    sums = [sum(v[i] for v in times.values()) for i in range(int(repeats))]
    rec["kernel_sum_median_ms"] = statistics.median(sums)
    rec["kernel_sum_min_ms"] = min(sums)
json.dump(rec, open(out, "w"))
"""


def base_tree(commit: str) -> tuple[Path, Path]:
    so = build_baseline(commit)
    src = so.parent / "src"
    if not (src / "src" / "onebit").is_dir():
        src.mkdir(parents=True, exist_ok=True)
        extract_commit(commit, src, "src/onebit")
    return so, src / "src"


def run_worker(so: str, root: str, model: Path, inp: Path, repeats: int, threads: int, isa: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        r = subprocess.run([sys.executable, "-c", WORKER, so, root, str(model), str(inp), str(repeats),
                            str(threads), isa, f.name], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"worker ({'baseline' if root else 'current'}) failed:\n{r.stderr[-3000:]}")
        return json.loads(Path(f.name).read_text())


def run_binary(exe: Path, model: Path, raw: Path, repeats: int, threads: int, isa: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".bin") as f:
        r = subprocess.run([str(exe), str(model), "--input", str(raw), "--repeats", str(repeats), "--threads",
                            str(threads), "--isa", isa, "--logits", f.name, "--json"],
                           check=True, capture_output=True, text=True)
        rec = json.loads(r.stdout)
        rec["logits"] = Path(f.name).read_bytes().hex()
        return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="a71f34e", help="commit of the Python-loop Session")
    ap.add_argument("--models", default="mnist-small,cifar-binarynet,quicknet-small-clip,birealnet18-clip")
    ap.add_argument("--zoo", type=Path, default=REPO_ROOT / "runs" / "zoo")
    ap.add_argument("--onebit-run", type=Path, help="onebit-run binary of a plain CMake build")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--isa", default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--json")
    args = ap.parse_args(argv)

    import numpy as np

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from make_zoo_models import make

    from onebit.runtime import Session, engine

    isa = args.isa or engine.default_isa()
    so_base, root_base = base_tree(args.baseline)
    so_cur = engine.__file__
    records = []
    load0 = os.getloadavg()
    for name in args.models.split(","):
        clip = name.endswith("-clip")
        arch = name[:-5] if clip else name
        path = args.zoo / f"{name}.onebit"
        if not path.exists():
            args.zoo.mkdir(parents=True, exist_ok=True)
            make(arch, args.zoo, clip=clip)
        sess = Session(path)
        u = np.random.default_rng(0).integers(0, 256, (args.batch,) + sess.input_shape, dtype=np.uint8)
        tmp = Path(tempfile.mkdtemp())
        np.save(tmp / "u.npy", u)
        (tmp / "u.raw").write_bytes(u.tobytes())
        reps = max(5, args.repeats if sess.input_shape[0] <= 64 else args.repeats // 5)
        runs = {"base": [], "cur": [], "onebit-run": []}
        for _ in range(args.rounds):
            runs["base"].append(run_worker(str(so_base), str(root_base), path, tmp / "u.npy", reps, args.threads, isa))
            runs["cur"].append(run_worker(so_cur, "", path, tmp / "u.npy", reps, args.threads, isa))
            if args.onebit_run:
                runs["onebit-run"].append(run_binary(args.onebit_run, path, tmp / "u.raw", reps, args.threads, isa))
        logits = {k: {r["logits"] for r in v} for k, v in runs.items() if v}
        equal = len(set().union(*logits.values())) == 1
        rec = {"benchmark": "executor", "model": name, "file_bytes": path.stat().st_size, "batch": args.batch,
               "threads": args.threads, "isa": isa, "baseline": args.baseline, "rounds": args.rounds,
               "repeats": reps, "logits_equal": equal,
               "logits_sha256": hashlib.sha256(bytes.fromhex(runs["cur"][0]["logits"])).hexdigest()[:16],
               "ops": runs["cur"][0]["ops"], "activation_bytes": runs["cur"][0]["activation_bytes"]}
        for k, v in runs.items():
            if v:
                rec[f"{k}_min_ms"] = min(r["min_ms"] for r in v)
                rec[f"{k}_median_ms"] = statistics.median(r["median_ms"] for r in v)
        rec["base_kernel_sum_min_ms"] = min(r["kernel_sum_min_ms"] for r in runs["base"])
        rec["base_kernel_sum_median_ms"] = statistics.median(r["kernel_sum_median_ms"] for r in runs["base"])
        rec["kernel_sum_min_ms"] = min(r["kernel_sum_min_ms"] for r in runs["cur"])
        rec["kernel_sum_median_ms"] = statistics.median(r["kernel_sum_median_ms"] for r in runs["cur"])
        rec["timed_run_median_ms"] = statistics.median(r["timed_run_median_ms"] for r in runs["cur"])
        rec["timed_run_min_ms"] = min(r["timed_run_min_ms"] for r in runs["cur"])
        # end to end (one Session call, Python included) / the sum of that same run's op times
        rec["end_to_end_over_kernels"] = statistics.median(r["overhead_ratio_median"] for r in runs["cur"])
        # speedup over the Python loop, and its bound with these kernels: zero executor overhead
        rec["speedup_median"] = rec["base_median_ms"] / rec["cur_median_ms"]
        rec["speedup_bound_median"] = rec["base_median_ms"] / rec["kernel_sum_median_ms"]
        if runs["onebit-run"]:
            rec["onebit_run_peak_rss_bytes"] = max(r["peak_rss_bytes"] for r in runs["onebit-run"])
            rec["onebit_run_end_to_end_over_kernels"] = statistics.median(
                r["end_to_end_over_kernels"] for r in runs["onebit-run"])
        records.append(rec)
        print(f"{name}: done", file=sys.stderr, flush=True)
    load1 = os.getloadavg()
    m = machine()
    print(f"commit {m['commit']} vs baseline {args.baseline}; {m['cpu']}; isa {isa}; threads {args.threads}; "
          f"batch {args.batch}; load {load0[0]:.1f} -> {load1[0]:.1f}")
    for stat in ("median", "min"):
        print(f"{stat} ms      {'ops':>4} {'base':>9} {'cur':>9} {'kern sum':>9} {'onebit-run':>10} "
              f"{'cur/base':>8} {'cur/kern':>8} {'run/kern':>8} {'equal':>6}")
        for r in records:
            run = r.get(f"onebit-run_{stat}_ms", float("nan"))
            kern = r[f"kernel_sum_{stat}_ms"]
            print(f"{r['model']:22} {r['ops']:>4} {r[f'base_{stat}_ms']:>9.3f} {r[f'cur_{stat}_ms']:>9.3f} "
                  f"{kern:>9.3f} {run:>10.3f} {r[f'cur_{stat}_ms'] / r[f'base_{stat}_ms']:>8.3f} "
                  f"{r[f'cur_{stat}_ms'] / kern:>8.3f} {run / kern:>8.3f} {str(r['logits_equal']):>6}")
    print("speedup over the Python loop (medians, ms): its end to end, its op-time sum; Session end to end, "
          "kernel sum; speedup; bound = Python loop end to end / kernel sum")
    for r in records:
        print(f"{r['model']:22} {r['base_median_ms']:>9.3f} {r['base_kernel_sum_median_ms']:>9.3f} "
              f"{r['cur_median_ms']:>9.3f} {r['kernel_sum_median_ms']:>9.3f} {r['speedup_median']:>7.2f}x "
              f"{r['speedup_bound_median']:>7.2f}x")
    print("one call end to end / the sum of its own op times (median over runs): Session (Python), onebit-run (C API)")
    for r in records:
        print(f"{r['model']:22} {r['end_to_end_over_kernels']:.4f}  ({r['timed_run_median_ms']:.3f} ms "
              f"vs {r['kernel_sum_median_ms']:.3f} ms)   {r.get('onebit_run_end_to_end_over_kernels', float('nan')):.4f}")
    for r in records:
        r.update(m, loadavg_start=load0, loadavg_end=load1)
    if args.json:
        write_json(records, args.json)
    return 0 if all(r["logits_equal"] for r in records) else 1


if __name__ == "__main__":
    raise SystemExit(main())
