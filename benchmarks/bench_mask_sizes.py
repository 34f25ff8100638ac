"""File size and load time of pruned models in each storage form of docs/format.md §7.3.

    python benchmarks/bench_mask_sizes.py [--model cifar-binarynet] [--width 1] [--target 0.4]
        [--granularities word,block,weight] [--load-repeats 20] [--json benchmarks/results/mask_sizes.json]

Builds the model with random weights (``onebit.models.create`` + ``onebit.models.randomize_bn``;
the weights do not change the sizes), exports it unpruned, then prunes a copy per granularity
(``onebit.prune.Pruner``, latent-weight magnitude, uniform
per-layer ratios, one shot) to ``target`` fewer binary ops and exports it as the converter does:
the compact mask ``weight_word_mask`` where the mask is constant inside every packed word, else
the full ``weight_mask``, and the kept weights only (``weight_kept``). The same file is then
rewritten (``onebit.convert.long_form.long_form_bytes``) with full weights ("compact mask" column)
and with full weights and full masks ("long form": what the converter wrote before compact
storage). Load time: ``Session(bytes, threads=1)`` (validation, expansion, weight preparation)
of the three forms, timed in turn (A B C A B C ..., order rotating), min and median ms.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _records import machine, write_json  # noqa: E402


def mask_bytes(data: bytes) -> tuple[int, int]:
    """(bytes of stored masks, number of ops with a compact mask)."""
    from onebit.runtime import format as fmt
    from onebit.runtime.graph import MASK_ROLES, WORD_MASK_ROLE

    mf = fmt.loads(data)
    total = sum(mf.tensors[op.tensors[r]].nbytes for op in mf.ops for r in MASK_ROLES if r in op.tensors)
    return total, sum(WORD_MASK_ROLE in op.tensors for op in mf.ops)


def load_times(blobs: list[bytes], repeats: int) -> list[tuple[float, float]]:
    """``[(min_ms, median_ms)]`` of ``Session(blob)`` for each blob, timed in turn (order rotating)."""
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
    from onebit.convert.long_form import long_form_bytes
    from onebit.models import randomize_bn
    from onebit.prune import Pruner

    torch.manual_seed(0)
    model = om.create(args.model, width=args.width)
    shape = tuple(model.input_shape)
    model = randomize_bn(model, 0, input_shape=shape).eval()
    dense = to_bytes(model)
    mach = machine()
    print(f"{args.model} width {args.width}: dense file {len(dense):,} bytes; target {args.target:.0%} "
          f"fewer binary ops; {mach['cpu']}, commit {mach['commit']}")
    forms = ("converter", "compact mask", "long form")
    print(f"{'granularity':<12}" + "".join(f"{f + ' B':>16}" for f in forms) + f"{'x dense':>9}{'x long':>8}"
          + f"{'mask B':>10}" + "".join(f"{f + ' load ms':>24}" for f in forms))
    rows = []
    for g in args.granularities.split(","):
        p = Pruner(copy.deepcopy(model), "latent", g, args.target, input_size=shape, seed=0).prepare()
        p.prune()
        m = p.finalize().eval()
        blobs = [to_bytes(m)]
        blobs += [long_form_bytes(blobs[0], mask=False), long_form_bytes(blobs[0])]
        masks = [mask_bytes(b) for b in blobs]
        loads = load_times(blobs, args.load_repeats)
        rec = {"model": args.model, "width": args.width, "target": args.target, "granularity": g,
               "dense_bytes": len(dense), "compact_ops": masks[0][1], **mach}
        for f, b, (mb, _), lt in zip(forms, blobs, masks, loads):
            key = f.replace(" ", "_")
            rec.update({f"{key}_bytes": len(b), f"{key}_mask_bytes": mb, f"{key}_load_ms": list(lt)})
        rows.append(rec)
        print(f"{g:<12}" + "".join(f"{len(b):>16,}" for b in blobs)
              + f"{len(blobs[0]) / len(dense):>9.3f}{len(blobs[0]) / len(blobs[2]):>8.3f}{masks[0][0]:>10,}"
              + "".join(f"{f'{lo:.1f} / {med:.1f}':>24}" for lo, med in loads))
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
