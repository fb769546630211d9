"""Filters: drop (near-)constant, correlated or non-reproducible features."""

from __future__ import annotations

import warnings
from numbers import Real
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.base import BaseEstimator
from sklearn.feature_selection import (
    SelectorMixin,
)
from sklearn.utils.validation import check_is_fitted, validate_data

from radfusion.features.naming import SEPARATOR

from ..columns import pyradiomics_prefix
from ._utils import input_feature_names, unit_columns


class VarianceFilter(SelectorMixin, BaseEstimator):
    """Drop features whose training variance is at or below ``threshold``.

    Like :class:`~sklearn.feature_selection.VarianceThreshold` (with ``threshold=0`` a feature
    is constant when its peak-to-peak range is 0, which is robust to rounding), with two
    differences: missing values are ignored (NaN-aware variance; an all-missing feature is
    dropped), and when *no* feature passes, all are kept instead of raising — a branch whose
    modality is missing in a whole training fold (imputed to a constant) then predicts the base
    rate instead of aborting the CV run.

    Parameters
    ----------
    threshold : float, default=0.0
        Features with a variance at or below it are dropped.

    Attributes
    ----------
    variances_ : ndarray of shape (n_features,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Defined only when ``X`` has string column names.
    """

    def __init__(self, threshold: float = 0.0):
        self.threshold = threshold

    def fit(self, X, y=None):
        """Compute the feature variances on ``X``."""
        if not (isinstance(self.threshold, Real) and self.threshold >= 0):
            raise ValueError(f"threshold must be a non-negative number, got {self.threshold!r}")
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            variances = np.nanvar(X, axis=0)
            if self.threshold == 0:
                peak = np.nanmax(X, axis=0) - np.nanmin(X, axis=0) if len(X) else variances
                variances = np.where(peak == 0, 0.0, variances)
        self.variances_ = variances
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        keep = self.variances_ > self.threshold
        return keep if keep.any() else np.ones_like(keep)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class CorrelationFilter(SelectorMixin, BaseEstimator):
    """Of every set of features correlated above ``threshold``, keep one representative.

    Deterministic greedy rule: features are visited in column order, and a feature is kept
    unless its absolute correlation with an already kept feature exceeds ``threshold``. The
    earlier column therefore represents its near-duplicates. (Radiomics features have
    incomparable units, so "keep the larger variance" would be arbitrary; order the columns to
    express a preference, e.g. ``original_*`` before filtered images.)

    Parameters
    ----------
    threshold : float, default=0.9
        Absolute correlation in [0, 1] above which a feature is redundant.
    method : {"pearson", "spearman"}, default="pearson"
        Spearman is Pearson on the column ranks (ties averaged).

    Attributes
    ----------
    support_ : ndarray of bool of shape (n_features,)
    representative_ : ndarray of int of shape (n_features,)
        For each input feature, the index of the kept feature that represents it (itself when
        kept).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Defined only when ``X`` has string column names.

    Notes
    -----
    Constant features correlate with nothing and are all kept (see :class:`VarianceFilter`).
    Memory is one ``n_features × n_features`` matrix.
    """

    def __init__(self, threshold: float = 0.9, method: str = "pearson"):
        self.threshold = threshold
        self.method = method

    def fit(self, X, y=None):
        """Find the redundant features of ``X``."""
        if not (isinstance(self.threshold, Real) and 0 <= self.threshold <= 1):
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold!r}")
        if self.method not in ("pearson", "spearman"):
            raise ValueError(f"method must be 'pearson' or 'spearman', got {self.method!r}")
        X = validate_data(self, X, dtype=np.float64)
        R = np.abs(_correlation(X, self.method))
        p = X.shape[1]
        self.support_ = np.zeros(p, dtype=bool)
        self.representative_ = np.arange(p)
        for j in range(p):
            kept = np.flatnonzero(self.support_[:j])
            if len(kept):
                best = kept[np.argmax(R[j, kept])]
                if R[j, best] > self.threshold:
                    self.representative_[j] = best
                    continue
            self.support_[j] = True
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_


def _correlation(X: np.ndarray, method: str = "pearson") -> np.ndarray:
    """Correlation matrix of the columns (0 for constant columns)."""
    if method == "spearman":
        X = stats.rankdata(X, axis=0)
    Z = unit_columns(X)
    return Z.T @ Z


def pyradiomics_name(column: str) -> str:
    """The pyradiomics feature name inside a column name.

    ``CT__tumor__original_glcm_Contrast`` and ``CT_original_glcm_Contrast`` (a block prefix)
    both give ``original_glcm_Contrast``; any other name is returned unchanged.

    >>> pyradiomics_name("CT__tumor__original_glcm_Contrast")
    'original_glcm_Contrast'
    >>> pyradiomics_name("Portal_vein_wavelet-LLH_glcm_Idm")
    'wavelet-LLH_glcm_Idm'
    """
    if SEPARATOR in column:
        return column.rsplit(SEPARATOR, 1)[-1]
    prefix = pyradiomics_prefix(column)
    return column[len(prefix) + 1 :] if prefix else column


class RobustnessFilter(SelectorMixin, BaseEstimator):
    """Keep features whose reproducibility (ICC) reaches ``threshold``.

    The ICC table (e.g. from ``radfusion robustness``: test-retest, perturbed or re-segmented
    masks) has columns ``feature`` and ``icc``. A table feature names either a full column
    (``CT__tumor__original_glcm_Contrast``) or just the pyradiomics feature
    (``original_glcm_Contrast``, which then applies to that feature of every modality and
    mask). A column is looked up by its full name first, then by its pyradiomics name (see
    :func:`pyradiomics_name`). If a name appears several times in the table, its lowest ICC
    counts.

    The table is fixed data (not learned from ``y``), so this filter cannot leak; it is a
    transformer so that it travels with the model.

    Parameters
    ----------
    icc_table : str, Path or DataFrame
        CSV (or Parquet) file or DataFrame with columns ``feature`` and ``icc``.
    threshold : float, default=0.75
        Features with ``icc >= threshold`` are kept (0.75: "good" reliability, Koo & Li 2016).
    missing : {"keep", "drop"}, default="keep"
        Columns not in the table (clinical variables, shape features not studied): kept, since
        the table says nothing about them, or dropped.

    Attributes
    ----------
    icc_ : ndarray of shape (n_features,)
        The ICC of each input column (NaN when not in the table).
    support_ : ndarray of bool of shape (n_features,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Defined only when ``X`` has string column names; otherwise columns are named
        ``x0, x1, …`` for the lookup.
    """

    def __init__(self, icc_table, threshold: float = 0.75, missing: str = "keep"):
        self.icc_table = icc_table
        self.threshold = threshold
        self.missing = missing

    def fit(self, X, y=None):
        """Look up the ICC of every column of ``X``."""
        if self.missing not in ("keep", "drop"):
            raise ValueError(f"missing must be 'keep' or 'drop', got {self.missing!r}")
        if not isinstance(self.threshold, Real):
            raise ValueError(f"threshold must be a number, got {self.threshold!r}")
        validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan")
        table = _read_icc_table(self.icc_table)
        names = input_feature_names(self)
        self.icc_ = np.array(
            [table.get(str(n), table.get(pyradiomics_name(str(n)), np.nan)) for n in names],
            dtype=np.float64,
        )
        known = ~np.isnan(self.icc_)
        self.support_ = np.where(known, self.icc_ >= self.threshold, self.missing == "keep")
        if not self.support_.any():
            raise ValueError(
                f"RobustnessFilter keeps no feature: none of the {len(names)} columns has an "
                f"ICC >= {self.threshold}" + ("" if known.any() else " (none is in the table)")
            )
        return self

    def _get_support_mask(self):
        check_is_fitted(self)
        return self.support_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


def _read_icc_table(source) -> dict[str, float]:
    if isinstance(source, pd.DataFrame):
        table = source
    elif isinstance(source, str | Path):
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"ICC table not found: {path}")
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    else:
        raise TypeError(f"icc_table must be a path or a DataFrame, got {type(source).__name__}")
    missing = {"feature", "icc"} - set(table.columns)
    if missing:
        raise ValueError(f"ICC table needs columns 'feature' and 'icc'; missing {sorted(missing)}")
    icc = pd.to_numeric(table["icc"], errors="coerce")
    lowest = icc.groupby(table["feature"].astype(str)).min()
    return {name: float(v) for name, v in lowest.items() if np.isfinite(v)}
