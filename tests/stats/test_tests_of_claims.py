"""The claim statistics: calibrated on data with no effect, sensitive to a real one, Holm on a worked example."""

from __future__ import annotations

import math

import numpy as np
import pytest

from layers_core.stats.tests_of_claims import (
    bootstrap_interval,
    holm,
    mean_interval,
    partial_spearman,
    permutation_p,
    spearman,
)


def _difference_of_group_means(values: np.ndarray):
    def statistic(codes: np.ndarray) -> float:
        return float(values[codes == 1].mean() - values[codes == 0].mean())

    return statistic


def test_permutation_p_values_are_uniform_when_the_labels_carry_nothing() -> None:
    generator = np.random.default_rng(0)
    found = []
    for trial in range(300):
        values = generator.normal(size=20)
        labels = generator.permutation(["a"] * 10 + ["b"] * 10)
        found.append(permutation_p(_difference_of_group_means(values), labels, 99, seed=trial)[1])
    p = np.asarray(found)
    assert p.min() >= 1 / 100  # never 0
    # Uniform: each tenth of [0, 1] holds about 30 of 300 (binomial sd 5.2); a broken test piles up at one end.
    counts = np.histogram(p, bins=10, range=(0, 1))[0]
    assert counts.min() >= 12 and counts.max() <= 50, counts
    assert 0.02 <= float((p <= 0.05).mean()) <= 0.09


def test_permutation_finds_a_real_difference_and_is_reproducible() -> None:
    values = np.r_[np.zeros(10), np.ones(10)] + np.random.default_rng(1).normal(scale=0.3, size=20)
    labels = ["a"] * 10 + ["b"] * 10
    observed, p = permutation_p(_difference_of_group_means(values), labels, 999, seed=3)
    assert observed > 0.5 and p == 1 / 1000
    assert permutation_p(_difference_of_group_means(values), labels, 999, seed=3) == (observed, p)


def test_spearman_intervals_cover_the_true_correlation_about_95_percent_of_the_time() -> None:
    generator = np.random.default_rng(2)
    true_rho = 6 / math.pi * math.asin(0.5 / 2)  # Spearman's rho of a bivariate normal with r = 0.5
    covered = 0
    for _ in range(300):
        x = generator.normal(size=40)
        y = 0.5 * x + math.sqrt(0.75) * generator.normal(size=40)
        found = spearman(x, y)
        covered += found.ci_low <= true_rho <= found.ci_high
    assert 0.9 <= covered / 300 <= 0.99, covered
    perfect = spearman([1, 2, 3, 4, 5], [2, 4, 5, 9, 10])
    assert perfect.value == pytest.approx(1.0) and perfect.n == 5
    assert math.isnan(spearman([1, 1, 1, 1], [1, 2, 3, 4]).value) and math.isnan(spearman([1, 2], [2, 1]).value)


def test_mean_interval_and_bootstrap_agree_on_a_normal_sample() -> None:
    values = np.random.default_rng(4).normal(loc=1.0, size=200)
    t = mean_interval(values)
    low, high = bootstrap_interval(lambda rows: float(values[rows].mean()), values.size, 2000, seed=5)
    assert t.ci_low < 1.0 < t.ci_high and t.p_value < 1e-10 and t.n == 200
    assert low == pytest.approx(t.ci_low, abs=0.03) and high == pytest.approx(t.ci_high, abs=0.03)
    assert math.isnan(mean_interval([]).value) and math.isnan(mean_interval([2.0]).ci_low)


def test_holm_on_a_worked_example() -> None:
    # Sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept monotone: 0.06.
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.5, math.nan, 0.9])
    assert adjusted[0] == pytest.approx(1.0) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(1.0)


def test_partial_spearman_removes_a_shared_cause_and_keeps_a_direct_link() -> None:
    generator = np.random.default_rng(6)
    z = generator.integers(1, 4, size=300).astype(float)  # e.g. an answer's token count
    x = z + generator.normal(scale=0.5, size=300)
    y = -z + generator.normal(scale=0.5, size=300)  # x and y only share z
    assert spearman(x, y).value < -0.5
    confounded = partial_spearman(x, y, z)
    assert confounded.ci_low < 0 < confounded.ci_high and confounded.p_value > 0.01
    linked = partial_spearman(x, x + generator.normal(scale=0.5, size=300), z)
    assert linked.value > 0.4 and linked.p_value < 1e-6 and linked.n == 300
    assert partial_spearman(x, y, np.ones(300)) == spearman(x, y)  # a constant control changes nothing
