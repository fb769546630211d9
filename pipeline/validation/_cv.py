"""Repeated patient-level cross-validation of several models, out-of-fold outputs, metrics.

Three public steps, each usable from a notebook:

1. :func:`cross_validate_models` fits a fresh clone of every model on the training rows of
   every (repeat, fold) split, the same splits for every model, and returns a
   :class:`CVResult`: the long frame of out-of-fold outputs (``patient_id, model, repeat,
   fold, y_true`` and the task's output columns), the task object, the label mapping, which
   models ran and which of them are fused. The report is built from that result alone.
2. :func:`summarize` turns the frame into ``{model: {metric: {mean, ci_low, ci_high}}}``:
   the mean over repeats of each of the task's metrics computed on the repeat's pooled
   out-of-fold predictions, with a 95 % percentile-bootstrap CI over patients.
3. :func:`roc_curve_points` gives the pooled mean ROC curve of one binary model, for
   plotting; :func:`roc_curves`, :func:`pr_curves`, :func:`calibration_curves`,
   :func:`decision_curves`, :func:`confusion_matrices` and :func:`compare_models` give a
   binary report's curves, confusion matrices and DeLong tests for every model at once.

What differs between binary, multiclass and continuous targets (encoding, splitter, fold
output, metrics, bootstrap) belongs to the task objects of :mod:`radfusion.pipeline.targets`.

Rows are patients: one row per patient. Folds are therefore patient-grouped by construction;
a patient is never in the training and the test rows of the same split. Anything fitted to
the data (scaling, harmonisation, feature selection, the learner) must live inside the
estimator so it is refitted on each training fold; that is what keeps the CV leakage-free.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import delayed
from sklearn.base import BaseEstimator, clone
from sklearn.metrics import precision_recall_curve, roc_curve

from radfusion.features.errors import InputError, Problem

from ..progress import Progress, run_tasks
from ..shared_fits import shared_fits
from ..splits import leave_one_group_out
from ..statistics import (
    calibration_bins,
    confusion_counts,
    delong_test,
    holm,
    net_benefit,
    net_benefit_treat_all,
)
from ..targets import (
    BINARY_METRICS,
    THRESHOLD,
    BinaryTask,
    Task,
    get_task,
    stratified_bootstrap_weights,
)
from ..worker_warnings import gathering_warnings, warn_once

__all__ = [
    "CI_LEVEL",
    "DCA_THRESHOLDS",
    "METRICS",
    "PREDICTION_COLUMNS",
    "CVResult",
    "THRESHOLD",
    "calibration_curves",
    "compare_models",
    "confusion_matrices",
    "cross_validate_models",
    "decision_curves",
    "default_comparisons",
    "fused_models",
    "fold_scores",
    "encode_labels",
    "encode_target",
    "output_cube",
    "pr_curves",
    "roc_curve_points",
    "roc_curves",
    "summarize",
]

METRICS = BINARY_METRICS
"""Binary metric names, in report order (:data:`radfusion.pipeline.targets.BINARY_METRICS`)."""

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
    """Map binary labels to 0/1 (:meth:`radfusion.pipeline.targets.BinaryTask.encode`).

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
    return BinaryTask().encode(y)


def encode_target(y: Any, task: str | Task = "binary") -> tuple[np.ndarray, dict[Any, int]]:
    """Encode a target for :func:`cross_validate_models` (:meth:`Task.encode
    <radfusion.pipeline.targets.Task.encode>`): 0/1 (binary), codes 0 .. K-1 of the sorted
    values (multiclass), the values as floats with mapping ``{}`` (regression)."""
    return get_task(task).encode(y)


@dataclass(frozen=True)
class CVResult:
    """What one cross-validation returns: everything the report is built from.

    Attributes
    ----------
    predictions : DataFrame
        Out-of-fold outputs, one row per (model, repeat, patient): ``patient_id, model,
        repeat, fold, y_true`` and the task's output columns (``proba``; ``proba_0 ..
        proba_{K-1}``; ``prediction``), sorted by model (given order), repeat, patient id.
    task : Task
        The target's task object.
    label_mapping : dict
        ``{original_label: code}`` of the target given to the CV (empty for regression).
    models : tuple of str
        The models that ran, in report order (skipped ones left out).
    fused : tuple of str
        Those of ``models`` that combine groups.
    folds, repeats : int
        The splits (leave-one-group-out: one fold per group, one repeat).
    skipped : dict
        Model → why it could not be fitted (``skip_failing``).
    records : list of dict, optional
        With a ``fold_hook``: ``{"model", "repeat", "fold", "record"}`` per fit, ordered by
        model, repeat, fold.
    held_out_groups : list, optional
        With ``groups``: the group each fold held out, in fold order.
    """

    predictions: pd.DataFrame
    task: Task
    label_mapping: dict[Any, int]
    models: tuple[str, ...]
    fused: tuple[str, ...]
    folds: int
    repeats: int
    skipped: dict[str, str] = field(default_factory=dict)
    records: list[dict[str, Any]] | None = None
    held_out_groups: list[Any] | None = None

    @classmethod
    def from_predictions(
        cls,
        predictions: pd.DataFrame,
        task: str | Task = "binary",
        label_mapping: Mapping[Any, int] | None = None,
        fused: Sequence[str] = (),
    ) -> CVResult:
        """The result of a predictions frame read back (e.g. ``predictions.csv``) with its
        task; the label mapping is the identity on the codes when not given, the models are
        those of the frame, and ``fused`` names those that combine groups."""
        task = get_task(task)
        models = tuple(pd.unique(predictions["model"]))
        if label_mapping is None:
            k = len([c for c in predictions.columns if str(c).startswith("proba_")])
            label_mapping = task.code_mapping(k)
        return cls(
            predictions=predictions,
            task=task,
            label_mapping=dict(label_mapping),
            models=models,
            fused=tuple(name for name in models if name in set(fused)),
            folds=int(predictions["fold"].max()) + 1 if "fold" in predictions else 0,
            repeats=int(predictions["repeat"].nunique()),
        )

    @property
    def single(self) -> tuple[str, ...]:
        """The models that are not fused (single groups, clinical-only, baselines)."""
        return tuple(name for name in self.models if name not in self.fused)


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
    task: str | Task = "binary",
    skip_failing: bool = False,
    groups: Any = None,
    progress: Progress | None = None,
    fused: Sequence[str] | None = None,
) -> CVResult:
    """Out-of-fold outputs of several models on the same repeated (stratified) folds.

    Rows are sorted by patient id before splitting, so the result does not depend on the
    input row order. The splits are the task's splitter (:meth:`Task.splitter
    <radfusion.pipeline.targets.Task.splitter>`: ``RepeatedStratifiedKFold(n_splits=folds,
    n_repeats=repeats, random_state=seed)`` for classes, ``RepeatedKFold`` for regression);
    every model sees the same splits. Each (model, repeat, fold) fits a fresh ``clone`` of the
    model on the training rows only and predicts the held-out rows; the models of one split
    run together in one worker and share identical fits
    (:func:`radfusion.pipeline.shared_fits`: the CT-only model is stacking's ``CT:lr``
    branch, fitted once), which gives the predictions of independent fits. One row is one
    patient, so the folds are patient-grouped by construction. Models are not re-seeded: set
    their own ``random_state`` for reproducibility.

    Parameters
    ----------
    models : mapping of str to estimator
        Unfitted estimators (classifiers with ``predict_proba`` for a classification task);
        the mapping order is the report order.
    X : DataFrame of shape (n_patients, n_features)
        Features, one row per patient. Passed to the estimators as a DataFrame (row subsets).
    y : array-like of shape (n_patients,)
        The target, aligned with the rows of ``X`` by position, encoded by the task.
    ids : array-like of shape (n_patients,), default=None
        Unique patient ids; ``X.index`` when None.
    folds, repeats : int, default=5, 3
        Number of folds per repeat and of repeats.
    seed : int, default=0
        ``random_state`` of the splitter.
    n_jobs : int, default=1
        joblib workers over the (repeat, fold) splits. The result does not depend on it.
    fold_hook : callable, optional
        Called inside the worker right after each fit as ``fold_hook(estimator, X_test,
        y_test, model=name, repeat=r, fold=f)`` with the fitted estimator and the held-out
        rows (``y_test`` encoded); it returns a small picklable record (or None). Fitted models
        never leave the worker. It must be picklable and deterministic given its arguments
        (seed any randomness from ``model, repeat, fold``) for the result not to depend on
        ``n_jobs``. See :class:`radfusion.pipeline.validation.FoldExplainer`.
    task : str or Task, default="binary"
        The target's task object or name (:func:`radfusion.pipeline.targets.get_task`).
    skip_failing : bool, default=False
        A model whose fit raises ``ValueError`` on some training fold (e.g. too few patients
        of a class for its inner folds) is left out of the result instead of stopping the run;
        ``CVResult.skipped`` maps it to the reason. If every model fails, an
        :class:`~radfusion.features.errors.InputError` lists the reasons.
    groups : array-like of shape (n_patients,), optional
        A group (e.g. site) per patient: the splits are then leave-one-group-out
        (:func:`radfusion.pipeline.splits.leave_one_group_out`), one fold per group in sorted
        order, ``folds`` and ``repeats`` are ignored (one repeat), and
        ``CVResult.held_out_groups`` lists the group held out by each fold.
    progress : callable, optional
        ``progress(done, total)`` over the (repeat, fold) splits as they complete, e.g. a
        :class:`radfusion.pipeline.progress.ProgressBar`. The result does not depend on it.
    fused : sequence of str, optional
        The models that combine groups (``CVResult.fused``); None: those whose
        ``fuses_groups`` is true (a fusion estimator whose strategy is not ``"single"``).

    Returns
    -------
    CVResult
        The out-of-fold predictions (``repeat`` and ``fold`` 0-based; ``y_true`` the encoded
        target), the task, the label mapping, which models ran and which are fused, and the
        hook's records.
    """
    task = get_task(task)
    if not isinstance(models, Mapping) or not models:
        raise ValueError("models must be a non-empty mapping of name to estimator")
    for name, model in models.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"model names must be non-empty strings, got {name!r}")
        task.check_model(name, model)
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame, got {type(X).__name__}")
    for label, value, low in (("folds", folds, 2), ("repeats", repeats, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise ValueError(f"{label} must be an integer >= {low}, got {value!r}")

    n = len(X)
    group_names = None
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
    y01, mapping = task.encode(y)
    if groups is None:  # one fold per group: a held-out group with one class is reported
        task.check_folds(y01, mapping, folds)

    order = _argsort_ids(ids)
    ids, y01, X = ids[order], y01[order], X.iloc[order]

    if groups is not None:
        codes = group_codes[order]
        splits = [(np.flatnonzero(codes != g), np.flatnonzero(codes == g)) for g in range(folds)]
    else:
        splitter = task.splitter(folds, repeats, seed)
        splits = list(splitter.split(np.zeros((n, 1)), task.strata(y01)))
    n_outputs = task.n_outputs(mapping)
    names = list(models)
    per_split = run_tasks(
        (
            delayed(_fit_predict_split)(
                models,
                X,
                y01,
                *splits[split],
                None if fold_hook is None else (fold_hook, *divmod(split, folds)),
                task,
                n_outputs,
                skip_failing,
            )
            for split in range(len(splits))
        ),
        n_jobs=n_jobs,
        progress=progress,
    )
    warn_once(caught for _, caught in per_split)
    fits = [(name, split) for name in names for split in range(len(splits))]
    outputs = [per_split[split][0][m] for m in range(len(names)) for split in range(len(splits))]
    skipped = _skipped(fits, outputs, folds, group_names)
    if skipped:
        if len(skipped) == len(models):
            raise InputError(
                "No model can be fitted on this cohort",
                [Problem(f"{name}: {reason}") for name, reason in skipped.items()],
            )
        kept = [i for i, (name, _) in enumerate(fits) if name not in skipped]
        fits, outputs = [fits[i] for i in kept], [outputs[i] for i in kept]
        models = {name: model for name, model in models.items() if name not in skipped}

    # Assemble per (model, repeat) in patient order: rows come out sorted by construction.
    n_models = len(models)
    model_index = {name: m for m, name in enumerate(models)}
    values = np.full((n_models, repeats, n, n_outputs), np.nan)
    fold_of = np.full((repeats, n), -1, dtype=np.int64)
    for (name, split), (output, _) in zip(fits, outputs, strict=True):
        repeat, fold = divmod(split, folds)
        test = splits[split][1]
        values[model_index[name], repeat, test] = output.reshape(len(test), n_outputs)
        fold_of[repeat, test] = fold
    predictions = pd.DataFrame(
        {
            "patient_id": np.tile(ids, n_models * repeats),
            "model": np.repeat(np.array(list(models), dtype=object), repeats * n),
            "repeat": np.tile(np.repeat(np.arange(repeats, dtype=np.int64), n), n_models),
            "fold": np.tile(fold_of.ravel(), n_models),
            **{
                column: np.tile(target, n_models * repeats)
                for column, target in task.target_frame(y01).items()
            },
            **{
                column: values[..., k].ravel()
                for k, column in enumerate(task.output_columns(n_outputs))
            },
        }
    )
    predictions["patient_id"] = predictions["patient_id"].infer_objects()
    records = None
    if fold_hook is not None:
        records = [
            {
                "model": name,
                "repeat": divmod(split, folds)[0],
                "fold": divmod(split, folds)[1],
                "record": record,
            }
            for (name, split), (_, record) in zip(fits, outputs, strict=True)
        ]
    return CVResult(
        predictions=predictions,
        task=task,
        label_mapping=mapping,
        models=tuple(models),
        fused=fused_models(models) if fused is None else tuple(n for n in models if n in fused),
        folds=folds,
        repeats=repeats,
        skipped=skipped,
        records=records,
        held_out_groups=None if group_names is None else list(group_names),
    )


def _fit_predict_split(
    models: Mapping[str, BaseEstimator],
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    hook: tuple[Callable[..., Any], int, int] | None,
    task: Task,
    n_outputs: int = 1,
    skip_failing: bool = False,
) -> tuple[list[tuple[np.ndarray | None, Any]], list]:
    """Every model of one (repeat, fold) split, in order, sharing identical branch fits
    (:func:`radfusion.pipeline.shared_fits`): the CT-only model, late fusion's and
    stacking's ``CT:lr`` branch are one fit. Returns per model :func:`_fit_predict`'s output,
    and the warnings raised (the caller shows each once, see
    :mod:`radfusion.pipeline.worker_warnings`)."""
    X_train = X.iloc[train]
    with gathering_warnings() as caught, shared_fits():
        outputs = [
            _fit_predict(
                model, X, y, train, test, name, hook, task, n_outputs, skip_failing, X_train=X_train
            )
            for name, model in models.items()
        ]
    return outputs, caught


def _fit_predict(
    model: BaseEstimator,
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    name: str,
    hook: tuple[Callable[..., Any], int, int] | None,
    task: Task,
    n_outputs: int = 1,
    skip_failing: bool = False,
    *,
    X_train: pd.DataFrame | None = None,
) -> tuple[np.ndarray | None, Any]:
    """Fit a clone on the training rows; return the test rows' output (:meth:`Task.fold_output
    <radfusion.pipeline.targets.Task.fold_output>`) and the record of ``hook = (fold_hook,
    repeat, fold)`` (None without a hook). With ``skip_failing``, a ``ValueError`` of the fit
    or of the held-out output gives ``(None, reason)``. ``X_train``: ``X.iloc[train]`` when
    already taken."""
    y_train = y[train]
    try:
        estimator = clone(model).fit(X.iloc[train] if X_train is None else X_train, y_train)
    except ValueError as error:
        if not skip_failing:
            raise
        return None, (
            f"cannot be fitted on the {len(train)} training patients of a fold"
            f"{task.describe_rows(y_train)}: {str(error).strip().splitlines()[0]}"
        )
    try:
        output = task.held_out_output(estimator, X, train, test, n_outputs, name)
    except ValueError as error:
        if not skip_failing:
            raise
        return None, (
            f"fitted, but gives no output for the {len(test)} held-out patients of a fold: "
            f"{str(error).strip().splitlines()[0]}"
        )
    record = None
    if hook is not None:
        fold_hook, repeat, fold = hook
        record = fold_hook(estimator, X.iloc[test], y[test], model=name, repeat=repeat, fold=fold)
    return output, record


def _skipped(
    fits: list[tuple[str, int]],
    outputs: list[tuple[Any, Any]],
    folds: int,
    group_names: Sequence[str] | None = None,
) -> dict[str, str]:
    """Model → the reason of its first failed (repeat, fold), for fits that returned None;
    a leave-one-group-out fold is named by the group it holds out."""
    skipped: dict[str, str] = {}
    for (name, split), (output, reason) in zip(fits, outputs, strict=True):
        if output is None and name not in skipped:
            repeat, fold = divmod(split, folds)
            where = (
                f"repeat {repeat + 1}, fold {fold + 1}"
                if group_names is None
                else f"the fold holding out {group_names[fold]!r}"
            )
            skipped[name] = f"{where}: {reason}"
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
def _output_columns(predictions: pd.DataFrame, task: Task) -> list[str]:
    """The task's output columns present in a predictions frame (a multiclass frame's
    ``proba_0 .. proba_{K-1}`` in code order)."""
    probas = sorted(
        (c for c in predictions.columns if str(c).startswith("proba_")),
        key=lambda c: int(str(c).split("_", 1)[1]),
    )
    columns = task.output_columns(len(probas))
    missing = sorted(
        {"patient_id", "model", "repeat", *task.target_columns, *columns} - set(predictions)
    )
    if missing:
        raise ValueError(f"predictions lack column(s) {missing} of a {task.name} task")
    return columns


def output_cube(
    predictions: pd.DataFrame, task: str | Task = "binary", models: Sequence[str] | None = None
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The long frame as ``values[model, repeat, patient, output]`` and ``y`` per patient.

    Patients are in sorted id order, models in order of first appearance (or ``models``),
    repeats sorted; outputs are the task's columns (``proba``; ``proba_0 .. proba_{K-1}``;
    ``prediction``). Every patient must be predicted exactly once per (model, repeat).

    Returns
    -------
    models : list of str
    repeats : ndarray
    values : ndarray of shape (n_models, n_repeats, n_patients, n_outputs)
    y : ndarray of shape (n_patients,)
        Class codes (int64) of a classification task, the values (float64) of regression.
    """
    task = get_task(task)
    columns = _output_columns(predictions, task)
    if predictions.empty:
        raise ValueError("predictions are empty")
    if models is None:
        models = list(pd.unique(predictions["model"]))
    else:
        models = list(models)
        predictions = predictions[predictions["model"].isin(models)]
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
    values = np.empty((*shape, len(columns)))
    values.reshape(-1, len(columns))[flat] = predictions[columns].to_numpy(dtype=np.float64)
    if not np.isfinite(values).all():
        raise ValueError("predictions contain non-finite values")
    return models, repeats, values, task.patient_target(predictions, i, len(patients))


def _as_cube(predictions: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """A binary frame as ``proba[model, repeat, patient]`` and 0/1 ``y`` per patient."""
    models, repeats, values, y = output_cube(predictions, BinaryTask())
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must be 0/1 and constant per patient")
    return models, repeats, values[..., 0], y


def summarize(
    predictions: pd.DataFrame,
    *,
    task: str | Task = "binary",
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, dict[str, dict[str, float]]]:
    """Metrics of every model with 95 % percentile-bootstrap confidence intervals.

    The point estimate of a metric is its mean over repeats, each repeat's metric computed on
    that repeat's pooled out-of-fold predictions (every patient predicted once). The CI
    resamples patients with replacement (stratified by class for a classification task), with
    the same resampled patients for every model and repeat; each replicate recomputes the
    repeat-averaged metric, and the 2.5th and 97.5th percentiles of the replicates bound the
    interval. Replicates where a metric is undefined are skipped (e.g. a calibration slope
    that does not converge). Binary thresholded metrics use ``proba >= 0.5``; precision and F1
    are 0 when nothing is predicted positive.

    Parameters
    ----------
    predictions : DataFrame
        :attr:`CVResult.predictions` (or ``predictions.csv`` read back).
    task : str or Task, default="binary"
        The task the predictions are of (:attr:`CVResult.task`); it names the metrics.
    n_bootstrap : int, default=1000
        Number of bootstrap replicates; 0 gives NaN CIs.
    seed : int, default=0
        Seed of the bootstrap.

    Returns
    -------
    dict
        ``{model: {metric: {"mean": float, "ci_low": float, "ci_high": float}}}``, models in
        order of appearance, metrics in the task's order.
    """
    if not isinstance(n_bootstrap, (int, np.integer)) or n_bootstrap < 0:
        raise ValueError(f"n_bootstrap must be a non-negative integer, got {n_bootstrap!r}")
    task = get_task(task)
    models, _, values, y = output_cube(predictions, task)
    n_models, n_repeats, n, n_outputs = values.shape
    values = values.reshape(n_models * n_repeats, n, n_outputs)

    point = task.metric_values(np.ones((1, n)), y, values)[0]
    point = point.reshape(n_models, n_repeats, len(task.metrics)).mean(axis=1)

    boot = None
    if n_bootstrap:
        boot = task.metric_values(task.bootstrap_weights(y, n_bootstrap, seed), y, values)
        boot = boot.reshape(n_bootstrap, n_models, n_repeats, len(task.metrics)).mean(axis=2)
    return _with_ci(models, task.metrics, point, boot)


def fold_scores(
    predictions: pd.DataFrame, model: str, task: str | Task = "binary"
) -> tuple[np.ndarray, float]:
    """The task's primary metric of one model on each held-out fold, and the mean ratio of a
    fold's test to training patients.

    One score per (repeat, fold) in sorted order; a fold where the metric is undefined (e.g.
    one class only) scores NaN. The ratio is what a corrected resampled interval
    (:func:`radfusion.pipeline.evaluability.corrected_resampled_interval`) needs.
    """
    task = get_task(task)
    rows = predictions[predictions["model"] == model]
    if rows.empty:
        raise KeyError(f"model {model!r} not in predictions")
    n = rows["patient_id"].nunique()
    column = task.metrics.index(task.primary_metric)
    scores, ratios = [], []
    for _, fold in rows.groupby(["repeat", "fold"], sort=True):
        try:
            _, _, values, y = output_cube(fold, task)
            scores.append(
                float(task.metric_values(np.ones((1, len(y))), y, values[0])[0, 0, column])
            )
        except ValueError:
            scores.append(float("nan"))
        ratios.append(len(fold) / max(n - len(fold), 1))
    return np.asarray(scores), float(np.mean(ratios))


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
    weights = stratified_bootstrap_weights(y, n_bootstrap, seed) if n_bootstrap else None
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


def fused_models(models: Mapping[str, Any]) -> tuple[str, ...]:
    """The names of the models that combine groups (their ``fuses_groups``), in order."""
    return tuple(name for name, model in models.items() if getattr(model, "fuses_groups", False))


def default_comparisons(models: Sequence[str], fused: Sequence[str]) -> list[tuple[str, str]]:
    """Every fused model (of ``fused``, e.g. ``CVResult.fused``) against every single-group
    model."""
    fused = [name for name in models if name in set(fused)]
    single = [name for name in models if name not in fused]
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
