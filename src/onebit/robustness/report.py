"""Table rows and the accuracy-vs-flips plots of a robustness record (and its int8 twin's)."""
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


def _curves(ax, record: dict, label: str = "{kind}", **style) -> None:
    """One line per kind of ``record`` (range of trials shaded), labelled ``label``."""
    clean = 100 * record["clean_accuracy"]
    for kind in dict.fromkeys(r["kind"] for r in record["rows"]):
        rows = [r for r in record["rows"] if r["kind"] == kind]
        xs = [0] + [r["flips"] for r in rows]
        line, = ax.plot(xs, [clean] + [100 * r["accuracy"] for r in rows], marker="o", ms=3,
                        label=f"{label.format(kind=kind)} ({record['sites'][kind]['bits']:,} bits)", **style)
        ax.fill_between(xs, [clean] + [100 * r["min"] for r in rows], [clean] + [100 * r["max"] for r in rows],
                        alpha=0.2, color=line.get_color())


def _panel(ax, record: dict, title: str) -> None:
    _curves(ax, record, "BNN {kind}" if "twin" in record else "{kind}")
    if "twin" in record:
        _curves(ax, record["twin"], "int8 twin, all weights", color="black", ls="--")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("bits flipped")
    ax.set_ylabel(f"{record['dataset']} test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot(record: dict, path) -> Path:
    """Accuracy (%) vs number of flips, one line per kind; with the int8 twin's line if the
    record has one (``record["twin"]``)."""
    return plot_panels([record], path, [f"{Path(record['model']).name}: {record['mode']} bit flips"])


def plot_panels(records: list[dict], path, titles: list[str]) -> Path:
    """:func:`plot` of several records (e.g. random and progressive), side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(records), figsize=(6 * len(records), 4), dpi=120, squeeze=False)
    for ax, rec, title in zip(axes[0], records, titles):
        _panel(ax, rec, title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
