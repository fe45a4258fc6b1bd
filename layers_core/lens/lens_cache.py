"""Fitted lens maps in the user cache: found by model, corpus, kind and recipe, fitted on first use.

A fitted lens lives at ``<cache root>/lenses/<key>/maps.safetensors`` where ``key``
is a hash of its ``LensIdentity`` (``translators``): the model's fingerprint, the
corpus's fingerprint, the kind (``tuned`` / ``linear``), the recipe and the shape.
``fitted_maps`` returns the cached maps when their file reloads for that identity
(``LensMaps.load`` checks it), else fits them (``fit``) and saves them, so a second
run starts at once. A damaged or mismatched entry is refitted, not trusted.

The model's fingerprint is ``models.fingerprint.model_fingerprint`` (re-exported here).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

from layers_core.lens.translators import LensIdentity, LensMaps, LensMismatchError
from layers_core.models.fingerprint import model_fingerprint
from layers_core.models.gguf_cache import cache_root

MAPS_FILE = "maps.safetensors"
__all__ = ["MAPS_FILE", "fitted_maps", "identity_key", "lens_cache_dir", "maps_path", "model_fingerprint"]


def lens_cache_dir() -> Path:
    """Folder holding one sub-folder per fitted lens."""
    return cache_root() / "lenses"


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
