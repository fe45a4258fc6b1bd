"""What memory each device offers right now, read without loading any model.

``probe_memory()`` is the only place that asks torch and psutil; everything that
decides from these figures takes a ``MemoryInfo`` so tests can inject numbers.

On Apple silicon the GPU shares RAM with the CPU. Metal reports how much of it
one process should use (``recommendedMaxWorkingSetSize``, exposed by torch as
``torch.mps.recommended_max_memory()``: about two thirds to three quarters of
RAM). The MPS figure is that minus what torch already holds on MPS, and never
more than the RAM the system reports available, since other programs use the
same memory. Where torch cannot report it, ``MPS_FALLBACK_FRACTION`` of total
RAM stands in for Metal's limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil
import torch

# Used only when torch.mps.recommended_max_memory() is missing: Metal's own
# limit is ~66% of RAM on 8-16 GB Macs and ~75% above, so 0.70 sits between.
MPS_FALLBACK_FRACTION = 0.70


@dataclass(frozen=True)
class MemoryInfo:
    """Memory the devices of this machine offer now, in bytes.

    Attributes:
        cuda_free_bytes: free memory on the current CUDA device; None without CUDA.
        mps_available: whether torch can use Apple's MPS device.
        unified_memory_bytes: what MPS may still allocate (see module docstring);
            None without MPS.
        cpu_available_bytes: RAM the system reports available to a new allocation.
        cuda_bf16_supported: whether the CUDA device computes in bfloat16.
        mps_bf16_supported: whether MPS accepts bfloat16 tensors (macOS 14 and newer).
    """

    cuda_free_bytes: int | None
    mps_available: bool
    unified_memory_bytes: int | None
    cpu_available_bytes: int
    cuda_bf16_supported: bool = False
    mps_bf16_supported: bool = False


def probe_memory() -> MemoryInfo:
    """Read the memory figures of this machine.

    Asking CUDA initialises it: call ``reproducibility.set_deterministic`` first,
    since cuBLAS reads CUBLAS_WORKSPACE_CONFIG when it starts.
    """
    ram = psutil.virtual_memory()
    cuda_free, cuda_bf16 = _probe_cuda()
    mps_ok = torch.backends.mps.is_available()
    unified, mps_bf16 = _probe_mps(ram.total, ram.available) if mps_ok else (None, False)
    return MemoryInfo(
        cuda_free_bytes=cuda_free,
        mps_available=mps_ok,
        unified_memory_bytes=unified,
        cpu_available_bytes=int(ram.available),
        cuda_bf16_supported=cuda_bf16,
        mps_bf16_supported=mps_bf16,
    )


def _probe_cuda() -> tuple[int | None, bool]:
    """Free bytes on the current CUDA device and its bfloat16 support."""
    if not torch.cuda.is_available():
        return None, False
    free, _total = torch.cuda.mem_get_info()
    return int(free), bool(torch.cuda.is_bf16_supported())


def _probe_mps(ram_total: int, ram_available: int) -> tuple[int, bool]:
    """Bytes MPS may still allocate and its bfloat16 support."""
    recommended = getattr(torch.mps, "recommended_max_memory", None)
    limit = int(recommended()) if recommended else int(ram_total * MPS_FALLBACK_FRACTION)
    held = int(torch.mps.driver_allocated_memory())
    usable = max(0, min(limit - held, int(ram_available)))
    try:
        torch.zeros(1, dtype=torch.bfloat16, device="mps")
        bf16 = True
    except (RuntimeError, TypeError):  # macOS 13 and older have no bfloat16 on MPS
        bf16 = False
    return usable, bf16
