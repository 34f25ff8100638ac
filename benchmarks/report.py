"""The tables of docs/results.md, docs/robustness.md, docs/bitslice.md and docs/larq.md, generated from the committed JSON records.

    python benchmarks/report.py              # print every table
    python benchmarks/report.py --write      # rewrite the tables on every page
    python benchmarks/report.py --check      # exit 1 if a table on a page differs

A table on a page stands between ``<!-- table: NAME -->`` and ``<!-- /table -->``; NAME is a
key of the page's tables (``PAGES``: ``TABLES``, ``ROBUSTNESS_TABLES``, ``BITSLICE_TABLES``,
``LARQ_TABLES``). Each table ends with a line naming its records (linked) and the machine they
record: CPU, cores, ISA, threads, commit and the 1-minute load average. Plain Python (no onebit,
no NumPy), so the page can be checked anywhere.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "results.md"
ROBUSTNESS_PAGE = REPO / "docs" / "robustness.md"
RESULTS = "benchmarks/results"
PEERS = "benchmarks/peers/results"
PEER_ENGINES = ("lce-indirect", "lce-default", "xnnpack-int8", "xnnpack-float")
MARKER = re.compile(r"<!-- table: ([\w-]+) -->\n(.*?)<!-- /table -->", re.S)


def load(path: str) -> list[dict]:
    data = json.loads((REPO / path).read_text())
    return data if isinstance(data, list) else [data]


def table(head: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return lines


def ms(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.4f}" if abs(x) < 0.01 else f"{x:.3f}"


def med_min(r: dict | None) -> str:
    return "-" if r is None else f"{r['median_ms']:.3f} ({r['min_ms']:.3f})"


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def _loads(r: dict) -> list[float]:
    out = []
    for k in ("loadavg_1m", "loadavg", "loadavg_after", "load", "loadavg_before", "loadavg_1m_min",
              "loadavg_1m_max"):
        if isinstance(r.get(k), (int, float)):
            out.append(float(r[k]))
    for k in ("loadavg", "loadavg_start", "loadavg_end"):  # os.getloadavg() triples, or lists of them
        v = r.get(k)
        if isinstance(v, list) and v:
            out += [float(t[0]) for t in v if isinstance(t, list) and t] if isinstance(v[0], list) else [float(v[0])]
    for k in ("uptime_start", "uptime_end", "uptime_before", "uptime_after"):
        m = re.search(r"load average: ([\d.]+)", str(r.get(k, "")))
        if m:
            out.append(float(m.group(1)))
    return out


def _distinct(values) -> list[str]:
    seen: list[str] = []
    for v in values:
        if v is not None and str(v) not in seen:
            seen.append(str(v))
    return seen


def provenance(paths: list[str], records: list[dict]) -> str:
    """One line: the linked records and the machine fields they carry."""
    links = ", ".join(f"[{p}](../{p})" for p in paths)
    parts = []
    cpus = _distinct(r.get("cpu") for r in records if isinstance(r.get("cpu"), str))
    cores = _distinct(r.get("cores") for r in records)
    if cpus:
        parts.append("CPU " + " / ".join(cpus) + (f" ({' / '.join(cores)} cores)" if cores else ""))
    isas = _distinct(r.get("isa") for r in records)
    if isas:
        parts.append("ISA " + ", ".join(isas))
    threads = sorted(_distinct(r.get("threads") for r in records), key=int)
    if threads:
        parts.append("threads " + ", ".join(threads))
    commits = _distinct(r.get("commit") for r in records)
    if commits:
        parts.append("commit " + ", ".join(commits))
    loads = [x for r in records for x in _loads(r)]
    if loads:
        parts.append(f"1-minute load {min(loads):.1f}-{max(loads):.1f}")
    return f"Records: {links}; " + ("; ".join(parts) if parts else "no machine fields recorded") + "."


def block(lines: list[str], paths: list[str], records: list[dict]) -> str:
    return "\n".join(lines + ["", provenance(paths, records)]) + "\n"


# ---- latency of layers and networks (one quiet-machine run) ----------------------------------

def t_layers() -> str:
    path = f"{RESULTS}/quiet/layers.json"
    recs = load(path)
    layers = _distinct(r["layer"] for r in recs)
    get = {(r["layer"], r["engine"], r["threads"]): r for r in recs}
    rows = []
    for layer in layers:
        one = get[(layer, "onebit", 1)]
        rows.append([layer, f"{one['bitmacs'] / 1e6:.1f}", med_min(one), med_min(get.get((layer, "onebit", 2)))]
                    + [ms(get[(layer, e, 1)]["median_ms"]) if (layer, e, 1) in get else "-" for e in PEER_ENGINES])
    head = ["layer", "M bit-MACs", "onebit 1 thread", "onebit 2 threads"] + [f"{e} 1 thread" for e in PEER_ENGINES]
    return block(table(head, rows), [path], recs)


MODEL_FILES = ("cifar-binarynet", "quicknet-small-clip", "birealnet18-clip", "quicknet-small", "birealnet18")


def t_models() -> str:
    paths = [f"{RESULTS}/quiet/model_{m}.json" for m in MODEL_FILES]
    rows, every = [], []
    for name, path in zip(MODEL_FILES, paths):
        recs = load(path)
        every += recs
        get = {(r["engine"], r["threads"]): r for r in recs}
        for t in sorted({r["threads"] for r in recs}):
            one = get[("onebit", t)]
            rows.append([name, t, med_min(one), ms(one.get("ops_sum_ms"))]
                        + [ms(get[(e, t)]["median_ms"]) if (e, t) in get else "-" for e in PEER_ENGINES])
    head = ["model", "threads", "onebit median (min)", "onebit sum of op medians"] + list(PEER_ENGINES)
    return block(table(head, rows), [p for p in paths], every)


def t_binary_ops() -> str:
    path = f"{RESULTS}/quiet/binary_ops.json"
    recs = load(path)
    rows = []
    for model in _distinct(r["model"] for r in recs):
        ops = [r for r in recs if r["model"] == model]
        binary = [r for r in ops if r["bit_macs"] > 0]
        gbm = sum(r["bit_macs"] for r in binary) / 1e9
        t_bin = sum(r["min_ms"] for r in binary)
        fr = [r["peak_fraction"] for r in binary if r.get("peak_fraction") is not None]
        rows.append([model, len(binary), f"{gbm:.3f}", ms(t_bin), f"{gbm / t_bin * 1e3:.0f}",
                     f"{min(fr):.2f}-{max(fr):.2f}", ms(sum(r["min_ms"] for r in ops))])
    head = ["model", "binary ops", "G bit-MACs", "binary ops: sum of minima (ms)", "G bit-MACs/s",
            "fraction of popcount peak per op", "all ops: sum of minima (ms)"]
    return block(table(head, rows), [path], recs)


def _kept(r: dict) -> str:
    k = r.get("kept_channels")
    return "" if not k else " / ".join(f"{n} {c}" for n, c in k.items())


PRUNED_RUNS = ((f"{RESULTS}/quiet/pruned_models.json", "40%, one ratio",
                ("unpruned", "channel", "block", "word", "weight")),
               (f"{RESULTS}/pruned_channel_multiple.json", "40%, channels x64", None))


def t_pruned_models() -> str:
    rows, every = [], []
    for path, run, variants in PRUNED_RUNS:
        recs = [r for r in load(path) if variants is None or r["variant"] in variants]
        every += recs
        rows += [[run, r["variant"], _kept(r), f"{r['x_unpruned_bit_macs']:.3f}", ms(r["min_ms"]),
                  f"{r['x_unpruned_min']:.3f}", ms(r["median_ms"]), f"{r['x_unpruned_median']:.3f}",
                  f"{r['x_unpruned_ops_sum']:.3f}", f"{r['file_bytes'] / 1024:.0f}", len(r["masked_ops"])]
                 for r in recs]
    head = ["run", "variant", "kept channels", "x bit-MACs", "min ms", "x min", "median ms", "x median",
            "x sum of op medians", "file KiB", "masked ops"]
    return block(table(head, rows), [p for p, _, _ in PRUNED_RUNS], every)


# ---- single ops ---------------------------------------------------------------------------------

def t_engine_ops() -> str:
    path = f"{RESULTS}/engine_ops.json"
    recs = [r for r in load(path) if r.get("benchmark") == "engine_ops" and not r["label"].startswith("int8 conv")]
    get = {(r["label"], r["threads"]): r for r in recs}
    threads = sorted({r["threads"] for r in recs})
    rows = [[label] + [ms(get[(label, t)][k]) if (label, t) in get else "-" for t in threads
                       for k in ("cur_min_ms", "cur_median_ms")] for label in _distinct(r["label"] for r in recs)]
    head = ["op"] + [f"{t} thread{'s' if t > 1 else ''} {k} ms" for t in threads for k in ("min", "median")]
    return block(table(head, rows), [path], recs)


def _words(case: str) -> int:
    cin = int(re.match(r"\d+x\d+x(\d+)-", case).group(1))
    return -(-cin // 64)


def t_word_counts() -> str:
    paths = [f"{RESULTS}/bconv_word_counts_layers.json", f"{RESULTS}/bconv_word_counts_models.json"]
    layers, models = load(paths[0]), load(paths[1])
    rows = [[r["case"], _words(r["case"]), ms(r["cur_min"]), ms(r["cur_median"])] for r in layers]
    rows += [[r["case"], "", ms(r["cur_min"]), ms(r["cur_median"])] for r in models]
    return block(table(["layer (3x3, s1) or model", "input words per tap", "min ms", "median ms"], rows),
                 paths, layers + models)


def t_masked() -> str:
    path = f"{RESULTS}/masked.json"
    recs = load(path)
    layers = _distinct(r["layer"] for r in recs)
    get = {(r["variant"], r["layer"]): r for r in recs}

    def share(variant: str, key: str) -> str:
        vals = sorted({round(100 * r[key]) for r in recs if r["variant"] == variant})
        return f"{vals[0]}%" if len(vals) == 1 else f"{vals[0]}-{vals[-1]}%"

    rows = [[v, share(v, "pruned"), share(v, "skipped"), share(v, "partial")]
            + [f"{ms(r['min_ms'])} / {ms(r['median_ms'])} ({r['speed_min']:.2f})" if r else "-"
               for r in (get.get((v, layer)) for layer in layers)]
            for v in _distinct(r["variant"] for r in recs)]
    head = ["variant", "weights pruned", "entries skipped", "entries partial"] + [
        f"{layer}: min / median ms (x dense)" for layer in layers]
    return block(table(head, rows), [path], recs)


def t_mask_sizes() -> str:
    path = f"{RESULTS}/mask_sizes.json"
    recs = load(path)
    rows = [["dense (unpruned)", f"{recs[0]['dense_bytes']:,}", "1.000", "", "", "", ""]]
    for r in recs:
        rows.append([r["granularity"], f"{r['converter_bytes']:,}", f"{r['converter_bytes'] / r['dense_bytes']:.3f}",
                     f"{r['converter_mask_bytes']:,}", f"{r['long_form_bytes']:,}",
                     "{:.1f} / {:.1f}".format(*r["converter_load_ms"]),
                     "{:.1f} / {:.1f}".format(*r["long_form_load_ms"])])
    head = ["granularity", "file bytes", "x dense", "mask bytes", "full weights + full mask (bytes)",
            "load ms min / median", "load ms min / median, full form"]
    return block(table(head, rows), [path], recs)


# ---- accuracy: converter and QAT ------------------------------------------------------------------

def _engine(r: dict) -> str:
    return ", ".join(f"{pct(v['accuracy'])} ({isa})" for isa, v in r["engine"].items())


def t_verify() -> str:
    paths = [f"{RESULTS}/verify/imagenette64.json", f"{RESULTS}/verify/bireal_noclip.json"]
    recs = [load(p)[0] for p in paths]
    rows = []
    for r in recs:
        m = r["model_config"]
        eq = next(iter(r["engine"].values()))["values_equal"]
        rows.append([f"{m['name']} width {m['width']:g}", r["dataset"], r["n"], pct(r["float_accuracy"]),
                     pct(r["simulation_accuracy"]), _engine(r),
                     " / ".join(pct(v["argmax_agreement_with_simulation"]) for v in r["engine"].values()),
                     f"{eq['images']} images, {eq['values']} values, max diff {eq['max_abs_diff']:g}",
                     pct(r["float_sim_argmax_agreement"])])
    head = ["model", "dataset", "test images", "float-latent", "simulation", "engine", "engine == simulation argmax",
            "every value equal", "float vs simulation argmax"]
    return block(table(head, rows), paths, recs)


QAT_FILES = ("mnist_lr1e-5_cos_200", "mnist_lr1e-5_cos_distill_200", "mnist_lr1e-4_cos_200",
             "mnist_lr1e-4_cos_distill_200", "cifar_lr1e-5_cos_200", "bireal_clip_lr1e-5_cos_200")


def _finetune(r: dict) -> str:
    text = f"{r['steps']} steps, lr {r['lr']:g} {r['lr_schedule']}"
    if r.get("distill"):
        text += f", distillation weight {r['distill']:g}"
    if r.get("train_binary"):
        text += ", binary latent weights trained"
    return text


def t_qat() -> str:
    paths = [f"{RESULTS}/qat/{f}.json" for f in QAT_FILES]
    rows, every, seen = [], [], set()
    for path in paths:
        recs = load(path)
        every += recs
        for r in recs:
            if r["phase"] == "before" and r["checkpoint"] in seen:
                continue
            seen.add(r["checkpoint"])
            m = r["model_config"]
            rows.append([f"{m['name']} width {m['width']:g}", r["dataset"],
                         "none" if r["phase"] == "before" else _finetune(r), pct(r["float_accuracy"]),
                         pct(r["qat_forward_accuracy"]), pct(r["simulation_accuracy"]), _engine(r),
                         pct(r["float_sim_argmax_agreement"]), pct(r["qat_sim_argmax_agreement"])])
    head = ["model", "dataset", "QAT fine-tune", "float-latent", "QAT forward", "simulation", "engine",
            "float vs simulation argmax", "QAT forward vs simulation argmax"]
    return block(table(head, rows), paths, every)


# ---- training and pruning accuracy (records transcribed from the published page) -------------------

def _acc(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}%"


def _per_epoch(r: dict) -> str:
    return " / ".join(f"{a:.2f}" for a in r["test_accuracy_per_epoch_pct"])


TRAINING_RUNS = ("mnist_f", "demo", "cifar_bnn_w0125", "cifar_float_w0125", "imagenette64")


def t_training() -> str:
    paths = [f"{RESULTS}/training/models.json", f"{RESULTS}/training/bnn_clip.json"]
    rec, clip = load(paths[0])[0], load(paths[1])[0]
    get = {r["run"]: r for r in rec["rows"]}
    rows = []
    for run in TRAINING_RUNS:
        r = get[run]
        evald = r.get("idle_machine", r)  # the demo's figures come from its idle-machine run
        size = f", {r['size']} px" if r.get("size") else ""
        name = f"{r['model']} width {r['width']:g}{size}, {r['variant']}" + (" (`onebit demo`)" if run == "demo" else "")
        engine = ", ".join(f"{v:.2f}% ({isa})" for isa, v in evald.get("engine_accuracy_pct", {}).items())
        rows.append([name, r["dataset"], f"{r['epochs']} x {r['train_images']}", _per_epoch(r),
                     _acc(r["test_accuracy_pct"]), _acc(evald.get("simulation_accuracy_pct")), engine or "-", "-",
                     evald.get("train_seconds", "-"), evald.get("cpu_s", "-")])
    for r in clip["rows"]:
        name = "birealnet18 width 0.125, CIFAR stem, " + ("`--clip-block`" if r["clip_block"] else "no clip block")
        data = (f"{r['data_between_blocks_bits']} bit ({r['stage_outputs_on_int8_grid']} of {r['stage_outputs']} "
                f"on the int8 grid; {r['distinct_values_per_tensor']} distinct values per tensor)")
        rows.append([name, "cifar10", f"{r['epochs']} x {r['train_images']}", _per_epoch(r),
                     f"{_acc(r['test_accuracy_pct'])} ({r['test_images']} images)", "-", "-", data, "-", r["cpu_s"]])
    head = ["network", "dataset", "epochs x images", "test accuracy per epoch (%)", "test accuracy", "simulation",
            "engine", "data between blocks", "train steps (s)", "CPU (s)"]
    return block(table(head, rows), paths, [rec, clip])


def _baselines(rec: dict) -> str:
    seeds = ", ".join(f"seed {b['seed']} {b['test_accuracy_pct']:.2f}%" for b in rec["baselines"])
    first = rec["baselines"][0]
    return (f"{rec['model']} width {rec['width']:g} on {rec['dataset']}, unpruned ({first['epochs']} "
            f"epoch{'s' if first['epochs'] > 1 else ''}, {first['size_kib']:.1f} KiB packed): {seeds}; "
            f"seed spread {rec['baseline_spread_points']:.2f} points.")


PRUNE_COLUMNS = (("cifar10", "channel", 1), ("cifar10", "weight", 1), ("cifar10", "weight", 2),
                 ("cifar10", "word", 1), ("mnist", "channel", 1), ("mnist", "weight", 1))


def _cell(r: dict | None) -> str:
    if r is None:
        return ""
    spread = "" if r["acc_after_spread_pct"] is None else f" +- {r['acc_after_spread_pct']:.2f}"
    return (f"{r['fewer_binary_ops_pct']:.1f}%: {r['acc_after_mean_pct']:.2f}{spread} ({r['finetune_seeds']}), "
            f"{r['vs_baseline']:+.2f}")


def t_pruning() -> str:
    paths = [f"{RESULTS}/prune_study/cifar10.json", f"{RESULTS}/prune_study/mnist.json"]
    recs = [load(p)[0] for p in paths]
    get = {(rec["dataset"], r["granularity"], r["finetune_epochs"], r["method"], r["target"]): r
           for rec in recs for r in rec["rows"]}
    methods = _distinct(r["method"] for rec in recs for r in rec["rows"])
    keys = sorted({k[3:] for k in get}, key=lambda k: (methods.index(k[0]), k[1]))
    rows = [[m, f"{100 * t:.0f}%"] + [_cell(get.get(c + (m, t))) for c in PRUNE_COLUMNS] for m, t in keys]
    head = ["method", "target", "CIFAR-10 channel, 1-epoch fine-tune", "CIFAR-10 weight, 1 epoch",
            "CIFAR-10 weight, 2 epochs", "CIFAR-10 word, 1 epoch", "MNIST channel, 1 epoch", "MNIST weight, 1 epoch"]
    return block([_baselines(r) for r in recs] + [""] + table(head, rows), paths, recs)

# ---- peers ------------------------------------------------------------------------------------------

def _summarize():
    spec = importlib.util.spec_from_file_location("peers_summarize", REPO / "benchmarks/peers/summarize.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.summarize


LCE_OPTIONS = (("lce-pad0.json", "lce-indirect", "lce-indirect, pad_values 0"),
               ("lce-pad0.json", "lce-default", "lce-default, pad_values 0"),
               ("lce-xnnpack.json", "lce-indirect", "lce-indirect, use_xnnpack"))


def t_peers() -> str:
    """The peers' runs (``summarize``) with the LCE option runs (one run each, 1 thread) as extra
    columns."""
    paths = [f"{PEERS}/{f}" for f in ("layers.json", "models.json")]
    opt_paths = _distinct(f"{PEERS}/{f}" for f, _, _ in LCE_OPTIONS)
    opts = {p: load(p) for p in opt_paths}
    get = {(p.rsplit("/", 1)[1], r["engine"], r.get("layer") or r["model"]): r
           for p, rs in opts.items() for r in rs if r["threads"] == 1}
    lines = []
    for line in _summarize()([str(REPO / p) for p in paths], "median_cpu_ms").split("\n"):
        if line.startswith("| target "):
            line += " " + " | ".join(f"{label} (one run)" for _, _, label in LCE_OPTIONS) + " |"
        elif line.startswith("|---"):
            line += "---|" * len(LCE_OPTIONS)
        elif line.startswith("| "):
            target, threads = [c.strip() for c in line.strip("|").split("|")[:2]]
            line += " " + " | ".join(ms(get[(f, e, target)]["median_cpu_ms"]) if threads == "1" and (f, e, target) in get
                                     else "-" for f, e, _ in LCE_OPTIONS) + " |"
        lines.append(line)
    return block(lines, paths + opt_paths, [r for p in paths for r in load(p)] + [r for rs in opts.values() for r in rs])


# ---- Larq models (docs/larq.md) ----------------------------------------------------------------------

def _one_line(text: str, limit: int = 240) -> str:
    """An error message as one table cell: one line, pipes escaped, cut at ``limit`` characters."""
    t = " ".join(str(text).split()).replace("|", "\\|")
    return t if len(t) <= limit else t[:limit - 3] + "..."


def _g(x: float) -> str:
    return f"{x:.2g}"


def t_larq_export() -> str:
    path = f"{PEERS}/larq_export.json"
    rec = load(path)[0]
    rows = []
    for r in rec["models"]:
        if "import" in r:
            rows.append([r["model"], "no", "no", _one_line(r["import"])])
            continue
        why = [f"{len(ls)} layer(s) ({', '.join(ls[:2])}{', ...' if len(ls) > 2 else ''}): {_one_line(reason)}"
               for reason, ls in r["unsupported"].items()]
        ok = r["converter"] == "ok"
        rows.append([r["model"], "yes", "yes" if ok else "no",
                     "; ".join(why) if why else ("" if ok else _one_line(r["converter"]))])
    notes = [f"Input {'x'.join(map(str, rec['input_shape']))}; seeded random weights (seed {rec['seed']}); "
             f"\"no\": the first layer the converter refuses, or every layer without a .onebit equivalent."]
    return block(table(["model", "imports", "exports", "why not"], rows) + [""] + notes, [path], [rec])


def t_larq_import() -> str:
    path = f"{PEERS}/larq_import.json"
    rec = load(path)[0]
    rows = []
    for r in rec["models"]:
        if not r.get("imported"):
            rows.append([r["model"], "-", "-", "-", "-", "-", "-", _one_line(r.get("error", ""))])
            continue
        rows.append([r["model"], _g(r["rel_diff"]), pct(r["images_within_tolerance"]), _g(r["median_image_rel_diff"]),
                     f"{r['correlation']:.6f}", pct(r["centered_top1_agreement"]),
                     _g(r["layer_max_rel_diff"]) if "layer_max_rel_diff" in r else "-",
                     f"{r['distinct_top1']} / {r['distinct_centered_top1']}"])
    head = ["model", "max abs diff / logit scale", "images within tolerance", "median image rel diff",
            "centered correlation", "centered top-1 agreement", "layer by layer: max rel diff",
            "Larq's classes raw / centered (or why not imported)"]
    ref = rec["reference"]
    notes = [f"{ref['images']} Imagenette validation images; Larq {ref['larq']}, Larq Zoo {ref['larq_zoo']}, "
             f"TensorFlow {ref['tensorflow']}; torch {rec['torch']} on the imported module."]
    prov = {"cpu": rec["cpu"], "commit": rec["commit"], "loadavg": rec["loadavg"]}
    return block(table(head, rows) + [""] + notes, [path], [prov])


def _mode_cells(m: dict, keys) -> list[str]:
    if "export_error" in m:
        return ["not exported"] + ["-"] * (len(keys) - 1)
    return [fmt(m[k]) for k, fmt in keys]


FB_KEYS = (("rel_diff", _g), ("images_within_tolerance", pct), ("median_image_rel_diff", _g),
           ("correlation", lambda x: f"{x:.6f}"), ("centered_top1_agreement", pct))
INT_KEYS = (("top1_agreement", pct), ("centered_top1_agreement", pct), ("correlation", lambda x: f"{x:.5f}"))


def t_larq_agreement() -> str:
    path = f"{PEERS}/larq_agreement.json"
    rec = load(path)[0]
    rows, notes = [], []
    for r in rec["models"]:
        if "error" in r:
            rows.append([r["model"]] + ["-"] * 9)
            notes.append(f"- {r['model']}: {_one_line(r['error'])}")
            continue
        rows.append([r["model"]] + _mode_cells(r["float_boundary"], FB_KEYS) + _mode_cells(r["integer"], INT_KEYS)
                    + [f"{r['distinct_top1']} / {r['distinct_centered_top1']}"])
        errs = {label: r[mode]["export_error"] for mode, label in (("float_boundary", "--float-boundary"),
                                                                  ("integer", "default")) if "export_error" in r[mode]}
        if len(errs) == 2 and len(set(errs.values())) == 1:
            errs = {"both modes": next(iter(errs.values()))}
        notes += [f"- {r['model']} ({label}): {_one_line(e)}" for label, e in errs.items()]
    head = ["model", "float boundary: max abs diff / logit scale", "images within tolerance",
            "median image rel diff", "centered correlation", "centered top-1", "integer: raw top-1",
            "centered top-1", "centered correlation", "Larq's classes raw / centered"]
    ref = rec["reference"]
    lines = table(head, rows) + ["", f"{rec['images']} Imagenette validation images; the engine in "
                                     f"{rec['threads']} thread(s), in a process "
                                     f"{'with' if rec['torch_imported'] else 'without'} torch; tolerance "
                                     f"{rec['tolerance']:g} x the logit scale; Larq {ref['larq']}, "
                                     f"Larq Zoo {ref['larq_zoo']}, TensorFlow {ref['tensorflow']}."]
    if notes:
        lines += ["", "Not exported (the CLI's message):", ""] + notes
    return block(lines, [path], [rec])


def t_larq_signs() -> str:
    """Where the engine first departs from Larq, per model and mode that misses its target: the
    signs on the first image, in execution order."""
    path = f"{PEERS}/larq_agreement.json"
    rec = load(path)[0]
    rows = []
    for r in rec["models"]:
        for mode in ("float_boundary", "integer"):
            walk = r.get(mode, {}).get("layers")
            if not walk:
                continue
            signs = [w for w in walk if "flips" in w]
            flip = next((i for i, w in enumerate(walk) if w.get("flips")), len(walk))
            before = [w["rel_diff"] for w in walk[:flip] if "flips" not in w]
            # the first three signs, the first that differs from Larq's, and the last
            first = next((i for i, w in enumerate(signs) if w["flips"]), 0)
            for i, j in enumerate(sorted({0, 1, 2, first, len(signs) - 1} & set(range(len(signs))))):
                w = signs[j]
                rows.append([r["model"] if i == 0 else "", mode.replace("_", " ") if i == 0 else "",
                             (_g(max(before)) if before else "-") if i == 0 else "", f"`{w['value']}` (`{w['layer']}`)",
                             f"{w['flips']} of {w['of']} ({100 * w['flips'] / w['of']:.2f}%)", _g(w["flip_max_rel"])])
    head = ["model", "mode", "max rel diff before the first flip", "sign (Larq layer it reads)", "signs flipped",
            "largest Larq magnitude at a flip / the tensor's largest"]
    return block(table(head, rows), [path], [rec])


def t_larq_lce() -> str:
    path = f"{PEERS}/larq_models.json"
    recs = load(path)
    get = {(r["model"], r.get("engine"), r["threads"]): r for r in recs if "median_ms" in r}
    speed = {(r["model"], r["threads"]): r["speedup"] for r in recs if "speedup" in r}
    rows = []
    for model, th in sorted({(m, t) for m, _, t in get}, key=lambda k: (_distinct(r["model"] for r in recs).index(k[0]), k[1])):
        rows.append([model, th, med_min(get.get((model, "onebit", th)))]
                    + [med_min(get.get((model, e, th))) for e in ("lce-indirect", "lce-default")]
                    + [f"{speed[(model, th)]:.1f}x" if (model, th) in speed else "-"])
    notes = [f"- {r['model']}: not exported ({_one_line(r['export_error'].splitlines()[-1])})"
             for r in recs if "export_error" in r]
    head = ["model", "threads", "onebit median (min) ms", "LCE indirect BGEMM median (min) ms",
            "LCE default median (min) ms", "LCE's best median / onebit's"]
    lines = table(head, rows) + ([""] + notes if notes else [])
    return block(lines, [path], [r for r in recs if "median_ms" in r])


# ---- C++ runtime: executor, loader fuzzing, footprint ----------------------------------------------

def _mib(b: int) -> str:
    return f"{b / 2**20:.2f}"


def t_executor() -> str:
    paths = [f"{RESULTS}/executor.json", f"{RESULTS}/footprint.json"]
    recs, foot = load(paths[0]), load(paths[1])
    fp = {r["model"]: r for r in foot}
    base = ", ".join(_distinct(r["baseline"] for r in recs))
    rows = []
    for r in recs:
        f = fp.get(r["model"])
        rows.append([r["model"], r["ops"], f"{r['base_min_ms']:.3f} / {r['base_median_ms']:.3f}",
                     f"{r['cur_min_ms']:.3f} / {r['cur_median_ms']:.3f}",
                     f"{r['onebit-run_min_ms']:.3f} / {r['onebit-run_median_ms']:.3f}", ms(r["kernel_sum_median_ms"]),
                     f"{r['end_to_end_over_kernels']:.3f}, {r['onebit_run_end_to_end_over_kernels']:.3f}",
                     f"{r['cur_median_ms'] / r['base_median_ms']:.3f}", "yes" if r["logits_equal"] else "NO"]
                    + (["-"] * 4 if f is None else
                       [_mib(f["file_bytes"]), _mib(f["activation_bytes"]), _mib(f["peak_rss_bytes"]),
                        f"{_mib(f['goal_bytes'])} ({'met' if f['within_goal'] else 'missed'})"]))
    sizes = "; ".join(f"stripped onebit-run {r['onebit_run_stripped_bytes'] / 1024:.0f} KiB, libonebit.so "
                      f"{r['libonebit_stripped_bytes'] / 1024:.0f} KiB" for r in
                      {(r["onebit_run_stripped_bytes"], r["libonebit_stripped_bytes"]): r for r in foot}.values())
    head = ["model", "ops", f"Python-loop Session ({base}) min / median ms", "Session min / median ms",
            "onebit-run min / median ms", "sum of op times (median)", "end to end / op times: Session, onebit-run",
            "Session / Python loop (median)", "logits equal", "file MiB", "planned activations MiB",
            "onebit-run peak RSS MiB", "goal: file + activations + 4 MiB"]
    bound = "; ".join(f"{r['model']} {ms(r['base_median_ms'])} ({ms(r['base_kernel_sum_median_ms'])}) -> "
                      f"{ms(r['cur_median_ms'])} ({ms(r['kernel_sum_median_ms'])}): {r['speedup_median']:.2f}x, "
                      f"bound {r['speedup_bound_median']:.2f}x" for r in recs)
    return block(table(head, rows) + ["", f"Footprint: {sizes}. "
                                      "Speedup over the Python loop and its bound with these kernels, median ms: "
                                      "Python loop end to end (its sum of op times) -> Session end to end (its sum of "
                                      "kernel times): speedup, bound = Python loop end to end / kernel sum (an "
                                      f"executor with no overhead at all). {bound}."],
                 paths, recs + foot)


def t_fuzz_loader() -> str:
    path = f"{RESULTS}/fuzz_loader.json"
    recs = load(path)
    rows = [[f"{r['iterations']:,}", f"{r['seeds']} ({', '.join(r['seed_files'])})", f"{r['rejected']:,}",
             f"{r['accepted']:,}", r["failures"], f"{r['worst_ms']:.1f}", "yes" if r["asan"] else "no"]
            for r in recs]
    head = ["mutated inputs", "seed files", "rejected (clear error)", "accepted and run", "failures",
            "slowest input ms", "AddressSanitizer"]
    return block(table(head, rows), [path], recs)


# ---- int8 convolution and threads, per ISA ----------------------------------------------------------

INT8_PATH = f"{RESULTS}/int8_networks.json"
INT8_ISAS = ("scalar", "avx2", "avxvnni", "avx512")


def _model(r: dict) -> str:
    return r["model"].removesuffix(".onebit")


def _mm(r: dict, key: str) -> str:
    c = r["categories_ms"]
    return f"{ms(c[key])} ({ms(c[key + ' (min)'])})"


def t_int8_networks() -> str:
    recs = load(INT8_PATH)
    get = {(_model(r), r["isa"], r["threads"], r["version"]): r for r in recs}
    base = ", ".join(_distinct(r.get("baseline") for r in recs if r["version"] == "base"))
    threads = sorted({r["threads"] for r in recs})
    cats = ("int8 conv", "first layer", "add", "bitpack", "other")

    def ratio(r: dict | None) -> str:
        return "-" if r is None else f"{r['total_over_binary']:.2f} ({r['total_over_binary_min']:.2f})"

    def total(r: dict | None) -> str:
        return "-" if r is None else _mm(r, "total")

    def cat(r: dict | None, k: str) -> str:
        v = None if r is None else r["categories_ms"].get(k)
        return "-" if not v else ms(v)

    def speedup(one: dict | None, more: dict | None) -> str:
        if one is None or more is None:
            return "-"
        c1, c2 = one["categories_ms"], more["categories_ms"]
        return f"{c1['total'] / c2['total']:.2f} ({c1['total (min)'] / c2['total (min)']:.2f})"

    rows = []
    for model in _distinct(_model(r) for r in recs):
        for isa in [i for i in INT8_ISAS if any(k[:2] == (model, i) for k in get)]:
            r = get[(model, isa, threads[0], "cur")]
            u = get.get((model, isa, threads[0], "unfused"))
            more = [get.get((model, isa, t, "cur")) for t in threads[1:]]
            bases = [get.get((model, isa, t, "base")) for t in threads] if base else []
            rows.append([model, isa, total(r), _mm(r, "binary")] + [cat(r, k) for k in cats] + [ratio(r)]
                        + [total(u), cat(u, "add"), cat(u, "bitpack"), ratio(u)]
                        + [x for m in more for x in (total(m), ratio(m), speedup(r, m))]
                        + [x for b in bases for x in (total(b), ratio(b))])
    one = f"{threads[0]} thread{'s' if threads[0] > 1 else ''}"
    head = (["model", "ISA", f"{one}: total ms", "binary conv ms", "int8 convs", "int8 first layer", "int8 add",
             "bitpack", "other", "total / binary", f"unfused {one}: total ms", "int8 add", "bitpack",
             "total / binary"]
            + [x for t in threads[1:] for x in (f"{t} threads: total ms", "total / binary", f"{one} / {t} threads")]
            + ([x for t in threads for x in (f"base ({base}) {t} thread{'s' if t > 1 else ''}: total ms",
                                             "total / binary")] if base else []))
    return block(table(head, rows), [INT8_PATH], recs)


def t_int8_convs() -> str:
    recs = [r for r in load(INT8_PATH) if r["version"] == "cur"]
    get = {(_model(r), r["isa"], r["threads"]): r for r in recs}
    cols = [(i, t) for i in INT8_ISAS for t in sorted({r["threads"] for r in recs}) if any(k[1:] == (i, t) for k in get)]
    rows = []
    for model in _distinct(_model(r) for r in recs):
        here = [get.get((model, i, t)) for i, t in cols]
        rows.append([f"**{model}**: 1-thread int8 MAC peak, G MAC/s", ""]
                    + ["-" if r is None or not r["int8_mac_peak"] else f"{r['int8_mac_peak'] / 1e9:.1f}" for r in here])
        first = next(r for r in here if r is not None)
        for k, conv in enumerate(first["int8_convs"]):
            cells = []
            for r in here:
                c = None if r is None else r["int8_convs"][k]
                cells.append("-" if c is None else f"{c['gmacs']:.1f}" + (
                    "" if c["peak_fraction"] is None else f" ({100 * c['peak_fraction']:.0f}%)"))
            rows.append([conv["op"], f"{conv['macs'] / 1e6:.1f}"] + cells)
    head = ["int8 conv", "M MACs"] + [f"{i} {t} thread{'s' if t > 1 else ''}" for i, t in cols]
    return block(table(head, rows), [INT8_PATH], recs)


# ---- ARM: llvm-mca model of the NEON binary conv --------------------------------------------------

def t_arm_mca() -> str:
    path = f"{RESULTS}/arm_mca_bconv.json"
    data = json.loads((REPO / path).read_text())
    meta, recs = data["meta"], data["records"]
    peers = dict(meta["peers"])
    cores = _distinct(r["core"] for r in recs)
    first = {c: next(r for r in recs if r["core"] == c) for c in cores}
    get = {(r["core"], r["layer"]): r for r in recs}
    rows = []
    for layer in _distinct(r["layer"] for r in recs):
        here = [get.get((c, layer)) for c in cores]
        peer = next((v for k, v in peers.items() if k.startswith("daBNN") and f" {layer} " in f" {k} "), "-")
        rows.append([f"{layer}-{layer.rsplit('x', 1)[1]}", next(r["w64"] for r in here if r)]
                    + ["-" if r is None else f"{r['bit_macs_per_cycle']:.1f} ({100 * r['ratio_to_bound']:.0f}%, "
                       f"{100 * r['ratio_to_bound_with_xor']:.0f}%): {r['estimated_1thread_ms']:.2f} ms"
                       for r in here] + [peer])
    head = (["layer (3x3, s1)", "words per tap"]
            + [f"{c} ({first[c]['board']}, {first[c]['clock_ghz']:g} GHz; bounds "
               f"{first[c]['bound_bit_macs_per_cycle']:.0f}, {first[c]['bound_with_xor_bit_macs_per_cycle']:.1f})"
               for c in cores] + ["daBNN, Pixel 1, 1 thread (published)"])
    others = [f"{k}: {v}" for k, v in peers.items() if not k.startswith("daBNN")]
    llvm = ", ".join(_distinct(r.get("llvm") for r in recs))
    notes = [f"Model assumptions (from the record): {meta['assumptions']}. Compiler {meta['compiler']}, "
             f"llvm-mca {llvm}."] + ([f"Published, 1 thread: {'; '.join(others)}."] if others else [])
    for n in data.get("networks", []):
        notes.append(f"**{n['network']}, whole network, 1 thread, {n['board']} ({n['core']}, {n['clock_ghz']:g} GHz), "
                     f"llvm-mca model: {n['estimated_1thread_ms']:.2f} ms** (binary layers {n['binary_ms']:.2f} ms, "
                     f"other ops {n['other_ms']:.2f} ms; ops not modelled: {', '.join(n['not_modelled']) or 'none'}). "
                     f"Network model assumptions (from the record): {meta['network_assumptions']}.")
    prov = [{"commit": meta["commit"], "isa": "neon (llvm-mca model, no ARM hardware)", "threads": 1}]
    return block(table(head, rows) + [""] + notes, [path], prov)


# ---- bit-flip robustness (docs/robustness.md) ------------------------------------------------

def _flip_cell(row: dict | None) -> str:
    if row is None:
        return ""
    acc = f"{100 * row['accuracy']:.2f}%"
    if len(row.get("trials", [])) > 1:
        return f"{acc} ({100 * row['min']:.2f}-{100 * row['max']:.2f})"
    return acc


def t_robustness(path: str) -> str:
    rec = load(path)[0]
    rnd, prog = rec["random"], rec.get("progressive")
    kinds = [k for k in ("binary", "thresholds", "int8") if k in rnd["sites"]]
    by = {(r["kind"], r["flips"]): r for r in rnd["rows"]}
    pby = {r["flips"]: r for r in prog["rows"]} if prog else {}
    flips = sorted(set(rnd["flips"]) | set(pby))
    trials = max(len(r.get("trials", [])) for r in rnd["rows"])
    twin_r, twin_p = rnd.get("twin"), (prog or {}).get("twin")
    tby = {r["flips"]: r for r in twin_r["rows"]} if twin_r else {}
    tpby = {r["flips"]: r for r in twin_p["rows"]} if twin_p else {}
    flips = sorted(set(flips) | set(tby) | set(tpby))
    head = ["flips"] + [f"random {k} ({rnd['sites'][k]['bits']:,} bits)" for k in kinds]
    if twin_r:
        head.append(f"random int8 twin ({twin_r['sites']['int8']['bits']:,} bits)")
    if prog:
        head.append("progressive binary")
    if twin_p:
        head.append("progressive int8 twin")
    rows = []
    for n in flips:
        row = [f"{n:,}"] + [_flip_cell(by.get((k, n))) for k in kinds]
        if twin_r:
            row.append(_flip_cell(tby.get(n)))
        if prog:
            row.append(_flip_cell(pby.get(n)))
        if twin_p:
            row.append(_flip_cell(tpby.get(n)))
        rows.append(row)
    tr = rec["training"]
    width = f" width {tr['width']}," if "width" in tr else ""
    notes = [f"{tr['model']}{width} {tr['epochs']} epoch(s) on {rnd['dataset']}, engine accuracy "
             f"{100 * rnd['clean_accuracy']:.2f}% on {rnd['images']:,} test images with no flip; random: mean "
             f"(min-max) of {trials} seeded trials (seed {rnd['seed']}); a blank cell: more flips than bits, or "
             f"not run."]
    if twin_r:
        tt = rec["twin_training"]
        notes.append(f"int8 twin: the float twin ({tt['epochs']} epoch(s), the same recipe; PyTorch accuracy "
                     f"{100 * twin_r['float_accuracy']:.2f}% on the same images) with every conv and dense weight "
                     f"quantized to int8 per output channel: {100 * twin_r['clean_accuracy']:.2f}% with no flip; the "
                     f"flips fall on any bit of its int8 weights (the same counts, seeds and attack batch as the "
                     f"BNN's; random: {twin_r['trials']} trial(s)), evaluated in PyTorch.")
    provs = []
    for run in [rec] + ([rec["twin_run"]] if "twin_run" in rec else []):
        m = dict(run["machine"])
        provs.append({"cpu": m.get("cpu"), "cores": m.get("cores"), "commit": m.get("commit"),
                      "threads": run.get("torch_threads"), "loadavg": [run["load_avg_before"], run["load_avg_after"]]})
    return block(table(head, rows) + [""] + notes, [path], provs)


# ---- CBNN bit-slice input (docs/bitslice.md) ----------------------------------------------------

def input_label(r: dict, short: bool = False) -> str:
    """The input variant of a bit-slice study row (``short``: for plot axes)."""
    b = r["input_bits"]
    if b is None:
        return "int8" if short else "int8 first layer (baseline)"
    if isinstance(b, int):
        return f"{b} planes/colour" if short else f"{b} planes per colour"
    return f"chosen ({len(b)} planes)" if short else f"chosen by `prune --method bitslice` ({len(b)} planes)"


def _input_cost(fl: dict) -> str:
    if fl["macs_int8"]:
        return f"{fl['macs_int8'] / 1e6:.2f} M int8 MACs"
    words = f", {fl['word_ops'] / 1e6:.2f} M words" if "word_ops" in fl else ""
    return f"{fl['bit_macs'] / 1e6:.2f} M bit-MACs{words} ({fl['weight_bits']} weight planes)"


def t_bitslice(path: str) -> str:
    rec = load(path)[0]
    (ds, d), = rec["datasets"].items()
    rows = d["rows"]
    base = next(r for r in rows if r["input_bits"] is None)
    head = ["input", "engine test accuracy", "vs int8 (points)", "input layer cost", "input layer weights (bytes)",
            "input layer ms", "network ms (vs int8)", "file bytes (vs int8)"]
    out = []
    for r in rows:
        acc = r["engine_test_accuracy"]
        out.append([input_label(r), pct(acc), f"{100 * (acc - base['engine_test_accuracy']):+.2f}",
                    _input_cost(r["first_layer"]), f"{r['first_layer']['weight_bytes']:,}",
                    ms(r["first_layer_median_ms"]), f"{ms(r['median_ms'])} ({r['median_ms'] / base['median_ms']:.2f}x)",
                    f"{r['file_bytes']:,} ({r['file_bytes'] / base['file_bytes']:.2f}x)"])
    b = d["budget"]
    notes = [f"Training budget (every row the same): {b['model']} width {b['width']}, {b['epochs']} epochs on the "
             f"first {b['limit_train']:,} training images of {ds}, batch {b['batch_size']}, Adam lr {b['lr']}, seed 0, "
             f"one torch thread, CPU. Accuracies: the engine on the whole test split ({base['test_images']:,} images). "
             f"Latency: batch 1, {rec['threads']} thread(s), ISA {rec['isa']}, median of {base['samples']} runs "
             f"(sum of the executor's op times), the files interleaved in one process."]
    pr = d.get("prune")
    if pr:
        s, p_ = pr["sensitivity"], pr["pruned"]
        top = ", ".join(f"c{q // 8}b{q % 8}" for q in reversed(s["order"][-3:]))
        bud = pr["budget"]
        notes.append(f"Plane choice (8-plane model, budget {100 * pr['max_loss']:g} point(s) of validation accuracy, "
                     f"{s['seeds']} random draws per measurement on {bud['val_size']:,} held-out training images): "
                     f"keeps {len(p_['planes'])} of {len(s['planes'])} planes ({p_['planes_text']}); most sensitive "
                     f"planes {top}; then {bud['finetune_epochs']:g} epoch(s) of fine-tuning on "
                     f"{bud['limit_train']:,} images (lr {bud['lr']}), which the other rows did not get.")
    ok = [r for r in rows if r["input_bits"] is not None
          and base["engine_test_accuracy"] - r["engine_test_accuracy"] <= 0.01]
    if ok:
        best = min(ok, key=lambda r: r["file_bytes"])
        notes.append(f"Within 1 point of the int8 baseline: {', '.join(input_label(r) for r in ok)}; the smallest "
                     f"file among them is {best['file_bytes'] / base['file_bytes']:.2f}x the baseline's, its network "
                     f"{best['median_ms'] / base['median_ms']:.2f}x the baseline's latency.")
    else:
        notes.append("No bit-plane variant is within 1 point of the int8 baseline at this budget.")
    prov = {k: rec.get(k) for k in ("cpu", "cores", "commit", "isa", "threads")}
    prov["loadavg"] = [rec["loadavg_start"], rec["loadavg_end"]]
    return block(table(head, out) + [""] + notes, [path], [prov])


BITSLICE_TABLES = {
    "bitslice-mnist": lambda: t_bitslice(f"{RESULTS}/bitslice/bitslice_mnist.json"),
    "bitslice-cifar10": lambda: t_bitslice(f"{RESULTS}/bitslice/bitslice_cifar10.json"),
}


ROBUSTNESS_TABLES = {
    "robustness-mnist-small": lambda: t_robustness(f"{RESULTS}/robustness_mnist_small.json"),
    "robustness-cifar-binarynet": lambda: t_robustness(f"{RESULTS}/robustness_cifar_binarynet.json"),
}


TABLES = {
    "layers": t_layers,
    "models": t_models,
    "binary-ops": t_binary_ops,
    "engine-ops": t_engine_ops,
    "word-counts": t_word_counts,
    "masked": t_masked,
    "pruned-models": t_pruned_models,
    "mask-sizes": t_mask_sizes,
    "verify": t_verify,
    "qat": t_qat,
    "training": t_training,
    "pruning": t_pruning,
    "executor": t_executor,
    "fuzz-loader": t_fuzz_loader,
    "int8-networks": t_int8_networks,
    "int8-convs": t_int8_convs,
    "arm-mca": t_arm_mca,
}


LARQ_TABLES = {
    "peers": t_peers,
    "larq-export": t_larq_export,
    "larq-import": t_larq_import,
    "larq-agreement": t_larq_agreement,
    "larq-signs": t_larq_signs,
    "larq-lce": t_larq_lce,
}


BITSLICE_PAGE = REPO / "docs" / "bitslice.md"
LARQ_PAGE = REPO / "docs" / "larq.md"
PAGES = {PAGE: TABLES, ROBUSTNESS_PAGE: ROBUSTNESS_TABLES, BITSLICE_PAGE: BITSLICE_TABLES, LARQ_PAGE: LARQ_TABLES}


def render(page: str, tables: dict = TABLES) -> str:
    """The page with every marked table replaced by what the records give; an unknown table name
    raises ValueError."""
    def sub(m: re.Match) -> str:
        name = m.group(1)
        if name not in tables:
            raise ValueError(f"unknown table {name!r} (known: {', '.join(tables)})")
        return f"<!-- table: {name} -->\n{tables[name]()}<!-- /table -->"
    return MARKER.sub(sub, page)


def differences(page: str, tables: dict = TABLES) -> list[str]:
    """Names of the tables on ``page`` that differ from what the records give."""
    return [m.group(1) for m in MARKER.finditer(page)
            if m.group(1) not in tables or m.group(2) != tables[m.group(1)]()]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="rewrite the tables on every page")
    mode.add_argument("--check", action="store_true", help="exit 1 if a table on a page differs")
    args = ap.parse_args(argv)
    if args.write:
        for page, tables in PAGES.items():
            page.write_text(render(page.read_text(), tables))
        return 0
    if args.check:
        bad = 0
        for page, tables in PAGES.items():
            for name in differences(page.read_text(), tables):
                bad += 1
                print(f"{page.relative_to(REPO)}: table {name!r} differs from its records "
                      f"(python benchmarks/report.py --write)", file=sys.stderr)
        return 1 if bad else 0
    for tables in PAGES.values():
        for name, fn in tables.items():
            print(f"<!-- table: {name} -->\n{fn()}<!-- /table -->\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
