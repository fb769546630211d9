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
from sklearn.model_selection import BaseCrossValidator, StratifiedKFold

__all__ = ["MIN_FOLDS", "AdaptiveStratifiedKFold", "adapted_folds"]

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
