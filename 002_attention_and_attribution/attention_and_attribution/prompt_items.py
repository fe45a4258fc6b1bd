"""Each prompt as one model reads it: token ids, token roles, answer token and foil.

A prompt whose answer cannot be scored (no answer, or one the tokenizer merges
with the prompt) is kept with ``used = False`` and the reason: it is listed in
the JSON but not measured, since direct attribution needs an answer token. When
no prompt at all can be measured the model fails with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from attention_and_attribution.foils import Foil, battery_candidates, given_foil, paired_foil
from attention_and_attribution.token_roles import Role, token_roles
from layers_core.errors import PromptError
from layers_core.prompts.answer_alignment import AnswerAlignment, align_answer, check_prompt
from layers_core.prompts.prompt_battery import PromptCase

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


@dataclass(frozen=True)
class PromptItem:
    """One prompt or fact, prepared for one model.

    Attributes:
        case: The prompt case.
        ids: Its token ids as the model reads them.
        roles: The role of every position (``token_roles``).
        alignment: The answer's first token, or why there is none.
        foil: The chosen foil, or None until the model's top wrong token is chosen (or when unused).
        is_fact: True for a fact of the battery, False for a prompt.
    """

    case: PromptCase
    ids: list[int]
    roles: list[Role]
    alignment: AnswerAlignment
    foil: Foil | None
    is_fact: bool

    @property
    def used(self) -> bool:
        """True when the prompt is measured (its answer is a token)."""
        return self.alignment.ok and self.alignment.answer_token_id is not None

    @property
    def answer_id(self) -> int:
        """The answer's first token (only for a used item)."""
        if self.alignment.answer_token_id is None:
            raise ValueError(f"prompt {self.case.prompt_id!r} has no answer token: {self.alignment.reason}")
        return self.alignment.answer_token_id


def prepare_items(
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[PromptCase],
    facts: Sequence[PromptCase],
    context_length: int | None,
    flag_foil: str | None,
) -> list[PromptItem]:
    """The prompts, then the battery's facts, each prepared for this tokenizer.

    Raises:
        PromptError: An empty or over-long prompt, a subject not among its tokens, a foil
            that cannot be scored, or no prompt with a scorable answer.
    """
    items = [_item(tokenizer, case, context_length, flag_foil, (), False) for case in prompts]
    candidates = battery_candidates(facts)
    items += [_item(tokenizer, case, context_length, None, candidates[i], True) for i, case in enumerate(facts)]
    if not any(item.used for item in items):
        reason = next(item.alignment.reason for item in items)
        raise PromptError(f"no prompt has an answer this model can score ({reason})")
    return items


def _item(
    tokenizer: PreTrainedTokenizerBase, case: PromptCase, context_length: int | None, flag_foil: str | None,
    candidates: Sequence[str], is_fact: bool,
) -> PromptItem:
    ids = check_prompt(tokenizer, case.prompt, context_length)
    roles = token_roles(tokenizer, case.prompt, ids, case.subject)
    alignment = align_answer(tokenizer, case.prompt, case.answer)
    foil = None
    if alignment.ok and alignment.answer_token_id is not None:
        answer_id = alignment.answer_token_id
        foil = given_foil(tokenizer, case, answer_id, flag_foil) or paired_foil(tokenizer, case, answer_id, candidates)
    return PromptItem(case, ids, roles, alignment, foil, is_fact)
