"""Per-op statistics of a loaded model file: binary ops (kept and dense bit-MACs) and bytes (torch-free).

Used by ``onebit export`` (table and ``--json``), ``onebit summary MODEL.onebit`` and the model
benchmarks. Conventions are those of ``onebit.summary`` and ``onebit.prune.bops``: one bit-MAC
per kept binary weight per output position (padding taps counted), batch 1. For a binary op
``dense_bit_macs`` counts every weight of the op as stored (a channel-pruned, shrunk layer is
already smaller), ``bit_macs`` only the kept ones (``weight_mask`` or its compact form
``weight_word_mask``, docs/format.md §7.3). ``bytes`` are the op's tensors as stored in the file
(weights, mask, stage parameters); ``mask_bytes`` the stored mask (compact when it is).
"""
from __future__ import annotations

from onebit.bits import kept_counts
from onebit.runtime.graph import MASK_ROLES

TOTAL_KEYS = ("bit_macs", "dense_bit_macs", "weights", "kept_weights", "pruned_weights", "bytes", "mask_bytes")


def op_stats(model_file) -> list[dict]:
    """One row per op: ``op``, ``type``, ``output`` (kind), ``shape``, ``K``, ``acc_bits``,
    ``weights``, ``kept_weights``, ``bit_macs``, ``dense_bit_macs``, ``bytes``, ``mask_bytes``."""
    mf = model_file
    rows = []
    for op in mf.ops:
        v = mf.values[op.output]
        t = {role: mf.tensors[name] for role, name in op.tensors.items()}
        a = op.attrs
        weights = kept = positions = 0
        if op.type == "bconv2d":
            kh, kw = a["kernel"]
            weights = a["out_channels"] * kh * kw * a["in_channels"]
            positions = v.shape[0] * v.shape[1]
        elif op.type == "bdense":
            weights = a["out_features"] * a["in_features"]
            positions = 1
        if weights:
            mask = mf.weight_mask(op)
            kept = weights if mask is None else int(kept_counts(mask).sum())
        rows.append({
            "op": op.name, "type": op.type, "output": v.kind, "shape": "x".join(map(str, v.shape)),
            "K": a.get("accumulator_bound", ""), "acc_bits": a.get("accumulator_bits", ""),
            "weights": weights, "kept_weights": kept, "pruned_weights": weights - kept,
            "bit_macs": positions * kept, "dense_bit_macs": positions * weights,
            "bytes": int(sum(x.nbytes for x in t.values())),
            "mask_bytes": int(sum(t[r].nbytes for r in MASK_ROLES if r in t)),
        })
    return rows


def totals(rows: list[dict]) -> dict:
    """Sums of :func:`op_stats` rows, and ``kept_fraction`` = bit_macs / dense_bit_macs."""
    out = {k: int(sum(r[k] for r in rows)) for k in TOTAL_KEYS}
    out["kept_fraction"] = out["bit_macs"] / out["dense_bit_macs"] if out["dense_bit_macs"] else 1.0
    out["pruned_ops"] = [r["op"] for r in rows if r["pruned_weights"]]
    return out


def table_rows(rows: list[dict]) -> list[dict]:
    """Rows for ``onebit.table.format_table`` (binary-op columns only where an op has them)."""
    out = []
    for r in rows:
        row = {"op": r["op"], "type": r["type"], "output": r["output"], "shape": r["shape"],
               "K": r["K"], "acc bits": r["acc_bits"], "bytes": r["bytes"]}
        if r["dense_bit_macs"]:
            row["bit-MACs"] = r["bit_macs"]
            row["kept"] = f"{r['kept_weights'] / r['weights']:.1%}" if r["pruned_weights"] else ""
        else:
            row["bit-MACs"] = row["kept"] = ""
        out.append(row)
    return out


def summary_line(tot: dict, size: int) -> str:
    """One line: binary ops kept of dense, pruned weights, file size."""
    frac = tot["kept_fraction"]
    pruned = (f"; {tot['pruned_weights']:,} pruned binary weights in {len(tot['pruned_ops'])} masked ops "
              f"({tot['mask_bytes']:,} mask bytes)" if tot["pruned_weights"] else "")
    return (f"binary ops: {tot['bit_macs']:,} bit-MACs kept of {tot['dense_bit_macs']:,} "
            f"({frac:.1%}){pruned}; file {size:,} bytes ({_mib(size)})")


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.1f} KiB"


__all__ = ["op_stats", "totals", "table_rows", "summary_line"]
