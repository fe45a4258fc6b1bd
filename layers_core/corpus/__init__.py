"""Text to fit and evaluate on, offline: the bundled corpus, user files, splits, token windows.

- ``documents``: ``Document``, ``Corpus`` (with its ``fingerprint()`` cache key), ``CorpusError``.
- ``bundled_sources``: ``bundled_corpus()`` from the installed packages' text (see
  data/corpus/DATASHEET.md); the readers live in ``bible_sources``, ``python_sources``, ``joke_source``.
- ``corpus_files``: ``load_corpus(spec)`` for "bundled", .txt and .jsonl files.
- ``split``: ``split_documents``, a train / held-out split by a hash of each document's id;
  ``SOURCE_SHARES``, how fits on the bundled corpus mix its sources (``source_shares``: for a corpus).
- ``token_windows``: ``token_windows`` / ``build_windows``, [N, window] token tensors with no padding.

Importing this package loads no torch or transformers.
"""

from layers_core.corpus.bundled_sources import bundled_corpus
from layers_core.corpus.corpus_files import load_corpus
from layers_core.corpus.documents import Corpus, CorpusError, Document
from layers_core.corpus.split import SOURCE_SHARES, source_shares, split_documents
from layers_core.corpus.token_windows import TokenWindows, build_windows, token_windows

__all__ = [
    "SOURCE_SHARES",
    "Corpus",
    "CorpusError",
    "Document",
    "TokenWindows",
    "build_windows",
    "bundled_corpus",
    "load_corpus",
    "source_shares",
    "split_documents",
    "token_windows",
]
