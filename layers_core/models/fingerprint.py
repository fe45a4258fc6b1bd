"""A stable name for a loaded model's weights, for caches of things fitted to them (lenses, SAEs).

It names the weights without reading them all: a GGUF file's sha256, a hub model's id
and revision, or for a local folder a sample of the loaded weights (every parameter's
name, shape and first values rounded to bfloat16), the same for every dtype and device.
"""

from __future__ import annotations

import hashlib

import torch

from layers_core.models.loading import LoadedModel

SAMPLE_VALUES = 4096  # per parameter tensor, for a local folder's fingerprint


def model_fingerprint(loaded: LoadedModel) -> str:
    """A stable name of the loaded weights (module docstring); the same for every dtype and device."""
    source = loaded.source
    if source.get("gguf_sha256"):
        return f"gguf-sha256:{source['gguf_sha256']}"
    if source.get("kind") == "hub" and source.get("revision"):
        return f"hub:{source.get('location')}@{source['revision']}"
    return f"weights-sample:{_weights_sample_hash(loaded)}"


def _weights_sample_hash(loaded: LoadedModel) -> str:
    """sha256 of every parameter's name, shape and first values rounded to bfloat16 (dtype-independent)."""
    digest = hashlib.sha256()
    for name, param in sorted(loaded.model.named_parameters(), key=lambda item: item[0]):
        digest.update(f"{name}:{tuple(param.shape)};".encode())
        sample = param.detach().flatten()[:SAMPLE_VALUES].to(device="cpu", dtype=torch.bfloat16)
        digest.update(sample.view(torch.int16).numpy().tobytes())
    return digest.hexdigest()
