"""A norm with its scale frozen from one forward pass, so it is linear in its input.

An RMSNorm computes ``y = w_eff * x * s(x)`` with ``s(x) = 1 / sqrt(mean(x**2) + eps)``;
a LayerNorm ``y = w * (x - mean(x)) * s(x - mean(x)) + b``. Only ``s`` makes them
non-linear. Measured once on the total input ``x`` of one forward pass and then
held fixed, the norm is a linear map (centring is linear too) plus the constant
``b``: applied to each part of ``x`` separately, the parts add up exactly to the
module's own output. That is TransformerLens's ``apply_ln_to_stack`` with the
cached ``hook_scale``.

What each norm class computes comes from ``architecture.norm_form``;
``FrozenNorm.measure`` checks on the very input it measured that the frozen form
reproduces the module's output, and refuses (one line, naming the class) rather
than decode through a norm it does not reproduce.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from layers_core.errors import UnsupportedArchitectureError
from layers_core.models.architecture import norm_form

# The frozen norm may differ from the module by this many roundings of the model's dtype and of
# float32 (transformers' norms compute in float32), at the magnitude of the output.
CHECK_ROUNDINGS = 8.0


def work_dtype(device: torch.device) -> torch.dtype:
    """float64 for the attribution arithmetic, except on MPS, which has no float64 (float32 there)."""
    return torch.float32 if device.type == "mps" else torch.float64


def rounding_allowance(dtype: torch.dtype) -> float:
    """Relative difference allowed between the model's own arithmetic in ``dtype`` and ours."""
    return CHECK_ROUNDINGS * (torch.finfo(dtype).eps + torch.finfo(torch.float32).eps)


@dataclass(frozen=True)
class FrozenNorm:
    """A norm as ``y = weight * c(x) * scale + bias``, ``scale`` fixed per batch row.

    Attributes:
        norm_class: Class name of the module it stands for ("none" for the identity).
        centred: ``c(x) = x - mean(x)`` (LayerNorm) rather than ``c(x) = x`` (RMSNorm).
        weight: ``[d]`` effective weight (Gemma's ``1 + w``; ones when the module has none).
        bias: ``[d]`` or None.
        scale: ``[B]``: ``1 / sqrt(mean(c(x)**2) + eps)`` of the total input it was measured on.
    """

    norm_class: str
    centred: bool
    weight: Tensor
    bias: Tensor | None
    scale: Tensor

    @classmethod
    def measure(cls, norm: nn.Module | None, total: Tensor, dtype: torch.dtype | None = None) -> FrozenNorm:
        """Freeze ``norm`` at the scale of ``total`` and check it against the module.

        Args:
            norm: The norm module (None: the identity).
            total: ``[B, d]``: the norm's whole input in this forward pass, one row per batch row.
            dtype: The dtype the model feeds the module (default: ``total``'s).

        Returns:
            The frozen norm, in ``work_dtype`` on ``total``'s device.

        Raises:
            UnsupportedArchitectureError: The norm's class is unknown, or its frozen form does not
                reproduce the module's output on ``total``.
        """
        work = work_dtype(total.device)
        x = total.detach().to(work)
        d = x.shape[-1]
        if norm is None:
            ones = torch.ones(d, dtype=work, device=x.device)
            return cls("none", False, ones, None, torch.ones(x.shape[0], dtype=work, device=x.device))
        form = norm_form(norm)
        centred_x = x - x.mean(-1, keepdim=True) if form.centred else x
        scale = torch.rsqrt(centred_x.pow(2).mean(-1) + form.eps)
        if form.weight is None:
            weight = torch.ones(d, dtype=work, device=x.device)
        else:
            weight = form.weight.detach().to(work) + form.weight_offset
        bias = form.bias.detach().to(work) if form.bias is not None else None
        frozen = cls(form.norm_class, form.centred, weight, bias, scale)
        frozen._check(norm, total, dtype or total.dtype)
        return frozen

    def linear(self, x: Tensor) -> Tensor:
        """The norm without its bias, at the frozen scale: ``weight * c(x) * scale`` for ``x`` ``[B, ..., d]``."""
        x = x.to(self.weight.dtype)
        if self.centred:
            x = x - x.mean(-1, keepdim=True)
        scale = self.scale.reshape(-1, *([1] * (x.ndim - 1)))
        return x * scale * self.weight

    def __call__(self, x: Tensor) -> Tensor:
        """The whole frozen norm: ``linear(x) + bias``."""
        out = self.linear(x)
        return out + self.bias if self.bias is not None else out

    def read_out(self, direction: Tensor) -> Tensor:
        """``u`` with ``u . x == direction . linear(x)`` for every ``x``: ``[B, d]`` from ``direction`` ``[B, d]``.

        The frozen norm's transpose: a direction read after the norm becomes one read before it.
        """
        u = direction.to(self.weight.dtype) * self.weight * self.scale[:, None]
        return u - u.mean(-1, keepdim=True) if self.centred else u

    def _check(self, norm: nn.Module, total: Tensor, dtype: torch.dtype) -> None:
        with torch.no_grad():
            own = norm(total.detach().to(dtype)).to(self.weight.dtype)
        frozen = self(total)
        magnitude = max(float(own.abs().amax()), float(frozen.abs().amax()))
        limit = rounding_allowance(dtype) * magnitude
        difference = float((own - frozen).abs().amax())
        if not difference <= limit:  # also catches NaN
            raise UnsupportedArchitectureError(
                f"{self.norm_class}: the norm with its scale frozen does not reproduce the module's own output "
                f"(max difference {difference:.3g} > {limit:.3g}); direct attribution through it would be wrong."
            )
