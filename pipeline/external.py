"""External validation of a saved model on a new cohort (``radfusion validate``).

The saved model (:func:`radfusion.pipeline.persistence.load_model`) predicts every patient of
the external tables; nothing is refitted. The report gives, with 95 % patient-bootstrap CIs
(stratified by class, as the cv report):

- discrimination and classification metrics (:data:`radfusion.pipeline.validation.METRICS`);
- calibration in the large (intercept with the logit as offset) and the calibration slope,
  the binned calibration curve and the logistic recalibration curve
  ``P(y=1) = expit(a + b * logit(p))``;
- a decision curve (net benefit over thresholds 0.01 to 0.99);
- Table 1 of the external cohort next to the training cohort's (stored in the model);
- a case-mix comparison: a membership model (is this patient external?) cross-validated on
  both cohorts; its AUC says how different they are (0.5: indistinguishable). It needs the
  training tables (``training_features``); without them the section says it was not
  computed, and why.

Multiclass and regression models get what applies to them: their metrics with the same
patient bootstrap (stratified by class for multiclass, plain for regression) and the case
mix; calibration, decision curve and Table 1 (which is by binary outcome) are binary only,
and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit, logit
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.features.errors import InputError, Problem
from radfusion.features.files import file_digest
from radfusion.features.naming import SITE_COLUMN

from .cohorts import clinical_columns, model_cohort
from .persistence import (
    TrainedModel,
    append_external,
    load_model,
    model_inputs,
    model_matrix,
)
from .preprocessing import CategoricalEncoder
from .report import (
    build_external_report,
    cohort_evaluability,
    survival_cohort,
    survival_curves,
    write_external_report,
)
from .statistics import PROBA_EPS, bootstrap_auc
from .targets import Task
from .validation import (
    DCA_THRESHOLDS,
    calibration_curves,
    decision_curves,
    output_cube,
    roc_curves,
    summarize,
)

__all__ = ["CASE_MIX_FOLDS", "case_mix", "external_predictions", "validate_model"]

CASE_MIX_FOLDS = 5
"""Folds of the membership model's cross-validation."""
RECALIBRATION_GRID = np.round(np.linspace(0.01, 0.99, 99), 2)
"""Predicted probabilities at which the recalibration curve is drawn."""


def validate_model(
    model: str | Path | TrainedModel,
    features: str | Path,
    *,
    label: str | None = None,
    out: str | Path,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
    training_features: str | Path | None = None,
    training_biomarkers: str | Path | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
    command: str | None = None,
) -> dict[str, Any]:
    """Validate a saved model on an external cohort; write the report to ``out``.

    Parameters
    ----------
    model : path or TrainedModel
        A ``.skops`` file from ``radfusion train`` (or the loaded model).
    features, biomarkers, id_column, biomarkers_id
        The external cohort's tables, as for ``predict``.
    label : str, optional
        The outcome column (default: the model's).
    out : path
        Report folder: ``report.json``, ``report.html``, ``predictions.csv`` and ``figures/``,
        written as one set (:func:`radfusion.pipeline.report.write_external_report`). A model
        given as a file gets this validation added to its model card beside it
        (:func:`radfusion.pipeline.persistence.append_external`).
    training_features, training_biomarkers : path, optional
        The training cohort's tables, for the case-mix membership model only.
    n_bootstrap, seed : int
        Bootstrap replicates of every CI, and the seed of the bootstrap and of the membership
        model's folds: the same inputs and seed give the same ``report.json`` bytes.
    command : str, optional
        The command line, recorded in the report.

    Returns
    -------
    dict
        The report (content of ``report.json``).

    Raises
    ------
    InputError
        A label value the model does not know or a missing one (each patient named), an
        external cohort with one class, or any ``predict`` error.
    """
    model_path = None if isinstance(model, TrainedModel) else Path(model)
    trained = load_model(model_path) if model_path is not None else model
    label = label or trained.label
    predictions, table, task = external_predictions(
        trained,
        features,
        label=label,
        biomarkers=biomarkers,
        id_column=id_column,
        biomarkers_id=biomarkers_id,
    )
    name = trained.settings.get("strategy", "model")
    metrics = summarize(predictions, task=task, n_bootstrap=n_bootstrap, seed=seed)[name]
    curves, data, cohorts = _SECTIONS[task.name](
        trained, predictions, task, table, n_bootstrap, seed
    )
    data = {"label": label, **data}
    data["task"] = task.name
    harmonisation = _harmonisation(trained, table, str(features))
    if harmonisation is not None:
        data["harmonisation"] = harmonisation
    if training_features is None:
        mix: dict[str, Any] = {
            "computed": False,
            "reason": "the training tables were not given (--training-features, "
            "--training-biomarkers): the membership model needs both cohorts' rows, and a "
            "saved model holds no patient rows",
        }
    else:
        mix = case_mix(
            trained,
            training_features,
            features,
            training_biomarkers=training_biomarkers,
            biomarkers=biomarkers,
            id_column=id_column,
            biomarkers_id=biomarkers_id,
            n_bootstrap=n_bootstrap,
            seed=seed,
        )
    inputs = {"features": features}
    if biomarkers is not None:
        inputs["biomarkers"] = biomarkers
    if training_features is not None:
        inputs["training_features"] = training_features
    if training_biomarkers is not None:
        inputs["training_biomarkers"] = training_biomarkers
    report = build_external_report(
        model={
            "path": str(model_path) if model_path is not None else None,
            "sha256": file_digest(model_path) if model_path is not None else None,
            "name": name,
            "label": trained.label,
            "classes": [str(c) for c in trained.classes],
            "params": trained.settings.get("params"),
            "training": {k: trained.training.get(k) for k in ("n_patients", "class_counts")},
            "versions": trained.versions,
        },
        metrics=metrics,
        curves=curves,
        data=data,
        cohorts=cohorts,
        case_mix=mix,
        inputs=inputs,
        config={"n_bootstrap": n_bootstrap, "command": command, "case_mix_folds": CASE_MIX_FOLDS},
        seed=seed,
        evaluability=cohort_evaluability(task, output_cube(predictions, task)[3]),
    )
    write_external_report(report, predictions, out)
    if model_path is not None:
        append_external(model_path, trained, report, source=str(features))
    return report


def _binary_sections(
    trained: TrainedModel,
    predictions: pd.DataFrame,
    task: Task,
    table: pd.DataFrame,
    n_bootstrap: int,
    seed: int,
) -> tuple[dict, dict, dict]:
    """Curves (ROC, calibration, recalibration, decision), counts and both Table 1s."""
    name = trained.settings.get("strategy", "model")
    y = predictions["y_true"].to_numpy()
    proba = predictions["proba"].to_numpy()
    net, treat_all = decision_curves(predictions)
    a, b = _recalibration(y, proba)
    curves = {
        "roc": roc_curves(predictions, n_bootstrap=n_bootstrap, seed=seed)[name],
        "calibration": calibration_curves(predictions)[name],
        "recalibration": {
            "intercept": a,
            "slope": b,
            "grid": RECALIBRATION_GRID,
            "proba": expit(a + b * logit(RECALIBRATION_GRID)) if np.isfinite(b) else None,
        },
        "decision": {"thresholds": DCA_THRESHOLDS, "model": net[name], "treat_all": treat_all},
    }
    data = {
        "n_patients": len(y),
        "n_positive": int(y.sum()),
        "n_negative": int(len(y) - y.sum()),
    }
    site = table[SITE_COLUMN].astype(str) if SITE_COLUMN in table.columns else None
    external = model_cohort(
        table,
        y,
        trained.classes,
        columns=clinical_columns(trained.columns, trained.groups, trained.site_column),
        groups=trained.groups,
        site=site,
    )
    return curves, data, {"training": trained.training.get("cohort"), "external": external}


def _class_sections(trained, predictions, task, table, n_bootstrap, seed):
    """Multiclass: the patients per class (no curves, no Table 1 by outcome)."""
    y = predictions["y_true"].to_numpy()
    counts = {str(c): int(np.sum(y == k)) for k, c in enumerate(trained.classes)}
    data = {"n_patients": len(y), "class_counts": counts}
    return None, data, {"training": None, "external": None}


def _value_sections(trained, predictions, task, table, n_bootstrap, seed):
    """Regression: the patients and the mean outcome."""
    y = predictions["y_true"].to_numpy()
    return (
        None,
        {"n_patients": len(y), "outcome_mean": float(np.mean(y))},
        {"training": None, "external": None},
    )


def _survival_sections(trained, predictions, task, table, n_bootstrap, seed):
    """Survival: events and follow-up, the risk groups split at the training cohort's median
    risk (Kaplan–Meier, log-rank), the time-dependent AUC and the calibration at the middle
    horizon."""
    name = trained.settings.get("strategy", "model")
    _, _, values, y = output_cube(predictions, task, [name])
    data = {**survival_cohort(y), "horizons": list(task.horizons), "times": list(task.grid)}
    return survival_curves(y, values[0], task), data, {"training": None, "external": None}


#: The sections of each task's external-validation report (the one place they are chosen).
_SECTIONS = {
    "binary": _binary_sections,
    "multiclass": _class_sections,
    "regression": _value_sections,
    "survival": _survival_sections,
}


def external_predictions(
    trained: TrainedModel,
    features: str | Path,
    *,
    label: str,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, Task]:
    """The model's output for every external patient, with the observed outcome.

    Returns the predictions frame of :func:`radfusion.pipeline.validation.summarize` (one
    model, ``repeat`` and ``fold`` 0, sorted by patient id), the joined input table (same
    patients, same order) and the task that scores them (a survival model's: the training
    horizons inside this cohort's follow-up).
    """
    table, sources = model_inputs(
        trained, features, biomarkers=biomarkers, id_column=id_column, biomarkers_id=biomarkers_id
    )
    file = str(features)
    task = trained.task
    columns = task.outcome_columns(label, trained.settings)
    absent = [c for c in columns if c not in table.columns]
    if absent:
        raise InputError(
            "Outcome column not found",
            [
                Problem(f"no column {c!r} in the feature or biomarker table", file=file)
                for c in absent
            ],
        )
    where = " and ".join(dict.fromkeys(sources.get(c, file) for c in columns))
    _harmonisation(trained, table, file)  # an unseen site the model refuses: a clear error
    y = task.read_outcome(table, columns, trained.classes, where)
    X = model_matrix(
        trained, features, biomarkers=biomarkers, id_column=id_column, biomarkers_id=biomarkers_id
    )
    task = task.for_cohort(y, trained.settings)
    n_outputs = task.n_outputs(trained.label_mapping)
    outputs = task.model_outputs(trained.estimator, X, n_outputs, trained.settings)
    ids = X.index.astype(str).to_numpy()
    order = np.argsort(ids, kind="stable")
    frame = pd.DataFrame(
        {
            "patient_id": ids[order].astype(object),
            "model": trained.settings.get("strategy", "model"),
            "repeat": 0,
            "fold": 0,
            **task.target_frame(y[order]),
        }
    )
    frame[task.output_columns(n_outputs)] = np.asarray(outputs, dtype=float).reshape(
        len(frame), -1
    )[order]
    return frame, table.iloc[order], task


def _harmonisation(trained: TrainedModel, table: pd.DataFrame, file: str) -> dict | None:
    """Which external sites the model's ComBat saw in training, and the policy for the others
    (None when the model does not harmonise). The training sites come from the Table 1 the
    model stores (None for a model saved before it).

    Raises
    ------
    InputError
        External sites unseen in training and a model trained with ``harmonize_unseen="error"``.
    """
    site = trained.site_column
    if site is None:
        return None
    policy = trained.settings.get("params", {}).get("harmonize_unseen")
    external = sorted(set(table[site].dropna().astype(str))) if site in table.columns else []
    training = trained.training_sites
    unseen = None if training is None else [s for s in external if s not in training]
    if unseen and policy == "error":
        raise InputError(
            "The model cannot harmonise the external sites",
            [
                Problem(
                    f"site {s!r} was not in training (training sites: {', '.join(training)}) "
                    "and the model was trained with harmonize_unseen='error'; retrain with "
                    "--harmonize-unseen pooled to validate on new sites",
                    file=file,
                )
                for s in unseen
            ],
        )
    return {
        "column": site,
        "policy": policy,
        "training_sites": training,
        "external_sites": external,
        "unseen_sites": unseen,
    }


def _recalibration(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """``a, b`` of the logistic recalibration ``logit P(y=1) = a + b logit(p)`` (NaN when the
    fit does not converge, e.g. separated predictions)."""
    lp = logit(np.clip(proba, PROBA_EPS, 1 - PROBA_EPS)).reshape(-1, 1)
    fit = LogisticRegression(C=1e12, max_iter=1000).fit(lp, y)  # unpenalised
    a, b = float(fit.intercept_[0]), float(fit.coef_[0, 0])
    if not (np.isfinite(a) and np.isfinite(b)) or abs(b) > 1e4:
        return float("nan"), float("nan")
    return a, b


def case_mix(
    trained: TrainedModel,
    training_features: str | Path,
    features: str | Path,
    *,
    training_biomarkers: str | Path | None = None,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
    n_bootstrap: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """How different the two cohorts are: a cross-validated membership model.

    A logistic regression (text columns one-hot encoded with the model's training levels,
    median imputation, standardisation, L2 penalty ``C=1``) on the model's input columns (the
    site column excepted: it names the cohort) predicts "external" against "training";
    every step is fitted inside the folds of a stratified :data:`CASE_MIX_FOLDS`-fold CV
    (shuffled with ``seed``, rows sorted by cohort then patient id). Its out-of-fold AUC
    (patient bootstrap CI, stratified by cohort) is 0.5 when the cohorts cannot be told
    apart and near 1 when their case mix differs a lot. The standardised mean differences of
    the numeric columns name where they differ.

    Returns
    -------
    dict
        ``computed`` (True), ``auc`` {mean, ci_low, ci_high}, ``n_training``, ``n_external``,
        ``shared_ids`` (ids found in both cohorts), ``method``, ``differences`` (the ten
        largest absolute SMD: ``column``, ``training_mean``, ``external_mean``, ``smd``).
    """
    train_X = model_matrix(
        trained,
        training_features,
        biomarkers=training_biomarkers,
        id_column=id_column,
        biomarkers_id=biomarkers_id,
    )
    external_X = model_matrix(
        trained, features, biomarkers=biomarkers, id_column=id_column, biomarkers_id=biomarkers_id
    )
    site = trained.site_column
    parts = []
    for member, X in ((0, train_X), (1, external_X)):
        X = X.drop(columns=[c for c in (site, SITE_COLUMN) if c and c in X.columns])
        X = X.iloc[np.argsort(X.index.astype(str).to_numpy(), kind="stable")]
        parts.append((X, np.full(len(X), member)))
    X = pd.concat([p[0] for p in parts], axis=0, ignore_index=True)
    m = np.concatenate([p[1] for p in parts])
    levels = trained.estimator.encoder_.levels_
    membership = make_pipeline(
        CategoricalEncoder(categories={k: v for k, v in levels.items() if k in X.columns}),
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(C=1.0, max_iter=2000),
    )
    folds = StratifiedKFold(
        min(CASE_MIX_FOLDS, int(np.bincount(m).min())), shuffle=True, random_state=seed
    )
    proba = cross_val_predict(membership, X, m, cv=folds, method="predict_proba")[:, 1]
    numeric = [c for c in X.columns if c not in levels]
    differences = []
    for column in numeric:
        t, e = X.loc[m == 0, column].astype(float), X.loc[m == 1, column].astype(float)
        sd = np.sqrt((np.nanvar(t, ddof=1) + np.nanvar(e, ddof=1)) / 2)
        if np.isfinite(sd) and sd > 0:
            differences.append(
                {
                    "column": column,
                    "training_mean": float(np.nanmean(t)),
                    "external_mean": float(np.nanmean(e)),
                    "smd": float((np.nanmean(e) - np.nanmean(t)) / sd),
                }
            )
    differences.sort(key=lambda d: (-abs(d["smd"]), d["column"]))
    shared = sorted(set(train_X.index.astype(str)) & set(external_X.index.astype(str)))
    return {
        "computed": True,
        "auc": bootstrap_auc(m, proba, n_bootstrap=n_bootstrap, seed=seed),
        "n_training": int((m == 0).sum()),
        "n_external": int((m == 1).sum()),
        "shared_ids": shared[:20],
        "n_shared_ids": len(shared),
        "method": (
            "Membership model: logistic regression (L2, C = 1) on the model's input columns "
            "(site excepted), text columns one-hot encoded with the training levels, median "
            "imputation and standardisation fitted inside each of "
            f"{folds.get_n_splits()} stratified folds (seed {seed}); out-of-fold AUC of "
            "'external vs training' with a 95 % bootstrap CI (patients resampled within "
            "cohort). 0.5: the cohorts cannot be told apart; near 1: very different case mix."
        ),
        "differences": differences[:10],
    }
