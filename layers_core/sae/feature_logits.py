"""Which tokens an SAE feature's decoder direction promotes and suppresses, through the final norm and unembedding.

A feature adds ``a * d`` to the residual (``d`` its decoder row). At the last layer the
model reads the residual through its final norm and the unembedding, so the direct
effect of one unit of the feature on each token's logit is ``W_U @ (w_eff * c(d)) * s``:
``c`` centres for a LayerNorm, ``w_eff`` is the norm's effective weight (Gemma's
``1 + w``), and ``s`` is the norm's positive ``1 / rms`` scale of the whole residual,
which depends on the text. Leaving ``s`` (and a positive logit multiplier) out changes
every value by the same positive factor, so the ranking is exact and the values are
"logit per unit activation at unit norm scale". The unembedding bias and a final-logit
softcap do not depend on the direction or preserve order, so they are left out too.
This is the direct path only: a feature written at an early layer acts mostly through
later layers, and its promoted tokens say less there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from layers_core.models.architecture import ModelParts, norm_form


@dataclass(frozen=True)
class TokenEffect:
    """One token and the feature's direct effect on its logit."""

    token_id: int
    token: str
    value: float


def logit_effect(parts: ModelParts, direction: Tensor) -> Tensor:
    """``[V]`` direct logit effect (module doc) of adding the residual direction ``direction`` ``[d_model]``."""
    weight = parts.unembed.weight
    assert isinstance(weight, Tensor)
    d = direction.detach().to(weight.device, torch.float32)
    if parts.final_norm is not None:
        form = norm_form(parts.final_norm)
        if form.centred:
            d = d - d.mean()
        if form.weight is not None:
            d = d * (form.weight.detach().float() + form.weight_offset)
    with torch.no_grad():
        return (weight.float() @ d).cpu()


def promoted_and_suppressed(
    parts: ModelParts, tokenizer: Any, direction: Tensor, count: int = 10,
) -> tuple[list[TokenEffect], list[TokenEffect]]:
    """The ``count`` tokens ``direction`` raises most (largest first) and lowers most (most negative first).

    Only ids the tokenizer can decode are ranked (the unembedding may carry padding rows).
    """
    effect = logit_effect(parts, direction)[: len(tokenizer)]
    order = torch.argsort(effect, descending=True, stable=True)

    def effects(ids: Tensor) -> list[TokenEffect]:
        return [TokenEffect(int(i), tokenizer.decode([int(i)]), float(effect[i])) for i in ids]

    return effects(order[:count]), effects(order.flip(0)[:count])
