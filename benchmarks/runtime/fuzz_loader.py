"""Fuzz figures of the C++ loader: builds onebit-fuzz-loader with AddressSanitizer (a plain CMake
build, -DONEBIT_ASAN=ON), writes the seed models (seed_models.py) and runs N mutated inputs.
Prints the figures (inputs tried, rejected, accepted and run, failures = crashes, leaks,
unexpected exceptions or inputs slower than the limit) and writes them as JSON.

    python benchmarks/runtime/fuzz_loader.py --iterations 100000 --json benchmarks/results/fuzz_loader.json
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import REPO_ROOT, machine, write_json  # noqa: E402
from seed_models import write_seeds  # noqa: E402


def build(build_dir: Path, asan: bool) -> Path:
    import nlohmann_json

    subprocess.run(["cmake", "-S", str(REPO_ROOT), "-B", str(build_dir), "-DONEBIT_PYTHON=OFF",
                    f"-DONEBIT_ASAN={'ON' if asan else 'OFF'}", "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
                    f"-DONEBIT_NLOHMANN_JSON_INCLUDE={nlohmann_json.get_include()}"],
                   check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", str(build_dir), "--target", "onebit-fuzz-loader", "-j", "2"],
                   check=True, stdout=subprocess.DEVNULL)
    return build_dir / "onebit-fuzz-loader"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--build-dir", default=str(REPO_ROOT / "build-asan"))
    ap.add_argument("--no-asan", action="store_true", help="plain build (no sanitizer)")
    ap.add_argument("--json", help="write the record here")
    args = ap.parse_args(argv)
    exe = build(Path(args.build_dir), not args.no_asan)
    seeds = write_seeds(Path(args.build_dir) / "seeds")
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=1")
    t0 = time.time()
    r = subprocess.run([str(exe), "--iterations", str(args.iterations), "--seed", str(args.seed),
                        *map(str, seeds)], capture_output=True, text=True, env=env)
    figures = json.loads(r.stdout.strip().splitlines()[-1]) if r.stdout.strip() else {}
    rec = {"benchmark": "fuzz_loader", **machine(), "asan": not args.no_asan, "exit_status": r.returncode,
           "seed_files": [p.name for p in seeds], **figures, "wall_s": round(time.time() - t0, 1),
           "loadavg": os.getloadavg()}
    print(f"{'inputs':>10} {'rejected':>9} {'accepted':>9} {'failures':>9} {'worst ms':>9}  asan  exit")
    print(f"{figures.get('iterations', 0):>10} {figures.get('rejected', 0):>9} {figures.get('accepted', 0):>9} "
          f"{figures.get('failures', '?'):>9} {figures.get('worst_ms', 0):>9.1f}  {str(rec['asan']):5} {r.returncode}")
    print(f"commit {rec['commit']}, {rec['cpu']}, load {rec['loadavg'][0]:.1f}")
    if r.returncode:
        print(r.stderr[-3000:], file=sys.stderr)
    if args.json:
        write_json([rec], args.json)
    return r.returncode


if __name__ == "__main__":
    raise SystemExit(main())
