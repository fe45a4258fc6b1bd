"""Where each supported architecture keeps its blocks, norms and head.

This is the only module that knows transformers' attribute names. Everything
else asks ``model_parts(model)`` for a ``ModelParts`` and never touches the
model's attributes by name. A family is supported only when its head (final
norm, unembedding, bias, logit multiplier, softcap) is described here exactly
and a tiny checkpoint of it passes the last-layer invariant in
``tests/test_lens_invariant.py``; anything else is refused rather than decoded
wrongly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from layers_core.errors import UnsupportedArchitectureError

_TRANSFORMERS_MODULE_PREFIX = "transformers.models."
# Where the classes of the parts may come from: transformers' own modelling code or torch.nn.
_OWN_MODULE_PREFIXES = (_TRANSFORMERS_MODULE_PREFIX, "torch.nn.")


def _no_multiplier(config: Any) -> float | None:
    return None


def _cohere_multiplier(config: Any) -> float | None:
    # CohereForCausalLM.forward: logits = lm_head(h) * logit_scale.
    return float(config.logit_scale)


def _granite_multiplier(config: Any) -> float | None:
    # GraniteForCausalLM.forward: logits = lm_head(h) / logits_scaling.
    return 1.0 / float(config.logits_scaling)


@dataclass(frozen=True)
class _Layout:
    """Attribute paths of one model class, relative to the causal-LM module."""

    base: str
    blocks: str = "layers"
    embed: str = "embed_tokens"
    final_norm: str = "norm"
    block_input_norm: str | None = "input_layernorm"
    position_embed: str | None = None
    unembed: str = "lm_head"
    # Whether the class's forward applies config.final_logit_softcapping to its logits.
    applies_softcap: bool = False
    multiplier: Callable[[Any], float | None] = _no_multiplier


_LLAMA_LIKE = _Layout(base="model")
_GEMMA_SOFTCAP = replace(_LLAMA_LIKE, applies_softcap=True)

# Keyed by class name: the head's arithmetic lives in the class's forward, so the
# class, not the config's model_type, decides what the logits are.
_LAYOUTS: dict[str, _Layout] = {
    "LlamaForCausalLM": _LLAMA_LIKE,
    "MistralForCausalLM": _LLAMA_LIKE,
    "Qwen2ForCausalLM": _LLAMA_LIKE,
    "Qwen3ForCausalLM": _LLAMA_LIKE,
    "Phi3ForCausalLM": _LLAMA_LIKE,
    "GemmaForCausalLM": _LLAMA_LIKE,
    "Gemma2ForCausalLM": _GEMMA_SOFTCAP,
    "Gemma3ForCausalLM": _GEMMA_SOFTCAP,
    # Its head is lm_head alone: transformers does not apply the text config's softcap there.
    "Gemma3ForConditionalGeneration": _Layout(base="model.language_model"),
    "OlmoForCausalLM": _LLAMA_LIKE,
    "StableLmForCausalLM": _LLAMA_LIKE,
    # OLMo-2 normalises after attention and MLP: its blocks have no input norm.
    "Olmo2ForCausalLM": replace(_LLAMA_LIKE, block_input_norm=None),
    "PhiForCausalLM": replace(_LLAMA_LIKE, final_norm="final_layernorm"),
    "CohereForCausalLM": replace(_LLAMA_LIKE, multiplier=_cohere_multiplier),
    "GraniteForCausalLM": replace(_LLAMA_LIKE, multiplier=_granite_multiplier),
    "GPT2LMHeadModel": _Layout(
        base="transformer", blocks="h", embed="wte", final_norm="ln_f",
        block_input_norm="ln_1", position_embed="wpe",
    ),
    "GPTNeoXForCausalLM": _Layout(
        base="gpt_neox", embed="embed_in", final_norm="final_layer_norm"
    ),
}

SUPPORTED_CLASSES: tuple[str, ...] = tuple(sorted(_LAYOUTS))


@dataclass
class ModelParts:
    """The modules a logit lens needs, found on one loaded model."""

    family: str
    blocks: list[nn.Module]
    embed: nn.Module
    final_norm: nn.Module | None
    unembed: nn.Module
    block_input_norms: list[nn.Module | None]
    final_logit_softcap: float | None
    logit_multiplier: float | None
    n_layers: int
    d_model: int
    vocab_size: int
    position_embed: nn.Module | None = None
    architecture: str = ""
    # Dotted module paths of what was found, looked up on the model itself.
    module_paths: dict[str, str] = field(default_factory=dict)

    @property
    def norm_type(self) -> str:
        """Class name of the final norm ("none" when the model has none)."""
        return type(self.final_norm).__name__ if self.final_norm is not None else "none"

    def describe(self) -> dict:
        """What was found: module paths and classes, shapes and head transforms."""

        def where(key: str, module: nn.Module | None) -> str | None:
            if module is None:
                return None
            return f"{self.module_paths.get(key, '?')} ({type(module).__name__})"

        bias = getattr(self.unembed, "bias", None)
        input_norms = {type(n).__name__ if n is not None else None for n in self.block_input_norms}
        return {
            "architecture": self.architecture,
            "family": self.family,
            "blocks": f"{self.module_paths.get('blocks', '?')}[0..{self.n_layers - 1}] "
            f"({type(self.blocks[0]).__name__})",
            "embed": where("embed", self.embed),
            "embed_scale": _embed_scale(self.embed),
            "position_embed": where("position_embed", self.position_embed),
            "final_norm": where("final_norm", self.final_norm),
            "norm_type": self.norm_type,
            "block_input_norm": (
                f"{self.module_paths['block_input_norm']} ({', '.join(sorted(input_norms))})"
                if "block_input_norm" in self.module_paths
                else None
            ),
            "unembed": where("unembed", self.unembed),
            "unembed_bias": bias is not None,
            "unembed_tied_to_embed": _tied(self.unembed, self.embed),
            "final_logit_softcap": self.final_logit_softcap,
            "logit_multiplier": self.logit_multiplier,
            "n_layers": self.n_layers,
            "d_model": self.d_model,
            "vocab_size": self.vocab_size,
        }


def _embed_scale(embed: nn.Module) -> float | None:
    # Gemma's scaled embedding keeps sqrt(d_model) on the module; plain embeddings have none.
    scale = getattr(embed, "scalar_embed_scale", None)
    return float(scale) if scale is not None else None


def _tied(unembed: nn.Module, embed: nn.Module) -> bool:
    weight_u = getattr(unembed, "weight", None)
    weight_e = getattr(embed, "weight", None)
    if weight_u is None or weight_e is None:
        return False
    return weight_u.data_ptr() == weight_e.data_ptr()


def _unsupported(model: nn.Module, why: str, list_supported: bool = False) -> UnsupportedArchitectureError:
    message = f"{type(model).__name__}: {why}"
    if list_supported:
        message += f"; the logit lens supports {', '.join(SUPPORTED_CLASSES)}"
    return UnsupportedArchitectureError(message + ".")


def _resolve(model: nn.Module, path: str) -> nn.Module:
    module: Any = model
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            raise _unsupported(model, f"expected submodule '{path}' is missing", list_supported=True)
    return module


def _check_not_wrapped(model: nn.Module, found: dict[str, nn.Module | None]) -> None:
    # TransformerBridge.boot_transformers replaces the model's submodules in place with
    # wrappers; decoding through them would no longer be transformers' own arithmetic.
    for key, module in found.items():
        if module is None:
            continue
        origin = type(module).__module__
        if not origin.startswith(_OWN_MODULE_PREFIXES):
            raise _unsupported(
                model, f"its {key} is a {type(module).__name__} from {origin}, not transformers' own "
                "module (was a TransformerBridge booted on it?); take model_parts before wrapping "
                "the model, or load a fresh copy"
            )


def _module_paths(model: nn.Module, found: dict[str, nn.Module | None]) -> dict[str, str]:
    """Dotted path of each found module, looked up on the model (block 0's norm as '{i}')."""
    names = {id(module): name for name, module in model.named_modules(remove_duplicate=False)}
    paths = {key: names[id(mod)] for key, mod in found.items() if mod is not None and id(mod) in names}
    if "block_input_norm" in paths:
        first = f"{paths['blocks']}.0."
        paths["block_input_norm"] = paths["block_input_norm"].replace(first, f"{paths['blocks']}.{{i}}.", 1)
    return paths


def _final_softcap(model: nn.Module, layout: _Layout) -> float | None:
    if not layout.applies_softcap:
        return None
    value = getattr(model.config, "final_logit_softcapping", None)
    return float(value) if value is not None else None


def model_parts(model: nn.Module) -> ModelParts:
    """Find the blocks, embedding, norms and head of a transformers causal LM.

    Args:
        model: A transformers ``...ForCausalLM`` (or Gemma 3 conditional-generation) model.

    Returns:
        The modules and head constants the lens and the capture need.

    Raises:
        UnsupportedArchitectureError: The class is not one this module knows exactly,
            is remote code (its head may differ from transformers' own class), or its
            modules were replaced by wrappers (a TransformerBridge booted in place).
    """
    cls = type(model)
    layout = _LAYOUTS.get(cls.__name__)
    if layout is None:
        raise _unsupported(model, "architecture not supported", list_supported=True)
    if not cls.__module__.startswith(_TRANSFORMERS_MODULE_PREFIX):
        raise _unsupported(
            model, f"class comes from {cls.__module__}, not transformers' own implementation "
            "(load without trust_remote_code)"
        )
    base = _resolve(model, layout.base)
    block_list = _resolve(base, layout.blocks)
    blocks = list(block_list)
    embed = _resolve(base, layout.embed)
    final_norm = _resolve(base, layout.final_norm)
    unembed = _resolve(model, layout.unembed)
    position_embed = _resolve(base, layout.position_embed) if layout.position_embed else None
    if not blocks:
        raise _unsupported(model, f"'{layout.base}.{layout.blocks}' holds no decoder blocks")
    if layout.block_input_norm is None:
        input_norms: list[nn.Module | None] = [None] * len(blocks)
    else:
        input_norms = [_resolve(block, layout.block_input_norm) for block in blocks]
    weight = getattr(unembed, "weight", None)
    if weight is None or weight.ndim != 2:
        raise _unsupported(model, f"'{layout.unembed}' has no [vocab, d_model] weight")
    vocab_size, d_model = weight.shape

    _check_not_wrapped(model, {"block": blocks[0], "embed": embed, "final_norm": final_norm,
                               "unembed": unembed, "block input norm": input_norms[0]})
    paths = _module_paths(
        model,
        {"blocks": block_list, "embed": embed, "final_norm": final_norm, "unembed": unembed,
         "position_embed": position_embed, "block_input_norm": input_norms[0]},
    )
    return ModelParts(
        family=str(model.config.model_type),
        blocks=blocks,
        embed=embed,
        final_norm=final_norm,
        unembed=unembed,
        block_input_norms=input_norms,
        final_logit_softcap=_final_softcap(model, layout),
        logit_multiplier=layout.multiplier(model.config),
        n_layers=len(blocks),
        d_model=int(d_model),
        vocab_size=int(vocab_size),
        position_embed=position_embed,
        architecture=cls.__name__,
        module_paths=paths,
    )
