"""Better gradients for attribution patching: averaged along a path (IG), and AtP*'s GradDrop.

Path-averaged gradients (integrated gradients, Sundararajan et al. 2017, as EAP-IG
uses them, Hanna et al. 2024): plain AtP takes the gradient at the base alone, so a
site whose effect saturates between base and source (the subject's early residual:
restoring it restores everything, but the base's gradient is small) is
underestimated. Here the model's input, ``blocks.0.hook_resid_pre`` at every
position, is moved along the straight line from the base's value to the source's,
the gradient at every point is read at ``steps`` midpoints ``(k + 0.5) / steps`` and
averaged, and the estimate is ``(source - base) · mean gradient``. At
``blocks.0.hook_resid_pre`` itself this is integrated gradients: the estimates over
all positions sum to the full patch's effect up to the midpoint rule's error
(completeness). Deeper points move along the path the model maps that line to, not
a straight line, so there it stays an approximation. Cost: ``steps`` forward and
backward passes for all sites together.

GradDrop (Kramár et al. 2024, section on cancellation): a site whose direct and
indirect effects cancel in the gradient gets a near-zero estimate although patching
it matters. For each layer ``l`` the gradient is recomputed with the backward pass
through block ``l`` cut (its ``attn_out`` and ``mlp_out`` replaced by their own,
detached values: the forward pass is unchanged, the gradient flows only through the
residual's skip there), and the score is ``sum_l |AtP_l(site)| / (L - 1)``: an
unsigned size of the effect, to be compared with ``|exact - base|``. Cost: ``L``
forward and backward passes. The normalisation follows our reading of the paper
(its text was not at hand when this was written; the ranking does not depend on it).

Not done: AtP*'s QK fix. It replaces the linearised softmax when the patched node
is a head's query or key, recomputing the attention pattern exactly with the
patched query/key. The library has no ``hook_q``/``hook_k`` points and the sweep
patches no queries or keys (its sites are residual, ``attn_out``, ``mlp_out``,
``hook_z``, all downstream of the softmax of their own layer), so the fix has no
site to apply to here; saturation of *later* layers' softmaxes, which these sites
feed, is linearised by AtP* too. The path average above is what addresses
saturation for these sites.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from activation_patching.attribution_patching import Gradients, linear_changes, point_gradients
from activation_patching.metric import Restoration
from activation_patching.patch_specs import PatchSpec
from activation_patching.sweeps import Side
from layers_core.hooks.activations import ActivationRun, Patch, run_with_patches
from layers_core.models.architecture import ModelParts

INPUT_POINT = "blocks.0.hook_resid_pre"
PATH_STEPS = 8


def path_gradients(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, points: Sequence[str],
    metric: Restoration, steps: int = PATH_STEPS,
) -> Gradients:
    """Gradients at ``points`` averaged over ``steps`` inputs between the base's and ``source``'s (module docstring).

    ``score`` and ``values`` are the base's own (the path's start). ``source`` must hold ``INPUT_POINT``.

    Raises:
        ValueError: ``steps`` below 1.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    start = point_gradients(model, parts, base, [*points, INPUT_POINT], metric)
    first, last = start.values[INPUT_POINT], source[INPUT_POINT]
    total = {point: torch.zeros_like(start.grads[point], dtype=torch.float64) for point in points}
    for step in range(steps):
        alpha = (step + 0.5) / steps
        moved = Patch(INPUT_POINT, first + alpha * (last - first))
        gradients = point_gradients(model, parts, base, points, metric, extra=[moved])
        for point in points:
            total[point] += gradients.grads[point].to(torch.float64)
    mean = {point: (value / steps).to(start.grads[point].dtype) for point, value in total.items()}
    return Gradients(start.score, start.values, ActivationRun(start.grads.logits, mean))


def path_estimates(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, specs: Sequence[PatchSpec],
    points: Sequence[str], metric: Restoration, steps: int = PATH_STEPS,
) -> list[float]:
    """Each spec's estimated restoration with path-averaged gradients (``source``: ``points`` and ``INPUT_POINT``)."""
    gradients = path_gradients(model, parts, base, source, points, metric, steps)
    changes = linear_changes(specs, source, gradients.values, gradients.grads, parts.n_layers)
    return (gradients.score + changes).tolist()


def grad_drop_scores(
    model: nn.Module, parts: ModelParts, base: Side, source: ActivationRun, specs: Sequence[PatchSpec],
    points: Sequence[str], metric: Restoration,
) -> list[float]:
    """GradDrop: ``sum_l |(source - base) · grad with block l's backward cut| / (L - 1)`` per spec (unsigned)."""
    n_layers = parts.n_layers
    writes = [f"blocks.{layer}.hook_{kind}" for layer in range(n_layers) for kind in ("attn_out", "mlp_out")]
    input_ids = torch.tensor([base.input_ids], dtype=torch.long)
    own = run_with_patches(model, parts, input_ids, base.patches, read=writes, logits_at="last")
    total = torch.zeros(len(specs), dtype=torch.float64)
    for layer in range(n_layers):
        cut = [Patch(point, own[point]) for point in writes[2 * layer:2 * layer + 2]]
        gradients = point_gradients(model, parts, base, points, metric, extra=cut)
        total += linear_changes(specs, source, gradients.values, gradients.grads, n_layers).abs()
    return (total / max(n_layers - 1, 1)).tolist()
