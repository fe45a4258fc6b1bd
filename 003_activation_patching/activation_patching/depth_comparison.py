"""001's and 002's depth measures recomputed on 003's own clean prompts, to set beside the handover layer.

One forward pass per pair's clean prompt reads the answer position and gives:

- 001's milestone: the first residual layer ``l`` in ``0..L`` (depth ``l / L``, the
  numbering of ``resid_pre``) at which the norm lens ranks the clean answer's first
  token top-1 (``layers_core.lens``, the same code 001 runs);
- 002's measure: the direct logit attribution of the clean answer's logit minus the
  corrupt answer's at the answer position, per block's attention and MLP output
  (``layers_core.attribution``, the same code 002 runs; 002's foil is here the
  corrupt answer), at depth ``(l + 1) / L``.

``summarise`` takes their medians over the pairs the battery medians use (the
resolvable ones), so the three experiments' depths come from the same prompts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from activation_patching.pairs import PatchingPair
from layers_core import metrics
from layers_core.attribution.direct_attribution import attribute_components, logit_diff_direction
from layers_core.attribution.residual_components import answer_position_points, components_from_run
from layers_core.hooks.activations import run_with_cache
from layers_core.lens.layer_sweep import sweep_last_positions
from layers_core.lens.lens import Lens
from layers_core.models.architecture import ModelParts

TOP_LAYERS = 3
LENS_RULE = ("first residual layer l (0..L, relative depth l/L, as resid_pre counts) at which the norm lens "
             "(001's default lens) ranks the clean answer's first token top-1 on the clean prompt")
DLA_RULE = ("direct logit attribution (002's measure) of the clean answer's logit minus the corrupt answer's at "
            "the answer position of the clean prompt, per block's attention and MLP output (relative depth "
            "(l + 1)/L), median over the prompts")


@dataclass(frozen=True)
class PromptDepths:
    """One clean prompt's measures: the lens's first rank-1 layer (None: never) and the per-block DLA."""

    first_rank1_layer: int | None
    attn_dla: list[float]
    mlp_dla: list[float]


def _resid_points(parts: ModelParts) -> list[str]:
    return ["blocks.0.hook_resid_pre", *(f"blocks.{layer}.hook_resid_post" for layer in range(parts.n_layers))]


def measure_prompt(model: nn.Module, parts: ModelParts, lens: Lens, pair: PatchingPair) -> PromptDepths:
    """The lens milestone and the per-block DLA of one pair's clean prompt, from one forward pass."""
    points = list(dict.fromkeys([*answer_position_points(parts), *_resid_points(parts)]))
    input_ids = torch.tensor([pair.clean_ids], dtype=torch.long)
    run = run_with_cache(model, parts, input_ids, points, positions="last", logits_at="last")
    direction = logit_diff_direction(parts, pair.answer_id, pair.corrupt_answer_id)
    attribution = attribute_components(parts, components_from_run(parts, run), {"diff": direction})[0]["diff"]
    resid = torch.stack([run[point][:, -1] for point in _resid_points(parts)])  # [L+1, 1, d]
    sweep = sweep_last_positions(lens, resid, [pair.answer_id])[0]
    first = metrics.milestones(sweep.answer_rank, sweep.p_answer, sweep.kl_to_final_bits, parts.n_layers)
    return PromptDepths(first["first_rank1"].layer, [row.value for row in attribution.rows("attn")],
                        [row.value for row in attribution.rows("mlp")])


def measure_pairs(model: nn.Module, parts: ModelParts, pairs: Sequence[PatchingPair]) -> dict[str, PromptDepths]:
    """``measure_prompt`` for every pair (by ``pair_id``), with one norm lens."""
    lens = Lens(parts, "norm")
    return {pair.pair_id: measure_prompt(model, parts, lens, pair) for pair in pairs}


def _median(values: Sequence[float]) -> float | None:
    return float(np.median(values)) if len(values) else None


def summarise(depths: dict[str, PromptDepths], pair_ids: Sequence[str], n_layers: int) -> dict[str, Any]:
    """The JSON's ``depth_comparison``: medians over ``pair_ids`` (the battery's resolvable pairs)."""
    kept = [depths[pair_id] for pair_id in pair_ids if pair_id in depths]
    reached = [d.first_rank1_layer for d in kept if d.first_rank1_layer is not None]
    median_layer = _median(reached)
    layers = [
        {"layer": layer, "rel_depth": metrics.rel_depth(layer + 1, n_layers),
         "median_attn": _median([d.attn_dla[layer] for d in kept]),
         "median_mlp": _median([d.mlp_dla[layer] for d in kept])}
        for layer in range(n_layers)
    ] if kept else []
    return {
        "n_prompts": len(kept), "lens_rule": LENS_RULE,
        "first_rank1": {
            "median_layer": median_layer,
            "median_rel_depth": (None if median_layer is None
                                 else round(median_layer / n_layers, metrics.REL_DEPTH_DECIMALS)),
            "n_reached": len(reached), "n_never": len(kept) - len(reached),
        },
        "dla_rule": DLA_RULE, "dla_layers": layers,
        "top_attn_layers": _top(layers, "median_attn"), "top_mlp_layers": _top(layers, "median_mlp"),
    }


def _top(layers: Sequence[dict[str, Any]], key: str) -> list[int]:
    ranked = sorted(layers, key=lambda entry: (-entry[key], entry["layer"]))
    return [entry["layer"] for entry in ranked[:TOP_LAYERS]]
