"""H2: do texts cluster by topic or by form? Cosine similarities of pooled vectors, with permutation tests.

Each text is pooled into one vector per layer: its SAE features' mean activation over its
counted tokens, and its raw residual's mean over the same tokens, centred by subtracting
the mean over all texts (raw residuals share a large common direction that would make
every pair look alike). On the cosine-similarity matrix, over pairs of distinct texts:

- topic effect: mean similarity of same-topic pairs minus different-topic pairs, both
  among pairs of *different* form names (so a shared form cannot make a topic look tight);
- form effect: same-form-name pairs minus different-form pairs, both among pairs of
  *different* topics (so a shared topic cannot make a form look tight).

Each effect's one-sided p-value shuffles its own labels over texts (the other labels
fixed), ``layers_core.stats.permutation_p``; under no effect the p-values are uniform.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from torch import Tensor

from layers_core.stats.tests_of_claims import permutation_p


@dataclass(frozen=True)
class Clustering:
    """One label's similarity contrast on one matrix."""

    label: str  # "topic" or "form"
    within: float
    across: float
    p_value: float
    pairs_within: int
    pairs_across: int

    @property
    def effect(self) -> float:
        """within - across."""
        return self.within - self.across


def cosine_matrix(vectors: Tensor, centre: bool = False) -> np.ndarray:
    """``[n, n]`` cosine similarities of the rows (after subtracting their mean when ``centre``)."""
    x = vectors.double().numpy()
    if centre:
        x = x - x.mean(0, keepdims=True)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    unit = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    return unit @ unit.T


def _codes(labels: Sequence[str]) -> np.ndarray:
    return np.unique(np.asarray(labels), return_inverse=True)[1]


def contrast(similarity: np.ndarray, codes: np.ndarray, other: np.ndarray) -> tuple[float, float, int, int]:
    """Mean similarity of pairs sharing ``codes`` vs not, among distinct pairs that differ in ``other``."""
    upper = np.triu(np.ones_like(similarity, dtype=bool), k=1)
    allowed = upper & (other[:, None] != other[None, :])
    same = allowed & (codes[:, None] == codes[None, :])
    different = allowed & ~same
    within = float(similarity[same].mean()) if same.any() else float("nan")
    across = float(similarity[different].mean()) if different.any() else float("nan")
    return within, across, int(same.sum()), int(different.sum())


def clustering(similarity: np.ndarray, topics: Sequence[str], forms: Sequence[str], permutations: int,
               seed: int) -> list[Clustering]:
    """The topic and the form effect (module doc) with their permutation p-values."""
    found = []
    for label, mine, other in (("topic", _codes(topics), _codes(forms)), ("form", _codes(forms), _codes(topics))):
        within, across, n_within, n_across = contrast(similarity, mine, other)

        def statistic(codes: np.ndarray, other: np.ndarray = other) -> float:
            inside, outside, _, _ = contrast(similarity, codes, other)
            return inside - outside

        _, p = permutation_p(statistic, [str(c) for c in mine], permutations, seed)
        found.append(Clustering(label, within, across, p, n_within, n_across))
    return found
