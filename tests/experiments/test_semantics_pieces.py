"""Experiment 005's pieces on planted data and a tiny model: datasets, token classes, H1, H2, cloze, ablation."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from layers_core.sae.sae_training import SaeRecipe, train_saes
from semantics_syntax.ablation_matrix import choose_targets
from semantics_syntax.cloze_scoring import ablation_scores, encode_items, score_items
from semantics_syntax.datasets import ClozeItem, DatasetError, PairText, load_cloze, load_pairs
from semantics_syntax.geometry import clustering, cosine_matrix
from semantics_syntax.token_classes import SYNTACTIC, token_class
from semantics_syntax.topic_specialists import form_overlaps, group_specialists, same_form_overlaps
from tests.tiny_models import VOCAB_SIZE, shared_model, shared_tokenizer


@functools.cache
def _tiny_sae():
    model, parts = shared_model("llama")
    recipe = SaeRecipe(expansion=4, k=8, tokens=8192, epochs=2, batch_tokens=256, lr=1e-2, window=24, norm_batches=2)
    windows = torch.randint(3, VOCAB_SIZE, (recipe.windows_needed(), 24), generator=torch.Generator().manual_seed(0))
    return train_saes(model, parts, windows, [2], recipe)[2]


# Datasets and token classes


def test_the_bundled_datasets_meet_the_issue_minimums() -> None:
    pairs, cloze = load_pairs(), load_cloze()
    topics = {t.topic for t in pairs}
    assert len(pairs) >= 300 and len(topics) >= 7
    for topic in topics:
        assert 2 <= len({t.form for t in pairs if t.topic == topic}) <= 3
    assert sum(i.domain == "math" for i in cloze) >= 100 and sum(i.domain == "nonmath" for i in cloze) >= 100


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"id": "a", "domain": "math", "prompt": "1 + 1 = ", "answer": "2"}'], "ends in whitespace"),
        (['{"id": "a", "domain": "maths", "prompt": "1 + 1 =", "answer": " 2"}'], "domain 'maths'"),
        (['{"id": "a", "domain": "math", "prompt": "1 + 1 ="}'], "expected an object with string id"),
        (["not json"], "line 1: not JSON"),
    ],
)
def test_a_broken_cloze_file_is_one_line(lines: list[str], message: str, tmp_path: Path) -> None:
    path = tmp_path / "cloze.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetError, match=message) as caught:
        load_cloze(path)
    assert "\n" not in str(caught.value)


def test_a_topic_with_one_form_is_refused(tmp_path: Path) -> None:
    rows = [{"id": f"{t}{i}", "topic": t, "form": "only" if t == "a" else f"f{i % 2}", "pair": f"{t}{i // 2}",
             "text": f"text {t} {i}"} for t in "ab" for i in range(8)]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DatasetError, match="topic 'a' has one form"):
        load_pairs(path)


@pytest.mark.parametrize(
    ("token", "expected"),
    [(" ", "whitespace"), ("😂", "emoji"), (" 12", "digit"), ("3.5", "digit"), (" +", "operator"), ("−", "operator"),
     ("://", "punctuation"), (",", "punctuation"), (" def", "code_keyword"), ("None", "code_keyword"),
     (" for", "function_word"), (" https", "url_part"), (" the", "function_word"), (" les", "function_word"),
     (" Berlin", "content_word"), ("ing", "content_word"), ("H2", "other")],
)
def test_token_classes(token: str, expected: str) -> None:
    assert token_class(token) == expected
    assert (expected in SYNTACTIC) == (expected not in ("emoji", "content_word", "other"))


# H1 and H2 on planted data


def _planted() -> tuple[list[PairText], torch.Tensor]:
    """Two topics x two forms, 6 texts each; feature 0 fires on topic a in both forms, feature 1 on form 'sym'
    in both topics, feature 2 on a/sym only; the rest is noise."""
    texts = [PairText(f"{t}-{f}-{i}", t, f, f"{t}-{i}", "x") for t in "ab" for f in ("sym", "word") for i in range(6)]
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(len(texts), 16, generator=generator) * 0.1
    for row, text in enumerate(texts):
        values[row, 0] += 2.0 * (text.topic == "a")
        values[row, 1] += 2.0 * (text.form == "sym")
        values[row, 2] += 3.0 * (text.group == "a/sym")
    return texts, values.double()


def test_specialists_are_found_against_other_topics_only() -> None:
    texts, values = _planted()
    found = {g.group: g for g in group_specialists(texts, values, per_group=3)}
    # Feature 0 serves topic a in both forms: the contrast leaves out a's other form, so it is not penalised.
    assert 0 in found["a/sym"].features and 0 in found["a/word"].features
    assert found["a/sym"].features[0] == 2  # the strongest, group-only feature first
    assert 1 in found["b/sym"].features and 1 not in found["b/word"].features
    overlaps = {(o.first, o.second): o.jaccard for o in form_overlaps(list(found.values()))}
    assert overlaps[("a/sym", "a/word")] > 0
    same = {(o.first, o.second): o.jaccard for o in same_form_overlaps(list(found.values()))}
    assert set(same) == {("a/sym", "b/sym"), ("a/word", "b/word")} and same[("a/sym", "b/sym")] > 0


def test_clustering_tells_topic_from_form() -> None:
    texts, values = _planted()
    topics, forms = [t.topic for t in texts], [t.form for t in texts]
    only_topic = values.clone()
    only_topic[:, 1:3] = 0.05  # remove the form and group features: what is left clusters by topic only
    found = {c.label: c for c in clustering(cosine_matrix(only_topic), topics, forms, 199, seed=1)}
    assert found["topic"].effect > 0.2 and found["topic"].p_value <= 0.01
    assert abs(found["form"].effect) < 0.05 and found["form"].p_value > 0.05
    shuffled = list(np.random.default_rng(2).permutation(topics))
    assert clustering(cosine_matrix(only_topic), shuffled, forms, 199, seed=1)[0].p_value > 0.05


# Cloze scoring and ablation on a tiny model


ITEMS = [ClozeItem("m1", "math", "", "1 + 1 =", " 2"), ClozeItem("m2", "math", "", "Seven plus five equals", " twelve"),
         ClozeItem("n1", "nonmath", "", "The capital of France is", " Paris"),
         ClozeItem("n2", "nonmath", "", "The day after Monday is", " Tuesday")]


def test_cloze_scores_are_the_answers_log_probability_in_a_padded_batch() -> None:
    model, parts = shared_model("llama")
    tokenizer = shared_tokenizer()
    encoded, skipped = encode_items(tokenizer, ITEMS)
    assert not skipped and len({len(e.ids) for e in encoded}) > 1  # the batch is padded
    batched = score_items(model, parts, tokenizer, encoded, batch_size=4)
    for index, item in enumerate(encoded):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([item.ids])).logits[0].double()
        logprobs = torch.log_softmax(logits, -1)
        expected = sum(float(logprobs[p - 1, item.ids[p]]) for p in range(item.prompt_length, len(item.ids)))
        assert float(batched.logprob[index]) == pytest.approx(expected, abs=1e-4 * max(1.0, abs(expected)))


def test_removing_a_silent_feature_or_none_changes_nothing_and_a_firing_one_matches_a_full_forward() -> None:
    from layers_core.hooks.activations import Patch, run_with_cache, run_with_patches
    from layers_core.sae.sae_splice import without_features
    from semantics_syntax.cloze_scoring import counted_mask

    model, parts = shared_model("llama")
    tokenizer, sae = shared_tokenizer(), _tiny_sae()
    encoded, _ = encode_items(tokenizer, ITEMS)
    clean = score_items(model, parts, tokenizer, encoded, batch_size=4)
    hook = sae.cfg.metadata.hook_name
    acts = torch.cat([sae.encode(run_with_cache(model, parts, torch.tensor([e.ids]), [hook]).cache[hook][0, 1:])
                      for e in encoded])
    silent = int((acts.amax(0) <= 0).nonzero()[0])
    firing = int(acts.sum(0).argmax())
    nothing, quiet, removed = ablation_scores(model, parts, tokenizer, encoded, sae, [[], [silent], [firing]],
                                              batch_size=4)
    for kept in (nothing, quiet):  # bit for bit: the blocks reused, the residual left as it was
        assert torch.equal(kept.logprob, clean.logprob) and kept.greedy == clean.greedy
    assert not torch.equal(removed.logprob, clean.logprob)
    # The same removal through a whole forward pass (no blocks reused), item by item.
    for index, item in enumerate(encoded):
        ids = torch.tensor([item.ids])
        x = run_with_cache(model, parts, ids, [hook]).cache[hook]
        mask = torch.ones_like(ids)
        value = torch.where(counted_mask(mask)[..., None], without_features(sae, x, [firing]), x)
        logits = run_with_patches(model, parts, ids, [Patch(hook, value)]).logits[0].double()
        logprobs = torch.log_softmax(logits, -1)
        expected = sum(float(logprobs[p - 1, item.ids[p]]) for p in range(item.prompt_length, len(item.ids)))
        assert float(removed.logprob[index]) == pytest.approx(expected, abs=1e-4 * max(1.0, abs(expected)))


def test_random_controls_match_frequency_and_are_no_groups_specialists() -> None:
    texts, values = _planted()
    found = group_specialists(texts, values, per_group=2)
    frequency = torch.linspace(0.01, 0.5, 16)
    targets = choose_targets(found, frequency, "a", "b", count=2, seed=0)
    assert targets == choose_targets(found, frequency, "a", "b", count=2, seed=0)
    kinds = [t.kind for t in targets]
    assert kinds.count("specialist") == 2 and kinds.count("random") == 2
    specialists = {f for g in found for f in g.features}
    taken: set[int] = set()
    for target in targets:
        if target.kind == "random":  # the nearest frequency among features no group uses and no control took yet
            assert target.feature not in specialists and target.matched_to in specialists
            others = [f for f in range(16) if f not in specialists and f not in taken]
            best = min(abs(float(frequency[f] - frequency[target.matched_to])) for f in others)
            assert abs(target.frequency - float(frequency[target.matched_to])) == pytest.approx(best)
            taken.add(target.feature)
        if target.kind == "cross_domain":
            assert target.feature not in {t.feature for t in targets if t.kind == "specialist"}
