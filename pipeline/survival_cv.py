"""Out-of-fold predictions of survival models on repeated event-stratified folds.

:func:`survival_predictions` is the survival counterpart of the CV engine's per-fold loop:
every model is fitted on the training rows of the same folds
(:class:`~radfusion.pipeline.survival.EventStratifiedKFold`) and scores the held-out rows
with a risk and, where it can, survival probabilities at chosen times. The predictions table
is what :mod:`radfusion.pipeline.survival_metrics` summarises (per repeat, pooled over folds)
and what a survival report is built from. Nothing is fitted outside a training fold.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.utils.parallel import Parallel, delayed

from .fusion import shared_fits
from .survival import EventStratifiedKFold, check_survival_y
from .worker_warnings import gathering_warnings, warn_once

__all__ = ["survival_column", "survival_predictions"]


def survival_column(time: float) -> str:
    """Name of the predictions column holding ``S(time | x)``, e.g. ``survival@24``."""
    return f"survival@{time:g}"


def _survival(model, X, times: np.ndarray) -> np.ndarray:
    """Survival probabilities at ``times`` (rows × times); NaN where the model cannot give
    them there (no survival function, or a time beyond its training follow-up)."""
    try:
        if hasattr(model, "predict_survival"):
            return np.asarray(model.predict_survival(X, times), dtype=np.float64)
        if hasattr(model, "predict_survival_function"):
            return np.vstack([fn(times) for fn in model.predict_survival_function(X)])
    except ValueError:
        pass
    return np.full((len(X), len(times)), np.nan)


def _fit_split(models, X, y, train, test, times, repeat, fold) -> tuple[list[pd.DataFrame], list]:
    """Every model on one split, sharing identical branch fits
    (:func:`~radfusion.pipeline.fusion.shared_fits`); the frames and the warnings raised."""
    with gathering_warnings() as caught, shared_fits():
        frames = [
            _fit_fold(name, model, X, y, train, test, times, repeat, fold)
            for name, model in models.items()
        ]
    return frames, caught


def _fit_fold(name, model, X, y, train, test, times, repeat, fold) -> pd.DataFrame:
    fitted = clone(model).fit(X.iloc[train], y[train])
    rows = X.iloc[test]
    frame = pd.DataFrame(
        {
            "patient_id": rows.index.astype(str),
            "model": name,
            "repeat": repeat,
            "fold": fold,
            "risk": np.asarray(fitted.predict(rows), dtype=np.float64),
        }
    )
    if len(times):
        surv = _survival(fitted, rows, times)
        frame = pd.concat(
            [frame, pd.DataFrame(surv, columns=[survival_column(t) for t in times])], axis=1
        )
    return frame


def survival_predictions(
    models: Mapping[str, Any],
    X: pd.DataFrame,
    y: Any,
    *,
    folds: int = 5,
    repeats: int = 1,
    seed: int = 0,
    times: Sequence[float] = (),
    n_jobs: int | None = None,
) -> pd.DataFrame:
    """Out-of-fold risk (and survival at ``times``) of every model on the same folds.

    Parameters
    ----------
    models : mapping of str to estimator
        Unfitted survival estimators (:class:`~radfusion.pipeline.fusion.FusionSurvival`, or
        any scikit-survival estimator that takes ``X``), cloned per fold.
    X : DataFrame
        The patient table, indexed by patient id.
    y : survival target
        ``(event, time)`` records of the rows of ``X``.
    folds, repeats, seed : int
        :class:`~radfusion.pipeline.survival.EventStratifiedKFold` settings.
    times : sequence of float
        Times at which survival probabilities are predicted (e.g. the horizons and
        :func:`~radfusion.pipeline.survival_metrics.ibs_times` of the whole table).
    n_jobs : int, optional
        Parallel jobs over the (repeat, fold) splits; the models of one split share their
        identical branch fits.

    Returns
    -------
    DataFrame
        One row per (model, repeat, patient): ``patient_id`` (text), ``model``, ``repeat``,
        ``fold``, ``risk`` (higher = earlier event) and ``survival@{t}`` per time (NaN where a
        model has no survival function or ``t`` lies beyond a fold's training follow-up).
    """
    y = check_survival_y(y, X.index)
    times = np.asarray(sorted(set(float(t) for t in times)), dtype=np.float64)
    splitter = EventStratifiedKFold(folds, repeats=repeats, random_state=seed)
    splits = list(splitter.split(X, y))
    per_repeat = len(splits) // repeats
    per_split = Parallel(n_jobs=n_jobs)(
        delayed(_fit_split)(models, X, y, train, test, times, k // per_repeat, k % per_repeat)
        for k, (train, test) in enumerate(splits)
    )
    # (model, split) order, as the frames were always returned
    warn_once(caught for _, caught in per_split)
    frames = [per_split[k][0][m] for m in range(len(models)) for k in range(len(splits))]
    return pd.concat(frames, ignore_index=True)
