"""Before/after timing of two builds of the engine extension: `onebit bench` layers and model files,
the BASELINE commit's build and the installed (working tree's) one side by side in one run.

The baseline commit's sources (``git archive``) are built into a wheel once (cached under
``runs/engine-builds/<commit>/``, the extension only is used). Every case then runs in fresh
processes that alternate base, cur, base, cur ... (``--rounds``); each process preloads its
build's ``onebit._engine`` and runs ``onebit bench`` (layers: ``--layer``, bits-bits; models:
``MODEL --vs none``), so both builds run the same Python code and see the same machine load. The
table gives, per case, the minimum of the processes' minima and the median of their medians, and
cur / base ratios. ``uptime`` is printed before and after.

    .venv/bin/python benchmarks/bench_bconv_versions.py --baseline 3cb05fa \\
        --layer 16x16x192-256 --layer 16x16x256-256 --rounds 4 --repeats 100
    .venv/bin/python benchmarks/bench_bconv_versions.py --baseline 3cb05fa --model m.onebit --repeats 50

``--exec base|cur SCRIPT ARGS...`` runs any Python script with that build's engine instead (e.g.
``benchmarks/bench_pruned_models.py``, whose ratios are within one run; run it once per build,
back to back).
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import REPO_ROOT, extract_commit, machine, write_json  # noqa: E402

BUILDS = REPO_ROOT / "runs" / "engine-builds"

# Runs `onebit bench` with the extension at argv[1] loaded as onebit._engine.
PRELOAD = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("onebit._engine", sys.argv[1])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
sys.modules["onebit._engine"] = mod
import onebit
onebit._engine = mod
from onebit.cli import main
sys.argv = ["onebit", "bench"] + sys.argv[2:]
main()
"""


# Runs the script argv[2] (arguments argv[3:]) with the extension at argv[1] as onebit._engine.
EXEC = PRELOAD.split("from onebit.cli")[0] + """
import runpy
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def build_baseline(commit: str) -> Path:
    """The baseline commit's extension module (built once into runs/engine-builds/<commit>)."""
    full = subprocess.run(["git", "rev-parse", commit], cwd=REPO_ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    out = BUILDS / full[:12]
    found = sorted(out.glob("_engine*.so"))
    if found:
        return found[0]
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        src.mkdir()
        extract_commit(full, src)
        print(f"building {full[:12]} (once) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w",
                        str(Path(tmp) / "wheel"), str(src)], check=True)
        wheel = next((Path(tmp) / "wheel").glob("onebit-*.whl"))
        with zipfile.ZipFile(wheel) as z:
            name = next(n for n in z.namelist() if n.startswith("onebit/_engine") and n.endswith(".so"))
            (out / Path(name).name).write_bytes(z.read(name))
    return sorted(out.glob("_engine*.so"))[0]


def current_engine() -> Path:
    from onebit import _engine

    return Path(_engine.__file__)


def run_once(so: Path, args: list[str]) -> list[dict]:
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([sys.executable, "-c", PRELOAD, str(so)] + args + ["--json", f.name], check=True,
                       capture_output=True, text=True)
        return json.loads(Path(f.name).read_text())


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", required=True, help="commit whose engine build is the 'base' column")
    ap.add_argument("--layer", action="append", default=[], help="onebit bench --layer spec (repeatable)")
    ap.add_argument("--model", action="append", default=[], help="a .onebit model file (repeatable)")
    ap.add_argument("--isa", default="avx2")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--rounds", type=int, default=4, help="base/cur process pairs per case")
    ap.add_argument("--repeats", type=int, default=100, help="timed calls per process")
    ap.add_argument("--json", help="write the records here")
    ap.add_argument("--exec", choices=("base", "cur"), dest="exec_build",
                    help="run the script given after the options (and its arguments) with this build")
    ap.add_argument("script", nargs=argparse.REMAINDER, help="with --exec: the script and its arguments")
    a = ap.parse_args(argv)
    rest = a.script
    if a.exec_build:
        if not rest or not Path(rest[0]).is_file():
            ap.error("--exec needs a script path (then its arguments) after the options")
        so = build_baseline(a.baseline) if a.exec_build == "base" else current_engine()
        print(f"{a.exec_build} engine: {so}", flush=True)
        return subprocess.run([sys.executable, "-c", EXEC, str(so)] + rest).returncode
    if rest:
        ap.error(f"unrecognized arguments (a script needs --exec): {' '.join(rest)}")
    if not a.layer and not a.model:
        ap.error("give at least one --layer or --model")
    for m in a.model:
        if not Path(m).is_file():
            ap.error(f"--model {m}: no such file")
    builds = {"base": build_baseline(a.baseline), "cur": current_engine()}
    common = ["--isa", a.isa, "--threads", a.threads, "--repeats", str(a.repeats)]
    cases = [(spec, ["--layer", spec, "--pipeline", "bits-bits"] + common) for spec in a.layer]
    cases += [(Path(m).stem, [m, "--vs", "none"] + common) for m in a.model]
    up0 = uptime()
    print(up0, flush=True)
    rows, records = [], []
    for name, args in cases:
        got: dict[str, list[dict]] = {"base": [], "cur": []}
        for _ in range(a.rounds):
            for version in ("base", "cur"):
                got[version] += run_once(builds[version], args)
        row = {"case": name}
        for version in ("base", "cur"):
            row[f"{version} min"] = min(r["min_ms"] for r in got[version])
            row[f"{version} median"] = statistics.median(r["median_ms"] for r in got[version])
        row["cur/base min"] = row["cur min"] / row["base min"]
        row["cur/base median"] = row["cur median"] / row["base median"]
        rows.append(row)
        records.append(dict(machine(), case=name, baseline=a.baseline, isa=a.isa, threads=a.threads,
                            rounds=a.rounds, repeats=a.repeats, **{k.replace(" ", "_").replace("/", "_over_"): v
                                                                   for k, v in row.items() if k != "case"}))
        print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{v:>16}" for k, v in row.items()),
              flush=True)
    up1 = uptime()
    print(up1, flush=True)
    for r in records:
        r["uptime_start"], r["uptime_end"] = up0, up1
    print("\n| case | base min ms | cur min ms | cur/base min | base median ms | cur median ms | cur/base median |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['case']} | {r['base min']:.3f} | {r['cur min']:.3f} | {r['cur/base min']:.3f} | "
              f"{r['base median']:.3f} | {r['cur median']:.3f} | {r['cur/base median']:.3f} |")
    if a.json:
        write_json(records, a.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
