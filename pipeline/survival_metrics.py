"""Metrics of survival predictions, with patient-bootstrap confidence intervals.

Every metric is scikit-survival's (:mod:`sksurv.metrics`); this module chooses the horizons
and the time grid, resamples patients and pairs models:

- Harrell's C (``concordance_index_censored``);
- Uno's C (``concordance_index_ipcw``; censoring weights from the scored rows);
- time-dependent cumulative/dynamic AUC at horizons (``cumulative_dynamic_auc``; default
  horizons: the 25/50/75 % quantiles of the observed event times) and its mean over them;
- the integrated Brier score (``integrated_brier_score``) when survival probabilities are
  given, over a grid of 50 times from the 10th to the 90th percentile of the follow-up times.

The inverse-probability-of-censoring weights of Uno's C, the AUC and the Brier score are
estimated (Kaplan–Meier of the censoring times) on the same rows that are scored: for pooled
out-of-fold predictions these are the whole cohort's, in a bootstrap replicate the
replicate's. A replicate in which a metric is not defined (e.g. a horizon beyond its
follow-up) counts as missing for that metric; ``n_boot_used`` says how many replicates
defined each interval. Needs scikit-survival (``radfusion[survival]``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from radfusion.features.errors import InputError, Problem

from .survival import EVENT_FIELD, TIME_FIELD, check_survival_y, event_and_time

__all__ = [
    "HORIZON_QUANTILES",
    "SURVIVAL_METRICS",
    "bootstrap_indices",
    "c_index_difference",
    "default_horizons",
    "harrell_c_ci",
    "ibs_times",
    "metrics_table",
    "quantiles_before",
    "survival_metrics",
    "survival_metrics_ci",
]

HORIZON_QUANTILES = (0.25, 0.5, 0.75)
"""Default horizons: these quantiles of the observed event times."""

SURVIVAL_METRICS = ("harrell_c", "uno_c", "mean_auc", "ibs")
"""Headline metrics, in report order; ``auc@{horizon}`` entries come after ``mean_auc``."""


def default_horizons(
    y: Any, quantiles: Sequence[float] = HORIZON_QUANTILES, *, before: float | None = None
) -> np.ndarray:
    """The ``quantiles`` of the observed event times (not of censoring times), each before
    ``before`` (default: the longest follow-up; see :func:`quantiles_before`)."""
    y = check_survival_y(y)
    return quantiles_before(
        y[TIME_FIELD][y[EVENT_FIELD]], quantiles, _limit(y, before), what="event times"
    )


def ibs_times(y: Any, n: int = 50, *, before: float | None = None) -> np.ndarray:
    """Integrated Brier score grid: ``n`` times from the 10th to the 90th percentile of all
    follow-up times (events and censored), each before ``before`` (default: the longest
    follow-up; see :func:`quantiles_before`)."""
    y = check_survival_y(y)
    low, high = quantiles_before(
        y[TIME_FIELD], [0.1, 0.9], _limit(y, before), what="follow-up times"
    )
    return np.linspace(low, high, n)


def quantiles_before(
    values: Any, quantiles: Sequence[float], limit: float, *, what: str = "times"
) -> np.ndarray:
    """The ``quantiles`` of ``values``; when one of them reaches ``limit`` (times rounded to
    whole months tie many patients at the last follow-up; a held-out site may hold the
    longest follow-ups), the quantiles of the values before ``limit`` instead, so that every
    evaluation time lies inside the follow-up.

    Raises
    ------
    InputError
        No value (``what``, in the message) lies before ``limit``.
    """
    values = np.asarray(values, dtype=np.float64)
    found = np.quantile(values, list(quantiles))
    if found.max() < limit:
        return found
    before = values[values < limit]
    if not len(before):
        raise InputError(
            "No survival evaluation time",
            [
                Problem(
                    f"the {what} ({len(values)}) are all at or after {limit:g}, the end of "
                    "the follow-up the models can be evaluated in: too few patients, or give "
                    "--horizons"
                )
            ],
        )
    return np.quantile(before, list(quantiles))


def _limit(y: np.ndarray, before: float | None) -> float:
    return float(y[TIME_FIELD].max()) if before is None else float(before)


def _metrics(y, risk, surv, surv_times, horizons) -> dict[str, float]:
    from sksurv.metrics import (
        concordance_index_censored,
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )

    event, time = y[EVENT_FIELD], y[TIME_FIELD]
    out: dict[str, float] = {}

    def attempt(fn):
        try:
            return fn()
        except (ValueError, ZeroDivisionError):
            return np.nan

    out["harrell_c"] = attempt(lambda: concordance_index_censored(event, time, risk)[0])
    out["uno_c"] = attempt(lambda: concordance_index_ipcw(y, y, risk)[0])
    try:  # all horizons in one call; one by one when a horizon is outside this follow-up
        aucs = list(cumulative_dynamic_auc(y, y, risk, horizons)[0])
    except ValueError:
        aucs = [
            attempt(lambda h=h: cumulative_dynamic_auc(y, y, risk, [h])[0][0]) for h in horizons
        ]
    for h, auc in zip(horizons, aucs, strict=True):
        out[f"auc@{h:g}"] = float(auc)
    out["mean_auc"] = float(np.mean(aucs)) if np.all(np.isfinite(aucs)) else np.nan
    if surv is not None:
        out["ibs"] = attempt(lambda: integrated_brier_score(y, y, surv, surv_times))
    return {k: float(v) for k, v in out.items()}


def survival_metrics(
    y: Any,
    risk: Sequence[float],
    survival: np.ndarray | None = None,
    survival_times: Sequence[float] | None = None,
    horizons: Sequence[float] | None = None,
) -> dict[str, float]:
    """Harrell's C, Uno's C, AUC at each horizon and their mean, and (with ``survival``) the
    integrated Brier score, of one set of predictions.

    Parameters
    ----------
    y : survival target
        ``(event, time)`` records (:func:`radfusion.pipeline.survival.survival_target`).
    risk : array of shape (n,)
        Risk scores, higher = earlier event.
    survival : array of shape (n, len(survival_times)), optional
        Survival probabilities at ``survival_times`` (e.g. ``FusionSurvival.predict_survival``
        at :func:`ibs_times`).
    survival_times : sequence of float, optional
        Required with ``survival``.
    horizons : sequence of float, optional
        Times of the time-dependent AUC; default :func:`default_horizons`.

    Returns
    -------
    dict
        ``harrell_c``, ``uno_c``, ``auc@{h}`` per horizon, ``mean_auc`` and, with survival
        probabilities, ``ibs``; NaN where a metric is not defined.
    """
    y = check_survival_y(y)
    risk = np.asarray(risk, dtype=np.float64)
    horizons = default_horizons(y) if horizons is None else np.asarray(horizons, dtype=float)
    if survival is not None and survival_times is None:
        raise ValueError("survival probabilities need their survival_times")
    return _metrics(y, risk, survival, survival_times, horizons)


def bootstrap_indices(y: Any, n_boot: int = 1000, seed: int = 0) -> np.ndarray:
    """Patient bootstrap replicates, stratified by event: (n_boot, n) row positions.

    Each replicate draws, with replacement, as many events among the patients with an event
    and as many censored patients among the censored, so every replicate has the cohort's
    event count. The same indices serve every model (paired comparisons).
    """
    y = check_survival_y(y)
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(y[EVENT_FIELD]), np.flatnonzero(~y[EVENT_FIELD])]
    return np.column_stack(
        [rng.choice(rows, size=(n_boot, len(rows)), replace=True) for rows in strata if len(rows)]
    )


def _interval(point: float, values: np.ndarray, level: float) -> dict[str, float]:
    finite = values[np.isfinite(values)]
    alpha = (1 - level) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha]) if len(finite) else (np.nan, np.nan)
    return {
        "mean": float(point),
        "ci_low": float(low),
        "ci_high": float(high),
        "n_boot_used": int(len(finite)),
    }


def survival_metrics_ci(
    y: Any,
    risk: Sequence[float],
    survival: np.ndarray | None = None,
    survival_times: Sequence[float] | None = None,
    horizons: Sequence[float] | None = None,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    indices: np.ndarray | None = None,
) -> dict[str, dict[str, float]]:
    """:func:`survival_metrics` with patient-bootstrap percentile intervals.

    The point estimate (``mean``) is the metric on all rows; ``ci_low`` / ``ci_high`` are the
    percentiles of the metric over ``n_boot`` event-stratified patient resamples
    (:func:`bootstrap_indices`, or the ``indices`` given, to share them across models).
    Horizons and the Brier grid are fixed from the full rows, so every replicate scores the
    same times.
    """
    y = check_survival_y(y)
    risk = np.asarray(risk, dtype=np.float64)
    horizons = default_horizons(y) if horizons is None else np.asarray(horizons, dtype=float)
    point = survival_metrics(y, risk, survival, survival_times, horizons)
    if indices is None:
        indices = bootstrap_indices(y, n_boot, seed)
    draws: dict[str, list[float]] = {k: [] for k in point}
    for rows in indices:
        values = _metrics(
            y[rows],
            risk[rows],
            None if survival is None else survival[rows],
            survival_times,
            horizons,
        )
        for k in point:
            draws[k].append(values.get(k, np.nan))
    return {k: _interval(point[k], np.asarray(draws[k]), level) for k in point}


def harrell_c_ci(
    y: Any, risk: Sequence[float], *, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, float] | None:
    """Harrell's C of ``risk`` with an event-stratified patient-bootstrap interval.

    Returns ``{"mean", "ci_low", "ci_high", "n_boot_used"}`` (NaN bounds with ``n_boot=0``),
    or None when the C-index is not defined on these rows (no event, or no comparable pair:
    every event at or after every other patient's time).

    >>> from radfusion.pipeline.survival import survival_target
    >>> y = survival_target([2.0, 4.0, 6.0, 8.0], [1, 1, 0, 1])
    >>> round(harrell_c_ci(y, [0.9, 0.1, 0.5, 0.3], n_boot=0)["mean"], 3)
    0.6
    """
    from sksurv.metrics import concordance_index_censored

    event, time = event_and_time(y)
    risk = np.asarray(risk, dtype=np.float64)

    def c_of(rows: np.ndarray) -> float:
        try:
            return float(concordance_index_censored(event[rows], time[rows], risk[rows])[0])
        except (ValueError, ZeroDivisionError):
            return np.nan

    if not event.any():
        return None
    point = c_of(np.arange(len(event)))
    if not np.isfinite(point):
        return None
    indices = bootstrap_indices(y, n_boot, seed) if n_boot else np.zeros((0, len(event)), int)
    draws = np.asarray([c_of(rows) for rows in indices], dtype=np.float64)
    return _interval(point, draws, level)


def c_index_difference(
    y: Any,
    risk_a: Sequence[float],
    risk_b: Sequence[float],
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    indices: np.ndarray | None = None,
) -> dict[str, float]:
    """Paired difference of Harrell's C, model A minus model B, with a bootstrap interval.

    Both models are scored on the same resampled patients in every replicate. Returns
    ``delta`` (on all rows), ``ci_low``, ``ci_high``, ``n_boot_used`` and ``p_value``: the
    two-sided bootstrap p-value of "no difference" (twice the smaller share of replicates on
    either side of 0, at least ``1 / n_boot_used``).
    """
    from sksurv.metrics import concordance_index_censored

    y = check_survival_y(y)
    a = np.asarray(risk_a, dtype=np.float64)
    b = np.asarray(risk_b, dtype=np.float64)
    if indices is None:
        indices = bootstrap_indices(y, n_boot, seed)

    def delta(rows) -> float:
        event, time = y[EVENT_FIELD][rows], y[TIME_FIELD][rows]
        try:
            return float(
                concordance_index_censored(event, time, a[rows])[0]
                - concordance_index_censored(event, time, b[rows])[0]
            )
        except (ValueError, ZeroDivisionError):
            return np.nan

    point = delta(np.arange(len(y)))
    draws = np.asarray([delta(rows) for rows in indices])
    result = _interval(point, draws, level)
    finite = draws[np.isfinite(draws)]
    share = min((finite <= 0).mean(), (finite >= 0).mean()) if len(finite) else np.nan
    p_value = max(2 * share, 1 / len(finite)) if len(finite) else np.nan
    return {
        "delta": result["mean"],
        "ci_low": result["ci_low"],
        "ci_high": result["ci_high"],
        "n_boot_used": result["n_boot_used"],
        "p_value": float(min(1.0, p_value)),
    }


def metrics_table(results: Mapping[str, Mapping[str, Mapping[str, float]]]) -> str:
    """A plain-text table of :func:`survival_metrics_ci` results by model (for benchmarks)."""
    lines = []
    for model, metrics in results.items():
        cells = [
            f"{k} {v['mean']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"
            for k, v in metrics.items()
        ]
        lines.append(f"{model}: " + "; ".join(cells))
    return "\n".join(lines)
