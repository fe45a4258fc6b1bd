"""How selective a feature is for a set of texts: a standardised difference of means, and AUROC.

A text's value for a feature is a summary of its activation over the text's counted tokens
(its mean: strength, not only presence). For texts ``inside`` a set against the rest:

    score(f) = (mean over inside - mean over outside) / (std over all texts)

and ``auroc``: the probability that an inside text's value exceeds an outside text's
(ties count one half; 0.5 is chance).
"""

from __future__ import annotations

import torch
from torch import Tensor


def scores(values: Tensor, inside: Tensor) -> Tensor:
    """``[d_sae]`` specialist scores from ``values`` ``[n_texts, d_sae]`` and the boolean ``inside`` ``[n_texts]``."""
    values = values.double()
    mean_in, mean_out = values[inside].mean(0), values[~inside].mean(0)
    spread = values.std(0, unbiased=False)
    found = (mean_in - mean_out) / spread.clamp_min(1e-12)
    return torch.where(spread > 0, found, torch.zeros_like(found))


def auroc(positive: Tensor, negative: Tensor) -> float:
    """Probability that a positive's value exceeds a negative's (ties count one half)."""
    if positive.numel() == 0 or negative.numel() == 0:
        return float("nan")
    greater = (positive[:, None] > negative[None, :]).double().mean()
    ties = (positive[:, None] == negative[None, :]).double().mean()
    return float(greater + 0.5 * ties)
