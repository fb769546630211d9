"""Inner cross-validation splits that adapt to the class counts of the rows they split.

Stacking's inner folds, a tuned branch's search folds and the SVM's calibration folds run on the
training rows of an outer fold. On a small cohort those rows may hold fewer patients of a class
than the folds asked for, and a plain ``StratifiedKFold(5)`` then fails. The splitter here uses
``min(folds, smallest class count)`` folds, at least 2; with as many patients per class as
folds asked for, its splits are exactly those of ``StratifiedKFold(folds, ...)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold

__all__ = ["MIN_FOLDS", "AdaptiveStratifiedKFold", "adapted_folds", "leave_one_group_out"]

MIN_FOLDS = 2
"""Fewest folds an inner split uses."""


def adapted_folds(folds: int, y: Any) -> int:
    """``min(folds, smallest class count of y)``, at least :data:`MIN_FOLDS`."""
    _, counts = np.unique(np.asarray(y), return_counts=True)
    smallest = int(counts.min()) if len(counts) else 0
    return max(MIN_FOLDS, min(int(folds), smallest))


class AdaptiveStratifiedKFold(BaseCrossValidator):
    """Stratified K-fold whose K shrinks to the smallest class count (at least 2).

    Parameters
    ----------
    folds : int, default=5
        Folds wanted; :func:`adapted_folds` of the ``y`` being split are used.
    shuffle : bool, default=False
    random_state : int, RandomState or None, default=None
        As in :class:`~sklearn.model_selection.StratifiedKFold`.

    Notes
    -----
    The number of folds is deliberately not an ``n_splits`` attribute: scikit-learn's
    ``CalibratedClassifierCV`` compares ``cv.n_splits`` with the class counts before splitting,
    which would refuse the adapted split.
    """

    def __init__(self, folds: int = 5, *, shuffle: bool = False, random_state: Any = None):
        self.folds = folds
        self.shuffle = shuffle
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Folds used for ``y`` (``folds`` when ``y`` is not given)."""
        return int(self.folds) if y is None else adapted_folds(self.folds, y)

    def split(self, X: Any, y: Any, groups: Any = None):
        """Train and test indices of ``StratifiedKFold(adapted_folds(folds, y), ...)``.

        A class with a single row gets scikit-learn's warning (and is absent from one
        training fold), as with a plain ``StratifiedKFold``.
        """
        splitter = StratifiedKFold(
            self.get_n_splits(X, y), shuffle=self.shuffle, random_state=self.random_state
        )
        yield from splitter.split(X, y, groups)


def leave_one_group_out(groups: Any, n: int | None = None) -> tuple[list[str], np.ndarray]:
    """Folds of leave-one-group-out CV: the group names (sorted text) and each row's fold.

    Fold ``k`` holds out every row of ``names[k]`` and trains on the others, as
    :class:`~sklearn.model_selection.LeaveOneGroupOut` does; groups are compared as text.

    Raises
    ------
    ValueError
        A missing group, fewer than two groups, or a length other than ``n``.
    """
    values = pd.Series(np.asarray(groups, dtype=object))
    if n is not None and len(values) != n:
        raise ValueError(f"groups must have one value per row ({n}), got {len(values)}")
    if values.isna().any():
        raise ValueError(f"groups has missing values at rows {np.flatnonzero(values.isna())[:10]}")
    text = values.astype(str).to_numpy()
    names = sorted(set(text))
    if len(names) < 2:
        raise ValueError(f"leave-one-group-out needs at least two groups, got {names}")
    return names, np.searchsorted(np.asarray(names, dtype=object), text)
