"""Selection of the ``k`` features most related to the target (ANOVA F, Cox score test, or
mRMR)."""

from __future__ import annotations

import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.feature_selection import (
    SelectorMixin,
    f_classif,
    f_regression,
    mutual_info_classif,
    mutual_info_regression,
)
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from ._utils import unit_columns

# --------------------------------------------------------------------------- selection


class SelectTopK(SelectorMixin, BaseEstimator):
    """Select the ``k`` features most related to the target, univariately or by mRMR.

    ``method="anova"``: the ``k`` largest ANOVA F statistics (``f_classif``, as
    ``SelectKBest``; ``f_regression`` for a continuous target). ``method="mrmr"``:
    minimum-redundancy maximum-relevance (Peng, Long & Ding 2005), greedy: the first feature
    has the largest relevance; each next one maximises
    ``relevance / max(relevance) - mean |r|`` with the features already chosen, where ``r`` is
    the Pearson correlation. Relevance is scaled to [0, 1] so that the two terms are comparable
    (with raw F statistics the redundancy term would hardly count). Ties go to the earlier
    column, so the selection is deterministic.

    A survival target (a structured array of ``(event, time)`` records, scikit-survival's
    ``y``) is scored by the univariate Cox score test at ``beta = 0`` (Breslow ties; the
    log-rank statistic for a binary feature) in place of the F statistic; ``relevance="mi"``
    is not defined for it.

    Parameters
    ----------
    k : int, default=10
        Number of features to keep; all of them when ``k >= n_features``.
    method : {"anova", "mrmr"}, default="anova"
    relevance : {"f", "mi"}, default="f"
        mRMR relevance: ANOVA F statistic or mutual information (``mutual_info_classif``).
    random_state : int or None, default=0
        Seed of the mutual-information estimator (only used with ``relevance="mi"``).

    Attributes
    ----------
    scores_ : ndarray of shape (n_features,)
        Relevance of each feature (F statistic, or mutual information); 0 for constant ones.
    selected_ : ndarray of int of shape (k,)
        Indices of the selected features, in the order they were chosen (best first).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Defined only when ``X`` has string column names.
    """

    def __init__(
        self, k: int = 10, method: str = "anova", relevance: str = "f", random_state: int | None = 0
    ):
        self.k = k
        self.method = method
        self.relevance = relevance
        self.random_state = random_state

    def fit(self, X, y):
        """Score the features of ``X`` against ``y`` and choose ``k`` of them."""
        if not (isinstance(self.k, Integral) and self.k >= 1):
            raise ValueError(f"k must be a positive integer, got {self.k!r}")
        if self.method not in ("anova", "mrmr"):
            raise ValueError(f"method must be 'anova' or 'mrmr', got {self.method!r}")
        if self.relevance not in ("f", "mi"):
            raise ValueError(f"relevance must be 'f' or 'mi', got {self.relevance!r}")
        y_fields = getattr(np.asarray(y), "dtype", np.dtype(float)).names
        if y_fields is not None and len(y_fields) == 2:
            if self.method == "mrmr" and self.relevance == "mi":
                raise ValueError("relevance='mi' is not defined for a survival target")
            X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
            y = np.asarray(y)
            if len(y) != len(X):
                raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
            scores = _cox_score(X, y[y_fields[1]].astype(np.float64), y[y_fields[0]].astype(bool))
            return self._choose(X, scores)
        X, y = validate_data(
            self,
            X,
            y,
            dtype=np.float64,
            ensure_min_samples=2,
            y_numeric=type_of_target(y) == "continuous",
        )
        continuous = type_of_target(y) == "continuous"
        if not continuous:
            check_classification_targets(y)
        p = X.shape[1]
        if self.method == "mrmr" and self.relevance == "mi":
            mutual_info = mutual_info_regression if continuous else mutual_info_classif
            scores = mutual_info(X, y, random_state=self.random_state)
        else:
            with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
                warnings.simplefilter("ignore")  # constant features: F = nan
                f_test = f_regression if continuous else f_classif
                scores = f_test(X, y)[0] if len(np.unique(y)) > 1 else np.zeros(p)
        return self._choose(X, scores)

    def _choose(self, X, scores):
        k = min(int(self.k), X.shape[1])
        self.scores_ = np.nan_to_num(
            np.asarray(scores, dtype=np.float64), nan=0.0, posinf=np.finfo(np.float64).max
        )
        if self.method == "anova":
            self.selected_ = np.argsort(-self.scores_, kind="stable")[:k]
        else:
            self.selected_ = _mrmr(X, self.scores_, k)
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        mask = np.zeros(self.n_features_in_, dtype=bool)
        mask[self.selected_] = True
        return mask

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


def _cox_score(X: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """Univariate Cox score statistic ``U² / I`` at ``beta = 0`` of every column (Breslow ties):
    ``U = sum over events (x_i - mean of x over the risk set)``, ``I`` the sum of the risk
    sets' variances; 0 where ``I`` is 0 (a column constant on every risk set)."""
    order = np.argsort(-time, kind="stable")
    t, Xs, d = time[order], X[order], event[order]
    # every row of a tie is at risk at that time: use the cumulative sums up to its last row
    last = np.searchsorted(-t, -t, side="right") - 1
    at_risk = np.arange(1, len(t) + 1, dtype=np.float64)[last][:, None]
    mean = np.cumsum(Xs, axis=0)[last] / at_risk
    var = np.cumsum(Xs**2, axis=0)[last] / at_risk - mean**2
    U = (Xs[d] - mean[d]).sum(axis=0)
    info = np.clip(var[d], 0.0, None).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(info > 1e-12 * max(1.0, float(info.max(initial=0.0))), U**2 / info, 0.0)


def _mrmr(X: np.ndarray, relevance: np.ndarray, k: int) -> np.ndarray:
    top = relevance.max()
    rel = relevance / top if top > 0 else relevance
    Z = unit_columns(X)
    redundancy = np.zeros(X.shape[1])
    available = np.ones(X.shape[1], dtype=bool)
    chosen: list[int] = []
    for step in range(k):
        score = rel - (redundancy / step if step else 0.0)
        score = np.where(available, score, -np.inf)
        j = int(np.argmax(score))  # first maximum: deterministic ties
        chosen.append(j)
        available[j] = False
        redundancy += np.abs(Z.T @ Z[:, j])
    return np.asarray(chosen, dtype=int)
