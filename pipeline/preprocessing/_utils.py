"""Small numerical helpers shared by the preprocessing transformers."""

from __future__ import annotations

import numpy as np

TINY = 1e-12


def input_feature_names(estimator) -> np.ndarray:
    """The names seen at fit (``feature_names_in_``), or ``x0, x1, ...`` for an array."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        names = np.asarray([f"x{i}" for i in range(estimator.n_features_in_)], dtype=object)
    return names


def unit_columns(X: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit norm (constant columns become 0)."""
    Z = X - X.mean(axis=0)
    norm = np.sqrt((Z**2).sum(axis=0))
    return np.divide(Z, norm, out=np.zeros_like(Z), where=norm > TINY)
