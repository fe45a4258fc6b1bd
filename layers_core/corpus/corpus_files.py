"""``load_corpus``: a corpus spec (None, "bundled", a .txt or a .jsonl file, a hub dataset id) to a Corpus.

A spec that is no existing file and reads ``owner/name`` (or ``owner/name:config``) is a
Hugging Face dataset, read online by ``hub_datasets``.

File formats:

- ``.txt`` (UTF-8): documents are separated by one or more blank lines (a paragraph is a
  document); lines inside a document keep their newlines. Each document's id is
  ``<file name>/<first 12 hex of the sha256 of its text>``, so adding or moving a paragraph
  never changes another's id (nor its train/held-out side); an exact repeat of an earlier
  paragraph is kept once. Source "file", kind "text".
- ``.jsonl`` (UTF-8): one JSON object a line, ``{"text": "..."}`` with optional ``"id"``,
  ``"kind"`` and ``"source"`` strings (defaults: content id as above, "text", "file");
  blank lines are skipped, an id-less exact repeat is kept once. Any broken line is an error naming its line number.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from layers_core.corpus.bundled_sources import BUNDLED_NAME, bundled_corpus
from layers_core.corpus.documents import Corpus, CorpusError, Document, make_corpus
from layers_core.corpus.hub_datasets import hub_corpus

ACCEPTED = "'bundled', a .txt file (documents separated by blank lines) or a .jsonl file ({\"text\": ...} a line)"
_BLANK_LINES = re.compile(r"\n[ \t\r\f\v]*\n\s*")
# "owner/name": what a Hugging Face dataset id looks like.
_HUB_DATASET = re.compile(r"^[\w.-]+/[\w.-]+(:[\w.-]+)?$")


def load_corpus(spec: str | None) -> Corpus:
    """The corpus a spec names: None or "bundled" is the bundled corpus, else a .txt or .jsonl path.

    Raises:
        CorpusError: A missing or unreadable file, an unknown format, a broken JSONL line,
            a Hugging Face dataset that cannot be read, or a file with no documents.
    """
    if spec is None or spec == BUNDLED_NAME:
        return bundled_corpus()
    path = Path(spec).expanduser()
    if not path.exists():
        if _HUB_DATASET.match(spec) and path.suffix not in (".txt", ".jsonl"):
            return hub_corpus(spec)
        raise CorpusError(f"corpus file {spec} not found; pass {ACCEPTED}")
    if path.is_dir():
        raise CorpusError(f"{spec} is a folder; pass {ACCEPTED}")
    if path.suffix == ".txt":
        documents = txt_documents(path)
    elif path.suffix == ".jsonl":
        documents = jsonl_documents(path)
    else:
        raise CorpusError(f"{spec} is not a corpus file this tool reads; pass {ACCEPTED}")
    if not documents:
        raise CorpusError(f"{spec} holds no text; pass a file with at least one non-empty document")
    return make_corpus(path.name, documents)


def content_id(file_name: str, text: str) -> str:
    """``<file name>/<first 12 hex digits of sha256(text)>``: an id that depends only on the text."""
    return f"{file_name}/{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def txt_documents(path: Path) -> list[Document]:
    """The blank-line-separated documents of a UTF-8 text file (exact repeats kept once)."""
    text = _read(path).replace("\r\n", "\n")
    paragraphs = [part.strip("\n") for part in _BLANK_LINES.split(text)]
    unique = dict.fromkeys(part for part in paragraphs if part.strip())
    return [Document("file", "text", content_id(path.name, part), part) for part in unique]


def jsonl_documents(path: Path) -> list[Document]:
    """One document per non-blank line of a JSONL file.

    Raises:
        CorpusError: A line that is not a JSON object with a non-empty string "text", an
            "id", "kind" or "source" that is not a string, or an "id" used twice.
    """
    documents = []
    line_of_id: dict[str, int] = {}
    for number, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise CorpusError(f"{where}: not valid JSON ({err.msg}); write one JSON object a line") from err
        if not isinstance(record, dict):
            raise CorpusError(f'{where}: expected a JSON object like {{"text": "..."}}')
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise CorpusError(f'{where}: "text" must be a non-empty string')
        for key in ("id", "kind", "source"):
            if key in record and not (isinstance(record[key], str) and record[key]):
                raise CorpusError(f'{where}: "{key}" must be a non-empty string')
        doc_id = record.get("id") or content_id(path.name, text)
        if "id" not in record and doc_id in line_of_id:
            continue  # an exact repeat of an earlier id-less text: kept once, as in .txt files
        if doc_id in line_of_id:
            raise CorpusError(
                f"{where}: id {doc_id!r} was already used on line {line_of_id[doc_id]}; ids must be unique"
            )
        line_of_id[doc_id] = number
        documents.append(Document(record.get("source", "file"), record.get("kind", "text"), doc_id, text))
    return documents


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from err
    except OSError as err:
        raise CorpusError(f"could not read {path}: {err.strerror}") from err
