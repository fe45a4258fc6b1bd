"""005's two hand-written datasets (data/DATASHEET.md): matched pairs (topic x form) and cloze items.

- ``matched_pairs.jsonl``: ``id``, ``topic``, ``form``, ``pair``, ``text``. A group is one
  (topic, form); texts sharing ``pair`` say the same thing in the topic's forms.
- ``cloze_items.jsonl``: ``id``, ``domain`` (``math`` or ``nonmath``), ``prompt``, ``answer``
  and an optional ``kind``. The answer carries its leading space; a prompt ending in
  whitespace is refused (the model would be asked to continue after a space it never writes).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from layers_core.data.jsonl_records import read_records
from layers_core.errors import TinycaveError

DATA = Path(__file__).resolve().parents[1] / "data"
DEFAULT_PAIRS = DATA / "matched_pairs.jsonl"
DEFAULT_CLOZE = DATA / "cloze_items.jsonl"
DOMAINS = ("math", "nonmath")
MIN_GROUP_TEXTS = 4


class DatasetError(TinycaveError):
    """A dataset file that cannot be used, with the reason."""


@dataclass(frozen=True)
class PairText:
    """One text of the matched-pairs dataset."""

    text_id: str
    topic: str
    form: str
    pair: str
    text: str

    @property
    def group(self) -> str:
        """``topic/form``."""
        return f"{self.topic}/{self.form}"


@dataclass(frozen=True)
class ClozeItem:
    """One cloze item: the model continues ``prompt`` and is scored on ``answer``."""

    item_id: str
    domain: str
    kind: str
    prompt: str
    answer: str


def load_pairs(path: Path = DEFAULT_PAIRS) -> list[PairText]:
    """The matched-pairs texts in file order.

    Raises:
        DatasetError: A bad file or line, fewer than two topics, a topic with one form, or a
            group with fewer than ``MIN_GROUP_TEXTS`` texts.
    """
    texts = [PairText(r["id"], r["topic"], r["form"], r["pair"], r["text"])
             for r in read_records(path, ("id", "topic", "form", "pair", "text"), DatasetError, "the matched pairs")]
    topics = list(dict.fromkeys(t.topic for t in texts))
    if len(topics) < 2:
        raise DatasetError(f"{path.name}: needs at least two topics, found {len(topics)}")
    for topic in topics:
        forms = {t.form for t in texts if t.topic == topic}
        if len(forms) < 2:
            raise DatasetError(f"{path.name}: topic {topic!r} has one form; each topic needs two or more")
    small = [f"{g} ({n})" for g in dict.fromkeys(t.group for t in texts)
             if (n := sum(t.group == g for t in texts)) < MIN_GROUP_TEXTS]
    if small:
        raise DatasetError(f"{path.name}: each topic/form needs at least {MIN_GROUP_TEXTS} texts; too few in "
                           f"{', '.join(small)}")
    return texts


def load_cloze(path: Path = DEFAULT_CLOZE) -> list[ClozeItem]:
    """The cloze items in file order.

    Raises:
        DatasetError: A bad file or line, an unknown domain, a prompt ending in whitespace,
            or a domain with fewer than ``MIN_GROUP_TEXTS`` items.
    """
    items = []
    for r in read_records(path, ("id", "domain", "prompt", "answer"), DatasetError, "the cloze items"):
        if r["domain"] not in DOMAINS:
            raise DatasetError(f"{path.name}: item {r['id']!r} has domain {r['domain']!r}; use "
                               f"{' or '.join(DOMAINS)}")
        if r["prompt"] != r["prompt"].rstrip():
            raise DatasetError(f"{path.name}: item {r['id']!r}'s prompt ends in whitespace; put the space at the "
                               "start of the answer")
        items.append(ClozeItem(r["id"], r["domain"], str(r.get("kind") or ""), r["prompt"], r["answer"]))
    for domain in DOMAINS:
        if sum(i.domain == domain for i in items) < MIN_GROUP_TEXTS:
            raise DatasetError(f"{path.name}: needs at least {MIN_GROUP_TEXTS} {domain} items")
    return items


def groups(texts: Sequence[PairText]) -> list[str]:
    """The ``topic/form`` groups in order of first appearance."""
    return list(dict.fromkeys(t.group for t in texts))
