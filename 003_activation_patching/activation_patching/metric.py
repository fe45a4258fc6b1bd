"""The patching metric: the logit difference, normalised so the corrupted run is 0 and the clean run 1.

``logit_diff`` is ``logit(clean answer) - logit(corrupt answer)`` at the answer
position, in float64. ``Restoration`` turns a patched run's logit difference ``d``
into ``(d - d_corrupt) / (d_clean - d_corrupt)``, the same formula in both
directions:

- denoising (clean activations into the corrupted run): the unpatched run scores
  0; a site that alone carries what the answer needs scores 1;
- noising (corrupted activations into the clean run): the unpatched run scores 1;
  a site whose corruption alone destroys the answer scores 0 (``1 - restoration``
  is the damage).

A patched run that reproduces the clean or the corrupted run bit for bit scores
exactly 1 or 0 (``x / x`` and ``0 / x`` are exact in IEEE arithmetic). When the
clean and corrupted differences are equal the ratio is undefined: NaN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Direction = Literal["denoise", "noise"]
DIRECTIONS: tuple[Direction, ...] = ("denoise", "noise")


def logit_diff(logits: Tensor, answer_id: int, corrupt_answer_id: int) -> Tensor:
    """``logits[..., answer_id] - logits[..., corrupt_answer_id]`` in float64 (``logits``: ``[..., V]``)."""
    values = logits.detach().to(torch.float64)
    return values[..., answer_id] - values[..., corrupt_answer_id]


@dataclass(frozen=True)
class Restoration:
    """The normalised metric of one pair: its two tokens and the two unpatched logit differences.

    Attributes:
        answer_id: The clean answer's first token.
        corrupt_answer_id: The corrupt answer's first token.
        clean_diff: ``logit_diff`` of the clean run.
        corrupt_diff: ``logit_diff`` of the corrupted run.
    """

    answer_id: int
    corrupt_answer_id: int
    clean_diff: float
    corrupt_diff: float

    def __call__(self, logits: Tensor) -> Tensor:
        """Restoration of each row of answer-position ``logits`` (``[..., V]``), float64; NaN when undefined."""
        diff = logit_diff(logits, self.answer_id, self.corrupt_answer_id)
        gap = self.clean_diff - self.corrupt_diff
        if gap == 0.0:
            return torch.full_like(diff, math.nan)
        return (diff - self.corrupt_diff) / gap


def restoration_metric(
    clean_logits: Tensor, corrupt_logits: Tensor, answer_id: int, corrupt_answer_id: int
) -> Restoration:
    """The metric of a pair from its clean and corrupted answer-position logits (``[V]`` or ``[1, V]``)."""
    clean = float(logit_diff(clean_logits.reshape(-1), answer_id, corrupt_answer_id))
    corrupt = float(logit_diff(corrupt_logits.reshape(-1), answer_id, corrupt_answer_id))
    return Restoration(answer_id, corrupt_answer_id, clean, corrupt)
