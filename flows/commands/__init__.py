"""CLI command groups. Each module here exposes ``register(subparsers)`` (see flows/cli.py).

Shared helpers for commands: ``emit(table, fmt, output)`` prints an Arrow table as an aligned
text table, CSV, JSON or Parquet, so every command's output looks alike.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
from typing import TYPE_CHECKING, Any, TextIO

from store.errors import CalopsError

if TYPE_CHECKING:  # imported where a table is printed: `calops stage`/`step` never load it
    import pyarrow as pa

FORMATS = ("table", "csv", "json", "parquet")


def render(value: Any) -> str:
    """One cell as text: NULL, ISO times, JSON for nested values."""
    if value is None:
        return "NULL"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, default=str)
    if isinstance(value, bytes):
        return value.hex()
    return str(value)


def is_id(text: str) -> bool:
    """A product id or recipe key (``sha256:<64 hex>``, ``b3:...``): never cut in a table, so
    an id can be copied from ``calops sql`` into ``calops lineage``."""
    from store.identity import is_id as _is_id

    return ":" in text and _is_id(text)


def format_table(table: pa.Table, max_width: int = 40) -> str:
    """Aligned columns, cells longer than ``max_width`` cut with an ellipsis (never a product
    id or recipe key), a row count."""
    names = table.column_names
    rows = [[render(v) for v in r.values()] for r in table.to_pylist()]

    def cut(s: str) -> str:
        s = s.replace("\n", "\\n")
        if max_width <= 0 or len(s) <= max_width or is_id(s):
            return s  # product ids and recipe keys stay whole: they are copied into commands
        return s[: max_width - 1] + "…"

    rows = [[cut(c) for c in r] for r in rows]
    heads = [cut(n) for n in names]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(heads)]
    import pyarrow as pa

    numeric = [pa.types.is_integer(t) or pa.types.is_floating(t) for t in table.schema.types]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w)
                         for c, w, num in zip(cells, widths, numeric)).rstrip()

    out = [line(heads), "  ".join("-" * w for w in widths)] if names else []
    out += [line(r) for r in rows]
    n = table.num_rows
    out.append(f"({n} row{'s' if n != 1 else ''})")
    return "\n".join(out)


def emit(table: pa.Table, fmt: str = "table", output: str | None = None,
         max_width: int = 40, stream: TextIO | None = None) -> None:
    """Write ``table`` in ``fmt`` to ``output`` (a file path) or ``stream``/stdout."""
    stream = stream or sys.stdout
    if fmt == "parquet":
        if not output:
            raise CalopsError("--format parquet writes a file: give -o FILE")
        import pyarrow.parquet as pq

        pq.write_table(table, output)
        return
    if fmt == "table":
        text = format_table(table, max_width) + "\n"
    elif fmt == "csv":
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(table.column_names)
        for r in table.to_pylist():
            w.writerow(["" if v is None else render(v) for v in r.values()])
        text = buf.getvalue()
    elif fmt == "json":
        text = json.dumps(table.to_pylist(), default=render, indent=1) + "\n"
    else:
        raise CalopsError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if output:
        with open(output, "w") as f:
            f.write(text)
    else:
        stream.write(text)
