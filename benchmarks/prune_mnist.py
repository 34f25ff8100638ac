"""Pruning results for ``mnist-small`` on MNIST: ``benchmarks/prune_study.py`` with the MNIST
defaults of the first study (model mnist-small, 1 baseline epoch at lr 2e-3 on the first 55,000
training images, 100 fine-tuning steps, output in runs/prune_mnist). Same phases and flags::

    python benchmarks/prune_mnist.py baseline --seed 0 --epochs 1
    python benchmarks/prune_mnist.py baseline --seed 1 --epochs 1
    python benchmarks/prune_mnist.py grid --granularity channel
    python benchmarks/prune_mnist.py grid --granularity weight
    python benchmarks/prune_mnist.py table          # markdown table + accuracy-vs-bops PNG
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prune_study import ROOT, main  # noqa: E402

if __name__ == "__main__":
    main({"model": "mnist-small", "dataset": "mnist", "out": str(ROOT / "runs" / "prune_mnist")})
