"""What a cohort of this size can tell, before any model runs, and how wide a CV estimate is.

Small pure functions on counts and scores, no I/O:

- :func:`chance_thresholds`: the precision of an AUC (or a C-index) follows from the outcomes
  alone (the class counts; the events, censoring and ties), so a report can say before the
  results which value it could tell from chance: the outcomes are scored at random many times
  (:meth:`radfusion.pipeline.targets.Task.chance_scores`) and the spread read off;
- :func:`best_of_optimism`: how much reporting the best of ``n`` equally good models inflates
  its estimate by chance (the "best of N" the report's ``best_note`` warns about);
- :func:`corrected_resampled_interval`: a confidence interval of a repeated-CV mean whose
  variance accounts for the folds' overlapping training sets (Nadeau and Bengio).

References
----------
Hanley JA, McNeil BJ. The meaning and use of the area under a receiver operating
characteristic (ROC) curve. Radiology 1982;143:29-36 (the normal approximation the drawn null
spread agrees with on all but small cohorts, where it is too narrow).
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
    "chance_thresholds",
    "corrected_resampled_interval",
]


def chance_thresholds(
    draws: Sequence[float], *, level: float = 0.95, power: float = 0.8
) -> dict[str, float | None]:
    """What a cohort can tell, from its metric's null draws (random scorings of its outcomes).

    ``min_significant``: the smallest value that chance reaches in at most ``(1 - level) / 2``
    of the draws (the upper end of a two-sided test of "no better than chance"; exact up to
    sampling, so small cohorts' discreteness is respected), so an estimate below it cannot be
    told from chance; ``min_detectable``: ``min_significant + z_power * sd``, the true value
    whose estimate (spread as under chance, which is conservative for high values) passes
    that end with probability ``power``; ``null_sd``: the draws' spread. None where no value
    (at most 1) qualifies: with 2 positives and 2 negatives a perfect ranking happens by
    chance once in 6.

    >>> import numpy as np
    >>> draws = np.random.default_rng(0).normal(0.5, 0.05, 100_000)
    >>> t = chance_thresholds(draws)
    >>> round(t["min_significant"], 2), round(t["min_detectable"], 2), round(t["null_sd"], 3)
    (0.6, 0.64, 0.05)
    """
    values = np.sort(np.asarray([d for d in draws if math.isfinite(d)], dtype=float))
    if not len(values):
        return {"min_significant": None, "min_detectable": None, "null_sd": None}
    sd = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    # the smallest value that chance reaches or exceeds in at most (1 - level) / 2 of draws
    levels = np.unique(values)
    tail = (len(values) - np.searchsorted(values, levels, side="left")) / len(values)
    passing = levels[tail <= (1 - level) / 2 + 1e-12]
    if not len(passing):
        return {"min_significant": None, "min_detectable": None, "null_sd": sd}
    significant = float(passing[0])
    detectable = significant + float(norm.ppf(power)) * sd
    return {
        "min_significant": significant,
        "min_detectable": detectable if detectable <= 1 else None,
        "null_sd": sd,
    }


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
