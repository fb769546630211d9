"""Figure data the report computes from the out-of-fold predictions: the distribution of
predicted risk (for the calibration figure) and the threshold range over which a decision
curve is estimated from enough patients (for the decision-curve figure).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "MIN_CALLED_POSITIVE",
    "MIN_CALLED_POSITIVE_FRACTION",
    "RISK_BINS",
    "decision_range",
    "risk_histograms",
]

RISK_BINS = np.round(np.linspace(0.0, 1.0, 21), 2)
"""Edges of the predicted-risk histogram (20 bins of width 0.05)."""
MIN_CALLED_POSITIVE = 10
"""A decision curve is drawn where at least this many patients ..."""
MIN_CALLED_POSITIVE_FRACTION = 0.05
"""... and at least this fraction of them are called positive (mean over repeats)."""


def risk_histograms(predictions: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """``{model: {"class0", "class1"}}``: patients per bin of :data:`RISK_BINS` by true class,
    mean over repeats (each repeat predicts every patient once)."""
    out = {}
    for model, rows in predictions.groupby("model", sort=False):
        repeats = rows["repeat"].nunique()
        counts = {}
        for label in (0, 1):
            proba = rows.loc[rows["y_true"] == label, "proba"].to_numpy(dtype=np.float64)
            counts[f"class{label}"] = (np.histogram(proba, bins=RISK_BINS)[0] / repeats).tolist()
        out[str(model)] = counts
    return out


def decision_range(
    predictions: pd.DataFrame,
    thresholds: Sequence[float],
    net_benefit: Mapping[str, Sequence[float]] | None = None,
) -> dict[str, Any]:
    """The thresholds over which each model's net benefit rests on enough patients.

    Net benefit at threshold t counts the patients with predicted risk >= t; once only a
    handful are left, the curve is noise (spikes near t = 1). A model's curve is kept up to
    the highest threshold at which at least ``max(MIN_CALLED_POSITIVE,
    MIN_CALLED_POSITIVE_FRACTION * n)`` patients are called positive (mean over repeats).
    The figure's range ends at the highest of those or, given ``net_benefit`` (``{model:
    values on thresholds}``), at the highest kept threshold where some model still has a
    positive net benefit (beyond it no model beats treating no one), rounded up to 0.05.

    Returns
    -------
    dict
        ``low``, ``high`` (the figure's threshold range), ``models`` ({model: highest
        threshold kept}) and ``rule`` (one sentence).
    """
    thresholds = np.asarray(thresholds, dtype=np.float64)
    n = predictions["patient_id"].nunique()
    need = max(MIN_CALLED_POSITIVE, MIN_CALLED_POSITIVE_FRACTION * n)
    models = {}
    for model, rows in predictions.groupby("model", sort=False):
        repeats = rows["repeat"].nunique()
        proba = np.sort(rows["proba"].to_numpy(dtype=np.float64))
        called = (len(proba) - np.searchsorted(proba, thresholds, side="left")) / repeats
        kept = thresholds[called >= need]
        models[str(model)] = float(kept.max()) if len(kept) else float(thresholds[0])
    high = max(models.values(), default=float(thresholds[-1]))
    if net_benefit is not None:
        useful = [
            t
            for model, limit in models.items()
            for t, value in zip(thresholds, net_benefit[model], strict=True)
            if t <= limit and value is not None and value > 0
        ]
        if useful:
            high = min(high, math.ceil(max(useful) * 20 - 1e-9) / 20)
    return {
        "low": float(thresholds[0]),
        "high": high,
        "models": models,
        "rule": f"Each model's curve is drawn up to the highest threshold at which at least "
        f"{need:g} patients (max of {MIN_CALLED_POSITIVE} and "
        f"{MIN_CALLED_POSITIVE_FRACTION:.0%} of {n}) are called positive, mean over "
        f"repeats; beyond it the net benefit rests on too few patients to read. The axis ends "
        f"where no model has a positive net benefit any more.",
    }
