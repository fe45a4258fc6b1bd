"""Load a GGUF file (bundled or the user's) through the dequantized-model cache.

The config is read first (from a cache entry when there is one, else from the
GGUF metadata), so ``device_policy`` picks device and dtype before any weights
load. Then either the cache entry is loaded, or transformers dequantizes the
file (``gguf_file=``) directly into the planned dtype and the result is written
to the cache for next time. A cache entry loads straight onto a GPU (``device_map``);
a fresh dequantization happens on the cpu and the caller moves the model.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from layers_core.cli import status
from layers_core.errors import InvalidModelFileError
from layers_core.models import gguf_cache
from layers_core.models.bundled import bundled_gguf_path
from layers_core.models.load_errors import first_line, gguf_errors
from layers_core.models.model_spec import ModelSpec

if TYPE_CHECKING:
    from transformers import PretrainedConfig

    from layers_core.models.device_policy import DevicePlan

GGUF_MAGIC = b"GGUF"
# transformers dequantizes every tensor of a GGUF file into a float32 numpy array before
# it builds the model: RAM holds that copy on top of the model while a first load runs.
GGUF_STAGING_BYTES_PER_PARAM = 4.0


def device_map(plan: DevicePlan) -> str | None:
    """``device_map`` for ``from_pretrained``: the GPU itself (weights load straight onto it), None on the cpu."""
    return None if plan.device == "cpu" else plan.device


@dataclass(frozen=True)
class GgufConfig:
    """A GGUF file's identity and config, read before any weights load.

    Attributes:
        path: The .gguf file.
        sha256: Its sha256 (the cache key).
        config: The transformers config, from a cache entry when there is one
            (parsing GGUF metadata takes seconds), else from the file.
        read_from_file: Whether ``config`` was parsed from the GGUF file itself.
    """

    path: Path
    sha256: str
    config: PretrainedConfig
    read_from_file: bool


def read_gguf_config(spec: ModelSpec) -> GgufConfig:
    """Check that a "bundled" or "gguf" spec names a GGUF file and read its config.

    Raises:
        InvalidModelFileError: The file is not a GGUF file or cannot be parsed.
        UnsupportedArchitectureError: transformers cannot read this GGUF architecture.
    """
    from transformers import AutoConfig

    path = bundled_gguf_path(spec.location) if spec.kind == "bundled" else Path(spec.location)
    with open(path, "rb") as handle:
        if handle.read(4) != GGUF_MAGIC:
            raise InvalidModelFileError(
                f"{path} is not a GGUF file (it does not start with the GGUF magic bytes); "
                "pass a real .gguf model file"
            )
    sha256 = gguf_cache.file_sha256(path)
    entry = gguf_cache.any_entry(sha256)
    if entry is not None:
        return GgufConfig(path, sha256, AutoConfig.from_pretrained(str(entry)), read_from_file=False)
    with gguf_errors(path):
        config = AutoConfig.from_pretrained(str(path.parent), gguf_file=path.name)
    return GgufConfig(path, sha256, config, read_from_file=True)


def load_gguf(spec: ModelSpec, gguf: GgufConfig, plan: DevicePlan) -> tuple[Any, Any, dict]:
    """(model in ``plan.dtype``, tokenizer, provenance): from the cache, or dequantized and cached.

    A cache entry loads straight onto a GPU; a fresh dequantization happens on the cpu.
    """
    path, sha256 = gguf.path, gguf.sha256
    entry, discarded = gguf_cache.find_entry(sha256, plan.dtype)
    source: dict[str, Any] = {"kind": spec.kind, "location": spec.location, "gguf_path": str(path),
                              "gguf_sha256": sha256, "cache_discarded": discarded}
    loaded = None
    if entry is not None:
        status(f"loading {spec.name} from cache {entry} ...")
        loaded = _load_entry(entry, plan, discarded)
    if loaded is not None:
        model, tokenizer = loaded
        source.update(cache="hit", cache_entry=str(entry))
        return model, tokenizer, source
    for line in discarded:
        status(f"damaged cache entry removed, rebuilding it: {line}")
    cache_dir = gguf_cache.gguf_cache_dir()
    status(f"dequantizing {path.name} (first use of this file; cached afterwards in {cache_dir}) ...")
    # Handing over the config read from the GGUF spares transformers parsing it again (~2.5 s).
    model, tokenizer = _dequantize(path, plan, gguf.config if gguf.read_from_file else None)
    source.update(cache="built", cache_entry=None)
    try:
        source["cache_entry"] = str(gguf_cache.write_entry(sha256, path, model, tokenizer, plan.dtype))
    except OSError as err:
        source["cache_error"] = str(err)
        status(f"could not write the cache entry ({err}); going on without it")
    return model, tokenizer, source


def _load_entry(entry: Path, plan: DevicePlan, discarded: list[str]) -> tuple[Any, Any] | None:
    """Load a verified entry; an entry transformers still cannot read is deleted (None returned)."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(
            str(entry), dtype=plan.torch_dtype(), use_safetensors=True, device_map=device_map(plan)
        )
        tokenizer = AutoTokenizer.from_pretrained(str(entry))
    except (OSError, ValueError, SafetensorError) as err:
        discarded.append(f"{entry}: unreadable ({first_line(err)})")
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return model, tokenizer


def _dequantize(path: Path, plan: DevicePlan, config: PretrainedConfig | None) -> tuple[Any, Any]:
    """Dequantize a GGUF file with transformers and make the model savable."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with gguf_errors(path):
        tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
        model: Any = AutoModelForCausalLM.from_pretrained(
            str(path.parent), gguf_file=path.name, config=config, dtype=plan.torch_dtype()
        )
    # The weights are already plain tensors, but transformers refuses to save a
    # model that still has its GGUF quantizer; a reload must not look for one either.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    return model, tokenizer

