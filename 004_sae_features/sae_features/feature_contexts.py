"""Where chosen SAE features fire in held-out corpus text: every token's activation, and the top contexts.

One pass over the held-out windows (the SAEs never trained on them), stopped after the
deepest SAE's hook; each SAE encodes its residual and only the chosen features' columns
are kept, at positions 1..T-1 of each window (position 0 is the attention sink, never
counted, as in ``layers_core.sae.text_features``). A feature's top contexts are the windows where it
peaks highest, one context per window (the strongest first; ties by window, then
position), each a slice of ``CONTEXT_TOKENS`` around the peak.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.hooks.activations import run_with_cache
from layers_core.models.architecture import ModelParts

CONTEXT_TOKENS = 24  # tokens shown around a peak: a third before it, the rest after
TOP_CONTEXTS = 8


@dataclass(frozen=True)
class Context:
    """One top-activating context of a feature in the corpus windows."""

    window: int
    peak: int  # index of the peak token within ``token_ids``
    token_ids: tuple[int, ...]
    values: tuple[float, ...]

    @property
    def max(self) -> float:
        """The feature's activation at the peak."""
        return self.values[self.peak]


def corpus_activations(
    model: nn.Module, parts: ModelParts, windows: Tensor, saes: Mapping[int, Any],
    features: Mapping[int, Sequence[int]], *, batch_size: int = 8,
) -> dict[int, Tensor]:
    """Residual index -> ``[N, T-1, len(features[layer])]`` activations of the chosen features at positions 1..T-1."""
    layers = [layer for layer in saes if features.get(layer)]
    if not layers:
        return {}
    hooks = {layer: saes[layer].cfg.metadata.hook_name for layer in layers}
    found: dict[int, list[Tensor]] = {layer: [] for layer in layers}
    with torch.no_grad():
        for start in range(0, int(windows.shape[0]), batch_size):
            batch = windows[start:start + batch_size]
            run = run_with_cache(model, parts, batch, list(dict.fromkeys(hooks.values())), logits_at="none")
            for layer in layers:
                sae = saes[layer]
                resid = run.cache[hooks[layer]][:, 1:]
                acts = sae.encode(resid.to(sae.device, sae.dtype))
                found[layer].append(acts[..., list(features[layer])].float().cpu())
    return {layer: torch.cat(parts_, 0) for layer, parts_ in found.items()}


def top_contexts(windows: Tensor, values: Tensor, *, count: int = TOP_CONTEXTS,
                 width: int = CONTEXT_TOKENS) -> list[Context]:
    """The ``count`` windows where one feature peaks highest (module doc).

    Args:
        windows: ``[N, T]`` token ids.
        values: ``[N, T-1]`` the feature's activations at positions 1..T-1.
        count: How many contexts at most (windows where it never fires are left out).
        width: Tokens per context.
    """
    peaks, where = values.max(1)
    order = sorted((i for i in range(values.shape[0]) if float(peaks[i]) > 0),
                   key=lambda i: (-float(peaks[i]), i))[:count]
    found = []
    for i in order:
        position = int(where[i])  # in 0..T-2, i.e. token position + 1
        start = max(0, min(position - width // 3, values.shape[1] - width))
        stop = min(values.shape[1], start + width)
        ids = windows[i, 1 + start:1 + stop]
        found.append(Context(i, position - start, tuple(int(t) for t in ids),
                             tuple(float(v) for v in values[i, start:stop])))
    return found
