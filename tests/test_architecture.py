"""model_parts finds the right modules on real tiny checkpoints and refuses what it does not know."""

from __future__ import annotations

import pytest
import torch
import transformers

import tiny_models
from layers_core.architecture import SUPPORTED_CLASSES, model_parts
from layers_core.errors import UnsupportedArchitectureError

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
    assert gemma["embed_scale"] == pytest.approx(32**0.5)
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
