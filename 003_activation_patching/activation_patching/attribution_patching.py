"""Attribution patching (AtP): the gradient approximation of every patched run of a sweep at once.

Nanda (2023); Kramár et al. (2024, arXiv 2403.00745). For a pair and a direction
(``sweeps``: denoise = base corrupted, source clean; noise = the reverse), the base
runs once with ``keep_graph=True`` reading every point the sweep writes, and one
backward pass of the restoration (``metric.Restoration``'s formula, kept
differentiable) gives its gradient at each point. A site's estimate is

    approx(site) = restoration(base) + (source_act - base_act) · grad(site),

the first-order Taylor expansion of the patched run's restoration around the base,
so it is on the same scale as the exact sweep's value (0 or 1 when nothing
changes) and sits beside it in ``output-<model>-attribution.csv``. The base
activations are those of the gradient's own forward pass. Estimates come in the
order of the exact sweep's rows: direction, then ``specs``.

Variants with other gradients (``path_gradients``: averaged along a path from base
to source; ``grad_drop``: AtP*'s GradDrop) reuse ``Gradients`` and
``linear_changes``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from activation_patching.metric import Restoration
from activation_patching.patch_specs import PatchSpec, hook_name
from activation_patching.sweeps import Side
from layers_core.hooks.activations import ActivationRun, Patch, run_with_patches
from layers_core.models.architecture import ModelParts


@dataclass(frozen=True)
class Gradients:
    """One forward and backward pass of a base run.

    Attributes:
        score: The base run's restoration.
        values: The base's activations at the points read (detached, batch of one).
        grads: The restoration's gradient at the same points and shapes (float32).
    """

    score: float
    values: ActivationRun
    grads: ActivationRun


def restoration_value(logits: Tensor, metric: Restoration) -> Tensor:
    """``metric``'s restoration of answer-position ``logits`` (``[..., V]``), float64, on the autograd graph.

    Raises:
        ValueError: The pair's clean and corrupted logit differences are equal (no gradient scale).
    """
    gap = metric.clean_diff - metric.corrupt_diff
    if gap == 0.0:
        raise ValueError("the clean and corrupted runs have the same logit difference: restoration is undefined")
    values = logits.to(torch.float64)
    diff = values[..., metric.answer_id] - values[..., metric.corrupt_answer_id]
    return (diff - metric.corrupt_diff) / gap


def point_gradients(
    model: nn.Module, parts: ModelParts, base: Side, points: Sequence[str], metric: Restoration,
    extra: Sequence[Patch] = (),
) -> Gradients:
    """Run ``base`` (its own writes, then ``extra``) with autograd, reading ``points``; one backward pass."""
    input_ids = torch.tensor([base.input_ids], dtype=torch.long)
    run = run_with_patches(
        model, parts, input_ids, [*base.patches, *extra], read=points, logits_at="last", keep_graph=True
    )
    score = restoration_value(run.logits[0, -1], metric)
    tensors = [run[point] for point in points]
    found = torch.autograd.grad(score, tensors, allow_unused=True)
    grads = {
        point: torch.zeros_like(tensor) if grad is None else grad.detach()
        for point, tensor, grad in zip(points, tensors, found, strict=True)
    }
    values = {point: tensor.detach() for point, tensor in zip(points, tensors, strict=True)}
    logits = run.logits.detach()
    return Gradients(float(score.detach()), ActivationRun(logits, values), ActivationRun(logits, grads))


def linear_changes(
    specs: Sequence[PatchSpec], source: ActivationRun, base: ActivationRun, grads: ActivationRun, n_layers: int
) -> Tensor:
    """``(source - base) · grad`` at each spec's point, head and position(s): ``[len(specs)]`` float64.

    The product is summed over the model dimension once per point (``[T]``, or ``[T, n_heads]`` for
    ``hook_z``); each spec then reads its cell, or the sum over positions for a spec at every position.
    """
    cells: dict[str, tuple[Any, Any]] = {}  # per position, and the total: floats, or lists per head
    changes: list[float] = []
    for spec in specs:
        point = hook_name(spec, n_layers)
        if point not in cells:
            cells[point] = _point_cells(source[point][0], base[point][0], grads[point][0])
        by_position, totals = cells[point]
        if spec.position is None:
            changes.append(totals if spec.head is None else totals[spec.head])
        else:
            cell = by_position[spec.position]
            changes.append(cell if spec.head is None else cell[spec.head])
    return torch.tensor(changes, dtype=torch.float64)


def _point_cells(source: Tensor, base: Tensor, grad: Tensor) -> tuple[Any, Any]:
    """``(source - base) * grad`` in float64 summed over the last dimension: per position, and over all of them."""
    product = (source.to(torch.float64) - base.to(torch.float64)) * grad.to(torch.float64)
    per_position = product.sum(-1)  # [T] or [T, n_heads]
    return per_position.tolist(), per_position.sum(0).tolist()


def attribution_estimates(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, specs: Sequence[PatchSpec],
    points: Sequence[str], metric: Restoration,
) -> list[float]:
    """Plain AtP: each spec's estimated restoration when patched alone from ``source`` into ``base``.

    ``source`` must hold ``points`` (every point ``specs`` write) for a batch of one.
    """
    gradients = point_gradients(model, parts, base, points, metric)
    changes = linear_changes(specs, source, gradients.values, gradients.grads, parts.n_layers)
    return (gradients.score + changes).tolist()


def correlation(exact: Sequence[float] | Tensor, approx: Sequence[float] | Tensor) -> float:
    """Pearson r of two equally long series, in float64; NaN when either is constant.

    Raises:
        ValueError: Lengths differ or fewer than two values.
    """
    x = torch.as_tensor(exact, dtype=torch.float64).flatten()
    y = torch.as_tensor(approx, dtype=torch.float64).flatten()
    if x.shape != y.shape or x.numel() < 2:
        raise ValueError(f"correlation needs two series of equal length >= 2, got {x.numel()} and {y.numel()}")
    dx, dy = x - x.mean(), y - y.mean()
    denominator = torch.sqrt((dx * dx).sum() * (dy * dy).sum())
    if float(denominator) == 0.0:
        return float("nan")
    return float((dx * dy).sum() / denominator)
