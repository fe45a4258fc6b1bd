"""The memory a load holds only while it runs: planned for, and never a second copy on a GPU."""

from __future__ import annotations

import pytest
import torch
import transformers

from layers_core.errors import ModelTooLargeError
from layers_core.models.device_policy import MemoryInfo, estimate_bytes, plan_device
from layers_core.models.gguf_loading import GGUF_STAGING_BYTES_PER_PARAM, device_map

GB = 10**9
# Llama-3-8B's shapes: 8.03e9 parameters.
LLAMA_8B = transformers.LlamaConfig(
    hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
    num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False,
)


def _mac(ram_gb: float) -> MemoryInfo:
    """An Apple-silicon machine whose MPS and RAM both offer ``ram_gb``."""
    return MemoryInfo(cuda_free_bytes=None, mps_available=True, unified_memory_bytes=int(ram_gb * GB),
                      cpu_available_bytes=int(ram_gb * GB), mps_bf16_supported=True)


def _cuda(gpu_gb: float, ram_gb: float) -> MemoryInfo:
    return MemoryInfo(cuda_free_bytes=int(gpu_gb * GB), mps_available=False, unified_memory_bytes=None,
                      cpu_available_bytes=int(ram_gb * GB), cuda_bf16_supported=True)


def _cpu(ram_gb: float) -> MemoryInfo:
    return MemoryInfo(cuda_free_bytes=None, mps_available=False, unified_memory_bytes=None,
                      cpu_available_bytes=int(ram_gb * GB))


def test_staging_adds_to_the_need_on_the_cpu() -> None:
    plain = plan_device(LLAMA_8B, "cpu", "float32", memory=_cpu(80))
    staged = plan_device(LLAMA_8B, "cpu", "float32", memory=_cpu(80), staging_bytes_per_param=4.0)
    assert plain.staging_bytes == 0
    assert staged.staging_bytes == int(plain.n_params * GGUF_STAGING_BYTES_PER_PARAM)
    assert staged.estimate_bytes == plain.estimate_bytes  # what stays after loading is the same
    assert "only while the file is dequantized" in staged.reason
    # auto picks a smaller dtype when float32 plus the staging copy no longer fits
    assert plan_device(LLAMA_8B, "cpu", memory=_cpu(64), staging_bytes_per_param=4.0).dtype == "bfloat16"


def test_a_model_that_fits_only_without_staging_is_refused_with_both_figures() -> None:
    need = estimate_bytes(8_030_261_248, torch.bfloat16)  # fits in 22 GB; plus 32 GB of staging it does not
    assert need < 22 * GB
    assert plan_device(LLAMA_8B, "cpu", "bfloat16", memory=_cpu(22)).device == "cpu"
    with pytest.raises(ModelTooLargeError, match="only while the file is dequantized"):
        plan_device(LLAMA_8B, "cpu", "bfloat16", memory=_cpu(22), staging_bytes_per_param=4.0)


def test_the_users_mac_stages_a_first_gguf_load_in_ram_not_in_the_mps_budget() -> None:
    # 64 GB Mac: Metal lets one process use ~48 GB; the float16 model (~19 GB) fits there, and the
    # float32 dequantized copy (32 GB) plus the model built beside it fit in the RAM before the move.
    memory = MemoryInfo(cuda_free_bytes=None, mps_available=True, unified_memory_bytes=48 * GB,
                        cpu_available_bytes=60 * GB, mps_bf16_supported=True)
    plan = plan_device(LLAMA_8B, "auto", memory=memory, staging_bytes_per_param=GGUF_STAGING_BYTES_PER_PARAM)
    assert plan.device == "mps" and "dequantizing first holds" in plan.reason
    tight = MemoryInfo(cuda_free_bytes=None, mps_available=True, unified_memory_bytes=48 * GB,
                       cpu_available_bytes=40 * GB, mps_bf16_supported=True)
    with pytest.raises(ModelTooLargeError, match="mps: dequantizing needs"):
        plan_device(LLAMA_8B, "mps", memory=tight, staging_bytes_per_param=GGUF_STAGING_BYTES_PER_PARAM)


def test_cuda_needs_the_staging_copy_in_ram_not_on_the_gpu() -> None:
    fits = plan_device(LLAMA_8B, "cuda", memory=_cuda(24, 64), staging_bytes_per_param=4.0)
    assert fits.device == "cuda" and fits.dtype == "bfloat16"
    with pytest.raises(ModelTooLargeError, match="dequantizing needs"):
        plan_device(LLAMA_8B, "cuda", memory=_cuda(24, 30), staging_bytes_per_param=4.0)


def test_auto_falls_back_when_the_gpu_host_cannot_stage() -> None:
    plan = plan_device(LLAMA_8B, "auto", memory=_cuda(24, 60), staging_bytes_per_param=4.0)
    assert plan.device == "cuda"
    memory = MemoryInfo(cuda_free_bytes=24 * GB, mps_available=False, unified_memory_bytes=None,
                        cpu_available_bytes=20 * GB, cuda_bf16_supported=True)
    with pytest.raises(ModelTooLargeError) as err:
        plan_device(LLAMA_8B, "auto", memory=memory, staging_bytes_per_param=4.0)
    assert "cuda: dequantizing needs" in err.value.message and "cpu:" in err.value.message


@pytest.mark.parametrize(("device", "expected"), [("cpu", None), ("cuda", "cuda"), ("mps", "mps")])
def test_gpu_loads_go_straight_to_the_device(device: str, expected: str | None) -> None:
    memory = {"cpu": _cuda(0, 64), "cuda": _cuda(80, 64), "mps": _mac(64)}[device]
    if device == "cpu":
        memory = MemoryInfo(cuda_free_bytes=None, mps_available=False, unified_memory_bytes=None,
                            cpu_available_bytes=64 * GB)
    plan = plan_device(LLAMA_8B, device, memory=memory)
    assert device_map(plan) == expected
