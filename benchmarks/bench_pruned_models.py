"""Latency of pruned models on the onebit engine: pruned vs unpruned, timed interleaved in one run.

    python benchmarks/bench_pruned_models.py [--model cifar-binarynet] [--target 0.4]
        [--granularities channel,block,word,weight] [--isa avx2] [--threads 1] [--repeats 40]
        [--json benchmarks/results/pruned_models.json]

Builds the model at width 1 with random weights (``onebit.models.create`` +
``onebit.convert.testing.randomize_bn``; weights do not change latency), exports it unpruned,
then prunes a copy per granularity with ``onebit.prune.Pruner`` (latent-weight magnitude, uniform
per-layer ratios, one shot, no fine-tuning) to ``target`` fewer binary ops and exports it
(channel: shrunk layers; block / word / weight: ``weight_mask`` ops, docs/format.md §7.3);
``--aligned-channel 64`` adds a channel-pruned variant whose kept channel counts are multiples of
64 (:func:`aligned_channel_ratios`), ``--channel-ratios`` one at explicit per-layer ratios. All
files are loaded (``Session``, weights prepared once) and timed batch 1 *interleaved*
(``onebit.runtime.bench.time_interleaved``: one run of each model in turn, rotating), so machine
load hits every variant alike; ratios are to the unpruned model of the same run. Prints a table
(min and median ms, ratio to unpruned, kept bit-MACs) and writes JSON records with the machine,
commit, load average before/after and the per-op medians (``Session.profile`` in 5 interleaved
rounds, each op's best round; their sum, "op medians sum", is robust to whole-run preemption on
a loaded machine, see onebit.runtime.bench).
"""
from __future__ import annotations

import argparse
import copy
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import machine, write_json  # noqa: E402


def aligned_channel_ratios(model, target: float, multiple: int = 64, slack: float = 0.015) -> dict:
    """Per-layer channel-pruning ratios whose kept channel counts are multiples of ``multiple``.

    The engine's binary conv costs about ``positions x ceil(Cout/16) x ceil(Cin/64) x taps``
    (16-channel AVX2 tiles over 64-channel packed words, docs/kernels.md), so channels removed
    inside a partly used word save bit-MACs but little time. Every binary conv whose output
    feeds another binary layer keeps ``multiple * j`` channels; among the plans with between
    ``target`` and ``target + slack`` fewer bit-MACs (exact count, ``onebit.prune`` convention)
    this returns the one of least modelled cost (exhaustive search; a handful of layers).
    """
    import itertools
    import math

    from onebit.prune import binary_layers, layer_positions
    from onebit.prune.graph import dataflow

    mods = dict(binary_layers(model))
    flow = dataflow(model)
    pos = layer_positions(model)
    plan = [n for n, mod in mods.items() if mod.weight.dim() == 4 and flow.chains[n].error is None
            and flow.chains[n].consumer in mods]
    producer = {flow.chains[n].consumer: (n, (flow.chains[n].flatten or (0, 1))[1]) for n in plan}

    def cost(kept):
        bops = proxy = 0
        for n, mod in mods.items():
            w = mod.weight
            out = kept.get(n, w.shape[0])
            taps = w[0, 0].numel() if w.dim() == 4 else 1
            if n in producer:
                src, hw = producer[n]
                c = kept.get(src, mods[src].weight.shape[0])
                cin, words = c * hw, hw * math.ceil(c / 64)
            else:
                cin, words = w.shape[1], math.ceil(w.shape[1] / 64)
            bops += pos[n] * out * cin * taps
            proxy += pos[n] * math.ceil(out / 16) * 16 * words * taps
        return bops, proxy

    base, _ = cost({})
    best = None
    for counts in itertools.product(*[range(multiple, mods[n].weight.shape[0] + 1, multiple) for n in plan]):
        kept = dict(zip(plan, counts))
        bops, proxy = cost(kept)
        if target <= 1 - bops / base <= target + slack and (best is None or proxy < best[0]):
            best = (proxy, kept)
    if best is None:
        raise ValueError(f"no plan with channel counts in multiples of {multiple} removes {target:.0%}-"
                         f"{target + slack:.0%} of the binary ops")
    return {n: 1 - k / mods[n].weight.shape[0] for n, k in best[1].items() if k < mods[n].weight.shape[0]}


def build_files(model_name: str, granularities, target: float, outdir: Path, seed: int = 0,
                channel_ratios: dict | None = None, aligned: int | None = None) -> list[dict]:
    """Export the unpruned model and one pruned copy per granularity (and, with ``channel_ratios``,
    a channel-pruned copy at those explicit per-layer ratios); returns [{variant, file, ...}]."""
    import torch

    import onebit.models as om
    from onebit.convert.export import export
    from onebit.convert.testing import randomize_bn
    from onebit.prune import Pruner, binary_layers

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    m = om.create(model_name, width=1)
    randomize_bn(m, seed, input_shape=tuple(m.input_shape)).eval()
    dataset = m.dataset_hint
    out = [{"variant": "unpruned", "file": export(m, outdir / "unpruned.onebit", dataset=dataset),
            "target": 0.0, "prune_seconds": 0.0}]
    for g in granularities:
        t0 = time.perf_counter()
        p = Pruner(copy.deepcopy(m), "latent", g, target, seed=seed).prepare()
        rep = p.prune()
        pm = p.finalize().eval()
        out.append({"variant": g, "file": export(pm, outdir / f"{g}.onebit", dataset=dataset), "target": target,
                    "pruner_reduction": rep["reduction"], "prune_seconds": time.perf_counter() - t0})
    extra = []
    if aligned:
        extra.append((f"channel-aligned{aligned}", aligned_channel_ratios(m, target, aligned)))
    if channel_ratios:
        extra.append(("channel@" + ",".join(f"{k}={v:g}" for k, v in channel_ratios.items()), channel_ratios))
    for i, (variant, ratios) in enumerate(extra):
        t0 = time.perf_counter()
        p = Pruner(copy.deepcopy(m), "latent", "channel", ratios=ratios, seed=seed).prepare()
        rep = p.prune()
        pm = p.finalize().eval()
        kept = {n: int(round((1 - r) * mod.weight.shape[0])) for n, mod in dict(binary_layers(m)).items()
                for k, r in ratios.items() if k == n}
        out.append({"variant": variant, "file": export(pm, outdir / f"channel_extra{i}.onebit", dataset=dataset),
                    "target": target, "ratios": ratios, "kept_channels": kept,
                    "pruner_reduction": rep["reduction"], "prune_seconds": time.perf_counter() - t0})
    return out


def measure(variants: list[dict], isa: str | None, threads: int, repeats: int, warmup: int) -> list[dict]:
    import numpy as np

    from onebit.runtime import Session, opstats
    from onebit.runtime.bench import time_interleaved

    sessions = []
    for v in variants:
        t0 = time.perf_counter()
        sessions.append(Session(v["file"], threads=threads, isa=isa))
        v["load_seconds"] = time.perf_counter() - t0
    load_before = os.getloadavg()[0]
    timings = time_interleaved(sessions, 1, repeats, warmup)
    # per-op medians (Session.profile) in 5 interleaved rounds; each op's best round median
    xs = [np.random.default_rng(0).integers(0, 256, (1,) + s.input_shape, dtype=np.uint8) for s in sessions]
    op_ms = [{} for _ in sessions]
    for rnd in range(5):
        for j in range(len(sessions)):
            i = (j + rnd) % len(sessions)
            for r in sessions[i].profile(xs[i], max(10, repeats // 5)):
                op_ms[i].setdefault(r["op"], []).append(r["median_ms"])
    load_after = os.getloadavg()[0]
    base_min, base_med = timings[0]
    base_stats = opstats.totals(opstats.op_stats(sessions[0].model))
    mach = machine()
    records = []
    base_ops = None
    for v, sess, (mn, med), per_op in zip(variants, sessions, timings, op_ms):
        tot = opstats.totals(opstats.op_stats(sess.model))
        prof = [{"op": op.name, "type": op.type, "median_ms": min(per_op[op.name])} for op in sess.model.ops]
        ops_sum = sum(r["median_ms"] for r in prof)
        base_ops = ops_sum if base_ops is None else base_ops
        records.append(dict(
            mach, benchmark="pruned_models", model=(sess.model.metadata["producer"].get("model") or {}).get("name"),
            width=1, variant=v["variant"], method="latent", target=v["target"],
            pruner_reduction=v.get("pruner_reduction"), ratios=v.get("ratios"), kept_channels=v.get("kept_channels"),
            isa=sess.isa, threads=threads, batch=1,
            repeats=repeats, min_ms=mn, median_ms=med, x_unpruned_min=mn / base_min, x_unpruned_median=med / base_med,
            bit_macs=tot["bit_macs"], x_unpruned_bit_macs=tot["bit_macs"] / base_stats["bit_macs"],
            pruned_weights=tot["pruned_weights"], masked_ops=tot["pruned_ops"], mask_bytes=tot["mask_bytes"],
            file_bytes=os.path.getsize(v["file"]), load_seconds=v["load_seconds"],
            loadavg_before=round(load_before, 2), loadavg_after=round(load_after, 2),
            ops=prof,
            ops_sum_ms=ops_sum, x_unpruned_ops_sum=ops_sum / base_ops))
    return records


def table(records: list[dict]) -> str:
    from onebit.table import format_table

    rows = [{"variant": r["variant"], "isa": r["isa"], "threads": r["threads"],
             "bit-MACs (M)": round(r["bit_macs"] / 1e6, 1), "x bit-MACs": round(r["x_unpruned_bit_macs"], 3),
             "min ms": round(r["min_ms"], 3), "median ms": round(r["median_ms"], 3),
             "x min": round(r["x_unpruned_min"], 3), "x median": round(r["x_unpruned_median"], 3),
             "op medians sum ms": round(r["ops_sum_ms"], 3), "x op sum": round(r["x_unpruned_ops_sum"], 3),
             "file KiB": round(r["file_bytes"] / 1024),
             "masked ops": len(r["masked_ops"])} for r in records]
    r0 = records[0]
    tgt = next((r["target"] for r in records if r["variant"] != "unpruned"), 0.0)
    head = (f"{r0['model']} width 1, batch 1, latent-magnitude pruning to {tgt:.0%} "
            f"fewer binary ops; cpu {r0['cpu']}; commit {r0['commit']}; load {r0['loadavg_before']} -> "
            f"{r0['loadavg_after']}")
    return head + "\n" + format_table(rows)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cifar-binarynet")
    ap.add_argument("--target", type=float, default=0.4)
    ap.add_argument("--granularities", default="channel,block,word,weight")
    ap.add_argument("--isa", default=None, help="comma list (default: the engine's best ISA)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep-files", default=None, help="directory to keep the .onebit files in")
    ap.add_argument("--aligned-channel", type=int, default=None, metavar="M",
                    help="also a channel-pruned variant whose kept channel counts are multiples of M "
                         "(aligned_channel_ratios: least modelled engine cost at the same target)")
    ap.add_argument("--channel-ratios", default=None, metavar="LAYER=R,...",
                    help="also a channel-pruned variant at these explicit per-layer ratios (e.g. ratios that keep "
                         "channel counts at multiples of 64, the engine's packed word)")
    a = ap.parse_args(argv)
    grans = [g for g in a.granularities.split(",") if g]
    ratios = None
    if a.channel_ratios:
        ratios = {k: float(v) for k, v in (item.split("=") for item in a.channel_ratios.split(",") if item)}
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(a.keep_files or tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        variants = build_files(a.model, grans, a.target, outdir, channel_ratios=ratios,
                               aligned=a.aligned_channel)
        records = []
        for isa in (a.isa.split(",") if a.isa else [None]):
            recs = measure([dict(v) for v in variants], isa, a.threads, a.repeats, a.warmup)
            print(table(recs), flush=True)
            records.extend(recs)
    cmd = "python benchmarks/bench_pruned_models.py " + " ".join(argv if argv is not None else sys.argv[1:])
    for r in records:
        r["command"] = cmd.strip()
    if a.json:
        write_json(records, a.json)
        print(f"wrote {len(records)} records to {a.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
