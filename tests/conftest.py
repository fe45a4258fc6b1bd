"""Shared pytest fixtures: offline hub, one model cache per session (per worker), tiny checkpoints, SmolLM2.

HF_HUB_OFFLINE is set here at import time, not in a fixture: huggingface_hub
reads it once when it is first imported, which happens while test modules are
collected (before any fixture runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
# Under pytest-xdist (make test runs two workers) each worker and the run.py subprocesses it starts
# use one torch thread: two processes with a thread per core each thrash on a two-core machine.
# Set before torch is imported, which reads it once.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(scope="session", autouse=True)
def tinycave_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One tinycave cache folder for the whole session (or $TINYCAVE_CACHE when already set).

    Dequantizing SmolLM2 costs ~15 s; sharing the folder means it happens at most
    once per session. Set TINYCAVE_CACHE to a lasting folder to skip it entirely.
    """
    preset = os.environ.get("TINYCAVE_CACHE")
    if preset:
        yield Path(preset)
        return
    folder = tmp_path_factory.mktemp("tinycave-cache")
    os.environ["TINYCAVE_CACHE"] = str(folder)
    try:
        yield folder
    finally:
        os.environ.pop("TINYCAVE_CACHE", None)


@pytest.fixture(scope="session")
def tiny_checkpoints(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """A function family -> folder holding that family's tiny safetensors checkpoint (built once)."""
    from tests.tiny_models import save_checkpoint

    root = tmp_path_factory.mktemp("tiny-checkpoints")
    built: dict[str, Path] = {}

    def checkpoint(family: str) -> Path:
        if family not in built:
            built[family] = save_checkpoint(family, root / family)
        return built[family]

    return checkpoint


@pytest.fixture(scope="session")
def smollm2(tinycave_cache: Path):
    """The bundled SmolLM2 as a LoadedModel, on cpu in float32 so numbers match on every machine.

    Shared by the whole session: do not free it or change its modules. ``bridge()``
    leaves its model alone (it boots on a deep copy) but then holds a second copy of
    the weights (~0.5 GB) for the rest of the session; load your own copy to boot one.
    """
    from layers_core.models.loading import load_model

    return load_model("smollm2-135m", device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    """The bundled SmolLM2's tokenizer alone, read from its GGUF file (about 5 s, no weights)."""
    from transformers import AutoTokenizer

    from layers_core.models.bundled import bundled_gguf_path

    path = bundled_gguf_path("smollm2-135m")
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
