"""Missing modalities: which group each branch reads and which groups each patient has.

The late-fusion (:mod:`._voting`) and stacking (:mod:`._stacking`) ensembles fit each branch on
the training rows that have its group and combine, per patient, only the branches whose group
that patient has. A group is *present* in a row when at least one of its columns is not NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, clone, is_classifier, is_regressor
from sklearn.utils import Bunch
from sklearn.utils.validation import column_or_1d

from .._sklearn_compat import num_samples, safe_indexing
from ..columns import branch_name
from ..shared_fits import fit_once

__all__ = [
    "Availability",
    "branch_output",
    "chosen_setting",
    "fit_predict_rows",
    "rows_or_all",
    "set_named_estimators",
    "trainable_rows",
]


class Availability:
    """Which group each branch reads, and which groups each row (patient) has.

    A group is *present* in a row when at least one of its columns is not NaN. Branches are
    matched to groups by name: ``branch_name(group)`` or ``branch_name(group, learner)``.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags

    def _table(self, X):
        """``X`` as given when it can be indexed (DataFrame, array), else as an array; sparse
        input is refused (branches select, impute and scale dense columns)."""
        if sparse.issparse(X):
            raise TypeError(
                f"{type(self).__name__} does not support sparse input: pass a dense table"
            )
        return X if hasattr(X, "iloc") or isinstance(X, np.ndarray) else np.asarray(X)

    def _fit_inputs(self, X, y, *, regression: bool):
        """The table (see :meth:`_table`) and ``y`` as a 1D array, both checked for emptiness."""
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = self._table(X)
        if num_samples(X) == 0:
            raise ValueError(f"0 sample(s) (shape={np.shape(X)}) while a minimum of 1 is required.")
        y = column_or_1d(y, warn=True)
        return X, (y.astype(np.float64) if regression else y)

    def _checked_branches(self, *, typed: bool) -> tuple[list[str], list]:
        """The branches' names and estimators, checked as scikit-learn's ensembles check them:
        a non-empty list of ``(name, estimator)``, names unique, without ``__`` and no
        parameter's, at least one estimator not ``"drop"``; with ``typed`` each a classifier
        (a regressor) as the ensemble is (voting; stacking also takes regressors for classes)."""
        estimators = self.estimators
        if not len(estimators) or not all(
            isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
            for item in estimators
        ):
            raise ValueError(
                "Invalid 'estimators' attribute, 'estimators' should be a non-empty list of "
                "(string, estimator) tuples."
            )
        names, branches = (list(column) for column in zip(*estimators, strict=True))
        if len(set(names)) != len(names):
            raise ValueError(f"Names provided are not unique: {names!r}")
        clash = sorted(set(names) & set(self.get_params(deep=False)))
        if clash:
            raise ValueError(f"Estimator names conflict with constructor arguments: {clash!r}")
        if any("__" in name for name in names):
            raise ValueError(
                f"Estimator names must not contain __: got {[n for n in names if '__' in n]!r}"
            )
        kept = [branch for branch in branches if not _dropped(branch)]
        if not kept:
            raise ValueError(
                "All estimators are dropped. At least one is required to be an estimator."
            )
        if typed:
            kind, check = (
                ("classifier", is_classifier)
                if is_classifier(self)
                else (
                    "regressor",
                    is_regressor,
                )
            )
            for branch in kept:
                if not check(branch):
                    raise ValueError(f"The estimator {type(branch).__name__} should be a {kind}.")
        return names, branches

    def _branch_groups(self, names: Sequence[str]) -> np.ndarray:
        """Index into ``self.groups`` of each branch name's group (-1: no group, always present)."""
        if self.groups is None:
            return np.full(len(names), -1)
        prefixes = {branch_name(g): i for i, g in enumerate(self.groups)}
        index = [prefixes.get(name.rpartition(":")[0] or name) for name in names]
        unknown = [n for n, i in zip(names, index, strict=True) if i is None]
        if unknown:
            raise ValueError(
                f"branches {unknown} match no group of {list(self.groups)}; name them "
                "branch_name(group, learner)"
            )
        return np.asarray(index, dtype=int)

    def _presence(self, X) -> np.ndarray:
        """Boolean array (n_samples, n_groups): the row has at least one value of the group."""
        if self.groups is None:
            return np.ones((num_samples(X), 0), dtype=bool)
        if not hasattr(X, "columns"):
            raise TypeError(
                f"{type(self).__name__} with groups needs a DataFrame, got {type(X).__name__}"
            )
        return np.column_stack(
            [
                X.reindex(columns=list(cols)).notna().any(axis=1).to_numpy()
                for cols in self.groups.values()
            ]
        ).reshape(len(X), len(self.groups))

    def _branch_presence(self, X) -> np.ndarray:
        """Boolean array (n_samples, n_branches): the branch's group is present and usable."""
        present = np.column_stack(
            [self._presence(X) & self.usable_, np.ones((num_samples(X), 1), dtype=bool)]
        )
        return present[:, self.branch_groups_]  # index -1 → the always-present column


def _dropped(branch) -> bool:
    return isinstance(branch, str) and branch == "drop"


def branch_output(estimator, X, method: str) -> np.ndarray:
    """A branch's stacked output, shape (n, c): P(class 1) of a binary classifier, every
    class's probability of a multiclass one, the prediction of a regressor."""
    if method == "predict":
        return np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1, 1)
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    return proba[:, 1:] if proba.shape[1] == 2 else proba


def fit_predict_rows(estimator, X, y, train, test, sample_weight, method="predict_proba"):
    """Fit on ``train`` rows, return the output of ``test`` rows (out-of-fold predictions)."""
    estimator = fit_once(estimator, X, y, train, sample_weight)
    if len(test) == 0:
        return None
    return branch_output(estimator, safe_indexing(X, test), method)


def chosen_setting(fitted: BaseEstimator, branch: BaseEstimator) -> BaseEstimator:
    """What a branch's inner (out-of-fold) fits use: for a fitted search (a tuned branch),
    its best setting, unfitted, so that the search runs once per training set rather than in
    every inner fold; otherwise the branch itself."""
    best = getattr(fitted, "best_estimator_", None)
    return branch if best is None else clone(best)


def trainable_rows(
    rows: np.ndarray, present: np.ndarray, y: np.ndarray, n_classes: int | None = 2
) -> np.ndarray | None:
    """The rows having the group, or None when they do not hold every class (classification,
    ``n_classes``) or two distinct values (regression, ``n_classes=None``)."""
    rows = rows[present[rows]]
    if n_classes is None:
        return rows if len(rows) >= 2 and np.ptp(y[rows]) > 0 else None
    return rows if len(np.unique(y[rows])) == n_classes else None


def rows_or_all(rows: np.ndarray, n: int) -> np.ndarray | None:
    return None if len(rows) == n else rows


def set_named_estimators(ensemble) -> None:
    """``named_estimators_`` (dropped ones kept as "drop") and ``feature_names_in_`` of a
    fitted ensemble whose ``estimators_`` are its kept branches, in order."""
    ensemble.named_estimators_ = Bunch()
    fitted = iter(ensemble.estimators_)
    for name, est in ensemble.estimators:
        ensemble.named_estimators_[name] = est if est == "drop" else next(fitted)
    if hasattr(ensemble.estimators_[0], "feature_names_in_"):
        ensemble.feature_names_in_ = ensemble.estimators_[0].feature_names_in_
