"""The peer engines timed beside a model (``onebit bench MODEL --vs``): LCE's indirect-BGEMM
and default paths (``lce``), TFLite/XNNPACK int8 (``int8``) and float32 (``float``).

They run in their own environment (``.peers-venv`` of a source checkout, built by
``benchmarks/peers/setup_peers.sh``) through ``benchmarks/peers/run_peers.py``, on random
weights of the same architecture (weights do not change latency) at width 1.
"""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from onebit.runtime.provenance import repo_root

VS_ENGINES = {"lce": ("lce-indirect", "lce-default"), "int8": ("xnnpack-int8",), "float": ("xnnpack-float",)}
PEER_MODELS = ("cifar-binarynet", "quicknet-small", "birealnet18", "binary-resnet-e18")


def peers_python() -> tuple[Path | None, Path | None]:
    """(checkout, the peer environment's python) when both exist, else (checkout or None, None)."""
    root = repo_root()
    if root is None or not (root / "benchmarks" / "peers" / "run_peers.py").is_file():
        return root, None
    py = root / ".peers-venv" / "bin" / "python"
    return root, (py if py.exists() else None)


def run_peers(name: str, engines, threads, repeats: int = 50, echo=print) -> list[dict]:
    """Peer records from ``run_peers.py`` in ``.peers-venv`` (empty list, with a note, if absent)."""
    root, py = peers_python()
    if py is None:
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


