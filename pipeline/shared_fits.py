"""Fits shared between the models of one cross-validation split.

A default ``cv`` compares models that are built from the same branches: the CT-only model is
exactly stacking's ``CT:lr`` branch, late fusion is the mean of the ``lr`` branches, and the
explanations read those same fitted branches. Inside :func:`shared_fits` (the CV engine opens
one per outer split), :func:`fit_once` fits an estimator on given rows only the first time it
sees that estimator — same class and parameters — on the same data (table, rows, target and
sample weights); later calls get the fitted object back. Fits are deterministic for a fixed
``random_state``, so the predictions are those of independent fits, byte for byte, and each
distinct fit costs once per split. Outside the context, :func:`fit_once` simply fits.

The store lives in the process that opened the context: fits run by parallel workers inside a
model (``n_jobs`` > 1) are not shared, and each split's store is dropped when it closes, so
memory grows with the distinct branches of one split, not with the number of models.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import numpy as np
from joblib import hash as joblib_hash
from sklearn.base import BaseEstimator

from ._sklearn_compat import safe_indexing

__all__ = ["fit_once", "fit_rows", "shared_fits"]


class _Store:
    """The fitted estimators of one context and the digests of the tables seen in it."""

    def __init__(self) -> None:
        self.fits: dict[str, BaseEstimator] = {}
        self.tables: dict[int, tuple[weakref.ref, str]] = {}
        self.hits = 0
        self.misses = 0

    def table_digest(self, X: Any) -> str:
        """Content digest of a table, computed once per object while it lives (a weak
        reference: the store does not keep a model's table alive)."""
        seen = self.tables.get(id(X))
        if seen is None or seen[0]() is not X:
            seen = (weakref.ref(X), joblib_hash(X))
            self.tables[id(X)] = seen
        return seen[1]


_STORE: ContextVar[_Store | None] = ContextVar("radfusion_shared_fits", default=None)


@contextmanager
def shared_fits() -> Iterator[_Store]:
    """Share identical fits made inside the ``with`` block (see the module docstring).

    Yields the store, whose ``hits`` and ``misses`` count reused and new fits. Nested
    contexts share the outermost store.
    """
    store = _STORE.get()
    if store is not None:
        yield store
        return
    store = _Store()
    token = _STORE.set(store)
    try:
        yield store
    finally:
        _STORE.reset(token)


def fit_rows(
    estimator: BaseEstimator,
    X: Any,
    y: np.ndarray,
    rows: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> BaseEstimator:
    """Fit ``estimator`` on the given rows of ``X`` and ``y`` (all rows when ``rows`` is
    None), with their sample weights; return it fitted."""
    if rows is None:
        params = {} if sample_weight is None else {"sample_weight": sample_weight}
        return estimator.fit(X, y, **params)
    params = {} if sample_weight is None else {"sample_weight": sample_weight[rows]}
    return estimator.fit(safe_indexing(X, rows), y[rows], **params)


def fit_once(
    estimator: BaseEstimator,
    X: Any,
    y: np.ndarray,
    rows: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> BaseEstimator:
    """:func:`fit_rows`, or inside :func:`shared_fits` the estimator fitted earlier there
    with the same class and parameters on the same data.

    ``estimator`` must be unfitted (a fresh clone): its pickled parameters are the key. An
    estimator whose parameters cannot be hashed is fitted without sharing.
    """
    store = _STORE.get()
    if store is None:
        return fit_rows(estimator, X, y, rows, sample_weight)
    if rows is not None and np.array_equal(rows, np.arange(len(y))):
        rows = None  # every row, in order: the same fit as the whole table
    try:
        key = joblib_hash(
            (
                estimator,
                store.table_digest(X),
                None if rows is None else np.asarray(rows),
                np.asarray(y),
                None if sample_weight is None else np.asarray(sample_weight),
            )
        )
    except Exception:  # an unpicklable parameter: fit it, do not share it
        return fit_rows(estimator, X, y, rows, sample_weight)
    fitted = store.fits.get(key)
    if fitted is None:
        store.misses += 1
        fitted = fit_rows(estimator, X, y, rows, sample_weight)
        store.fits[key] = fitted
    else:
        store.hits += 1
    return fitted
