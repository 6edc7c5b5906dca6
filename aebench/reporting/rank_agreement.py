"""How well two orderings of the same techniques agree: Spearman's ρ and its exact permutation p-value (a handful of
techniques is too few for ρ's large-sample distribution)."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats

MAX_PERMUTED = 8  # 8! = 40,320 orderings: enumerated exactly; beyond, no p-value


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation, NaN for fewer than 3 pairs or a constant side."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(stats.spearmanr(a, b).statistic)


def spearman_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact two-sided p of Spearman's ρ: the share of all orderings of ``a``'s ranks against ``b``'s whose |ρ| is at
    least the observed one. NaN where ρ is, or for more than MAX_PERMUTED pairs. With n techniques and no ties it is
    never below 2/n! (4 techniques: 0.083), so a small set cannot show agreement however well it orders."""
    rho = spearman(a, b)
    if math.isnan(rho) or len(a) > MAX_PERMUTED:
        return math.nan
    ranks_a, ranks_b = stats.rankdata(a), stats.rankdata(b)
    orderings = np.array(list(itertools.permutations(ranks_a)))
    centred_a, centred_b = orderings - orderings.mean(axis=1, keepdims=True), ranks_b - ranks_b.mean()
    rhos = centred_a @ centred_b / (np.linalg.norm(centred_a, axis=1) * np.linalg.norm(centred_b))
    return float(np.mean(np.abs(rhos) >= abs(rho) - 1e-12))
