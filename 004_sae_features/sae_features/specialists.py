"""Category specialists: found on the find half of the texts, tested on the test half.

A text's value for a feature is its mean activation over the text's counted tokens
(strength, not only presence). On the find half, for category ``c``:

    score(f, c) = (mean over c's texts - mean over the other texts) / (std over all find texts)

a standardised difference of means. Candidates must fire on at least half of ``c``'s find
texts. The candidate with the highest score is ``c``'s specialist; its threshold maximises F1 at
telling ``c``'s texts from the others on the find half, halfway between the two find
values it falls between (a text is called ``c`` when its value is >= the threshold). On the test half, never seen in the
choice: precision and recall at that threshold, and AUROC of the values (threshold-free;
ties count one half). A category *has a specialist* at a layer when the held-out AUROC is
at least ``MIN_AUROC`` and the precision at least ``MIN_PRECISION`` (``SPECIALIST_RULE``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

from layers_core.sae.selectivity import auroc, scores

MIN_PRESENCE = 0.5
MIN_AUROC = 0.9
MIN_PRECISION = 0.8
SPECIALIST_RULE = (f"held-out AUROC >= {MIN_AUROC} and held-out precision >= {MIN_PRECISION} at the threshold "
                   "chosen on the find half")


@dataclass(frozen=True)
class Specialist:
    """One category's best feature at one layer, with its held-out test (module doc)."""

    category: str
    feature: int
    score: float
    find_mean_in: float
    find_mean_out: float
    threshold: float
    heldout_precision: float
    heldout_recall: float
    heldout_auroc: float
    holds: bool

    def as_row(self) -> dict[str, Any]:
        """The CSV fields."""
        return asdict(self)


def best_threshold(values: Tensor, inside: Tensor) -> float:
    """A threshold that maximises F1 when ``values >= threshold`` is called inside, with the widest margin.

    Among the values, the lowest that reaches the best F1 is found; the threshold is halfway
    between it and the next value below (so texts a little weaker than the weakest find text
    still count), or that value itself when none is below.
    """
    candidates = sorted(set(values.tolist()))
    best_index, best_f1 = len(candidates) - 1, -1.0
    for index, candidate in enumerate(candidates):
        called = values >= candidate
        f1 = 2 * int((called & inside).sum()) / (int(called.sum()) + int(inside.sum()))
        if f1 > best_f1:
            best_index, best_f1 = index, f1
    if best_index == 0:
        return float(candidates[0])
    return (candidates[best_index] + candidates[best_index - 1]) / 2


def _precision_recall(values: Tensor, inside: Tensor, threshold: float) -> tuple[float, float]:
    called = values >= threshold
    true = int((called & inside).sum())
    precision = true / int(called.sum()) if int(called.sum()) else 0.0
    return precision, true / max(1, int(inside.sum()))


def find_specialist(
    category: str, find_values: Tensor, find_inside: Tensor, test_values: Tensor, test_inside: Tensor,
) -> Specialist | None:
    """The category's specialist (module doc), or None when no feature fires on half its find texts.

    Args:
        category: Its name.
        find_values: ``[n_find, d_sae]`` mean activation per find text and feature.
        find_inside: ``[n_find]`` whether each find text is in the category.
        test_values: ``[n_test, d_sae]`` the same for the test half.
        test_inside: ``[n_test]``.
    """
    presence = (find_values[find_inside] > 0).double().mean(0)
    found = scores(find_values, find_inside)
    found = torch.where(presence >= MIN_PRESENCE, found, torch.full_like(found, float("-inf")))
    feature = int(torch.argmax(found))
    if not torch.isfinite(found[feature]) or found[feature] <= 0:
        return None
    column = find_values[:, feature].double()
    threshold = best_threshold(column, find_inside)
    test_column = test_values[:, feature].double()
    precision, recall = _precision_recall(test_column, test_inside, threshold)
    area = auroc(test_column[test_inside], test_column[~test_inside])
    return Specialist(
        category=category, feature=feature, score=float(found[feature]),
        find_mean_in=float(column[find_inside].mean()), find_mean_out=float(column[~find_inside].mean()),
        threshold=threshold, heldout_precision=precision, heldout_recall=recall, heldout_auroc=area,
        holds=bool(area >= MIN_AUROC and precision >= MIN_PRECISION),
    )


def category_specialists(
    categories: Sequence[str], labels: Sequence[str], halves: Sequence[str], values: Tensor,
) -> list[Specialist | None]:
    """Each category's specialist, from per-text ``values`` ``[n_texts, d_sae]`` with their labels and halves."""
    find = torch.tensor([half == "find" for half in halves])
    label_array = list(labels)
    found = []
    for category in categories:
        inside = torch.tensor([label == category for label in label_array])
        found.append(find_specialist(category, values[find], inside[find], values[~find], inside[~find]))
    return found
