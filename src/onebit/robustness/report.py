"""Table rows and the accuracy-vs-flips plot of a robustness record."""
from __future__ import annotations

from pathlib import Path


def table_rows(record: dict) -> list[dict]:
    rows = [{"kind": "-", "flips": 0, "bits": "-", "accuracy_%": 100 * record["clean_accuracy"],
             "min_%": 100 * record["clean_accuracy"], "max_%": 100 * record["clean_accuracy"], "drop_pt": 0.0}]
    for r in record["rows"]:
        rows.append({"kind": r["kind"], "flips": r["flips"], "bits": record["sites"][r["kind"]]["bits"],
                     "accuracy_%": 100 * r["accuracy"], "min_%": 100 * r["min"], "max_%": 100 * r["max"],
                     "drop_pt": r["drop_pt"]})
    return rows


def plot(record: dict, path) -> Path:
    """Accuracy (%) vs number of flips, one line per kind (range of trials shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    clean = 100 * record["clean_accuracy"]
    for kind in dict.fromkeys(r["kind"] for r in record["rows"]):
        rows = [r for r in record["rows"] if r["kind"] == kind]
        xs = [0] + [r["flips"] for r in rows]
        ax.plot(xs, [clean] + [100 * r["accuracy"] for r in rows], marker="o", ms=3,
                label=f"{kind} ({record['sites'][kind]['bits']} bits)")
        ax.fill_between(xs, [clean] + [100 * r["min"] for r in rows], [clean] + [100 * r["max"] for r in rows],
                        alpha=0.2)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("bits flipped")
    ax.set_ylabel(f"{record['dataset']} test accuracy (%), engine")
    ax.set_title(f"{Path(record['model']).name}: {record['mode']} bit flips")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
