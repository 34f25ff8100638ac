"""Latency of pruned models on the onebit engine: pruned vs unpruned, timed interleaved in one run.

    python benchmarks/bench_pruned_models.py [--model cifar-binarynet] [--target 0.4 | 0.3,0.4,0.5]
        [--granularities channel,block,word,weight] [--channel-multiple 64[,128]] [--isa avx2] [--threads 1]
        [--repeats 40] [--json benchmarks/results/quiet/pruned_models.json]

Builds the model at width 1 with random weights (``onebit.models.create`` +
``onebit.models.randomize_bn``; weights do not change latency), exports it unpruned,
then prunes a copy per granularity and target with ``onebit.prune.Pruner`` (latent-weight
magnitude, uniform per-layer ratios, one shot, no fine-tuning) to ``target`` fewer binary ops and
exports it (channel: shrunk layers; block / word / weight: masked ops, stored as kept weights
plus a mask, docs/format.md §7.3); ``--channel-multiple 64`` adds, per target, a channel-pruned variant
``channel-m64`` made by ``Pruner(..., granularity="channel", channel_multiple=64)``: the same
uniform allocation with every kept channel count a multiple of 64 (the engine's packed word;
rounding rule in onebit.prune.allocation), ``--channel-ratios`` one at explicit per-layer ratios.
Several comma-separated targets put all their variants in the same run. All
files are loaded (``Session``, weights prepared once) and timed batch 1 *interleaved*
(``onebit.bench.timing.time_interleaved``: one run of each model in turn, rotating), so machine
load hits every variant alike; ratios are to the unpruned model of the same run. Prints a table
(min and median ms, ratio to unpruned, kept bit-MACs, kept channels) and writes JSON records with
the machine, commit, load average before/after and the per-op medians (``Session.profile`` in 5
interleaved rounds, each op's best round; their sum, "op medians sum", is robust to whole-run
preemption on a loaded machine, see onebit.bench.model).
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


def _pruned_variant(model, outdir: Path, variant: str, granularity: str, *, target=None, ratios=None,
                    channel_multiple: int = 1, seed: int = 0) -> dict:
    """Prune a copy of ``model`` (latent magnitude, one shot) and export it; the variant's record."""
    from onebit.convert.export import export
    from onebit.prune import Pruner, binary_layers

    t0 = time.perf_counter()
    p = Pruner(copy.deepcopy(model), "latent", granularity, target, ratios=ratios, seed=seed,
               channel_multiple=channel_multiple).prepare()
    rep = p.prune()
    pm = p.finalize().eval()
    seconds = time.perf_counter() - t0
    # output channels of every binary layer after the shrink (channel granularity)
    kept = {n: int(mod.weight.shape[0]) for n, mod in binary_layers(pm)} if granularity == "channel" else {}
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in variant)
    return {"variant": variant, "file": export(pm, outdir / f"{name}.onebit", dataset=model.dataset_hint),
            "target": target if target is not None else rep["reduction"], "ratios": ratios,
            "channel_multiple": channel_multiple, "kept_channels": kept or None,
            "pruner_reduction": rep["reduction"], "prune_seconds": seconds}


def build_files(model_name: str, granularities, targets, outdir: Path, seed: int = 0,
                channel_ratios: dict | None = None, channel_multiples=()) -> list[dict]:
    """Export the unpruned model and, per target, one pruned copy per granularity (and per
    entry of ``channel_multiples``, a channel-pruned copy whose kept counts are multiples of it); with
    ``channel_ratios``, a channel-pruned copy at those explicit per-layer ratios. Returns
    [{variant, file, ...}]."""
    import torch

    import onebit.models as om
    from onebit.convert.export import export
    from onebit.models import randomize_bn

    torch.manual_seed(seed)
    torch.set_num_threads(1)
    m = om.create(model_name, width=1)
    randomize_bn(m, seed, input_shape=tuple(m.input_shape)).eval()
    out = [{"variant": "unpruned", "file": export(m, outdir / "unpruned.onebit", dataset=m.dataset_hint),
            "target": 0.0, "prune_seconds": 0.0}]
    targets = list(targets)
    for t in targets:
        tag = "" if len(targets) == 1 else f"@{t:g}"
        for g in granularities:
            out.append(_pruned_variant(m, outdir, g + tag, g, target=t, seed=seed))
        for cm in channel_multiples:
            out.append(_pruned_variant(m, outdir, f"channel-m{cm}{tag}", "channel", target=t,
                                       channel_multiple=cm, seed=seed))
    if channel_ratios:
        variant = "channel@" + ",".join(f"{k}={v:g}" for k, v in channel_ratios.items())
        out.append(_pruned_variant(m, outdir, variant, "channel", ratios=channel_ratios, seed=seed))
    return out


def measure(variants: list[dict], isa: str | None, threads: int, repeats: int, warmup: int) -> list[dict]:
    import numpy as np

    from onebit.runtime import Session, opstats
    from onebit.bench.timing import time_interleaved

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
            channel_multiple=v.get("channel_multiple", 1), prune_seconds=v.get("prune_seconds"),
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

    rows = [{"variant": r["variant"], "target": r["target"], "isa": r["isa"], "threads": r["threads"],
             "bit-MACs (M)": round(r["bit_macs"] / 1e6, 1), "x bit-MACs": round(r["x_unpruned_bit_macs"], 3),
             "min ms": round(r["min_ms"], 3), "median ms": round(r["median_ms"], 3),
             "x min": round(r["x_unpruned_min"], 3), "x median": round(r["x_unpruned_median"], 3),
             "op medians sum ms": round(r["ops_sum_ms"], 3), "x op sum": round(r["x_unpruned_ops_sum"], 3),
             "file KiB": round(r["file_bytes"] / 1024), "masked ops": len(r["masked_ops"]),
             "kept channels": " ".join(f"{k}:{v}" for k, v in (r.get("kept_channels") or {}).items())}
            for r in records]
    r0 = records[0]
    head = (f"{r0['model']} width 1, batch 1, latent-magnitude pruning (one shot, uniform ratios) to the "
            f"target fraction of fewer binary ops; cpu {r0['cpu']}; commit {r0['commit']}; load "
            f"{r0['loadavg_before']} -> {r0['loadavg_after']}")
    return head + "\n" + format_table(rows, floatfmt={"target": ".2f"})


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cifar-binarynet")
    ap.add_argument("--target", default="0.4",
                    help="fraction of binary ops to remove; a comma list puts every target's variants in one run")
    ap.add_argument("--granularities", default="channel,block,word,weight")
    ap.add_argument("--isa", default=None, help="comma list (default: the engine's best ISA)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep-files", default=None, help="directory to keep the .onebit files in")
    ap.add_argument("--channel-multiple", "--aligned-channel", dest="channel_multiple", default="",
                    metavar="M[,M2...]", help="also a channel-pruned variant per target (and per M) whose kept "
                                              "channel counts are multiples of M (Pruner(channel_multiple=M), e.g. "
                                              "64: the packed word); alias --aligned-channel)")
    ap.add_argument("--channel-ratios", default=None, metavar="LAYER=R,...",
                    help="also a channel-pruned variant at these explicit per-layer ratios (e.g. ratios that keep "
                         "channel counts at multiples of 64, the engine's packed word)")
    a = ap.parse_args(argv)
    grans = [g for g in a.granularities.split(",") if g]
    targets = [float(t) for t in a.target.split(",") if t]
    multiples = [int(v) for v in a.channel_multiple.split(",") if v]
    if any(v < 2 for v in multiples):
        ap.error(f"--channel-multiple values must be >= 2, got {a.channel_multiple}")
    ratios = None
    if a.channel_ratios:
        ratios = {k: float(v) for k, v in (item.split("=") for item in a.channel_ratios.split(",") if item)}
    with tempfile.TemporaryDirectory() as tmp:
        outdir = Path(a.keep_files or tmp)
        outdir.mkdir(parents=True, exist_ok=True)
        variants = build_files(a.model, grans, targets, outdir, channel_ratios=ratios,
                               channel_multiples=multiples)
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
