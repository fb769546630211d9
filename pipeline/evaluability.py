"""What a cohort of this size can tell, before any model runs, and how wide a CV estimate is.

Small pure functions on counts and scores, no I/O:

- :func:`hanley_mcneil_se` and :func:`smallest_distinguishable_auc`: the precision of an AUC
  (or a C-index, with events as the positive class) follows from the class counts alone, so a
  report can say before the results which AUC it could tell from chance;
- :func:`best_of_optimism`: how much reporting the best of ``n`` equally good models inflates
  its estimate by chance (the "best of N" the report's ``best_note`` warns about);
- :func:`corrected_resampled_interval`: a confidence interval of a repeated-CV mean whose
  variance accounts for the folds' overlapping training sets (Nadeau and Bengio).

References
----------
Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating
characteristic (ROC) curve. Radiology 1982;143:29-36.
Nadeau C, Bengio Y. Inference for the generalization error. Mach Learn 2003;52:239-81.
Bouckaert RR, Frank E. Evaluating the replicability of significance tests for comparing
learning algorithms. PAKDD 2004:3-12 (the corrected repeated k-fold t interval).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.integrate import trapezoid
from scipy.stats import norm
from scipy.stats import t as student_t

__all__ = [
    "best_of_optimism",
    "corrected_resampled_interval",
    "hanley_mcneil_se",
    "smallest_distinguishable_auc",
]


def hanley_mcneil_se(auc: float, n_positive: int, n_negative: int) -> float:
    """Standard error of an AUC estimated on ``n_positive`` and ``n_negative`` patients
    (Hanley and McNeil's exponential approximation).

    >>> round(hanley_mcneil_se(0.5, 50, 50), 4)
    0.058
    """
    if n_positive < 1 or n_negative < 1:
        raise ValueError(f"need a patient of each class, got {n_positive} and {n_negative}")
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    variance = (
        auc * (1 - auc) + (n_positive - 1) * (q1 - auc**2) + (n_negative - 1) * (q2 - auc**2)
    ) / (n_positive * n_negative)
    return math.sqrt(max(variance, 0.0))


def smallest_distinguishable_auc(
    n_positive: int, n_negative: int, *, level: float = 0.95, power: float | None = None
) -> float | None:
    """The smallest AUC that ``n_positive`` and ``n_negative`` patients tell from 0.5.

    Without ``power``: the smallest *estimated* AUC whose two-sided ``level`` confidence
    interval excludes 0.5 (``A - z SE(A) > 0.5``). With ``power``: the smallest *true* AUC
    that the two-sided test of AUC = 0.5 at ``1 - level`` detects with that power
    (``A - 0.5 = z SE(0.5) + z_power SE(A)``). Standard errors are Hanley and McNeil's.
    None when not even an AUC of 1 would do, by that formula or by the exact permutation
    test (a perfect ranking of ``n_positive`` among ``n`` has p = 2 / C(n, n_positive)).

    >>> round(smallest_distinguishable_auc(50, 50), 3)
    0.61
    >>> round(smallest_distinguishable_auc(50, 50, power=0.8), 3)
    0.659
    """
    z = norm.ppf(0.5 + level / 2)
    z_power = norm.ppf(power) if power is not None else 0.0
    null_se = hanley_mcneil_se(0.5, n_positive, n_negative)

    def margin(auc: float) -> float:
        if power is None:
            return auc - z * hanley_mcneil_se(auc, n_positive, n_negative) - 0.5
        return auc - 0.5 - z * null_se - z_power * hanley_mcneil_se(auc, n_positive, n_negative)

    if margin(1.0) <= 0 or 2 / math.comb(n_positive + n_negative, n_positive) > 1 - level:
        return None  # the second: even a perfect ranking is not significant by permutation
    low, high = 0.5, 1.0
    for _ in range(60):  # bisection: margin rises with the AUC
        middle = (low + high) / 2
        low, high = (middle, high) if margin(middle) <= 0 else (low, middle)
    return high


def best_of_optimism(n_models: int, standard_error: float) -> float:
    """Expected excess of the best of ``n_models`` estimates over their common true value,
    for independent estimates with this standard error: ``standard_error * E[max of n
    standard normals]``. Models scored on the same patients are correlated, so this is an
    upper bound of what choosing the best by its own estimate adds.

    >>> round(best_of_optimism(2, 1.0), 4)  # 1 / sqrt(pi)
    0.5642
    >>> best_of_optimism(1, 0.05)
    0.0
    """
    if n_models < 1:
        raise ValueError(f"n_models must be at least 1, got {n_models}")
    if n_models == 1:
        return 0.0
    x = np.linspace(-10, 10, 20001)
    density = n_models * norm.pdf(x) * norm.cdf(x) ** (n_models - 1)
    return float(standard_error * trapezoid(x * density, x))


def corrected_resampled_interval(
    scores: Sequence[float], test_to_train: float, *, level: float = 0.95
) -> dict[str, float] | None:
    """Mean of per-fold scores of a (repeated) K-fold CV with the corrected resampled-t
    interval: variance ``(1/J + n_test/n_train) s^2`` over the ``J`` fold scores, Student's t
    with ``J - 1`` degrees of freedom. The ``n_test/n_train`` term accounts for the training
    sets the folds share (``1/(K-1)`` for K folds), which the naive ``s^2/J`` ignores.
    None with fewer than two finite scores.

    >>> interval = corrected_resampled_interval([0.7, 0.8, 0.75, 0.65, 0.85], 0.25)
    >>> round(interval["mean"], 3), round(interval["ci_low"], 3), round(interval["ci_high"], 3)
    (0.75, 0.603, 0.897)
    """
    values = np.asarray([s for s in scores if math.isfinite(s)], dtype=float)
    if len(values) < 2:
        return None
    mean = float(values.mean())
    sd = float(values.std(ddof=1))
    half = student_t.ppf(0.5 + level / 2, len(values) - 1) * sd
    half *= math.sqrt(1 / len(values) + test_to_train)
    return {
        "mean": mean,
        "ci_low": float(mean - half),
        "ci_high": float(mean + half),
        "sd": sd,
        "n_scores": len(values),
        "test_to_train": float(test_to_train),
    }
