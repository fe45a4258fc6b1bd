"""Where each supported architecture keeps its blocks, norms and head.

This is the only module that knows transformers' attribute names. Everything
else asks ``model_parts(model)`` for a ``ModelParts`` and never touches the
model's attributes by name. A family is supported only when its head (final
norm, unembedding, bias, logit multiplier, softcap) is described here exactly
and a tiny checkpoint of it passes the last-layer invariant in
``tests/lens/test_lens_invariant.py``; anything else is refused rather than decoded
wrongly.

``ModelParts.block_parts`` also names what sits inside each block (attention,
its output projection, post-norms, MLP), whether the blocks are parallel, and
Granite's residual multiplier: what ``hooks.hook_points`` needs to put each
TransformerLens-named hook point on the right tensor. Each entry follows the
class's decoder-layer ``forward`` in transformers 5.23.

``norm_form(norm)`` says what each supported norm class computes (RMSNorm or
mean-centred LayerNorm, its epsilon, Gemma's ``1 + w`` scale), for code that
applies a norm with its scale frozen (direct logit attribution).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from torch import Tensor, nn
from transformers.pytorch_utils import Conv1D

from layers_core.errors import UnsupportedArchitectureError

_TRANSFORMERS_MODULE_PREFIX = "transformers.models."
# Where the classes of the parts may come from: transformers' own modelling code (GPT-2's
# Conv1D lives in transformers.pytorch_utils) or torch.nn.
_OWN_MODULE_PREFIXES = (_TRANSFORMERS_MODULE_PREFIX, "transformers.pytorch_utils", "torch.nn.")


def _no_multiplier(config: Any) -> float | None:
    return None


def _cohere_multiplier(config: Any) -> float | None:
    # CohereForCausalLM.forward: logits = lm_head(h) * logit_scale.
    return float(config.logit_scale)


def _granite_multiplier(config: Any) -> float | None:
    # GraniteForCausalLM.forward: logits = lm_head(h) / logits_scaling.
    return 1.0 / float(config.logits_scaling)


def _sequential(config: Any) -> bool:
    return False


def _always_parallel(config: Any) -> bool:
    # PhiDecoderLayer / CohereDecoderLayer: x + attn(ln(x)) + mlp(ln(x)), whatever the config says.
    return True


def _parallel_if_configured(config: Any) -> bool:
    # GPTNeoXLayer / StableLmDecoderLayer branch on config.use_parallel_residual.
    return bool(config.use_parallel_residual)


def _granite_residual_multiplier(config: Any) -> float | None:
    # GraniteDecoderLayer.forward: residual + sublayer_out * residual_multiplier, after attention and MLP.
    return float(config.residual_multiplier)


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
    # Inside each block (relative to the block; o_proj relative to the attention module).
    attn: str = "self_attn"
    o_proj: str = "o_proj"
    # Norm applied to the attention output before it joins the residual (Gemma 2/3, OLMo-2 only).
    attn_post_norm: str | None = None
    # Norm the MLP reads through in a sequential block; None when the MLP reads the residual raw.
    mlp_input_norm: str | None = "post_attention_layernorm"
    # Norm the MLP reads through when the block is parallel (shared with attention on Phi, Cohere, StableLM).
    parallel_mlp_input_norm: str | None = "input_layernorm"
    mlp: str = "mlp"
    # Norm applied to the MLP output before it joins the residual (Gemma 2/3, OLMo-2 only).
    mlp_post_norm: str | None = None
    parallel: Callable[[Any], bool] = _sequential
    residual_multiplier: Callable[[Any], float | None] = _no_multiplier


_LLAMA_LIKE = _Layout(base="model")
# Gemma 2/3 name their pre-MLP norm pre_feedforward_layernorm; their post_attention_layernorm
# (Gemma2DecoderLayer.forward) normalises the attention output before the residual add.
# Gemma 1, Llama, OLMo, ... use the name post_attention_layernorm for the pre-MLP norm instead.
_GEMMA_POST_NORMS = replace(
    _LLAMA_LIKE, attn_post_norm="post_attention_layernorm", mlp_input_norm="pre_feedforward_layernorm",
    mlp_post_norm="post_feedforward_layernorm",
)
_GEMMA_SOFTCAP = replace(_GEMMA_POST_NORMS, applies_softcap=True)

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
    "Gemma3ForConditionalGeneration": replace(_GEMMA_POST_NORMS, base="model.language_model"),
    "OlmoForCausalLM": _LLAMA_LIKE,
    # StableLmDecoderLayer: post_attention_layernorm is None when use_parallel_residual.
    "StableLmForCausalLM": replace(_LLAMA_LIKE, parallel=_parallel_if_configured),
    # OLMo-2 normalises after attention and MLP: its blocks have no input norm, and the MLP
    # reads the residual raw (Olmo2DecoderLayer.forward).
    "Olmo2ForCausalLM": replace(
        _LLAMA_LIKE, block_input_norm=None, attn_post_norm="post_attention_layernorm", mlp_input_norm=None,
        mlp_post_norm="post_feedforward_layernorm",
    ),
    "PhiForCausalLM": replace(
        _LLAMA_LIKE, final_norm="final_layernorm", o_proj="dense", parallel=_always_parallel
    ),
    "CohereForCausalLM": replace(_LLAMA_LIKE, multiplier=_cohere_multiplier, parallel=_always_parallel),
    "GraniteForCausalLM": replace(
        _LLAMA_LIKE, multiplier=_granite_multiplier, residual_multiplier=_granite_residual_multiplier
    ),
    # GPT-2's c_proj is a Conv1D: its weight is [in, out], the transpose of nn.Linear's.
    "GPT2LMHeadModel": _Layout(
        base="transformer", blocks="h", embed="wte", final_norm="ln_f",
        block_input_norm="ln_1", position_embed="wpe", attn="attn", o_proj="c_proj", mlp_input_norm="ln_2",
    ),
    # GPTNeoXLayer: the MLP reads post_attention_layernorm in both modes (of x when parallel).
    "GPTNeoXForCausalLM": _Layout(
        base="gpt_neox", embed="embed_in", final_norm="final_layer_norm", attn="attention", o_proj="dense",
        parallel_mlp_input_norm="post_attention_layernorm", parallel=_parallel_if_configured,
    ),
}

SUPPORTED_CLASSES: tuple[str, ...] = tuple(sorted(_LAYOUTS))


@dataclass(frozen=True)
class BlockParts:
    """The modules inside one block that the hook points read and write.

    Attributes:
        attn: The attention module; ``attn(...)[0]`` is its output, ``[1]`` its
            probabilities under eager attention (None under sdpa).
        o_proj: The attention output projection; its input is the heads' outputs
            concatenated, ``[B, T, n_heads * d_head]``.
        attn_post_norm: The norm the attention output passes before the residual add
            (Gemma 2/3, OLMo-2), else None.
        mlp_input_norm: The norm the MLP reads through (in a parallel block: of the
            block input), else None (OLMo-2's MLP reads the residual raw).
        mlp: The MLP module.
        mlp_post_norm: The norm the MLP output passes before the residual add
            (Gemma 2/3, OLMo-2), else None.
        o_proj_transposed: True when ``o_proj`` is transformers' ``Conv1D`` (GPT-2),
            whose weight is ``[in, out]``.
    """

    attn: nn.Module
    o_proj: nn.Module
    attn_post_norm: nn.Module | None
    mlp_input_norm: nn.Module | None
    mlp: nn.Module
    mlp_post_norm: nn.Module | None
    o_proj_transposed: bool = False

    def o_proj_weight(self) -> Tensor:
        """The output projection as ``[d_model, n_heads * d_head]`` (nn.Linear's layout), not a copy."""
        weight: Tensor = self.o_proj.weight  # type: ignore[assignment]
        return weight.t() if self.o_proj_transposed else weight

    def o_proj_bias(self) -> Tensor | None:
        """The output projection's bias ``[d_model]``, or None."""
        bias = getattr(self.o_proj, "bias", None)
        return bias if isinstance(bias, Tensor) else None


@dataclass
class ModelParts:
    """The modules a logit lens and the hook points need, found on one loaded model."""

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
    # One entry per block, in block order.
    block_parts: list[BlockParts] = field(default_factory=list)
    # Attention and MLP both read the block input: out = x + attn(x) + mlp(x), no resid_mid.
    parallel_blocks: bool = False
    # Granite scales each sublayer output before the residual add; None elsewhere.
    residual_multiplier: float | None = None
    n_heads: int = 0
    n_kv_heads: int = 0
    d_head: int = 0

    @property
    def norm_type(self) -> str:
        """Class name of the final norm ("none" when the model has none)."""
        return type(self.final_norm).__name__ if self.final_norm is not None else "none"

    def describe(self) -> dict:
        """What the lens found: module paths and classes, shapes and head transforms."""

        def where(key: str, module: nn.Module | None) -> str | None:
            if module is None:
                return None
            return f"{self.module_paths.get(key, '?')} ({type(module).__name__})"

        bias = getattr(self.unembed, "bias", None)
        input_norms = {type(n).__name__ for n in self.block_input_norms if n is not None}
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

    def describe_blocks(self) -> dict[str, Any]:
        """What the hook points found inside a block: module paths and classes, head shapes, block kind.

        Kept apart from ``describe`` (what the lens uses), so 001's diagnostics stay as they were.
        """
        return {
            **self._describe_block_parts(),
            "parallel_blocks": self.parallel_blocks,
            "residual_multiplier": self.residual_multiplier,
            "n_heads": self.n_heads,
            "n_kv_heads": self.n_kv_heads,
            "d_head": self.d_head,
        }

    def _describe_block_parts(self) -> dict[str, str | None]:
        described: dict[str, str | None] = {}
        for key in _BLOCK_PART_KEYS:
            module = getattr(self.block_parts[0], key) if self.block_parts else None
            path = self.module_paths.get(key)
            described[key] = f"{path} ({type(module).__name__})" if module is not None and path else None
        return described


_BLOCK_PART_KEYS: tuple[str, ...] = ("attn", "o_proj", "attn_post_norm", "mlp_input_norm", "mlp", "mlp_post_norm")


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


def _module_paths(
    model: nn.Module, found: dict[str, nn.Module | None], per_block: dict[str, nn.Module | None]
) -> dict[str, str]:
    """Dotted path of each found module, looked up on the model; block 0's modules as '{i}' templates."""
    names = {id(module): name for name, module in model.named_modules(remove_duplicate=False)}
    paths = {key: names[id(mod)] for key, mod in found.items() if mod is not None and id(mod) in names}
    first = f"{paths['blocks']}.0."
    for key, module in per_block.items():
        if module is not None and id(module) in names:
            paths[key] = names[id(module)].replace(first, f"{paths['blocks']}.{{i}}.", 1)
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
    config: Any = model.config
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
    blocks = list(block_list.children())
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

    text_config = config.get_text_config()
    parallel = layout.parallel(text_config)
    block_parts = [_block_parts(block, layout, parallel) for block in blocks]
    n_heads, n_kv_heads, d_head = _head_shape(model, text_config, block_parts[0])

    _check_not_wrapped(model, {"block": blocks[0], "embed": embed, "final_norm": final_norm,
                               "unembed": unembed, "block input norm": input_norms[0],
                               **{key: getattr(block_parts[0], key) for key in _BLOCK_PART_KEYS}})
    paths = _module_paths(
        model,
        {"blocks": block_list, "embed": embed, "final_norm": final_norm, "unembed": unembed,
         "position_embed": position_embed},
        {"block_input_norm": input_norms[0], **{key: getattr(block_parts[0], key) for key in _BLOCK_PART_KEYS}},
    )
    return ModelParts(
        family=str(config.model_type),
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
        block_parts=block_parts,
        parallel_blocks=parallel,
        residual_multiplier=layout.residual_multiplier(text_config),
        n_heads=n_heads,
        n_kv_heads=n_kv_heads,
        d_head=d_head,
    )


def _block_parts(block: nn.Module, layout: _Layout, parallel: bool) -> BlockParts:
    attn = _resolve(block, layout.attn)
    o_proj = _resolve(attn, layout.o_proj)
    mlp_input_norm = layout.parallel_mlp_input_norm if parallel else layout.mlp_input_norm
    return BlockParts(
        attn=attn,
        o_proj=o_proj,
        attn_post_norm=_resolve(block, layout.attn_post_norm) if layout.attn_post_norm else None,
        mlp_input_norm=_resolve(block, mlp_input_norm) if mlp_input_norm else None,
        mlp=_resolve(block, layout.mlp),
        mlp_post_norm=_resolve(block, layout.mlp_post_norm) if layout.mlp_post_norm else None,
        o_proj_transposed=isinstance(o_proj, Conv1D),
    )


# --- what a norm module computes (for a norm frozen at one forward pass's scale) --------------------


@dataclass(frozen=True)
class NormForm:
    """What a norm module computes: ``y = w_eff * c(x) / sqrt(mean(c(x)**2) + eps) + bias``.

    ``c(x) = x - mean(x)`` for a LayerNorm (``centred``), ``c(x) = x`` for an RMSNorm.
    ``w_eff = weight + weight_offset`` (ones when the module has no weight).

    Attributes:
        norm_class: The module's class name.
        centred: True for LayerNorm forms (the mean is subtracted first).
        eps: Added to the mean square (the variance) under the root.
        weight: The module's scale parameter ``[d]``, or None (OLMo's LayerNorm has none).
        weight_offset: 1.0 for Gemma's ``(1 + w)`` RMSNorm, else 0.0.
        bias: The module's bias ``[d]``, or None.
    """

    norm_class: str
    centred: bool
    eps: float
    weight: Tensor | None
    weight_offset: float
    bias: Tensor | None


@dataclass(frozen=True)
class _NormLayout:
    centred: bool
    # The attribute holding epsilon, or the constant the class hard-codes.
    eps: str | float
    weight_offset: float = 0.0


_RMS = _NormLayout(centred=False, eps="variance_epsilon")
# Gemma's RMSNorms scale by (1 + weight) and keep epsilon as `eps` (GemmaRMSNorm.forward).
_GEMMA_RMS = _NormLayout(centred=False, eps="eps", weight_offset=1.0)
# Keyed by class name, each following its forward in transformers 5.23; torch.nn.LayerNorm (GPT-2,
# Phi, StableLM, GPT-NeoX) is recognised by type.
_NORM_LAYOUTS: dict[str, _NormLayout] = {
    "LlamaRMSNorm": _RMS,
    "MistralRMSNorm": _RMS,
    "Qwen2RMSNorm": _RMS,
    "Qwen3RMSNorm": _RMS,
    "Phi3RMSNorm": _RMS,
    "Olmo2RMSNorm": _RMS,
    "GraniteRMSNorm": _RMS,
    "GemmaRMSNorm": _GEMMA_RMS,
    "Gemma2RMSNorm": _GEMMA_RMS,
    "Gemma3RMSNorm": _GEMMA_RMS,
    # Mean-centred, weight only.
    "CohereLayerNorm": _NormLayout(centred=True, eps="variance_epsilon"),
    # F.layer_norm with no weight or bias and eps=1e-5 written into OlmoLayerNorm.forward.
    "OlmoLayerNorm": _NormLayout(centred=True, eps=1e-5),
}
_TORCH_LAYER_NORM = _NormLayout(centred=True, eps="eps")


def norm_form(norm: nn.Module) -> NormForm:
    """The form of a supported model's norm module (final norm or a post-norm), with its parameters.

    Args:
        norm: A norm module found by ``model_parts``.

    Returns:
        Its ``NormForm`` (parameters are the module's own tensors, not copies).

    Raises:
        UnsupportedArchitectureError: A class whose arithmetic is not described here.
    """
    name = type(norm).__name__
    if type(norm) is nn.LayerNorm:
        if len(norm.normalized_shape) != 1:
            raise UnsupportedArchitectureError(f"{name}: normalises over {norm.normalized_shape}, not one dimension.")
        layout = _TORCH_LAYER_NORM
    elif name in _NORM_LAYOUTS and type(norm).__module__.startswith(_TRANSFORMERS_MODULE_PREFIX):
        layout = _NORM_LAYOUTS[name]
    else:
        raise UnsupportedArchitectureError(
            f"{name}: not a norm whose arithmetic is known (known: LayerNorm, {', '.join(sorted(_NORM_LAYOUTS))})."
        )
    eps = layout.eps if isinstance(layout.eps, float) else float(getattr(norm, layout.eps))
    weight = getattr(norm, "weight", None)
    bias = getattr(norm, "bias", None)
    return NormForm(
        norm_class=name,
        centred=layout.centred,
        eps=eps,
        weight=weight if isinstance(weight, Tensor) else None,
        weight_offset=layout.weight_offset,
        bias=bias if isinstance(bias, Tensor) else None,
    )


def _head_shape(model: nn.Module, text_config: Any, first: BlockParts) -> tuple[int, int, int]:
    """(n_heads, n_kv_heads, d_head), checked against the output projection's input width."""
    n_heads = int(text_config.num_attention_heads)
    # GPT-2 and GPT-NeoX configs have no num_key_value_heads: every head has its own K and V.
    n_kv_heads = int(getattr(text_config, "num_key_value_heads", None) or n_heads)
    width = int(first.o_proj_weight().shape[1])
    d_head = width // n_heads
    configured = getattr(text_config, "head_dim", None)
    if width % n_heads or (configured is not None and int(configured) != d_head) or n_heads % n_kv_heads:
        raise _unsupported(
            model, f"its output projection reads {width} features, which does not split into "
            f"{n_heads} heads (head_dim {configured}, {n_kv_heads} KV heads)"
        )
    return n_heads, n_kv_heads, d_head
