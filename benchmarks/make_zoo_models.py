"""Write random-weight ``.onebit`` files of zoo networks for latency benchmarks.

Latency does not depend on the weights, so the benchmark models are the zoo architectures at
their default input size with random weights and BatchNorm statistics calibrated on a random
batch and then perturbed (``onebit.models.randomize_bn``), so that thresholds sit near
the data and every output stage is exercised. ``--clip`` also writes the BNN-Clip variant
(int8 shortcuts and data between blocks) as ``NAME-clip.onebit``.

    .venv/bin/python benchmarks/make_zoo_models.py --out runs/zoo --clip
    .venv/bin/onebit bench runs/zoo/cifar-binarynet.onebit --threads 1,2 --json PATH
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from onebit.convert.export import export, input_spec_for
from onebit.models import randomize_bn
from onebit.models import create

# name -> (dataset whose input spec the file records, input size)
MODELS = {
    "cifar-binarynet": ("cifar10", 32),
    "cifar-nin": ("cifar10", 32),
    "cifar-alexnet": ("cifar10", 32),
    "quicknet-small": ("imagenette", 224),
    "birealnet18": ("imagenette", 224),
    "imagenette-small": ("imagenette", 64),
    "mnist-small": ("mnist", 28),
}


def make(name: str, out: Path, *, clip: bool = False, width: float = 1.0, seed: int = 0) -> Path:
    dataset, size = MODELS[name]
    torch.manual_seed(seed)
    model = create(name, width=width, clip_block=clip).eval()
    channels = 1 if dataset == "mnist" else 3
    randomize_bn(model, seed=seed, input_shape=(channels, size, size))
    path = out / f"{name}{'-clip' if clip else ''}.onebit"
    export(model, path, input_spec=input_spec_for(model, dataset, input_size=size))
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/zoo"))
    ap.add_argument("--models", default="cifar-binarynet,quicknet-small,birealnet18",
                    help=f"comma list of {', '.join(MODELS)}")
    ap.add_argument("--clip", action="store_true", help="also write the BNN-Clip (int8 shortcut) variants")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with torch.no_grad():
        for name in args.models.split(","):
            if name not in MODELS:
                ap.error(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
            for clip in ([False, True] if args.clip else [False]):
                print(make(name, args.out, clip=clip, width=args.width, seed=args.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
