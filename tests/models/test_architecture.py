"""model_parts finds the right modules on real tiny checkpoints and refuses what it does not know."""

from __future__ import annotations

import pytest
import torch
import transformers
from torch import Tensor, nn

from layers_core.errors import UnsupportedArchitectureError
from layers_core.models.architecture import SUPPORTED_CLASSES, NormForm, model_parts, norm_form
from tests import tiny_models
from tests.tolerances import dot_scale, fp32_tol, max_abs

_SMALL = dict(
    vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
    num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=32,
    tie_word_embeddings=False,
)


def _path_of(description: str) -> str:
    """'model.norm (LlamaRMSNorm)' -> 'model.norm'."""
    return description.split(" (")[0]


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
def test_parts_are_the_modules_the_model_runs(family: str) -> None:
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    config = model.config
    assert parts.n_layers == config.num_hidden_layers == len(parts.blocks)
    assert parts.d_model == config.hidden_size
    assert parts.vocab_size == config.vocab_size
    assert parts.family == config.model_type
    assert parts.unembed is model.get_output_embeddings()
    assert parts.embed is model.get_input_embeddings()
    assert parts.norm_type == type(parts.final_norm).__name__
    all_modules = {id(m) for m in model.modules()}
    for block in parts.blocks:
        assert id(block) in all_modules


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
def test_describe_paths_resolve_to_the_found_modules(family: str) -> None:
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    described = parts.describe()
    assert model.get_submodule(_path_of(described["final_norm"])) is parts.final_norm
    assert model.get_submodule(_path_of(described["unembed"])) is parts.unembed
    assert model.get_submodule(_path_of(described["embed"])) is parts.embed
    assert described["norm_type"] in described["final_norm"]
    if described["block_input_norm"] is not None:
        template = _path_of(described["block_input_norm"])
        for i, norm in enumerate(parts.block_input_norms):
            assert model.get_submodule(template.replace("{i}", str(i))) is norm


def test_olmo2_blocks_have_no_input_norm() -> None:
    parts = model_parts(tiny_models.build_model("olmo2"))
    assert parts.block_input_norms == [None] * parts.n_layers
    assert parts.describe()["block_input_norm"] is None


@pytest.mark.parametrize(("family", "cap"), [("gemma2", 3.0), ("gemma3", 3.0), ("llama", None)])
def test_final_softcap_is_read_from_the_config(family: str, cap: float | None) -> None:
    assert model_parts(tiny_models.build_model(family)).final_logit_softcap == cap


def test_gemma_embedding_scale_and_gpt2_positions_are_reported() -> None:
    gemma = model_parts(tiny_models.build_model("gemma2")).describe()
    # sqrt(d_model), at most rounded once to fp32 on its way through the model.
    assert gemma["embed_scale"] == pytest.approx(32**0.5, rel=fp32_tol(1.0))
    gpt2 = model_parts(tiny_models.build_model("gpt2")).describe()
    assert _path_of(gpt2["position_embed"]) == "transformer.wpe"
    assert gpt2["unembed_tied_to_embed"] is True
    assert model_parts(tiny_models.build_model("llama")).describe()["unembed_tied_to_embed"] is False


def test_cohere_and_granite_multipliers() -> None:
    cohere = transformers.CohereForCausalLM(transformers.CohereConfig(**_SMALL, logit_scale=0.5))
    granite = transformers.GraniteForCausalLM(transformers.GraniteConfig(**_SMALL, logits_scaling=4.0))
    assert model_parts(cohere).logit_multiplier == 0.5
    assert model_parts(granite).logit_multiplier == 0.25
    assert model_parts(tiny_models.build_model("llama")).logit_multiplier is None


def test_gemma3_conditional_generation_uses_language_model_and_no_softcap() -> None:
    text = transformers.Gemma3TextConfig(**_SMALL, head_dim=8, final_logit_softcapping=3.0)
    vision = transformers.SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=28, patch_size=14,
    )
    model = transformers.Gemma3ForConditionalGeneration(
        transformers.Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=4)
    )
    parts = model_parts(model)
    assert parts.blocks[0] is model.model.language_model.layers[0]
    assert parts.final_norm is model.model.language_model.norm
    # This class's forward applies lm_head only; the invariant test checks that claim.
    assert parts.final_logit_softcap is None


def test_unknown_architecture_is_refused_by_name() -> None:
    config = transformers.BloomConfig(vocab_size=64, hidden_size=16, n_layer=1, n_head=2)
    model = transformers.BloomForCausalLM(config)
    with pytest.raises(UnsupportedArchitectureError, match="BloomForCausalLM") as caught:
        model_parts(model)
    assert "LlamaForCausalLM" in caught.value.message
    assert "\n" not in caught.value.message


def test_headless_class_of_a_supported_family_is_refused() -> None:
    model = transformers.LlamaForSequenceClassification(transformers.LlamaConfig(**_SMALL))
    with pytest.raises(UnsupportedArchitectureError, match="LlamaForSequenceClassification"):
        model_parts(model)


class LlamaForCausalLM(transformers.LlamaForCausalLM):
    """Same name as transformers' class, defined outside it, like remote code would be."""


def test_class_from_outside_transformers_is_refused() -> None:
    model = LlamaForCausalLM(transformers.LlamaConfig(**_SMALL))
    with pytest.raises(UnsupportedArchitectureError, match="trust_remote_code"):
        model_parts(model)


def test_supported_classes_cover_the_tiny_families() -> None:
    for family in tiny_models.FAMILIES:
        assert type(tiny_models.build_model(family)).__name__ in SUPPORTED_CLASSES


def test_parts_follow_the_model_dtype() -> None:
    model = tiny_models.build_model("llama").to(torch.bfloat16)
    assert model_parts(model).unembed.weight.dtype == torch.bfloat16


def test_model_wrapped_by_a_booted_bridge_is_refused(tmp_path) -> None:
    """Booting TransformerBridge swaps the model's modules for wrappers in place."""
    from transformer_lens.model_bridge import TransformerBridge

    folder = tiny_models.save_checkpoint("llama", tmp_path / "llama")
    model = transformers.AutoModelForCausalLM.from_pretrained(folder).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model_parts(model)
    TransformerBridge.boot_transformers("tiny-llama", hf_model=model, tokenizer=tokenizer, device="cpu")
    with pytest.raises(UnsupportedArchitectureError, match="TransformerBridge"):
        model_parts(model)


# --- what the hook points need inside each block --------------------------------------------------

_POST_NORM_FAMILIES = ("gemma2", "gemma3", "gemma3_multimodal", "olmo2")
_PARALLEL_FAMILIES = ("phi", "cohere", "gpt_neox")


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_block_parts_are_modules_of_each_block_and_their_paths_resolve(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    described = parts.describe_blocks()
    assert len(parts.block_parts) == parts.n_layers
    for i, (block, inner) in enumerate(zip(parts.blocks, parts.block_parts, strict=True)):
        inside = {id(m) for m in block.modules()}
        for key in ("attn", "o_proj", "attn_post_norm", "mlp_input_norm", "mlp", "mlp_post_norm"):
            module = getattr(inner, key)
            if module is None:
                assert described[key] is None
                continue
            assert id(module) in inside, key
            assert model.get_submodule(_path_of(described[key]).replace("{i}", str(i))) is module
        assert id(inner.o_proj) in {id(m) for m in inner.attn.modules()}
        assert inner.o_proj_weight().shape == (parts.d_model, parts.n_heads * parts.d_head)


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_post_norms_parallel_blocks_and_multipliers_per_class(family: str) -> None:
    parts = model_parts(tiny_models.build_any(family))
    inner = parts.block_parts[0]
    has_post_norms = family in _POST_NORM_FAMILIES
    assert (inner.attn_post_norm is not None) == has_post_norms
    assert (inner.mlp_post_norm is not None) == has_post_norms
    assert parts.parallel_blocks == (family in _PARALLEL_FAMILIES)
    assert parts.residual_multiplier == (0.5 if family == "granite" else None)
    # OLMo-2's MLP reads the residual raw; every other MLP reads through a norm.
    assert (inner.mlp_input_norm is None) == (family == "olmo2")
    if parts.parallel_blocks and parts.block_input_norms[0] is not None and family != "gpt_neox":
        assert inner.mlp_input_norm is parts.block_input_norms[0]  # Phi, Cohere: one norm feeds both


def test_post_attention_layernorm_means_different_things_per_class() -> None:
    """Gemma 1 and Llama use the name for the pre-MLP norm; Gemma 2/3 for a norm after attention."""
    gemma1 = tiny_models.build_any("gemma")
    inner = model_parts(gemma1).block_parts[0]
    assert inner.mlp_input_norm is gemma1.model.layers[0].post_attention_layernorm
    assert inner.attn_post_norm is None
    model = tiny_models.build_any("gemma2")
    inner = model_parts(model).block_parts[0]
    assert inner.attn_post_norm is model.model.layers[0].post_attention_layernorm
    assert inner.mlp_input_norm is model.model.layers[0].pre_feedforward_layernorm
    llama = tiny_models.build_any("llama")
    assert model_parts(llama).block_parts[0].mlp_input_norm is llama.model.layers[0].post_attention_layernorm
    assert model_parts(llama).block_parts[0].attn_post_norm is None


def test_gpt2_output_projection_is_a_transposed_conv1d() -> None:
    model = tiny_models.build_any("gpt2")
    inner = model_parts(model).block_parts[0]
    assert inner.o_proj is model.transformer.h[0].attn.c_proj and inner.o_proj_transposed
    assert inner.o_proj_weight().data_ptr() == inner.o_proj.weight.data_ptr()
    x = torch.randn(2, 32)
    with torch.no_grad():
        # addmm against matmul then add: the same 32-term dot products, summed by other kernels.
        tol = fp32_tol(dot_scale(x, inner.o_proj_weight(), inner.o_proj_bias()), n_terms=x.shape[-1])
        expected = x @ inner.o_proj_weight().T + inner.o_proj_bias()
        torch.testing.assert_close(inner.o_proj(x), expected, rtol=0, atol=tol)
    phi = model_parts(tiny_models.build_any("phi")).block_parts[0]
    assert not phi.o_proj_transposed and type(phi.o_proj).__name__ == "Linear"


@pytest.mark.parametrize(
    ("config", "parallel"),
    [
        (transformers.StableLmConfig(**_SMALL, use_parallel_residual=True), True),
        (transformers.StableLmConfig(**_SMALL, use_parallel_residual=False), False),
        (transformers.GPTNeoXConfig(**{k: v for k, v in _SMALL.items() if k != "num_key_value_heads"},
                                    use_parallel_residual=False), False),
    ],
)
def test_parallel_residual_follows_the_config(config: transformers.PretrainedConfig, parallel: bool) -> None:
    model = transformers.AutoModelForCausalLM.from_config(config)
    parts = model_parts(model)
    assert parts.parallel_blocks is parallel
    # StableLM's parallel block has no post_attention_layernorm; its MLP reads the input norm.
    if parallel:
        assert parts.block_parts[0].mlp_input_norm is parts.block_input_norms[0]


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_head_counts_match_the_config(family: str) -> None:
    model = tiny_models.build_any(family)
    parts = model_parts(model)
    config = model.config.get_text_config()
    assert parts.n_heads == config.num_attention_heads == 4
    assert parts.n_kv_heads == (4 if family in ("gpt2", "phi", "gpt_neox") else 2)
    assert parts.d_head == 8


# --- what each norm computes (for a norm applied at a frozen scale) -------------------------------


def _apply_form(form: NormForm, x: Tensor) -> Tensor:
    """The form's arithmetic by hand, in float64."""
    x = x.double()
    if form.centred:
        x = x - x.mean(-1, keepdim=True)
    y = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + form.eps)
    if form.weight is not None:
        y = y * (form.weight.detach().double() + form.weight_offset)
    return y + form.bias.detach().double() if form.bias is not None else y


@pytest.mark.parametrize("family", tiny_models.ALL_FAMILIES)
def test_norm_form_reproduces_every_norm_of_the_family(family: str) -> None:
    parts = model_parts(tiny_models.build_any(family))
    inner = parts.block_parts[0]
    norms = [parts.final_norm, parts.block_input_norms[0], inner.attn_post_norm, inner.mlp_input_norm,
             inner.mlp_post_norm]
    # Off-centre inputs, so a form that forgets (or invents) the centring is caught.
    x = 3.0 * torch.randn(4, parts.d_model, generator=torch.Generator().manual_seed(0)) + 0.7
    for norm in (norm for norm in norms if norm is not None):
        form = norm_form(norm)
        assert form.norm_class == type(norm).__name__
        with torch.no_grad():
            own = norm(x).double()
        torch.testing.assert_close(_apply_form(form, x), own, rtol=0, atol=fp32_tol(max_abs(own), parts.d_model))


def test_norm_form_knows_each_class_quirk() -> None:
    def final_form(family: str) -> tuple[NormForm, transformers.PretrainedConfig]:
        model = tiny_models.build_any(family)
        norm = model_parts(model).final_norm
        assert norm is not None
        return norm_form(norm), model.config.get_text_config()

    gemma, config = final_form("gemma2")
    assert (gemma.centred, gemma.weight_offset, gemma.eps, gemma.bias) == (False, 1.0, config.rms_norm_eps, None)
    llama, config = final_form("llama")
    assert (llama.centred, llama.weight_offset, llama.eps, llama.bias) == (False, 0.0, config.rms_norm_eps, None)
    gpt2, config = final_form("gpt2")
    assert gpt2.centred and gpt2.bias is not None and gpt2.eps == config.layer_norm_epsilon
    olmo, _ = final_form("olmo")
    assert (olmo.centred, olmo.weight, olmo.bias, olmo.eps) == (True, None, None, 1e-5)
    cohere, config = final_form("cohere")
    assert cohere.centred and cohere.weight is not None and cohere.bias is None
    assert cohere.eps == config.layer_norm_eps


class LlamaRMSNorm(nn.Module):
    """Same name as transformers' class, defined outside it: its arithmetic is unknown."""


@pytest.mark.parametrize("module", [nn.Identity(), nn.BatchNorm1d(4), nn.LayerNorm((2, 4)), LlamaRMSNorm()])
def test_norm_form_refuses_a_module_of_unknown_arithmetic(module: nn.Module) -> None:
    with pytest.raises(UnsupportedArchitectureError, match=type(module).__name__) as caught:
        norm_form(module)
    assert "\n" not in caught.value.message
