"""Experiment 002's pieces on tiny real models: foils, prompt items, the one pass, the summaries, the ablation.

Tolerances: sums of fp32 dot products over ``d_model`` terms are compared with
``fp32_tol`` of their terms' magnitude; values that must be equal because they
come from the same code path are compared exactly.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attention_and_attribution.ablation_run import selections
from attention_and_attribution.answer_position_pass import measure_batch, measure_items
from attention_and_attribution.battery_summary import (
    HeadArrays,
    head_summary_rows,
    layers_summary,
    retrieval_heads,
    share_in_top,
)
from attention_and_attribution.foils import (
    FROM_BATTERY,
    FROM_FLAG,
    FROM_MODEL,
    FROM_PROMPT,
    battery_candidates,
    given_foil,
    paired_foil,
    top_wrong_foil,
)
from attention_and_attribution.head_ablation import AblationTarget, ablate, head_means, random_heads
from attention_and_attribution.prompt_items import prepare_items
from layers_core.errors import PromptError
from layers_core.hooks.activations import run_with_cache
from layers_core.lens.lens import Lens
from layers_core.models.architecture import ModelParts
from layers_core.prompts.prompt_battery import PromptCase
from tests import tiny_models
from tests.tolerances import fp32_tol

GERMANY = PromptCase("germany", "The capital of Germany is", "Berlin", "fact", subject="Germany")
FRANCE = PromptCase("france", "The capital of France is", "Berlin", "fact", subject="France")
US = PromptCase("us", "The capital of the US is", "Washington", "fact")
PAD_ID = 0


_tokenizer = tiny_models.shared_tokenizer
_model = tiny_models.shared_model


def _id(text: str) -> int:
    (token,) = _tokenizer().encode(text, add_special_tokens=False)
    return token


# --- foils -----------------------------------------------------------------------------------------


def test_battery_candidates_follow_the_battery_cyclically_without_the_own_answer() -> None:
    cases = [PromptCase(str(i), "p", answer, "fact") for i, answer in enumerate(["A", "B", "A", "C"])]
    assert battery_candidates(cases) == [["B", "C"], ["A", "C"], ["C", "B"], ["A", "B"]]


def test_paired_foil_skips_a_candidate_starting_with_the_answers_token() -> None:
    # The tiny tokenizer starts " Washington" and " Wellington" with the same token " W".
    answer_id = _tokenizer().encode(" Washington", add_special_tokens=False)[0]
    foil = paired_foil(_tokenizer(), US, answer_id, ["Wellington", "Berlin"])
    assert foil is not None and foil.text == "Berlin" and foil.source == FROM_BATTERY
    assert foil.token_id == _id(" Berlin")
    assert paired_foil(_tokenizer(), US, answer_id, ["Wellington"]) is None


def test_given_foil_precedence_and_one_line_errors() -> None:
    case = PromptCase("c", "The capital of Germany is", "Berlin", "custom", foil="capital")
    berlin = _id(" Berlin")
    own = given_foil(_tokenizer(), case, berlin, None)
    assert own.source == FROM_PROMPT and own.token_id == _id(" capital")
    flagged = given_foil(_tokenizer(), case, berlin, "Germany")
    assert flagged.source == FROM_FLAG and flagged.token_id == _id(" Germany")
    with pytest.raises(PromptError, match="same token as the answer"):
        given_foil(_tokenizer(), case, berlin, "Berlin")
    with pytest.raises(PromptError, match="cannot be scored"):
        given_foil(_tokenizer(), case, berlin, "Paris")  # " Paris" starts with a bare space token here
    assert given_foil(_tokenizer(), GERMANY, berlin, None) is None


def test_top_wrong_foil_passes_over_the_answer() -> None:
    assert top_wrong_foil([7, 3], answer_id=7) == top_wrong_foil([3, 9], answer_id=7)
    assert top_wrong_foil([7, 3], answer_id=7).source == FROM_MODEL


# --- prompt items ----------------------------------------------------------------------------------


def test_prepare_items_pairs_battery_foils_and_keeps_unscorable_prompts_unused() -> None:
    paris = PromptCase("paris", "The capital of France is", "Paris", "custom")
    items = prepare_items(_tokenizer(), [paris], [GERMANY, FRANCE, US], None, None)
    assert [item.used for item in items] == [False, True, True, True]
    assert "space" in items[0].alignment.reason
    germany = items[1]
    assert germany.roles == ["first", "relation", "relation", "subject", "self"]
    # Germany's neighbour France has the same answer here, so the pair is the next one, Washington.
    assert germany.foil is not None and germany.foil.text == "Washington"
    with pytest.raises(PromptError, match="no prompt has an answer"):
        prepare_items(_tokenizer(), [paris], [], None, None)


def test_a_prompt_longer_than_the_context_is_a_prompt_error() -> None:
    with pytest.raises(PromptError, match="reads at most 4"):
        prepare_items(_tokenizer(), [GERMANY], [], 4, None)


# --- the one pass ----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])
def test_one_pass_adds_up_and_attention_rows_are_distributions(family: str) -> None:
    model, parts = _model(family)
    items = prepare_items(_tokenizer(), [GERMANY, US], [], None, None)
    lens = Lens(parts)
    measured = measure_batch(model, parts, lens, items, PAD_ID)
    for m in measured:
        foil = m.item.foil
        assert foil is not None and foil.source == FROM_MODEL and foil.token_id != m.item.answer_id
        for attribution in m.attributions.values():
            limit = fp32_tol(attribution.rounding_scale, parts.d_model)
            assert abs(attribution.error) <= limit
        rows = m.pattern_rows
        assert rows.shape == (parts.n_layers, parts.n_heads, len(m.item.ids))
        ones = torch.ones(rows.shape[:2], dtype=rows.dtype)
        assert torch.allclose(rows.sum(-1), ones, rtol=0, atol=fp32_tol(1.0, rows.shape[-1]))
        assert m.lens.p_answer is not None and len(m.lens.p_answer) == parts.n_layers + 1


def test_batched_pass_matches_one_prompt_at_a_time() -> None:
    model, parts = _model("llama")
    items = prepare_items(_tokenizer(), [GERMANY, US], [], None, None)
    lens = Lens(parts)
    together = measure_items(model, parts, lens, items, PAD_ID, batch_size=2)
    alone = [measure_batch(model, parts, lens, [item], PAD_ID)[0] for item in items]
    for a, b in zip(together, alone, strict=True):
        assert a.item.foil == b.item.foil
        x = torch.tensor([r.value for r in a.attributions["logit_diff"].components])
        y = torch.tensor([r.value for r in b.attributions["logit_diff"].components])
        scale = a.attributions["logit_diff"].rounding_scale
        assert float((x - y).abs().max()) <= fp32_tol(scale, parts.d_model)
        assert float((a.pattern_rows - b.pattern_rows).abs().max()) <= fp32_tol(1.0, parts.d_model)


# --- summaries -------------------------------------------------------------------------------------


def test_share_in_top_counts_each_prompts_largest_heads() -> None:
    dla = np.zeros((2, 2, 3))
    dla[0] = [[5, 4, 3], [2, 1, 0]]
    dla[1] = [[0, 1, 2], [3, 4, 5]]
    share = share_in_top(dla, n=2)
    assert share.tolist() == [[0.5, 0.5, 0.0], [0.0, 0.5, 0.5]]


def test_head_summary_ranks_by_median_and_names_only_heads_that_hold() -> None:
    rng = np.random.default_rng(0)
    n, layers, heads = 20, 2, 3
    dla = rng.normal(0, 0.1, (n, layers, heads))
    dla[:, 1, 2] += 2.0  # holds on every prompt
    dla[:, 0, 1] = -0.1
    dla[:8, 0, 1] = 5.0  # large on 40% of the prompts only, in the top 5 there: its quartiles stay negative
    arrays = HeadArrays(dla, dla * 2, np.full((n, layers, heads, 6), 1 / 6))
    rows = head_summary_rows(arrays, layers)
    best = min(rows, key=lambda row: row["rank"])
    assert (best["layer"], best["head"]) == (1, 2) and best["rel_depth"] == 1.0
    assert best["median_dla_answer"] == pytest.approx(2 * best["median_dla_logit_diff"])
    assert sorted(row["rank"] for row in rows) == list(range(1, layers * heads + 1))
    assert [(h["layer"], h["head"]) for h in retrieval_heads(rows)] == [(1, 2)]
    summary = layers_summary(dla.sum(2), dla.sum(2) * 0, layers)
    assert summary[1]["median_attn_dla_logit_diff"] > 1.5 and summary[0]["rel_depth"] == 0.5


# --- ablation --------------------------------------------------------------------------------------


def test_random_heads_come_from_the_top_heads_layers_and_vary_with_the_seed() -> None:
    top = [(3, 1), (3, 2), (7, 0)]
    draws = {seed: random_heads(top, n_layers=8, n_heads=4, seed=seed) for seed in range(6)}
    for drawn in draws.values():
        assert [layer for layer, _ in drawn] == [3, 3, 7]
        assert len(set(drawn)) == 3 and not set(drawn) & set(top)
    assert draws[0] == random_heads(top, n_layers=8, n_heads=4, seed=0)
    assert len({tuple(d) for d in draws.values()}) > 1


def test_random_heads_draw_elsewhere_when_a_layer_is_used_up() -> None:
    drawn = random_heads([(0, 0), (0, 1)], n_layers=2, n_heads=3, seed=0)
    assert drawn[0] == (0, 2)  # the only other head of layer 0
    assert drawn[1][0] == 1  # layer 0 is used up: a head of layer 1
    with pytest.raises(ValueError, match="no head is left"):
        random_heads([(0, 0), (0, 1)], n_layers=1, n_heads=2, seed=0)


def test_selections_need_room_for_a_random_draw() -> None:
    ranked = [(layer, head) for layer in range(2) for head in range(3)]
    found = selections(ranked, n_layers=2, n_heads=3, ks=(1, 3, 5), seeds=(0, 1))
    assert [(s.k, s.kind, s.seed) for s in found] == [
        (1, "top", None), (1, "random", 0), (1, "random", 1), (3, "top", None), (3, "random", 0), (3, "random", 1),
    ]
    assert found[3].label == "L0H0 L0H1 L0H2"


def _targets(parts: ModelParts, model: nn.Module) -> tuple[list[AblationTarget], torch.Tensor]:
    items = prepare_items(_tokenizer(), [GERMANY, US], [], None, None)
    measured = measure_batch(model, parts, Lens(parts), items, PAD_ID)
    targets = [AblationTarget(m.item.ids, m.item.answer_id, m.item.foil.token_id) for m in measured]
    return targets, torch.stack([m.z for m in measured])


def test_ablation_without_heads_is_the_models_own_logit_difference() -> None:
    model, parts = _model("llama")
    targets, z = _targets(parts, model)
    clean = ablate(model, parts, targets, [], head_means(z), PAD_ID)
    for target, outcome in zip(targets, clean, strict=True):
        logits = run_with_cache(model, parts, torch.tensor([target.ids]), [], logits_at="last").logits[0, -1]
        expected = float(logits[target.answer_id] - logits[target.foil_id])
        assert abs(outcome.logit_diff - expected) <= fp32_tol(float(logits.abs().max()), parts.d_model)
        assert outcome.top1_id == int(logits.argmax())


def test_ablating_a_head_with_its_own_value_changes_nothing_and_with_the_mean_changes_the_logits() -> None:
    model, parts = _model("llama")
    targets, z = _targets(parts, model)
    head = (parts.n_layers - 1, 0)
    clean = ablate(model, parts, targets[:1], [], head_means(z), PAD_ID)[0]
    own = ablate(model, parts, targets[:1], [head], head_means(z[:1]), PAD_ID)[0]
    mean = ablate(model, parts, targets[:1], [head], head_means(z), PAD_ID)[0]
    tol = fp32_tol(max(1.0, abs(clean.logit_diff)), parts.d_model)
    assert abs(own.logit_diff - clean.logit_diff) <= tol
    assert abs(mean.logit_diff - clean.logit_diff) > 100 * tol
