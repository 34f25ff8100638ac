"""File size and load time of pruned models: compact masks (``weight_word_mask``) vs full masks.

    python benchmarks/bench_mask_sizes.py [--model cifar-binarynet] [--width 1] [--target 0.4]
        [--granularities word,block,weight] [--load-repeats 20] [--json benchmarks/results/mask_sizes.json]

Builds the model with random weights (``onebit.models.create`` + ``onebit.convert.testing.randomize_bn``;
the weights do not change the sizes), exports it unpruned, then prunes a copy per granularity
(``onebit.convert.testing.pruned``: ``onebit.prune.Pruner``, latent-weight magnitude, uniform
per-layer ratios, one shot) to ``target`` fewer binary ops and exports it as the converter does
(compact ``weight_word_mask`` where the mask is constant inside every packed word, else the full
``weight_mask``; docs/format.md §7.3). The "full" column is the same file with every compact mask
expanded to the full ``weight_mask`` (:func:`full_mask_bytes`: the form the converter wrote before
compact masks). Load time: ``Session(bytes)`` (validation, compact-mask expansion, weight
preparation) of the compact and the full file, timed alternately (A B A B ...), min and median ms.
"""
from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import machine, write_json  # noqa: E402


def full_mask_bytes(data: bytes) -> bytes:
    """``data`` with every ``weight_word_mask`` replaced by the full ``weight_mask`` it means."""
    from onebit.runtime import format as fmt

    mf = fmt.loads(data)
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    graph = json.loads(header["__metadata__"]["graph"])
    tensors = dict(mf.tensors)
    for op, d in zip(mf.ops, graph["ops"]):
        name = d["tensors"].pop("weight_word_mask", None)
        if name is not None:
            del tensors[name]
            full = name.replace("weight_word_mask", "weight_mask")
            tensors[full] = mf.weight_mask(op)
            d["tensors"]["weight_mask"] = full
    out = fmt.dumps(mf.metadata, graph, tensors)
    fmt.loads(out)
    return out


def mask_bytes(data: bytes) -> tuple[int, int]:
    """(bytes of stored masks, number of ops with a compact mask)."""
    from onebit.runtime import format as fmt
    from onebit.runtime.graph import MASK_ROLES, WORD_MASK_ROLE

    mf = fmt.loads(data)
    total = sum(mf.tensors[op.tensors[r]].nbytes for op in mf.ops for r in MASK_ROLES if r in op.tensors)
    return total, sum(WORD_MASK_ROLE in op.tensors for op in mf.ops)


def load_times(blobs: list[bytes], repeats: int) -> list[tuple[float, float]]:
    """``[(min_ms, median_ms)]`` of ``Session(blob)`` for each blob, timed alternately."""
    from onebit.runtime import Session

    for b in blobs:
        Session(b, threads=1)  # warm up imports and caches
    samples = [[] for _ in blobs]
    for k in range(repeats):
        for j in range(len(blobs)):
            i = (j + k) % len(blobs)
            t0 = time.perf_counter()
            Session(blobs[i], threads=1)
            samples[i].append((time.perf_counter() - t0) * 1e3)
    return [(min(v), statistics.median(v)) for v in samples]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="cifar-binarynet")
    ap.add_argument("--width", type=float, default=1.0)
    ap.add_argument("--target", type=float, default=0.4)
    ap.add_argument("--granularities", default="word,block,weight")
    ap.add_argument("--load-repeats", type=int, default=20)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    import onebit.models as om
    from onebit.convert import to_bytes
    from onebit.convert.testing import pruned, randomize_bn

    torch.manual_seed(0)
    model = om.create(args.model, width=args.width)
    shape = tuple(model.input_shape)
    model = randomize_bn(model, 0, input_shape=shape).eval()
    dense = to_bytes(model)
    print(f"{args.model} width {args.width}: dense file {len(dense):,} bytes; target {args.target:.0%} "
          f"fewer binary ops; {machine()['cpu']}, commit {machine()['commit']}")
    rows = []
    head = f"{'granularity':<12}{'compact B':>12}{'full B':>12}{'compact/full':>14}{'compact/dense':>15}" \
           f"{'mask B (c/f)':>22}{'load ms compact min/med':>26}{'full min/med':>16}"
    print(head)
    import copy

    for g in args.granularities.split(","):
        m = pruned(copy.deepcopy(model), g, args.target, input_size=shape)
        compact = to_bytes(m)
        full = full_mask_bytes(compact)
        (mc, n_compact), (mfull, _) = mask_bytes(compact), mask_bytes(full)
        (lc, lcm), (lf, lfm) = load_times([compact, full], args.load_repeats)
        rec = {"model": args.model, "width": args.width, "target": args.target, "granularity": g,
               "dense_bytes": len(dense), "compact_bytes": len(compact), "full_bytes": len(full),
               "compact_mask_bytes": mc, "full_mask_bytes": mfull, "compact_ops": n_compact,
               "load_ms_compact": [lc, lcm], "load_ms_full": [lf, lfm], **machine()}
        rows.append(rec)
        print(f"{g:<12}{len(compact):>12,}{len(full):>12,}{len(compact) / len(full):>14.3f}"
              f"{len(compact) / len(dense):>15.3f}{f'{mc:,}/{mfull:,}':>22}"
              f"{f'{lc:.1f}/{lcm:.1f}':>26}{f'{lf:.1f}/{lfm:.1f}':>16}")
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
