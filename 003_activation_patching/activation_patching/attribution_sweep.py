"""Attribution patching for a pair's whole sweep, and the attribution CSV's rows next to the exact ones.

``attribute_pair`` caches both sides once (``sweeps.cache_side``), then per
direction computes each method's estimates for every spec:

- ``approx``: plain AtP (``attribution_patching``): one forward and backward pass;
- ``approx_ig``: gradients averaged along the input path (``atp_star.path_estimates``);
- ``graddrop``: AtP*'s GradDrop, unsigned (``atp_star.grad_drop_scores``).

Values come in the exact sweep's row order (``sweeps.sweep_pair``: direction, then
``specs``), so ``attribution_rows`` can put them beside ``PatchingRow``s, whose
``restoration`` becomes the ``exact`` column.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from torch import nn

from activation_patching.atp_star import INPUT_POINT, PATH_STEPS, grad_drop_scores, path_estimates
from activation_patching.attribution_patching import attribution_estimates
from activation_patching.metric import DIRECTIONS, Direction, Restoration, restoration_metric
from activation_patching.pairs import PatchingPair
from activation_patching.patch_specs import PatchSpec, source_points
from activation_patching.sweeps import PatchingRow, Side, cache_side, pair_sides
from layers_core.hooks.activations import ActivationRun, Patch
from layers_core.models.architecture import ModelParts

Method = Literal["approx", "approx_ig", "graddrop"]
METHODS: tuple[Method, ...] = ("approx", "approx_ig", "graddrop")
KEY_COLUMNS = ("pair_id", "direction", "component", "layer", "head", "position", "token", "rel_depth", "hook")


def attribution_columns(methods: Sequence[Method] = METHODS) -> list[str]:
    """The attribution CSV's columns: the patching CSV's keys, ``exact``, then one per method."""
    return [*KEY_COLUMNS, "exact", *methods]


@dataclass(frozen=True)
class PairAttribution:
    """A pair's metric, each method's values in sweep row order, and the seconds each method took."""

    metric: Restoration
    estimates: dict[Method, list[float]]
    seconds: dict[Method, float]


def attribute_pair(
    model: nn.Module, parts: ModelParts, pair: PatchingPair, specs: Sequence[PatchSpec],
    corrupt_patches: Sequence[Patch] = (), directions: Sequence[Direction] = DIRECTIONS,
    methods: Sequence[Method] = METHODS, steps: int = PATH_STEPS,
) -> PairAttribution:
    """Every method's estimate for every spec and direction (rows as ``sweeps.sweep_pair``'s)."""
    clean, corrupt = pair_sides(pair, corrupt_patches)
    points = source_points(specs, parts.n_layers)
    read = list(dict.fromkeys([*points, INPUT_POINT]))
    caches = {"clean": cache_side(model, parts, clean, read), "corrupt": cache_side(model, parts, corrupt, read)}
    metric = restoration_metric(
        caches["clean"].logits[0, -1], caches["corrupt"].logits[0, -1], pair.answer_id, pair.corrupt_answer_id
    )
    estimates: dict[Method, list[float]] = {method: [] for method in methods}
    seconds: dict[Method, float] = dict.fromkeys(methods, 0.0)
    for direction in directions:
        base, source = (corrupt, caches["clean"]) if direction == "denoise" else (clean, caches["corrupt"])
        for method in methods:
            started = time.perf_counter()
            estimates[method] += _ESTIMATORS[method](model, parts, base, source, specs, points, metric, steps)
            seconds[method] += time.perf_counter() - started
    return PairAttribution(metric, estimates, seconds)


def attribution_rows(
    rows: Sequence[PatchingRow], estimates: Mapping[Method, Sequence[float]]
) -> list[dict[str, Any]]:
    """The attribution CSV's rows: each exact row's keys, ``exact`` (its restoration) and every method's value.

    Raises:
        ValueError: A method has not one value per row.
    """
    for method, values in estimates.items():
        if len(values) != len(rows):
            raise ValueError(f"{method}: {len(values)} values for {len(rows)} exact rows")
    found = []
    for index, row in enumerate(rows):
        record = {key: value for key, value in row.as_dict().items() if key != "restoration"}
        record["exact"] = row.restoration
        record.update({method: float(values[index]) for method, values in estimates.items()})
        found.append(record)
    return found


def _plain(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, specs: Sequence[PatchSpec],
    points: Sequence[str], metric: Restoration, steps: int,
) -> list[float]:
    return attribution_estimates(model, parts, base, source, specs, points, metric)


def _grad_drop(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, specs: Sequence[PatchSpec],
    points: Sequence[str], metric: Restoration, steps: int,
) -> list[float]:
    return grad_drop_scores(model, parts, base, source, specs, points, metric)


_Estimator = Callable[
    [nn.Module, ModelParts, Side, ActivationRun, Sequence[PatchSpec], Sequence[str], Restoration, int], list[float]
]
_ESTIMATORS: dict[Method, _Estimator] = {"approx": _plain, "approx_ig": path_estimates, "graddrop": _grad_drop}
