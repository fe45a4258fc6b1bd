"""The category dataset (data/category_texts.jsonl, see data/DATASHEET.md), split into a find half and a test half.

Each category's texts, in file order, alternate between the halves: the 1st, 3rd, ...
text is in ``find`` (specialists are chosen there), the 2nd, 4th, ... in ``test`` (they
are scored there). The split depends only on the file.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.data.jsonl_records import read_records
from layers_core.errors import TinycaveError

DEFAULT_TEXTS = Path(__file__).resolve().parents[1] / "data" / "category_texts.jsonl"
FIND, TEST = "find", "test"


class CategoryDataError(TinycaveError):
    """A category file that cannot be used: missing, a bad line, too few texts in a category."""


@dataclass(frozen=True)
class CategoryText:
    """One labelled text and the half it belongs to."""

    text_id: str
    category: str
    text: str
    half: str


def load_category_texts(path: Path = DEFAULT_TEXTS, min_per_category: int = 4) -> list[CategoryText]:
    """The texts of ``path`` (JSON lines with ``id``, ``category`` and ``text``), in file order, with their halves.

    Raises:
        CategoryDataError: A missing file, a line that is not such an object, an empty text,
            a repeated id, fewer than two categories or fewer than ``min_per_category`` texts in one.
    """
    texts: list[CategoryText] = []
    counts: dict[str, int] = {}
    for entry in read_records(path, ("id", "category", "text"), CategoryDataError, "the category texts"):
        index = counts.get(entry["category"], 0)
        counts[entry["category"]] = index + 1
        texts.append(CategoryText(entry["id"], entry["category"], entry["text"], FIND if index % 2 == 0 else TEST))
    if len(counts) < 2:
        raise CategoryDataError(f"{path.name}: needs at least two categories, found {len(counts)}")
    small = [f"{name} ({count})" for name, count in counts.items() if count < min_per_category]
    if small:
        raise CategoryDataError(f"{path.name}: each category needs at least {min_per_category} texts (two per "
                                f"half); too few in {', '.join(small)}")
    return texts


def categories(texts: Sequence[CategoryText]) -> list[str]:
    """The categories in order of first appearance."""
    return list(dict.fromkeys(text.category for text in texts))
