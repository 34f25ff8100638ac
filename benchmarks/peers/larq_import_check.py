"""Import every Larq Zoo reference model with onebit (no TensorFlow) and compare with Larq's logits.

Reads the directory written by ``larq_zoo_reference.py`` (run in ``.peers-venv``), imports each
``NAME.h5`` with :func:`onebit.convert.larq.from_larq`, runs the torch module on the same
images and compares its logits with Larq's. Random weights make a zoo model put almost every
image in one class, so besides the raw logits it compares the input-dependent part (logits minus
their mean over the batch) and the correlation. It also says whether the ``.onebit`` converter
can export the model and, if not, which layers and why. Prints a table and writes JSON.

    .venv/bin/python benchmarks/peers/larq_import_check.py --ref /tmp/larq-ref \
        --json benchmarks/peers/results/larq_import.json

Each record: ``model``, ``imported`` (bool), ``error`` (why not), ``max_abs_diff``,
``logit_scale`` (max |Larq logit|), ``rel_diff`` (= max_abs_diff / logit_scale),
``within_tolerance`` (rel_diff <= 1e-4), ``images_within_tolerance`` (fraction of images whose
logits are all within it), ``median_image_rel_diff``, ``centered_max_abs_diff``, ``correlation`` (Pearson, of
the batch-centered logits), ``layer_max_rel_diff`` / ``worst_layer`` / ``layers_within_tolerance``
(each layer fed Larq's own inputs, from ``NAME.layers.npz``, its output against Larq's, relative to
that output's largest magnitude), ``top1_agreement`` (raw), ``centered_top1_agreement``,
``distinct_top1`` / ``distinct_centered_top1`` (of Larq's logits), ``export`` ("ok" or the list of
``[layer, reason]``), ``import_seconds``. Top level: ``loadavg``, ``commit``, ``cpu``, versions.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

TOLERANCE = 1e-4
# Lambda layers of Larq Zoo models that return their input (larq_zoo/literature/real_to_bin_nets.py:
# ``Lambda(lambda x: x, name=f"{name}_out")``); the layer-by-layer comparison checks it
IDENTITY_LAMBDAS = {"RealToBinaryNet": ("*_out",)}


def identity_flags(name: str) -> list[str]:
    """``onebit import`` options declaring model ``name``'s identity Lambdas."""
    return [f for p in IDENTITY_LAMBDAS.get(name, ()) for f in ("--identity-lambda", p)]


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=os.path.dirname(os.path.abspath(__file__)), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def compare(ref: np.ndarray, got: np.ndarray) -> dict:
    d = np.abs(ref.astype(np.float64) - got)
    scale = float(np.abs(ref).max())
    rc, gc = ref - ref.mean(0, keepdims=True), got - got.mean(0, keepdims=True)
    corr = float(np.corrcoef(rc.ravel(), gc.ravel())[0, 1])
    return {
        "max_abs_diff": float(d.max()), "logit_scale": scale, "rel_diff": float(d.max() / max(scale, 1e-30)),
        "within_tolerance": bool(d.max() <= TOLERANCE * scale),
        # images whose every logit is within tolerance (a sign flip of a pre-activation within float
        # rounding of zero changes a binary layer's input bit and shows up on one image only)
        "images_within_tolerance": float((d.max(1) <= TOLERANCE * scale).mean()),
        "median_image_rel_diff": float(np.median(d.max(1)) / max(scale, 1e-30)),
        "centered_max_abs_diff": float(np.abs(rc - gc).max()), "correlation": corr,
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "centered_top1_agreement": float((rc.argmax(1) == gc.argmax(1)).mean()),
        "distinct_top1": int(len(set(ref.argmax(1).tolist()))),
        "distinct_centered_top1": int(len(set(rc.argmax(1).tolist()))),
    }


def layer_by_layer(m, path: str) -> dict:
    """Feed every imported layer Larq's own inputs (``NAME.layers.npz``) and compare its output
    with Larq's: each layer's error alone, without the sign flips that float rounding of a value
    near zero causes in one engine and not the other and that later layers amplify."""
    import torch

    ref = np.load(path)
    inv = {k: n for k, n in m.keras_names.items()}

    def torch_of(a):
        t = torch.from_numpy(np.ascontiguousarray(a))
        return t.permute(0, 3, 1, 2) if t.dim() == 4 else t

    worst, worst_layer, n = 0.0, None, 0
    with torch.no_grad():
        for key, ins in m.nodes:
            name = inv.get(key, key)
            srcs = ["__input__" if i == m.input_key else inv.get(i, i) for i in ins]
            if name not in ref.files or any(s_ not in ref.files for s_ in srcs):
                continue
            y = m.layers[key](*[torch_of(ref[s_]) for s_ in srcs]).double()
            y = y.permute(0, 2, 3, 1).numpy() if y.dim() == 4 else y.numpy()
            r = ref[name]
            rel = float(np.abs(y - r).max() / max(float(np.abs(r).max()), 1e-6))
            n += 1
            if rel > worst:
                worst, worst_layer = rel, name
    return {"layers_compared": n, "layer_max_rel_diff": worst, "worst_layer": worst_layer,
            "layers_within_tolerance": bool(worst <= TOLERANCE)}


def check(ref_dir: str, name: str, x: np.ndarray, batch: int) -> dict:
    import torch

    from onebit.convert.larq import from_larq
    from onebit.convert.larq.check import strip_softmax, unsupported

    rec = {"model": name}
    t0 = time.time()
    try:
        m = from_larq(os.path.join(ref_dir, f"{name}.h5"), identity_lambdas=IDENTITY_LAMBDAS.get(name, ()))
    except Exception as e:  # the record names why, the table lists it
        rec.update(imported=False, error=f"{type(e).__name__}: {e}")
        return rec
    rec["import_seconds"] = round(time.time() - t0, 2)
    ref = np.load(os.path.join(ref_dir, f"{name}.npz"))["logits"]
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        got = np.concatenate([m(xt[i:i + batch]).double().numpy() for i in range(0, len(xt), batch)])
    rec.update(imported=True, **compare(ref, got))
    lpath = os.path.join(ref_dir, f"{name}.layers.npz")
    if os.path.exists(lpath):
        rec.update(layer_by_layer(m, lpath))
    strip_softmax(m)
    problems = unsupported(m)
    rec["export"] = "ok" if not problems else [list(p) for p in problems]
    return rec


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ref", required=True, help="directory written by larq_zoo_reference.py")
    ap.add_argument("--json", dest="json_path", default=None)
    ap.add_argument("--models", default="all")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with open(os.path.join(args.ref, "manifest.json")) as f:
        manifest = json.load(f)
    x = np.load(os.path.join(args.ref, "images.npz"))["input"]
    out = {"loadavg": list(os.getloadavg()), "commit": _commit(), "cpu": platform.processor() or platform.machine(),
           "python": sys.version.split()[0], "torch": torch.__version__, "tolerance": TOLERANCE,
           "reference": {k: manifest.get(k) for k in ("tensorflow", "larq", "larq_zoo", "images", "seed")},
           "models": []}
    try:
        from onebit.runtime.provenance import cpu_model  # type: ignore

        out["cpu"] = cpu_model()
    except Exception:  # provenance is optional here: the platform string stays
        pass
    for name, mrec in manifest["models"].items():
        if args.models != "all" and name not in args.models.split(","):
            continue
        if "error" in mrec:
            rec = {"model": name, "imported": False, "error": f"not built by Larq: {mrec['error']}"}
        else:
            rec = check(args.ref, name, x, args.batch)
        out["models"].append(rec)
        if rec.get("imported"):
            exp = "ok" if rec["export"] == "ok" else f"no ({len(rec['export'])} layers)"
            lay = (f"  layer-by-layer max rel {rec['layer_max_rel_diff']:.2g} ({rec['layers_compared']} layers)"
                   if "layer_max_rel_diff" in rec else "")
            print(f"{name:22s} imported{lay}  max|diff| {rec['max_abs_diff']:.3g}  scale {rec['logit_scale']:.3g}  "
                  f"rel {rec['rel_diff']:.2g}  {'ok' if rec['within_tolerance'] else 'over'}  images ok "
                  f"{rec['images_within_tolerance']:.3f}  corr "
                  f"{rec['correlation']:.7f}  centered top-1 {rec['centered_top1_agreement']:.3f} "
                  f"({rec['distinct_centered_top1']} classes)  export {exp}", flush=True)
        else:
            print(f"{name:22s} NOT imported: {rec['error']}", flush=True)
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
