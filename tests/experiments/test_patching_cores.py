"""Experiment 003's cores on tiny real models: pairs, noise, the metric, the exact patching sweeps.

Exactness: a patched run that reproduces the clean or the corrupted run bit for bit
(one row per forward pass, the same code path as the baselines) must score exactly
1 or 0, so those checks use ``==``. A batch of patched runs is compared with the
same runs one at a time within the rounding of the logits (``fp32_tol`` at their
magnitude over ``d_model`` terms, twice, divided by the pair's logit-difference
gap), which must itself be under the issue's 1e-4 restoration units.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import torch

from activation_patching import patch_specs
from activation_patching.batch_memory import SAFETY, row_bytes, rows_per_batch
from activation_patching.metric import Restoration, logit_diff, restoration_metric
from activation_patching.noise import NOISE_POINT, embedding_std, noise_patch, subject_noise
from activation_patching.pairs import PatchingPair, battery_pairs, custom_pair, noise_target, unpaired_facts
from activation_patching.patch_specs import PatchSpec, hook_name, source_points, sweep_specs
from activation_patching.sweeps import (
    Side,
    cache_side,
    first_patched_block,
    pair_sides,
    patched_run,
    restorations,
    sweep_pair,
)
from layers_core.errors import PromptError
from layers_core.hooks.activations import ActivationRun, Patch
from layers_core.hooks.block_reuse import block_output_points
from layers_core.models.architecture import ModelParts, model_parts
from layers_core.prompts.answer_alignment import align_answer
from layers_core.prompts.prompt_battery import PromptCase, load_fact_battery
from layers_core.prompts.token_text import TokenText
from tests import tiny_models
from tests.tolerances import fp32_tol, max_abs

# The tiny tokenizer splits these subjects into three tokens each after a bare space (" ", "Fr", "an", "ce"),
# while " Berlin", " Germany" and " Germany is" are whole tokens: equal lengths, answers that align.
CLEAN = PromptCase("france", "The capital of France is", "Berlin", "fact", subject="France")
CORRUPT = PromptCase("spain", "The capital of Spain is", "Germany", "fact", subject="Spain")
SAME_ANSWER = PromptCase("madrid", "The capital of Madrid is", "Berlin", "fact", subject="Madrid")
SHORTER = PromptCase("germany", "The capital of Germany is", "Berlin", "fact", subject="Germany")
BATCH_SPEC_LIMIT = 1e-4  # the bound on batched vs one at a time, in restoration units

_tokenizer = tiny_models.shared_tokenizer
_model = tiny_models.shared_model


def _pair() -> PatchingPair:
    return custom_pair(_tokenizer(), CLEAN.prompt, CORRUPT.prompt, "Berlin", "Germany")


def _setup(family: str, pair: PatchingPair | None = None) -> tuple[torch.nn.Module, ModelParts, Side, Side,
                                                                    dict[str, ActivationRun], Restoration]:
    """The model, both sides of the pair, both caches (every point of the full sweep) and the metric."""
    model, parts = _model(family)
    pair = pair or _pair()
    clean, corrupt = pair_sides(pair)
    points = [*source_points(sweep_specs(parts, len(pair.clean_ids)), parts.n_layers), *block_output_points(parts)]
    caches = {"clean": cache_side(model, parts, clean, points), "corrupt": cache_side(model, parts, corrupt, points)}
    metric = restoration_metric(
        caches["clean"].logits[0, -1], caches["corrupt"].logits[0, -1], pair.answer_id, pair.corrupt_answer_id
    )
    return model, parts, clean, corrupt, caches, metric


def _alone(model: torch.nn.Module, parts: ModelParts, base: Side, source: ActivationRun,
           run: Sequence[PatchSpec], metric: Restoration, reuse: ActivationRun | None = None) -> float:
    """One patched run, alone in its forward pass (starting at its first patched block given ``reuse``)."""
    return restorations(model, parts, base, source, [tuple(run)], metric, batch_size=1, reuse=reuse)[0]


def _assert_exact(value: float, want: float, what: str) -> None:
    assert value == want, f"{what}: restoration {value!r}, expected exactly {want}"


def _check_exactness(family: str) -> None:
    """The issue's exactness list, denoising and noising, on one family."""
    model, parts, clean, corrupt, caches, metric = _setup(family)
    last, seq_len = parts.n_layers, len(clean.input_ids)
    assert abs(metric.clean_diff - metric.corrupt_diff) > 1e-3, "the pair must separate the two runs"
    every_first = [PatchSpec("resid_pre", 0, None, p) for p in range(seq_len)]
    final_answer = [PatchSpec("resid_pre", last, None, seq_len - 1)]
    sides = ((corrupt, caches["clean"], caches["corrupt"], 0.0, 1.0),
             (clean, caches["corrupt"], caches["clean"], 1.0, 0.0))
    for base, source, own, nothing, patched in sides:
        for reuse in (None, own):  # from the embedding, and starting at the first patched block as sweeps do
            how = f"{family}, {'from the first patched block' if reuse is not None else 'every block run'}"
            _assert_exact(_alone(model, parts, base, source, [], metric, reuse), nothing, f"{how}: patching nothing")
            _assert_exact(_alone(model, parts, base, source, every_first, metric, reuse), patched,
                          f"{how}: the first layer's residual at every position")
            _assert_exact(_alone(model, parts, base, source, [PatchSpec("resid_pre", 0)], metric, reuse), patched,
                          f"{how}: the first layer's residual, all positions in one spec")
            _assert_exact(_alone(model, parts, base, source, final_answer, metric, reuse), patched,
                          f"{how}: the last layer's residual at the answer position")


# --- pairs -------------------------------------------------------------------------------------------


def test_custom_pair_finds_the_changed_positions_and_both_answer_tokens() -> None:
    tokenizer = _tokenizer()
    pair = _pair()
    assert len(pair.clean_ids) == len(pair.corrupt_ids)
    changed = [p for p, (a, b) in enumerate(zip(pair.clean_ids, pair.corrupt_ids, strict=True)) if a != b]
    assert list(pair.corrupt_positions) == changed and changed
    assert pair.answer_id == align_answer(tokenizer, CLEAN.prompt, "Berlin").answer_token_id
    assert pair.corrupt_answer_id == align_answer(tokenizer, CORRUPT.prompt, "Germany").answer_token_id
    assert pair.answer_id != pair.corrupt_answer_id
    assert pair.corruption == "swap" and pair.pair_id == "custom"


def test_a_custom_pair_of_unequal_length_is_refused_naming_both_lengths() -> None:
    with pytest.raises(PromptError) as caught:
        custom_pair(_tokenizer(), SHORTER.prompt, CORRUPT.prompt, "Berlin", "Germany")
    message = caught.value.message
    assert "\n" not in message and "is 5 tokens" in message and "prompt 8" in message


@pytest.mark.parametrize(
    ("clean", "corrupt", "answer", "corrupt_answer", "words"),
    [(CLEAN.prompt, CLEAN.prompt, "Berlin", "Germany", "same tokens"),
     (CLEAN.prompt, CORRUPT.prompt, "Berlin", "Berlin", "different tokens")],
)
def test_a_custom_pair_needs_changed_tokens_and_two_answers(
    clean: str, corrupt: str, answer: str, corrupt_answer: str, words: str
) -> None:
    with pytest.raises(PromptError, match=words):
        custom_pair(_tokenizer(), clean, corrupt, answer, corrupt_answer)


def test_battery_pairs_take_the_next_eligible_fact_cyclically() -> None:
    # SHORTER has no partner of its length; SAME_ANSWER starts its answer with France's token, not Spain's.
    facts = [CLEAN, SHORTER, SAME_ANSWER, CORRUPT]
    pairs = battery_pairs(_tokenizer(), facts)
    assert [pair.pair_id for pair in pairs] == ["france-vs-spain", "madrid-vs-spain", "spain-vs-france"]
    assert unpaired_facts(facts, pairs) == [SHORTER]
    for pair in pairs:
        changed = {p for p, (a, b) in enumerate(zip(pair.clean_ids, pair.corrupt_ids, strict=True)) if a != b}
        assert changed and changed <= set(pair.corrupt_positions) == {4, 5, 6}
        assert pair.answer_id != pair.corrupt_answer_id
    assert battery_pairs(_tokenizer(), facts) == pairs  # deterministic


# --- the metric -------------------------------------------------------------------------------------


def test_restoration_is_zero_at_the_corrupted_run_and_one_at_the_clean_run() -> None:
    logits = torch.zeros(3, 5)
    logits[:, 1] = torch.tensor([4.0, -1.0, 1.5])  # answer
    logits[:, 3] = torch.tensor([2.0, 0.0, 1.0])  # corrupt answer
    assert logit_diff(logits, 1, 3).tolist() == [2.0, -1.0, 0.5]
    metric = restoration_metric(logits[0], logits[1], 1, 3)
    assert (metric.clean_diff, metric.corrupt_diff) == (2.0, -1.0)
    assert metric(logits).tolist() == [1.0, 0.0, 0.5]
    assert torch.isnan(Restoration(1, 3, 2.0, 2.0)(logits)).all()


# --- noise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2", "granite"])
def test_embedding_std_is_measured_where_block_0_reads_its_input(family: str) -> None:
    model, parts = _model(family)
    pair = _pair()
    prompts = [pair.clean_ids, tuple(_tokenizer()(SHORTER.prompt)["input_ids"])]
    positions = [pair.corrupt_positions, (0, 2)]
    got = embedding_std(model, parts, prompts, positions, pad_id=0)
    values = []
    for ids, kept in zip(prompts, positions, strict=True):
        run = cache_side(model, parts, Side(tuple(ids)), [NOISE_POINT])
        values.append(run[NOISE_POINT][0, list(kept)].double().flatten())
    want = float(torch.cat(values).std())
    assert abs(got - want) <= fp32_tol(want, n_terms=sum(len(v) for v in values))
    if family == "gemma3":  # the sqrt(d_model) scale is inside: far above the raw table's rows
        weight = parts.embed.weight
        assert isinstance(weight, torch.Tensor)
        raw = weight.detach()[list(pair.clean_ids)].double().std()
        assert got > 2.0 * float(raw)


def test_subject_noise_is_seeded_and_three_standard_deviations() -> None:
    first, again, other = subject_noise(0.5, 400, 32, seed=1), subject_noise(0.5, 400, 32, seed=1), subject_noise(
        0.5, 400, 32, seed=2)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.shape == (400, 32) and first.dtype == torch.float32
    # 12,800 draws: the sample std is within 3% of 1.5 with overwhelming probability (its sd is ~0.6%).
    assert abs(float(first.double().std()) - 1.5) < 0.045


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_noise_corrupts_the_subject_only_and_restores_exactly(family: str) -> None:
    model, parts = _model(family)
    pair = noise_target(_tokenizer(), CLEAN, corrupt_answer_id=_pair().corrupt_answer_id)
    noise = subject_noise(1.0, len(pair.corrupt_positions), parts.d_model)
    clean, corrupt = pair_sides(pair, [noise_patch(noise, pair.corrupt_positions)])
    points = [NOISE_POINT]
    clean_run, corrupt_run = cache_side(model, parts, clean, points), cache_side(model, parts, corrupt, points)
    subject = list(pair.corrupt_positions)
    others = [p for p in range(len(pair.clean_ids)) if p not in subject]
    written = corrupt_run[NOISE_POINT][0]
    assert torch.equal(written[others], clean_run[NOISE_POINT][0, others])
    assert torch.equal(written[subject], clean_run[NOISE_POINT][0, subject] + noise)
    metric = restoration_metric(clean_run.logits[0, -1], corrupt_run.logits[0, -1], pair.answer_id,
                                pair.corrupt_answer_id)
    at_subject = [PatchSpec("resid_pre", 0, None, p) for p in subject]
    _assert_exact(_alone(model, parts, corrupt, clean_run, at_subject, metric), 1.0, "the subject's clean embeddings")
    _assert_exact(_alone(model, parts, corrupt, clean_run, [PatchSpec("resid_pre", 0, None, others[0])], metric),
                  0.0, "an embedding the noise left alone")
    final = PatchSpec("resid_pre", parts.n_layers, None, len(pair.clean_ids) - 1)
    sweep = sweep_pair(model, parts, pair, [final], TokenText(_tokenizer()), batch_size=1,
                       corrupt_patches=[noise_patch(noise, subject)])
    assert sweep.metric == metric
    assert [(row.pair_id, row.direction, row.restoration) for row in sweep.rows] == [
        ("france-noised", "denoise", 1.0), ("france-noised", "noise", 0.0)]
    with pytest.raises(ValueError, match="noise patch"):
        pair_sides(pair)


# --- exact patching ---------------------------------------------------------------------------------


def test_sweep_specs_cover_every_site_once_with_transformer_lens_names() -> None:
    _, parts = _model("llama")
    seq_len, n_layers, n_heads = 5, parts.n_layers, parts.n_heads
    specs = sweep_specs(parts, seq_len)
    assert len(specs) == len(set(specs)) == (n_layers + 1) * seq_len + 2 * n_layers * seq_len + 2 * n_layers * n_heads
    assert hook_name(PatchSpec("resid_pre", n_layers), n_layers) == f"blocks.{n_layers - 1}.hook_resid_post"
    assert hook_name(PatchSpec("resid_pre", 1), n_layers) == "blocks.1.hook_resid_pre"
    assert hook_name(PatchSpec("mlp_out", 2), n_layers) == "blocks.2.hook_mlp_out"
    assert hook_name(PatchSpec("head", 0, 3), n_layers) == "blocks.0.attn.hook_z"
    heads = [spec for spec in specs if spec.component == "head"]
    assert {spec.position for spec in heads} == {None, seq_len - 1}
    with pytest.raises(ValueError):
        PatchSpec("head", 0)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_exactness_nothing_first_layer_and_last_layer(family: str) -> None:
    _check_exactness(family)


def test_the_exactness_checks_fail_on_a_patch_at_the_wrong_layer_or_position(monkeypatch: pytest.MonkeyPatch) -> None:
    model, parts, clean, corrupt, caches, metric = _setup("llama")
    last, answer = parts.n_layers, len(clean.input_ids) - 1
    for wrong in (PatchSpec("resid_pre", last - 1, None, answer), PatchSpec("resid_pre", last, None, answer - 1)):
        with pytest.raises(AssertionError):
            _assert_exact(_alone(model, parts, corrupt, caches["clean"], [wrong], metric), 1.0, "deliberately wrong")
    real_name = patch_specs.hook_name

    def one_layer_early(spec: PatchSpec, n_layers: int) -> str:
        return real_name(PatchSpec(spec.component, max(spec.layer - 1, 0), spec.head, spec.position), n_layers)

    monkeypatch.setattr(patch_specs, "hook_name", one_layer_early)
    with pytest.raises(AssertionError):
        _check_exactness("llama")
    monkeypatch.undo()

    def one_position_early(point: str, value: torch.Tensor, positions: list[int] | None = None, **kwargs) -> Patch:
        shifted = None if positions is None else [position - 1 for position in positions]
        return Patch(point, value, positions=shifted, **kwargs)

    monkeypatch.setattr(patch_specs, "Patch", one_position_early)
    with pytest.raises(AssertionError):
        _check_exactness("llama")


def test_patching_writes_the_raw_activation() -> None:
    model, parts, clean, corrupt, caches, _ = _setup("gemma3")
    layer, position = 1, 2
    points = [f"blocks.{layer}.hook_resid_pre", f"blocks.{layer}.hook_mlp_out"]
    runs = [(PatchSpec("resid_pre", layer, None, position),), (PatchSpec("mlp_out", layer, None, position),)]
    run = patched_run(model, parts, corrupt, caches["clean"], runs, read=points)
    for row, point in enumerate(points):
        assert torch.equal(run[point][row, position], caches["clean"][point][0, position]), point
    norm = parts.block_input_norms[layer]
    assert norm is not None
    normed = norm(caches["clean"][points[0]])[0, position]
    assert not torch.allclose(run[points[0]][0, position], normed)


def _batch_tol(parts: ModelParts, caches: dict[str, ActivationRun], metric: Restoration) -> float:
    """Restoration units two computations of one run may differ by: the logits' fp32 rounding at their
    magnitude over ``d_model`` terms, in both runs, over the pair's gap between clean and corrupted."""
    scale = max(max_abs(caches["clean"].logits), max_abs(caches["corrupt"].logits), 1.0)
    return 2 * fp32_tol(scale, n_terms=parts.d_model) / abs(metric.clean_diff - metric.corrupt_diff)


# Families whose tiny pair separates clean from corrupted by far more than the logits' rounding (GPT-2's gap,
# 0.008 logits, makes 1e-4 restoration units less than one fp32 rounding of its logits of 20).
@pytest.mark.parametrize("family", ["qwen2", "gemma2", "gemma3"])
def test_a_batch_of_patched_runs_equals_the_runs_one_at_a_time(family: str) -> None:
    model, parts, clean, corrupt, caches, metric = _setup(family)
    specs = [(spec,) for spec in sweep_specs(parts, len(clean.input_ids))]
    tol = _batch_tol(parts, caches, metric)
    assert tol < BATCH_SPEC_LIMIT
    sides = ((corrupt, caches["clean"], caches["corrupt"]), (clean, caches["corrupt"], caches["clean"]))
    for base, source, own in sides:
        batched = restorations(model, parts, base, source, specs, metric, batch_size=7, reuse=own)  # as sweeps run
        alone = restorations(model, parts, base, source, specs, metric, batch_size=1)  # every block recomputed
        worst = max(abs(a - b) for a, b in zip(batched, alone, strict=True))
        assert worst <= tol, f"batched vs alone differ by {worst:.3g} > {tol:.3g}"
        assert len({round(value, 3) for value in batched}) > 3  # the sites do differ


def test_a_batch_starts_at_its_first_patched_block() -> None:
    assert first_patched_block([(PatchSpec("mlp_out", 3, None, 1),), (PatchSpec("resid_pre", 2, None, 0),)], 6) == 2
    assert first_patched_block([(PatchSpec("head", 4, 1, None),)], 6) == 4
    assert first_patched_block([(), (PatchSpec("resid_pre", 6, None, 0),)], 6) == 6
    assert first_patched_block([()], 6) == 6


def test_sweep_pair_rows_carry_the_csv_keys() -> None:
    model, parts, clean, _, caches, metric = _setup("gemma2")
    pair, answer = _pair(), len(clean.input_ids) - 1
    specs = sweep_specs(parts, len(pair.clean_ids))
    sweep = sweep_pair(model, parts, pair, specs, TokenText(_tokenizer()), batch_size=16)
    assert sweep.metric == metric
    assert len(sweep.rows) == 2 * len(specs)
    keys = ["pair_id", "direction", "component", "layer", "head", "position", "token", "rel_depth", "hook",
            "restoration"]
    assert list(sweep.rows[0].as_dict()) == keys
    final = [r for r in sweep.rows if r.hook.endswith("hook_resid_post") and r.position == answer]
    assert [(r.direction, r.layer, r.rel_depth, r.token) for r in final] == [
        ("denoise", parts.n_layers, 1.0, " is"), ("noise", parts.n_layers, 1.0, " is")]
    tol = _batch_tol(parts, caches, metric)
    assert abs(final[0].restoration - 1.0) <= tol and abs(final[1].restoration) <= tol
    every = [r for r in sweep.rows if r.component == "head" and r.position is None]
    assert every and all(r.token is None and r.head is not None for r in every)


def test_rows_per_batch_follows_the_budget() -> None:
    _, parts = _model("llama")
    one = row_bytes(parts, 10, torch.float32)
    assert rows_per_batch(parts, 10, torch.float32, SAFETY * one * 5) == 5
    assert rows_per_batch(parts, 10, torch.float32, 0) == 1
    assert rows_per_batch(parts, 10, torch.float32, 10**15, max_rows=32) == 32
    assert row_bytes(parts, 20, torch.float32) > 2 * one - 12 * parts.vocab_size
    assert row_bytes(parts, 10, torch.bfloat16) < one


# --- the bundled SmolLM2 ----------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_capitals_pairs_patch_exactly(smollm2) -> None:
    model, tokenizer = smollm2.model, smollm2.tokenizer
    parts = model_parts(model)
    facts = load_fact_battery("capitals")
    pairs = battery_pairs(tokenizer, facts)
    assert len(pairs) >= len(facts) - 2
    assert pairs[0].pair_id == "capital_germany-vs-capital_france"
    pair = pairs[0]
    clean, corrupt = pair_sides(pair)
    last, answer, subject = parts.n_layers, len(pair.clean_ids) - 1, pair.corrupt_positions[-1]
    specs = [PatchSpec("resid_pre", layer, None, p) for layer in (0, 12, 24, last) for p in (subject, answer)]
    specs += [PatchSpec("head", 23, 4, answer), PatchSpec("mlp_out", 5, None, subject)]
    points = source_points([*specs, PatchSpec("resid_pre", 0)], last)
    caches = {"clean": cache_side(model, parts, clean, points), "corrupt": cache_side(model, parts, corrupt, points)}
    metric = restoration_metric(
        caches["clean"].logits[0, -1], caches["corrupt"].logits[0, -1], pair.answer_id, pair.corrupt_answer_id
    )
    every_first = [PatchSpec("resid_pre", 0, None, p) for p in range(answer + 1)]
    for base, source, nothing, patched in ((corrupt, caches["clean"], 0.0, 1.0), (clean, caches["corrupt"], 1.0, 0.0)):
        _assert_exact(_alone(model, parts, base, source, [], metric), nothing, "smollm2: nothing")
        _assert_exact(_alone(model, parts, base, source, every_first, metric), patched, "smollm2: first layer")
        _assert_exact(_alone(model, parts, base, source, [PatchSpec("resid_pre", last, None, answer)], metric),
                      patched, "smollm2: last layer at the answer")
        runs = [(spec,) for spec in specs]
        batched = restorations(model, parts, base, source, runs, metric, batch_size=len(runs))
        alone = restorations(model, parts, base, source, runs, metric, batch_size=1)
        tol = _batch_tol(parts, caches, metric)
        assert tol < BATCH_SPEC_LIMIT
        assert max(abs(a - b) for a, b in zip(batched, alone, strict=True)) <= tol
