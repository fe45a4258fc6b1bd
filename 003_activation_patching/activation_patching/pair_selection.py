"""The pairs one model patches: the custom pair, or the battery's pairs plus causal tracing for the rest.

- A custom pair (``--clean``/``--corrupt``): ``pairs.custom_pair``; a refusal (unequal
  token lengths, ...) is a one-line ``PromptError`` that fails this model.
- The battery: ``pairs.battery_pairs`` (swap pairs). Each fact left without a partner
  is corrupted with noise instead (``noise.py``): 3 x the standard deviation of the
  embeddings at the battery's subject tokens, seed 0, added at its subject. Its
  corrupt answer is the noised run's own top token other than the answer (ties by
  token id): the answer the corrupted model gives instead, so the logit difference
  measures how far patching moves the model back from that. A fact that cannot be
  noised (no subject, an answer that does not align) is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from activation_patching.arguments import CustomPairText
from activation_patching.noise import NOISE_POINT, NOISE_SCALE, NOISE_SEED, embedding_std, noise_patch, subject_noise
from activation_patching.pairs import PatchingPair, battery_pairs, custom_pair, noise_target, unpaired_facts
from activation_patching.sweeps import Side, cache_side
from attention_and_attribution.token_roles import subject_positions
from layers_core.errors import PromptError
from layers_core.hooks.activations import Patch
from layers_core.models.architecture import ModelParts
from layers_core.prompts.answer_alignment import align_answer
from layers_core.prompts.batching import pad_token_id
from layers_core.prompts.prompt_battery import PromptCase

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

Site = tuple[tuple[int, ...], tuple[int, ...]]  # a prompt's ids and its subject's positions
CORRUPT_ANSWER_RULE = {
    "custom": "--corrupt-answer",
    "swap": "the partner fact's answer",
    "noise": "the noised run's top token other than the answer (ties by token id)",
}


@dataclass(frozen=True)
class PreparedPair:
    """A pair ready to sweep: the corrupted side's writes (noise) and how its corrupt answer was chosen."""

    pair: PatchingPair
    corrupt_patches: tuple[Patch, ...] = ()
    corrupt_answer_rule: str = CORRUPT_ANSWER_RULE["swap"]


@dataclass(frozen=True)
class PairChoice:
    """The pairs of one model, the facts refused (``{"prompt_id", "reason"}``) and the noise used (or None)."""

    pairs: list[PreparedPair]
    refused: list[dict[str, str]]
    noise: dict[str, Any] | None


def custom_choice(tokenizer: PreTrainedTokenizerBase, text: CustomPairText, max_positions: int | None) -> PairChoice:
    """The custom pair alone.

    Raises:
        PromptError: The pair is refused (``pairs.custom_pair``).
    """
    pair = custom_pair(tokenizer, text.clean, text.corrupt, text.answer, text.corrupt_answer, max_positions)
    return PairChoice([PreparedPair(pair, (), CORRUPT_ANSWER_RULE["custom"])], [], None)


def battery_choice(
    model: nn.Module, parts: ModelParts, tokenizer: PreTrainedTokenizerBase, facts: Sequence[PromptCase]
) -> PairChoice:
    """The battery's swap pairs, then a noise pair for each fact without a partner (module docstring)."""
    swaps = battery_pairs(tokenizer, facts)
    chosen = [PreparedPair(pair) for pair in swaps]
    targets, refused = [], []
    for case in unpaired_facts(facts, swaps):
        try:
            targets.append((case, *_noise_site(tokenizer, case)))
        except PromptError as err:
            refused.append({"prompt_id": case.prompt_id, "reason": f"no partner of equal token length, and noise "
                            f"cannot be used: {err.message}"})
    if not targets:
        return PairChoice(chosen, refused, None)
    sites = _subject_sites(tokenizer, facts)
    std = embedding_std(model, parts, [ids for ids, _ in sites], [at for _, at in sites], pad_token_id(tokenizer))
    for case, ids, positions, answer_id in targets:
        patch = noise_patch(subject_noise(std, len(positions), parts.d_model), positions)
        rival = _top_other(model, parts, Side(ids, (patch,)), answer_id)
        chosen.append(PreparedPair(noise_target(tokenizer, case, rival), (patch,), CORRUPT_ANSWER_RULE["noise"]))
    noise = {"point": NOISE_POINT, "scale": NOISE_SCALE, "seed": NOISE_SEED, "embedding_std": std,
             "std_measured_over": f"the subject tokens of {len(sites)} battery facts, pooled"}
    return PairChoice(chosen, refused, noise)


def _noise_site(tokenizer: PreTrainedTokenizerBase, case: PromptCase) -> tuple[tuple[int, ...], tuple[int, ...], int]:
    """``(ids, subject positions, answer id)`` of a fact to noise; ``PromptError`` with the reason otherwise."""
    if case.subject is None:
        raise PromptError("the fact has no subject to noise")
    alignment = align_answer(tokenizer, case.prompt, case.answer)
    if not alignment.ok or alignment.answer_token_id is None:
        raise PromptError(f"its answer {case.answer!r} does not align: {alignment.reason}")
    ids = tuple(int(token_id) for token_id in alignment.prompt_ids)
    return ids, tuple(subject_positions(tokenizer, case.prompt, ids, case.subject)), alignment.answer_token_id


def _subject_sites(tokenizer: PreTrainedTokenizerBase, facts: Sequence[PromptCase]) -> list[Site]:
    """Every fact's ids and subject positions (facts whose subject cannot be found are left out)."""
    sites = []
    for case in facts:
        if case.subject is None:
            continue
        ids = tuple(int(token_id) for token_id in tokenizer(case.prompt)["input_ids"])
        try:
            sites.append((ids, tuple(subject_positions(tokenizer, case.prompt, ids, case.subject))))
        except PromptError:
            continue
    return sites


def _top_other(model: nn.Module, parts: ModelParts, side: Side, answer_id: int) -> int:
    """The run's highest-ranked token at the last position other than ``answer_id``; ties by token id."""
    logits = cache_side(model, parts, side, []).logits[0, -1].detach().to(torch.float32).cpu()
    order = torch.argsort(-logits, stable=True)
    return int(next(token for token in order.tolist() if token != answer_id))
