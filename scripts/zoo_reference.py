"""Zoo network files, fixed inputs and their x86 scalar logits, for the emulated ARM runs.

Writes into OUT, for every network of ``benchmarks/make_zoo_models.py`` (random weights, with
the BNN-Clip variants): ``NAME.onebit``, ``NAME.input`` (BATCH uint8 NHWC images from a seeded
generator, raw bytes) and ``NAME.logits`` (the float32 logits of the x86 build's scalar engine,
raw little-endian bytes, exactly what ``onebit-run --logits`` writes). Prints one line per network:
``NAME BATCH``.

    .venv/bin/python scripts/zoo_reference.py --out build-arm/zoo --batch 2
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from make_zoo_models import make  # noqa: E402

from onebit.runtime import Session  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--models", default="cifar-binarynet,quicknet-small,birealnet18")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    import torch

    with torch.no_grad():
        for name in args.models.split(","):
            for clip in (False, True):
                path = make(name, args.out, clip=clip, seed=args.seed)
                sess = Session(path, threads=1, isa="scalar")
                rng = np.random.default_rng(args.seed)
                x = rng.integers(0, 256, (args.batch, *sess.input_shape), dtype=np.uint8)
                logits = np.ascontiguousarray(sess.run(x), dtype="<f4")
                stem = path.with_suffix("")
                stem.with_suffix(".input").write_bytes(x.tobytes())
                stem.with_suffix(".logits").write_bytes(logits.tobytes())
                print(stem.name, args.batch, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
