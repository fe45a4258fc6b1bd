"""Experiment 004's pieces on tiny models and planted data: the category file, counting tokens, specialists."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from layers_core.sae.sae_training import SaeRecipe, train_saes
from layers_core.sae.text_features import encode_texts, text_features
from sae_features.category_texts import DEFAULT_TEXTS, FIND, TEST, CategoryDataError, categories, load_category_texts
from sae_features.discovery import LayerTable, discover, feature_rows
from sae_features.specialists import auroc, best_threshold, category_specialists, find_specialist
from tests.tiny_models import VOCAB_SIZE, shared_model, shared_tokenizer
from tests.tolerances import fp_tol

TEXTS = ["def f(x): return x + 1", "hello there, how are you?", "2 + 2 = 4", "https://example.com/a?b=c",
         "The committee shall convene.", "ok", "a much longer text that needs no padding at all in its batch"]


@functools.cache
def _tiny_saes() -> dict:
    model, parts = shared_model("llama")
    recipe = SaeRecipe(expansion=4, k=8, tokens=8192, epochs=2, batch_tokens=256, lr=1e-2, window=24, norm_batches=2)
    windows = torch.randint(3, VOCAB_SIZE, (recipe.windows_needed(), 24), generator=torch.Generator().manual_seed(0))
    return train_saes(model, parts, windows, [1, 2], recipe)


# The category file


def test_the_bundled_category_texts_have_seven_categories_of_twenty_split_in_halves() -> None:
    texts = load_category_texts(DEFAULT_TEXTS)
    names = categories(texts)
    assert names == ["python", "urls", "math", "non_english", "social", "formal", "conversational"]
    for name in names:
        halves = [t.half for t in texts if t.category == name]
        assert len(halves) == 20 and halves.count(FIND) == 10 and halves.count(TEST) == 10
    assert len({t.text_id for t in texts}) == len(texts)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "category": "x", "text": "t"}', "not json"], "line 2: not JSON"),
        (['{"id": "a", "category": "x"}'], "line 1: expected an object"),
        (['{"id": "a", "category": "x", "text": "  "}'], "is empty"),
        (['{"id": "a", "category": "x", "text": "t"}', '{"id": "a", "category": "y", "text": "u"}'], "appears twice"),
        (['{"id": "a", "category": "x", "text": "t"}'], "at least two categories"),
        ([json.dumps({"id": f"{c}{i}", "category": c, "text": "t"}) for c in "xy" for i in range(3)],
         r"too few in x \(3\)"),
    ],
)
def test_a_broken_category_file_names_the_problem(lines: list[str], message: str, tmp_path: Path) -> None:
    path = tmp_path / "texts.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CategoryDataError, match=message):
        load_category_texts(path)


def test_a_missing_category_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(CategoryDataError, match="cannot read"):
        load_category_texts(tmp_path / "none.jsonl")


# Counting tokens: padding and position 0 never count


def test_a_padded_batch_counts_the_same_tokens_and_values_as_one_text_at_a_time() -> None:
    model, parts = shared_model("llama")
    tokenizer, saes = shared_tokenizer(), _tiny_saes()
    lengths = [len(ids) for ids in encode_texts(tokenizer, TEXTS)]
    assert len(set(lengths)) > 1  # the batch really is padded
    batched = text_features(model, parts, tokenizer, TEXTS, saes, batch_size=len(TEXTS))
    single = text_features(model, parts, tokenizer, TEXTS, saes, batch_size=1)
    special = set(tokenizer.all_special_ids)
    for layer in saes:
        for text, ids, one, many in zip(TEXTS, encode_texts(tokenizer, TEXTS), single[layer], batched[layer],
                                        strict=True):
            assert many.token_ids == one.token_ids, text
            assert list(one.token_ids) == [t for t in ids[1:] if t not in special]  # position 0 never counts
            scale = float(one.max.abs().max()) or 1.0
            assert torch.allclose(many.mean, one.mean, atol=fp_tol(scale, n_terms=parts.d_model), rtol=0), text
            assert torch.allclose(many.max, one.max, atol=fp_tol(scale, n_terms=parts.d_model), rtol=0), text


def test_the_statistics_are_those_of_the_counted_tokens() -> None:
    model, parts = shared_model("llama")
    found = text_features(model, parts, shared_tokenizer(), TEXTS[:2], _tiny_saes(), batch_size=2)
    for features in found[1]:
        values = torch.zeros(len(features.token_ids), features.mean.numel())
        for row, (ids, vals) in enumerate(features.token_features):
            values[row, ids] = vals
        assert torch.allclose(values.mean(0), features.mean, atol=1e-7)
        assert torch.equal(values.max(0).values, features.max)
        assert torch.equal((values > 0).sum(0), features.fired)


# Specialists and discovery, on planted values


def _planted(n_per: int = 10, seed: int = 0) -> tuple[list[str], list[str], torch.Tensor]:
    """Three categories; feature 5 fires on category b only, feature 2 everywhere, the rest is sparse noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = [c for c in "abc" for _ in range(2 * n_per)]
    halves = [FIND if i % 2 == 0 else TEST for c in "abc" for i in range(2 * n_per)]
    values = torch.rand(len(labels), 12, generator=generator) * (torch.rand(len(labels), 12, generator=generator) > 0.8)
    values[:, 2] = 1.0 + torch.rand(len(labels), generator=generator)
    values[:, 5] = 0.0
    inside = torch.tensor([label == "b" for label in labels])
    values[inside, 5] = 2.0 + torch.rand(int(inside.sum()), generator=generator)
    return labels, halves, values


def test_auroc_and_threshold_on_known_orders() -> None:
    assert auroc(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 2.0])) == 1.0
    assert auroc(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])) == 0.0
    assert auroc(torch.tensor([1.0, 1.0]), torch.tensor([1.0])) == 0.5
    values = torch.tensor([0.0, 0.1, 0.9, 1.0])
    assert best_threshold(values, torch.tensor([False, False, True, True])) == pytest.approx(0.5)  # the margin's middle
    assert best_threshold(values, torch.tensor([True, True, True, True])) == pytest.approx(0.0)


def test_a_planted_specialist_is_found_on_one_half_and_holds_on_the_other() -> None:
    labels, halves, values = _planted()
    found = category_specialists(["a", "b", "c"], labels, halves, values)
    b = found[1]
    assert b is not None and b.feature == 5 and b.holds
    assert b.heldout_precision == 1.0 and b.heldout_recall == 1.0 and b.heldout_auroc == 1.0
    assert all(s is None or s.feature != 2 for s in found)  # firing everywhere is not specialising


def test_a_feature_that_only_fits_the_find_half_does_not_hold() -> None:
    labels, halves, values = _planted()
    find = torch.tensor([h == FIND for h in halves])
    inside = torch.tensor([label == "a" for label in labels])
    values[:, 7] = 0.0
    values[find & inside, 7] = 5.0  # fires on a's find texts only
    values[~find & ~inside, 7] = 5.0  # and on the other categories' test texts
    found = find_specialist("a", values[find], inside[find], values[~find], inside[~find])
    assert found is not None and found.feature == 7
    assert found.heldout_auroc == 0.0 and not found.holds


def test_discovery_names_the_planted_features_and_weights_strength() -> None:
    labels, _, values = _planted()
    table = LayerTable(values.double(), values.double(), (values > 0).long() * 3, torch.full((len(labels),), 3))
    found = discover(table, labels, ["a", "b", "c"], top=3)
    assert found.category["b"][0] == 5
    assert found.frequent[0] == 2 and found.selective[0] == 5
    rows = feature_rows(table, labels, ["a", "b", "c"], found)
    b5 = next(r for r in rows if r["feature"] == 5 and r["category"] == "b")
    assert b5["text_frequency"] == 1.0 and "category:b" in str(b5["criteria"])
    assert next(r for r in rows if r["feature"] == 5 and r["category"] == "a")["mean_activation"] == 0.0


# Feature cards


@pytest.mark.parametrize("family", ["gemma3", "gpt2", "llama"])
def test_the_logit_effect_is_the_first_order_change_of_the_logits_along_the_direction(family: str) -> None:
    # Independent of logit_effect's formula: finite differences through the model's own final norm and
    # unembedding modules in float64, along a direction orthogonal to the (centred) residual, where the
    # norm's scale does not move to first order, so d logits / dt = scale * effect.
    from layers_core.models.architecture import model_parts
    from layers_core.sae.feature_logits import logit_effect
    from tests.tiny_models import build_any

    model = build_any(family).double()
    parts = model_parts(model)
    generator = torch.Generator().manual_seed(1)
    r, d = torch.randn(2, parts.d_model, generator=generator, dtype=torch.float64)
    centred = isinstance(parts.final_norm, torch.nn.LayerNorm)
    if centred:
        r, d = r - r.mean(), d - d.mean()
    d = d - (d @ r) / (r @ r) * r
    norm = parts.final_norm
    eps = getattr(norm, "eps", None) or norm.variance_epsilon  # LayerNorm and Gemma: eps; Llama: variance_epsilon
    scale = torch.rsqrt(r.pow(2).mean() + eps)  # the norm's 1/rms of r

    def logits(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return parts.unembed(parts.final_norm(x[None]))[0]

    # Gemma's norms compute in float32 whatever the model's dtype: the difference quotient carries float32
    # rounding of the logits divided by t; the step's own (second-order) error is far below that.
    t = 1e-3
    slope = (logits(r + t * d) - logits(r - t * d)) / (2 * t)
    effect = logit_effect(parts, d).double() * scale
    rounding = 16 * torch.finfo(torch.float32).eps * float(logits(r).abs().max()) / t
    torch.testing.assert_close(slope, effect, rtol=1e-4, atol=rounding + 1e-6 * float(effect.abs().max()))
    assert float((slope - effect).abs().max()) < 0.01 * float(effect.abs().max())


def test_top_contexts_are_the_strongest_windows_sliced_around_their_peaks() -> None:
    from sae_features.feature_contexts import top_contexts

    windows = torch.arange(4 * 11).reshape(4, 11)  # token id = 11 * window + position
    values = torch.zeros(4, 10)
    values[0, 9], values[2, 0], values[2, 5], values[3, 4] = 2.0, 5.0, 1.0, 2.0
    found = top_contexts(windows, values, count=3, width=6)
    assert [c.window for c in found] == [2, 0, 3]  # strongest first, ties by window; window 1 never fires
    for c in found:
        assert c.token_ids[c.peak] == 11 * c.window + 1 + int(values[c.window].argmax())
        assert c.max == float(values[c.window].max()) and len(c.token_ids) == len(c.values) == 6
    assert found[0].peak == 0 and found[1].peak == 5  # clipped at the window's start and end


def test_a_card_counts_every_token_once_and_reads_the_sparse_activations() -> None:
    from sae_features.category_texts import CategoryText
    from sae_features.feature_cards import HISTOGRAM_BINS, feature_card
    from sae_features.specialists import Specialist

    model, parts = shared_model("llama")
    tokenizer = shared_tokenizer()
    sae = _tiny_saes()[2]
    texts = [CategoryText(f"{c}-{i}", c, text, half) for i, (c, half, text) in enumerate(
        [("a", FIND, TEXTS[0]), ("a", TEST, TEXTS[2]), ("b", TEST, TEXTS[1]), ("b", FIND, TEXTS[3])])]
    found = text_features(model, parts, tokenizer, [t.text for t in texts], {2: sae})[2]
    feature = int(torch.stack([f.mean for f in found]).sum(0).argmax())
    for f in found:
        values = f.values_of(feature)
        assert values.shape == (f.n_tokens,) and float(values.max()) == pytest.approx(float(f.max[feature]))
        assert int((values > 0).sum()) == int(f.fired[feature])
    spec = Specialist("a", feature, 1.0, 1.0, 0.0, 0.5, 1.0, 1.0, 1.0, True)
    corpus = torch.tensor([[0.0, 0.5, 2.0], [0.0, 0.0, 1.0]])
    card = feature_card(spec, parts, tokenizer, sae, texts, found, [], corpus)
    histogram = card["histogram"]
    tokens = {"category": found[0].n_tokens + found[1].n_tokens, "other": found[2].n_tokens + found[3].n_tokens,
              "corpus": 6}
    for group, count in tokens.items():
        assert len(histogram[group]) == HISTOGRAM_BINS and sum(histogram[group]) + histogram["zeros"][group] == count
    assert [t["text_id"] for t in card["texts"]][0] == texts[1].text_id  # the own category's test text first
    assert all(len(t["tokens"]) == len(t["values"]) for t in card["texts"])
    assert len(card["promoted"]) == len(card["suppressed"]) == 10
    assert card["promoted"][0]["value"] >= card["promoted"][-1]["value"] > card["suppressed"][0]["value"]
