"""The statistics every claim of an experiment carries: n, an effect, a confidence interval, a p-value.

- ``spearman``: rank correlation with its two-sided p-value (scipy's t approximation)
  and a 95% interval from Fisher's z with the Fieller-Hartley-Pearson standard error
  ``sqrt(1.06 / (n - 3))`` (undefined, NaN, below 4 pairs or for a constant series).
- ``partial_spearman``: the same with a third variable's ranks regressed out of both
  (e.g. an answer's token count, which moves both a log-probability and what a prompt
  looks like); t test on n - 3 degrees of freedom, interval from Fisher's z with the
  standard error ``sqrt(1.06 / (n - 4))``.
- ``mean_interval``: a mean with its t interval.
- ``permutation_p``: the one-sided p-value of a statistic against the same statistic
  on shuffled labels, ``(1 + #{shuffled >= observed}) / (1 + n)``, seeded: never 0,
  and uniform on labels that carry nothing.
- ``bootstrap_interval``: a percentile interval of any statistic of paired samples, seeded.
- ``holm``: Holm-Bonferroni adjusted p-values (family-wise error), for the many tests
  of one table.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """An effect with its interval and p-value (NaN where undefined)."""

    value: float
    ci_low: float
    ci_high: float
    p_value: float
    n: int


def spearman(x: Sequence[float], y: Sequence[float]) -> Estimate:
    """Spearman's rho of paired samples (module doc)."""
    a, b = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = int(a.size)
    if n < 4 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, n)
    found = stats.spearmanr(a, b)
    rho, p = float(found.statistic), float(found.pvalue)
    if abs(rho) >= 1.0:
        return Estimate(rho, rho, rho, p, n)
    z, half = math.atanh(rho), stats.norm.ppf(0.5 + CONFIDENCE / 2) * math.sqrt(1.06 / (n - 3))
    return Estimate(rho, math.tanh(z - half), math.tanh(z + half), p, n)


def partial_spearman(x: Sequence[float], y: Sequence[float], z: Sequence[float]) -> Estimate:
    """Spearman's rho of ``x`` and ``y`` with ``z``'s ranks regressed out of both (module doc)."""
    a, b, c = (np.asarray(stats.rankdata(np.asarray(v, dtype=float)), dtype=float) for v in (x, y, z))
    n = int(a.size)
    if n < 5 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, n)
    if np.ptp(c) == 0:
        return spearman(x, y)
    design = np.column_stack([np.ones(n), c])

    def residual(v: np.ndarray) -> np.ndarray:
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    ra, rb = residual(a), residual(b)
    if not ra.any() or not rb.any():
        return Estimate(math.nan, math.nan, math.nan, math.nan, n)
    rho = float(np.clip(np.corrcoef(ra, rb)[0, 1], -1.0, 1.0))
    if abs(rho) >= 1.0:
        return Estimate(rho, rho, rho, 0.0, n)
    t = rho * math.sqrt((n - 3) / (1 - rho * rho))
    p = float(2 * stats.t.sf(abs(t), n - 3))
    fisher, half = math.atanh(rho), stats.norm.ppf(0.5 + CONFIDENCE / 2) * math.sqrt(1.06 / (n - 4))
    return Estimate(rho, math.tanh(fisher - half), math.tanh(fisher + half), p, n)


def mean_interval(values: Sequence[float]) -> Estimate:
    """The mean with its t interval and the two-sided p-value of a zero mean."""
    a = np.asarray(values, dtype=float)
    n = int(a.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, math.nan, 0)
    mean = float(a.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, math.nan, n)
    sem = float(a.std(ddof=1)) / math.sqrt(n)
    if sem == 0:
        return Estimate(mean, mean, mean, 0.0 if mean else 1.0, n)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sem
    p = float(2 * stats.t.sf(abs(mean) / sem, n - 1))
    return Estimate(mean, mean - half, mean + half, p, n)


def permutation_p(statistic: Callable[[np.ndarray], float], labels: Sequence[object], permutations: int,
                  seed: int) -> tuple[float, float]:
    """``(observed, p)``: ``statistic(labels)`` and its one-sided permutation p-value (module doc)."""
    codes = np.unique(np.asarray([str(label) for label in labels]), return_inverse=True)[1]
    observed = float(statistic(codes))
    generator = np.random.default_rng(seed)
    beaten = sum(1 for _ in range(permutations) if statistic(generator.permutation(codes)) >= observed)
    return observed, (1 + beaten) / (1 + permutations)


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float], n: int, resamples: int, seed: int,
) -> tuple[float, float]:
    """A percentile interval of ``statistic(indices)`` over ``resamples`` draws of ``n`` indices with replacement."""
    generator = np.random.default_rng(seed)
    values = np.array([statistic(generator.integers(0, n, n)) for _ in range(resamples)], dtype=float)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return math.nan, math.nan
    tail = (1 - CONFIDENCE) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input's order (NaN stays NaN and is not counted)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (len(indexed) - rank) * p))
        adjusted[i] = running
    return adjusted
