"""One seed and deterministic kernels, so two runs of an experiment give the same numbers.

Call ``set_deterministic()`` first thing in ``main``, before any model is
loaded or memory probed: cuBLAS reads CUBLAS_WORKSPACE_CONFIG when CUDA creates
its handle, so setting the variable after CUDA work has started may come too
late. With deterministic algorithms on, torch raises on an operation that has no
deterministic implementation instead of silently varying between runs.
"""

from __future__ import annotations

import os
import random
import warnings

import numpy as np
import torch

SEED = 316
CUBLAS_WORKSPACE_CONFIG = ":4096:8"
# Both settings make cuBLAS deterministic (NVIDIA cuBLAS docs, "Results reproducibility").
_DETERMINISTIC_CUBLAS = (":4096:8", ":16:8")


def set_deterministic(seed: int = SEED) -> None:
    """Seed python, numpy and torch (every device) and force deterministic kernels.

    Args:
        seed: the seed for every generator; tinycave's runs use ``SEED``.
    """
    _set_cublas_workspace()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU, CUDA and MPS generators
    # warn_only: an op with no deterministic kernel on this device (some CUDA/MPS ops) warns
    # instead of stopping the user's run; on the cpu every op 001 uses is deterministic.
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False


def _set_cublas_workspace() -> None:
    """Set CUBLAS_WORKSPACE_CONFIG unless it already holds a deterministic value."""
    if os.environ.get("CUBLAS_WORKSPACE_CONFIG") in _DETERMINISTIC_CUBLAS:
        return
    os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    if torch.cuda.is_initialized():
        warnings.warn(
            "CUBLAS_WORKSPACE_CONFIG was set after CUDA started; call set_deterministic() "
            "before loading a model, or export it in the shell",
            RuntimeWarning,
            stacklevel=3,
        )


def determinism_settings() -> dict[str, object]:
    """What is in force now, read back from torch and the environment (for provenance)."""
    return {
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        # The cpu splits float32 sums across threads: another thread count can change the last digits.
        "cpu_threads": torch.get_num_threads(),
    }
