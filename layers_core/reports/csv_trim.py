"""Trim an artefact CSV as text (columns, rows) without re-formatting any value."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path

Table = tuple[list[str], list[list[str]]]


def read_table(path: Path) -> Table:
    """Header and rows of a CSV, every cell the exact text in the file."""
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return (rows[0], rows[1:]) if rows else ([], [])


def table_text(table: Table) -> str:
    """The table written back as CSV text (``\\n`` line ends)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table[0])
    writer.writerows(table[1])
    return out.getvalue()


def topk_rank(column: str) -> int | None:
    """k for a ``topk`` or ``p_topk`` column, else None."""
    stem = column[2:] if column.startswith("p_top") else column
    return int(stem[3:]) if stem.startswith("top") and stem[3:].isdigit() else None


def max_topk(table: Table) -> int:
    """The largest k with a ``topk`` column (0 when none)."""
    return max((k for c in table[0] if (k := topk_rank(c)) is not None), default=0)


def keep_topk(table: Table, k: int) -> Table:
    """Drop the ``topj``/``p_topj`` columns with j > k."""
    keep = [i for i, c in enumerate(table[0]) if (rank := topk_rank(c)) is None or rank <= k]
    return [table[0][i] for i in keep], [[row[i] for i in keep] for row in table[1]]


def keep_rows(table: Table, wanted: Callable[[dict[str, str]], bool]) -> Table:
    """Keep the rows for which ``wanted(row as a column -> text dict)`` is true."""
    header = table[0]
    return header, [row for row in table[1] if wanted(dict(zip(header, row, strict=False)))]
