"""The tuned lens (Belrose et al. 2023, arXiv 2303.08112): per-layer affine translators trained on KL to the end.

Each layer l < L gets ``h -> h @ weight[l].T + bias[l]`` with ``weight = I + A``, trained to
minimise the mean over positions and layers of KL(final || lens) over the full vocabulary,
the model frozen. Training and decoding share one code path: the loss differentiates
``Lens.differentiable_logits`` of a ``tuned`` ``Lens`` built on the maps being trained.

Recipe (``TunedRecipe``): ``positions`` positions are drawn once (seeded, never the first
of a window) from the training windows and their residuals at every layer kept in memory;
each of ``steps`` Adam steps takes the next ``batch_size`` of them (reshuffled, seeded,
each pass). The final distribution of a batch is computed once, without grad, from its
layer-L residual through the same lens (identity there). The learning rate decays linearly
from ``lr`` to 0. ``weight`` itself is the trained parameter: without weight decay, Adam's
updates of ``W = I + A`` and of ``A`` are the same, so this is the ``I + A`` translator.
The start is the identity (the norm lens) or, with ``init="linear"``, the linear shortcut.

The cost is the head's forward and backward, ``4 * V * d`` flops per position, layer and
step; logits are made a chunk of rows at a time so Gemma's 262k vocabulary fits.
Same inputs, same maps, bit for bit, on one machine and thread count.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor, nn

from layers_core.lens.fit_progress import Progress, report
from layers_core.lens.lens import Lens
from layers_core.lens.lens_divergence import kl_nats, rows_per_chunk
from layers_core.lens.residual_batches import check_fit_identity, sampled_residuals
from layers_core.lens.translators import LensIdentity, LensMaps
from layers_core.metrics import LN2
from layers_core.models.architecture import ModelParts

INIT_CHOICES: tuple[str, ...] = ("identity", "linear")
OPTIMIZERS: tuple[str, ...] = ("adam",)


@dataclass(frozen=True)
class TunedRecipe:
    """How a tuned lens is trained; ``as_dict()`` goes into ``LensIdentity.recipe``.

    Attributes:
        positions: Training positions drawn from the windows (all of them when fewer).
        steps: Optimiser steps.
        batch_size: Positions per step.
        lr: Peak learning rate (decays linearly to 0).
        optimizer: ``adam`` (betas 0.9, 0.999; no weight decay).
        seed: Seeds the draw of positions and the batch order.
        init: ``identity`` (the norm lens) or ``linear`` (the linear shortcut's maps).
        forward_batch: Windows per forward pass while drawing residuals.
    """

    positions: int = 2048
    steps: int = 64
    batch_size: int = 32
    lr: float = 1e-3
    optimizer: str = "adam"
    seed: int = 0
    init: str = "linear"
    forward_batch: int = 8

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.init not in INIT_CHOICES:
            raise ValueError(f"init {self.init!r} is not one of {', '.join(INIT_CHOICES)}")
        if min(self.positions, self.steps, self.batch_size, self.forward_batch) < 1 or not self.lr > 0:
            raise ValueError(f"recipe sizes and lr must be positive: {self}")

    def as_dict(self) -> dict[str, Any]:
        """The recipe as JSON primitives, with the schedule named."""
        return {**asdict(self), "schedule": "linear-decay", "objective": "kl(final||lens), full vocabulary"}


def tuned_recipe_dict(recipe: TunedRecipe, init: LensMaps | None) -> dict[str, Any]:
    """What ``LensIdentity.recipe`` of a tuned lens must be: the recipe, and the warm start's own recipe."""
    return {**recipe.as_dict(), "init_recipe": None if init is None else init.identity.recipe}


def fit_tuned_lens(
    model: nn.Module, parts: ModelParts, windows: Tensor, identity: LensIdentity, recipe: TunedRecipe, *,
    init: LensMaps | None = None, progress: Progress | None = None, trace: list[float] | None = None,
) -> LensMaps:
    """Train a tuned lens on ``windows`` (see the module doc).

    Args:
        model: The frozen model (its parameters get no gradients).
        parts: Its parts.
        windows: ``[N, T]`` training token ids, no padding.
        identity: ``kind`` tuned, the model's shape, ``recipe == tuned_recipe_dict(recipe, init)``.
        recipe: How to train.
        init: The linear shortcut of this model and corpus when ``recipe.init == "linear"``, else None.
        progress: Called with ``("sampling residuals", ...)`` and ``("tuned lens", step, steps)``.
        trace: When given, each step's mean training KL (bits, before the step) is appended.

    Returns:
        float32 maps; layer L stays the identity.
    """
    check_fit_identity(identity, parts, "tuned")
    _check_init(identity, recipe, init)
    if identity.recipe != tuned_recipe_dict(recipe, init):
        raise ValueError("identity.recipe must be tuned_recipe_dict(recipe, init), so the cache key names the recipe")
    pool = sampled_residuals(model, parts, windows, recipe.positions, recipe.seed, batch_size=recipe.forward_batch,
                             progress=progress)
    start = init if init is not None else LensMaps.identity_maps(identity)
    weight = nn.Parameter(start.weight.detach().float().clone())
    bias = nn.Parameter(start.bias.detach().float().clone())
    lens = Lens(parts, "tuned", maps=LensMaps(identity, weight, bias))
    optimizer = torch.optim.Adam([weight, bias], lr=recipe.lr)
    batches = _batch_order(pool.shape[1], recipe)
    for step in range(recipe.steps):
        for group in optimizer.param_groups:
            group["lr"] = recipe.lr * (1.0 - step / recipe.steps)
        mean_kl = _accumulate_gradients(lens, pool[:, batches[step]], weight, bias)
        if trace is not None:
            trace.append(mean_kl / LN2)
        optimizer.step()
        report(progress, "tuned lens", step + 1, recipe.steps)
    return LensMaps(identity, weight.detach().clone(), bias.detach().clone())


def _check_init(identity: LensIdentity, recipe: TunedRecipe, init: LensMaps | None) -> None:
    if (init is not None) != (recipe.init == "linear"):
        raise ValueError(f"recipe.init is {recipe.init!r}: pass the linear shortcut's maps as init exactly when "
                         "it is 'linear'")
    if init is not None:
        if init.identity.kind != "linear":
            raise ValueError(f"init must be a linear shortcut, got a {init.identity.kind} lens")
        differing = [name for name in ("model", "corpus", "n_layers", "d_model")
                     if getattr(init.identity, name) != getattr(identity, name)]
        if differing:
            raise ValueError(f"init was fitted for another {', '.join(differing)}")


def _batch_order(n_positions: int, recipe: TunedRecipe) -> list[Tensor]:
    """The pool indices of each step's batch: seeded passes over the pool, each in a fresh order."""
    generator = torch.Generator().manual_seed(recipe.seed + 1)
    order = torch.empty(0, dtype=torch.long)
    needed = recipe.steps * recipe.batch_size
    while order.numel() < needed:
        order = torch.cat([order, torch.randperm(n_positions, generator=generator)])
    return [order[i * recipe.batch_size:(i + 1) * recipe.batch_size] for i in range(recipe.steps)]


def _accumulate_gradients(lens: Lens, resid: Tensor, weight: nn.Parameter, bias: nn.Parameter) -> float:
    """Set ``weight.grad`` and ``bias.grad`` to those of the batch's mean KL over positions and layers 0..L-1.

    Args:
        lens: The tuned lens on ``weight`` and ``bias``.
        resid: ``[L+1, B, d]`` residuals of the batch.

    Returns:
        The mean KL in nats.
    """
    n_layers, batch = resid.shape[0] - 1, resid.shape[1]
    chunk = rows_per_chunk(lens.parts.vocab_size)
    with torch.no_grad():
        target = torch.cat([torch.log_softmax(lens.logits(resid[n_layers, row:row + chunk], n_layers), dim=-1)
                            for row in range(0, batch, chunk)])
    grad_weight = torch.zeros_like(weight)
    grad_bias = torch.zeros_like(bias)
    total = 0.0
    scale = 1.0 / (batch * n_layers)
    for layer in range(n_layers):
        for row in range(0, batch, chunk):
            logits = lens.differentiable_logits(resid[layer, row:row + chunk], layer)
            loss = kl_nats(target[row:row + chunk], logits).sum() * scale
            # autograd.grad, not backward: only the translator's gradients are computed, none of the model's.
            gw, gb = torch.autograd.grad(loss, [weight, bias])
            grad_weight += gw
            grad_bias += gb
            total += float(loss.detach())
    weight.grad = grad_weight
    bias.grad = grad_bias
    return total
