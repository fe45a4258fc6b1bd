"""A run folder's artefact files: their names, and writing and reading them back.

Writing: deterministic bytes, 6-decimal floats, one line per row. Reading:
``read_csv_artefact`` is the one CSV reader (the reports and the tests use it),
with one rule for which columns hold text. Each experiment's own columns are
its schema (001: ``layers_and_logits.artefact_schema``; NOTES.md, "Artefacts
(001)"). Nothing here imports torch.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from layers_core.errors import TinycaveError

FLOAT_FORMAT = "%.6f"

# Control characters (C0, DEL, C1) and the Unicode line/paragraph separators, which some
# readers (Python's str.splitlines among them) treat as line breaks.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The default text columns: token text or ids chosen by the user, never parsed as numbers or NA.
# `prompt_id`, `token`, any `<what>_token` (e.g. `answer_token`) and the top-k tokens `top1`, `top2`...
# (not `p_top1`, their probabilities). A writer declares any other text column to the reader.
TEXT_COLUMN_PATTERN = re.compile(r"prompt_id|token|\w+_token|top\d+")


class ArtefactReadError(TinycaveError):
    """An artefact file that cannot be read back (damaged, cut short, not what its writer writes)."""


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


ARTEFACT_PREFIX = "output-"
# A model document's "status": it ran, it was too large for every device, or it failed (with a reason).
OK, SKIPPED, FAILED = "ok", "skipped", "failed"
_JSON_SUFFIX = ".json"


def artefact_name(name: str, kind: str) -> str:
    """``artefact_path``'s file name alone (``output-<name>.json``, ``output-<name>-<kind>.csv``), for messages."""
    return artefact_path(Path(), name, kind).name


def artefact_path(run_dir: Path, name: str, kind: str) -> Path:
    """The one spelling of a model's artefact file names in a run folder.

    Args:
        run_dir: The run folder.
        name: The model's artefact name.
        kind: "json" (``output-<name>.json``), "error-log" (``error-<name>.log``, an unexpected
            failure's traceback), or a CSV suffix ("pure-next-token" -> ``output-<name>-pure-next-token.csv``).
    """
    if kind == "json":
        return Path(run_dir) / f"{ARTEFACT_PREFIX}{name}{_JSON_SUFFIX}"
    if kind == "error-log":
        return Path(run_dir) / f"error-{name}.log"
    return Path(run_dir) / f"{ARTEFACT_PREFIX}{name}-{kind}.csv"


def artefact_names(run_dir: Path) -> list[str]:
    """The model names that have an ``output-<name>.json`` in a run folder, sorted."""
    found = Path(run_dir).glob(f"{ARTEFACT_PREFIX}*{_JSON_SUFFIX}")
    return sorted(p.name[len(ARTEFACT_PREFIX) : -len(_JSON_SUFFIX)] for p in found)


def is_text_column(name: str, text_columns: Collection[str] = ()) -> bool:
    """True when ``read_csv_artefact`` reads the column as text: the default pattern or declared by the writer."""
    return name in text_columns or TEXT_COLUMN_PATTERN.fullmatch(name) is not None


def read_csv_artefact(path: Path | str, text_columns: Collection[str] = ()) -> pd.DataFrame:
    """Read a CSV written by ``write_csv``, keeping text as text.

    The rule: a column is text when ``is_text_column`` says so (``prompt_id``, ``token``,
    ``*_token``, ``top<k>``, plus ``text_columns``); every cell of it stays the exact
    string in the file ("NA", "null", "nan", "007" and "" included). Every other column
    is parsed by pandas (numbers; ``True``/``False`` as booleans) with only an empty
    cell as missing. A bare ``pandas.read_csv`` would turn tokens such as "NA" or
    "null" into missing values and a column of digit tokens into numbers.

    Args:
        path: The CSV file.
        text_columns: Extra text columns the writer declares (ids, labels, free text).

    Raises:
        ArtefactReadError: the file is empty, cut short (no final newline), not parseable as
            CSV, or a column that is not text holds a value that is neither a number nor a boolean.
    """
    path = Path(path)
    with path.open("rb") as handle:
        if handle.seek(0, 2) == 0:
            raise ArtefactReadError(f"{path.name} is empty")
        handle.seek(-1, 2)
        if handle.read(1) != b"\n":
            raise ArtefactReadError(f"{path.name} ends in the middle of a row: the file was cut short")
    try:
        header = pd.read_csv(path, nrows=0, keep_default_na=False, encoding="utf-8").columns
        text = [name for name in header if is_text_column(name, text_columns)]
        frame = pd.read_csv(
            path,
            dtype={name: str for name in text},
            keep_default_na=False,
            na_values={name: [""] for name in header if name not in text},
            encoding="utf-8",
        )
    except ValueError as err:  # pandas' ParserError and EmptyDataError, and UnicodeDecodeError, are ValueErrors
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ArtefactReadError(f"{path.name} is not a readable CSV ({first})") from err
    for name in header:
        if name not in text:
            _check_values(path, frame[name])
    return frame


def _check_values(path: Path, column: pd.Series) -> None:
    """A non-text column holds numbers or booleans (with gaps); anything else means the file is damaged."""
    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return
    for value in column:
        if isinstance(value, bool) or pd.isna(value):
            continue
        try:
            float(value)
        except (TypeError, ValueError):
            raise ArtefactReadError(f"{path.name}: column {column.name} holds {str(value)!r}, not a number") from None
