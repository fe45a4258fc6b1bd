"""Token roles: what each position of a prompt is, so attention can be grouped by what it reads.

Every position of the prompt as the model sees it (BOS included when the tokenizer
adds one) gets exactly one role, the first of these that applies:

1. ``first``: position 0, whatever token sits there (BOS, a template marker or the
   prompt's first word): models park spare attention on it (the attention sink).
2. ``self``: the last position, the answer position itself.
3. ``subject``: a token whose characters overlap an occurrence of the subject in the
   prompt text (every occurrence, matched case-sensitively), read from the fast
   tokenizer's ``offset_mapping``. Without offsets (a slow tokenizer, or ids that
   are not the tokenizer's own encoding of ``prompt``) the subject's token ids are
   looked for in the prompt's ids, tokenized alone and after a space.
4. ``punct``: a special or template token (BOS or EOS away from position 0,
   ``<|im_start|>``, ``<start_of_turn>``: the tokenizer's special ids and its added
   tokens marked special), or a token whose text has no letter or digit
   (",", "?", a newline, a bare space).
5. ``relation``: any other token with a letter: "The", " capital", " of", " is" in
   "The capital of Germany is" (a chat template's "user" as well).
6. ``other``: what is left, tokens of digits ("2024").

A subject token at position 0 or at the last position keeps the role ``first`` or
``self``; the subject still has to be found. A subject given but found nowhere in
the prompt's tokens is a one-line ``PromptError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from layers_core.errors import PromptError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Role = Literal["subject", "relation", "first", "self", "punct", "other"]
# The order of the heads CSV's attn_* columns.
ROLES: tuple[Role, ...] = ("subject", "relation", "first", "self", "punct", "other")

_Span = tuple[int, int]


def token_roles(
    tokenizer: PreTrainedTokenizerBase, prompt: str, input_ids: Sequence[int], subject: str | None = None
) -> list[Role]:
    """The role of every position of a prompt (see the module docstring for the rule).

    Args:
        tokenizer: The model's tokenizer.
        prompt: The prompt text, exactly as tokenized.
        input_ids: Its token ids as the model sees them (special tokens included).
        subject: The prompt's subject as written in it (e.g. "Germany"), or None.

    Returns:
        One role per position.

    Raises:
        PromptError: ``subject`` is empty or not found in the prompt's tokens.
        ValueError: ``input_ids`` is empty.
    """
    ids = [int(token_id) for token_id in input_ids]
    if not ids:
        raise ValueError("a prompt with no tokens has no roles")
    offsets = _offsets(tokenizer, prompt, ids)
    subject_at = set() if subject is None else _subject_positions(tokenizer, prompt, ids, subject, offsets)
    special = special_ids(tokenizer)
    last = len(ids) - 1
    roles: list[Role] = []
    for position, token_id in enumerate(ids):
        if position == 0:
            roles.append("first")
        elif position == last:
            roles.append("self")
        elif position in subject_at:
            roles.append("subject")
        elif token_id in special:
            roles.append("punct")
        else:
            roles.append(_text_role(_token_text(tokenizer, prompt, token_id, offsets, position)))
    return roles


def subject_positions(
    tokenizer: PreTrainedTokenizerBase, prompt: str, input_ids: Sequence[int], subject: str
) -> list[int]:
    """Every position whose token overlaps the subject (rule 3 above), position 0 and the last included.

    Raises:
        PromptError: ``subject`` is empty or not found in the prompt's tokens.
    """
    ids = [int(token_id) for token_id in input_ids]
    return sorted(_subject_positions(tokenizer, prompt, ids, subject, _offsets(tokenizer, prompt, ids)))


def special_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    """Ids of the tokenizer's special tokens (BOS, EOS, PAD, ...) and of its added tokens marked special."""
    found = {int(token_id) for token_id in tokenizer.all_special_ids if token_id is not None}
    try:
        added = tokenizer.added_tokens_decoder
    except NotImplementedError:  # a tokenizer class that keeps no table of added tokens
        added = {}
    found.update(int(token_id) for token_id, token in added.items() if getattr(token, "special", False))
    return found


def _offsets(tokenizer: PreTrainedTokenizerBase, prompt: str, ids: list[int]) -> list[_Span] | None:
    """Character span of every token, or None when the tokenizer cannot say for exactly these ids."""
    if not getattr(tokenizer, "is_fast", False):
        return None
    try:
        encoding = tokenizer(prompt, return_offsets_mapping=True)
    except (NotImplementedError, ValueError):  # backends without offsets refuse the flag
        return None
    offsets = encoding.get("offset_mapping")
    if offsets is None or [int(token_id) for token_id in encoding["input_ids"]] != ids:
        return None
    return [(int(start), int(end)) for start, end in offsets]


def _subject_positions(
    tokenizer: PreTrainedTokenizerBase, prompt: str, ids: list[int], subject: str, offsets: list[_Span] | None
) -> set[int]:
    if not subject.strip():
        raise PromptError("the subject is empty; give it as written in the prompt, e.g. --subject Germany")
    if offsets is not None:
        spans = _occurrences(prompt, subject)
        found = {
            position
            for position, (start, end) in enumerate(offsets)
            if end > start and any(start < span_end and end > span_start for span_start, span_end in spans)
        }
    else:
        found = _id_matches(tokenizer, ids, subject)
    if not found:
        raise PromptError(
            f"the subject {subject!r} is not among the tokens of the prompt {_shortened(prompt)!r}; "
            "give it exactly as written in the prompt"
        )
    return found


def _occurrences(text: str, part: str) -> list[_Span]:
    spans = []
    start = text.find(part)
    while start >= 0:
        spans.append((start, start + len(part)))
        start = text.find(part, start + len(part))
    return spans


def _id_matches(tokenizer: PreTrainedTokenizerBase, ids: list[int], subject: str) -> set[int]:
    """Positions covered by the subject's own token ids, tokenized alone or after a space.

    A bare-space token that the space adds in front is not the subject's (as with offsets).
    """
    found: set[int] = set()
    for text in (subject, " " + subject):
        pattern = [int(token_id) for token_id in tokenizer.encode(text, add_special_tokens=False)]
        width = len(pattern)
        lead = 0
        while lead < width and not str(tokenizer.decode([pattern[lead]])).strip():
            lead += 1
        for start in range(len(ids) - width + 1 if width else 0):
            if ids[start:start + width] == pattern:
                found.update(range(start + lead, start + width))
    return found


def _token_text(
    tokenizer: PreTrainedTokenizerBase, prompt: str, token_id: int, offsets: list[_Span] | None, position: int
) -> str:
    # The prompt's own characters when known: a token holding part of a multi-byte
    # character decodes alone to U+FFFD, but its span still covers the character.
    if offsets is not None:
        start, end = offsets[position]
        if end > start:
            return prompt[start:end]
    return str(tokenizer.decode([token_id], clean_up_tokenization_spaces=False))


def _text_role(text: str) -> Role:
    if any(char.isalpha() for char in text):
        return "relation"
    if any(char.isalnum() for char in text):
        return "other"
    return "punct"


def _shortened(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."
