"""Before/after benchmark of the engine's non-binary ops and thread pool, side by side in one run.

Two versions of the engine are compiled into one C++ harness (benchmarks/engine_ops/): the
BASELINE commit's sources (``git archive``) and the working tree's, each under its own C++
namespace (``-Donebit=onebit_base`` / ``onebit_cur``), with the flags of CMakeLists.txt. Every
case runs in fresh processes that alternate base, cur, base, cur ... (``--rounds``), so both
versions see the same machine load and neither's spinning pool workers disturb the other; the
table gives min and median ms over all samples and the ratios base / cur. The two versions must
produce identical output bytes on every case (checked; both equal the scalar reference).

Cases: the int8 first-layer convolutions of birealnet18 / quicknet-small / cifar-binarynet and
the int8 shortcut convs (conv8), the float stem max pools (maxpool), the 1x1 float shortcut
convs as dense layers over pixels and the classifier head (dense), and thread-pool regions of 64
chunks (empty, ~0.1 ms, ~0.5 ms of work) with a 15 us gap between calls (a network's ops) and
2 ms (cold workers). Kernels run at 1 and 2 threads; AVX2.

Optional ``--models DIR``: Session.profile of every ``DIR/*.onebit`` with the current engine
(per-op medians summed by op type; whole-run min / median; 1 and 2 threads) and, for the float
stem max pool, a NumPy max pool (per-tap strided views) timed on the same data. A missing DIR is filled first with the zoo's cifar-binarynet, birealnet18 and
quicknet-small at width 1 with random weights (BN calibrated then perturbed:
``onebit.models.randomize_bn`` + ``onebit.convert.export``; needs torch).

    .venv/bin/python benchmarks/bench_engine_ops.py --json benchmarks/results/engine_ops.json
    .venv/bin/python benchmarks/bench_engine_ops.py --baseline 1f05902 --rounds 6 --repeats 40 \
        --models /tmp/m
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import REPO_ROOT, extract_commit, machine, write_json  # noqa: E402

DEFAULT_BASELINE = "1f05902"  # the commit benchmarks/results/engine_ops.json compares against
HERE = Path(__file__).resolve().parent / "engine_ops"
COMMON = ["-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-DONEBIT_HAVE_X86=1"]
AVX2 = ["-mavx2", "-mfma", "-mbmi", "-mbmi2", "-mpopcnt", "-mlzcnt", "-mf16c"]
AVX512 = AVX2 + ["-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mavx512vpopcntdq",
                 "-mavx512vnni"]
AVXVNNI = AVX2 + ["-mavxvnni"]
# The x86 source groups of a tree's CMakeLists.txt (file(GLOB ONEBIT_<GROUP>_SOURCES ...)) and
# their flags; each tree compiles its own list, so base and current may differ in files.
GROUP_FLAGS = {"CORE": [], "SCALAR": [], "AVX2": AVX2, "AVX512": AVX512, "AVXVNNI": AVXVNNI}


def units(root: Path) -> list[tuple[Path, list[str]]]:
    """(source file, ISA flags) of the engine core and x86 kernels, as ``root/CMakeLists.txt``
    globs them (the runtime, bindings and ARM groups are left out)."""
    text = (root / "CMakeLists.txt").read_text()
    out = []
    for group, pattern in re.findall(r"file\(GLOB ONEBIT_(\w+)_SOURCES CONFIGURE_DEPENDS (\S+)\)", text):
        if group in GROUP_FLAGS:
            out += [(f, GROUP_FLAGS[group]) for f in sorted(root.glob(pattern))]
    if not out:
        raise SystemExit(f"no engine sources found through {root / 'CMakeLists.txt'}")
    return out


# (case, label, threads list, gap_us)
CASES = [
    ("conv8:224:3:64:7:2:3:3", "int8 conv 224x224x3->64 7x7 s2 -> float (birealnet18 stem)", (1, 2), 0),
    ("conv8:224:3:32:3:2:1:3", "int8 conv 224x224x3->32 3x3 s2 -> float (quicknet-small stem)", (1, 2), 0),
    ("conv8:32:3:128:3:1:1:1", "int8 conv 32x32x3->128 3x3 s1 -> bits (cifar-binarynet conv0)", (1, 2), 0),
    ("conv8:56:64:128:2:2:0:2", "int8 conv 56x56x64->128 2x2 s2 -> int8 (int8 shortcut)", (1, 2), 0),
    ("conv8:14:256:512:2:2:0:2", "int8 conv 14x14x256->512 2x2 s2 -> int8 (int8 shortcut)", (1, 2), 0),
    ("maxpool:112:64:3:2:1", "float max pool 112x112x64 3x3 s2 p1 (birealnet18 stem)", (1, 2), 0),
    ("maxpool:112:32:2:2:0", "float max pool 112x112x32 2x2 s2 (quicknet-small stem)", (1, 2), 0),
    ("dense:784:64:128", "float 1x1 conv 28x28x64->128 (birealnet18 s2 shortcut)", (1, 2), 0),
    ("dense:196:128:256", "float 1x1 conv 14x14x128->256 (birealnet18 s3 shortcut)", (1, 2), 0),
    ("dense:49:256:512", "float 1x1 conv 7x7x256->512 (birealnet18 s4 / quicknet t4)", (1, 2), 0),
    ("dense:784:32:64", "float 1x1 conv 28x28x32->64 (quicknet-small t2)", (1, 2), 0),
    ("dense:1:512:1000", "float dense 512->1000 (classifier head, batch 1)", (1,), 0),
    ("region:0", "pool: empty region (64 chunks), 15 us gap", (2,), 15),
    ("region:0", "pool: empty region (64 chunks), 2 ms gap", (2,), 2000),
    ("region:1500", "pool: ~0.1 ms region, 15 us gap", (1, 2), 15),
    ("region:8000", "pool: ~0.5 ms region, 15 us gap", (1, 2), 15),
    ("region:8000", "pool: ~0.5 ms region, 2 ms gap", (2,), 2000),
]


def loadavg() -> float:
    return os.getloadavg()[0]


def build(baseline: str, cxx: str, workdir: Path) -> Path:
    """Compile the baseline and current engine units + shims + main into one executable."""
    base_src = workdir / "base"
    base_src.mkdir()
    extract_commit(baseline, base_src, "src/cpp", "CMakeLists.txt")
    trees = {"base": base_src, "cur": REPO_ROOT}
    jobs = []
    for variant, root in trees.items():
        ns = [f"-Donebit=onebit_{variant}", f"-I{root / 'src' / 'cpp'}"]
        for src, flags in units(root):
            obj = workdir / f"{variant}_{src.relative_to(root).as_posix().replace('/', '_')}.o"
            jobs.append([cxx, *COMMON, *ns, *flags, "-c", str(src), "-o", str(obj)])
        jobs.append([cxx, *COMMON, *ns, f"-DVARIANT={variant}", "-c", str(HERE / "shim.cpp"),
                     "-o", str(workdir / f"{variant}_shim.o")])
    jobs.append([cxx, *COMMON, "-c", str(HERE / "main.cpp"), "-o", str(workdir / "main.o")])
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for res in ex.map(lambda cmd: subprocess.run(cmd, capture_output=True, text=True), jobs):
            if res.returncode != 0:
                raise SystemExit(f"compilation failed:\n{' '.join(res.args)}\n{res.stderr[-3000:]}")
    exe = workdir / "harness"
    subprocess.run([cxx, "-o", str(exe), *map(str, sorted(workdir.glob("*.o"))), "-lpthread"],
                   check=True)
    return exe


def run_case(exe: Path, case: str, threads: int, rounds: int, repeats: int, gap: int) -> dict:
    samples = {"base": [], "cur": []}
    hashes = {"base": set(), "cur": set()}
    load = []
    for _ in range(rounds):
        for variant in ("base", "cur"):
            load.append(loadavg())
            out = subprocess.run([str(exe), variant, case, str(threads), str(repeats), str(gap)],
                                 capture_output=True, text=True, check=True, timeout=600).stdout
            rec = json.loads(out)
            samples[variant] += rec["samples_ms"]
            hashes[variant].add(rec["hash"])
    identical = hashes["base"] == hashes["cur"] and len(hashes["cur"]) == 1
    if case.startswith("region"):
        identical = True  # no output
    res = {"identical_output": identical, "loadavg_1m_min": min(load), "loadavg_1m_max": max(load)}
    for v in ("base", "cur"):
        res[f"{v}_min_ms"] = min(samples[v])
        res[f"{v}_median_ms"] = statistics.median(samples[v])
        res[f"{v}_n"] = len(samples[v])
    return res


def numpy_maxpool_f32(x, out, kh, kw, sh, sw, ph, pw):
    """A float32 max pool in NumPy (per-tap strided views): the comparison for the engine's stem
    pool."""
    import numpy as np

    h, w = x.shape[1], x.shape[2]
    oh, ow = out.shape[1], out.shape[2]
    out.fill(-np.inf)
    for i in range(kh):
        y0 = max(0, -((i - ph) // sh))
        y1 = min(oh, (h - 1 - i + ph) // sh + 1)
        if y1 <= y0:
            continue
        for j in range(kw):
            x0 = max(0, -((j - pw) // sw))
            x1 = min(ow, (w - 1 - j + pw) // sw + 1)
            if x1 <= x0:
                continue
            iy, ix = y0 * sh - ph + i, x0 * sw - pw + j
            src = x[:, iy:iy + sh * (y1 - y0 - 1) + 1:sh, ix:ix + sw * (x1 - x0 - 1) + 1:sw]
            np.maximum(out[:, y0:y1, x0:x1], src, out=out[:, y0:y1, x0:x1])


def make_models(models_dir: Path) -> None:
    """Random-weight zoo models (float shortcuts, the zoo default) exported to models_dir."""
    import torch

    from onebit.convert.export import export
    from onebit.models import randomize_bn
    from onebit.models import create

    models_dir.mkdir(parents=True, exist_ok=True)
    for name, dataset, size in (("cifar-binarynet", "cifar10", 32), ("birealnet18", "imagenette", 224),
                                ("quicknet-small", "imagenette", 224)):
        torch.manual_seed(0)
        m = create(name).eval()
        randomize_bn(m, input_shape=(3, size, size))
        export(m, models_dir / f"{name}.onebit", dataset=dataset)


def model_rows(models_dir: Path, repeats: int) -> list[dict]:
    """Current-engine Session.profile per model (1 thread), per-op-type sums; stem pool vs NumPy."""
    import numpy as np

    from onebit.runtime import Session
    from onebit.runtime.engine import engine

    rows = []
    for path in sorted(models_dir.glob("*.onebit")):
        for threads in (1, 2):
            s = Session(path, threads=threads, isa="avx2")
            x = np.random.default_rng(0).integers(0, 256, (1,) + s.input_shape, dtype=np.uint8)
            load0 = loadavg()
            prof = s.profile(x, repeats=repeats)
            by_type: dict[str, float] = {}
            for p in prof:
                by_type[p["type"]] = by_type.get(p["type"], 0.0) + p["median_ms"]
            runs = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                s.run(x)
                runs.append((time.perf_counter() - t0) * 1e3)
            rows.append({"model": path.stem, "threads": threads, "ops_ms": sum(by_type.values()),
                         "run_min_ms": min(runs), "run_median_ms": statistics.median(runs),
                         "by_type_ms": by_type, "loadavg_1m": max(load0, loadavg())})
            if threads == 1:  # stem pool: engine kernel vs the former NumPy implementation
                for op in s.model.ops:
                    if op.type == "maxpool2d" and s.model.values[op.inputs[0]].kind == "f32":
                        a = op.attrs
                        (kh, kw), (sh, sw), (ph, pw) = a["kernel"], a["stride"], a["padding"]
                        if a.get("ceil_mode"):
                            continue
                        xin = np.random.default_rng(1).standard_normal(
                            (1,) + tuple(s.model.values[op.inputs[0]].shape)).astype(np.float32)
                        out = np.empty((1,) + tuple(s.model.values[op.output].shape), np.float32)
                        ref = out.copy()
                        numpy_maxpool_f32(xin, ref, kh, kw, sh, sw, ph, pw)
                        times = {"numpy": [], "engine": []}
                        for _ in range(repeats):
                            t0 = time.perf_counter()
                            numpy_maxpool_f32(xin, out, kh, kw, sh, sw, ph, pw)
                            times["numpy"].append((time.perf_counter() - t0) * 1e3)
                            t0 = time.perf_counter()
                            engine.maxpool2d_float(xin, out, kh, kw, sh, sw, ph, pw, isa="avx2", threads=1)
                            times["engine"].append((time.perf_counter() - t0) * 1e3)
                        rows.append({"model": path.stem, "op": op.name, "shape": list(xin.shape),
                                     "numpy_min_ms": min(times["numpy"]),
                                     "numpy_median_ms": statistics.median(times["numpy"]),
                                     "engine_min_ms": min(times["engine"]),
                                     "engine_median_ms": statistics.median(times["engine"]),
                                     "equal_values": bool(np.array_equal(out, ref)),
                                     "loadavg_1m": loadavg()})
                        break
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit to compare against")
    ap.add_argument("--rounds", type=int, default=4, help="alternating base/cur processes per case")
    ap.add_argument("--repeats", type=int, default=30, help="timed calls per process")
    ap.add_argument("--cases", default="", help="substring filter on the case ids")
    ap.add_argument("--models", type=Path, help="directory of .onebit files to profile")
    ap.add_argument("--json", type=Path, help="write the records here")
    ap.add_argument("--cxx", default=shutil.which("g++") or "g++")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.repeats < 1:
        ap.error("--rounds and --repeats must be >= 1")
    baseline = subprocess.run(["git", "rev-parse", "--short", args.baseline], cwd=REPO_ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    info = machine()
    print(f"# engine ops, baseline {baseline} vs working tree {info['commit']}; {info['cpu']}, "
          f"{info['cores']} cores; AVX2; load {loadavg():.2f}")
    records = []
    with tempfile.TemporaryDirectory(prefix="onebit-engine-ops-") as tmp:
        exe = build(baseline, args.cxx, Path(tmp))
        header = f"{'case':<68} {'thr':>3} {'base min':>9} {'base med':>9} {'cur min':>9} {'cur med':>9} {'min x':>6} {'med x':>6} {'load':>9} same"
        print(header)
        for case, label, thread_list, gap in CASES:
            if args.cases and args.cases not in case:
                continue
            for threads in thread_list:
                r = run_case(exe, case, threads, args.rounds, args.repeats, gap)
                rec = {"benchmark": "engine_ops", "case": case, "label": label, "threads": threads,
                       "gap_us": gap, "isa": "avx2", "batch": 1, "baseline": baseline, **r, **info}
                records.append(rec)
                print(f"{label:<68} {threads:>3} {r['base_min_ms']:9.4f} {r['base_median_ms']:9.4f} "
                      f"{r['cur_min_ms']:9.4f} {r['cur_median_ms']:9.4f} "
                      f"{r['base_min_ms'] / r['cur_min_ms']:6.2f} {r['base_median_ms'] / r['cur_median_ms']:6.2f} "
                      f"{r['loadavg_1m_min']:4.1f}-{r['loadavg_1m_max']:<4.1f} {'yes' if r['identical_output'] else 'NO'}",
                      flush=True)
    if args.models:
        if not any(args.models.glob("*.onebit")):
            make_models(args.models)
        print("\n# Session (current engine, avx2): sum of per-op medians by op type; whole-run min/median")
        for row in model_rows(args.models, args.repeats):
            row.update({"benchmark": "engine_ops_session", **info})
            records.append(row)
            if "op" in row:
                print(f"{row['model']} {row['op']} {row['shape']}: NumPy {row['numpy_min_ms']:.3f} / "
                      f"{row['numpy_median_ms']:.3f} ms, engine {row['engine_min_ms']:.3f} / "
                      f"{row['engine_median_ms']:.3f} ms (min / median), equal values: {row['equal_values']}")
            else:
                types = ", ".join(f"{k} {v:.3f}" for k, v in sorted(row["by_type_ms"].items(), key=lambda kv: -kv[1]))
                print(f"{row['model']} threads={row['threads']}: ops {row['ops_ms']:.3f} ms, run min "
                      f"{row['run_min_ms']:.3f} median {row['run_median_ms']:.3f} (load {row['loadavg_1m']:.1f}); {types}")
    if args.json:
        write_json(records, args.json)
        print(f"wrote {len(records)} records to {args.json}")
    bad = [r for r in records if r.get("identical_output") is False]
    if bad:
        print(f"ERROR: base and current outputs differ on {[r['case'] for r in bad]}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
