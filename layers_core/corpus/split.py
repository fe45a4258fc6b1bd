"""A deterministic train / held-out split of documents, decided per document by a hash of its id."""

from __future__ import annotations

import hashlib

from layers_core.corpus.bundled_sources import BUNDLED_NAME
from layers_core.corpus.documents import Corpus, CorpusError, Document

SPLIT_SALT = "tinycave-split-v1"


def heldout_score(doc_id: str) -> float:
    """A number in [0, 1) fixed by the id alone: the document is held out when it is below the fraction."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{doc_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_documents(corpus: Corpus, heldout_fraction: float = 0.1) -> tuple[list[Document], list[Document]]:
    """(train, held-out) documents, each in corpus order.

    Each document's side depends only on its id and the fraction, so held-out text never
    enters training, the split is the same on every run, adding a document moves no other,
    and raising the fraction only moves documents from train to held-out. About
    ``heldout_fraction`` of the documents are held out (exactly so only on average: a small
    corpus may hold out none).

    Raises:
        CorpusError: ``heldout_fraction`` is not in [0, 1).
    """
    if not 0.0 <= heldout_fraction < 1.0:
        raise CorpusError(f"heldout_fraction must be in [0, 1), got {heldout_fraction}")
    train: list[Document] = []
    heldout: list[Document] = []
    for doc in corpus.documents:
        (heldout if heldout_score(doc.doc_id) < heldout_fraction else train).append(doc)
    return train, heldout


# How fits on the bundled corpus mix its sources (lens fits, trained SAEs): English prose and
# technical text first; code; a little Japanese and multilingual jokes. Without shares the
# Japanese Bible (2.6 M of the corpus's 4.1 M SmolLM2 tokens) would dominate.
SOURCE_SHARES: dict[str, float] = {
    "web-bible": 0.35, "pydoc-topics": 0.2, "stdlib-code": 0.25, "kougo-bible": 0.1, "pyjokes": 0.1}


def source_shares(corpus: Corpus) -> dict[str, float] | None:
    """``SOURCE_SHARES`` for the bundled corpus; None (documents as they come) for a user's own corpus."""
    return SOURCE_SHARES if corpus.name == BUNDLED_NAME else None
