"""Time the peer engines onebit must beat: LCE 0.16 (indirect BGEMM and default paths) and
TFLite/XNNPACK float32 and int8, on the same layers and networks, batch 1, float in / float out.

Runs inside ``.peers-venv`` (``benchmarks/peers/setup_peers.sh``)::

    .peers-venv/bin/python benchmarks/peers/run_peers.py --layers all --models none --threads 1,2
    .peers-venv/bin/python benchmarks/peers/run_peers.py --models cifar-binarynet --json -

``--json -`` writes the JSON list of records to stdout and the table to stderr (this is how the
onebit benchmarks call it through ``subprocess``). One record per (target, engine, threads).
Each time is one ``set input -> invoke -> read output`` round trip of the interpreter on a fixed
random input; ``median_ms`` is the median over ``--repeats`` runs after ``--warmup`` runs.
Exit status: 0 when every requested measurement was made, 1 when some failed (the others are
still reported; the failures are printed on stderr), 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import importlib.util
import json
import os
import statistics
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
H5_PREFIX = "h5:"  # a --h5 target's name: the prefix and the file's absolute path
REPO = HERE.parent.parent

ENGINES = ("lce-indirect", "lce-default", "xnnpack-int8", "xnnpack-float", "ort-float")
DEFAULT_ENGINES = ("lce-indirect", "lce-default", "xnnpack-int8", "xnnpack-float")
# Which model file each engine runs.
_FORMAT = {
    "lce-indirect": "lce",
    "lce-default": "lce",
    "xnnpack-int8": "int8",
    "xnnpack-float": "float",
    "ort-float": "onnx",
}


def _provenance():
    """``onebit.runtime.provenance`` (CPU model, commit) loaded from this checkout: the peers'
    environment does not install onebit, and the module needs nothing beyond the standard library."""
    spec = importlib.util.spec_from_file_location("onebit_provenance", REPO / "src/onebit/runtime/provenance.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def _die(msg: str):
    """Bad arguments: a clear message on stderr and exit status 2 (argparse's convention)."""
    print(f"run_peers: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _parse_list(value: str, names, what: str) -> list[str]:
    if value in ("all",):
        return list(names)
    if value in ("none", ""):
        return []
    out = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in out if v not in names]
    if bad:
        _die(f"unknown {what} {bad}; choose from {list(names)}, 'all' or 'none'")
    return out


def _parse_layers(value: str) -> list[str]:
    """Layer specs separated by ';' (a spec may carry ',k=..,s=..') or ',' when none does."""
    from models import REFERENCE_LAYERS, parse_layer

    if value == "all":
        return [parse_layer(s) for s in REFERENCE_LAYERS]
    if value in ("none", ""):
        return []
    if ";" in value:
        parts = value.split(";")
    else:
        # "56x56x64-64,k=3,s=1,28x28x128-128": re-attach k=/s= options to the preceding spec.
        parts = []
        for tok in value.split(","):
            tok = tok.strip()
            if not tok:
                continue
            if tok[:2] in ("k=", "s=") and parts:
                parts[-1] += "," + tok
            else:
                parts.append(tok)
    specs = []
    for p in parts:
        try:
            specs.append(parse_layer(p))
        except ValueError as e:
            _die(str(e))
    return specs


def _parse_threads(value: str) -> list[int]:
    try:
        threads = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        _die(f"--threads wants integers like 1,2, got {value!r}")
    if not threads or min(threads) < 1:
        _die(f"--threads wants positive integers, got {value!r}")
    return threads


class ModelCache:
    """Converted model files, keyed by target, variant, format, options, models.py and versions.

    Conversion of the ImageNet networks (and int8 calibration) takes tens of seconds; the bytes
    do not change between runs with the same key, so they are kept on disk.
    """

    def __init__(self, root: Path | None):
        import larq_compute_engine as lce
        import tensorflow as tf

        self.root = root
        src = (HERE / "models.py").read_bytes()
        self.salt = hashlib.sha256(
            src + f"tf{tf.__version__}lce{lce.__version__}".encode()
        ).hexdigest()[:12]
        self._keras = {}

    def _keras_model(self, name, variant, pad_values, seed):
        import models

        if name.startswith(H5_PREFIX):  # a saved model: its own weights and padding
            if variant != "binary":
                raise ValueError(f"{name}: a saved .h5 model runs on the LCE engines only")
            key = (name,)
            if key not in self._keras:
                self._keras[key] = models.load_h5(name[len(H5_PREFIX):])
            return self._keras[key]
        key = (name, variant, pad_values, seed)
        if key not in self._keras:
            self._keras[key] = models.build(name, variant, pad_values=pad_values, seed=seed)
        return self._keras[key]

    def get(self, name: str, fmt: str, pad_values: float, seed: int) -> bytes:
        import models

        if name.startswith(H5_PREFIX):
            digest = hashlib.sha256(Path(name[len(H5_PREFIX):]).read_bytes()).hexdigest()[:12]
            tag = f"h5-{digest}-{fmt}-{self.salt}"
        else:
            tag = f"{name.replace(',', '_').replace('=', '')}-{fmt}-p{pad_values:g}-s{seed}-{self.salt}"
        path = self.root / f"{tag}.bin" if self.root else None
        if path is not None and path.is_file():
            return path.read_bytes()
        if fmt == "lce":
            data = models.to_lce(self._keras_model(name, "binary", pad_values, seed))
        elif fmt == "float":
            data = models.to_tflite_float(self._keras_model(name, "float", 1.0, seed))
        elif fmt == "int8":
            data = models.to_tflite_int8(self._keras_model(name, "float", 1.0, seed), seed=seed)
        elif fmt == "onnx":
            import onnx_export

            data = onnx_export.keras_to_onnx(self._keras_model(name, "float", 1.0, seed))
        else:
            raise ValueError(fmt)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return data

    def bitmacs(self, name: str, pad_values: float, seed: int) -> int:
        import models

        if name in models.MODELS or name.startswith(H5_PREFIX):
            return models.binary_macs(self._keras_model(name, "binary", pad_values, seed))
        return models.parse_layer(name).bitmacs


def _runner(engine: str, data: bytes, threads: int, seed: int):
    """Return (run, n_delegated_note): run() does one set-input / invoke / get-output."""
    import numpy as np

    rng = np.random.default_rng(seed)
    if engine.startswith("lce-"):
        from larq_compute_engine import testing

        interp = testing.Interpreter(
            data,
            num_threads=threads,
            use_indirect_bgemm=engine == "lce-indirect",
            use_xnnpack=_OPTS["lce_xnnpack"],
        )
        wrapper = interp.interpreter  # C++ LiteInterpreter: predict([x]) -> [y]
        (shape,) = interp.input_shapes
        x = rng.standard_normal(shape).astype(np.float32)
        return lambda: wrapper.predict([x])
    if engine.startswith("xnnpack-"):
        import tensorflow as tf

        # OpResolverType.AUTO (the default) applies TFLite's default XNNPACK delegate.
        interp = tf.lite.Interpreter(model_content=data, num_threads=threads)
        interp.allocate_tensors()
        (inp,) = interp.get_input_details()
        (out,) = interp.get_output_details()
        if inp["dtype"] == np.float32:
            x = rng.standard_normal(inp["shape"]).astype(np.float32)
        else:
            x = rng.integers(-128, 128, inp["shape"]).astype(inp["dtype"])

        def run():
            interp.set_tensor(inp["index"], x)
            interp.invoke()
            return interp.get_tensor(out["index"])

        return run
    if engine == "ort-float":
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        i0 = sess.get_inputs()[0]
        # symbolic (None-batch) dims come back as strings: batch 1
        x = rng.standard_normal([d if isinstance(d, int) else 1 for d in i0.shape]).astype(np.float32)
        return lambda: sess.run(None, {i0.name: x})
    raise ValueError(engine)


def _time(run, warmup: int, repeats: int) -> tuple[list[float], list[float]]:
    """Wall-clock ms per run, and CPU ms the calling thread spent per run.

    With one interpreter thread all the work runs on the calling thread, so its CPU time is the
    run's cost without the time spent preempted by other processes: on a shared, loaded machine
    it is the better estimate of the unloaded latency (it still includes cache damage).
    """
    for _ in range(warmup):
        run()
    times, cpu = [], []
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            c0 = time.thread_time_ns()
            t0 = time.perf_counter_ns()
            run()
            t1 = time.perf_counter_ns()
            c1 = time.thread_time_ns()
            times.append((t1 - t0) / 1e6)
            cpu.append((c1 - c0) / 1e6)
    finally:
        if gc_was:
            gc.enable()
    return times, cpu


# Largest |peer - keras| / max|keras| accepted by --verify. Binary networks can legitimately
# differ where a pre-sign value lies within float rounding of 0 (one flipped bit moves the rest
# of the network), so whole binary models get a looser bound than single layers; int8 carries
# its quantization error.
_VERIFY_TOL = {"lce": (1e-4, 0.05), "float": (1e-4, 1e-3), "onnx": (1e-4, 1e-3), "int8": (0.05, 0.25)}


def _verify(cache: "ModelCache", name: str, fmt: str, is_model: bool, pad_values: float, seed: int):
    """Run the converted peer model and its Keras source on one random input; return rel. error."""
    import numpy as np

    keras_model = cache._keras_model(name, "binary" if fmt == "lce" else "float",
                                     pad_values if fmt == "lce" else 1.0, seed)
    data = cache.get(name, fmt, pad_values, seed)
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal([1] + [int(d) for d in keras_model.input_shape[1:]]).astype(np.float32)
    ref = keras_model(x, training=False).numpy()
    if fmt == "lce":
        from larq_compute_engine import testing

        got = testing.Interpreter(data, use_indirect_bgemm=True).interpreter.predict([x])[0]
    elif fmt in ("float", "int8"):
        import tensorflow as tf

        it = tf.lite.Interpreter(model_content=data)
        it.allocate_tensors()
        (inp,), (out,) = it.get_input_details(), it.get_output_details()
        if fmt == "int8":
            sc, zp = inp["quantization"]
            xq = np.clip(np.round(x / sc) + zp, -128, 127).astype(np.int8)
            it.set_tensor(inp["index"], xq)
            it.invoke()
            sc, zp = out["quantization"]
            got = (it.get_tensor(out["index"]).astype(np.float32) - zp) * sc
        else:
            it.set_tensor(inp["index"], x)
            it.invoke()
            got = it.get_tensor(out["index"])
    else:
        import onnxruntime as ort

        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        i0 = sess.get_inputs()[0]
        got = sess.run(None, {i0.name: x.transpose(0, 3, 1, 2) if x.ndim == 4 else x})[0]
        if got.ndim == 4:
            got = got.transpose(0, 2, 3, 1)
    got = np.asarray(got).reshape(ref.shape)
    rel = float(np.abs(got - ref).max() / max(float(np.abs(ref).max()), 1e-12))
    tol = _VERIFY_TOL[fmt][1 if is_model else 0]
    return rel, tol


_OPTS = {"lce_xnnpack": False}


def _table(records: list[dict]) -> str:
    cols = ["target", "engine", "threads", "median_ms", "min_ms", "cpu_ms", "gbitmacs_per_s", "load"]
    rows = []
    for r in records:
        rows.append({
            "target": r.get("layer") or r.get("model"),
            "engine": r["engine"],
            "threads": str(r["threads"]),
            "median_ms": f"{r['median_ms']:.3f}",
            "min_ms": f"{r['min_ms']:.3f}",
            "cpu_ms": f"{r['median_cpu_ms']:.3f}" if r.get("median_cpu_ms") is not None else "-",
            "gbitmacs_per_s": f"{r['gbitmacs_per_s']:.1f}" if r.get("gbitmacs_per_s") else "-",
            "load": f"{r['loadavg_1m']:.2f}" if r.get("loadavg_1m") is not None else "-",
        })
    width = {c: max([len(c)] + [len(row[c]) for row in rows]) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols)]
    lines.append("  ".join("-" * width[c] for c in cols))
    for row in rows:
        lines.append("  ".join(
            row[c].ljust(width[c]) if c in ("target", "engine") else row[c].rjust(width[c])
            for c in cols
        ))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--layers", default=None,
                    help="'all' (the 4 reference layers), 'none', or specs HxWxCin-Cout[,k=K][,s=S] "
                         "separated by ';' (or ',' when no spec has options)")
    ap.add_argument("--models", default=None,
                    help="'all', 'none' or a comma list of cifar-binarynet, quicknet-small, "
                         "binary-resnet-e18, birealnet18")
    ap.add_argument("--h5", action="append", default=[], metavar="PATH",
                    help="a Keras/Larq model saved with model.save (repeatable); timed on the LCE "
                         "engines with its own weights and pad_values")
    ap.add_argument("--engines", default=",".join(DEFAULT_ENGINES),
                    help=f"comma list from {list(ENGINES)} or 'all' (default: %(default)s)")
    ap.add_argument("--threads", default="1,2", help="comma list (default: %(default)s)")
    ap.add_argument("--repeats", type=int, default=50, help="timed runs (default: %(default)s)")
    ap.add_argument("--warmup", type=int, default=5, help="untimed runs first (default: %(default)s)")
    ap.add_argument("--json", default=None, metavar="PATH",
                    help="write the records as a JSON list to PATH; '-' = stdout (table to stderr)")
    ap.add_argument("--append", action="store_true",
                    help="add the records to the list already in --json PATH, numbered as the next "
                         "'run' (repeated runs in one file: summarize.py takes the median over runs)")
    ap.add_argument("--lce-pad-values", type=float, default=1.0, choices=(0.0, 1.0),
                    help="Larq pad_values of the binary convs: 1 (LCE's fast path, larq-zoo's "
                         "choice; default) or 0 (true zero padding, onebit's semantics)")
    ap.add_argument("--lce-xnnpack", type=int, default=0, choices=(0, 1),
                    help="pass use_xnnpack to LCE's interpreter for its float ops (default 0)")
    ap.add_argument("--cache-dir", default=os.environ.get(
        "ONEBIT_PEERS_CACHE",
        str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "onebit-peers")),
        help="converted model cache ('' disables; default: %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--verify", action="store_true",
                    help="before timing, check each converted peer model against its Keras source "
                         "on a random input (max |diff| / max |ref|); a failure skips its timing")
    args = ap.parse_args(argv)

    if args.repeats < 1 or args.warmup < 0:
        _die("--repeats must be >= 1 and --warmup >= 0")

    # With --json -, stdout carries only the JSON: point fd 1 (Python and C++ writers alike,
    # e.g. the converters' logs) at stderr and keep a private copy of the real stdout.
    json_out = None
    if args.json == "-":
        json_out = os.fdopen(os.dup(1), "w")
        sys.stdout.flush()
        os.dup2(2, 1)
    report = sys.stderr if args.json == "-" else sys.stdout

    sys.path.insert(0, str(HERE))
    import models  # imports TensorFlow (slow), after argument checks

    if args.layers is None and args.models is None:
        args.layers, args.models = "all", "all"
    layers = _parse_layers(args.layers or "none")
    model_names = _parse_list(args.models or "none", list(models.MODELS), "model")
    engines = _parse_list(args.engines, ENGINES, "engine")
    threads = _parse_threads(args.threads)
    _OPTS["lce_xnnpack"] = bool(args.lce_xnnpack)

    cache = ModelCache(Path(args.cache_dir) if args.cache_dir else None)
    prov = _provenance()
    commit, cpu = prov.git_commit(), prov.cpu_model()
    import larq_compute_engine as lce
    import tensorflow as tf

    versions = f"tensorflow {tf.__version__}, larq-compute-engine {lce.__version__}"
    if "ort-float" in engines:
        import onnxruntime

        versions += f", onnxruntime {onnxruntime.__version__}"

    targets = [("layer", spec.name if (spec.k, spec.s) == (3, 1) else f"{spec.name},k={spec.k},s={spec.s}", spec)
               for spec in layers]
    targets += [("model", name, None) for name in model_names]
    for path in args.h5:
        if not Path(path).is_file():
            _die(f"--h5: no such file: {path}")
        targets.append(("model", H5_PREFIX + str(Path(path).resolve()), None))
    if args.h5 and any(not e.startswith("lce-") for e in engines):
        _die("--h5 models run on the LCE engines only: pass --engines lce-indirect,lce-default")

    records, failures = [], []
    for kind, name, spec in targets:
        try:
            bitmacs = cache.bitmacs(name, args.lce_pad_values, args.seed)
        except Exception as e:  # a model that cannot even be built: report, go on
            failures.append(f"{name}: build failed: {type(e).__name__}: {e}")
            continue
        for engine in engines:
            try:
                data = cache.get(name, _FORMAT[engine], args.lce_pad_values, args.seed)
            except Exception as e:
                failures.append(f"{name} / {engine}: conversion failed: {type(e).__name__}: {e}")
                traceback.print_exc(file=sys.stderr)
                continue
            rel = None
            if args.verify:
                try:
                    rel, tol = _verify(cache, name, _FORMAT[engine], kind == "model",
                                       args.lce_pad_values, args.seed)
                except Exception as e:
                    failures.append(f"{name} / {engine}: verify failed: {type(e).__name__}: {e}")
                    continue
                ok = rel <= tol
                print(f"# verify {name} {engine}: max|diff|/max|ref| = {rel:.2e} "
                      f"(tolerance {tol:g}) {'ok' if ok else 'MISMATCH'}", file=sys.stderr, flush=True)
                if not ok:
                    failures.append(f"{name} / {engine}: output mismatch vs Keras, rel {rel:.2e} > {tol:g}")
                    continue
            for t in threads:
                try:
                    run = _runner(engine, data, t, args.seed)
                    load = _loadavg()
                    times, cpu = _time(run, args.warmup, args.repeats)
                except Exception as e:
                    failures.append(f"{name} / {engine} / {t} threads: {type(e).__name__}: {e}")
                    continue
                med = statistics.median(times)
                rec = {kind: name}
                if spec is not None:
                    rec.update(kernel=spec.k, stride=spec.s)
                rec.update(
                    engine=engine, isa="x86-64", threads=t, batch=1, pipeline="float-float",
                    median_ms=med, min_ms=min(times),
                    # thread CPU time covers all the work only with one interpreter thread
                    median_cpu_ms=statistics.median(cpu) if t == 1 else None,
                    repeats=args.repeats, warmup=args.warmup,
                    bitmacs=bitmacs, gbitmacs_per_s=bitmacs / (med * 1e6) if bitmacs else None,
                    loadavg_1m=load, commit=commit, cpu=cpu, peer_versions=versions,
                )
                if rel is not None:
                    rec["verify_rel_err"] = rel
                if engine.startswith("lce-"):
                    rec["lce_options"] = {
                        "use_indirect_bgemm": engine == "lce-indirect",
                        "use_xnnpack": bool(args.lce_xnnpack),
                        "pad_values": args.lce_pad_values,
                    }
                records.append(rec)
                print(f"# {name} {engine} threads={t}: median {med:.3f} ms", file=sys.stderr, flush=True)

    print(_table(records), file=report, flush=True)
    for f in failures:
        print(f"run_peers: FAILED {f}", file=sys.stderr)
    text = json.dumps(records, indent=1)
    if json_out is not None:
        json_out.write(text + "\n")
        json_out.flush()
    elif args.json:
        path = Path(args.json)
        if args.append and path.exists():
            old = json.loads(path.read_text())
            run = max((r.get("run", 1) for r in old), default=0) + 1
            text = json.dumps(old + [dict(r, run=run) for r in records], indent=1)
        elif args.append:
            text = json.dumps([dict(r, run=1) for r in records], indent=1)
        path.write_text(text + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
