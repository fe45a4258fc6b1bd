"""The foil of each prompt: the wrong answer its answer's logit is compared with.

In order of precedence:

1. ``--foil TEXT`` (every prompt), source ``"--foil"``;
2. the prompt's own ``foil`` (002's default prompts carry their control's answer;
   a ``--prompts`` file may give one), source ``"prompt"``;
3. for a fact battery, the answer of the next fact in the battery (its control
   fact, cyclically), or the one after when the model starts both answers with
   the same token (Washington and Wellington), source ``"battery pair"``;
4. otherwise the model's highest-ranked token other than the answer, chosen from
   the same forward pass, source ``"model's top wrong token"``.

A foil given for one prompt (1, 2) must tokenize cleanly after it and start with
another token than the answer, else a one-line ``PromptError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from layers_core.errors import PromptError
from layers_core.prompts.answer_alignment import align_answer
from layers_core.prompts.prompt_battery import PromptCase

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

FROM_FLAG = "--foil"
FROM_PROMPT = "prompt"
FROM_BATTERY = "battery pair"
FROM_MODEL = "model's top wrong token"


@dataclass(frozen=True)
class Foil:
    """A chosen foil: its text, first token and where it came from (one of the ``FROM_*``)."""

    text: str | None
    token_id: int
    source: str


def battery_candidates(facts: Sequence[PromptCase]) -> list[list[str]]:
    """Per fact, the answers of the facts after it (cyclically), other than its own, first come first."""
    answers = [fact.answer for fact in facts]
    found = []
    for index, fact in enumerate(facts):
        following = [answers[(index + step) % len(facts)] for step in range(1, len(facts))]
        unique = list(dict.fromkeys(a for a in following if a is not None and a != fact.answer))
        found.append(unique)
    return found


def given_foil(
    tokenizer: PreTrainedTokenizerBase, case: PromptCase, answer_id: int, flag_foil: str | None
) -> Foil | None:
    """The foil from ``--foil`` or the prompt's own field, or None when neither gives one.

    Raises:
        PromptError: The foil does not tokenize as the token after the prompt, or starts like the answer.
    """
    text, source = (flag_foil, FROM_FLAG) if flag_foil is not None else (case.foil, FROM_PROMPT)
    if text is None:
        return None
    alignment = align_answer(tokenizer, case.prompt, text)
    if not alignment.ok or alignment.answer_token_id is None:
        raise PromptError(f"prompt {case.prompt_id!r}: the foil {text!r} cannot be scored: {alignment.reason}")
    if alignment.answer_token_id == answer_id:
        raise PromptError(
            f"prompt {case.prompt_id!r}: the foil {text!r} starts with the same token as the answer "
            f"({alignment.answer_token!r}); choose a foil that starts differently"
        )
    return Foil(text, alignment.answer_token_id, source)


def paired_foil(
    tokenizer: PreTrainedTokenizerBase, case: PromptCase, answer_id: int, candidates: Sequence[str]
) -> Foil | None:
    """The first battery candidate that scores cleanly after the prompt with another token than the answer."""
    for text in candidates:
        alignment = align_answer(tokenizer, case.prompt, text)
        if alignment.ok and alignment.answer_token_id is not None and alignment.answer_token_id != answer_id:
            return Foil(text, alignment.answer_token_id, FROM_BATTERY)
    return None


def top_wrong_foil(ranked_ids: Sequence[int], answer_id: int) -> Foil:
    """The model's best-ranked token other than the answer (``ranked_ids``: its top-2 or more)."""
    token_id = next(int(token) for token in ranked_ids if int(token) != answer_id)
    return Foil(None, token_id, FROM_MODEL)
