"""onebit's engine against Larq's forward on real images: every model of a reference directory.

Reads the directory written by ``larq_zoo_reference.py`` (``NAME.h5``, Larq's logits
``NAME.npz``, per-layer outputs ``NAME.layers.npz``, the images ``images.npz``). Each ``NAME.h5``
is exported twice with ``onebit import`` (the CLI, h5py only): with ``--float-boundary`` (the
non-binary layers in float32) and in the default integer data flow (int8 first layer). The
engine (:class:`onebit.runtime.Session`; this process never imports torch) runs both files on the
same uint8 images Larq read, and their logits are compared with Larq's:

- float boundary: max |diff| relative to the logit scale (max |Larq logit|; tolerance 1e-4),
  the fraction of images whose logits are all within it, the median per-image relative diff,
  the correlation of the batch-centered logits and the centered top-1 agreement;
- integer: raw top-1 agreement, batch-centered top-1 agreement (random weights put almost every
  image in one class, so raw top-1 proves little; the centered logits keep the input-dependent
  part) and the correlation.

A model that does not export is recorded with the CLI's message (the layer and the reason).
Where a mode misses its target (float boundary: every logit within tolerance; integer: centered
top-1 >= 99%), the engine's every value on the first image is compared with Larq's layer outputs
(``NAME.layers.npz``), in execution order: the first value that departs, and at every sign (a
``bitpack`` or a binary output stage) the signs that differ from Larq's with the magnitude of
Larq's value there (a value within rounding of zero flips a sign). Prints a table, writes JSON:

    .venv/bin/python benchmarks/peers/larq_agreement.py --ref /tmp/larq-ref \\
        --json benchmarks/peers/results/larq_agreement.json

Record: ``models`` (per model: ``model``, ``distinct_top1`` / ``distinct_centered_top1`` of Larq's
logits, ``float_boundary`` and ``integer``: ``export_error`` or the comparison of
``larq_import_check.compare`` plus ``file_bytes`` and ``engine_seconds``, ``target_met`` and,
when not met, ``layers`` (per engine value: ``value``, ``op``, ``kind``, ``layer`` (Larq's),
``rel_diff``, for signs ``flips`` / ``flip_max_rel`` (largest |Larq value| at a flipped sign,
relative to the tensor's largest |value|)) and ``first_departure``); top level: ``tolerance``,
``centered_top1_target``, ``images``, ``threads``, ``isa``, ``reference`` (TF / Larq versions),
``torch_imported`` (false: the engine path is torch-free), machine fields, ``loadavg``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from _records import machine, write_json  # noqa: E402
from larq_import_check import TOLERANCE, compare, identity_flags  # noqa: E402
from larq_models import export  # noqa: E402

CENTERED_TOP1_TARGET = 0.99
MODES = (("float_boundary", ("--float-boundary",)), ("integer", ()))
# a value departs from Larq's when its relative difference exceeds this (float32 rounding through
# a float layer is ~1e-6; int8 rounding of the first layer ~1e-2)
DEPART = {"float_boundary": TOLERANCE, "integer": 0.05}
ACTIVATIONS = {"clamp_f32", "sigmoid_f32", "prelu_f32"}  # engine ops of a Keras layer's activation argument
FOLDED = {"BatchNormalization", "Activation", "ReLU", "PReLU", "MaxPooling2D", "MaxPool2D", "Dropout"}


def _keras_graph(h5: Path) -> dict[str, tuple[str, list[str]]]:
    """``{layer name: (class, [consumer layer names])}`` from the file's ``model_config``."""
    import h5py

    with h5py.File(h5, "r") as f:
        cfg = f.attrs["model_config"]
    cfg = json.loads(cfg.decode() if isinstance(cfg, bytes) else cfg)["config"]
    out = {ly["name"]: (ly["class_name"], []) for ly in cfg["layers"]}
    for ly in cfg["layers"]:
        for node in ly.get("inbound_nodes", []):
            for inb in node:
                src = inb[0] if isinstance(inb, list) else inb
                if isinstance(src, str) and src in out:
                    out[src][1].append(ly["name"])
    return out


def _candidates(name: str, graph: dict) -> list[str]:
    """The Larq layers an engine value may stand for: the layer of the op's name and the chain
    of single consumers that the converter folds into its output stage (BN, activation, pool)."""
    base = name.removeprefix("layers.")  # a chain's op names are its torch module names
    while base not in graph and "." in base:
        base = base.rsplit(".", 1)[0]
    if base not in graph:
        return []
    out = [base]
    while len(graph[out[-1]][1]) == 1 and graph[graph[out[-1]][1][0]][0] in FOLDED:
        out.append(graph[out[-1]][1][0])
    return out


def _real(sess, name: str, v: np.ndarray) -> np.ndarray:
    """An engine value as real numbers (int8 times its scale; bits as +-1)."""
    from onebit.bits import unpack

    val = sess.model.values[name]
    if val.kind == "bits":
        return unpack(v, val.shape[-1]).astype(np.float64)
    if val.kind == "int8":
        return v.astype(np.float64) * float(val.scale)
    return v.astype(np.float64)


def layer_walk(sess, u8: np.ndarray, ref_layers: dict, graph: dict, depart: float) -> dict:
    """Every engine value on one image against the Larq layer output it stands for, in execution
    order; the first value whose relative difference exceeds ``depart`` (or whose signs differ)."""
    eng = sess.run_values(u8)
    rows, first = [], None
    readers = {}
    for op in sess.model.ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op)
    for op in sess.model.ops:
        v = sess.model.values[op.output]
        rd = readers.get(op.output, [])
        if len(rd) == 1 and rd[0].type == "clamp_f32" and "lower" in rd[0].tensors:
            # a per-channel clamp is an activation followed by a BatchNorm, whose scale and shift
            # the producer's output stage applies first: its output is BN(x) before the
            # activation, which Larq never computes (its next layer is the activation of x)
            continue
        if len(rd) == 1 and rd[0].type in ACTIVATIONS and \
                _candidates(rd[0].output, graph)[:1] == _candidates(op.output, graph)[:1]:
            continue  # a layer's value before its own activation (Dense(activation=...)): Larq records the activated one
        got = _real(sess, op.output, eng[op.output])
        got = got.reshape(got.shape[0], -1) if got.ndim == 2 else got
        # a sign reads its input's Larq layer; other values the layer of their own op
        src = op.inputs[0] if v.kind == "bits" and op.type == "bitpack" else op.output
        cands = _candidates(src, graph)
        # signs are the sign of the end of the folded chain (the value the next binary layer reads;
        # a binary output stage before a pool thresholds the BatchNorm that Larq applies after it)
        cands = cands[-1:] if v.kind == "bits" else cands
        best = None
        for cand in cands:
            if cand not in ref_layers or ref_layers[cand].size != got.size:
                continue
            r = ref_layers[cand].astype(np.float64).reshape(got.shape)
            scale = max(float(np.abs(r).max()), 1e-30)
            if v.kind == "bits":
                flip = np.where(r >= 0, 1.0, -1.0) != got
                row = {"flips": int(flip.sum()), "of": int(flip.size),
                       "flip_max_rel": float(np.abs(r[flip]).max() / scale) if flip.any() else 0.0,
                       "rel_diff": float(flip.mean())}
            else:
                row = {"rel_diff": float(np.abs(got - r).max() / scale)}
            if best is None or row["rel_diff"] < best["rel_diff"]:
                best = {"value": op.output, "op": op.type, "kind": v.kind, "layer": cand, **row}
        if best is None:
            continue
        rows.append(best)
        if first is None and (best.get("flips", 0) > 0 or (v.kind != "bits" and best["rel_diff"] > depart)):
            first = best
    return {"layers": rows, "first_departure": first}


def run_mode(h5: Path, dest: Path, flags, u8, ref, threads: int, batch: int) -> dict:
    from onebit.runtime import Session

    err = export(h5, dest, *flags)
    if err is not None:
        return {"export_error": err.removeprefix("Error: ").replace(str(h5), h5.name)}
    sess = Session(dest, threads=threads)
    t0 = time.time()
    got = np.concatenate([sess.run(np.ascontiguousarray(u8[i:i + batch])) for i in range(0, len(u8), batch)])
    rec = {"file_bytes": dest.stat().st_size, "engine_seconds": round(time.time() - t0, 2), "isa": sess.isa,
           **compare(ref, got.astype(np.float64))}
    return rec


def target_met(mode: str, rec: dict) -> bool:
    if "export_error" in rec:
        return False
    if mode == "float_boundary":
        return rec["within_tolerance"]
    return rec["centered_top1_agreement"] >= CENTERED_TOP1_TARGET


def check(ref_dir: Path, name: str, u8: np.ndarray, tmp: Path, threads: int, batch: int) -> dict:
    from onebit.runtime import Session

    h5 = ref_dir / f"{name}.h5"
    ref = np.load(ref_dir / f"{name}.npz")["logits"].astype(np.float64)
    rc = ref - ref.mean(0, keepdims=True)
    rec = {"model": name, "distinct_top1": len(set(ref.argmax(1).tolist())),
           "distinct_centered_top1": len(set(rc.argmax(1).tolist()))}
    lam = identity_flags(name)
    lpath = ref_dir / f"{name}.layers.npz"
    for mode, flags in MODES:
        dest = tmp / f"{name}.{mode}.onebit"
        r = run_mode(h5, dest, (*flags, *lam), u8, ref, threads, batch)
        r["target_met"] = target_met(mode, r)
        if not r["target_met"] and "export_error" not in r and lpath.exists():
            layers = dict(np.load(lpath))
            x0 = layers.pop("__input__")
            n0 = len(x0)
            # the images behind NAME.layers.npz are the first of images.npz
            r.update(layer_walk(Session(dest, threads=threads), u8[:n0], layers, _keras_graph(h5), DEPART[mode]))
        rec[mode] = r
    return rec


def _line(name: str, rec: dict) -> str:
    out = [f"{name:24s}"]
    fb, it = rec["float_boundary"], rec["integer"]
    if "export_error" in fb:
        out.append(f"float boundary: not exported ({fb['export_error'].splitlines()[-1][:80]})")
    else:
        out.append(f"float boundary: rel {fb['rel_diff']:.2g} images ok {fb['images_within_tolerance']:.3f} "
                   f"median {fb['median_image_rel_diff']:.2g} corr {fb['correlation']:.6f} "
                   f"centered top-1 {fb['centered_top1_agreement']:.3f}")
    if "export_error" in it:
        out.append(f"integer: not exported ({it['export_error'].splitlines()[-1][:80]})")
    else:
        out.append(f"integer: top-1 {it['top1_agreement']:.3f} centered top-1 {it['centered_top1_agreement']:.3f} "
                   f"corr {it['correlation']:.5f}")
    out.append(f"Larq classes {rec['distinct_top1']} raw / {rec['distinct_centered_top1']} centered")
    for mode in ("float_boundary", "integer"):
        f = rec[mode].get("first_departure")
        if f:
            what = (f"{f['flips']} of {f['of']} signs flipped, largest |Larq value| there {f['flip_max_rel']:.2g} of "
                    f"the tensor's" if "flips" in f else f"rel diff {f['rel_diff']:.2g}")
            out.append(f"{mode}: first departs at {f['value']} ({f['op']}, Larq layer {f['layer']}): {what}")
    return "\n    ".join(out)


def run_all(ref: Path, names, manifest: dict, u8: np.ndarray, tmp: Path, a, out: dict) -> None:
    for name in names:
        m = manifest["models"][name]
        if "error" in m:
            rec = {"model": name, "error": f"not built by Larq: {m['error']}"}
            print(f"{name:24s} {rec['error']}", flush=True)
        else:
            rec = check(ref, name, u8, tmp, a.threads, a.batch)
            print(_line(name, rec), flush=True)
            for p in tmp.glob(f"{name}.*.onebit"):
                p.unlink()
        out["models"].append(rec)
        out["loadavg"].append(list(os.getloadavg()))
        isas = {r[m]["isa"] for r in out["models"] for m in ("float_boundary", "integer") if "isa" in r.get(m, {})}
        out["isa"] = ", ".join(sorted(isas)) or None
        out["torch_imported"] = "torch" in sys.modules
        if a.json_path:  # after every model: a long run's record holds the models done so far
            write_json([out], a.json_path)



def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ref", required=True, help="directory written by larq_zoo_reference.py")
    ap.add_argument("--models", default="all", help="comma-separated names (default: every model of the manifest)")
    ap.add_argument("--threads", type=int, default=1, help="engine threads")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--json", dest="json_path", default=None)
    a = ap.parse_args(argv)
    if a.threads < 1 or a.batch < 1:
        ap.error("--threads and --batch must be >= 1")
    ref = Path(a.ref)
    mpath = ref / "manifest.json"
    if not mpath.is_file():
        ap.error(f"{mpath} missing: write the references with larq_zoo_reference.py")
    manifest = json.loads(mpath.read_text())
    names = list(manifest["models"])
    if a.models != "all":
        wanted = a.models.split(",")
        missing = [n for n in wanted if n not in manifest["models"]]
        if missing:
            ap.error(f"not in {mpath}: {', '.join(missing)}")
        names = wanted
    u8 = np.load(ref / "images.npz")["uint8"]
    out = {**machine(), "loadavg": [list(os.getloadavg())], "tolerance": TOLERANCE,
           "centered_top1_target": CENTERED_TOP1_TARGET, "images": int(len(u8)), "threads": a.threads,
           "reference": {k: manifest.get(k) for k in ("tensorflow", "larq", "larq_zoo", "images", "seed")},
           "models": []}
    tmp = Path(tempfile.mkdtemp(prefix="larq-agreement-"))
    try:
        run_all(ref, names, manifest, u8, tmp, a, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"CPU {out['cpu']}; ISA {out['isa']}; {a.threads} thread(s); {len(u8)} images; commit {out['commit']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
