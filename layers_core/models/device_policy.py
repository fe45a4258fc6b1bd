"""The one place that decides which device and dtype a model runs in, and why.

``plan_device(config)`` estimates the model's size from its config alone (no
weights are read), compares it with the memory each device offers, and returns a
``DevicePlan`` whose ``reason`` sentence is built from the figures it compared.

Rules (``auto``):
- device: cuda, then mps, then cpu; the first where the estimate fits.
- dtype on cpu: float32; bfloat16 only when float32 does not fit.
- dtype on cuda: bfloat16 when the GPU supports it (the dtype open-weights models
  are trained and published in; float16 can overflow on them), else float16
  (float32 for Gemma, which overflows float16).
- dtype on mps: float16, except Gemma: bfloat16 (float32 where MPS lacks bfloat16).
- every mps plan warns about TransformerLens issue #1178.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from layers_core.errors import DeviceError, ModelTooLargeError
from layers_core.models.device_names import DEVICE_CHOICES, DTYPE_CHOICES, normalise_device, normalise_dtype
from layers_core.models.memory import MemoryInfo, probe_memory

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "DEVICE_CHOICES",
    "DTYPE_CHOICES",
    "DevicePlan",
    "MemoryInfo",
    "estimate_bytes",
    "estimate_parameters",
    "normalise_dtype",
    "plan_device",
    "probe_memory",
]


# Memory beyond the weights: activations and KV cache of short prompts, the
# lens's fp32 logits, allocator fragmentation and transient copies while loading.
OVERHEAD_FRACTION = 0.20
OVERHEAD_BYTES = 256 * 2**20

MPS_WARNING = (
    "mps: TransformerLens 3.9 warns that MPS may give silently incorrect results "
    "(TransformerLens issue #1178); check a small model against --device cpu"
)

# Architecture details the generic decoder formula cannot read from the config.
_BIASED_TYPES = frozenset({"gpt2", "gpt_neox"})  # LayerNorm with bias; biases on every linear
_NON_GATED_MLP_TYPES = frozenset({"gpt2", "gpt_neox"})
_LEARNED_POSITION_TYPES = frozenset({"gpt2"})
_QKV_BIAS_TYPES = frozenset({"qwen2", "qwen2_moe"})
_FOUR_NORM_TYPES = frozenset({"gemma2", "gemma3", "gemma3_text"})  # pre and post norms around both sublayers
_HEAD_QK_NORM_TYPES = frozenset({"qwen3", "qwen3_moe", "gemma3", "gemma3_text"})  # norm of size head_dim
_FULL_QK_NORM_TYPES = frozenset({"olmo2"})  # norm over all heads' queries and keys


@dataclass(frozen=True)
class DevicePlan:
    """Where and in which dtype to run a model, with the figures behind it.

    Attributes:
        device: "cuda", "mps" or "cpu".
        dtype: "float32", "float16" or "bfloat16".
        reason: one sentence built from the figures compared.
        n_params: parameter count estimated from the config.
        estimate_bytes: memory the model is expected to need on ``device``.
        available_bytes: memory ``device`` offered when planned.
        warnings: caveats the artefacts must record (e.g. MPS correctness).
        staging_bytes: memory the load holds only while it runs, on top of ``estimate_bytes``
            (the float32 copy a first GGUF dequantization builds in RAM; 0 when the weights
            stream straight to the device).
    """

    device: str
    dtype: str
    reason: str
    n_params: int
    estimate_bytes: int
    available_bytes: int | None
    warnings: tuple[str, ...] = ()
    staging_bytes: int = 0

    def torch_dtype(self) -> torch.dtype:
        """The torch dtype named by ``dtype``."""
        return getattr(torch, self.dtype)


def estimate_parameters(config: PretrainedConfig) -> int:
    """Count a decoder-only model's parameters from its config shapes alone.

    Covers embeddings (and GPT-2's learned positions), attention with grouped
    KV heads and biases, gated or plain MLPs, mixture-of-experts MLPs (Mixtral,
    Qwen MoE), every norm, and an untied unembedding. Exact for the families in
    tests/tiny_models.py; a multimodal config counts its text model only.
    """
    text = _text_config(config)
    kind = str(getattr(text, "model_type", ""))
    d_model = int(text.hidden_size)
    vocab = int(text.vocab_size)
    norm = d_model * (2 if kind in _BIASED_TYPES else 1)
    total = vocab * d_model + norm  # embeddings, final norm
    if kind in _LEARNED_POSITION_TYPES:
        total += int(text.max_position_embeddings) * d_model
    if not _tied(config, text):
        total += vocab * d_model
    for layer in range(int(text.num_hidden_layers)):
        total += _attention_parameters(text, kind) + _mlp_parameters(text, kind, layer)
        total += norm * (4 if kind in _FOUR_NORM_TYPES else 2)
    return total


def _text_config(config: PretrainedConfig) -> PretrainedConfig:
    """The language-model part of ``config`` (itself unless multimodal)."""
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def _tied(config: PretrainedConfig, text: PretrainedConfig) -> bool:
    """Whether the unembedding shares the embedding matrix."""
    tied = getattr(text, "tie_word_embeddings", None)
    if tied is None:
        tied = getattr(config, "tie_word_embeddings", True)
    return bool(tied)


def _attention_parameters(text: PretrainedConfig, kind: str) -> int:
    """Parameters of one attention sublayer: q, k, v, o projections, biases, q/k norms."""
    d_model = int(text.hidden_size)
    n_heads = int(text.num_attention_heads)
    n_kv = int(getattr(text, "num_key_value_heads", None) or n_heads)
    head_dim = int(getattr(text, "head_dim", None) or d_model // n_heads)
    q_out, kv_out = n_heads * head_dim, n_kv * head_dim
    total = d_model * (q_out + 2 * kv_out) + q_out * d_model
    if kind in _BIASED_TYPES or getattr(text, "attention_bias", False):
        total += q_out + 2 * kv_out + d_model
    elif kind in _QKV_BIAS_TYPES:
        total += q_out + 2 * kv_out
    if kind in _HEAD_QK_NORM_TYPES:
        total += 2 * head_dim
    elif kind in _FULL_QK_NORM_TYPES:
        total += q_out + kv_out
    return total


def _mlp_parameters(text: PretrainedConfig, kind: str, layer: int) -> int:
    """Parameters of layer ``layer``'s MLP, dense or mixture-of-experts."""
    d_model = int(text.hidden_size)
    biased = kind in _BIASED_TYPES or bool(getattr(text, "mlp_bias", False))
    gated = kind not in _NON_GATED_MLP_TYPES
    n_experts = int(getattr(text, "num_local_experts", None) or getattr(text, "num_experts", None) or 0)
    if n_experts and _is_sparse_layer(text, layer):
        expert_size = int(getattr(text, "moe_intermediate_size", None) or text.intermediate_size)
        total = n_experts * _dense_mlp(d_model, expert_size, gated, biased) + n_experts * d_model  # + router
        shared = int(getattr(text, "shared_expert_intermediate_size", None) or 0)
        if shared:
            total += _dense_mlp(d_model, shared, gated, biased) + d_model  # + its sigmoid gate
        return total
    size = getattr(text, "intermediate_size", None) or getattr(text, "n_inner", None) or 4 * d_model
    return _dense_mlp(d_model, int(size), gated, biased)


def _is_sparse_layer(text: PretrainedConfig, layer: int) -> bool:
    """Whether ``layer`` uses experts (Qwen MoE can keep some layers dense)."""
    if layer in (getattr(text, "mlp_only_layers", None) or ()):
        return False
    step = int(getattr(text, "decoder_sparse_step", None) or 1)
    return (layer + 1) % step == 0


def _dense_mlp(d_model: int, size: int, gated: bool, biased: bool) -> int:
    """Parameters of one MLP of width ``size``: up (and gate) plus down projection."""
    n_in = 2 if gated else 1
    total = (n_in + 1) * d_model * size
    if biased:
        total += n_in * size + d_model
    return total


def estimate_bytes(n_params: int, dtype: torch.dtype) -> int:
    """Memory a model of ``n_params`` needs in ``dtype``.

    Weights plus OVERHEAD_FRACTION of them plus OVERHEAD_BYTES: room for the
    activations of short prompts, the KV cache, fp32 logits and fragmentation.
    """
    weights = n_params * torch.empty((), dtype=dtype).element_size()
    return int(weights * (1 + OVERHEAD_FRACTION)) + OVERHEAD_BYTES


def _gb(n_bytes: int) -> str:
    """Bytes as decimal gigabytes, e.g. '16.1 GB'."""
    value = n_bytes / 1e9
    return f"{value:.1f} GB" if value >= 1 else f"{value:.2f} GB"


def _available(device: str, memory: MemoryInfo) -> int | None:
    """Bytes ``device`` offers, or None when the machine has no such device."""
    if device == "cuda":
        return memory.cuda_free_bytes
    if device == "mps":
        return memory.unified_memory_bytes if memory.mps_available else None
    return memory.cpu_available_bytes


_MEMORY_WORD = {"cuda": "free", "mps": "usable by MPS", "cpu": "RAM available"}


def _dtype_options(device: str, requested: str, gemma: bool, memory: MemoryInfo) -> list[tuple[str, str]]:
    """The dtypes to try on ``device``, best first, each with the reason for it."""
    if requested != "auto":
        _check_dtype_supported(device, requested, memory)
        return [(requested, f"{requested} as asked")]
    if device == "cpu":
        return [
            ("float32", "float32: full precision fits on cpu"),
            ("bfloat16", "bfloat16: float32 does not fit in RAM, bfloat16 halves it"),
        ]
    bf16_ok = memory.cuda_bf16_supported if device == "cuda" else memory.mps_bf16_supported
    if gemma:
        if bf16_ok:
            return [("bfloat16", "bfloat16: Gemma overflows float16")]
        return [("float32", f"float32: Gemma overflows float16 and this {device} device has no bfloat16")]
    if device == "cuda":
        if bf16_ok:
            return [("bfloat16", "bfloat16: this GPU supports it and it does not overflow like float16")]
        return [("float16", "float16: this GPU has no bfloat16")]
    return [("float16", "float16: the half precision MPS supports best")]


def _check_dtype_supported(device: str, dtype: str, memory: MemoryInfo) -> None:
    """Raise DeviceError when ``device`` cannot compute in ``dtype``."""
    if dtype != "bfloat16":
        return
    if device == "cuda" and not memory.cuda_bf16_supported:
        raise DeviceError("this CUDA GPU has no bfloat16; use --dtype float16 or float32")
    if device == "mps" and not memory.mps_bf16_supported:
        raise DeviceError("MPS has no bfloat16 before macOS 14; use --dtype float16 or float32")


def _warnings(device: str, dtype: str, gemma: bool) -> tuple[str, ...]:
    """Caveats that follow from the chosen device and dtype."""
    found: list[str] = []
    if device == "mps":
        found.append(MPS_WARNING)
    if gemma and dtype == "float16":
        found.append("Gemma overflows float16: expect inf or NaN logits; prefer bfloat16 or float32")
    if device == "cpu" and dtype != "float32":
        found.append(f"{dtype} on cpu is slower and less exact than float32")
    return tuple(found)


def plan_device(
    config: PretrainedConfig,
    device: str = "auto",
    dtype: str = "auto",
    memory: MemoryInfo | None = None,
    staging_bytes_per_param: float = 0.0,
) -> DevicePlan:
    """Choose device and dtype for the model ``config`` describes.

    Args:
        config: the model's transformers config (no weights needed).
        device: "auto" (cuda, then mps, then cpu: the first where it fits) or one of them.
        dtype: "auto" (see module docstring) or a dtype name/alias.
        memory: figures to decide from; ``probe_memory()`` when None.
        staging_bytes_per_param: RAM the load holds per parameter while it runs, beyond the
            model itself (4 for a GGUF file dequantized to float32 numpy arrays first). On the
            cpu it adds to the need; for a GPU (cuda, or mps on its share of the RAM) the model
            is built in RAM first, so RAM must hold it and the staging copy before it moves.

    Raises:
        DeviceError: an asked-for device is missing or cannot compute in the asked dtype.
        ModelTooLargeError: no candidate has the memory; the message gives both sizes in GB.
    """
    device = normalise_device(device)
    requested = normalise_dtype(dtype)
    memory = memory if memory is not None else probe_memory()
    if device != "auto" and _available(device, memory) is None:
        raise DeviceError(f"--device {device} was asked for but this machine has no {device} device; "
                          "use --device auto or cpu")
    n_params = estimate_parameters(config)
    gemma = str(getattr(_text_config(config), "model_type", "")).startswith("gemma")
    tried: list[str] = []
    for candidate in (("cuda", "mps", "cpu") if device == "auto" else (device,)):
        available = _available(candidate, memory)
        if available is None:
            tried.append(f"no {candidate} device")
            continue
        for dtype_name, dtype_reason in _dtype_options(candidate, requested, gemma, memory):
            need = estimate_bytes(n_params, getattr(torch, dtype_name))
            staging = int(n_params * staging_bytes_per_param)
            on_cpu = candidate == "cpu"
            total = need + staging if on_cpu else need
            figures = f"{_gb(total)} needed in {dtype_name}, {_gb(available)} {_MEMORY_WORD[candidate]}"
            if staging and on_cpu:
                figures += f" (of which {_gb(staging)} only while the file is dequantized)"
            if total > available:
                tried.append(f"{candidate}: {figures}")
                continue
            if staging and not on_cpu:
                # The file is dequantized in RAM (beside the model, built there) before it moves to the GPU.
                host_need = staging + n_params * torch.empty((), dtype=getattr(torch, dtype_name)).element_size()
                if host_need > memory.cpu_available_bytes:
                    tried.append(f"{candidate}: dequantizing needs {_gb(host_need)} of RAM first, "
                                 f"{_gb(memory.cpu_available_bytes)} available")
                    continue
                figures += (f"; dequantizing first holds {_gb(host_need)} of RAM, "
                            f"{_gb(memory.cpu_available_bytes)} available")
            how = "first device where it fits" if device == "auto" else "as asked"
            passed = f" (passed over: {'; '.join(tried)})" if tried else ""
            return DevicePlan(
                device=candidate,
                dtype=dtype_name,
                reason=f"{candidate} ({how}): {figures}; {dtype_reason}{passed}",
                n_params=n_params,
                estimate_bytes=need,
                available_bytes=available,
                warnings=_warnings(candidate, dtype_name, gemma),
                staging_bytes=staging,
            )
    raise ModelTooLargeError(
        f"the model ({n_params / 1e9:.2f}B parameters) fits on no device: {'; '.join(tried)}; "
        "try a smaller model or close other programs"
    )
