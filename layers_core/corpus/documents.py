"""The corpus data model: documents, a named corpus of them, and its fingerprint."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from layers_core.errors import TinycaveError

# Bump when the fingerprint's encoding or a bundled source's text extraction changes,
# so caches keyed by the fingerprint (fitted lenses, SAE activations) are rebuilt.
FORMAT_VERSION = "tinycave-corpus-v1"


class CorpusError(TinycaveError):
    """A corpus that cannot be read or used: missing file, bad line, empty corpus, too-short documents."""


@dataclass(frozen=True)
class Document:
    """One document: the unit that is tokenized, windowed and assigned to train or held-out.

    Attributes:
        source: Where it comes from ("web-bible", "kougo-bible", "pydoc-topics",
            "stdlib-code", "pyjokes", or "file" for a user's file); sources are mixed by share.
        kind: What kind of text it is ("english-scripture", "python-code", ...).
        doc_id: Stable id, unique within a corpus (e.g. "web-bible/Genesis/1").
        text: The text itself, never empty.
    """

    source: str
    kind: str
    doc_id: str
    text: str


@dataclass(frozen=True)
class Corpus:
    """A named, ordered collection of documents with unique ids."""

    name: str
    documents: tuple[Document, ...]

    def fingerprint(self) -> str:
        """sha256 hex over the format version and every document's source, kind, id and text, in order.

        Each field is length-prefixed, so no two different corpora encode to the same bytes.
        The corpus name is left out: the same documents loaded under another name share a cache.
        """
        digest = hashlib.sha256(FORMAT_VERSION.encode())
        for doc in self.documents:
            for field in (doc.source, doc.kind, doc.doc_id, doc.text):
                data = field.encode("utf-8")
                digest.update(len(data).to_bytes(8, "little"))
                digest.update(data)
        return digest.hexdigest()

    def sources(self) -> tuple[str, ...]:
        """The distinct sources, in order of first appearance."""
        return tuple(dict.fromkeys(doc.source for doc in self.documents))


def make_corpus(name: str, documents: list[Document] | tuple[Document, ...]) -> Corpus:
    """A Corpus after checking it is non-empty, every text is non-empty and every id is unique.

    Raises:
        CorpusError: No documents, an empty text, or a repeated id.
    """
    if not documents:
        raise CorpusError(f"corpus {name!r} holds no documents; give it at least one non-empty text")
    seen: set[str] = set()
    for doc in documents:
        if not doc.text.strip():
            raise CorpusError(f"corpus {name!r}: document {doc.doc_id!r} is empty; drop it or give it text")
        if doc.doc_id in seen:
            raise CorpusError(f"corpus {name!r}: document id {doc.doc_id!r} appears twice; ids must be unique")
        seen.add(doc.doc_id)
    return Corpus(name=name, documents=tuple(documents))
