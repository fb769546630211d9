"""Exact SHAP values of the headline model's branches, on the held-out rows of each outer fold.

A fused model has no exact, cheap SHAP values, but each of its branches ends in one learner
whose SHAP values are exact and cheap on the branch's transformed inputs (the columns after
selection, imputation, filtering and standardisation):

- a **linear** learner (``LogisticRegression``, ``LogisticRegressionCV``): the interventional
  SHAP value of feature ``j`` is ``w_j (x_j - E[x_j])`` on the log-odds, and ``E[x_j] = 0``
  because the branch's last step standardises on the training rows, so the base value is the
  intercept (Lundberg and Lee 2017; shap's ``LinearExplainer``);
- a **tree** learner (random forest, extra-trees: probability of class 1; XGBoost: log-odds)
  through shap's ``TreeExplainer``, exact (path-dependent TreeSHAP; Lundberg et al. 2020).
  ``shap`` is an optional extra (``pip install 'radfusion[explain]'``); without it the tree
  branches are skipped with that reason.

Other learners (the Platt-calibrated SVM) have no exact SHAP and are skipped with the reason.
Each fold's record keeps per branch the sum of ``|SHAP|`` per feature over its held-out rows,
the row count and the largest additivity error (``|sum(SHAP) + base - output|``, the check
that the values explain the learner's own output); :func:`summarize_shap` turns the records
into the report's ``explanations.shap``. They explain a branch's output, not the fused
probability.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["SHAP_INSTALL", "branch_shap", "summarize_shap"]

SHAP_INSTALL = "pip install 'radfusion[explain]'"
"""How to get the ``shap`` package (tree learners' SHAP values)."""

_NOTE = (
    "SHAP values of each branch of the headline model ({model}): the exact SHAP values of the "
    "branch's own learner on its transformed inputs (after selection, imputation, filtering "
    "and standardisation), computed on the held-out rows of every outer fold, never on the "
    "rows the branch was fitted on. They explain the branch's output (log-odds for linear "
    "learners and XGBoost, the probability of class 1 for forests), not the fused probability, "
    "which has no exact SHAP values. Linear: w_j (x_j - mean_j) with the training mean (0 "
    "after standardisation); trees: path-dependent TreeSHAP (shap's TreeExplainer). Mean "
    "|SHAP| over every held-out row of every fold and repeat; the additivity error is the "
    "largest |sum of SHAP values + base value - the learner's output| over those rows."
)
_LINEAR = (LogisticRegression, LogisticRegressionCV)
_FORESTS = (RandomForestClassifier, ExtraTreesClassifier)


def _branches(estimator: BaseEstimator, name: str) -> dict[str, Any]:
    """The fitted branches of a fused model by name (``named_estimators_``), or the model
    itself as one branch when it is a pipeline (single-group and early models)."""
    named = getattr(estimator, "named_estimators_", None)
    if named is not None:
        return {str(k): v for k, v in named.items() if v is not None and v != "drop"}
    return {name: estimator}


def branch_shap(estimator: BaseEstimator, X_test: pd.DataFrame, *, name: str) -> dict[str, Any]:
    """One fold's SHAP record of a fitted (binary) model ``name`` on its held-out rows.

    Returns
    -------
    dict
        ``{"branches": {branch: {"kind", "output", "features", "sum_abs", "n",
        "additivity"}}, "skipped": {branch: reason}}``.
    """
    out: dict[str, Any] = {"branches": {}, "skipped": {}}
    for branch, model in _branches(estimator, name).items():
        if not isinstance(model, Pipeline) or not isinstance(model.steps[-2][1], StandardScaler):
            out["skipped"][branch] = (
                f"{type(model).__name__}: not a branch pipeline ending in standardisation and "
                "a learner (e.g. a tuned branch), so no exact SHAP values"
            )
            continue
        learner = model.steps[-1][1]
        columns = list(model[:1].get_feature_names_out())
        rows = X_test[columns].notna().any(axis=1).to_numpy()  # the patients it predicts
        if not rows.any():
            continue
        transformed = np.asarray(model[:-1].transform(X_test.loc[rows]), dtype=np.float64)
        features = [str(f) for f in model[:-1].get_feature_names_out()]
        try:
            values, base, output, kind, scale = _exact_shap(learner, transformed)
        except (ImportError, TypeError) as error:
            out["skipped"][branch] = str(error)
            continue
        out["branches"][branch] = {
            "kind": kind,
            "output": scale,
            "features": features,
            "sum_abs": np.abs(values).sum(axis=0).tolist(),
            "n": int(values.shape[0]),
            "additivity": float(np.max(np.abs(values.sum(axis=1) + base - output))),
        }
    return out


def _exact_shap(
    learner: BaseEstimator, X: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray, str, str]:
    """SHAP values (rows x features), base value, the learner's output they add up to, the
    explainer kind and the output's scale; a learner without exact SHAP is a ``TypeError``
    saying so, a missing ``shap`` an ``ImportError`` saying how to get it."""
    if isinstance(learner, _LINEAR) and np.shape(learner.coef_)[0] == 1:
        coef = np.asarray(learner.coef_[0], dtype=np.float64)
        base = float(learner.intercept_[0])
        return X * coef, base, learner.decision_function(X), "linear", "log-odds of class 1"
    is_xgb = type(learner).__module__.startswith("xgboost")
    if not isinstance(learner, _FORESTS) and not is_xgb:
        raise TypeError(f"{type(learner).__name__}: no exact SHAP values (not linear, not trees)")
    try:
        import shap
    except ImportError as error:
        raise ImportError(
            f"{type(learner).__name__}: the shap package is not installed ({SHAP_INSTALL})"
        ) from error
    explainer = shap.TreeExplainer(learner)
    values = np.asarray(explainer.shap_values(X), dtype=np.float64)
    base = np.atleast_1d(np.asarray(explainer.expected_value, dtype=np.float64))
    if is_xgb:
        output = np.asarray(learner.predict(X, output_margin=True), dtype=np.float64)
        return values, float(base[-1]), output, "tree", "log-odds of class 1"
    values = values[..., 1] if values.ndim == 3 else values
    output = learner.predict_proba(X)[:, 1]
    return values, float(base[1]), output, "tree", "probability of class 1"


def summarize_shap(
    records: Sequence[Mapping[str, Any]], model: str | None, *, top_k: int
) -> dict[str, Any]:
    """The report's ``explanations.shap`` from the fold records of ``model``: per branch the
    ``top_k`` features by mean ``|SHAP|`` over every held-out row, the kind, the output's
    scale, the rows and the largest additivity error; the skipped branches with why."""
    folds = [r["record"]["shap"] for r in records if r["model"] == model and r["record"]]
    folds = [f for f in folds if f]
    if model is None or not folds:
        return {
            "model": model,
            "computed": False,
            "note": "No SHAP values in this run (the headline model was not run, or not "
            "explained).",
            "branches": {},
            "skipped": {},
        }
    branches: dict[str, Any] = {}
    for fold in folds:
        for name, part in fold["branches"].items():
            entry = branches.setdefault(
                name,
                {"kind": part["kind"], "output": part["output"], "n": 0, "sums": {}, "err": 0.0},
            )
            entry["n"] += part["n"]
            entry["err"] = max(entry["err"], part["additivity"])
            for feature, value in zip(part["features"], part["sum_abs"], strict=True):
                entry["sums"][feature] = entry["sums"].get(feature, 0.0) + value
    summary = {}
    for name, entry in branches.items():
        means = {f: s / entry["n"] for f, s in entry["sums"].items()}
        top = sorted(means, key=lambda f: (-means[f], f))[:top_k]
        summary[name] = {
            "kind": entry["kind"],
            "output": entry["output"],
            "n_rows": entry["n"],
            "additivity_error": entry["err"],
            "top": [{"feature": f, "mean_abs": means[f]} for f in top],
        }
    skipped = {name: why for fold in folds for name, why in fold["skipped"].items()}
    return {
        "model": model,
        "computed": bool(summary),
        "note": _NOTE.format(model=model),
        "branches": summary,
        "skipped": {k: v for k, v in skipped.items() if k not in summary},
    }
