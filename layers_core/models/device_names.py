"""Device and dtype names as the user may type them, checked without importing torch."""

from __future__ import annotations

from layers_core.errors import DeviceError

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cuda", "mps", "cpu")
DTYPE_CHOICES: tuple[str, ...] = ("auto", "float32", "float16", "bfloat16")
_DTYPE_ALIASES = {"fp32": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16"}


def normalise_dtype(text: str) -> str:
    """Map a dtype name or alias ("bf16", "fp32", ...) to one of DTYPE_CHOICES.

    Raises:
        DeviceError: the name is no dtype tinycave supports.
    """
    name = _DTYPE_ALIASES.get(text.strip().lower(), text.strip().lower())
    if name not in DTYPE_CHOICES:
        raise DeviceError(f"unknown dtype '{text}'; use one of {', '.join(DTYPE_CHOICES)}")
    return name


def normalise_device(text: str) -> str:
    """Map a device name to one of DEVICE_CHOICES (raises DeviceError)."""
    name = text.strip().lower()
    if name not in DEVICE_CHOICES:
        raise DeviceError(
            f"unknown device '{text}'; use one of {', '.join(DEVICE_CHOICES)} "
            "(pick a CUDA GPU with CUDA_VISIBLE_DEVICES)"
        )
    return name
