"""Where an SAE comes from (``--sae``): trained here, a local folder, or a SAELens release and id.

- ``train``: SAEs trained here on the bundled corpus (``sae_cache``); works offline.
- a folder in SAELens's format (``cfg.json`` + ``sae_weights.safetensors``), read with
  ``SAE.load_from_disk``.
- ``RELEASE/ID``, e.g. ``gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_medium``: checked
  against SAELens's own directory of releases (offline, before any download; unknown
  names get the closest matches), then ``SAE.from_pretrained`` downloads it once into the
  normal Hugging Face cache. SAELens reads those files as safetensors, numpy without
  pickles, or ``torch.load`` with torch's default ``weights_only=True`` (no code runs).

Each loaded SAE is checked against the model: a residual-stream hook of a block the
model has (``sae_points``) and an input width equal to the model's.
"""

from __future__ import annotations

import difflib
import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layers_core.errors import TinycaveError
from layers_core.models.architecture import ModelParts
from layers_core.sae.sae_points import SaeMismatchError, residual_of_hook

TRAIN = "train"


class SaeSourceError(TinycaveError):
    """An ``--sae`` value that names no SAE, or one that cannot be fetched."""


@dataclass(frozen=True)
class SaeSource:
    """One parsed ``--sae`` value.

    Attributes:
        kind: ``train``, ``folder`` or ``release``.
        text: What the user wrote.
        folder: For ``folder``: the folder.
        release: For ``release``: the release name.
        sae_id: For ``release``: the SAE's id within it.
    """

    kind: str
    text: str
    folder: Path | None = None
    release: str | None = None
    sae_id: str | None = None

    def describe(self) -> dict[str, Any]:
        """Provenance for the run's JSON."""
        found: dict[str, Any] = {"kind": self.kind, "spec": self.text}
        if self.folder is not None:
            found["folder"] = str(self.folder)
        if self.release is not None:
            found.update(release=self.release, sae_id=self.sae_id)
        return found


def _closest(word: str, choices: list[str]) -> str:
    matches = difflib.get_close_matches(word, choices, n=3, cutoff=0.4)
    return f"; closest: {', '.join(matches)}" if matches else ""


def parse_sae_spec(text: str) -> SaeSource:
    """Parse one ``--sae`` value (module doc).

    Raises:
        SaeSourceError: An empty value, a folder without SAELens's files, an unknown
            release or id (with the closest names).
    """
    text = text.strip()
    if not text:
        raise SaeSourceError("--sae is empty: give 'train', a folder, or RELEASE/ID")
    if text == TRAIN:
        return SaeSource("train", text)
    path = Path(text).expanduser()
    if path.exists() or text.startswith((".", "/", "~")):
        if not path.is_dir():
            raise SaeSourceError(f"--sae {text}: no such folder")
        missing = [name for name in ("cfg.json", "sae_weights.safetensors") if not (path / name).is_file()]
        if missing:
            raise SaeSourceError(f"--sae {text}: not an SAE folder in SAELens's format ({', '.join(missing)} missing)")
        return SaeSource("folder", text, folder=path.resolve())
    release, _, sae_id = text.partition("/")
    directory = _directory()
    if release not in directory:
        raise SaeSourceError(f"--sae {text}: SAELens knows no release {release!r}{_closest(release, list(directory))}")
    ids = list(directory[release].ids)
    if not sae_id:
        raise SaeSourceError(f"--sae {text}: give an id after the release, e.g. {release}/{ids[0]}")
    if sae_id not in ids:
        raise SaeSourceError(f"--sae {text}: release {release} has no SAE {sae_id!r}{_closest(sae_id, ids)}")
    return SaeSource("release", text, release=release, sae_id=sae_id)


@dataclass(frozen=True)
class Release:
    """One SAELens release as its directory lists it."""

    model: str
    repo_id: str
    ids: tuple[str, ...]
    neuronpedia: dict[str, str | None]


@functools.cache
def _directory() -> dict[str, Release]:
    """SAELens's directory of releases (its ``pretrained_saes.yaml``), read without importing SAELens (slow)."""
    import yaml

    spec = importlib.util.find_spec("sae_lens")
    if spec is None or not spec.submodule_search_locations:
        raise SaeSourceError("SAELens is not installed; run make setup")
    path = Path(next(iter(spec.submodule_search_locations))) / "pretrained_saes.yaml"
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return {name: Release(str(entry.get("model")), str(entry.get("repo_id")),
                          tuple(str(sae["id"]) for sae in entry.get("saes", [])),
                          {str(sae["id"]): sae.get("neuronpedia") for sae in entry.get("saes", [])})
            for name, entry in data.items()}


def release_info(source: SaeSource) -> dict[str, Any]:
    """What SAELens's directory says of a release SAE: the model it was trained on and its Neuronpedia id."""
    if source.kind != "release" or source.release is None or source.sae_id is None:
        return {}
    release = _directory()[source.release]
    return {"model": release.model, "repo_id": release.repo_id, "neuronpedia": release.neuronpedia.get(source.sae_id)}


def load_sae(source: SaeSource, device: str) -> Any:
    """The SAE of a ``folder`` or ``release`` source.

    Raises:
        SaeSourceError: The folder does not load, or the release cannot be fetched (offline).
    """
    from sae_lens import SAE

    if source.kind == "folder":
        try:
            return SAE.load_from_disk(source.folder, device=device)
        except (OSError, ValueError, KeyError, RuntimeError) as err:
            raise SaeSourceError(f"--sae {source.text}: the folder does not load as an SAE ({err})") from err
    if source.kind == "release":
        try:
            return SAE.from_pretrained(source.release, source.sae_id, device=device)
        except OSError as err:
            raise SaeSourceError(
                f"--sae {source.text}: could not fetch it from the Hugging Face hub ({type(err).__name__}); "
                "without a network, use --sae train (SAEs trained here work offline)") from err
    raise ValueError(f"a {source.kind} source is trained, not loaded")


def check_fits(sae: Any, parts: ModelParts, source: SaeSource) -> int:
    """The residual ``sae`` reads, after checking it fits the model.

    Raises:
        SaeMismatchError: Another hook kind, a block the model lacks, or another width.
    """
    hook = sae.cfg.metadata.hook_name
    try:
        layer = residual_of_hook(hook, parts.n_layers)
    except SaeMismatchError as err:
        raise SaeMismatchError(f"--sae {source.text}: {err}") from err
    if sae.cfg.d_in != parts.d_model:
        raise SaeMismatchError(f"--sae {source.text}: the SAE reads vectors of width {sae.cfg.d_in}, the model's "
                               f"residual has width {parts.d_model} (an SAE for another model?)")
    return layer
