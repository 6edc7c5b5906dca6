"""Spearman's ρ and its exact permutation p-value, against scipy's own permutation test."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from aebench.reporting.rank_agreement import MAX_PERMUTED, spearman, spearman_p


def test_a_perfect_order_of_n_techniques_has_p_two_over_n_factorial() -> None:
    for n in (3, 4, 5):
        ordered = list(range(n))
        assert spearman_p(ordered, ordered) == pytest.approx(2 / math.factorial(n))
        assert spearman_p(ordered, ordered[::-1]) == pytest.approx(2 / math.factorial(n))  # the reverse: as extreme


@pytest.mark.parametrize("seed", range(4))
def test_the_exact_p_is_scipys_exact_permutation_test(seed: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=6), rng.normal(size=6)
    expected = stats.permutation_test(  # one sample re-paired against b: all 6! orderings
        (a,), lambda x: stats.spearmanr(x, b).statistic, permutation_type="pairings", n_resamples=np.inf
    ).pvalue
    assert spearman(a, b) == pytest.approx(stats.spearmanr(a, b).statistic)
    assert spearman_p(a, b) == pytest.approx(expected)


def test_no_p_without_a_correlation_or_beyond_the_enumerable() -> None:
    assert math.isnan(spearman_p([1, 2], [1, 2]))  # under 3 techniques
    assert math.isnan(spearman_p([1, 1, 1], [1, 2, 3]))  # no spread
    many = list(range(MAX_PERMUTED + 1))
    assert spearman(many, many) == pytest.approx(1.0) and math.isnan(spearman_p(many, many))
