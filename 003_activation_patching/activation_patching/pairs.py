"""Clean and corrupted prompts for activation patching: pairs of equal token length.

A pair's two prompts are run side by side and their activations swapped position
for position, so both must tokenise (default special tokens included) to the same
length. The positions where they differ (the subject's) are ``corrupt_positions``.

Battery pairs: each fact, in battery order, is the clean prompt of at most one
pair. Its corrupt prompt is the first fact after it, cyclically (the rule 002 uses
for battery foils), that is eligible:

- both prompts have the same number of tokens;
- both subjects cover the same positions, and the ids differ there and nowhere else
  (at least one position differs);
- both answers align to a first token (``align_answer``) and those tokens differ.

A fact without a subject or an alignable answer, or with no eligible partner, gets
no pair; ``unpaired_facts`` lists them for causal tracing's noise (``noise_target``
plus ``noise.py``), whose corrupted run is the clean prompt with noise added at the
subject. A custom pair (``--clean``/``--corrupt``) is refused with a one-line
``PromptError`` when the lengths differ (naming both), when the tokens are the
same, or when the answers do not give two different first tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from attention_and_attribution.token_roles import subject_positions
from layers_core.errors import PromptError
from layers_core.prompts.answer_alignment import align_answer, check_prompt
from layers_core.prompts.prompt_battery import PromptCase

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Corruption = Literal["swap", "noise"]


@dataclass(frozen=True)
class PatchingPair:
    """A clean prompt and its corrupted counterpart, position for position.

    Attributes:
        pair_id: ``"<clean id>-vs-<corrupt id>"`` (swap) or ``"<id>-noised"`` (noise).
        clean_prompt: The text whose answer is restored.
        corrupt_prompt: The other text (the clean text again for noise).
        clean_ids: The clean prompt's token ids as the model sees them.
        corrupt_ids: The corrupt prompt's ids, as many as ``clean_ids``.
        answer_id: The clean answer's first token.
        corrupt_answer_id: The corrupt answer's first token (for noise: the one given).
        corrupt_positions: Where the corruption acts: the subject's positions (battery
            pairs and noise), the positions whose ids differ (custom pairs).
        corruption: "swap" (another prompt) or "noise" (causal tracing).
    """

    pair_id: str
    clean_prompt: str
    corrupt_prompt: str
    clean_ids: tuple[int, ...]
    corrupt_ids: tuple[int, ...]
    answer_id: int
    corrupt_answer_id: int
    corrupt_positions: tuple[int, ...]
    corruption: Corruption


@dataclass(frozen=True)
class _Fact:
    """A battery fact ready to pair: its ids, subject positions and answer token."""

    case: PromptCase
    ids: tuple[int, ...]
    subject_at: tuple[int, ...]
    answer_id: int


def battery_pairs(tokenizer: PreTrainedTokenizerBase, facts: Sequence[PromptCase]) -> list[PatchingPair]:
    """Each fact with the next eligible fact after it, cyclically (module docstring); in battery order.

    Raises:
        PromptError: A fact's subject is not among its prompt's tokens.
    """
    prepared = [_prepared(tokenizer, fact) for fact in facts]
    pairs = []
    for index, clean in enumerate(prepared):
        if clean is None:
            continue
        for step in range(1, len(prepared)):
            corrupt = prepared[(index + step) % len(prepared)]
            if corrupt is not None and _eligible(clean, corrupt):
                pairs.append(_swap_pair(clean, corrupt))
                break
    return pairs


def unpaired_facts(facts: Sequence[PromptCase], pairs: Sequence[PatchingPair]) -> list[PromptCase]:
    """The facts that are the clean prompt of none of ``pairs``, in battery order."""
    paired = {pair.clean_prompt for pair in pairs}
    return [fact for fact in facts if fact.prompt not in paired]


def custom_pair(
    tokenizer: PreTrainedTokenizerBase, clean: str, corrupt: str, answer: str, corrupt_answer: str,
    max_positions: int | None = None,
) -> PatchingPair:
    """The pair of ``--clean``/``--corrupt`` with ``--answer``/``--corrupt-answer``; id ``"custom"``.

    Raises:
        PromptError: An empty or over-long prompt, prompts of unequal token length,
            prompts with the same tokens, an answer that does not align, or answers
            with the same first token.
    """
    clean_ids = check_prompt(tokenizer, clean, max_positions)
    corrupt_ids = check_prompt(tokenizer, corrupt, max_positions)
    if len(clean_ids) != len(corrupt_ids):
        raise PromptError(
            f"the clean prompt is {len(clean_ids)} tokens and the corrupt prompt {len(corrupt_ids)}; "
            "patching swaps activations position for position, so give prompts of equal token length"
        )
    changed = tuple(p for p, (a, b) in enumerate(zip(clean_ids, corrupt_ids, strict=True)) if a != b)
    if not changed:
        raise PromptError("the clean and corrupt prompts have the same tokens; change the subject in the corrupt one")
    answer_id = _answer_id(tokenizer, clean, answer, "--answer")
    corrupt_answer_id = _answer_id(tokenizer, corrupt, corrupt_answer, "--corrupt-answer")
    _check_distinct(tokenizer, answer_id, corrupt_answer_id, "--answer and --corrupt-answer")
    return PatchingPair(
        "custom", clean, corrupt, tuple(clean_ids), tuple(corrupt_ids), answer_id, corrupt_answer_id, changed, "swap"
    )


def noise_target(tokenizer: PreTrainedTokenizerBase, case: PromptCase, corrupt_answer_id: int) -> PatchingPair:
    """A prompt for causal tracing: noise at its subject (``noise.py``), scored against ``corrupt_answer_id``.

    The corrupt answer is the caller's choice (e.g. the noised run's top token).

    Raises:
        PromptError: The case has no subject or no answer, the answer does not align, or
            its first token is ``corrupt_answer_id``.
    """
    if case.subject is None or case.answer is None:
        raise PromptError(f"{case.prompt_id}: noise needs a subject and an answer; give both")
    ids = tuple(int(token_id) for token_id in tokenizer(case.prompt)["input_ids"])
    answer_id = _answer_id(tokenizer, case.prompt, case.answer, case.prompt_id)
    _check_distinct(tokenizer, answer_id, corrupt_answer_id, f"{case.prompt_id}: the answer and the corrupt answer")
    positions = tuple(subject_positions(tokenizer, case.prompt, ids, case.subject))
    return PatchingPair(
        f"{case.prompt_id}-noised", case.prompt, case.prompt, ids, ids, answer_id, corrupt_answer_id, positions, "noise"
    )


def _prepared(tokenizer: PreTrainedTokenizerBase, fact: PromptCase) -> _Fact | None:
    if fact.subject is None:
        return None
    alignment = align_answer(tokenizer, fact.prompt, fact.answer)
    if not alignment.ok or alignment.answer_token_id is None:
        return None
    ids = alignment.prompt_ids
    subject_at = tuple(subject_positions(tokenizer, fact.prompt, ids, fact.subject))
    return _Fact(fact, ids, subject_at, alignment.answer_token_id)


def _eligible(clean: _Fact, corrupt: _Fact) -> bool:
    if len(clean.ids) != len(corrupt.ids) or clean.subject_at != corrupt.subject_at:
        return False
    if clean.answer_id == corrupt.answer_id:
        return False
    changed = {p for p, (a, b) in enumerate(zip(clean.ids, corrupt.ids, strict=True)) if a != b}
    return bool(changed) and changed <= set(clean.subject_at)


def _swap_pair(clean: _Fact, corrupt: _Fact) -> PatchingPair:
    return PatchingPair(
        f"{clean.case.prompt_id}-vs-{corrupt.case.prompt_id}", clean.case.prompt, corrupt.case.prompt,
        clean.ids, corrupt.ids, clean.answer_id, corrupt.answer_id, clean.subject_at, "swap",
    )


def _answer_id(tokenizer: PreTrainedTokenizerBase, prompt: str, answer: str, what: str) -> int:
    alignment = align_answer(tokenizer, prompt, answer)
    if not alignment.ok or alignment.answer_token_id is None:
        raise PromptError(f"{what} {answer!r}: {alignment.reason}")
    return alignment.answer_token_id


def _check_distinct(tokenizer: PreTrainedTokenizerBase, answer_id: int, corrupt_answer_id: int, what: str) -> None:
    if answer_id == corrupt_answer_id:
        token = str(tokenizer.decode([answer_id], clean_up_tokenization_spaces=False))
        raise PromptError(
            f"{what} both start with the token {token!r}; the logit difference needs two different tokens"
        )
