"""Size of each source of a corpus, in documents, characters and tokens (for the datasheet)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from layers_core.corpus.documents import Corpus

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class SourceSize:
    """One source's size: ``tokens`` counts text tokens only (no special tokens)."""

    source: str
    kinds: tuple[str, ...]
    documents: int
    characters: int
    tokens: int


def source_sizes(corpus: Corpus, tokenizer: PreTrainedTokenizerBase) -> list[SourceSize]:
    """Per-source sizes, in the corpus's source order (tokenizes the whole corpus once)."""
    sizes = []
    for source in corpus.sources():
        docs = [doc for doc in corpus.documents if doc.source == source]
        ids = tokenizer([doc.text for doc in docs], add_special_tokens=False, verbose=False)["input_ids"]
        sizes.append(
            SourceSize(
                source=source,
                kinds=tuple(dict.fromkeys(doc.kind for doc in docs)),
                documents=len(docs),
                characters=sum(len(doc.text) for doc in docs),
                tokens=sum(len(row) for row in ids),
            )
        )
    return sizes
