"""Device policy: parameter estimates against real counts, and the decision table."""

from __future__ import annotations

import pytest
import torch
import transformers

from layers_core.errors import DeviceError, ModelTooLargeError
from layers_core.models.device_policy import (
    MPS_WARNING,
    OVERHEAD_BYTES,
    DevicePlan,
    MemoryInfo,
    estimate_bytes,
    estimate_parameters,
    normalise_dtype,
    plan_device,
    probe_memory,
)
from tests import tiny_models

GB = 10**9

# Published dimensions of real models; totals as their model cards state them.
REAL_CONFIGS = {
    "Llama-3-8B": (transformers.LlamaConfig, dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False), 8.03e9),
    "Gemma-2-9B": (transformers.Gemma2Config, dict(
        hidden_size=3584, intermediate_size=14336, num_hidden_layers=42, num_attention_heads=16,
        num_key_value_heads=8, head_dim=256, vocab_size=256000, tie_word_embeddings=True), 9.24e9),
    "Mistral-7B": (transformers.MistralConfig, dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=32000, tie_word_embeddings=False), 7.24e9),
    "Qwen3-8B": (transformers.Qwen3Config, dict(
        hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
        num_key_value_heads=8, head_dim=128, vocab_size=151936, tie_word_embeddings=False), 8.19e9),
    "Qwen2.5-7B": (transformers.Qwen2Config, dict(
        hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
        num_key_value_heads=4, vocab_size=152064, tie_word_embeddings=False), 7.62e9),
    "SmolLM2-135M": (transformers.LlamaConfig, dict(
        hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
        num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True), 134.5e6),
    "Gemma-3-270M": (transformers.Gemma3TextConfig, dict(
        hidden_size=640, intermediate_size=2048, num_hidden_layers=18, num_attention_heads=4,
        num_key_value_heads=1, head_dim=256, vocab_size=262144, tie_word_embeddings=True), 268e6),
    "GPT-2": (transformers.GPT2Config, dict(), 124.4e6),
    "Pythia-160M": (transformers.GPTNeoXConfig, dict(
        hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        vocab_size=50304, tie_word_embeddings=False), 162.3e6),
    "Mixtral-8x7B": (transformers.MixtralConfig, dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=32000, num_local_experts=8, tie_word_embeddings=False), 46.7e9),
    "Qwen3-30B-A3B": (transformers.Qwen3MoeConfig, dict(
        hidden_size=2048, intermediate_size=6144, moe_intermediate_size=768, num_hidden_layers=48,
        num_attention_heads=32, num_key_value_heads=4, head_dim=128, vocab_size=151936,
        num_experts=128, num_experts_per_tok=8, tie_word_embeddings=False), 30.5e9),
}


def _config(name: str) -> transformers.PretrainedConfig:
    cls, kwargs, _published = REAL_CONFIGS[name]
    return cls(**kwargs)


def _memory(cuda: float | None = None, mps: float | None = None, cpu: float = 16,
            cuda_bf16: bool = True, mps_bf16: bool = True) -> MemoryInfo:
    """Injected figures, in GB."""
    return MemoryInfo(
        cuda_free_bytes=None if cuda is None else int(cuda * GB),
        mps_available=mps is not None,
        unified_memory_bytes=None if mps is None else int(mps * GB),
        cpu_available_bytes=int(cpu * GB),
        cuda_bf16_supported=cuda_bf16,
        mps_bf16_supported=mps_bf16,
    )


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
def test_estimate_is_exact_for_every_tiny_family(family: str) -> None:
    model = tiny_models.build_model(family, perturb=False)
    assert estimate_parameters(model.config) == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(REAL_CONFIGS))
def test_estimate_matches_real_model_sizes(name: str) -> None:
    config = _config(name)
    with torch.device("meta"):  # exact count of the real architecture, no memory used
        model = transformers.AutoModelForCausalLM.from_config(config)
    exact = sum(p.numel() for p in model.parameters())
    published = REAL_CONFIGS[name][2]
    estimate = estimate_parameters(config)
    assert estimate == exact
    assert abs(estimate - published) / published < 0.005


def test_estimate_bytes_is_weights_plus_documented_overhead() -> None:
    n_params = 8_030_261_248
    weights = n_params * 2
    assert estimate_bytes(n_params, torch.bfloat16) == int(weights * 1.2) + OVERHEAD_BYTES
    assert estimate_bytes(n_params, torch.float32) > 2 * weights


def test_auto_picks_cuda_in_bfloat16_when_it_fits() -> None:
    plan = plan_device(_config("Llama-3-8B"), memory=_memory(cuda=79.2, mps=None))
    assert (plan.device, plan.dtype) == ("cuda", "bfloat16")
    need = estimate_bytes(plan.n_params, torch.bfloat16)
    assert plan.estimate_bytes == need and plan.available_bytes == int(79.2 * GB)
    assert f"{need / GB:.1f} GB needed" in plan.reason and "79.2 GB free" in plan.reason
    assert plan.warnings == ()
    assert plan.torch_dtype() is torch.bfloat16


def test_cuda_without_bfloat16_uses_float16() -> None:
    plan = plan_device(_config("Mistral-7B"), memory=_memory(cuda=40, cuda_bf16=False))
    assert (plan.device, plan.dtype) == ("cuda", "float16")
    assert "no bfloat16" in plan.reason


def test_cuda_too_small_falls_back_to_mps_with_warning() -> None:
    plan = plan_device(_config("Llama-3-8B"), memory=_memory(cuda=8, mps=48))
    assert (plan.device, plan.dtype) == ("mps", "float16")
    assert MPS_WARNING in plan.warnings and "#1178" in MPS_WARNING
    assert "passed over: cuda:" in plan.reason and "8.0 GB free" in plan.reason


def test_no_gpu_falls_back_to_cpu_float32() -> None:
    plan = plan_device(_config("SmolLM2-135M"), memory=_memory(cpu=20))
    assert (plan.device, plan.dtype) == ("cpu", "float32")
    assert "no cuda device" in plan.reason and "no mps device" in plan.reason
    assert plan.warnings == ()


def test_cpu_takes_bfloat16_only_when_float32_does_not_fit() -> None:
    plan = plan_device(_config("Llama-3-8B"), memory=_memory(cpu=24))  # fp32 ~39 GB, bf16 ~19.5 GB
    assert (plan.device, plan.dtype) == ("cpu", "bfloat16")
    assert "float32 does not fit" in plan.reason
    assert any("slower" in w for w in plan.warnings)


def test_nothing_fits_names_both_sizes_in_gb() -> None:
    with pytest.raises(ModelTooLargeError) as caught:
        plan_device(_config("Llama-3-8B"), memory=_memory(cuda=4, mps=6, cpu=3))
    message = caught.value.message
    need = estimate_bytes(8_030_261_248, torch.bfloat16) / GB
    assert f"{need:.1f} GB needed" in message
    assert "4.0 GB free" in message and "6.0 GB usable" in message and "3.0 GB RAM" in message
    assert "\n" not in message


@pytest.mark.parametrize("memory", [_memory(cuda=80), _memory(mps=48)])
def test_gemma_runs_in_bfloat16_on_gpus(memory: MemoryInfo) -> None:
    plan = plan_device(_config("Gemma-2-9B"), memory=memory)
    assert plan.dtype == "bfloat16" and "Gemma" in plan.reason


def test_gemma_on_mps_without_bfloat16_uses_float32() -> None:
    plan = plan_device(_config("Gemma-3-270M"), memory=_memory(mps=48, mps_bf16=False))
    assert (plan.device, plan.dtype) == ("mps", "float32")


def test_explicit_device_that_is_missing_is_one_line_device_error() -> None:
    for device in ("cuda", "mps"):
        with pytest.raises(DeviceError) as caught:
            plan_device(_config("SmolLM2-135M"), device=device, memory=_memory())
        assert device in caught.value.message and "\n" not in caught.value.message


def test_explicit_device_that_is_too_small_still_errors_with_numbers() -> None:
    with pytest.raises(ModelTooLargeError, match=r"cuda: .* GB needed in bfloat16, 8\.0 GB free"):
        plan_device(_config("Llama-3-8B"), device="cuda", memory=_memory(cuda=8, mps=48))


def test_explicit_cpu_is_used_even_when_a_gpu_exists() -> None:
    plan = plan_device(_config("SmolLM2-135M"), device="cpu", memory=_memory(cuda=80))
    assert (plan.device, plan.dtype) == ("cpu", "float32") and "as asked" in plan.reason


def test_explicit_dtype_is_kept_and_auto_device_still_searches() -> None:
    plan = plan_device(_config("Llama-3-8B"), dtype="fp32", memory=_memory(cuda=20, mps=48))
    assert (plan.device, plan.dtype) == ("mps", "float32")
    assert "cuda:" in plan.reason  # passed over: fp32 needs ~39 GB


def test_explicit_float16_on_gemma_warns_about_overflow() -> None:
    plan = plan_device(_config("Gemma-3-270M"), dtype="float16", memory=_memory(cuda=80))
    assert any("overflows float16" in w for w in plan.warnings)


def test_explicit_bfloat16_where_unsupported_is_device_error() -> None:
    with pytest.raises(DeviceError):
        plan_device(_config("SmolLM2-135M"), device="mps", dtype="bf16", memory=_memory(mps=48, mps_bf16=False))


@pytest.mark.parametrize(("device", "dtype"), [("tpu", "auto"), ("auto", "int8"), ("cuda:1", "auto")])
def test_unknown_names_are_device_errors(device: str, dtype: str) -> None:
    with pytest.raises(DeviceError):
        plan_device(_config("SmolLM2-135M"), device=device, dtype=dtype, memory=_memory())


def test_normalise_dtype_accepts_short_names() -> None:
    assert [normalise_dtype(n) for n in ("bf16", "FP16", "half", "float32")] == [
        "bfloat16", "float16", "float16", "float32"]


def test_probe_memory_reads_this_machine() -> None:
    memory = probe_memory()
    assert memory.cpu_available_bytes > 0
    assert (memory.cuda_free_bytes is not None) == torch.cuda.is_available()
    assert memory.mps_available == torch.backends.mps.is_available()
    if memory.mps_available:
        assert memory.unified_memory_bytes is not None and memory.unified_memory_bytes > 0


def test_plan_with_probed_memory_for_a_tiny_model() -> None:
    plan = plan_device(tiny_models.build_model("llama").config)
    assert isinstance(plan, DevicePlan)
    assert plan.estimate_bytes <= (plan.available_bytes or 0)
    if not (torch.cuda.is_available() or torch.backends.mps.is_available()):
        assert (plan.device, plan.dtype) == ("cpu", "float32")
