"""Footprint of the standalone runtime: stripped sizes of onebit-run and libonebit.so (a plain
CMake build), and onebit-run's peak resident memory (VmHWM) per model against the goal
file size + planned activation bytes + 4 MiB.

    .venv/bin/python benchmarks/runtime/footprint.py --build-dir build-c --json benchmarks/results/footprint.json
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _records import REPO_ROOT, machine, write_json  # noqa: E402


def stripped_size(path: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        subprocess.run(["strip", "-o", str(out), str(path)], check=True)
        return out.stat().st_size


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", type=Path, default=REPO_ROOT / "build-c")
    ap.add_argument("--zoo", type=Path, default=REPO_ROOT / "runs" / "zoo")
    ap.add_argument("--models", default="mnist-small,cifar-binarynet,quicknet-small-clip,birealnet18-clip")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    from make_zoo_models import make

    exe, lib = args.build_dir / "onebit-run", args.build_dir / "libonebit.so"
    sizes = {"onebit_run_stripped_bytes": stripped_size(exe), "libonebit_stripped_bytes": stripped_size(lib)}
    rows = []
    for name in args.models.split(","):
        path = args.zoo / f"{name}.onebit"
        if not path.exists():
            args.zoo.mkdir(parents=True, exist_ok=True)
            make(name.removesuffix("-clip"), args.zoo, clip=name.endswith("-clip"))
        r = subprocess.run([str(exe), str(path), "--repeats", "3", "--threads", str(args.threads), "--json"],
                           check=True, capture_output=True, text=True)
        rec = json.loads(r.stdout)
        goal = path.stat().st_size + rec["activation_bytes"] + (4 << 20)
        rows.append({"model": name, "file_bytes": path.stat().st_size, "activation_bytes": rec["activation_bytes"],
                     "peak_rss_bytes": rec["peak_rss_bytes"], "goal_bytes": goal,
                     "within_goal": rec["peak_rss_bytes"] <= goal, "isa": rec["isa"], "threads": rec["threads"]})
    m = machine()
    print(f"commit {m['commit']}; {m['cpu']}; stripped onebit-run {sizes['onebit_run_stripped_bytes'] / 2**10:.0f} KiB, "
          f"libonebit.so {sizes['libonebit_stripped_bytes'] / 2**10:.0f} KiB")
    print(f"{'model':22} {'file MiB':>9} {'act MiB':>8} {'peak RSS MiB':>13} {'goal MiB':>9} {'ok':>4}")
    for r in rows:
        print(f"{r['model']:22} {r['file_bytes'] / 2**20:>9.2f} {r['activation_bytes'] / 2**20:>8.2f} "
              f"{r['peak_rss_bytes'] / 2**20:>13.2f} {r['goal_bytes'] / 2**20:>9.2f} {str(r['within_goal']):>4}")
    if args.json:
        write_json([{"benchmark": "footprint", **m, **sizes, **r, "loadavg": os.getloadavg()} for r in rows], args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
