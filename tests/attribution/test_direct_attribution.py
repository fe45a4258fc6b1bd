"""Direct logit attribution adds up exactly to the model's own logit, on every supported family, and has teeth.

Tolerances: a sum of the attribution's rows and the model's logit are rounded at
``Attribution.rounding_scale`` (the sum of their terms' magnitudes), over dot products
of ``d_model`` terms, one per summed row: ``fp32_tol`` of that. The issue's own criterion,
1e-4 relative to the model's value (at least 1 logit), is asserted too.
"""

from __future__ import annotations

import math

import pytest
import torch
import transformers
from torch import Tensor, nn

from layers_core.attribution.direct_attribution import (
    Attribution,
    LogitDirection,
    answer_direction,
    attribute,
    attribute_batch,
    attribute_components,
    logit_diff_direction,
)
from layers_core.attribution.frozen_norm import FrozenNorm
from layers_core.attribution.residual_components import decompose_answer_position
from layers_core.errors import UnsupportedArchitectureError
from layers_core.hooks.activations import run_with_cache
from layers_core.models.architecture import ModelParts, model_parts
from tests import tiny_models
from tests.tolerances import fp32_tol

PROMPT = "The capital of Germany is"
BATCH = ["The capital of Germany is", "Hello world", "Madrid, Rome, Vienna, Warsaw, Lisbon and Athens are"]
ANSWERS = [" Berlin", " Paris", " Rome"]
FOILS = [" Paris", " Berlin", " Madrid"]
# The teeth: what a broken decomposition misses must exceed the tolerance by at least this factor
# (an order of magnitude; the measured margins are far larger except for GPT-2's small random MLPs).
BROKEN_FACTOR = 10.0


_tokenizer = tiny_models.shared_tokenizer
_model = tiny_models.shared_model


def _ids(text: str = PROMPT) -> Tensor:
    return _tokenizer()(text, return_tensors="pt")["input_ids"]


def _token(text: str) -> int:
    return int(_tokenizer()(text)["input_ids"][0])


def _directions(parts: ModelParts, answer: str = ANSWERS[0], foil: str = FOILS[0]) -> dict[str, LogitDirection]:
    return {
        "answer": answer_direction(parts, _token(answer)),
        "logit_diff": logit_diff_direction(parts, _token(answer), _token(foil)),
    }


def _after_norm(parts: ModelParts, direction: LogitDirection) -> Tensor:
    """The direction's first row as read after the final norm: ``sum_j c_j W_U[t_j]`` (float64)."""
    rows = parts.unembed.weight.detach()[direction.token_ids[0]].double()
    return (direction.coefficients[0, :, None] * rows).sum(0)


def _softcap(value: float, cap: float | None) -> float:
    return cap * math.tanh(value / cap) if cap is not None else value


def _tolerance(parts: ModelParts, attribution: Attribution) -> float:
    n_rows = sum(row.component != "head" for row in attribution.components)
    return fp32_tol(attribution.rounding_scale, n_terms=parts.d_model * n_rows)


def _assert_adds_up(parts: ModelParts, attribution: Attribution) -> None:
    """Non-head rows sum to the model's value; each layer's heads sum to its attn row."""
    tol = _tolerance(parts, attribution)
    summed = sum(row.value for row in attribution.components if row.component != "head")
    assert summed == pytest.approx(attribution.total, rel=0, abs=tol)
    assert abs(attribution.error) <= tol, (attribution.error, tol)
    assert abs(attribution.error) <= 1e-4 * max(abs(attribution.model_value), 1.0)
    for layer in range(parts.n_layers):
        heads = [row.value for row in attribution.rows("head") if row.layer == layer]
        (attn,) = [row.value for row in attribution.rows("attn") if row.layer == layer]
        assert sum(heads) == pytest.approx(attn, rel=0, abs=tol), layer


def _assert_layout(parts: ModelParts, attribution: Attribution) -> None:
    rows = attribution.components
    assert (rows[0].component, rows[0].hook) == ("embed", "blocks.0.hook_resid_pre")
    assert (rows[-1].component, rows[-1].layer, rows[-1].hook) == ("bias", None, None)
    for layer, inner in enumerate(parts.block_parts):
        own = [row for row in rows if row.layer == layer]
        kinds = [row.component for row in own]
        has_bias = inner.o_proj_bias() is not None
        assert kinds == ["attn", *["head"] * parts.n_heads, *(["bias"] if has_bias else []), "mlp"]
        assert [row.head for row in own if row.component == "head"] == list(range(parts.n_heads))
        assert {row.hook for row in own if row.component == "head"} == {f"blocks.{layer}.attn.hook_z"}
        assert own[-1].hook == f"blocks.{layer}.hook_mlp_out"


def _own_logits(model: nn.Module, ids: Tensor) -> Tensor:
    with torch.no_grad():
        return model(input_ids=ids, use_cache=False).logits[0, -1].double()


# --- the exact sum -------------------------------------------------------------------------------


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_rows_add_up_to_the_models_own_logit_and_heads_to_their_layer(family: str) -> None:
    model, parts = _model(family)
    ids = _ids()
    results = attribute(model, parts, ids, _directions(parts))
    logits = _own_logits(model, ids)
    answer, foil = _token(ANSWERS[0]), _token(FOILS[0])
    cap = parts.final_logit_softcap
    for attribution in results.values():
        _assert_adds_up(parts, attribution)
        _assert_layout(parts, attribution)
        assert attribution.softcap_applied_after == cap
    # model_value is the model's own pre-softcap value: the softcap of it gives the returned logits.
    tol = _tolerance(parts, results["logit_diff"])
    pre_answer = results["answer"].model_value
    pre_foil = pre_answer - results["logit_diff"].model_value
    assert _softcap(pre_answer, cap) == pytest.approx(float(logits[answer]), rel=0, abs=tol)
    assert _softcap(pre_foil, cap) == pytest.approx(float(logits[foil]), rel=0, abs=tol)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_left_padded_batch_rows_equal_each_prompt_alone(family: str) -> None:
    model, parts = _model(family)
    tokenizer = _tokenizer()
    encoded = tokenizer(BATCH, return_tensors="pt", padding=True, padding_side="left")
    answers, foils = [_token(text) for text in ANSWERS], [_token(text) for text in FOILS]
    batched = attribute_batch(
        model, parts, encoded["input_ids"], {"logit_diff": logit_diff_direction(parts, answers, foils)},
        attention_mask=encoded["attention_mask"],
    )
    assert len(batched) == len(BATCH)
    for row, text in enumerate(BATCH):
        direction = logit_diff_direction(parts, answers[row], foils[row])
        got = batched[row]["logit_diff"]
        want = attribute(model, parts, _ids(text), {"logit_diff": direction})["logit_diff"]
        _assert_adds_up(parts, got)
        tol = _tolerance(parts, want)
        assert [(r.component, r.layer, r.head) for r in got.components] == [
            (r.component, r.layer, r.head) for r in want.components
        ]
        assert [r.value for r in got.components] == pytest.approx([r.value for r in want.components], rel=0, abs=tol)
        assert got.model_value == pytest.approx(want.model_value, rel=0, abs=tol)


def _with_attention_bias(family: str) -> nn.Module:
    """``family``'s tiny model with biases on its attention projections (its config allows them)."""
    config = tiny_models._configs()[family]()
    config.attention_bias = True
    torch.manual_seed(0)
    return transformers.AutoModelForCausalLM.from_config(config).float().eval()


_BIASED = {
    "gpt2": lambda: tiny_models.build_any("gpt2"),
    "phi": lambda: tiny_models.build_any("phi"),
    "gpt_neox": lambda: tiny_models.build_any("gpt_neox"),
    "gemma2_attention_bias": lambda: _with_attention_bias("gemma2"),
    "olmo2_attention_bias": lambda: _with_attention_bias("olmo2"),
}


@pytest.mark.parametrize("variant", sorted(_BIASED))
def test_output_projection_biases_get_their_own_rows_through_the_post_norm(variant: str) -> None:
    """The tiny checkpoints' projection biases are zero; moved off zero, each lands in its layer's bias row."""
    model = _BIASED[variant]()
    generator = torch.Generator().manual_seed(2)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.add_(0.5 * torch.randn(param.shape, generator=generator))
    parts = model_parts(model)
    attribution = attribute(model, parts, _ids(), _directions(parts))["logit_diff"]
    _assert_adds_up(parts, attribution)
    _assert_layout(parts, attribution)
    layer_biases = attribution.rows("bias")[:-1]
    assert [row.layer for row in layer_biases] == list(range(parts.n_layers))
    # Teeth: leaving the largest of them out breaks the sum.
    assert max(abs(row.value) for row in layer_biases) > BROKEN_FACTOR * _tolerance(parts, attribution)


# --- teeth -------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2", "granite"])
def test_dropping_a_component_breaks_the_sum(family: str) -> None:
    model, parts = _model(family)
    attribution = attribute(model, parts, _ids(), _directions(parts))["logit_diff"]
    tol = _tolerance(parts, attribution)
    dropped = {
        "embed": attribution.rows("embed")[0],
        "largest mlp": max(attribution.rows("mlp"), key=lambda row: abs(row.value)),
        "largest attn": max(attribution.rows("attn"), key=lambda row: abs(row.value)),
    }
    if family == "gpt2":
        # GPT-2: ln_f's bias read by the direction (c_proj biases: the test above).
        dropped["final bias"] = attribution.components[-1]
    for what, row in dropped.items():
        broken = attribution.total - row.value - attribution.model_value
        assert abs(broken) > BROKEN_FACTOR * tol, what


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma3", "cohere"])
def test_recomputing_the_norm_per_component_breaks_the_sum(family: str) -> None:
    """Without the frozen scale each component is normalised at its own rms: the sum no longer holds."""
    model, parts = _model(family)
    components = decompose_answer_position(model, parts, _ids())
    directions = _directions(parts)
    exact = attribute_components(parts, components, directions)[0]["logit_diff"]
    summed = components.vectors[0, components.summed_mask()]
    # Each component as its own batch row: FrozenNorm measures one scale per row.
    per_component = FrozenNorm.measure(parts.final_norm, summed, dtype=torch.float32)
    after_norm = _after_norm(parts, directions["logit_diff"])
    multiplier = parts.logit_multiplier or 1.0
    naive = multiplier * float((per_component.linear(summed) @ after_norm).sum()) + exact.components[-1].value
    assert abs(exact.error) <= _tolerance(parts, exact)
    assert abs(naive - exact.model_value) > BROKEN_FACTOR * _tolerance(parts, exact)


@pytest.mark.parametrize("family", ["gemma2", "gemma3", "olmo2"])
def test_skipping_the_post_attention_norm_breaks_the_heads_and_the_sum(family: str) -> None:
    model, parts = _model(family)
    ids = _ids()
    components = decompose_answer_position(model, parts, ids)
    direction = _directions(parts)["logit_diff"]
    exact = attribute_components(parts, components, {"d": direction})[0]["d"]
    tol = _tolerance(parts, exact)
    run = run_with_cache(model, parts, ids, [f"blocks.{i}.attn.hook_z" for i in range(parts.n_layers)],
                         positions="last")
    read = (parts.logit_multiplier or 1.0) * components.final_norm.read_out(_after_norm(parts, direction)[None])[0]
    raw_total = exact.total
    for layer in range(parts.n_layers):
        z = run[f"blocks.{layer}.attn.hook_z"][0, 0].double()
        weight = parts.block_parts[layer].o_proj_weight().detach().double()
        # Each head straight into the residual, as if there were no post-attention norm.
        raw_heads = sum(float(z[h] @ weight[:, h * parts.d_head:(h + 1) * parts.d_head].T @ read)
                        for h in range(parts.n_heads))
        attn = exact.rows("attn")[layer].value
        assert abs(raw_heads - attn) > tol, layer
        raw_total += raw_heads - attn
    assert abs(raw_total - exact.model_value) > BROKEN_FACTOR * tol


# --- the run-time checks ------------------------------------------------------------------------


def test_a_final_norm_the_frozen_form_does_not_reproduce_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_models.build_any("llama")
    parts = model_parts(model)
    norm = parts.final_norm
    assert norm is not None
    original = norm.forward
    monkeypatch.setattr(norm, "forward", lambda hidden_states: torch.tanh(original(hidden_states)))
    with pytest.raises(UnsupportedArchitectureError, match="LlamaRMSNorm") as caught:
        attribute(model, parts, _ids(), _directions(parts))
    assert "\n" not in caught.value.message


def test_a_post_attention_norm_the_frozen_form_does_not_reproduce_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    model = tiny_models.build_any("gemma2")
    parts = model_parts(model)
    norm = parts.block_parts[1].attn_post_norm
    assert norm is not None
    original = norm.forward
    monkeypatch.setattr(norm, "forward", lambda x: original(x) + 0.5)
    with pytest.raises(UnsupportedArchitectureError, match="Gemma2RMSNorm"):
        attribute(model, parts, _ids(), _directions(parts))


def test_a_norm_of_unknown_arithmetic_is_refused_by_class() -> None:
    model = tiny_models.build_any("llama")
    model.model.norm = nn.Identity()
    parts = model_parts(model)
    with pytest.raises(UnsupportedArchitectureError, match="Identity") as caught:
        attribute(model, parts, _ids(), _directions(parts))
    assert "\n" not in caught.value.message


def test_the_form_is_read_from_the_norm_module_not_the_family() -> None:
    """A LayerNorm with bias where Llama has its RMSNorm: still exact, and its bias lands in the final row."""
    model = tiny_models.build_any("llama")
    layer_norm = nn.LayerNorm(model.config.hidden_size)
    with torch.no_grad():
        layer_norm.weight.normal_(1.0, 0.3, generator=torch.Generator().manual_seed(3))
        layer_norm.bias.normal_(0.0, 0.3, generator=torch.Generator().manual_seed(4))
    model.model.norm = layer_norm
    parts = model_parts(model)
    attribution = attribute(model, parts, _ids(), _directions(parts))["logit_diff"]
    _assert_adds_up(parts, attribution)
    assert abs(attribution.components[-1].value) > BROKEN_FACTOR * _tolerance(parts, attribution)


@pytest.mark.parametrize("family", ["gpt2", "gemma2", "olmo", "cohere"])
def test_a_frozen_norm_is_linear_and_equals_the_module_at_its_scale(family: str) -> None:
    _, parts = _model(family)
    parts_of_x = torch.randn(3, 2, parts.d_model, generator=torch.Generator().manual_seed(5))
    total = parts_of_x.sum(0)
    frozen = FrozenNorm.measure(parts.final_norm, total)
    assert parts.final_norm is not None
    with torch.no_grad():
        own = parts.final_norm(total).double()
    tol = fp32_tol(float(own.abs().max()), n_terms=parts.d_model)
    torch.testing.assert_close(frozen(total), own, rtol=0, atol=tol)
    split = sum(frozen.linear(part) for part in parts_of_x)
    split = split + frozen.bias if frozen.bias is not None else split
    torch.testing.assert_close(split, own, rtol=0, atol=tol)


def test_directions_check_their_tokens_and_rows() -> None:
    model, parts = _model("llama")
    with pytest.raises(ValueError, match="token 320"):
        answer_direction(parts, 320)
    with pytest.raises(ValueError, match="one foil per answer"):
        logit_diff_direction(parts, [5, 6], [7])
    encoded = _tokenizer()(BATCH, return_tensors="pt", padding=True, padding_side="left")
    with pytest.raises(ValueError, match="does not fit a batch of 3"):
        attribute_batch(model, parts, encoded["input_ids"], {"d": answer_direction(parts, [5, 6])},
                        attention_mask=encoded["attention_mask"])
    with pytest.raises(ValueError, match="one prompt"):
        attribute(model, parts, encoded["input_ids"], {"d": answer_direction(parts, 5)})


# --- a real model --------------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_berlin_over_paris_adds_up(smollm2) -> None:
    parts = smollm2.parts
    tokenizer = smollm2.tokenizer
    ids = tokenizer(PROMPT, return_tensors="pt")["input_ids"]
    berlin = tokenizer(" Berlin", add_special_tokens=False)["input_ids"][0]
    paris = tokenizer(" Paris", add_special_tokens=False)["input_ids"][0]
    directions = {"answer": answer_direction(parts, berlin), "logit_diff": logit_diff_direction(parts, berlin, paris)}
    results = attribute(smollm2.model, parts, ids, directions)
    for attribution in results.values():
        _assert_adds_up(parts, attribution)
        _assert_layout(parts, attribution)
        assert attribution.softcap_applied_after is None
    logits = _own_logits(smollm2.model, ids)
    tol = _tolerance(parts, results["logit_diff"])
    assert results["logit_diff"].model_value == pytest.approx(float(logits[berlin] - logits[paris]), rel=0, abs=tol)
    # FINDINGS ("Attention, attribution and patching"): Berlin - Paris is 4.78 without a BOS token (2 decimals).
    assert results["logit_diff"].model_value == pytest.approx(4.78, rel=0, abs=0.005)
