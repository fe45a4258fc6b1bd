"""One-line explanations for everything that can go wrong while loading a model.

transformers and huggingface_hub report a missing repo, a gated repo, no
network, a damaged file or a custom architecture as ``OSError`` or
``ValueError`` with multi-line text; this module turns each into the
``TinycaveError`` subclass that says what happened and what to do. A hub token
never appears in a message: ours never mention it, and third-party text is
scrubbed of it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from layers_core.errors import (
    GatedModelError,
    InvalidModelFileError,
    ModelNotFoundError,
    TinycaveError,
    UnsupportedArchitectureError,
)
from layers_core.models.model_spec import BUNDLED_ALIASES, ModelSpec, did_you_mean

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_BUNDLED_HINT = f"or use a bundled model: {', '.join(BUNDLED_ALIASES)}"


def check_folder(folder: Path) -> None:
    """Refuse a folder that holds no safetensors checkpoint, saying what it holds instead.

    Raises:
        InvalidModelFileError: No config.json, only pickled weights, or no weights.
    """
    names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    if "config.json" not in names:
        ggufs = sorted(n for n in names if n.lower().endswith(".gguf"))
        hint = (f"pass the .gguf file itself, e.g. {folder / ggufs[0]}" if ggufs
                else "pass the folder that save_pretrained wrote (config.json and *.safetensors)")
        raise InvalidModelFileError(f"{folder} has no config.json, so it is not a transformers checkpoint; {hint}")
    if any(n.endswith((".safetensors", ".safetensors.index.json")) for n in names):
        return
    if any(n.endswith(_PICKLE_SUFFIXES) for n in names):
        raise InvalidModelFileError(
            f"{folder} holds only pickled PyTorch weights (*.bin), which can run arbitrary code when loaded, "
            "so tinycave loads only *.safetensors; if you trust the source, convert it once with "
            "transformers' save_pretrained (it writes safetensors)"
        )
    raise InvalidModelFileError(
        f"{folder} has a config.json but no *.safetensors weights; copy the weights in too"
    )


@contextmanager
def gguf_errors(path: Path) -> Iterator[None]:
    """Turn transformers' and gguf's failures on reading a GGUF file into one line."""
    try:
        yield
    except ValueError as err:
        if "not supported" in str(err):
            raise UnsupportedArchitectureError(f"{path.name}: {first_line(err)}") from err
        raise InvalidModelFileError(
            f"{path} could not be read as a GGUF model ({first_line(err)}); "
            "the file may be damaged, download it again"
        ) from err
    except (KeyError, IndexError, OSError) as err:
        raise InvalidModelFileError(f"{path} could not be read as a GGUF model ({first_line(err)})") from err


@contextmanager
def translated_errors(spec: ModelSpec) -> Iterator[None]:
    """Turn transformers' and the hub's failures for a folder or hub id into one line."""
    from safetensors import SafetensorError

    try:
        yield
    except (OSError, ValueError, SafetensorError) as err:
        raise explain_load_error(err, spec) from err


def explain_load_error(err: BaseException, spec: ModelSpec) -> TinycaveError:
    """The one-line error for a failed ``from_pretrained`` of a folder or hub id."""
    text = str(err)
    if "trust_remote_code" in text:
        return UnsupportedArchitectureError(
            f"{spec.location} needs its own Python code to load; "
            "if you trust its authors, rerun with --trust-remote-code"
        )
    if "does not recognize this architecture" in text or "Unrecognized configuration class" in text:
        import transformers

        return UnsupportedArchitectureError(
            f"{spec.location}: {first_line(err)} (transformers {transformers.__version__} cannot load it as a "
            "causal language model); use a model of a supported family"
        )
    if spec.kind == "hub":
        return explain_hub_error(err, spec.location)
    if "tokenizer" in text.lower():
        return InvalidModelFileError(
            f"{spec.location} has no usable tokenizer ({first_line(err)}); copy in the tokenizer files "
            "saved with the model (tokenizer.json, tokenizer_config.json)"
        )
    return InvalidModelFileError(
        f"{spec.location} could not be loaded ({scrub(first_line(err))}); is it a complete checkpoint?"
    )


def explain_hub_error(err: BaseException, model_id: str) -> TinycaveError:
    """The one-line error for a failed hub download of ``model_id``.

    Looks through ``err``'s causes for huggingface_hub's exception types (transformers
    wraps them in ``OSError``), then at transformers' own wording.
    """
    from huggingface_hub import errors as hub

    for cause in _causes(err):
        if isinstance(cause, hub.GatedRepoError):  # before RepositoryNotFoundError: it subclasses it
            return _gated(model_id)
        if isinstance(cause, hub.RepositoryNotFoundError):
            return _not_on_hub(model_id)
        if isinstance(cause, hub.RevisionNotFoundError):
            return ModelNotFoundError(f"{model_id}: the requested revision does not exist on the hub; check it")
        if isinstance(cause, (hub.LocalEntryNotFoundError, hub.OfflineModeIsEnabled, ConnectionError)):
            return _unreachable(model_id)
    text = str(err)
    if "cannot be loaded with `safetensors`" in text:
        return InvalidModelFileError(
            f"{model_id} has only pickled weights on the hub, no *.safetensors, and pickles can run "
            "arbitrary code when loaded; tinycave does not load them, pick a repo that has safetensors"
        )
    if "gated repo" in text:
        return _gated(model_id)
    if "couldn't connect" in text:
        return _unreachable(model_id)
    if "not a valid model identifier" in text:
        return _not_on_hub(model_id)
    return ModelNotFoundError(f"could not load {model_id} from the hub: {scrub(first_line(err))}")


def _gated(model_id: str) -> GatedModelError:
    return GatedModelError(
        f"{model_id} is gated: accept its licence on https://huggingface.co/{model_id}, "
        "then log in with `.venv/bin/hf auth login` (or set HF_TOKEN) and retry"
    )


def _not_on_hub(model_id: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"{model_id} was not found on the Hugging Face hub{did_you_mean(model_id)} (a private repo needs "
        f"`.venv/bin/hf auth login`); check the id, {_BUNDLED_HINT}"
    )


def _unreachable(model_id: str) -> ModelNotFoundError:
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    why = "HF_HUB_OFFLINE is set" if offline else "no network"
    return ModelNotFoundError(
        f"{model_id} was not found: it is not in the local hub cache and the Hugging Face hub cannot be reached "
        f"({why}){did_you_mean(model_id)}; check the id and your network, {_BUNDLED_HINT}"
    )


def _causes(err: BaseException) -> Iterator[BaseException]:
    """``err`` and the exceptions it was raised from, outermost first."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's text (or its type name)."""
    lines = str(err).strip().splitlines()
    return lines[0] if lines else type(err).__name__


def scrub(text: str) -> str:
    """Remove any hub token that a third-party message might echo."""
    for variable in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        token = os.environ.get(variable)
        if token:
            text = text.replace(token, "***")
    return text
