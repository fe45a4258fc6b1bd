"""capture_residuals records what each block really reads and writes, on real tiny models."""

from __future__ import annotations

import pytest
import torch
import transformers

from layers_core.hooks.capture import (
    _hidden_from_call,
    _hidden_from_output,
    _ResidualRecorder,
    capture_residuals,
    position_ids_from_mask,
)
from layers_core.models.architecture import model_parts
from tests import tiny_models
from tests.tolerances import fp32_tol, max_abs

PROMPT = "The capital of Germany is"
OTHER = "Hello world, this is a tiny tokenizer"


def _forward_tol(parts, values: torch.Tensor) -> float:
    """Two forward passes of the same weights with other kernels (another batch shape, one row or all):
    each of the L+1 stages re-rounds d_model-term sums in another order, at the values' scale."""
    return fp32_tol(max_abs(values), n_terms=parts.d_model * (parts.n_layers + 1))


def _ids(text: str) -> torch.Tensor:
    return tiny_models.build_tokenizer()(text, return_tensors="pt")["input_ids"]


def _left_padded(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    tokenizer = tiny_models.build_tokenizer()
    tokenizer.padding_side = "left"
    encoded = tokenizer(texts, return_tensors="pt", padding=True)
    return encoded["input_ids"], encoded["attention_mask"]


def _no_hooks_left(parts) -> bool:
    return all(not b._forward_hooks and not b._forward_pre_hooks for b in parts.blocks)


def test_layer0_is_the_plain_embedding_for_llama() -> None:
    model = tiny_models.build_model("llama")
    ids = _ids(PROMPT)
    resid, _ = capture_residuals(model, model_parts(model), ids, positions="all")
    expected = model.model.embed_tokens.weight[ids[0]]
    torch.testing.assert_close(resid[0, 0], expected, rtol=0, atol=0)


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_layer0_is_the_scaled_embedding_for_gemma(family: str) -> None:
    model = tiny_models.build_model(family)
    ids = _ids(PROMPT)
    resid, _ = capture_residuals(model, model_parts(model), ids, positions="all")
    weight = model.model.embed_tokens.weight
    # Gemma multiplies by sqrt(d_model) rounded to the weight dtype.
    scale = torch.tensor(weight.shape[1] ** 0.5, dtype=weight.dtype)
    torch.testing.assert_close(resid[0, 0], weight[ids[0]] * scale, rtol=0, atol=0)
    assert not torch.allclose(resid[0, 0], weight[ids[0]])


def test_layer0_adds_gpt2_positions_and_granite_multiplier() -> None:
    gpt2 = tiny_models.build_model("gpt2")
    ids = _ids(PROMPT)
    resid, _ = capture_residuals(gpt2, model_parts(gpt2), ids, positions="all")
    wte, wpe = gpt2.transformer.wte.weight, gpt2.transformer.wpe.weight
    expected = wte[ids[0]] + wpe[torch.arange(ids.shape[1])]
    torch.testing.assert_close(resid[0, 0], expected, rtol=0, atol=1e-6)

    config = transformers.GraniteConfig(
        vocab_size=tiny_models.VOCAB_SIZE, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=1, embedding_multiplier=3.0,
    )
    granite = transformers.GraniteForCausalLM(config).eval()
    resid, _ = capture_residuals(granite, model_parts(granite), ids, positions="all")
    torch.testing.assert_close(resid[0, 0], granite.model.embed_tokens.weight[ids[0]] * 3.0)


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
def test_layers_are_block_outputs_and_last_is_before_final_norm(family: str) -> None:
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    ids = _ids(PROMPT)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    with torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    assert resid.shape == (parts.n_layers + 1, 1, ids.shape[1], parts.d_model)
    for layer in range(parts.n_layers):
        torch.testing.assert_close(resid[layer], hidden[layer], rtol=0, atol=0)
    # transformers' last hidden state is already normalised; ours is the residual before it.
    last = resid[parts.n_layers]
    assert (last - hidden[-1]).abs().max() > 0.1
    with torch.no_grad():
        torch.testing.assert_close(
            parts.final_norm(last), hidden[-1], rtol=0, atol=fp32_tol(max_abs(hidden[-1]), parts.d_model)
        )


@pytest.mark.parametrize("family", ["llama", "gpt2", "gemma2"])
def test_last_position_matches_all_positions(family: str) -> None:
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    ids = _ids(PROMPT)
    resid_all, logits_all = capture_residuals(model, parts, ids, positions="all")
    resid_last, logits_last = capture_residuals(model, parts, ids, positions="last")
    assert resid_last.shape == (parts.n_layers + 1, 1, 1, parts.d_model)
    assert logits_last.shape == (1, 1, parts.vocab_size)
    torch.testing.assert_close(resid_last, resid_all[:, :, -1:], rtol=0, atol=_forward_tol(parts, resid_all))
    torch.testing.assert_close(logits_last, logits_all[:, -1:], rtol=0, atol=_forward_tol(parts, logits_all))


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_all_residuals_with_last_logits_only(family: str) -> None:
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    ids = _ids(PROMPT)
    resid_all, logits_all = capture_residuals(model, parts, ids, positions="all")
    resid, logits = capture_residuals(model, parts, ids, positions="all", logits_at="last")
    assert logits.shape == (1, 1, parts.vocab_size)
    assert torch.equal(resid, resid_all)
    torch.testing.assert_close(logits, logits_all[:, -1:], rtol=0, atol=_forward_tol(parts, logits_all))
    with pytest.raises(ValueError, match="logits_at must be one of"):
        capture_residuals(model, parts, ids, positions="all", logits_at="first")


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
def test_left_padded_row_matches_the_unpadded_prompt(family: str) -> None:
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    ids, mask = _left_padded([OTHER, PROMPT])
    assert mask[1, 0] == 0, "the shorter prompt must be left-padded for this test"
    resid, logits = capture_residuals(model, parts, ids, attention_mask=mask)
    for row, text in enumerate([OTHER, PROMPT]):
        single_resid, single_logits = capture_residuals(model, parts, _ids(text))
        torch.testing.assert_close(logits[row], single_logits[0], rtol=0, atol=_forward_tol(parts, single_logits))
        torch.testing.assert_close(resid[:, row], single_resid[:, 0], rtol=0, atol=_forward_tol(parts, single_resid))


def test_gpt2_needs_positions_from_the_mask() -> None:
    """Under arange positions (transformers' default) a padded GPT-2 row is wrong; derived ones are right."""
    model = tiny_models.build_model("gpt2")
    parts = model_parts(model)
    ids, mask = _left_padded([OTHER, PROMPT])
    _, single = capture_residuals(model, parts, _ids(PROMPT))
    arange = torch.arange(ids.shape[1]).expand_as(ids)
    _, naive = capture_residuals(model, parts, ids, attention_mask=mask, position_ids=arange)
    _, derived = capture_residuals(model, parts, ids, attention_mask=mask)
    _, explicit = capture_residuals(
        model, parts, ids, attention_mask=mask, position_ids=position_ids_from_mask(mask)
    )
    assert (naive[1] - single[0]).abs().max() > 0.01
    torch.testing.assert_close(derived[1], single[0], rtol=0, atol=_forward_tol(parts, single))
    torch.testing.assert_close(explicit, derived, rtol=0, atol=0)


def test_position_ids_from_mask() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    expected = torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4]])
    assert torch.equal(position_ids_from_mask(mask), expected)


def test_right_padding_with_last_position_is_refused() -> None:
    model = tiny_models.build_model("llama")
    ids = torch.tensor([[5, 6, 7], [5, 6, 0]])
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    with pytest.raises(ValueError, match="left padding"):
        capture_residuals(model, model_parts(model), ids, attention_mask=mask)
    with pytest.raises(ValueError, match="left padding"):
        capture_residuals(model, model_parts(model), ids, attention_mask=mask, positions="all", logits_at="last")
    resid, logits = capture_residuals(model, model_parts(model), ids, attention_mask=mask, positions="all")
    assert logits.shape[1] == 3


def test_hooks_are_removed_after_success_and_failure() -> None:
    model = tiny_models.build_model("llama")
    parts = model_parts(model)
    capture_residuals(model, parts, _ids(PROMPT))
    assert _no_hooks_left(parts)
    out_of_vocab = torch.tensor([[tiny_models.VOCAB_SIZE + 5]])
    with pytest.raises(IndexError):
        capture_residuals(model, parts, out_of_vocab)
    assert _no_hooks_left(parts)


def test_half_precision_model_keeps_its_dtype_and_logits_are_fp32() -> None:
    model = tiny_models.build_model("llama").to(torch.bfloat16)
    resid, logits = capture_residuals(model, model_parts(model), _ids(PROMPT), positions="all")
    assert resid.dtype == torch.bfloat16
    assert logits.dtype == torch.float32
    assert not resid.requires_grad


def test_hidden_state_is_found_positionally_or_by_keyword() -> None:
    tensor = torch.zeros(1, 2, 3)
    assert _hidden_from_call((tensor,), {}) is tensor
    assert _hidden_from_call((), {"hidden_states": tensor}) is tensor
    assert _hidden_from_output(tensor) is tensor
    assert _hidden_from_output((tensor, None)) is tensor


def test_keyword_call_of_a_real_block_is_captured() -> None:
    """A block called with hidden_states= (not how transformers 5 calls it) still records layer 0."""
    model = tiny_models.build_model("gpt2")
    parts = model_parts(model)
    recorder = _ResidualRecorder(parts.n_layers, 1, 4, keep_last=False)
    handle = parts.blocks[0].register_forward_pre_hook(recorder.pre_hook, with_kwargs=True)
    try:
        hidden = torch.randn(1, 4, parts.d_model)
        with torch.no_grad():
            parts.blocks[0](hidden_states=hidden)
    finally:
        handle.remove()
    torch.testing.assert_close(recorder.stack[0], hidden, rtol=0, atol=0)
