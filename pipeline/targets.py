"""Kinds of target (binary, multiclass, continuous) and the metrics of the last two.

Binary outcomes are the historical case, scored by :mod:`radfusion.pipeline.validation`. This module
adds multiclass outcomes (scored by one-vs-rest ROC AUC and macro-averaged metrics) and continuous
ones (regression: R², MAE, RMSE, Pearson's r). The metric functions are *weighted*: a bootstrap
replicate that draws patient ``i`` ``w_i`` times is the weight vector ``w``, so all replicates
of all models come out of a few matrix products, as for binary targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .statistics import weighted_auc

__all__ = [
    "MAX_CLASSES",
    "MULTICLASS_METRICS",
    "PRIMARY_METRIC",
    "REGRESSION_METRICS",
    "TASKS",
    "infer_task",
    "multiclass_metrics",
    "regression_metrics",
    "task_metrics",
]

TASKS = ("binary", "multiclass", "regression")
"""Target kinds: two classes, three or more classes, a continuous value."""

MAX_CLASSES = 10
"""Integer or text targets with at most this many distinct values are classes."""

MULTICLASS_METRICS = (
    "roc_auc_ovr",
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "precision_macro",
    "recall_macro",
    "log_loss",
    "brier",
)
"""Multiclass metrics, in report order. ``roc_auc_ovr`` is the unweighted mean over classes of
the one-vs-rest AUC (scikit-learn's ``roc_auc_score(multi_class="ovr", average="macro")``);
the predicted class is the most probable one; ``brier`` is the multiclass Brier score, the
mean over patients of sum_k (p_k - [y = k])², between 0 and 2."""

REGRESSION_METRICS = ("r2", "mae", "rmse", "pearson_r")
"""Regression metrics, in report order, of the pooled out-of-fold predictions."""

PRIMARY_METRIC = {"binary": "roc_auc", "multiclass": "roc_auc_ovr", "regression": "r2"}
"""The metric that ranks models (the report's ``best``); higher is better for each."""


def task_metrics(task: str) -> tuple[str, ...]:
    """The metric names of a non-binary task (binary metrics are
    :data:`radfusion.pipeline.validation.METRICS`)."""
    if task == "multiclass":
        return MULTICLASS_METRICS
    if task == "regression":
        return REGRESSION_METRICS
    raise ValueError(f"task must be 'multiclass' or 'regression', got {task!r}")


def infer_task(values: Any) -> str:
    """The kind of a target column: ``"binary"``, ``"multiclass"`` or ``"regression"``.

    Missing values are ignored. Two distinct values: binary. Text, boolean or categorical
    values, or integer values with 3 to :data:`MAX_CLASSES` distinct values: multiclass.
    Any other numeric column (fractional values, or many integers): regression. Pass the task
    explicitly when this guess is wrong (e.g. a 0-5 score meant as a continuous value).

    >>> infer_task(["a", "b", "a"]), infer_task([0, 1, 2, 2]), infer_task([0.5, 1.2, 3.3])
    ('binary', 'multiclass', 'regression')
    """
    series = pd.Series(np.asarray(values, dtype=object)).dropna()
    distinct = pd.unique(series)
    if len(distinct) <= 2:
        return "binary"
    numeric = pd.to_numeric(series, errors="coerce")
    if numeric.isna().any() or series.map(lambda v: isinstance(v, (bool, np.bool_))).any():
        return "multiclass"
    integral = bool(np.all(np.mod(numeric.to_numpy(dtype=np.float64), 1.0) == 0))
    return "multiclass" if integral and len(distinct) <= MAX_CLASSES else "regression"


# --------------------------------------------------------------------------------------------
# Weighted metrics
# --------------------------------------------------------------------------------------------
def multiclass_metrics(weights: Any, y: Any, proba: Any) -> np.ndarray:
    """:data:`MULTICLASS_METRICS` for every weight vector and every probability matrix.

    Parameters
    ----------
    weights : array-like of shape (n_weights, n_patients)
        Patient multiplicities (ones: the plain metric).
    y : array-like of shape (n_patients,)
        Class codes 0 .. K-1.
    proba : array-like of shape (n_scores, n_patients, K)
        Predicted class probabilities, one matrix per model (or repeat).

    Returns
    -------
    ndarray of shape (n_weights, n_scores, len(MULTICLASS_METRICS))
        NaN where undefined (a class without patients in a replicate).
    """
    weights = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_scores, _, k = proba.shape
    onehot = np.eye(k)[y]  # (n, K)
    actual = weights @ onehot  # (B, K)
    total = actual.sum(axis=1)
    out = np.full((len(weights), n_scores, len(MULTICLASS_METRICS)), np.nan)
    for s in range(n_scores):
        p = proba[s]
        predicted = np.eye(k)[p.argmax(axis=1)]
        tp = weights @ (onehot * predicted)  # (B, K)
        called = weights @ predicted
        with np.errstate(divide="ignore", invalid="ignore"):
            recall = tp / actual
            precision = np.where(called > 0, tp / np.where(called > 0, called, 1.0), 0.0)
            f1 = np.where(tp > 0, 2 * tp / (actual + called), 0.0)
            auc = np.column_stack(
                [
                    weighted_auc(weights, y == c, p[:, c], actual[:, c], total - actual[:, c])
                    for c in range(k)
                ]
            )
            p_true = np.clip((p * onehot).sum(axis=1), 1e-15, 1.0)
            values = {
                "roc_auc_ovr": auc.mean(axis=1),
                "accuracy": tp.sum(axis=1) / total,
                "balanced_accuracy": recall.mean(axis=1),
                "f1_macro": f1.mean(axis=1),
                "precision_macro": precision.mean(axis=1),
                "recall_macro": recall.mean(axis=1),
                "log_loss": weights @ -np.log(p_true) / total,
                "brier": weights @ ((p - onehot) ** 2).sum(axis=1) / total,
            }
        out[:, s] = np.column_stack([values[name] for name in MULTICLASS_METRICS])
    out[(actual == 0).any(axis=1)] = np.nan
    return out


def regression_metrics(weights: Any, y: Any, prediction: Any) -> np.ndarray:
    """:data:`REGRESSION_METRICS` for every weight vector and every prediction vector.

    Parameters
    ----------
    weights : array-like of shape (n_weights, n_patients)
    y : array-like of shape (n_patients,)
        Observed values.
    prediction : array-like of shape (n_scores, n_patients)

    Returns
    -------
    ndarray of shape (n_weights, n_scores, len(REGRESSION_METRICS))
        ``r2`` is 1 - MSE / variance of ``y`` (NaN when ``y`` is constant), ``pearson_r`` the
        correlation of prediction and observation (NaN when either is constant).
    """
    weights = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    prediction = np.asarray(prediction, dtype=np.float64)
    total = weights.sum(axis=1)[:, None]  # (B, 1)
    error = prediction - y  # (S, n)
    mse = weights @ (error**2).T / total
    y_mean = (weights @ y)[:, None] / total
    y_var = (weights @ y**2)[:, None] / total - y_mean**2
    p_mean = weights @ prediction.T / total
    p_var = weights @ (prediction**2).T / total - p_mean**2
    covariance = weights @ (prediction * y).T / total - p_mean * y_mean
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(y_var > 1e-12, 1.0 - mse / y_var, np.nan)
        r = np.where(
            (y_var > 1e-12) & (p_var > 1e-12), covariance / np.sqrt(np.abs(y_var * p_var)), np.nan
        )
    values = {
        "r2": r2,
        "mae": weights @ np.abs(error).T / total,
        "rmse": np.sqrt(mse),
        "pearson_r": r,
    }
    return np.stack([values[name] for name in REGRESSION_METRICS], axis=-1)
