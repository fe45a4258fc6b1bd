"""An SAE's measured quality kept beside it in the SAE cache, so a second run does not measure it again.

Quality on held-out windows costs three forward passes per SAE per batch of windows
(minutes for four SAEs on a cpu), and depends only on the SAE, the model, the windows
and the arithmetic. For a trained SAE (its cache entry's folder) the measured
``SaeQuality`` is written into that folder as ``quality-<key>.json``, the key naming the
windows (their count, width and a hash of their token ids), the device and dtype the
model ran in, and ``QUALITY_VERSION`` (raised whenever ``sae_quality`` changes what it
measures). A file that does not parse or does not match is measured again and replaced.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from pathlib import Path

from torch import Tensor

from layers_core.runs.artefacts import json_safe
from layers_core.sae.sae_quality import SaeQuality

QUALITY_VERSION = 1


def quality_key(windows: Tensor, device: str, dtype: str) -> str:
    """The file-name key of one measurement (module doc)."""
    digest = hashlib.sha256(windows.cpu().contiguous().numpy().tobytes()).hexdigest()[:16]
    return f"v{QUALITY_VERSION}-{windows.shape[0]}x{windows.shape[1]}-{digest}-{device}-{dtype}"


def _read(path: Path) -> SaeQuality | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        values = {f.name: data[f.name] for f in fields(SaeQuality)}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    values = {k: (math.nan if v is None else v) for k, v in values.items()}
    return SaeQuality(**values)


def cached_quality(
    folders: Mapping[int, Path | None], key: str, measure: Callable[[Sequence[int]], list[SaeQuality]],
) -> list[SaeQuality]:
    """Each residual's quality, read from its folder when measured before, else measured (together) and saved.

    Args:
        folders: Residual -> its SAE's cache folder, or None for an SAE not trained here (always measured).
        key: ``quality_key`` of the windows and arithmetic.
        measure: Measures the given residuals' SAEs, returning their qualities in that order.

    Returns:
        The qualities in the order of ``folders``.
    """
    found: dict[int, SaeQuality] = {}
    for layer, folder in folders.items():
        cached = _read(folder / f"quality-{key}.json") if folder is not None else None
        if cached is not None and cached.layer == layer:
            found[layer] = cached
    missing = [layer for layer in folders if layer not in found]
    if missing:
        for quality in measure(missing):
            found[quality.layer] = quality
            folder = folders[quality.layer]
            if folder is not None and folder.is_dir():
                target = folder / f"quality-{key}.json"
                staging = target.with_suffix(".tmp")
                staging.write_text(json.dumps(json_safe(quality.as_row()), indent=2) + "\n", encoding="utf-8")
                staging.replace(target)
    return [found[layer] for layer in folders]
