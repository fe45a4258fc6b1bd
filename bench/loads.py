"""Load times: a GGUF file dequantized cold, the same model from tinycave's cache, and a plain load.

- gguf_cold: ``load_model`` with ``TINYCAVE_CACHE`` pointing at an empty folder:
  hashing the file, dequantizing it with transformers and writing the cache entry.
- cached: ``load_model`` hitting that entry. It includes reading the config,
  the sha256 memo lookup, verifying the entry (file sizes and safetensors
  headers), ``from_pretrained`` of the weights, copying them into torch-owned
  aligned memory, the tokenizer, the device plan, the move to the device and the
  architecture checks.
- plain_safetensors: ``AutoModelForCausalLM.from_pretrained(<entry folder>)`` and
  ``AutoTokenizer.from_pretrained`` of the same folder, then one read of every
  weight. transformers maps safetensors files lazily, so without that read the
  weights would not have left the disk yet and the first forward pass would pay
  for them; ``load_model`` pays up front by copying them.
- plain_lazy: ``from_pretrained`` of the weights alone, nothing read (for reference).
For a folder or hub model there is no GGUF step: ``cached`` is ``load_model`` on
it and the plain loads read the same location.
"""

from __future__ import annotations

import contextlib
import gc
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from bench.timing import Timing, interleaved, time_once
from layers_core.models.gguf_cache import CACHE_ENV
from layers_core.models.loading import LoadedModel, free_model, load_model
from layers_core.models.model_spec import ModelSpec, parse_model_spec


@contextlib.contextmanager
def cache_folder(folder: Path) -> Iterator[Path]:
    """Point ``TINYCAVE_CACHE`` at ``folder`` for the duration, then restore it."""
    previous = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(folder)
    try:
        yield folder
    finally:
        if previous is None:
            os.environ.pop(CACHE_ENV, None)
        else:
            os.environ[CACHE_ENV] = previous


def _loaded_then_freed(spec: ModelSpec, device: str) -> Callable[[], None]:
    def run() -> None:
        free_model(load_model(spec, device=device))

    return run


def _plain_then_freed(location: str, loaded: LoadedModel, read_weights: bool) -> Callable[[], None]:
    def run() -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(
            location, dtype=loaded.plan.torch_dtype(), use_safetensors=True
        )
        if read_weights:
            AutoTokenizer.from_pretrained(location)
            with torch.no_grad():
                for param in model.parameters():
                    param.sum()
        del model
        gc.collect()

    return run


class LoadBench:
    """Runs the load measurements of one model; keeps the cold cache so the rest of the bench reuses it."""

    def __init__(self, spec_text: str, device: str) -> None:
        """Args: spec_text: the model as the user names it; device: "auto" or a device name."""
        self.spec = parse_model_spec(spec_text)
        self.device = device
        self.folder = Path(tempfile.mkdtemp(prefix="tinycave-bench-cache-"))
        self.measured = False

    @property
    def is_gguf(self) -> bool:
        """Whether the model comes from a GGUF file (bundled alias or .gguf path)."""
        return self.spec.kind in ("bundled", "gguf")

    def measure(self, repeats: int, cold_repeats: int, progress: Callable[[str], None]) -> dict:
        """Cold, cached and plain load times as a JSON-ready dict (seconds; None where not applicable)."""
        with cache_folder(self.folder):
            cold = self._cold(cold_repeats, progress) if self.is_gguf else None
            probe = load_model(self.spec, device=self.device)
            location = probe.source.get("cache_entry") or self.spec.location
            cases = {
                "cached": _loaded_then_freed(self.spec, self.device),
                "plain_safetensors": _plain_then_freed(location, probe, read_weights=True),
                "plain_lazy": _plain_then_freed(location, probe, read_weights=False),
            }
            free_model(probe)
            timings = interleaved(cases, repeats, "cpu", progress=lambda r: progress(f"loads {r}"))
        self.measured = True
        cached, plain = timings["cached"], timings["plain_safetensors"]
        return {
            "gguf_cold": None if cold is None else cold.as_dict(),
            "gguf_cold_reason": None if self.is_gguf else f"{self.spec.kind} model: no GGUF step",
            "cached": cached.as_dict(),
            "plain_safetensors": plain.as_dict(),
            "plain_lazy": timings["plain_lazy"].as_dict(),
            "plain_location": "the cache entry folder" if self.is_gguf else self.spec.location,
            "ratio_cached_load": cached.median / plain.median,
        }

    def _cold(self, repeats: int, progress: Callable[[str], None]) -> Timing:
        samples = []
        for index in range(repeats):
            shutil.rmtree(self.folder / "gguf", ignore_errors=True)
            samples.append(time_once(_loaded_then_freed(self.spec, self.device), "cpu"))
            progress(f"gguf cold load {index + 1}/{repeats}: {samples[-1]:.1f} s")
        return Timing(tuple(samples))

    def load(self) -> LoadedModel:
        """The model for the workloads: from this bench's cache after ``measure``, else the user's cache."""
        if not self.measured:
            return load_model(self.spec, device=self.device)
        with cache_folder(self.folder):
            return load_model(self.spec, device=self.device)

    def cleanup(self) -> None:
        """Delete the temporary cache."""
        shutil.rmtree(self.folder, ignore_errors=True)
