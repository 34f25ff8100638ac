"""Store the architecture (Keras 2 model config JSON) of every Larq Zoo model in onebit.

Runs inside ``.peers-venv``. Writes ``src/onebit/convert/larq/zoo/NAME.json.gz``: the config of
``larq_zoo.<module>.NAME(weights=None)`` built in a fresh Keras session (the layer names a
training script gets), which ``onebit import WEIGHTS.h5 --larq-zoo NAME`` pairs with a
weights-only file (``model.save_weights``, the form Larq Zoo publishes).

    .peers-venv/bin/python benchmarks/peers/larq_zoo_architectures.py
"""
from __future__ import annotations

import gzip
import json
import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "onebit", "convert", "larq", "zoo")


def main() -> int:
    import larq_zoo

    os.makedirs(OUT, exist_ok=True)
    for mod in (larq_zoo.sota, larq_zoo.literature):
        for name in mod.__all__:
            tf.keras.backend.clear_session()
            model = getattr(mod, name)(weights=None)
            cfg = {"class_name": "Functional", "config": model.get_config(),
                   "keras_version": __import__("tf_keras").__version__, "larq_zoo": getattr(larq_zoo, "__version__", "?")}
            data = json.dumps(cfg, sort_keys=True).encode()
            with gzip.GzipFile(os.path.join(OUT, f"{name}.json.gz"), "wb", mtime=0) as f:
                f.write(data)
            print(name, len(data), "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
