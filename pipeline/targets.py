"""Task objects: what differs between binary, multiclass and continuous targets.

Each kind of target is one :class:`Task` object, resolved once per run
(:func:`resolve_task`): it owns the target's encoding, the cross-validation splitter, the
shape of a fold's output (the probability of class 1; every class's probability; the
predicted value), the metrics with their patient bootstrap, and the name that selects its
report sections. The cross-validation engine (:mod:`radfusion.pipeline.validation`), the
dataset reader, the estimators and the report ask the task object instead of comparing task
names. A new kind of target (e.g. survival) is one more subclass registered in
:data:`TASK_OBJECTS`.

The metric functions are *weighted*: a bootstrap replicate that draws patient ``i`` ``w_i``
times is the weight vector ``w``, so all replicates of all models come out of a few matrix
products.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.model_selection import RepeatedKFold, RepeatedStratifiedKFold

from radfusion.features.errors import InputError, Problem

from .statistics import bootstrap_auc, calibration_fit, group_sums, random_aucs, weighted_auc
from .survival import (
    EVENT_FIELD,
    TIME_FIELD,
    check_survival_y,
    survival_target,
    survival_target_from_table,
)
from .survival_metrics import default_horizons, harrell_c_ci, ibs_times, survival_metrics

__all__ = [
    "BINARY_METRICS",
    "MAX_CLASSES",
    "MULTICLASS_METRICS",
    "PRIMARY_METRIC",
    "REGRESSION_METRICS",
    "TASKS",
    "TASK_OBJECTS",
    "THRESHOLD",
    "BinaryTask",
    "MulticlassTask",
    "RegressionTask",
    "IBS_POINTS",
    "SurvivalTask",
    "Task",
    "binary_metrics",
    "get_task",
    "infer_task",
    "multiclass_metrics",
    "regression_metrics",
    "resolve_task",
    "stratified_bootstrap_weights",
    "survival_output_column",
    "task_metrics",
]

MAX_CLASSES = 10
"""Integer or text targets with at most this many distinct values are classes."""

THRESHOLD = 0.5
"""Binary thresholded metrics call a patient positive when ``proba >= THRESHOLD``."""

BINARY_METRICS = (
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
"""Binary metrics, in report order. Thresholded metrics call a patient positive when
``proba >= THRESHOLD``; ``roc_auc``, ``brier``, ``average_precision`` (area under the
precision-recall curve, step-wise as in scikit-learn) and the calibration slope and intercept
(:func:`radfusion.pipeline.statistics.calibration_fit`) use the probability itself."""

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


def _py(value: Any) -> Any:
    """A numpy scalar as the equivalent Python scalar."""
    return value.item() if isinstance(value, np.generic) else value


def _one_dimensional(y: Any) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be one-dimensional, got shape {y.shape}")
    if pd.isna(y).any():
        raise ValueError("y contains missing values")
    return y


def stratified_bootstrap_weights(y: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
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


class Task:
    """A kind of target: its encoding, splitter, fold output, metrics and bootstrap.

    Subclasses set the class attributes and implement :meth:`encode`, :meth:`check_values`
    and :meth:`metric_values`. Instances hold no state; compare them by :attr:`name`.
    """

    name: ClassVar[str]
    """The task's name in reports, options and model files."""
    metrics: ClassVar[tuple[str, ...]]
    """Metric names, in report order."""
    primary_metric: ClassVar[str]
    """The metric that ranks models (the report's ``best``); higher is better."""
    headline_metrics: ClassVar[tuple[str, ...]]
    """The metrics a console summary of a validation shows (the primary one first)."""
    is_classifier: ClassVar[bool]
    """Models are classifiers called with ``predict_proba`` (else regressors, ``predict``)."""
    stratified: ClassVar[bool]
    """Folds and bootstrap replicates keep the class counts."""
    target_columns: ClassVar[tuple[str, ...]] = ("y_true",)
    """The prediction frame's columns holding the (encoded) target."""
    explains: ClassVar[bool] = False
    """The run explains its models from the held-out folds (stacking weights, importance)."""
    describes_cohort: ClassVar[bool] = False
    """The report's Table 1 compares the two classes
    (:func:`radfusion.pipeline.statistics.describe_cohort`)."""
    combiners: ClassVar[tuple[str, ...]]
    """The stacking combiners the task takes (:mod:`radfusion.pipeline.fusion`)."""
    default_combiner: ClassVar[str]
    """How stacking combines its branches when ``combiner=None``: ``"platt"`` for classes (by
    the third pre-registered rule of ``benchmarks/calibrated_mean.py``; multiclass takes the
    binary verdict), ``"mean"`` for regression (nothing to calibrate, by the rule of
    ``benchmarks/combiners.py``), ``"cox"`` for survival."""
    default_strategy: ClassVar[str] = "pooled"
    """The task's fusion estimator's default strategy, the headline model of a report that
    declares none: ``"pooled"`` (the second pre-registered round of
    ``benchmarks/honest_default.py``; regression and multiclass follow binary), ``"stacking"``
    for survival, which has no pooled form yet."""
    default_strategies: ClassVar[tuple[str, ...]] = ("single", "early", "late", "pooled", "shared")
    """The strategies a ``cv`` compares when none are given: every one but ``stacking``, whose
    per-group stack of four learners cost 60 % of a default ``cv`` on a 500 x 12 table and
    66 % on a 400 x 2,000 one while scoring below ``pooled`` on the 12 radMLBench tables
    (issue 24; ``strategies=[..., "stacking"]`` adds it). Survival compares all six: stacking
    is its headline model."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Task) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def encode(self, y: Any) -> tuple[np.ndarray, dict[Any, int]]:
        """The target as the models see it (class codes or values) and ``{label: code}``."""
        raise NotImplementedError

    def target_config(
        self,
        *,
        label: str | None,
        time: str | None = None,
        event: str | None = None,
        horizons: Any = None,
    ) -> dict[str, Any]:
        """What a report's ``config`` records of the target: its column (``label``)."""
        return {"label": label}

    def for_held_out_groups(
        self, y: Any, groups: Any, *, column: str, horizons: Any = None
    ) -> Task:
        """The task for leave-one-group-out folds over ``groups`` (the values of ``column``);
        itself, unless the task's evaluation depends on the training rows' reach."""
        return self

    def check_values(self, values: pd.Series, label: str, file: str) -> dict[str, int]:
        """Check a target column read from a table (indexed by patient id; no missing value);
        return ``{level as text: code}`` (empty for a continuous target). Raises
        :class:`~radfusion.features.errors.InputError` naming the problem."""
        raise NotImplementedError

    def codes(self, values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
        """A target column read from a table (checked by :meth:`check_values`) as the models
        see it: the class codes of ``mapping`` (by the value's text)."""
        return values.map(lambda v: mapping[str(v)]).to_numpy(dtype=int)

    def n_outputs(self, mapping: dict[Any, int]) -> int:
        """Values one patient's fold output holds."""
        return 1

    def code_mapping(self, n_outputs: int) -> dict[Any, int]:
        """The label mapping of a predictions table read back without one (the codes
        themselves for classes; empty otherwise)."""
        return {}

    def check_model(self, name: str, model: Any) -> None:
        """Raise ``TypeError`` when ``model`` cannot give this task's fold output."""

    def describe_rows(self, y: np.ndarray) -> str:
        """What a message about training rows says of their target (e.g. the class counts
        of a fold too small to fit)."""
        return ""

    def chance_scores(
        self, y: np.ndarray, n_draws: int, seed: int
    ) -> tuple[np.ndarray, dict[str, int], str] | None:
        """The primary metric of ``n_draws`` random scorings of these outcomes (what chance
        alone gives at this cohort's size and balance), the counts that set its spread, and how
        a sentence names them; None when the metric is not a ranking one (or undefined)."""
        return None

    # ------------------------------------------------------------- a saved model on new rows
    def outcome_columns(self, label: str, settings: Mapping[str, Any]) -> tuple[str, ...]:
        """The columns holding a saved model's outcome in a new table (its ``settings``)."""
        return (label,)

    def read_outcome(
        self, table: pd.DataFrame, columns: Sequence[str], classes: Sequence[Any], file: str
    ) -> np.ndarray:
        """The outcome of a new cohort, encoded as the model's training target was (``classes``:
        the model's labels, code ``k`` for ``classes[k]``); a missing or unknown value is an
        :class:`~radfusion.features.errors.InputError` naming each patient."""
        raise NotImplementedError

    def for_cohort(self, y: Any, settings: Mapping[str, Any]) -> Task:
        """The task that scores a new cohort's target ``y`` (this one, unless its evaluation
        settings depend on the cohort)."""
        return self

    def model_outputs(
        self, estimator: Any, X: Any, n_outputs: int, settings: Mapping[str, Any]
    ) -> np.ndarray:
        """A saved model's output on new rows, in :meth:`output_columns` order."""
        return self.fold_output(estimator, X, n_outputs, "model")

    def predict_columns(
        self, estimator: Any, X: Any, classes: Sequence[Any], settings: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """What ``radfusion predict`` writes per patient, by column."""
        raise NotImplementedError

    def model_settings(
        self, y: Any, estimator: Any, X: Any, *, label: str, event: str | None = None
    ) -> dict[str, Any]:
        """What a saved model records of its target beyond the label (none here)."""
        return {}

    def output_description(self, label: str, classes: Sequence[Any]) -> str:
        """What a saved model outputs, in words (its model card's ``output_format``)."""
        return f"The predicted value of {label!r}."

    def group_metrics(self, rows: pd.DataFrame, *, n_bootstrap: int, seed: int) -> dict:
        """The metric of one held-out group of a leave-one-group-out CV (its predictions
        ``rows``): ``events``, the task's metric with a bootstrap CI, and a ``note`` when it
        is not defined."""
        return {
            "events": None,
            "roc_auc": None,
            "note": "per-group metrics are computed for binary targets only",
        }

    def output_columns(self, n_outputs: int) -> list[str]:
        """The prediction frame's output columns."""
        raise NotImplementedError

    def splitter(self, folds: int, repeats: int, seed: int):
        """The repeated K-fold splitter of the cross-validation."""
        kind = RepeatedStratifiedKFold if self.stratified else RepeatedKFold
        return kind(n_splits=folds, n_repeats=repeats, random_state=seed)

    def strata(self, codes: np.ndarray) -> np.ndarray:
        """What a stratified splitter keeps balanced across folds (the class codes)."""
        return codes

    def check_folds(self, codes: np.ndarray, mapping: dict[Any, int], folds: int) -> None:
        """Raise :class:`~radfusion.features.errors.InputError` when ``folds`` folds cannot be
        made from this target."""
        n = len(codes)
        if n < 2 * folds:
            raise InputError(
                f"Cannot make {folds} folds",
                [
                    Problem(
                        f"{n} patients: every fold needs at least 2; use --folds "
                        f"{max(2, n // 2)} or fewer"
                    )
                ],
            )

    def fold_output(self, estimator: Any, X: Any, n_outputs: int, name: str) -> np.ndarray:
        """A fitted model's output on held-out rows, shape (n,) or (n, n_outputs)."""
        raise NotImplementedError

    def held_out_output(
        self, estimator: Any, X: Any, train: np.ndarray, test: np.ndarray, n_outputs: int, name: str
    ) -> np.ndarray:
        """:meth:`fold_output` of the ``test`` rows of ``X`` (a task whose output also needs the
        model's view of its own ``train`` rows overrides this)."""
        return self.fold_output(estimator, X.iloc[test], n_outputs, name)

    def target_frame(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        """The encoded target as prediction-frame columns (:attr:`target_columns`)."""
        return {"y_true": codes}

    def patient_target(self, rows: pd.DataFrame, index: np.ndarray, n: int) -> np.ndarray:
        """The per-patient target of a prediction frame's ``rows`` (``index``: each row's
        patient position among ``n``); a ``ValueError`` when it is not constant per patient."""
        y_rows = rows["y_true"].to_numpy()
        y = np.zeros(n, dtype=np.int64 if self.is_classifier else np.float64)
        y[index] = y_rows
        if (y[index] != y_rows).any():
            raise ValueError(
                f"y_true must be constant per patient (and class codes for {self.name})"
            )
        if self.is_classifier and len(np.unique(y)) < 2:
            raise ValueError("predictions contain a single class; metrics are undefined")
        return y

    def bootstrap_weights(self, y: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
        """Patient multiplicities of ``n_bootstrap`` replicates, shape (n_bootstrap, n)."""
        if self.stratified:
            return stratified_bootstrap_weights(y, n_bootstrap, seed)
        n = len(y)
        rng = np.random.default_rng(seed)
        return rng.multinomial(n, np.full(n, 1.0 / n), size=n_bootstrap).astype(float)

    def metric_values(self, weights: Any, y: Any, outputs: Any) -> np.ndarray:
        """:attr:`metrics` for every weight vector and every output of shape (S, n, n_outputs);
        returns shape (n_weights, S, len(metrics))."""
        raise NotImplementedError


class _ClassificationTask(Task):
    is_classifier = True
    stratified = True

    def code_mapping(self, n_outputs: int) -> dict[Any, int]:
        return {code: code for code in range(max(2, n_outputs))}

    def check_model(self, name: str, model: Any) -> None:
        if not hasattr(model, "predict_proba"):
            raise TypeError(f"model {name!r} ({type(model).__name__}) has no predict_proba")

    def describe_rows(self, y: np.ndarray) -> str:
        return f" (per class: {np.bincount(y.astype(int)).tolist()})"

    def read_outcome(
        self, table: pd.DataFrame, columns: Sequence[str], classes: Sequence[Any], file: str
    ) -> np.ndarray:
        (label,) = columns
        values = table[label]
        known = {str(c): k for k, c in enumerate(classes)}

        def code(value: Any) -> int | None:
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            return known.get(str(value).strip())

        problems = [
            Problem(f"no {label!r} value", patient_id=str(p), file=file)
            for p in values.index[values.isna()]
        ]
        codes = values.map(lambda v: None if pd.isna(v) else code(v))
        problems += [
            Problem(
                f"{label!r} = {values[p]!r} is not one of the model's classes "
                f"({', '.join(map(str, classes))})",
                patient_id=str(p),
                file=file,
            )
            for p in values.index[codes.isna() & values.notna()]
        ]
        if problems:
            raise InputError("Some outcomes cannot be compared with the model's", problems[:50])
        codes = codes.to_numpy().astype(np.int64)
        if len(np.unique(codes)) < 2:
            raise InputError(
                "The external cohort has one outcome class only",
                [Problem(f"every patient has {label!r} = {classes[codes[0]]!r}", file=file)],
            )
        return codes

    def class_probabilities(self, estimator: Any, X: Any, n_classes: int) -> np.ndarray:
        """A saved classifier's probabilities of the class codes ``0 .. n_classes - 1``."""
        order = list(estimator.classes_)
        return estimator.predict_proba(X)[:, [order.index(k) for k in range(n_classes)]]

    combiners = ("mean", "platt", "best", "convex", "shrunk", "logistic")
    default_combiner = "platt"

    def check_folds(self, codes: np.ndarray, mapping: dict[Any, int], folds: int) -> None:
        counts = np.bincount(codes, minlength=len(mapping))
        if counts.min() >= folds:
            return
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

    def _levels(self, values: pd.Series, label: str, file: str, wanted: str, ok) -> dict:
        levels = sorted(values.unique(), key=lambda v: (str(type(v)), v))
        if not ok(len(levels)):
            raise InputError(
                f"Outcome {label!r} must have {wanted} classes for a {self.name} target",
                [Problem(f"found {len(levels)} distinct values: {levels[:10]}", file=file)],
            )
        return {str(level): code for code, level in enumerate(levels)}

    def fold_output(self, estimator: Any, X: Any, n_outputs: int, name: str) -> np.ndarray:
        proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
        classes = np.asarray(getattr(estimator, "classes_", np.arange(max(2, n_outputs))))
        expected = np.arange(max(2, n_outputs))
        if (
            proba.shape != (X.shape[0], len(expected))
            or len(classes) != len(expected)
            or (classes != expected).any()
        ):
            raise ValueError(
                f"model {name!r}: predict_proba must return shape (n, {len(expected)}) with "
                f"classes_ {expected.tolist()}; got shape {proba.shape} and classes_ "
                f"{classes.tolist()}"
            )
        return proba


class BinaryTask(_ClassificationTask):
    """Two classes; the larger label (``1``, ``True``, ``"yes"`` over ``"no"``) is positive.

    A fold's output is the probability of the positive class.
    """

    name = "binary"
    headline_metrics = ("roc_auc", "calibration_slope", "calibration_intercept")
    explains = True
    describes_cohort = True
    metrics = BINARY_METRICS

    def output_description(self, label: str, classes: Sequence[Any]) -> str:
        return f"The probability of {label!r} = {classes[1]!r}, in [0, 1]."

    primary_metric = "roc_auc"

    def encode(self, y: Any) -> tuple[np.ndarray, dict[Any, int]]:
        """Labels with exactly two distinct values → 0/1 and ``{label: code}``, negative first."""
        y = _one_dimensional(y)
        classes = np.unique(y)
        if len(classes) != 2:
            raise ValueError(
                f"y must have exactly two classes for binary classification, got "
                f"{len(classes)}: {classes.tolist()[:10]}"
            )
        return (y == classes[1]).astype(np.int64), {_py(classes[0]): 0, _py(classes[1]): 1}

    def check_values(self, values: pd.Series, label: str, file: str) -> dict[str, int]:
        return self._levels(values, label, file, "exactly 2", lambda k: k == 2)

    def output_columns(self, n_outputs: int) -> list[str]:
        return ["proba"]

    def chance_scores(
        self, y: np.ndarray, n_draws: int, seed: int
    ) -> tuple[np.ndarray, dict[str, int], str]:
        positive = np.asarray(y) == 1
        k, m = int(positive.sum()), int((~positive).sum())
        words = f"{k} positive and {m} negative patients"
        return random_aucs(positive, n_draws, seed), {"positive": k, "negative": m}, words

    def fold_output(self, estimator: Any, X: Any, n_outputs: int, name: str) -> np.ndarray:
        return super().fold_output(estimator, X, n_outputs, name)[:, 1]

    def metric_values(self, weights: Any, y: Any, outputs: Any) -> np.ndarray:
        outputs = np.asarray(outputs, dtype=np.float64)
        return binary_metrics(weights, y, outputs.reshape(outputs.shape[0], -1))

    def group_metrics(self, rows: pd.DataFrame, *, n_bootstrap: int, seed: int) -> dict:
        """Events (class 1) and ROC AUC with a 95 % bootstrap CI (within class); a group
        with one class has no AUC."""
        y = rows["y_true"].to_numpy().astype(np.int64)
        out = {"events": int(y.sum()), "roc_auc": None, "note": None}
        if y.min(initial=1) == y.max(initial=0):
            out["note"] = "AUC not defined: the held-out group has one class only"
        else:
            proba = rows["proba"].to_numpy(dtype=float)
            out["roc_auc"] = bootstrap_auc(y, proba, n_bootstrap=n_bootstrap, seed=seed)
        return out

    def predict_columns(
        self, estimator: Any, X: Any, classes: Sequence[Any], settings: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """``probability`` of the positive class and ``predicted``, positive when
        ``probability >= THRESHOLD`` (as in the cross-validation report)."""
        probability = self.class_probabilities(estimator, X, len(classes))[:, 1]
        predicted = np.asarray(classes)[(probability >= THRESHOLD).astype(int)]
        return {"probability": probability, "predicted": predicted}


class MulticlassTask(_ClassificationTask):
    """Three to :data:`MAX_CLASSES` classes, coded 0 .. K-1 in sorted order; a fold's output is
    every class's probability."""

    name = "multiclass"
    headline_metrics = ("roc_auc_ovr",)
    metrics = MULTICLASS_METRICS
    primary_metric = "roc_auc_ovr"

    def output_description(self, label: str, classes: Sequence[Any]) -> str:
        return f"One probability per class of {label!r}: " + ", ".join(map(repr, classes)) + "."

    def encode(self, y: Any) -> tuple[np.ndarray, dict[Any, int]]:
        """The sorted distinct values (at least three) coded 0 .. K-1."""
        classes, codes = np.unique(_one_dimensional(y), return_inverse=True)
        if len(classes) < 3:
            raise ValueError(f"a multiclass target needs at least 3 classes, got {len(classes)}")
        return codes.astype(np.int64), {_py(c): k for k, c in enumerate(classes)}

    def check_values(self, values: pd.Series, label: str, file: str) -> dict[str, int]:
        return self._levels(
            values, label, file, f"3 to {MAX_CLASSES}", lambda k: 3 <= k <= MAX_CLASSES
        )

    def n_outputs(self, mapping: dict[Any, int]) -> int:
        return len(mapping)

    def output_columns(self, n_outputs: int) -> list[str]:
        return [f"proba_{k}" for k in range(n_outputs)]

    def chance_scores(
        self, y: np.ndarray, n_draws: int, seed: int
    ) -> tuple[np.ndarray, dict[str, int], str]:
        """The smallest class against the others: its one-vs-rest AUC is the least precise of
        the macro average's (so this is a conservative view of the macro AUC)."""
        codes = np.asarray(y, dtype=np.int64)
        counts = np.bincount(codes)
        smallest = int(np.flatnonzero(counts == counts[counts > 0].min())[0])
        k, m = int(counts[smallest]), len(codes) - int(counts[smallest])
        words = f"{k} patients in the smallest class and {m} in the others"
        draws = random_aucs(codes == smallest, n_draws, seed)
        return draws, {"smallest_class": k, "others": m}, words

    def metric_values(self, weights: Any, y: Any, outputs: Any) -> np.ndarray:
        return multiclass_metrics(weights, np.asarray(y).astype(np.int64), outputs)

    def predict_columns(
        self, estimator: Any, X: Any, classes: Sequence[Any], settings: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """``probability_<class>`` per class and ``predicted``, the most probable class."""
        proba = self.class_probabilities(estimator, X, len(classes))
        return {
            **{f"probability_{c}": proba[:, k] for k, c in enumerate(classes)},
            "predicted": np.asarray(classes)[proba.argmax(axis=1)],
        }


class RegressionTask(Task):
    """A continuous target; a fold's output is the predicted value."""

    name = "regression"
    headline_metrics = ("r2",)
    combiners = ("mean", "best", "convex", "shrunk", "logistic")
    default_combiner = "mean"
    metrics = REGRESSION_METRICS
    primary_metric = "r2"
    is_classifier = False
    stratified = False

    def encode(self, y: Any) -> tuple[np.ndarray, dict[Any, int]]:
        """The values as floats (finite), mapping ``{}``."""
        y = _one_dimensional(y)
        values = pd.to_numeric(pd.Series(y), errors="coerce").to_numpy(dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("a regression target must be numeric and finite")
        return values, {}

    def check_values(self, values: pd.Series, label: str, file: str) -> dict[str, int]:
        numeric = pd.to_numeric(values, errors="coerce")
        bad = values.index[numeric.isna() | ~np.isfinite(numeric.astype(float))]
        if len(bad):
            raise InputError(
                f"Outcome {label!r} must be numeric for regression",
                [
                    Problem(f"value {values[p]!r} is not a number", patient_id=str(p), file=file)
                    for p in bad[:20]
                ],
            )
        return {}

    def output_columns(self, n_outputs: int) -> list[str]:
        return ["prediction"]

    def fold_output(self, estimator: Any, X: Any, n_outputs: int, name: str) -> np.ndarray:
        output = np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1)
        if output.shape != (X.shape[0],):
            raise ValueError(f"model {name!r}: predict must return shape (n,), got {output.shape}")
        return output

    def metric_values(self, weights: Any, y: Any, outputs: Any) -> np.ndarray:
        outputs = np.asarray(outputs, dtype=np.float64)
        return regression_metrics(weights, y, outputs.reshape(outputs.shape[0], -1))

    def codes(self, values: pd.Series, mapping: dict[str, int]) -> np.ndarray:
        """The values as floats."""
        return pd.to_numeric(values).to_numpy(dtype=np.float64)

    def read_outcome(
        self, table: pd.DataFrame, columns: Sequence[str], classes: Sequence[Any], file: str
    ) -> np.ndarray:
        (label,) = columns
        values = table[label]
        numbers = pd.to_numeric(values, errors="coerce")
        problems = [
            Problem(
                f"no {label!r} value"
                if pd.isna(values[p])
                else f"{label!r} = {values[p]!r} is not a number",
                patient_id=str(p),
                file=file,
            )
            for p in values.index[numbers.isna() | ~np.isfinite(numbers.fillna(0))]
        ]
        if problems:
            raise InputError("Some outcomes cannot be compared with the model's", problems[:50])
        return numbers.to_numpy(dtype=np.float64)

    def predict_columns(
        self, estimator: Any, X: Any, classes: Sequence[Any], settings: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """``predicted``, the predicted value."""
        return {"predicted": np.asarray(estimator.predict(X), dtype=float)}


IBS_POINTS = 20
"""Times of a survival task's integrated-Brier-score grid (from the 10th to the 90th
percentile of the follow-up times, :func:`radfusion.pipeline.survival_metrics.ibs_times`)."""


def survival_output_column(time: float) -> str:
    """The prediction frame's column of ``S(time | x)``, e.g. ``survival_at_24``."""
    return f"survival_at_{time:g}"


class SurvivalTask(Task):
    """A time-to-event target: ``(event, time)`` records (scikit-survival's structured array).

    A fold's output is the risk score (higher: earlier event), the median risk the fitted
    model gives its own *training* rows (the cut-off of the report's risk groups, so it is
    chosen on the training folds only), and the survival probability at every evaluation
    time. The evaluation times are settings of the instance: the ``horizons`` of the
    time-dependent AUC (default: the 25/50/75 % quantiles of the observed event times) and the
    integrated-Brier-score ``grid`` (:data:`IBS_POINTS` times from the 10th to the 90th
    percentile of the follow-up). :meth:`for_target` resolves them once from the whole table's
    times and events; they read no model output, so no fold learns from them. Folds and
    bootstrap replicates are stratified by the event indicator. Metrics: Harrell's C (primary),
    Uno's C, the AUC at each horizon and their mean, and the integrated Brier score
    (:func:`radfusion.pipeline.survival_metrics.survival_metrics`, scikit-survival's).
    """

    name = "survival"
    headline_metrics = ("harrell_c",)
    combiners = ("mean", "cox")
    default_combiner = "cox"
    default_strategy = "stacking"
    default_strategies = ("single", "early", "late", "stacking", "pooled", "shared")
    primary_metric = "harrell_c"
    is_classifier = False
    stratified = True
    target_columns = ("event", "time")

    def __init__(self, horizons: Any = None, grid: Any = None) -> None:
        self.horizons = None if horizons is None else tuple(float(h) for h in horizons)
        self.grid = None if grid is None else tuple(float(t) for t in grid)
        #: The end of the follow-up every evaluation time lies before, when narrower than
        #: the cohort's (:meth:`for_held_out_groups`); else None.
        self.before: float | None = None

    def __repr__(self) -> str:
        return f"SurvivalTask(horizons={self.horizons})"

    @classmethod
    def for_target(
        cls,
        y: Any,
        horizons: Any = None,
        n_grid: int = IBS_POINTS,
        *,
        before: float | None = None,
    ) -> SurvivalTask:
        """The task with its evaluation times resolved from the whole target ``y`` (no model
        output is read), every one of them before ``before`` (default: the longest
        follow-up); ``horizons`` given are checked to lie inside (0, ``before``). When that
        bound moved a default time (``before`` given, or times tied at the last follow-up),
        :attr:`before` records it."""
        y = check_survival_y(y)
        last = float(y[TIME_FIELD].max()) if before is None else float(before)
        moved = False
        if horizons is None:
            horizons = default_horizons(y, before=last)
            moved = not np.array_equal(horizons, default_horizons(y, before=np.inf))
        horizons = np.asarray(horizons, dtype=np.float64).ravel()
        bad = [h for h in horizons if not 0 < h < last]
        if bad or not len(horizons):
            raise InputError(
                "Bad survival horizons",
                [Problem(f"horizon {h:g} is not inside the follow-up (0, {last:g})") for h in bad]
                or [Problem("no horizon given")],
            )
        grid = ibs_times(y, n_grid, before=last)
        moved |= not np.array_equal(grid, ibs_times(y, n_grid, before=np.inf))
        task = cls(np.unique(horizons), grid)
        task.before = last if before is not None or moved else None
        return task

    def for_held_out_groups(
        self, y: Any, groups: Any, *, column: str, horizons: Any = None
    ) -> SurvivalTask:
        """The task whose evaluation times lie before the longest follow-up of the training
        rows of every leave-one-group-out fold: a model cannot say anything of the survival
        after its training follow-up, so when one group holds the longest follow-ups the
        default horizons and grid are taken before the shortest such follow-up (recorded in
        the report's ``config["evaluated_before"]``) and ``horizons`` given beyond it are an
        error naming the group. Itself when no group holds the cohort's last follow-up alone.
        """
        y = check_survival_y(y)
        groups = np.asarray(groups).astype(str)
        reach = {str(g): float(y[TIME_FIELD][groups != g].max()) for g in np.unique(groups)}
        group, limit = min(reach.items(), key=lambda item: item[1])
        if limit >= float(y[TIME_FIELD].max()):
            return self
        given = None if horizons is None else np.asarray(horizons, dtype=np.float64).ravel()
        if given is not None and (given >= limit).any():
            raise InputError(
                "Bad survival horizons",
                [
                    Problem(
                        f"horizon {h:g} lies beyond what the models can predict when "
                        f"{column} {group!r} is held out: the longest follow-up of the other "
                        f"groups is {limit:g}; give horizons below it"
                    )
                    for h in given[given >= limit]
                ],
            )
        return SurvivalTask.for_target(y, given, len(self._times()[1]), before=limit)

    def _times(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        if self.horizons is None or self.grid is None:
            raise ValueError(
                "a survival task needs its evaluation times: SurvivalTask.for_target(y)"
            )
        return self.horizons, self.grid

    @property
    def times(self) -> tuple[float, ...]:
        """Every evaluation time (horizons and grid), sorted."""
        horizons, grid = self._times()
        return tuple(sorted(set(horizons) | set(grid)))

    @property
    def metrics(self) -> tuple[str, ...]:  # type: ignore[override]
        horizons, _ = self._times()
        return ("harrell_c", "uno_c", *(f"auc@{h:g}" for h in horizons), "mean_auc", "ibs")

    def target_config(
        self,
        *,
        label: str | None,
        time: str | None = None,
        event: str | None = None,
        horizons: Any = None,
    ) -> dict[str, Any]:
        """The time and event columns, the evaluation horizons and whether they were given."""
        return {
            "label": None,
            "time": time,
            "event": event,
            "horizons": list(self.horizons),
            "horizons_given": horizons is not None,
            **({} if self.before is None else {"evaluated_before": self.before}),
        }

    def encode(self, y: Any) -> tuple[np.ndarray, dict[Any, int]]:
        """The checked ``(event, time)`` records and ``{}``."""
        return check_survival_y(y), {}

    def check_values(self, values: pd.Series, label: str, file: str) -> dict[str, int]:
        raise InputError(
            "A survival target is two columns",
            [Problem("give the time and event columns (--time, --event)", file=file)],
        )

    def n_outputs(self, mapping: dict[Any, int]) -> int:
        return 2 + len(self.times)

    def output_columns(self, n_outputs: int) -> list[str]:
        return ["risk", "train_median_risk", *map(survival_output_column, self.times)]

    def chance_scores(
        self, y: np.ndarray, n_draws: int, seed: int
    ) -> tuple[np.ndarray, dict[str, int], str] | None:
        """Harrell's C of random risk scores on these times and events (its spread depends on
        the events, the censoring and the ties, so it is drawn rather than approximated from
        counts): over the pairs whose earlier time is an event, the share the random scores
        order correctly; fewer draws on very large cohorts. None without such a pair."""
        event = np.asarray(y[EVENT_FIELD], dtype=bool)
        time = np.asarray(y[TIME_FIELD], dtype=np.float64)
        first, second = np.nonzero(event[:, None] & (time[:, None] < time[None, :]))
        if not len(first):
            return None
        rng = np.random.default_rng(seed)
        n_draws = min(n_draws, max(200, int(2e7 // len(first))))
        draws = np.empty(n_draws)
        for k in range(n_draws):
            risk = rng.random(len(time))
            draws[k] = np.mean(risk[first] > risk[second])
        events = int(event.sum())
        words = f"{events} event{'s' if events != 1 else ''} among {len(event)} patients"
        return draws, {"events": events, "censored": len(event) - events}, words

    def strata(self, codes: np.ndarray) -> np.ndarray:
        return codes[EVENT_FIELD].astype(np.int64)

    def check_folds(self, codes: np.ndarray, mapping: dict[Any, int], folds: int) -> None:
        events = int(codes[EVENT_FIELD].sum())
        censored = len(codes) - events
        if min(events, censored) >= folds:
            return
        raise InputError(
            f"Cannot make {folds} folds stratified by event",
            [
                Problem(
                    f"{events} patient(s) with an event and {censored} censored: each fold "
                    "needs both; "
                    + (
                        f"use --folds {min(events, censored)} or fewer"
                        if min(events, censored) >= 2
                        else "cross-validation needs at least 2 of each"
                    )
                )
            ],
        )

    def fold_output(self, estimator: Any, X: Any, n_outputs: int, name: str) -> np.ndarray:
        raise NotImplementedError("a survival fold output needs the training rows too")

    def held_out_output(
        self, estimator: Any, X: Any, train: np.ndarray, test: np.ndarray, n_outputs: int, name: str
    ) -> np.ndarray:
        cut = float(np.median(np.asarray(estimator.predict(X.iloc[train]), dtype=np.float64)))
        return self._outputs(estimator, X.iloc[test], cut, name)

    def _outputs(self, estimator: Any, rows: Any, cut: float, name: str) -> np.ndarray:
        """Risk, the training median risk ``cut`` and the survival at every evaluation time."""
        risk = np.asarray(estimator.predict(rows), dtype=np.float64).reshape(-1)
        times = np.asarray(self.times)
        try:
            if hasattr(estimator, "predict_survival"):
                surv = np.asarray(estimator.predict_survival(rows, times), dtype=np.float64)
            else:
                surv = np.vstack([fn(times) for fn in estimator.predict_survival_function(rows)])
        except ValueError as error:
            raise ValueError(
                f"model {name!r}: no survival probability at the evaluation times "
                f"{times.min():g}..{times.max():g}: {error}"
            ) from error
        return np.column_stack([risk, np.full(len(risk), cut), surv])

    def outcome_columns(self, label: str, settings: Mapping[str, Any]) -> tuple[str, ...]:
        """The time and event columns the model was trained on."""
        return (settings.get("time", label), settings["event"])

    def read_outcome(
        self, table: pd.DataFrame, columns: Sequence[str], classes: Sequence[Any], file: str
    ) -> np.ndarray:
        time, event = columns
        return survival_target_from_table(table, time, event, file=file)

    def for_cohort(self, y: Any, settings: Mapping[str, Any]) -> SurvivalTask:
        """The model's training horizons that lie inside this cohort's follow-up, and the
        cohort's own integrated-Brier-score grid; an error when none of the horizons does."""
        y = check_survival_y(y)
        last = float(y[TIME_FIELD].max())
        horizons = [h for h in settings.get("horizons") or () if 0 < h < last]
        if not horizons:
            raise InputError(
                "The cohort's follow-up is shorter than every horizon of the model",
                [
                    Problem(
                        f"horizons {list(settings.get('horizons') or ())} of training; the "
                        f"longest follow-up here is {last:g}"
                    )
                ],
            )
        return SurvivalTask.for_target(y, horizons)

    def model_settings(
        self, y: Any, estimator: Any, X: Any, *, label: str, event: str | None = None
    ) -> dict[str, Any]:
        """The time and event columns, the horizons, the number of events and the training
        cohort's median risk (the cut-off of the risk groups on a new cohort)."""
        return {
            "time": label,
            "event": event,
            "horizons": list(self.horizons),
            "events": int(y[EVENT_FIELD].sum()),
            "train_median_risk": float(np.median(np.asarray(estimator.predict(X), dtype=float))),
        }

    def output_description(self, label: str, classes: Sequence[Any]) -> str:
        return (
            "A risk score (higher: an earlier event) and the survival probability at each horizon."
        )

    def model_outputs(
        self, estimator: Any, X: Any, n_outputs: int, settings: Mapping[str, Any]
    ) -> np.ndarray:
        """Risk, the training cohort's median risk (stored in the model) and the survival at
        every evaluation time of this cohort."""
        return self._outputs(estimator, X, float(settings["train_median_risk"]), "model")

    def predict_columns(
        self, estimator: Any, X: Any, classes: Sequence[Any], settings: Mapping[str, Any]
    ) -> dict[str, np.ndarray]:
        """``risk`` (higher: earlier event) and ``survival_at_<h>`` at each training horizon."""
        horizons = settings["horizons"]
        surv = estimator.predict_survival(X, horizons)
        return {
            "risk": np.asarray(estimator.predict(X), dtype=float),
            **{survival_output_column(h): surv[:, k] for k, h in enumerate(horizons)},
        }

    def target_frame(self, codes: np.ndarray) -> dict[str, np.ndarray]:
        return {
            "event": codes[EVENT_FIELD].astype(np.int64),
            "time": codes[TIME_FIELD].astype(np.float64),
        }

    def patient_target(self, rows: pd.DataFrame, index: np.ndarray, n: int) -> np.ndarray:
        event = np.zeros(n, dtype=np.int64)
        time = np.zeros(n)
        event[index] = rows["event"].to_numpy()
        time[index] = rows["time"].to_numpy(dtype=np.float64)
        if (event[index] != rows["event"].to_numpy()).any() or (
            time[index] != rows["time"].to_numpy(dtype=np.float64)
        ).any():
            raise ValueError("event and time must be constant per patient")
        return check_survival_y(
            np.rec.fromarrays([event.astype(bool), time], names=[EVENT_FIELD, TIME_FIELD])
        )

    def group_metrics(self, rows: pd.DataFrame, *, n_bootstrap: int, seed: int) -> dict:
        """Events and Harrell's C with a 95 % bootstrap CI (within the patients with an event
        and within the censored); not defined without an event or a comparable pair."""
        event = rows[EVENT_FIELD].to_numpy().astype(bool)
        out = {"events": int(event.sum()), "harrell_c": None, "note": None}
        if not event.any():
            out["note"] = "C-index not defined: no event in the held-out group"
            return out
        y = survival_target(rows[TIME_FIELD].to_numpy(), event, rows["patient_id"])
        risk = rows["risk"].to_numpy(dtype=float)
        out["harrell_c"] = harrell_c_ci(y, risk, n_boot=n_bootstrap, seed=seed)
        if out["harrell_c"] is None:
            out["note"] = "C-index not defined: no comparable pair of patients"
        return out

    def bootstrap_weights(self, y: np.ndarray, n_bootstrap: int, seed: int) -> np.ndarray:
        return stratified_bootstrap_weights(y[EVENT_FIELD].astype(np.int64), n_bootstrap, seed)

    def metric_values(self, weights: Any, y: Any, outputs: Any) -> np.ndarray:
        """Each weight vector's patients (multiplicities expanded to rows) scored with
        :func:`~radfusion.pipeline.survival_metrics.survival_metrics`; NaN where undefined."""
        horizons, grid = self._times()
        y = check_survival_y(y)
        weights = np.asarray(weights)
        outputs = np.asarray(outputs, dtype=np.float64)
        columns = self.output_columns(outputs.shape[-1])
        on_grid = [columns.index(survival_output_column(t)) for t in grid]
        names = self.metrics
        out = np.full((len(weights), len(outputs), len(names)), np.nan)
        for b, w in enumerate(weights):
            rows = np.repeat(np.arange(len(y)), np.asarray(w, dtype=np.int64))
            for s, output in enumerate(outputs):
                values = survival_metrics(
                    y[rows], output[rows, 0], output[rows][:, on_grid], grid, horizons
                )
                out[b, s] = [values.get(name, np.nan) for name in names]
        return out


TASK_OBJECTS: dict[str, Task] = {
    task.name: task for task in (BinaryTask(), MulticlassTask(), RegressionTask(), SurvivalTask())
}
"""Every task object by name, in the order the CLI lists them."""

TASKS = tuple(TASK_OBJECTS)
"""Target kinds: two classes, three or more classes, a continuous value."""

PRIMARY_METRIC = {name: task.primary_metric for name, task in TASK_OBJECTS.items()}
"""The metric that ranks models (the report's ``best``), by task name."""


def get_task(task: str | Task) -> Task:
    """The task object of a name (or the task object itself)."""
    if isinstance(task, Task):
        return task
    try:
        return TASK_OBJECTS[task]
    except (KeyError, TypeError):
        raise ValueError(f"task must be one of {TASKS}, got {task!r}") from None


def resolve_task(task: str | Task, values: Any) -> Task:
    """The task object of a target: ``task`` itself, or for ``"auto"`` the guess of
    :func:`infer_task` from ``values``. This is the one place a run decides its task."""
    if isinstance(task, str) and task == "auto":
        return TASK_OBJECTS[infer_task(values)]
    if not isinstance(task, Task) and task not in TASK_OBJECTS:
        raise InputError("Unknown task", [Problem(f"{task!r} is not 'auto' or one of {TASKS}")])
    return get_task(task)


def task_metrics(task: str | Task) -> tuple[str, ...]:
    """The metric names of a task, in report order."""
    return get_task(task).metrics


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


def binary_metrics(weights: Any, y: Any, proba: Any) -> np.ndarray:
    """:data:`BINARY_METRICS` for every weight vector and every score vector, vectorised.

    Each metric is a ratio of weighted counts, so all bootstrap replicates come out of a few
    matrix products; weight 1 everywhere is the plain metric.

    Parameters
    ----------
    weights : array-like of shape (n_weights, n_patients)
    y : array-like of shape (n_patients,), 0/1
    proba : array-like of shape (n_scores, n_patients)

    Returns
    -------
    ndarray of shape (n_weights, n_scores, len(BINARY_METRICS))
        NaN where a metric is undefined (a replicate without one of the classes).
    """
    weights = np.asarray(weights, dtype=np.float64)
    y = np.asarray(y)
    proba = np.asarray(proba, dtype=np.float64)
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
    out = np.stack([values[name] for name in BINARY_METRICS], axis=-1)
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
