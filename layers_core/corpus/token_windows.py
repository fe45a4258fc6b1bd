"""Cut documents into fixed-length token windows, mixing sources by share, never padding.

Rules (each a guard against a bug of the SAE prototype, whose padded positions poisoned training):

- Each document is tokenized once, without special tokens, and cut into consecutive
  non-overlapping chunks; the tail shorter than a chunk is dropped, never padded.
  Windows never cross a document boundary.
- BOS: a window starts with the BOS token exactly when the tokenizer itself puts BOS in
  front of text (``bos_token_id in tokenizer("")["input_ids"]``, the rule
  ``prompts.prompt_battery`` uses), so each window looks like the start of a text as the
  model sees one. Gemma gets ``<bos>``; SmolLM2, whose ``bos_token`` (``<|im_start|>``) is a
  chat marker its tokenizer never adds, gets none. Callers that fit on residuals may want
  to skip position 0 when it is BOS (its residual is an outlier in many models).
- A chunk that holds the pad id (text that spells the pad token) is dropped.
- Sources are mixed by share: the number of windows is ``max_tokens // window``, shared out
  by largest remainder; a source that runs out gives its remainder to the others, by share.
  Within a source, documents are taken in an order fixed by a hash of their ids (so a
  small budget samples the whole source, not its first book), and only as many are
  tokenized as are needed. The rows are finally ordered by a hash of (id, offset), which
  interleaves sources. Same input, same tensor.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layers_core.corpus.documents import CorpusError, Document

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

ORDER_SALT = "tinycave-windows-v1"


@dataclass(frozen=True)
class TokenWindows:
    """Token windows and where each row came from.

    Attributes:
        tokens: [N, window] long tensor, no padding.
        sources: The source of each row.
        doc_ids: The document of each row.
        offsets: Token offset of each row's first text token within its document.
        bos_prepended: Whether column 0 of every row is the BOS token.
    """

    tokens: torch.Tensor
    sources: tuple[str, ...]
    doc_ids: tuple[str, ...]
    offsets: tuple[int, ...]
    bos_prepended: bool

    def tokens_per_source(self) -> dict[str, int]:
        """Total tokens (BOS included) each source contributed."""
        width = int(self.tokens.shape[1])
        counts: dict[str, int] = {}
        for source in self.sources:
            counts[source] = counts.get(source, 0) + width
        return counts


def token_windows(
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Document],
    window: int,
    max_tokens: int,
    per_source_share: Mapping[str, float] | None = None,
) -> torch.Tensor:
    """[N, window] long tensor of windows, N = at most ``max_tokens // window`` (see the module doc).

    Raises:
        CorpusError: No documents, a window or budget too small, a bad share, or no
            document long enough for one window.
    """
    return build_windows(tokenizer, documents, window, max_tokens, per_source_share).tokens


def build_windows(
    tokenizer: PreTrainedTokenizerBase,
    documents: Sequence[Document],
    window: int,
    max_tokens: int,
    per_source_share: Mapping[str, float] | None = None,
) -> TokenWindows:
    """``token_windows`` with each row's source, document and offset (for provenance and per-source metrics)."""
    import torch

    if not documents:
        raise CorpusError("no documents to cut into token windows; pass a non-empty corpus")
    bos_id = tokenizer.bos_token_id if adds_bos(tokenizer) else None
    chunk = window - (1 if bos_id is not None else 0)
    if chunk < 1:
        raise CorpusError(f"window {window} leaves no room for text; use a window of at least 2 tokens")
    total = max_tokens // window
    if total < 1:
        raise CorpusError(f"max_tokens {max_tokens} is less than one window of {window} tokens; raise it")
    shares = _shares(documents, per_source_share)
    streams = {source: _WindowStream(tokenizer, documents, source, chunk) for source in shares}
    picked = _draw(streams, shares, total)
    rows = sorted(picked, key=lambda row: _order_key(row[1], row[2]))
    if not rows:
        longest = max(stream.longest for stream in streams.values())
        raise CorpusError(
            f"window {window} is longer than any document (the longest has {longest} tokens); use a smaller window"
        )
    prefix = [] if bos_id is None else [bos_id]
    tokens = torch.tensor([prefix + ids for _, _, _, ids in rows], dtype=torch.long)
    return TokenWindows(
        tokens=tokens,
        sources=tuple(row[0] for row in rows),
        doc_ids=tuple(row[1] for row in rows),
        offsets=tuple(row[2] for row in rows),
        bos_prepended=bos_id is not None,
    )


def adds_bos(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer puts its BOS token in front of text by itself."""
    bos_id = getattr(tokenizer, "bos_token_id", None)
    return bos_id is not None and bos_id in tokenizer("")["input_ids"]


def allocate_windows(total: int, shares: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` windows by ``shares`` (largest remainder; ties to the earlier key); sums to ``total``."""
    weight = sum(shares.values())
    exact = {source: total * share / weight for source, share in shares.items()}
    counts = {source: int(value) for source, value in exact.items()}
    order = sorted(exact, key=lambda source: -(exact[source] - counts[source]))  # stable: ties keep key order
    for source in order[: total - sum(counts.values())]:
        counts[source] += 1
    return counts


Row = tuple[str, str, int, list[int]]  # source, doc_id, offset, chunk ids


class _WindowStream:
    """One source's windows, documents in hash order, each tokenized when first needed."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, documents: Sequence[Document], source: str, chunk: int):
        own = [doc for doc in documents if doc.source == source]
        self._documents = sorted(own, key=lambda doc: _order_key(doc.doc_id, -1))
        self._tokenizer = tokenizer
        self._chunk = chunk
        self._pad_id = getattr(tokenizer, "pad_token_id", None)
        self._rows = self._generate()
        self.exhausted = False
        self.longest = 0

    def take(self, count: int) -> list[Row]:
        """Up to ``count`` more windows; sets ``exhausted`` when the source has no more."""
        rows: list[Row] = []
        while len(rows) < count:
            row = next(self._rows, None)
            if row is None:
                self.exhausted = True
                break
            rows.append(row)
        return rows

    def _generate(self) -> Iterator[Row]:
        for doc in self._documents:
            ids = list(self._tokenizer(doc.text, add_special_tokens=False, verbose=False)["input_ids"])
            self.longest = max(self.longest, len(ids))
            for start in range(0, len(ids) - self._chunk + 1, self._chunk):
                piece = ids[start : start + self._chunk]
                if self._pad_id is None or self._pad_id not in piece:
                    yield doc.source, doc.doc_id, start, piece


def _draw(streams: Mapping[str, _WindowStream], shares: Mapping[str, float], total: int) -> list[Row]:
    """Take windows by share; hand what an exhausted source could not give to the others, until done."""
    picked: list[Row] = []
    while len(picked) < total:
        active = {source: share for source, share in shares.items() if not streams[source].exhausted}
        if not active:
            break
        for source, count in allocate_windows(total - len(picked), active).items():
            picked.extend(streams[source].take(count))
    return picked


def _shares(documents: Sequence[Document], per_source_share: Mapping[str, float] | None) -> dict[str, float]:
    """Positive shares of the sources to use, in order of first appearance."""
    present = list(dict.fromkeys(doc.source for doc in documents))
    if per_source_share is None:
        return {source: 1.0 for source in present}
    unknown = sorted(set(per_source_share) - set(present))
    if unknown:
        raise CorpusError(f"per_source_share names sources not in the documents: {unknown}; present: {present}")
    if any(not share >= 0.0 for share in per_source_share.values()):  # also rejects NaN
        raise CorpusError(f"per_source_share values must be >= 0, got {dict(per_source_share)}")
    shares = {source: float(per_source_share[source]) for source in present if per_source_share.get(source, 0.0) > 0}
    if not shares:
        raise CorpusError("per_source_share gives every source a share of 0; give at least one a positive share")
    return shares


def _order_key(doc_id: str, offset: int) -> bytes:
    return hashlib.sha256(f"{ORDER_SALT}:{doc_id}:{offset}".encode()).digest()
