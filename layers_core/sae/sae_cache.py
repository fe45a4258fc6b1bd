"""SAEs trained here, in the user cache: found by model, layer, corpus and recipe, trained on first use.

Each SAE lives at ``<cache root>/saes/<key>/`` in SAELens's own format
(``cfg.json`` + ``sae_weights.safetensors``, loadable with ``SAE.load_from_disk``) with
an ``identity.json`` beside it; ``key`` hashes the identity: the model's fingerprint
(``models.fingerprint``), its shape, the residual, the corpus's fingerprint and the
recipe. A folder is written under a temporary name and renamed into place, so a
half-written SAE is never found. An entry that does not load, or whose identity or
shape does not match, is trained again, not trusted. Weights are read from
safetensors only.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers_core.models.gguf_cache import cache_root

IDENTITY_FILE = "identity.json"
_SAE_FILES = ("cfg.json", "sae_weights.safetensors")


def sae_cache_dir() -> Path:
    """Folder holding one sub-folder per trained SAE."""
    return cache_root() / "saes"


@dataclass(frozen=True)
class SaeIdentity:
    """What a trained SAE is for: model, shape, residual, corpus and recipe."""

    model: str
    n_layers: int
    d_model: int
    layer: int
    corpus: str
    recipe: Mapping[str, Any]

    def to_json(self) -> str:
        """Canonical JSON (sorted keys), the source of the cache key."""
        return json.dumps({"model": self.model, "n_layers": self.n_layers, "d_model": self.d_model,
                           "layer": self.layer, "corpus": self.corpus, "recipe": dict(self.recipe)},
                          sort_keys=True)

    def key(self) -> str:
        """The cache folder name: the first 24 hex digits of the JSON's sha256."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:24]

    def folder(self) -> Path:
        """Where this SAE is (or will be) kept."""
        return sae_cache_dir() / self.key()


def entry_problem(identity: SaeIdentity) -> str | None:
    """Why the cached entry of ``identity`` cannot be used, or None when it looks whole (files, identity)."""
    folder = identity.folder()
    if not folder.is_dir():
        return "missing"
    for name in (*_SAE_FILES, IDENTITY_FILE):
        if not (folder / name).is_file():
            return f"{name} is missing"
    try:
        stored = json.loads((folder / IDENTITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return f"{IDENTITY_FILE} does not read ({err})"
    if stored != json.loads(identity.to_json()):
        return "it was trained for something else"
    return None


def load_cached(identity: SaeIdentity, device: str) -> tuple[Any | None, str | None]:
    """``(sae, None)`` for a usable cached entry of ``identity``, else ``(None, why)`` (see ``entry_problem``)."""
    from sae_lens import SAE
    from safetensors import SafetensorError

    problem = entry_problem(identity)
    if problem is not None:
        return None, problem
    try:
        sae = SAE.load_from_disk(identity.folder(), device=device)
    except (OSError, ValueError, KeyError, RuntimeError, SafetensorError) as err:
        return None, f"it does not load ({type(err).__name__})"
    if sae.cfg.d_in != identity.d_model:
        return None, f"it reads width {sae.cfg.d_in}, not {identity.d_model}"
    return sae, None


def save_entry(identity: SaeIdentity, sae: Any) -> Path:
    """Write ``sae`` as the entry of ``identity`` (temporary folder, then rename); returns its folder."""
    final = identity.folder()
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.parent / f".tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        sae.save_model(temp)
        (temp / IDENTITY_FILE).write_text(json.dumps(json.loads(identity.to_json()), indent=2) + "\n",
                                          encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)
        os.rename(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final


def cached_or_trained(
    identities: Sequence[SaeIdentity], train: Callable[[list[int]], Mapping[int, Any]], device: str,
    status: Callable[[str], None] = lambda line: None,
) -> dict[int, tuple[Any, str]]:
    """Residual -> (SAE, state) for each identity: ``"hit"``, ``"trained"`` or ``"retrained"`` (damaged entry).

    ``train(layers)`` trains the missing layers together (one stream of forward passes).
    """
    found: dict[int, tuple[Any, str]] = {}
    missing: dict[int, str] = {}
    for identity in identities:
        sae, problem = load_cached(identity, device)
        if sae is not None:
            found[identity.layer] = (sae, "hit")
            continue
        damaged = problem != "missing"
        if damaged:
            status(f"the cached SAE for residual {identity.layer} is not usable ({problem}); training it again")
        missing[identity.layer] = "retrained" if damaged else "trained"
    if missing:
        trained = train(sorted(missing))
        for identity in identities:
            if identity.layer in missing:
                save_entry(identity, trained[identity.layer])
                found[identity.layer] = (trained[identity.layer], missing[identity.layer])
    return {identity.layer: found[identity.layer] for identity in identities}
