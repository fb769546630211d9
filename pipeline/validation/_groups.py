"""Metrics of each held-out group of a leave-one-group-out cross-validation (e.g. per site)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ._cv import CVResult

__all__ = ["group_metrics"]


def group_metrics(
    result: CVResult, *, n_bootstrap: int = 1000, seed: int = 0
) -> dict[str, list[dict[str, Any]]]:
    """Patients and the task's per-group metric of each held-out group, per model.

    ``result`` comes from :func:`radfusion.pipeline.validation.cross_validate_models` with
    ``groups`` (``result.held_out_groups`` names the group of each fold; one repeat). Each row
    is ``{"group", "n"}`` and the task's :meth:`~radfusion.pipeline.targets.Task.group_metrics`
    of the group's patients (binary: events and ROC AUC with a bootstrap CI stratified by
    class; survival: events and Harrell's C; the same resamples for every model, seeded by
    ``seed`` and the group's position); a metric that is not defined is None with a ``note``.

    Returns
    -------
    dict
        ``{model: [row, ...]}``, groups in fold order.
    """
    names = result.held_out_groups
    if not names:
        raise ValueError("the result does not come from a leave-one-group-out CV")
    predictions = result.predictions
    out: dict[str, list[dict[str, Any]]] = {}
    for model in pd.unique(predictions["model"]):
        table = predictions[predictions["model"] == model]
        rows = []
        for k, name in enumerate(names):
            part = table[table["fold"] == k].sort_values("patient_id", kind="stable")
            metrics = result.task.group_metrics(part, n_bootstrap=n_bootstrap, seed=seed + k)
            rows.append({"group": name, "n": len(part), **metrics})
        out[str(model)] = rows
    return out
