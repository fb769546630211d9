"""Statistics of a report: DeLong test, calibration, net benefit, confusion matrix, Table 1.

Small pure functions on arrays: no I/O, no plotting, no cross-validation. Scores may be given
as one vector of shape ``(n,)`` or as one vector per CV repeat, shape ``(repeats, n)``; the
repeat-aware functions then average over repeats (the way :mod:`radfusion.pipeline.validation`
averages metrics).

References
----------
DeLong ER, DeLong DM, Clarke-Pearson DL. Comparing the areas under two or more correlated
receiver operating characteristic curves: a nonparametric approach. Biometrics 1988;44:837-45.
Sun X, Xu W. Fast implementation of DeLong's algorithm for comparing the areas under
correlated ROC curves. IEEE Signal Process Lett 2014;21:1389-93.
Cox DR. Two further applications of a model for binary regression. Biometrika 1958;45:562-5.
Van Calster B et al. A calibration hierarchy for risk models was defined: from utopia to
empirical data. J Clin Epidemiol 2016;74:167-76.
Vickers AJ, Elkin EB. Decision curve analysis: a novel method for evaluating prediction
models. Med Decis Making 2006;26:565-74.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from scipy.stats import norm, rankdata

__all__ = [
    "DeLongResult",
    "CONFOUNDING_WARNING",
    "STRONG_ASSOCIATION",
    "ConfoundedSiteWarning",
    "auc_rows",
    "bootstrap_auc",
    "calibration_bins",
    "calibration_fit",
    "confusion_counts",
    "delong_test",
    "describe_cohort",
    "holm",
    "net_benefit",
    "net_benefit_treat_all",
    "random_aucs",
    "site_outcome_association",
    "standardized_difference",
]

PROBA_EPS = 1e-6
"""Probabilities are clipped to ``[PROBA_EPS, 1 - PROBA_EPS]`` before the logit."""
_MAX_SLOPE = 1e4  # beyond this the recalibration slope is diverging (separated predictions)
MAX_LEVELS = 10
"""A categorical variable of Table 1 shows at most this many levels (the rest: "other")."""


def _scores_2d(scores: Any, n: int) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores[None, :] if scores.ndim == 1 else scores
    if scores.ndim != 2 or scores.shape[1] != n:
        raise ValueError(f"scores must have shape (n,) or (repeats, n) with n={n}")
    return scores


def _binary(y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise ValueError("y must be a one-dimensional 0/1 array")
    if len(np.unique(y)) != 2:
        raise ValueError("y must contain both classes")
    return y.astype(bool)


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeLongResult:
    """Paired DeLong comparison of two AUCs (``a`` minus ``b``)."""

    auc_a: float
    auc_b: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _placements(pos: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components by midranks (Sun & Xu), averaged over repeats.

    Returns ``v10`` (one per positive: fraction of negatives it outranks, ties one half) and
    ``v01`` (one per negative: fraction of positives that outrank it).
    """
    m, n = int(pos.sum()), int((~pos).sum())
    x, z = scores[:, pos], scores[:, ~pos]
    rank_all = rankdata(scores, axis=1)
    v10 = (rank_all[:, pos] - rankdata(x, axis=1)) / n
    v01 = 1.0 - (rank_all[:, ~pos] - rankdata(z, axis=1)) / m
    return v10.mean(axis=0), v01.mean(axis=0)


def delong_test(y: Any, scores_a: Any, scores_b: Any, level: float = 0.95) -> DeLongResult:
    """DeLong's test of two correlated AUCs on the same patients.

    With scores of shape ``(repeats, n)`` (out-of-fold predictions of repeated CV), each AUC
    is the mean over repeats and the structural components (placement values) of every
    patient are averaged over repeats before DeLong's variance is taken; with one repeat this
    is the classical test. The fold assignment is treated as fixed.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    scores_a, scores_b : array-like of shape (n,) or (repeats, n)
        Scores of the two models, higher meaning class 1.
    level : float, default=0.95
        Level of the Wald interval of the difference.

    Returns
    -------
    DeLongResult
        AUCs, their difference (a - b), its standard error, Wald CI, z and two-sided p-value
        (1.0 when the two models' placements are identical).
    """
    pos = _binary(y)
    a10, a01 = _placements(pos, _scores_2d(scores_a, len(pos)))
    b10, b01 = _placements(pos, _scores_2d(scores_b, len(pos)))
    auc_a, auc_b = float(a10.mean()), float(b10.mean())
    s10 = np.cov(np.vstack([a10, b10]))
    s01 = np.cov(np.vstack([a01, b01]))
    contrast = np.array([1.0, -1.0])
    var = contrast @ s10 @ contrast / len(a10) + contrast @ s01 @ contrast / len(a01)
    se = float(np.sqrt(max(var, 0.0)))
    diff = auc_a - auc_b
    half = norm.ppf(0.5 + level / 2) * se
    if se > 0:
        z = diff / se
        p = float(2 * norm.sf(abs(z)))
    else:  # identical placements: no evidence of a difference
        z, p = (0.0, 1.0) if diff == 0 else (float("nan"), float("nan"))
    return DeLongResult(auc_a, auc_b, diff, se, diff - half, diff + half, float(z), p)


def group_sums(
    weights: np.ndarray, pos: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted count of positives and of all patients per tie group of ``scores``.

    Groups are the distinct scores in increasing order; returns two arrays of shape
    ``(n_weights, n_groups)``.
    """
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    w = weights[:, order]
    return (
        np.add.reduceat(w * pos[order], starts, axis=1),
        np.add.reduceat(w, starts, axis=1),
    )


def weighted_auc(
    weights: np.ndarray,
    pos: np.ndarray,
    scores: np.ndarray,
    w_pos: np.ndarray,
    w_neg: np.ndarray,
) -> np.ndarray:
    """Weighted Mann-Whitney AUC (ties count one half) for every row of ``weights``.

    Patients with equal scores form tie groups; per group, the weighted number of positives
    times (negatives in lower groups + half the negatives in the group), summed, over
    ``w_pos * w_neg``. Sorting happens once per score vector, not once per replicate.
    """
    pos_in_group, all_in_group = group_sums(weights, pos, scores)
    neg_in_group = all_in_group - pos_in_group
    neg_below = np.cumsum(neg_in_group, axis=1) - neg_in_group
    u = (pos_in_group * (neg_below + 0.5 * neg_in_group)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return u / (w_pos * w_neg)


def auc_rows(y: Any, scores: Any) -> np.ndarray:
    """ROC AUC of every row of ``scores`` against the same 0/1 labels ``y``.

    The Mann-Whitney statistic by midranks (ties count one half), so each value equals
    :func:`sklearn.metrics.roc_auc_score` ``(y, scores[i])``; one ``rankdata`` over the
    whole matrix instead of one scikit-learn call (and its input checks) per row.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels 0/1 with both classes present.
    scores : array-like of shape (k, n)

    Returns
    -------
    ndarray of shape (k,)
    """
    pos = _binary(y)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    ranks = rankdata(scores, axis=1)
    return (ranks[:, pos].sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def random_aucs(positive: Any, n_draws: int, seed: int) -> np.ndarray:
    """ROC AUC (:func:`auc_rows`) of ``n_draws`` random scorings of patients whose class is
    ``positive`` (bool): the null distribution of an AUC at this size and balance (exact up
    to sampling, small cohorts included); NaN without both classes."""
    positive = np.asarray(positive, dtype=bool)
    if positive.all() or not positive.any():
        return np.full(n_draws, np.nan)
    rng = np.random.default_rng(seed)
    chunks = [  # bounded memory on large cohorts
        auc_rows(positive, rng.random((min(256, n_draws - start), len(positive))))
        for start in range(0, n_draws, 256)
    ]
    return np.concatenate(chunks) if chunks else np.empty(0)


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjustment of p-values (family-wise error rate); NaN stays NaN."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    if len(ok):
        order = ok[np.argsort(p[ok], kind="stable")]
        k = len(order)
        adjusted = np.maximum.accumulate((k - np.arange(k)) * p[order])
        out[order] = np.minimum(adjusted, 1.0)
    return out


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------
def _logit(proba: np.ndarray) -> np.ndarray:
    p = np.clip(proba, PROBA_EPS, 1 - PROBA_EPS)
    return np.log(p) - np.log1p(-p)


def calibration_fit(
    y: Any,
    proba: Any,
    weights: Any = None,
    *,
    max_iter: int = 50,
    tol: float = 1e-8,
) -> tuple[np.ndarray, np.ndarray]:
    """Calibration slope and calibration-in-the-large intercept, for many weightings at once.

    The slope is ``b`` of the logistic recalibration ``logit P(y=1) = a + b * logit(p)``
    (Cox 1958); the intercept is ``a`` of ``logit P(y=1) = a + logit(p)`` (the logit as an
    offset, slope fixed at 1; Van Calster et al. 2016). A perfectly calibrated model has
    slope 1 and intercept 0; a slope below 1 means too extreme predictions (overfitting).
    Newton-Raphson, vectorised over weight vectors (bootstrap replicates as multiplicities).

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 labels.
    proba : array-like of shape (n,)
        Predicted probabilities of class 1 (clipped to ``[1e-6, 1 - 1e-6]``).
    weights : array-like of shape (n_weights, n) or (n,), default=None
        Case weights; all ones when None.

    Returns
    -------
    slope, intercept : ndarray of shape (n_weights,)
        NaN where Newton-Raphson did not converge (e.g. perfectly separated predictions).
    """
    yv = _binary(y).astype(np.float64)
    lp = _logit(np.asarray(proba, dtype=np.float64))
    if lp.shape != yv.shape:
        raise ValueError("y and proba must have the same shape (n,)")
    w = np.ones((1, len(yv))) if weights is None else np.atleast_2d(np.asarray(weights, float))
    if w.shape[1] != len(yv):
        raise ValueError("weights must have shape (n_weights, n)")

    # Warm start from the fit with the mean weights, close to every bootstrap replicate's.
    start = (0.0, 1.0, 0.0)
    if len(w) > 1:
        a0, b0 = _newton_slope(yv, lp, w.mean(axis=0, keepdims=True), (0.0, 1.0), max_iter, tol)
        c0 = _newton_offset(yv, lp, w.mean(axis=0, keepdims=True), 0.0, max_iter, tol)
        if np.isfinite(b0[0]) and np.isfinite(c0[0]):
            start = (float(a0[0]), float(b0[0]), float(c0[0]))
    _, slope = _newton_slope(yv, lp, w, start[:2], max_iter, tol)
    intercept = _newton_offset(yv, lp, w, start[2], max_iter, tol)
    return slope, intercept


def _newton_slope(
    y: np.ndarray,
    lp: np.ndarray,
    w: np.ndarray,
    start: tuple[float, float],
    max_iter: int,
    tol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted logistic fit of ``y`` on ``(1, lp)`` per row of ``w``: (intercepts, slopes).

    Newton steps only on the rows that have not converged; diverging rows (separated data)
    are dropped and left NaN.
    """
    a, b = np.full(len(w), start[0]), np.full(len(w), start[1])
    out_a, out_b = np.full(len(w), np.nan), np.full(len(w), np.nan)
    active = np.arange(len(w))
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            wa = w[active]
            p = expit(a[active, None] + b[active, None] * lp)
            r, h = wa * (y - p), wa * p * (1 - p)
            g0, g1 = r.sum(1), r @ lp
            h00, h01, h11 = h.sum(1), h @ lp, h @ (lp * lp)
            det = h00 * h11 - h01 * h01
            da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
            a[active] += da
            b[active] += db
            done = active[(np.abs(da) < tol) & (np.abs(db) < tol)]
            out_a[done], out_b[done] = a[done], b[done]
            keep = np.isfinite(da + db) & (np.abs(b[active]) < _MAX_SLOPE)
            active = active[keep & ~np.isin(active, done)]
            if not len(active):
                break
    return out_a, out_b


def _newton_offset(
    y: np.ndarray, lp: np.ndarray, w: np.ndarray, start: float, max_iter: int, tol: float
) -> np.ndarray:
    """Weighted logistic fit of ``y`` on an intercept with ``lp`` as offset, per row of ``w``."""
    c = np.full(len(w), start)
    out = np.full(len(w), np.nan)
    active = np.arange(len(w))
    with np.errstate(all="ignore"):
        for _ in range(max_iter):
            wa = w[active]
            p = expit(c[active, None] + lp)
            dc = (wa * (y - p)).sum(1) / (wa * p * (1 - p)).sum(1)
            c[active] += dc
            done = np.abs(dc) < tol
            out[active[done]] = c[active[done]]
            active = active[~done & np.isfinite(dc)]
            if not len(active):
                break
    return out


def calibration_bins(y: Any, proba: Any, n_bins: int = 10) -> dict[str, list[float]]:
    """Observed event rate against mean predicted probability in equal-size risk groups.

    Predictions (all repeats pooled when ``proba`` has shape ``(repeats, n)``) are sorted and
    cut into ``n_bins`` groups of (almost) equal size.

    Returns
    -------
    dict
        ``{"predicted": [...], "observed": [...], "n": [...]}``, one entry per group, in
        increasing order of predicted risk.
    """
    pos = _binary(y)
    scores = _scores_2d(proba, len(pos))
    flat = scores.ravel()
    labels = np.tile(pos, len(scores)).astype(np.float64)
    order = np.argsort(flat, kind="stable")
    chunks = [c for c in np.array_split(order, min(n_bins, len(order))) if len(c)]
    return {
        "predicted": [float(flat[c].mean()) for c in chunks],
        "observed": [float(labels[c].mean()) for c in chunks],
        "n": [len(c) / len(scores) for c in chunks],
    }


# --------------------------------------------------------------------------------------------
# Decision curve, confusion matrix
# --------------------------------------------------------------------------------------------
def net_benefit(y: Any, proba: Any, thresholds: Any) -> np.ndarray:
    """Net benefit of treating the patients with ``proba >= t``, at every threshold ``t``.

    ``NB(t) = TP/N - FP/N * t / (1 - t)`` (Vickers & Elkin 2006), averaged over repeats.
    """
    pos = _binary(y)
    scores = _scores_2d(proba, len(pos))
    t = np.asarray(thresholds, dtype=np.float64)
    if ((t <= 0) | (t >= 1)).any():
        raise ValueError("thresholds must lie strictly between 0 and 1")
    treated = scores[:, :, None] >= t  # (R, n, T)
    tp = (treated & pos[None, :, None]).sum(axis=1)
    fp = (treated & ~pos[None, :, None]).sum(axis=1)
    nb = tp / len(pos) - fp / len(pos) * t / (1 - t)
    return nb.mean(axis=0)


def net_benefit_treat_all(y: Any, thresholds: Any) -> np.ndarray:
    """Net benefit of treating everyone: ``prevalence - (1 - prevalence) * t / (1 - t)``."""
    prevalence = _binary(y).mean()
    t = np.asarray(thresholds, dtype=np.float64)
    return prevalence - (1 - prevalence) * t / (1 - t)


def confusion_counts(y: Any, proba: Any, threshold: float) -> dict[str, float]:
    """``{"tn", "fp", "fn", "tp"}`` calling ``proba >= threshold`` positive, mean over repeats."""
    pos = _binary(y)
    called = _scores_2d(proba, len(pos)) >= threshold
    return {
        "tn": float((~called & ~pos).sum(axis=1).mean()),
        "fp": float((called & ~pos).sum(axis=1).mean()),
        "fn": float((~called & pos).sum(axis=1).mean()),
        "tp": float((called & pos).sum(axis=1).mean()),
    }


# --------------------------------------------------------------------------------------------
# Table 1
# --------------------------------------------------------------------------------------------
def _is_categorical(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return True
    values = column.dropna().unique()
    return len(values) <= 2 and set(values.tolist()) <= {0, 1}


def _numeric_summary(values: pd.Series) -> dict[str, Any]:
    x = values.dropna().to_numpy(dtype=np.float64)
    if not len(x):
        return {
            "n": 0,
            "mean": None,
            "sd": None,
            "median": None,
            "q1": None,
            "q3": None,
            "missing": int(values.isna().sum()),
        }
    q1, median, q3 = np.quantile(x, [0.25, 0.5, 0.75])
    return {
        "n": len(x),
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)) if len(x) > 1 else None,
        "median": float(median),
        "q1": float(q1),
        "q3": float(q3),
        "missing": int(values.isna().sum()),
    }


def _levels(column: pd.Series) -> list[str]:
    counts = column.dropna().map(_level_name).value_counts()
    # Most frequent first when truncating; shown in sorted order.
    ordered = sorted(counts.index, key=lambda v: (-counts[v], v))
    kept = sorted(ordered[:MAX_LEVELS])
    return kept + (["other"] if len(ordered) > MAX_LEVELS else [])


def _level_name(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _categorical_summary(values: pd.Series, levels: list[str]) -> dict[str, Any]:
    names = values.dropna().map(_level_name)
    names = names.where(names.isin(levels), "other")
    n = len(names)
    return {
        "n": n,
        "levels": {
            level: {
                "n": int((names == level).sum()),
                "percent": 100.0 * float((names == level).sum()) / n if n else None,
            }
            for level in levels
        },
        "missing": int(values.isna().sum()),
    }


def standardized_difference(summaries: Sequence[Mapping[str, Any]], kind: str) -> float | None:
    """Absolute standardised mean difference between two classes' summaries (Table 1).

    Numeric: ``|mean_1 - mean_0| / sqrt((sd_1^2 + sd_0^2) / 2)`` (Cohen's d with the average
    variance). Categorical: the multinomial form of Yang & Dalton (2012),
    ``sqrt((p_1 - p_0)' S^+ (p_1 - p_0))`` over every level but the first, ``S`` the mean of
    the two classes' multinomial covariances (``|p_1 - p_0| / sqrt((p_1 q_1 + p_0 q_0) / 2)``
    for two levels). None when undefined (a class without values, or no spread in either).

    Parameters
    ----------
    summaries : sequence of two mappings
        The class-0 and class-1 summaries of :func:`describe_cohort` (``values[1:]``).
    kind : {"numeric", "categorical"}
        The variable's kind.
    """
    a, b = summaries
    if kind == "numeric":
        if a["mean"] is None or b["mean"] is None or a["sd"] is None or b["sd"] is None:
            return None
        pooled = math.sqrt((a["sd"] ** 2 + b["sd"] ** 2) / 2)
        return abs(b["mean"] - a["mean"]) / pooled if pooled > 0 else None
    if not a["n"] or not b["n"]:
        return None
    p = [
        np.array([v["n"] for v in s["levels"].values()], dtype=np.float64) / s["n"] for s in (a, b)
    ]
    p0, p1 = p[0][1:], p[1][1:]
    if not len(p0):
        return None
    covariance = sum(np.diag(q) - np.outer(q, q) for q in (p0, p1)) / 2
    if not np.any(covariance):
        return None  # one level only, in both classes
    diff = p1 - p0
    return math.sqrt(max(float(diff @ np.linalg.pinv(covariance) @ diff), 0.0))


def describe_cohort(
    y: Any,
    classes: Sequence[str],
    *,
    variables: pd.DataFrame | None = None,
    site: pd.Series | None = None,
    missing_groups: pd.DataFrame | None = None,
    group_sizes: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """ "Table 1": patient characteristics, overall and by outcome class.

    Parameters
    ----------
    y : array-like of shape (n,)
        0/1 outcome per patient.
    classes : sequence of two str
        Names of class 0 and class 1 (the original labels).
    variables : DataFrame of shape (n, k), default=None
        Patient characteristics (e.g. the biomarkers), rows aligned with ``y``. Text, boolean
        and 0/1 columns are summarised as counts and percentages (of non-missing values),
        others as mean (SD) and median [Q1, Q3]; missing values are counted.
    site : Series of shape (n,), default=None
        Acquisition site per patient, summarised as counts.
    missing_groups : DataFrame of bool, shape (n, n_groups), default=None
        True where a patient has no value at all in a feature group (a missing modality).
    group_sizes : mapping of str to int, default=None
        Number of feature columns per group.

    Returns
    -------
    dict
        ``columns`` (All, then each class: ``{"label", "n"}``), ``variables`` (rows ``{"name",
        "kind": "numeric" | "categorical", "values": [one summary per column], "smd":
        standardised difference between the classes or None}``, see
        :func:`standardized_difference`) and
        ``groups`` (rows ``{"name", "columns", "missing": [{"n", "percent"} per column]}``,
        then a row ``"any group"`` counting patients missing at least one group); with
        ``site``, also ``site_outcome_association``: Cramér's V between site and outcome
        (:func:`site_outcome_association`).
    """
    y = np.asarray(y)
    masks = [np.ones(len(y), dtype=bool), y == 0, y == 1]
    columns = [{"label": "All", "n": len(y)}] + [
        {"label": str(name), "n": int(m.sum())} for name, m in zip(classes, masks[1:], strict=True)
    ]

    rows = []
    table = pd.DataFrame(index=range(len(y)))
    if variables is not None:
        if len(variables) != len(y):
            raise ValueError("variables must have one row per patient")
        table = variables.reset_index(drop=True)
    if site is not None:
        table = table.assign(site=pd.Series(site).reset_index(drop=True).astype("string"))
    for name in table.columns:
        column = table[name]
        if _is_categorical(column):
            levels = _levels(column)
            values = [_categorical_summary(column[m], levels) for m in masks]
            kind = "categorical"
        else:
            values = [_numeric_summary(column[m]) for m in masks]
            kind = "numeric"
        smd = standardized_difference(values[1:], kind)
        rows.append({"name": str(name), "kind": kind, "values": values, "smd": smd})

    groups = []
    if missing_groups is not None:
        missing = missing_groups.reset_index(drop=True).astype(bool)
        sizes = dict(group_sizes or {})

        def counts(flags: pd.Series) -> list[dict[str, Any]]:
            return [
                {
                    "n": int(flags[m].sum()),
                    "percent": 100.0 * float(flags[m].mean()) if m.any() else None,
                }
                for m in masks
            ]

        for name in missing.columns:
            groups.append(
                {"name": str(name), "columns": sizes.get(name), "missing": counts(missing[name])}
            )
        if len(missing.columns):
            groups.append(
                {"name": "any group", "columns": None, "missing": counts(missing.any(axis=1))}
            )
    cohort = {"columns": columns, "variables": rows, "groups": groups}
    if site is not None:  # absent otherwise, so a report without a site is unchanged
        cohort["site_outcome_association"] = site_outcome_association(np.asarray(site), y)
    return cohort


def bootstrap_auc(
    y: Any, proba: Any, *, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, float]:
    """ROC AUC of 0/1 labels ``y`` and scores ``proba`` with a 95 % percentile-bootstrap CI
    (patients resampled with replacement within class; NaN bounds with ``n_bootstrap=0``).

    >>> bootstrap_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], n_bootstrap=0)["mean"]
    0.75
    """
    y = np.asarray(y).astype(np.int64)
    proba = np.asarray(proba, dtype=float)
    pos = y == 1
    weights = np.ones((1, len(y)))
    if n_bootstrap:
        rng = np.random.default_rng(seed)
        boot = np.zeros((n_bootstrap, len(y)))
        for label in (0, 1):
            members = np.flatnonzero(y == label)
            boot[:, members] = rng.multinomial(
                len(members), np.full(len(members), 1.0 / len(members)), size=n_bootstrap
            )
        weights = np.vstack([weights, boot])
    auc = weighted_auc(weights, pos, proba, weights[:, pos].sum(1), weights[:, ~pos].sum(1))
    low = high = float("nan")
    if n_bootstrap:
        alpha = (1 - 0.95) / 2
        low, high = np.quantile(auc[1:], [alpha, 1 - alpha])
    return {"mean": float(auc[0]), "ci_low": float(low), "ci_high": float(high)}


STRONG_ASSOCIATION = 0.3
"""Cramér's V between site and outcome from which harmonisation is flagged as confounded."""

CONFOUNDING_WARNING = (
    "the site is strongly associated with the outcome on the training rows: harmonisation "
    "cannot separate a confounded site from the outcome (it removes both), and a model "
    "without it may be reading the site"
)


class ConfoundedSiteWarning(UserWarning):
    """The site column is strongly associated with the outcome (see :class:`ComBat`)."""


def site_outcome_association(site, y) -> float:
    """Cramér's V between the site and the outcome (0: unrelated, 1: the site gives the class).

    Parameters
    ----------
    site, y : array-like of shape (n_samples,)
        Site and outcome of the same rows (any hashable values; missing sites are a level).
        A survival outcome (structured ``(event, time)`` records) is read by its event
        indicator.

    Returns
    -------
    float
        ``sqrt(chi² / (n · (min(sites, classes) - 1)))``, without continuity correction; 0
        with a single site or class.
    """
    site = pd.Series(np.asarray(site, dtype=object).ravel()).astype(str)
    fields = np.asarray(y).dtype.names
    if fields:
        y = np.asarray(y)[fields[0]]
    y = pd.Series(np.asarray(y, dtype=object).ravel()).astype(str)
    counts = pd.crosstab(site, y).to_numpy(dtype=np.float64)
    k = min(counts.shape) - 1
    if k < 1:
        return 0.0
    n = counts.sum()
    expected = np.outer(counts.sum(axis=1), counts.sum(axis=0)) / n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    return float(np.sqrt(chi2 / (n * k)))
