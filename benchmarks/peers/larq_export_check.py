"""What keeps each Larq Zoo architecture from the ``.onebit`` format, without TensorFlow.

Builds every architecture stored in ``src/onebit/convert/larq/zoo`` (the configs written by
``larq_zoo_architectures.py``) with seeded random weights of the shapes its layers ask for
(BatchNorm scales and variances positive), drops the final softmax, folds a leading input
scaling, and asks the two checks of ``onebit import``: the layer list of
:func:`onebit.convert.larq.check.unsupported` (layers with no ``.onebit`` equivalent) and, where
that list is empty, the converter itself (:func:`onebit.convert.dag.build`, which stops at the
first layer it cannot represent). Prints one block per model and writes JSON:

    .venv/bin/python benchmarks/peers/larq_export_check.py --json benchmarks/peers/results/larq_export.json

Each record: ``model``; ``import`` (the import error, when the architecture cannot be rebuilt);
``unsupported`` (``{reason: [layers]}``); ``converter`` ("ok", the converter's refusal, or "not
run" when ``unsupported`` is not empty). Top level: ``commit``, ``input_shape``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# Lambda layers of Larq Zoo models that return their input (see larq_import_check.py)
IDENTITY_LAMBDAS = {"RealToBinaryNet": ("*_out",)}


def _random_weights(seed: int):
    """Make every layer builder read seeded random weights of the shape it asks for."""
    from onebit.convert.larq import layers as L

    rng = np.random.default_rng(seed)

    def w(self, key, shape=None, optional=False):
        self.used.add(key)
        a = rng.normal(0.0, 1.0, shape or (1,))
        return np.abs(a) + 0.5 if key in ("gamma", "moving_variance", "variance") else a

    L.Ctx.w = w


def check(name: str, input_shape) -> dict:
    from onebit.convert import ConversionError
    from onebit.convert.dag import build as convert
    from onebit.convert.larq import LarqImportError, zoo
    from onebit.convert.larq.build import build
    from onebit.convert.larq.check import fold_input_scaling, strip_softmax, unsupported
    from onebit.convert.larq.h5file import KerasFile

    rec = {"model": name}
    try:
        m = build(KerasFile(name, zoo.architecture(name), {}), input_shape, IDENTITY_LAMBDAS.get(name, ()))
    except LarqImportError as e:
        rec["import"] = str(e)
        return rec
    strip_softmax(m)
    shape = list(m.keras_input_shape)
    folded = fold_input_scaling(m, shape[-1])
    mean, std = (folded[0], folded[1]) if folded else (IMAGENET_MEAN, IMAGENET_STD)
    reasons: dict = {}
    for layer, why in unsupported(m):
        reasons.setdefault(why, []).append(layer)
    rec["unsupported"] = reasons
    if reasons:
        rec["converter"] = "not run"
        return rec
    try:
        convert(m, shape, mean, std)
        rec["converter"] = "ok"
    except ConversionError as e:
        rec["converter"] = str(e)
    return rec


def main() -> int:
    from onebit.convert.larq import zoo

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=None, help="architectures (default: all stored)")
    ap.add_argument("--size", type=int, default=224, help="input side (the zoo's 224 by default)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    _random_weights(a.seed)
    recs = []
    for name in a.models or zoo.names():
        rec = check(name, (a.size, a.size, 3))
        recs.append(rec)
        print(f"{name}:")
        if "import" in rec:
            print(f"  import: {rec['import']}")
            continue
        for why, layers in rec["unsupported"].items():
            print(f"  {len(layers):3d} x {why}  ({', '.join(layers[:3])}{' ...' if len(layers) > 3 else ''})")
        print(f"  converter: {rec['converter']}", flush=True)
    if a.json:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip() or "?"
        Path(a.json).write_text(json.dumps({"commit": commit, "input_shape": [a.size, a.size, 3],
                                            "seed": a.seed, "models": recs}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
