"""Plain aligned text tables for CLI output and summaries (torch-free, no dependencies).

``format_table(rows, columns=None, floatfmt=".4g")`` renders a list of dicts as::

    name   params  acc
    -----  ------  ------
    conv1  288     0.9912

Numbers are right-aligned, everything else left-aligned; a missing key renders as empty.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

__all__ = ["format_table", "format_cell"]


def format_cell(value, floatfmt: str = ".4g") -> str:
    """Text of one cell: ints as-is, floats with ``floatfmt``, None as empty, else ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return format(float(value), floatfmt)
    return str(value)


def _is_number(value) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def format_table(
    rows: Sequence[Mapping],
    columns: Sequence[str] | Mapping[str, str] | None = None,
    floatfmt: str | Mapping[str, str] = ".4g",
    sep: str = "  ",
) -> str:
    """Render ``rows`` (list of dicts) as an aligned plain-text table.

    Args:
        rows: one mapping per row.
        columns: the keys to show, in order. A mapping ``{key: header}`` renames headers.
            Default: the union of the rows' keys in first-seen order.
        floatfmt: format spec for floats, either one spec or ``{column: spec}`` (others ".4g").
        sep: text between columns.

    Returns the table without a trailing newline (header, dashes, one line per row).
    """
    if isinstance(rows, Mapping) or not isinstance(rows, Sequence):
        raise TypeError(f"format_table expects a list of dicts, got {type(rows).__name__}")
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"format_table: row {i} is {type(row).__name__}, expected a dict")
    if columns is None:
        keys: list[str] = []
        for row in rows:
            for k in row:
                if k not in keys:
                    keys.append(k)
        headers = {k: str(k) for k in keys}
    elif isinstance(columns, Mapping):
        headers = {k: str(v) for k, v in columns.items()}
    else:
        headers = {k: str(k) for k in columns}
    keys = list(headers)

    def fmt_of(key) -> str:
        if isinstance(floatfmt, Mapping):
            return floatfmt.get(key, ".4g")
        return floatfmt

    cells = [[format_cell(row.get(k), fmt_of(k)) for k in keys] for row in rows]
    numeric = [
        bool(rows) and all(_is_number(row.get(k)) or row.get(k) is None for row in rows)
        and any(_is_number(row.get(k)) for row in rows)
        for k in keys
    ]
    widths = [
        max([len(headers[k])] + [len(line[j]) for line in cells]) for j, k in enumerate(keys)
    ]

    def render(parts: list[str], align_numeric: bool = True) -> str:
        out = []
        for j, text in enumerate(parts):
            if numeric[j] and align_numeric:
                out.append(text.rjust(widths[j]))
            else:
                out.append(text.ljust(widths[j]))
        return sep.join(out).rstrip()

    lines = [render([headers[k] for k in keys]), sep.join("-" * w for w in widths)]
    lines += [render(line) for line in cells]
    return "\n".join(lines)
