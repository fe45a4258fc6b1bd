"""Attribution patching (experiment 003) on tiny real models: gradients, estimates, variants, CSV rows.

Gradient checks run a float64 copy of a tiny model; its RMS norms still compute in
float32 (transformers upcasts, here downcasts, inside them), so a finite
difference's rounding is taken at float32's: ``fp_tol`` at the logits' magnitude
over ``d_model`` terms, for each of the two runs, divided by the step and the
pair's gap. Its truncation error is bounded the Richardson way: a central
difference errs by ``c * eps**2``, so ``|FD(2 eps) - FD(eps)|`` (``3 c eps**2``)
bounds the error at ``eps``.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor

from activation_patching.atp_star import INPUT_POINT, grad_drop_scores, path_estimates
from activation_patching.attribution_patching import (
    attribution_estimates,
    correlation,
    linear_changes,
    point_gradients,
    restoration_value,
)
from activation_patching.attribution_sweep import METHODS, attribute_pair, attribution_columns, attribution_rows
from activation_patching.metric import Restoration, restoration_metric
from activation_patching.pairs import PatchingPair, custom_pair
from activation_patching.patch_specs import PatchSpec, hook_name, source_points, sweep_specs
from activation_patching.sweeps import PatchingRow, Side, cache_side, pair_sides, sweep_pair
from layers_core.hooks.activations import ActivationRun, Patch, run_with_patches
from layers_core.models.architecture import ModelParts, model_parts
from layers_core.prompts.token_text import TokenText
from tests import tiny_models
from tests.tolerances import fp_tol, max_abs

# As in test_patching_cores: subjects of three tokens each, answers " Berlin" / " Germany".
CLEAN, CORRUPT = "The capital of France is", "The capital of Spain is"


def _pair() -> PatchingPair:
    return custom_pair(tiny_models.shared_tokenizer(), CLEAN, CORRUPT, "Berlin", "Germany")


def _tensor(value: object) -> Tensor:
    assert isinstance(value, Tensor)
    return value.detach()


def _float64(family: str) -> tuple[torch.nn.Module, ModelParts]:
    model = tiny_models.build_any(family).to(torch.float64).eval()
    return model, model_parts(model)


def _setup(model: torch.nn.Module, parts: ModelParts, specs: list[PatchSpec]
           ) -> tuple[Side, Side, dict[str, ActivationRun], Restoration, list[str]]:
    pair = _pair()
    clean, corrupt = pair_sides(pair)
    points = source_points(specs, parts.n_layers)
    read = list(dict.fromkeys([*points, INPUT_POINT]))
    caches = {"clean": cache_side(model, parts, clean, read), "corrupt": cache_side(model, parts, corrupt, read)}
    metric = restoration_metric(
        caches["clean"].logits[0, -1], caches["corrupt"].logits[0, -1], pair.answer_id, pair.corrupt_answer_id
    )
    assert abs(metric.clean_diff - metric.corrupt_diff) > 1e-3, "the pair must separate the two runs"
    return clean, corrupt, caches, metric, points


def _point(spec: PatchSpec, parts: ModelParts) -> str:
    return hook_name(spec, parts.n_layers)


def _nudged(model: torch.nn.Module, parts: ModelParts, base: Side, point: str, position: int, step: Tensor,
            metric: Restoration) -> float:
    """The base's restoration with ``step`` added at ``point`` and ``position``."""
    ids = torch.tensor([base.input_ids])
    run = run_with_patches(model, parts, ids, [*base.patches, Patch(point, step, positions=[position], mode="add")],
                           logits_at="last")
    return float(restoration_value(run.logits[0, -1], metric))


def _central(model: torch.nn.Module, parts: ModelParts, base: Side, point: str, position: int, direction: Tensor,
             eps: float, metric: Restoration) -> float:
    up = _nudged(model, parts, base, point, position, eps * direction, metric)
    down = _nudged(model, parts, base, point, position, -eps * direction, metric)
    return (up - down) / (2 * eps)


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_the_gradient_matches_finite_differences_and_not_at_a_neighbouring_site(family: str) -> None:
    model, parts = _float64(family)
    specs = sweep_specs(parts, len(_pair().clean_ids), ("resid_pre",))
    _, corrupt, caches, metric, points = _setup(model, parts, specs)
    gradients = point_gradients(model, parts, corrupt, points, metric)
    layer, position = 1, len(corrupt.input_ids) - 2  # mid-depth, inside the subject
    point = hook_name(PatchSpec("resid_pre", layer, position=position), parts.n_layers)
    direction = torch.randn(parts.d_model, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    direction *= gradients.values[point][0, position].norm() / direction.norm()  # as long as the residual there
    eps = 1e-2  # steps of 1% of the residual: rounding (~1/eps) and truncation (~eps**2) both small
    finite = _central(model, parts, corrupt, point, position, direction, eps, metric)
    coarse = _central(model, parts, corrupt, point, position, direction, 2 * eps, metric)
    gap = abs(metric.clean_diff - metric.corrupt_diff)
    rounding = 2 * fp_tol(max_abs(caches["corrupt"].logits), parts.d_model, torch.float32) / (2 * eps * gap)
    tol = abs(coarse - finite) + rounding
    grad_at = {
        (lay, pos): float(gradients.grads[hook_name(PatchSpec("resid_pre", lay), parts.n_layers)][0, pos] @ direction)
        for lay, pos in ((layer, position), (layer + 1, position), (layer, position - 1), (layer - 1, position))
    }
    assert abs(grad_at[layer, position] - finite) <= tol, (grad_at, finite, tol)
    for site, value in grad_at.items():
        if site != (layer, position):
            assert abs(value - finite) > 10 * tol, f"the gradient at {site} also matches: the test cannot tell sites"


def test_the_final_residual_estimate_equals_the_norm_and_unembedding_by_hand() -> None:
    """At the final residual the restoration is (w_a - w_b) · rmsnorm(x) / gap: its gradient in closed form."""
    model, parts = tiny_models.shared_model("llama")
    last, answer = parts.n_layers, len(_pair().clean_ids) - 1
    spec = PatchSpec("resid_pre", last, position=answer)
    _, corrupt, caches, metric, points = _setup(model, parts, [spec])
    found = attribution_estimates(model, parts, corrupt, caches["clean"], [spec], points, metric)[0]
    x = caches["corrupt"][points[0]][0, answer].to(torch.float64)
    x_clean = caches["clean"][points[0]][0, answer].to(torch.float64)
    assert parts.final_norm is not None
    norm_weight, eps = _tensor(parts.final_norm.weight), float(parts.final_norm.variance_epsilon)  # type: ignore[arg-type]
    weight = _tensor(parts.unembed.weight).to(torch.float64)
    with torch.no_grad():
        u = norm_weight.to(torch.float64) * (weight[metric.answer_id] - weight[metric.corrupt_answer_id])
        rms = torch.sqrt((x * x).mean() + eps)
        grad = (u - x * (x @ u) / (parts.d_model * rms**2)) / rms / (metric.clean_diff - metric.corrupt_diff)
        want = float((x_clean - x) @ grad)
    scale = max_abs(x, x_clean) * max_abs(grad)
    assert found == pytest.approx(want, abs=fp_tol(scale, parts.d_model, torch.float32) * 4)


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_a_site_whose_source_equals_the_base_scores_the_base_exactly(family: str) -> None:
    model, parts = tiny_models.shared_model(family)
    specs = sweep_specs(parts, len(_pair().clean_ids))
    clean, corrupt, caches, metric, points = _setup(model, parts, specs)
    for base, source, score in ((corrupt, caches["clean"], 0.0), (clean, caches["corrupt"], 1.0)):
        gradients = point_gradients(model, parts, base, points, metric)
        estimates = attribution_estimates(model, parts, base, source, specs, points, metric)
        unchanged = [
            index for index, spec in enumerate(specs) if spec.position == 0  # before the subject: same ids
            and torch.equal(source[_point(spec, parts)][0, 0], gradients.values[_point(spec, parts)][0, 0])
        ]
        assert len(unchanged) >= parts.n_layers + 1, "the residual before the subject must be equal in both runs"
        assert all(estimates[index] == score for index in unchanged)
        assert gradients.score == score


def test_path_gradients_are_complete_at_the_input() -> None:
    """Integrated gradients at blocks.0.hook_resid_pre sum, over positions, to the whole input patch's effect (1)."""
    model, parts = _float64("llama")
    seq_len = len(_pair().clean_ids)
    specs = [PatchSpec("resid_pre", 0, position=position) for position in range(seq_len)]
    _, corrupt, caches, metric, points = _setup(model, parts, specs)
    sums = {steps: sum(path_estimates(model, parts, corrupt, caches["clean"], specs, points, metric, steps))
            for steps in (16, 32)}
    plain = sum(attribution_estimates(model, parts, corrupt, caches["clean"], specs, points, metric))
    midpoint_error = abs(sums[16] - sums[32])  # the midpoint rule errs ~4x less at twice the steps
    assert abs(sums[32] - 1.0) <= midpoint_error + 1e-9
    assert abs(sums[32] - 1.0) < abs(plain - 1.0), "the path average should beat the base's gradient here"


def test_grad_drop_leaves_the_final_residual_alone() -> None:
    """No block is downstream of the final residual, so every dropped layer gives plain AtP's change."""
    model, parts = tiny_models.shared_model("llama")
    spec = PatchSpec("resid_pre", parts.n_layers, position=len(_pair().clean_ids) - 1)
    _, corrupt, caches, metric, points = _setup(model, parts, [spec])
    plain = attribution_estimates(model, parts, corrupt, caches["clean"], [spec], points, metric)[0]
    dropped = grad_drop_scores(model, parts, corrupt, caches["clean"], [spec], points, metric)[0]
    want = abs(plain) * parts.n_layers / (parts.n_layers - 1)
    assert dropped == pytest.approx(want, rel=1e-5)


def test_attribute_pair_lines_up_with_the_exact_sweep_and_writes_rows() -> None:
    model, parts = tiny_models.shared_model("qwen2")
    pair = _pair()
    specs = sweep_specs(parts, len(pair.clean_ids))
    sweep = sweep_pair(model, parts, pair, specs, TokenText(tiny_models.shared_tokenizer()), batch_size=64)
    found = attribute_pair(model, parts, pair, specs, steps=2)
    assert set(found.estimates) == set(METHODS) and found.metric == sweep.metric
    rows = attribution_rows(sweep.rows, found.estimates)
    assert len(rows) == len(sweep.rows) == 2 * len(specs)
    assert list(rows[0]) == attribution_columns()
    assert [row["exact"] for row in rows] == [row.restoration for row in sweep.rows]
    # The estimate at the final residual at the answer is first order only, but in the right direction.
    answer = specs.index(PatchSpec("resid_pre", parts.n_layers, None, len(pair.clean_ids) - 1))
    assert math.copysign(1, found.estimates["approx"][answer]) == math.copysign(1, rows[answer]["exact"])
    with pytest.raises(ValueError, match="values for"):
        attribution_rows(sweep.rows[:-1], found.estimates)


def test_correlation_is_pearson_r() -> None:
    assert correlation([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1.0)
    assert correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert correlation([1.0, 2.0, 3.0, 4.0], [1.0, 3.0, 2.0, 4.0]) == pytest.approx(0.8)
    assert math.isnan(correlation([1.0, 1.0], [1.0, 2.0]))
    with pytest.raises(ValueError):
        correlation([1.0, 2.0], [1.0])


def test_linear_changes_slice_heads_and_positions() -> None:
    """A hand-made cache: the change is the dot product over exactly the spec's head and position."""
    z = "blocks.0.attn.hook_z"
    base = ActivationRun(torch.zeros(1), {z: torch.zeros(1, 3, 2, 4)})
    source = ActivationRun(torch.zeros(1), {z: torch.ones(1, 3, 2, 4)})
    grads = ActivationRun(torch.zeros(1), {z: torch.arange(24.0).reshape(1, 3, 2, 4)})
    specs = [PatchSpec("head", 0, 1, None), PatchSpec("head", 0, 0, 2)]
    found = linear_changes(specs, source, base, grads, n_layers=1).tolist()
    assert found == [float(sum(4 + i + 8 * p for p in range(3) for i in range(4))), float(16 + 17 + 18 + 19)]
    resid = "blocks.0.hook_resid_pre"
    base, source = ActivationRun(torch.zeros(1), {resid: torch.ones(1, 3, 2)}), ActivationRun(
        torch.zeros(1), {resid: torch.full((1, 3, 2), 3.0)})
    grads = ActivationRun(torch.zeros(1), {resid: torch.arange(6.0).reshape(1, 3, 2)})
    specs = [PatchSpec("resid_pre", 0, None, None), PatchSpec("resid_pre", 0, None, 1)]
    assert linear_changes(specs, source, base, grads, n_layers=1).tolist() == [2.0 * 15, 2.0 * (2 + 3)]


def test_a_pair_that_does_not_separate_has_no_gradient_scale() -> None:
    metric = Restoration(1, 2, 0.5, 0.5)
    with pytest.raises(ValueError, match="undefined"):
        restoration_value(torch.zeros(4), metric)


def test_rows_keep_the_patching_keys() -> None:
    row = PatchingRow("p", "denoise", "head", 1, 2, None, None, 0.5, "blocks.1.attn.hook_z", 0.25)
    (found,) = attribution_rows([row], {"approx": [0.125]})
    assert found == {**{k: v for k, v in row.as_dict().items() if k != "restoration"}, "exact": 0.25, "approx": 0.125}
