"""Writing the run's JSON and CSV files: deterministic bytes, 6-decimal floats, one line per row.

The column lists here are the 001 artefact schema (see DESIGN, "001 artefact
schema"); the reports read the files back with ``read_csv_artefact``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FLOAT_FORMAT = "%.6f"

# Control characters (C0, DEL, C1) and the Unicode line/paragraph separators, which some
# readers (Python's str.splitlines among them) treat as line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# Columns holding token text or ids chosen by the user: never parsed as numbers or NA.
_TEXT_COLUMN = re.compile(r"prompt_id|token|top\d+")


def token_display(text: str) -> str:
    """Token text made safe for one CSV/JSON line: ``\\n``, ``\\r``, ``\\t``, other controls as ``\\xNN``.

    U+2028/U+2029 become ``\\u2028``/``\\u2029``. Backslashes are left as they are,
    so the display is for reading, not for recovering the exact token.
    """
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    if char in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def json_safe(obj: Any) -> Any:
    """``obj`` with NaN/inf floats replaced by None, numpy scalars/arrays and dataclasses made plain."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return json_safe(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {key: json_safe(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(value) for value in obj]
    return obj


def write_json(path: Path | str, obj: Any) -> None:
    """Write ``obj`` as UTF-8 JSON: indent 2, keys in insertion order, NaN/inf as null, final newline."""
    text = json.dumps(json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False)
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text + "\n")


def _column(values: list[Any]) -> pd.Series:
    """One CSV column with a dtype that writes cleanly: whole numbers stay whole, None stays empty."""
    plain = [value.item() if isinstance(value, np.generic) else value for value in values]
    plain = [None if isinstance(v, float) and math.isnan(v) else v for v in plain]
    present = [value for value in plain if value is not None]
    if present and all(isinstance(value, bool) for value in present):
        return pd.Series(plain, dtype="boolean")
    if present and all(isinstance(value, int) and not isinstance(value, bool) for value in present):
        # Nullable ints: a rank column with gaps is written "900", not "900.000000".
        return pd.Series(plain, dtype="Int64")
    if all(isinstance(value, (int, float)) and not isinstance(value, bool) for value in present):
        return pd.Series([np.nan if value is None else float(value) for value in plain], dtype="float64")
    return pd.Series(plain, dtype="object")


def write_csv(path: Path | str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Write rows as CSV in ``columns`` order: floats to 6 decimals, None as an empty cell, ``\\n`` line ends.

    A row may leave a column out (empty cell) but may not carry a key outside
    ``columns``: that would be a misspelt column silently dropped.

    Raises:
        ValueError: a row has a key that is not one of ``columns``.
    """
    allowed = set(columns)
    for number, row in enumerate(rows):
        extra = sorted(set(row) - allowed)
        if extra:
            raise ValueError(f"row {number} has keys outside the CSV columns: {extra}")
    frame = pd.DataFrame({name: _column([row.get(name) for row in rows]) for name in columns})
    frame = frame.reindex(columns=list(columns))  # an empty frame keeps its header too
    frame.to_csv(
        path, index=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n", encoding="utf-8"
    )


def read_csv_artefact(path: Path | str) -> pd.DataFrame:
    """Read a CSV written by ``write_csv``, keeping token text as text.

    A bare ``pandas.read_csv`` would turn tokens such as "NA", "null" or "nan" into
    missing values and a column of digit tokens into numbers; here token and id
    columns are read as strings and only empty cells of other columns are missing.
    """
    header = pd.read_csv(path, nrows=0, keep_default_na=False).columns
    text = [name for name in header if _TEXT_COLUMN.fullmatch(name)]
    return pd.read_csv(
        path,
        dtype={name: str for name in text},
        keep_default_na=False,
        na_values={name: [""] for name in header if name not in text},
    )


def _top_columns(start: int, k: int) -> list[str]:
    columns: list[str] = []
    for i in range(start, k + 1):
        columns += [f"top{i}", f"p_top{i}"]
    return columns


def pure_next_token_columns(k: int = 20) -> list[str]:
    """Columns of ``output-<name>-pure-next-token.csv`` (one row per prompt x layer)."""
    return [
        "prompt_id", "layer", "rel_depth", "entropy_bits", "top1", "p_top1", "p_answer", "answer_rank",
        "kl_to_final_bits", "cosine_to_final", "copy_collapse", *_top_columns(2, k),
    ]


def records_columns(k: int = 5) -> list[str]:
    """Columns of ``output-<name>-records.csv`` (one row per prompt x layer x position)."""
    return ["prompt_id", "layer", "pos", "token", "entropy_bits", *_top_columns(1, k)]


def facts_columns() -> list[str]:
    """Columns of ``output-<name>-facts.csv`` (one row per fact x layer)."""
    return [
        "prompt_id", "layer", "rel_depth", "entropy_bits", "top1", "p_top1", "p_answer", "answer_rank",
        "kl_to_final_bits",
    ]
