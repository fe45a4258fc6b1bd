"""The bundled corpus: every offline source, in a fixed order, as one Corpus.

See data/corpus/DATASHEET.md for what each source holds, its licence and size, and what
kinds of text the corpus lacks.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from layers_core.corpus.bible_sources import kougo_bible_documents, web_bible_documents
from layers_core.corpus.documents import Corpus, Document, make_corpus
from layers_core.corpus.joke_source import pyjokes_documents
from layers_core.corpus.python_sources import pydoc_topic_documents, stdlib_code_documents

BUNDLED_NAME = "bundled"

# source name -> reader, in the corpus's order. Each reader is deterministic.
BUNDLED_SOURCES: dict[str, Callable[[], list[Document]]] = {
    "web-bible": web_bible_documents,
    "kougo-bible": kougo_bible_documents,
    "pydoc-topics": pydoc_topic_documents,
    "stdlib-code": stdlib_code_documents,
    "pyjokes": pyjokes_documents,
}


def build_bundled_corpus() -> Corpus:
    """Read every bundled source afresh (about a second) and return them as one corpus.

    Raises:
        CorpusError: A source's package or file is missing.
    """
    documents = [doc for read in BUNDLED_SOURCES.values() for doc in read()]
    return make_corpus(BUNDLED_NAME, documents)


@functools.cache
def bundled_corpus() -> Corpus:
    """The bundled corpus (read once per process; the Corpus is immutable)."""
    return build_bundled_corpus()
