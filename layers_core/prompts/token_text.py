"""Readable text for token ids, decoded once per id."""

from __future__ import annotations

from transformers import PreTrainedTokenizerBase

from layers_core.runs.artefacts import token_display


class TokenText:
    """Decodes single token ids to display text (control characters escaped), with a cache.

    Decoding one id at a time shows what the token adds, leading space included
    (" Berlin"), which is what a reader of the lens tables needs.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self._tokenizer = tokenizer
        self._cache: dict[int, str] = {}

    def __call__(self, token_id: int) -> str:
        """Display text of one token id."""
        text = self._cache.get(token_id)
        if text is None:
            raw = str(self._tokenizer.decode([int(token_id)], clean_up_tokenization_spaces=False))
            text = self._cache[token_id] = token_display(raw)
        return text

    def many(self, token_ids: list[int]) -> list[str]:
        """Display texts of several ids."""
        return [self(token_id) for token_id in token_ids]
