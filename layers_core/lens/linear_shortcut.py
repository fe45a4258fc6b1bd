"""The linear shortcut (Yom Din et al. 2023, "Jump to Conclusions"): least squares from layer l to the final residual.

For each layer l < L, ``h_L ~ h_l @ weight[l].T + bias[l]``, fitted in closed form from
float64 sums over every position but the first of each window (see ``residual_batches``
for why position 0 is left out). With ``C_xx`` the covariance of layer l's residual and
``C_xy`` its cross-covariance with the final residual::

    weight[l].T = (C_xx + lambda I)^-1 C_xy,      bias[l] = mean_y - mean_x @ weight[l].T

The ridge ``lambda = ridge * trace(C_xx) / d`` is a fraction of the mean variance per
dimension, so it scales with the residual's size (which grows by orders of magnitude
over depth) and keeps the solve well posed when a layer has a near-constant direction
or fewer positions than dimensions. The default is small (1e-6) because residuals have
a few massive dimensions that dominate the trace: a direction of average variance is shrunk
by 1e-6, one of a thousandth of it by 0.1%.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from layers_core.lens.fit_progress import Progress
from layers_core.lens.residual_batches import check_fit_identity, window_residuals
from layers_core.lens.translators import LensIdentity, LensMaps
from layers_core.models.architecture import ModelParts

DEFAULT_RIDGE = 1e-6


class ShortcutSums:
    """Running float64 sums for the least-squares maps of ``n_inputs`` input layers to one target."""

    def __init__(self, n_inputs: int, d_model: int) -> None:
        """Start with zero positions."""
        self.count = 0
        self.sum_x = torch.zeros(n_inputs, d_model, dtype=torch.float64)
        self.sum_y = torch.zeros(d_model, dtype=torch.float64)
        self.xtx = torch.zeros(n_inputs, d_model, d_model, dtype=torch.float64)
        self.xty = torch.zeros(n_inputs, d_model, d_model, dtype=torch.float64)

    def add(self, inputs: Tensor, target: Tensor) -> None:
        """Add positions: ``inputs`` ``[n_inputs, N, d]`` (one row per position and layer), ``target`` ``[N, d]``."""
        if inputs.shape[0] != self.sum_x.shape[0] or inputs.shape[1:] != target.shape:
            raise ValueError(f"inputs {tuple(inputs.shape)} and target {tuple(target.shape)} do not fit sums of "
                             f"{self.sum_x.shape[0]} layers of width {self.sum_x.shape[1]}")
        y = target.double()
        self.count += int(y.shape[0])
        self.sum_y += y.sum(0)
        for layer in range(inputs.shape[0]):  # one layer at a time: float64 copies of one layer only
            x = inputs[layer].double()
            self.sum_x[layer] += x.sum(0)
            self.xtx[layer] += x.T @ x
            self.xty[layer] += x.T @ y


def shortcut_from_sums(sums: ShortcutSums, ridge: float = DEFAULT_RIDGE) -> tuple[Tensor, Tensor]:
    """The least-squares affine maps of the positions summed in ``sums`` (see the module doc).

    Args:
        sums: At least one position.
        ridge: The ridge as a fraction of the mean variance per dimension (0: plain least squares).

    Returns:
        ``(weight [n_inputs, d, d], bias [n_inputs, d])`` in float64, applied as ``x @ weight[l].T + bias[l]``.
    """
    if sums.count < 1:
        raise ValueError("no positions were summed: the linear shortcut needs at least one")
    n = float(sums.count)
    mean_x = sums.sum_x / n
    mean_y = sums.sum_y / n
    cov_xx = sums.xtx / n - mean_x[:, :, None] * mean_x[:, None, :]
    cov_xy = sums.xty / n - mean_x[:, :, None] * mean_y[None, None, :]
    d = cov_xx.shape[-1]
    strength = ridge * torch.diagonal(cov_xx, dim1=-2, dim2=-1).sum(-1) / d
    eye = torch.eye(d, dtype=torch.float64)
    # One solve per layer: torch 2.13's batched LU on MKL fails ("Parameter 6 was incorrect on entry to
    # DLASWP", then a pivot error) for a stack of model-sized matrices on more than one thread.
    weight_t = torch.stack([torch.linalg.solve(cov_xx[layer] + strength[layer] * eye, cov_xy[layer])
                            for layer in range(cov_xx.shape[0])])
    weight = weight_t.transpose(-1, -2).contiguous()
    bias = mean_y - torch.einsum("ld,lde->le", mean_x, weight_t)
    return weight, bias


def fit_linear_shortcut(
    model: nn.Module, parts: ModelParts, windows: Tensor, identity: LensIdentity, *, batch_size: int,
    ridge: float = DEFAULT_RIDGE, progress: Progress | None = None,
) -> LensMaps:
    """Fit the linear shortcut of every layer 0..L-1 on ``windows`` (all positions but the first).

    Args:
        model: The frozen model.
        parts: Its parts.
        windows: ``[N, T]`` training token ids, no padding.
        identity: What the maps are for; ``kind`` must be ``linear`` and the shape the model's.
        batch_size: Windows per forward pass (does not change the sums beyond rounding).
        ridge: See ``shortcut_from_sums``; record it in ``identity.recipe`` when not the default.
        progress: Called with ``("linear shortcut", windows done, N)``.

    Returns:
        float32 maps; layer L stays the identity.
    """
    check_fit_identity(identity, parts, "linear")
    sums = ShortcutSums(parts.n_layers, parts.d_model)
    for resid in window_residuals(model, parts, windows, batch_size=batch_size, progress=progress,
                                  stage="linear shortcut"):
        sums.add(resid[:-1], resid[-1])
    weight, bias = shortcut_from_sums(sums, ridge)
    return LensMaps(identity, weight.float(), bias.float())

