"""Repeated stratified cross-validation of several models, out-of-fold predictions, metrics.

Three public steps, each usable from a notebook:

1. :func:`cross_validate_models` fits a fresh clone of every model on the training rows of
   every (repeat, fold) split, the same splits for every model, and returns the long frame of
   out-of-fold probabilities (``patient_id, model, repeat, fold, y_true, proba``).
2. :func:`summarize` turns that frame into ``{model: {metric: {mean, ci_low, ci_high}}}``:
   the mean over repeats of each metric computed on the repeat's pooled out-of-fold
   predictions, with a 95 % percentile-bootstrap CI over patients.
3. :func:`roc_curve_points` gives the pooled mean ROC curve of one model, for plotting;
   :func:`roc_curves`, :func:`pr_curves`, :func:`calibration_curves`, :func:`decision_curves`,
   :func:`confusion_matrices` and :func:`compare_models` give the report's curves, confusion
   matrices and DeLong tests for every model at once.

Rows are patients: one row per patient. Folds are therefore patient-grouped by construction;
a patient is never in the training and the test rows of the same split. Anything fitted to
the data (scaling, harmonisation, feature selection, the learner) must live inside the
estimator so it is refitted on each training fold; that is what keeps the CV leakage-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import delayed
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import precision_recall_curve, roc_curve
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

from radfusion.features.errors import InputError, Problem

from ..fusion import FUSED
from ..progress import Progress, run_tasks
from ..splits import leave_one_group_out
from ..statistics import (
    calibration_bins,
    calibration_fit,
    confusion_counts,
    delong_test,
    group_sums,
    holm,
    net_benefit,
    net_benefit_treat_all,
    weighted_auc,
)
from ..targets import TASKS, multiclass_metrics, regression_metrics, task_metrics

__all__ = [
    "CI_LEVEL",
    "DCA_THRESHOLDS",
    "METRICS",
    "PREDICTION_COLUMNS",
    "THRESHOLD",
    "calibration_curves",
    "compare_models",
    "confusion_matrices",
    "cross_validate_models",
    "decision_curves",
    "default_comparisons",
    "encode_labels",
    "encode_target",
    "prediction_task",
    "pr_curves",
    "roc_curve_points",
    "roc_curves",
    "summarize",
]

METRICS = (
    "roc_auc",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "brier",
    "average_precision",
    "calibration_slope",
    "calibration_intercept",
)
"""Metric names, in report order. Thresholded metrics call a patient positive when
``proba >= THRESHOLD``; ``roc_auc``, ``brier``, ``average_precision`` (area under the
precision-recall curve, step-wise as in scikit-learn) and the calibration slope and intercept
(:func:`radfusion.pipeline.statistics.calibration_fit`) use the probability itself."""

THRESHOLD = 0.5
CI_LEVEL = 0.95
PREDICTION_COLUMNS = ("patient_id", "model", "repeat", "fold", "y_true", "proba")
ROC_GRID_POINTS = 101
CURVE_GRID = np.linspace(0.0, 1.0, ROC_GRID_POINTS)
"""False-positive-rate grid of the ROC curves and recall grid of the precision-recall curves."""
DCA_THRESHOLDS = np.round(np.linspace(0.01, 0.99, 99), 2)
"""Threshold probabilities of the decision curves."""
"""Model names of the fusion strategies; every other model is a single group."""


# --------------------------------------------------------------------------------------------
# Cross-validation
# --------------------------------------------------------------------------------------------
def encode_labels(y: Any) -> tuple[np.ndarray, dict[Any, int]]:
    """Map binary labels to 0/1.

    The two distinct values are sorted; the second (larger: ``1``, ``True``, ``"yes"`` over
    ``"no"``…) is the positive class, coded ``1``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels with exactly two distinct, non-missing values.

    Returns
    -------
    y01 : ndarray of int64
        The encoded labels.
    mapping : dict
        ``{original_label: code}``, negative class first.
    """
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if pd.isna(y).any():
        raise ValueError("y contains missing labels")
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(
            f"y must have exactly two classes for binary classification, got {len(classes)}: "
            f"{classes.tolist()[:10]}"
        )
    y01 = (y == classes[1]).astype(np.int64)
    mapping = {_py(classes[0]): 0, _py(classes[1]): 1}
    return y01, mapping


def encode_target(y: Any, task: str = "binary") -> tuple[np.ndarray, dict[Any, int]]:
    """Encode a target for :func:`cross_validate_models`.

    ``"binary"``: :func:`encode_labels`. ``"multiclass"``: the sorted distinct values are coded
    0 .. K-1 (at least three). ``"regression"``: the values as floats, mapping ``{}``.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if task == "binary":
        return encode_labels(y)
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if pd.isna(y).any():
        raise ValueError("y contains missing values")
    if task == "regression":
        values = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("a regression target must be numeric and finite")
        return values, {}
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 3:
        raise ValueError(f"a multiclass target needs at least 3 classes, got {len(classes)}")
    return codes.astype(np.int64), {_py(c): k for k, c in enumerate(classes)}


def prediction_task(predictions: pd.DataFrame) -> str:
    """The task of a predictions frame, from its columns: ``prediction`` (regression),
    ``proba_0, proba_1, ...`` (multiclass) or ``proba`` (binary)."""
    if "prediction" in predictions.columns:
        return "regression"
    if "proba_0" in predictions.columns:
        return "multiclass"
    return "binary"


def _output_columns(task: str, n_outputs: int) -> list[str]:
    if task == "regression":
        return ["prediction"]
    if task == "multiclass":
        return [f"proba_{k}" for k in range(n_outputs)]
    return ["proba"]


def cross_validate_models(
    models: Mapping[str, BaseEstimator],
    X: pd.DataFrame,
    y: Any,
    *,
    ids: Any = None,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    n_jobs: int | None = 1,
    fold_hook: Callable[..., Any] | None = None,
    task: str = "binary",
    skip_failing: bool = False,
    groups: Any = None,
    progress: Progress | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, list[dict[str, Any]]]:
    """Out-of-fold probabilities of several models on the same repeated stratified folds.

    Rows are sorted by patient id before splitting, so the result does not depend on the
    input row order. The splits are ``RepeatedStratifiedKFold(n_splits=folds,
    n_repeats=repeats, random_state=seed)``; every model sees the same splits. Each
    (model, repeat, fold) fits a fresh ``clone`` of the model on the training rows only and
    predicts the held-out rows. One row is one patient, so the folds are patient-grouped by
    construction. Models are not re-seeded: set their own ``random_state`` for
    reproducibility.

    Parameters
    ----------
    models : mapping of str to estimator
        Unfitted classifiers with ``predict_proba``; the mapping order is the report order.
    X : DataFrame of shape (n_patients, n_features)
        Features, one row per patient. Passed to the estimators as a DataFrame (row subsets).
    y : array-like of shape (n_patients,)
        Binary labels, aligned with the rows of ``X`` by position (see :func:`encode_labels`).
    ids : array-like of shape (n_patients,), default=None
        Unique patient ids; ``X.index`` when None.
    folds, repeats : int, default=5, 3
        Number of folds per repeat and of repeats.
    seed : int, default=0
        ``random_state`` of the splitter.
    n_jobs : int, default=1
        joblib workers over (model, repeat, fold) tasks. The result does not depend on it.
    fold_hook : callable, optional
        Called inside the worker right after each fit as ``fold_hook(estimator, X_test,
        y_test, model=name, repeat=r, fold=f)`` with the fitted estimator and the held-out
        rows (``y_test`` 0/1); it returns a small picklable record (or None). Fitted models
        never leave the worker. It must be picklable and deterministic given its arguments
        (seed any randomness from ``model, repeat, fold``) for the result not to depend on
        ``n_jobs``. See :class:`radfusion.pipeline.validation.FoldExplainer`.
    task : {"binary", "multiclass", "regression"}, default="binary"
        The target's kind (:func:`encode_target`). Multiclass models need ``predict_proba``
        and are split by ``RepeatedStratifiedKFold``; regressors are called with ``predict``
        and split by ``RepeatedKFold`` (shuffled, same seed).
    skip_failing : bool, default=False
        A model whose fit raises ``ValueError`` on some training fold (e.g. too few patients
        of a class for its inner folds) is left out of the result instead of stopping the run;
        ``predictions.attrs["skipped"]`` maps it to the reason. If every model fails, an
        :class:`~radfusion.features.errors.InputError` lists the reasons.
    groups : array-like of shape (n_patients,), optional
        A group (e.g. site) per patient: the splits are then leave-one-group-out
        (:func:`radfusion.pipeline.splits.leave_one_group_out`), one fold per group in sorted
        order, ``folds`` and ``repeats`` are ignored (one repeat), and
        ``predictions.attrs["groups"]`` lists the group held out by each fold.
    progress : callable, optional
        ``progress(done, total)`` over the (model, repeat, fold) fits as they complete, e.g. a
        :class:`radfusion.pipeline.progress.ProgressBar`. The result does not depend on it.

    Returns
    -------
    predictions : DataFrame
        Columns ``patient_id, model, repeat, fold, y_true, proba`` (``repeat`` and ``fold`` are
        0-based; ``y_true`` is 0/1; ``proba`` is the probability of class 1), sorted by model
        (in the given order), repeat, patient id. ``predictions.attrs["label_mapping"]`` holds
        the ``{original_label: code}`` mapping and ``attrs["task"]`` the task. Multiclass: the
        column ``proba`` is replaced by ``proba_0 .. proba_{K-1}`` (probabilities of the class
        codes) and ``y_true`` is the class code; regression: by ``prediction``, and ``y_true`` is
        the observed value.
    records : list of dict
        Only with ``fold_hook``: ``{"model", "repeat", "fold", "record"}`` per task, ordered
        by model (given order), repeat, fold; ``record`` is what the hook returned.
    """
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping of name to estimator")
    for name, model in models.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"model names must be non-empty strings, got {name!r}")
        if task != "regression" and not hasattr(model, "predict_proba"):
            raise TypeError(f"model {name!r} ({type(model).__name__}) has no predict_proba")
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    for label, value, low in (("folds", folds, 2), ("repeats", repeats, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")

    n = len(X)
    if groups is not None:
        group_names, group_codes = leave_one_group_out(groups, n)
        folds, repeats = len(group_names), 1
    ids = np.asarray(X.index if ids is None else ids, dtype=object)
    if len(ids) != n or len(np.asarray(y)) != n:
        raise ValueError(
            f"X, y and ids must have the same length, got {n}, {len(np.asarray(y))}, {len(ids)}"
        )
    duplicated = pd.Index(ids)[pd.Index(ids).duplicated()].unique()
    if len(duplicated):
        raise ValueError(
            f"patient ids must be unique (one row per patient); duplicated: "
            f"{[_py(v) for v in duplicated[:10]]}"
        )
    y01, mapping = encode_target(y, task)
    if groups is not None:
        pass  # one fold per group; a held-out group with one class is reported, not refused
    elif task != "regression":
        counts = np.bincount(y01, minlength=len(mapping))
        if counts.min() < folds:
            inverse = {code: label for label, code in mapping.items()}
            advice = (
                f"use --folds {counts.min()} or fewer"
                if counts.min() >= 2
                else "every class needs at least 2 patients"
            )
            raise InputError(
                f"Cannot make {folds} stratified folds",
                [
                    Problem(
                        f"class {inverse[int(counts.argmin())]!r} has only {counts.min()} "
                        f"patient(s) (classes: "
                        f"{ {inverse[k]: int(c) for k, c in enumerate(counts)} }); {advice}"
                    )
                ],
            )
    elif n < 2 * folds:
        raise InputError(
            f"Cannot make {folds} folds",
            [
                Problem(
                    f"{n} patients: every fold needs at least 2; use --folds "
                    f"{max(2, n // 2)} or fewer"
                )
            ],
        )

    order = _argsort_ids(ids)
    ids, y01, X = ids[order], y01[order], X.iloc[order]

    if groups is not None:
        codes = group_codes[order]
        splits = [(np.flatnonzero(codes != g), np.flatnonzero(codes == g)) for g in range(folds)]
    else:
        splitter = (RepeatedKFold if task == "regression" else RepeatedStratifiedKFold)(
            n_splits=folds, n_repeats=repeats, random_state=seed
        )
        splits = list(splitter.split(np.zeros((n, 1)), y01))
    n_outputs = len(mapping) if task == "multiclass" else 1
    tasks = [(name, split) for name in models for split in range(len(splits))]
    outputs = run_tasks(
        (
            delayed(_fit_predict)(
                models[name],
                X,
                y01,
                *splits[split],
                name,
                None if fold_hook is None else (fold_hook, *divmod(split, folds)),
                task,
                n_outputs,
                skip_failing,
            )
            for name, split in tasks
        ),
        n_jobs=n_jobs,
        progress=progress,
    )
    skipped = _skipped(tasks, outputs, folds)
    if skipped:
        if len(skipped) == len(models):
            raise InputError(
                "No model can be fitted on this cohort",
                [Problem(f"{name}: {reason}") for name, reason in skipped.items()],
            )
        kept = [i for i, (name, _) in enumerate(tasks) if name not in skipped]
        tasks, outputs = [tasks[i] for i in kept], [outputs[i] for i in kept]
        models = {name: model for name, model in models.items() if name not in skipped}
    probas = [p for p, _ in outputs]

    # Assemble per (model, repeat) in patient order: rows come out sorted by construction.
    n_models = len(models)
    model_index = {name: m for m, name in enumerate(models)}
    proba = np.full((n_models, repeats, n, n_outputs), np.nan)
    fold_of = np.full((repeats, n), -1, dtype=np.int64)
    for (name, split), p in zip(tasks, probas, strict=True):
        repeat, fold = divmod(split, folds)
        test = splits[split][1]
        proba[model_index[name], repeat, test] = p.reshape(len(test), n_outputs)
        fold_of[repeat, test] = fold
    predictions = pd.DataFrame(
        {
            "patient_id": np.tile(ids, n_models * repeats),
            "model": np.repeat(np.array(list(models), dtype=object), repeats * n),
            "repeat": np.tile(np.repeat(np.arange(repeats, dtype=np.int64), n), n_models),
            "fold": np.tile(fold_of.ravel(), n_models),
            "y_true": np.tile(y01, n_models * repeats),
            **{
                column: proba[..., k].ravel()
                for k, column in enumerate(_output_columns(task, n_outputs))
            },
        }
    )
    predictions["patient_id"] = predictions["patient_id"].infer_objects()
    predictions.attrs["label_mapping"] = mapping
    predictions.attrs["task"] = task
    if groups is not None:
        predictions.attrs["groups"] = list(group_names)
    if skipped:
        predictions.attrs["skipped"] = skipped
    if fold_hook is None:
        return predictions
    records = [
        {
            "model": name,
            "repeat": divmod(split, folds)[0],
            "fold": divmod(split, folds)[1],
            "record": record,
        }
        for (name, split), (_, record) in zip(tasks, outputs, strict=True)
    ]
    return predictions, records


def _fit_predict(
    model: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    name: str,
    hook: tuple[Callable[..., Any], int, int] | None = None,
    task: str = "binary",
    n_outputs: int = 1,
    skip_failing: bool = False,
) -> tuple[np.ndarray | None, Any]:
    """Fit a clone on the training rows; return the test rows' output (P(class 1); the class
    probabilities; the predicted value) and the record of ``hook = (fold_hook, repeat, fold)``
    (None without a hook). With ``skip_failing``, a ``ValueError`` of the fit gives
    ``(None, reason)``."""
    try:
        estimator = clone(model).fit(X.iloc[train], y[train])
    except ValueError as error:
        if not skip_failing:
            raise
        counts = (
            ""
            if task == "regression"
            else (f" (per class: {np.bincount(y[train].astype(int)).tolist()})")
        )
        return None, (
            f"cannot be fitted on the {len(train)} training patients of a fold"
            f"{counts}: {str(error).strip().splitlines()[0]}"
        )
    if task == "regression":
        output = np.asarray(estimator.predict(X.iloc[test]), dtype=np.float64).reshape(-1)
        if output.shape != (len(test),):
            raise ValueError(f"model {name!r}: predict must return shape (n,), got {output.shape}")
    else:
        proba = np.asarray(estimator.predict_proba(X.iloc[test]), dtype=np.float64)
        classes = np.asarray(getattr(estimator, "classes_", np.arange(max(2, n_outputs))))
        expected = np.arange(max(2, n_outputs))
        if (
            proba.shape != (len(test), len(expected))
            or len(classes) != len(expected)
            or (classes != expected).any()
        ):
            raise ValueError(
                f"model {name!r}: predict_proba must return shape (n, {len(expected)}) with "
                f"classes_ {expected.tolist()}; got shape {proba.shape} and classes_ "
                f"{classes.tolist()}"
            )
        output = proba if task == "multiclass" else proba[:, 1]
    record = None
    if hook is not None:
        fold_hook, repeat, fold = hook
        record = fold_hook(estimator, X.iloc[test], y[test], model=name, repeat=repeat, fold=fold)
    return output, record


def _skipped(
    tasks: list[tuple[str, int]], outputs: list[tuple[Any, Any]], folds: int
) -> dict[str, str]:
    """Model → the reason of its first failed (repeat, fold), for tasks that returned None."""
    skipped: dict[str, str] = {}
    for (name, split), (output, reason) in zip(tasks, outputs, strict=True):
        if output is None and name not in skipped:
            repeat, fold = divmod(split, folds)
            skipped[name] = f"repeat {repeat + 1}, fold {fold + 1}: {reason}"
    return skipped


def _argsort_ids(ids: np.ndarray) -> np.ndarray:
    """Stable order of patient ids (as strings when the ids are not mutually comparable)."""
    try:
        return np.argsort(ids, kind="stable")
    except TypeError:
        return np.argsort(ids.astype(str), kind="stable")


def _py(value: Any) -> Any:
    """A numpy scalar as the equivalent Python scalar."""
    return value.item() if isinstance(value, np.generic) else value


# --------------------------------------------------------------------------------------------
# Metrics and bootstrap
# --------------------------------------------------------------------------------------------
def _as_cube(predictions: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Reshape the long frame into ``proba[model, repeat, patient]`` and per-patient ``y``.

    Patients are in sorted id order, models in order of first appearance, repeats sorted.
    Every patient must be predicted exactly once per (model, repeat).
    """
    missing = set(PREDICTION_COLUMNS) - set(predictions.columns)
    if missing:
        raise ValueError(f"predictions lack column(s) {sorted(missing)}")
    if predictions.empty:
        raise ValueError("predictions are empty")
    models = list(pd.unique(predictions["model"]))
    patients = np.asarray(pd.unique(predictions["patient_id"]), dtype=object)
    patients = patients[_argsort_ids(patients)]
    repeats = np.sort(pd.unique(predictions["repeat"]))
    m = pd.Index(models).get_indexer(predictions["model"])
    r = pd.Index(repeats).get_indexer(predictions["repeat"])
    i = pd.Index(patients).get_indexer(predictions["patient_id"])
    shape = (len(models), len(repeats), len(patients))
    flat = np.ravel_multi_index((m, r, i), shape)
    if (np.bincount(flat, minlength=int(np.prod(shape))) != 1).any():
        raise ValueError(
            "predictions must hold exactly one row per (model, repeat, patient): every patient "
            "predicted once in every repeat of every model"
        )
    proba = np.empty(shape)
    proba.flat[flat] = predictions["proba"].to_numpy(dtype=np.float64)
    if not np.isfinite(proba).all():
        raise ValueError("predictions contain non-finite probabilities")
    y_rows = predictions["y_true"].to_numpy()
    y = np.zeros(len(patients), dtype=np.int64)
    y[i] = y_rows
    if (y[i] != y_rows).any() or not np.isin(y_rows, (0, 1)).all():
        raise ValueError("y_true must be 0/1 and constant per patient")
    if len(np.unique(y)) != 2:
        raise ValueError("predictions contain a single class; metrics are undefined")
    return models, repeats, proba, y


def _weighted_metrics(weights: np.ndarray, y: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """All :data:`METRICS` for every weight vector and every score vector, vectorised.

    A bootstrap replicate that draws patient ``i`` ``w_i`` times is the weight vector ``w``;
    weight 1 everywhere is the plain metric. Each metric is a ratio of weighted counts, so all
    replicates come out of a few matrix products.

    Parameters
    ----------
    weights : ndarray of shape (n_weights, n_patients)
    y : ndarray of shape (n_patients,), 0/1
    proba : ndarray of shape (n_scores, n_patients)

    Returns
    -------
    ndarray of shape (n_weights, n_scores, len(METRICS))
        NaN where a metric is undefined (a replicate without one of the classes).
    """
    weights = np.asarray(weights, dtype=np.float64)
    pos = y == 1
    w_pos = weights[:, pos].sum(axis=1)[:, None]  # (B, 1)
    w_neg = weights[:, ~pos].sum(axis=1)[:, None]
    total = w_pos + w_neg

    predicted = (proba >= THRESHOLD).astype(np.float64).T  # (n, S)
    tp = weights @ (predicted * pos[:, None])  # (B, S)
    pp = weights @ predicted
    fp = pp - tp
    tn = w_neg - fp
    brier = (weights @ ((proba - y) ** 2).T) / total

    auc = np.empty_like(tp)
    average_precision = np.empty_like(tp)
    slope = np.empty_like(tp)
    intercept = np.empty_like(tp)
    for s, scores in enumerate(proba):
        auc[:, s] = weighted_auc(weights, pos, scores, w_pos[:, 0], w_neg[:, 0])
        average_precision[:, s] = _weighted_average_precision(weights, pos, scores, w_pos[:, 0])
        slope[:, s], intercept[:, s] = calibration_fit(y, scores, weights)

    with np.errstate(divide="ignore", invalid="ignore"):
        sensitivity = tp / w_pos
        specificity = tn / w_neg
        # sklearn's zero_division=0 convention: no predicted positive -> precision 0.
        precision = np.where(pp > 0, tp / np.where(pp > 0, pp, 1.0), 0.0)
        f1 = np.where(tp > 0, 2 * tp / (pp + w_pos), 0.0)
        values = {
            "roc_auc": auc,
            "accuracy": (tp + tn) / total,
            "balanced_accuracy": (sensitivity + specificity) / 2,
            "sensitivity": sensitivity,
            "specificity": specificity,
            "precision": precision,
            "f1": f1,
            "brier": brier,
            "average_precision": average_precision,
            "calibration_slope": slope,
            "calibration_intercept": intercept,
        }
    out = np.stack([values[name] for name in METRICS], axis=-1)
    degenerate = ((w_pos == 0) | (w_neg == 0))[:, 0]
    out[degenerate] = np.nan
    return out


def _weighted_average_precision(
    weights: np.ndarray, pos: np.ndarray, scores: np.ndarray, w_pos: np.ndarray
) -> np.ndarray:
    """Weighted average precision, ``sum_k (R_k - R_{k-1}) P_k`` over the distinct scores.

    The step-wise area under the precision-recall curve, as
    :func:`sklearn.metrics.average_precision_score`, for every row of ``weights``.
    """
    pos_in_group, all_in_group = group_sums(weights, pos, -scores)  # highest score first
    tp, called = np.cumsum(pos_in_group, axis=1), np.cumsum(all_in_group, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(called > 0, tp / np.where(called > 0, called, 1.0), 0.0)
        return (pos_in_group * precision).sum(axis=1) / w_pos


def _bootstrap_weights(y: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
    """Stratified bootstrap over patients as multiplicities, shape (n_bootstrap, n_patients).

    Each class is resampled with replacement to its own size, so every replicate keeps the
    class counts of the data. Depends only on ``y`` (in patient-id order) and ``seed``, so
    every model is evaluated on the same resampled patients.
    """
    rng = np.random.default_rng(seed)
    weights = np.zeros((n_bootstrap, len(y)))
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        k = len(members)
        if k:
            weights[:, members] = rng.multinomial(k, np.full(k, 1.0 / k), size=n_bootstrap)
    return weights


def summarize(
    predictions: pd.DataFrame, *, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics of every model with 95 % percentile-bootstrap confidence intervals.

    The point estimate of a metric is its mean over repeats, each repeat's metric computed on
    that repeat's pooled out-of-fold predictions (every patient predicted once). The CI
    resamples patients with replacement, stratified by class, with the same resampled
    patients for every model and repeat; each replicate recomputes the repeat-averaged
    metric, and the 2.5th and 97.5th percentiles of the replicates bound the interval.
    Replicates where a metric is undefined are skipped (e.g. a calibration slope that does
    not converge). Thresholded metrics use ``proba >= 0.5``; precision and F1 are 0 when
    nothing is predicted positive.

    Parameters
    ----------
    predictions : DataFrame
        Output of :func:`cross_validate_models`.
    n_bootstrap : int, default=1000
        Number of bootstrap replicates; 0 gives NaN CIs.
    seed : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``{model: {metric: {"mean": float, "ci_low": float, "ci_high": float}}}``, models in
        order of appearance, metrics in :data:`METRICS` order.
    """
    if not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    task = prediction_task(predictions)
    if task != "binary":
        return _summarize_task(predictions, task, n_bootstrap, seed)
    models, repeats, proba, y = _as_cube(predictions)
    n_models, n_repeats, n = proba.shape
    scores = proba.reshape(n_models * n_repeats, n)

    point = _weighted_metrics(np.ones((1, n)), y, scores)[0]
    point = point.reshape(n_models, n_repeats, len(METRICS)).mean(axis=1)

    boot = None
    if n_bootstrap:
        boot = _weighted_metrics(_bootstrap_weights(y, n_bootstrap, seed), y, scores)
        boot = boot.reshape(n_bootstrap, n_models, n_repeats, len(METRICS)).mean(axis=2)
    return _with_ci(models, METRICS, point, boot)


def _with_ci(
    models: Sequence[str], metrics: Sequence[str], point: np.ndarray, boot: np.ndarray | None
) -> dict[str, dict[str, dict[str, float]]]:
    """``{model: {metric: {mean, ci_low, ci_high}}}`` from the point estimates (n_models,
    n_metrics) and the bootstrap replicates (n_bootstrap, n_models, n_metrics; None: no CI),
    skipping the replicates where a metric is undefined."""
    ci = np.full((2, *point.shape), np.nan)
    if boot is not None:
        alpha = (1 - CI_LEVEL) / 2
        valid = np.isfinite(boot).any(axis=0)
        if valid.any():
            with np.errstate(invalid="ignore"):
                ci[:, valid] = np.nanquantile(boot[:, valid], [alpha, 1 - alpha], axis=0)
    return {
        model: {
            metric: {
                "mean": float(point[m, k]),
                "ci_low": float(ci[0, m, k]),
                "ci_high": float(ci[1, m, k]),
            }
            for k, metric in enumerate(metrics)
        }
        for m, model in enumerate(models)
    }


def task_cube(
    predictions: pd.DataFrame, models: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Patient ids (sorted), ``y_true`` per patient and the outputs of a multiclass or
    regression predictions frame as ``values[model, repeat, patient, output]`` (outputs:
    ``proba_0 .. proba_{K-1}``, or ``prediction``), for the given models in that order."""
    table = predictions[predictions["model"].isin(models)]
    patients = np.sort(pd.unique(table["patient_id"]).astype(object))
    repeats = np.sort(pd.unique(table["repeat"]))
    n, n_models, n_repeats = len(patients), len(models), len(repeats)
    if len(table) != n * n_models * n_repeats:
        raise ValueError("predictions must hold exactly one row per (model, repeat, patient)")
    table = table.assign(
        _m=pd.Index(models).get_indexer(table["model"]),
        _p=pd.Index(patients).get_indexer(table["patient_id"]),
    )
    table = table.sort_values(["_m", "repeat", "_p"], kind="stable")
    columns = sorted(
        (c for c in predictions.columns if str(c).startswith("proba_")),
        key=lambda c: int(c.split("_", 1)[1]),
    ) or ["prediction"]
    values = table[columns].to_numpy(dtype=np.float64).reshape(n_models, n_repeats, n, -1)
    return patients, table["y_true"].to_numpy()[:n], values


def _summarize_task(
    predictions: pd.DataFrame, task: str, n_bootstrap: int, seed: int
) -> dict[str, dict[str, dict[str, float]]]:
    """:func:`summarize` of a multiclass or regression predictions frame: the same repeat
    means and patient bootstrap (stratified by class for multiclass, plain for regression)."""
    models = list(pd.unique(predictions["model"]))
    _, y, values = task_cube(predictions, models)
    n_models, n_repeats, n = values.shape[:3]
    values = values.reshape(n_models * n_repeats, n, -1)
    if not np.isfinite(values).all():
        raise ValueError("predictions contain non-finite values")
    if task == "multiclass":
        y = y.astype(np.int64)
        metric = multiclass_metrics
    else:
        y = y.astype(np.float64)
        values = values[..., 0]
        metric = regression_metrics
    names = task_metrics(task)
    point = metric(np.ones((1, n)), y, values)[0].reshape(n_models, n_repeats, -1).mean(axis=1)
    boot = None
    if n_bootstrap:
        if task == "multiclass":
            weights = _bootstrap_weights(y, n_bootstrap, seed)
        else:
            rng = np.random.default_rng(seed)
            weights = rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(float)
        boot = metric(weights, y, values).reshape(n_bootstrap, n_models, n_repeats, -1)
        boot = boot.mean(axis=2)
    return _with_ci(models, names, point, boot)


def roc_curve_points(predictions: pd.DataFrame, model: str) -> tuple[np.ndarray, np.ndarray]:
    """Pooled mean ROC curve of one model.

    Per repeat, the ROC curve (the polyline through every threshold's point) of the pooled
    out-of-fold predictions is evaluated on a fixed false-positive-rate grid (101 points from
    0 to 1; on a vertical step the curve takes its upper value, so the grid point 0 holds the
    sensitivity reachable without false positives); the curves are averaged over repeats.

    Returns
    -------
    fpr : ndarray of shape (101,)
    tpr : ndarray of shape (101,)
    """
    models, _, proba, y = _as_cube(predictions)
    if model not in models:
        raise KeyError(f"model {model!r} not in predictions (models: {models})")
    curves = [
        interpolate_roc(*roc_curve(y, scores, drop_intermediate=False)[:2])
        for scores in proba[models.index(model)]
    ]
    return CURVE_GRID.copy(), np.mean(curves, axis=0)


# --------------------------------------------------------------------------------------------
# Curves, confusion matrices, comparisons (the report's figures and tests)
# --------------------------------------------------------------------------------------------
def _roc_on_grid(weights: np.ndarray, pos: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Weighted ROC curve interpolated on :data:`CURVE_GRID`, one row per weight vector.

    As :func:`roc_curve_points`: linear interpolation, and at a vertical step the upper value.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    last = np.r_[ranked[1:] != ranked[:-1], True]  # last patient of each tie group
    w = weights[:, order]
    tp = np.cumsum(w * pos[order], axis=1)[:, last]
    fp = np.cumsum(w * ~pos[order], axis=1)[:, last]
    zero = np.zeros((len(w), 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.hstack([zero, tp / tp[:, -1:]])
        fpr = np.hstack([zero, fp / fp[:, -1:]])
    out = np.empty((len(w), len(CURVE_GRID)))
    for b, (f, t) in enumerate(zip(fpr, tpr, strict=True)):
        out[b] = interpolate_roc(f, t)
    return out


def interpolate_roc(fpr: np.ndarray, tpr: np.ndarray) -> np.ndarray:
    """The ROC polyline through ``(fpr, tpr)`` (both non-decreasing) at :data:`CURVE_GRID`.

    Between two false-positive rates the curve runs from the top of the left vertical step to
    the bottom of the right one; on a vertical step it takes the upper value.
    """
    j = np.searchsorted(fpr, CURVE_GRID, side="right") - 1  # last point with fpr <= x
    following = np.minimum(j + 1, len(fpr) - 1)  # first point of the next fpr value
    span = fpr[following] - fpr[j]
    frac = np.where(span > 0, (CURVE_GRID - fpr[j]) / np.where(span > 0, span, 1.0), 0.0)
    return tpr[j] + frac * (tpr[following] - tpr[j])


def roc_curves(
    predictions: pd.DataFrame, *, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, dict[str, np.ndarray]]:
    """Mean ROC curve of every model with a pointwise 95 % percentile-bootstrap band.

    The curve is :func:`roc_curve_points` (on the false-positive-rate grid
    :data:`CURVE_GRID`); the band resamples patients exactly as :func:`summarize` does with
    the same seed, recomputes the repeat-averaged curve per replicate and takes the 2.5th and
    97.5th percentiles of the sensitivity at each grid point.

    Returns
    -------
    dict
        ``{model: {"tpr", "tpr_ci_low", "tpr_ci_high"}}``, arrays of shape (101,).
    """
    models, _, proba, y = _as_cube(predictions)
    pos = y == 1
    weights = _bootstrap_weights(y, n_bootstrap, seed) if n_bootstrap else None
    alpha = (1 - CI_LEVEL) / 2
    out = {}
    for m, name in enumerate(models):
        point = np.mean([_roc_on_grid(np.ones((1, len(y))), pos, s)[0] for s in proba[m]], axis=0)
        low = high = np.full(len(CURVE_GRID), np.nan)
        if weights is not None:
            boot = np.mean([_roc_on_grid(weights, pos, s) for s in proba[m]], axis=0)
            low, high = np.quantile(boot, [alpha, 1 - alpha], axis=0)
        out[name] = {"tpr": point, "tpr_ci_low": low, "tpr_ci_high": high}
    return out


def pr_curves(predictions: pd.DataFrame) -> dict[str, np.ndarray]:
    """Mean interpolated precision-recall curve of every model on the recall grid.

    Per repeat, the precision at recall ``r`` is the highest precision reached at a recall
    ``>= r`` (the usual interpolated precision); the curves are averaged over repeats.

    Returns
    -------
    dict
        ``{model: precision}``, arrays of shape (101,) on :data:`CURVE_GRID`.
    """
    models, _, proba, y = _as_cube(predictions)
    out = {}
    for m, name in enumerate(models):
        curves = []
        for scores in proba[m]:
            precision, recall, _ = precision_recall_curve(y, scores)
            order = np.argsort(recall, kind="stable")
            best_from_here = np.maximum.accumulate(precision[order][::-1])[::-1]
            index = np.searchsorted(recall[order], CURVE_GRID, side="left")
            curves.append(best_from_here[np.minimum(index, len(order) - 1)])
        out[name] = np.mean(curves, axis=0)
    return out


def calibration_curves(predictions: pd.DataFrame, n_bins: int = 10) -> dict[str, dict]:
    """Binned calibration curve of every model
    (:func:`radfusion.pipeline.statistics.calibration_bins`, all repeats pooled)."""
    models, _, proba, y = _as_cube(predictions)
    return {name: calibration_bins(y, proba[m], n_bins) for m, name in enumerate(models)}


def decision_curves(
    predictions: pd.DataFrame, thresholds: Any = DCA_THRESHOLDS
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Net benefit of every model (mean over repeats) and of treating everyone.

    Returns
    -------
    models : dict
        ``{model: net benefit at each threshold}``.
    treat_all : ndarray
        Net benefit of treating every patient (treating none has net benefit 0).
    """
    models, _, proba, y = _as_cube(predictions)
    curves = {name: net_benefit(y, proba[m], thresholds) for m, name in enumerate(models)}
    return curves, net_benefit_treat_all(y, thresholds)


def confusion_matrices(
    predictions: pd.DataFrame, threshold: float = THRESHOLD
) -> dict[str, dict[str, float]]:
    """``{model: {"tn", "fp", "fn", "tp"}}`` at ``threshold``, mean counts over repeats."""
    models, _, proba, y = _as_cube(predictions)
    return {name: confusion_counts(y, proba[m], threshold) for m, name in enumerate(models)}


def default_comparisons(models: Sequence[str]) -> list[tuple[str, str]]:
    """Every fused model (:data:`FUSED`) against every single-group model."""
    fused = [name for name in models if name in FUSED]
    single = [name for name in models if name not in FUSED]
    return [(f, s) for f in fused for s in single]


def compare_models(
    predictions: pd.DataFrame, pairs: Sequence[tuple[str, str]]
) -> list[dict[str, Any]]:
    """DeLong test of the AUCs of each ``(model, reference)`` pair, Holm-adjusted.

    Each AUC is the mean over repeats (as in :func:`summarize`); the placement values of each
    patient are averaged over repeats before DeLong's variance is computed
    (:func:`radfusion.pipeline.statistics.delong_test`).

    Returns
    -------
    list of dict
        One per pair, in the given order: ``model, reference, auc_model, auc_reference,
        difference, ci_low, ci_high, z, p_value, p_holm`` (difference = model - reference,
        95 % Wald CI; ``p_holm`` adjusted over all the pairs).
    """
    models, _, proba, y = _as_cube(predictions)
    rows = []
    for model, reference in pairs:
        for name in (model, reference):
            if name not in models:
                raise KeyError(f"model {name!r} not in predictions (models: {models})")
        result = delong_test(y, proba[models.index(model)], proba[models.index(reference)])
        rows.append(
            {
                "model": model,
                "reference": reference,
                "auc_model": result.auc_a,
                "auc_reference": result.auc_b,
                "difference": result.difference,
                "ci_low": result.ci_low,
                "ci_high": result.ci_high,
                "z": result.z,
                "p_value": result.p_value,
            }
        )
    for row, adjusted in zip(rows, holm([r["p_value"] for r in rows]), strict=True):
        row["p_holm"] = float(adjusted)
    return rows
