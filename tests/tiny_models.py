"""Tiny random-weight checkpoints of real transformers architectures, built offline.

Each family gets a real transformers config with a few small layers, a real
byte-level BPE tokenizer trained here on a few sentences, and weights saved as
safetensors into a folder, so tests load it by path exactly as a user's local
checkpoint would be loaded. ``perturb=True`` moves the norm weights and biases
away from their init (1 or 0) and scales the unembedding so logits are large
enough that a final-logit softcap really bites.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import torch
import transformers
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from layers_core.models.architecture import ModelParts, model_parts

TRAINING_TEXT = [
    "The capital of Germany is Berlin.",
    "The capital of France is Paris.",
    "Berlin is the capital of Germany.",
    "Question: What is the capital of Germany? Answer: Berlin",
    "Give the city name only, plain text. The capital of Germany is called simply Berlin.",
    "Madrid, Rome, Vienna, Warsaw, Lisbon and Athens are capitals in Europe.",
    "Hello world, this is a tiny tokenizer for tests.",
]
VOCAB_SIZE = 320
SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>"]

# Small shapes shared by every family: 3 layers, d_model 32, 4 heads (2 KV heads).
_COMMON = dict(
    vocab_size=VOCAB_SIZE,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    tie_word_embeddings=False,
)


def _gemma_extra() -> dict:
    return dict(head_dim=8, query_pre_attn_scalar=8, sliding_window=16)


def _configs() -> dict[str, Callable[[], transformers.PretrainedConfig]]:
    """One config builder per family name."""
    return {
        "llama": lambda: transformers.LlamaConfig(**_COMMON),
        "mistral": lambda: transformers.MistralConfig(**_COMMON, sliding_window=16),
        "qwen2": lambda: transformers.Qwen2Config(**_COMMON),
        "qwen3": lambda: transformers.Qwen3Config(**_COMMON, head_dim=8),
        "gemma2": lambda: transformers.Gemma2Config(
            **_COMMON, **_gemma_extra(), final_logit_softcapping=3.0, attn_logit_softcapping=5.0
        ),
        "gemma3": lambda: transformers.Gemma3TextConfig(
            **_COMMON, **_gemma_extra(), final_logit_softcapping=3.0
        ),
        "gpt2": lambda: transformers.GPT2Config(
            vocab_size=VOCAB_SIZE, n_embd=32, n_layer=3, n_head=4, n_positions=128,
            bos_token_id=1, eos_token_id=2, tie_word_embeddings=True,
        ),
        "phi3": lambda: transformers.Phi3Config(**_COMMON),
        "olmo2": lambda: transformers.Olmo2Config(**_COMMON),
    }


FAMILIES: tuple[str, ...] = tuple(_configs())
# Families whose model class is not the Auto mapping's default for the config.
_MODEL_CLASS = {"gemma3": "Gemma3ForCausalLM"}


def build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on TRAINING_TEXT, padded to VOCAB_SIZE ids."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(TRAINING_TEXT, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    return fast


def _perturb(model: torch.nn.Module, generator: torch.Generator) -> None:
    """Move every norm parameter off its init and make the logits large."""
    with torch.no_grad():
        for name, param in model.named_parameters():
            lowered = name.lower()
            if "norm" in lowered or ".ln_" in lowered or lowered.startswith("ln_"):
                param.add_(0.3 * torch.randn(param.shape, generator=generator))
        head = model.get_output_embeddings()
        head.weight.mul_(40.0)


def build_model(family: str, seed: int = 0, perturb: bool = True) -> torch.nn.Module:
    """A random-weight model of ``family`` in fp32, eval mode."""
    config = _configs()[family]()
    torch.manual_seed(seed)
    cls_name = _MODEL_CLASS.get(family)
    if cls_name:
        model = getattr(transformers, cls_name)(config)
    else:
        model = transformers.AutoModelForCausalLM.from_config(config)
    model = model.float().eval()
    if perturb:
        _perturb(model, torch.Generator().manual_seed(seed + 1))
    return model


def save_checkpoint(family: str, folder: Path, seed: int = 0, perturb: bool = True) -> Path:
    """Build ``family`` and save it with its tokenizer as a safetensors checkpoint in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model = build_model(family, seed=seed, perturb=perturb)
    model.save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    return folder


def _extra_configs() -> dict[str, transformers.PretrainedConfig]:
    """Families supported beyond tiny_models.FAMILIES, each with a head quirk set to bite."""
    common = dict(_COMMON)
    no_gqa = {k: v for k, v in common.items() if k != "num_key_value_heads"}
    text = transformers.Gemma3TextConfig(
        **common, **_gemma_extra(), final_logit_softcapping=3.0
    )
    vision = transformers.SiglipVisionConfig(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        image_size=28, patch_size=14,
    )
    return {
        "gemma": transformers.GemmaConfig(**common, head_dim=8),
        "olmo": transformers.OlmoConfig(**common),
        "phi": transformers.PhiConfig(**no_gqa),
        "stablelm": transformers.StableLmConfig(**common),
        "gpt_neox": transformers.GPTNeoXConfig(**no_gqa),
        "cohere": transformers.CohereConfig(**common, logit_scale=0.5),
        "granite": transformers.GraniteConfig(
            **common, logits_scaling=3.0, embedding_multiplier=3.0, residual_multiplier=0.5
        ),
        "gemma3_multimodal": transformers.Gemma3Config(
            text_config=text, vision_config=vision, mm_tokens_per_image=4
        ),
    }


EXTRA_FAMILIES = tuple(_extra_configs())


def _build_extra(family: str) -> torch.nn.Module:
    torch.manual_seed(0)
    model = transformers.AutoModelForCausalLM.from_config(_extra_configs()[family]).float().eval()
    generator = torch.Generator().manual_seed(1)
    _perturb(model, generator)
    head = model.get_output_embeddings()
    if head.bias is not None:
        # Zero bias would let a lens that forgets it pass.
        with torch.no_grad():
            head.bias.add_(3.0 * torch.randn(head.bias.shape, generator=generator))
    return model


def build_any(family: str) -> torch.nn.Module:
    """A perturbed random-weight model of any supported family (``FAMILIES + EXTRA_FAMILIES``)."""
    return build_model(family) if family in FAMILIES else _build_extra(family)


@functools.cache
def shared_tokenizer() -> PreTrainedTokenizerFast:
    """One ``build_tokenizer()`` for the whole session (read-only: do not change it)."""
    return build_tokenizer()


@functools.cache
def shared_model(family: str) -> tuple[torch.nn.Module, ModelParts]:
    """One ``build_any(family)`` and its parts for the whole session (read-only: tests that change a model
    build their own)."""
    model = build_any(family)
    return model, model_parts(model)


ALL_FAMILIES: tuple[str, ...] = FAMILIES + EXTRA_FAMILIES
