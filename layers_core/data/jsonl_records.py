"""Labelled data files in JSON lines (one object a line), read with one-line errors that name the file and line.

Experiments keep their hand-written datasets (004's category texts, 005's matched pairs
and cloze items) in this form: every line an object whose required fields are non-empty
strings, with a unique ``id``. Blank lines are skipped; extra fields are kept.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from layers_core.errors import TinycaveError


def read_records(path: Path, fields: Sequence[str], error: type[TinycaveError], what: str) -> list[dict[str, Any]]:
    """The objects of ``path`` in file order, each holding every name in ``fields`` as a non-empty string.

    Args:
        path: The file.
        fields: Required string fields; ``id`` among them is checked for repeats.
        error: The error class to raise (the experiment's own).
        what: What the file holds, for the messages ("the category texts").

    Raises:
        error: A missing or unreadable file, a line that is not JSON or not such an object,
            an empty field, a repeated id.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        raise error(f"cannot read {what} {path}: {reason}") from err
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    wanted = ", ".join(fields)
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{Path(path).name} line {number}"
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as err:
            raise error(f"{where}: not JSON ({err.msg})") from err
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) for k in fields):
            raise error(f"{where}: expected an object with string {wanted}")
        empty = [k for k in fields if not entry[k].strip()]
        if empty:
            raise error(f"{where}: {empty[0]} is empty")
        if "id" in fields:
            if entry["id"] in seen:
                raise error(f"{where}: id {entry['id']!r} appears twice")
            seen.add(entry["id"])
        records.append(entry)
    return records
