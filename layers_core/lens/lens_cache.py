"""Fitted lens maps in the user cache: found by model, corpus, kind and recipe, fitted on first use.

A fitted lens lives at ``<cache root>/lenses/<key>/maps.safetensors`` where ``key``
is a hash of its ``LensIdentity`` (``translators``): the model's fingerprint, the
corpus's fingerprint, the kind (``tuned`` / ``linear``), the recipe and the shape.
``fitted_maps`` returns the cached maps when their file reloads for that identity
(``LensMaps.load`` checks it), else fits them (``fit``) and saves them, so a second
run starts at once. A damaged or mismatched entry is refitted, not trusted.

The model's fingerprint (``model_fingerprint``) names the weights without reading
them all: a GGUF file's sha256, a hub model's id and revision, or for a local folder
a hash of its weight files' names and sizes plus a sample of the loaded weights.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import torch

from layers_core.lens.translators import LensIdentity, LensMaps, LensMismatchError
from layers_core.models.gguf_cache import cache_root
from layers_core.models.loading import LoadedModel

MAPS_FILE = "maps.safetensors"
SAMPLE_VALUES = 4096  # per parameter tensor, for a local folder's fingerprint


def lens_cache_dir() -> Path:
    """Folder holding one sub-folder per fitted lens."""
    return cache_root() / "lenses"


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


def identity_key(identity: LensIdentity) -> str:
    """The cache folder name of an identity: the first 24 hex digits of its JSON's sha256."""
    return hashlib.sha256(identity.to_json().encode()).hexdigest()[:24]


def maps_path(identity: LensIdentity) -> Path:
    """Where the maps of ``identity`` are (or will be) saved."""
    return lens_cache_dir() / identity_key(identity) / MAPS_FILE


def fitted_maps(identity: LensIdentity, fit: Callable[[], LensMaps],
                status: Callable[[str], None] = lambda line: None) -> tuple[LensMaps, str]:
    """The cached maps of ``identity``, or ``fit()``'s, saved for the next run.

    Returns:
        The maps, and ``"hit"`` (read from the cache), ``"fitted"`` or ``"refitted"`` (the entry was damaged
        or did not match, and was replaced).
    """
    path = maps_path(identity)
    state = "fitted"
    if path.exists():
        try:
            return LensMaps.load(path, identity), "hit"
        except LensMismatchError as err:
            status(f"the cached {identity.kind} lens is not usable ({err}); fitting it again")
            state = "refitted"
    maps = fit()
    if maps.identity != identity:
        raise ValueError(f"the fit returned maps for {identity.differences(maps.identity)} other than asked")
    maps.save(path)
    (path.parent / "identity.json").write_text(json.dumps(json.loads(identity.to_json()), indent=2) + "\n",
                                               encoding="utf-8")
    return maps, state
