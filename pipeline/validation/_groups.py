"""Metrics of each held-out group of a leave-one-group-out cross-validation (e.g. per site)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..statistics import weighted_auc
from ..targets import BinaryTask
from ._cv import CVResult

__all__ = ["bootstrap_auc", "group_metrics"]

CI_LEVEL = 0.95


def group_metrics(
    result: CVResult, *, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """Patients, events and ROC AUC (95 % bootstrap CI) of each held-out group, per model.

    ``result`` comes from :func:`radfusion.pipeline.validation.cross_validate_models` with
    ``groups`` (``result.held_out_groups`` names the group of each fold; one repeat). The CI
    resamples the group's patients with replacement, stratified by class, with the same
    resamples for every model (seeded by ``seed`` and the group's position). A group with one
    class has no AUC: ``roc_auc`` is None and ``note`` says why. Multiclass and regression
    predictions get ``n`` only (``events`` and ``roc_auc`` None).

    Returns
    -------
    dict
        ``{model: [{"group", "n", "events", "roc_auc": {mean, ci_low, ci_high} | None,
        "note"}, ...]}``, groups in fold order.
    """
    names = result.held_out_groups
    if not names:
        raise ValueError("the result does not come from a leave-one-group-out CV")
    predictions = result.predictions
    binary = isinstance(result.task, BinaryTask)
    out: dict[str, list[dict[str, Any]]] = {}
    for model in pd.unique(predictions["model"]):
        rows = []
        table = predictions[predictions["model"] == model]
        for k, name in enumerate(names):
            part = table[table["fold"] == k].sort_values("patient_id", kind="stable")
            row: dict[str, Any] = {
                "group": name,
                "n": len(part),
                "events": None,
                "roc_auc": None,
                "note": None,
            }
            if not binary:
                row["note"] = "per-group metrics are computed for binary targets only"
            else:
                y = part["y_true"].to_numpy().astype(np.int64)
                row["events"] = int(y.sum())
                if y.min(initial=1) == y.max(initial=0):
                    row["note"] = "AUC not defined: the held-out group has one class only"
                else:
                    proba = part["proba"].to_numpy(dtype=float)
                    row["roc_auc"] = bootstrap_auc(y, proba, n_bootstrap=n_bootstrap, seed=seed + k)
            rows.append(row)
        out[str(model)] = rows
    return out


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
        alpha = (1 - CI_LEVEL) / 2
        low, high = np.quantile(auc[1:], [alpha, 1 - alpha])
    return {"mean": float(auc[0]), "ci_low": float(low), "ci_high": float(high)}
