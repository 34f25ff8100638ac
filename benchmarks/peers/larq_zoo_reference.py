"""Larq Zoo reference models for the importer: ``.h5`` files and Larq's logits on real images.

Runs inside ``.peers-venv`` (TensorFlow 2.16 + tf-keras + Larq + Larq Zoo). For every model of
``larq_zoo.sota`` and ``larq_zoo.literature`` it builds the model with ``weights=None``, gives it
random but non-degenerate weights (seeded: kernels from the Keras initializers, BatchNorm gamma,
beta, moving mean and variance drawn at random), removes the final softmax (the comparison is on
logits), saves ``NAME.h5`` with ``model.save`` and Larq's logits on a fixed batch of Imagenette
validation images (``NAME.npz``: ``logits``). The batch (``images.npz``: ``uint8`` NHWC and the
zoo's preprocessed float input) is shared by all models; ``NAME.layers.npz`` holds every layer's
output on the first image(s). ``manifest.json`` lists what was built
and, for a model that could not be built or saved, the error.

    .peers-venv/bin/python benchmarks/peers/larq_zoo_reference.py --out /tmp/larq-ref [--images 64]

``benchmarks/peers/larq_import_check.py`` (onebit's venv) then imports each file and compares.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
import time
import traceback

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

VAL = "imagenette2-224-thunderinfy-val.tar.gz"
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def zoo_models() -> list[tuple[str, object]]:
    import larq_zoo

    out = []
    for mod in (larq_zoo.sota, larq_zoo.literature):
        for name in mod.__all__:
            out.append((name, getattr(mod, name)))
    return out


def load_images(root: str, n: int) -> np.ndarray:
    """``n`` validation images (uint8 NHWC 224x224), spread over the classes, in a fixed order."""
    path = os.path.join(root, "imagenette", VAL)
    with tarfile.open(path) as tf_:
        members = sorted((m for m in tf_.getmembers() if m.isfile() and m.name.lower().endswith(".jpeg")),
                         key=lambda m: m.name)
        by_class: dict[str, list] = {}
        for m in members:
            by_class.setdefault(m.name.split("/")[-2], []).append(m)
        picked, i = [], 0
        while len(picked) < n:
            for c in sorted(by_class):
                if i < len(by_class[c]) and len(picked) < n:
                    picked.append(by_class[c][i])
            i += 1
        imgs = []
        for m in picked:
            data = tf_.extractfile(m).read()
            img = tf.image.decode_jpeg(data, channels=3)
            img = tf.image.resize_with_crop_or_pad(img, 224, 224)
            imgs.append(img.numpy())
    return np.stack(imgs).astype(np.uint8)


def randomize(model, rng: np.random.Generator) -> None:
    """Random non-degenerate BatchNorm parameters and statistics (kernels keep their random init)."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            new = []
            for w in layer.weights:
                n = w.name.rsplit("/", 1)[-1].split(":")[0]
                shape = tuple(w.shape)
                if n == "gamma":
                    new.append(rng.uniform(0.5, 1.5, shape))
                elif n == "beta":
                    new.append(rng.normal(0.0, 0.3, shape))
                elif n == "moving_mean":
                    new.append(rng.normal(0.0, 0.3, shape))
                else:
                    new.append(rng.uniform(0.5, 2.0, shape))
            layer.set_weights([v.astype(np.float32) for v in new])
        elif layer.weights and not isinstance(layer, tf.keras.layers.BatchNormalization):
            # biases start at zero: make them non-zero too
            ws = layer.get_weights()
            names = [w.name.rsplit("/", 1)[-1].split(":")[0] for w in layer.weights]
            ws = [rng.normal(0.0, 0.1, v.shape).astype(np.float32) if n == "bias" else v
                  for n, v in zip(names, ws)]
            layer.set_weights(ws)


def strip_softmax(model):
    last = model.layers[-1]
    if isinstance(last, tf.keras.layers.Softmax) or (
            isinstance(last, tf.keras.layers.Activation) and last.get_config().get("activation") == "softmax"):
        return tf.keras.Model(model.inputs, last.input, name=model.name)
    return model


def save_layer_outputs(model, x: np.ndarray, path: str) -> None:
    """Every layer's output on ``x`` (``NAME.layers.npz``, keyed by layer name; ``__input__`` = x):
    the importer's check feeds each onebit layer Larq's own inputs, layer by layer."""
    layers = [ly for ly in model.layers if not isinstance(ly, tf.keras.layers.InputLayer)
              and not isinstance(ly.output, (list, tuple))]  # multi-output layers (tf.split) are not saved
    sub = tf.keras.Model(model.inputs, [ly.output for ly in layers])
    ys = sub(x, training=False)
    ys = ys if isinstance(ys, (list, tuple)) else [ys]
    np.savez(path, __input__=x, **{ly.name: y.numpy() for ly, y in zip(layers, ys)})


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--data", default=os.environ.get("ONEBIT_DATA", "/work/shared/datasets"))
    ap.add_argument("--models", default="all", help="comma-separated names, or all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layer-images", type=int, default=1,
                    help="images whose every layer output is saved (NAME.layers.npz; 0: none)")
    ap.add_argument("--reuse", action="store_true",
                    help="load the weights of an existing NAME.h5 in --out instead of drawing them again")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    import larq
    import larq_zoo

    u8 = load_images(args.data, args.images)
    x = ((u8.astype(np.float32) / 255.0 - MEAN) / STD).astype(np.float32)
    np.savez(os.path.join(args.out, "images.npz"), uint8=u8, input=x)
    manifest = {"tensorflow": tf.__version__, "larq": getattr(larq, "__version__", "?"),
                "larq_zoo": getattr(larq_zoo, "__version__", "?"), "images": int(args.images),
                "seed": args.seed, "models": {}}
    mpath = os.path.join(args.out, "manifest.json")
    if args.reuse and os.path.exists(mpath):  # keep the records of the models not rerun
        with open(mpath) as f:
            manifest["models"] = json.load(f).get("models", {})
    wanted = None if args.models == "all" else set(args.models.split(","))
    for name, ctor in zoo_models():
        if wanted is not None and name not in wanted:
            continue
        rec = {}
        t0 = time.time()
        try:
            tf.keras.backend.clear_session()
            tf.keras.utils.set_random_seed(args.seed)
            model = ctor(weights=None, input_shape=(224, 224, 3))
            path = os.path.join(args.out, f"{name}.h5")
            if args.reuse and os.path.exists(path):
                model = strip_softmax(model)
                model.load_weights(path)
                model.save(path)  # same weights, saved as the model that is compared (no softmax)
            else:
                randomize(model, np.random.default_rng(args.seed))
                model = strip_softmax(model)
                model.save(path)
            logits = np.concatenate([model(x[i:i + 16], training=False).numpy() for i in range(0, len(x), 16)])
            np.savez(os.path.join(args.out, f"{name}.npz"), logits=logits.astype(np.float32))
            if args.layer_images:
                save_layer_outputs(model, x[:args.layer_images], os.path.join(args.out, f"{name}.layers.npz"))
                rec["layer_outputs"] = f"{name}.layers.npz"
            rec.update(h5=f"{name}.h5", logits=f"{name}.npz", params=int(model.count_params()),
                       layers=len(model.layers))
        except Exception as e:  # a model that cannot be built or saved is listed with its error
            rec["error"] = f"{type(e).__name__}: {e}"
            rec["traceback"] = traceback.format_exc(limit=3)
        rec["seconds"] = round(time.time() - t0, 1)
        manifest["models"][name] = rec
        print(name, "ok" if "error" not in rec else rec["error"][:200], f"{rec['seconds']}s", flush=True)
        with open(os.path.join(args.out, "manifest.json"), "w") as f:
            json.dump(manifest, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
