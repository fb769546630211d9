"""ComBat: empirical-Bayes location/scale harmonisation of features by acquisition site.

ComBat (Johnson, Li & Rabinovic 2007, as in neuroCombat) learns each site's location and scale
in ``fit``, from the training rows only, optionally preserving covariates, and applies them in
``transform``.

**How the site reaches ComBat.** scikit-learn passes only ``X`` (and ``y`` at fit) through
pipelines, and ComBat needs the site at ``transform`` time too (to adjust each new patient with
their site's parameters). The site is therefore a *column of X*, named by ``ComBat(batch=...)``;
ComBat consumes it and drops it from its output. This survives ``clone``, ``cross_validate``,
``GridSearchCV``, stacking and ``predict`` without metadata routing. A fusion branch's column
selector must include the site column (:func:`radfusion.pipeline.fusion.make_branch` does it with
``harmonize="site"``); :func:`radfusion.pipeline.dataset.load_dataset` keeps it in ``X`` with
``harmonize="site"``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from radfusion.features.naming import SITE_COLUMN

from .._sklearn_compat import check_feature_names_in
from ..statistics import (
    CONFOUNDING_WARNING,
    STRONG_ASSOCIATION,
    ConfoundedSiteWarning,
    site_outcome_association,
)
from ._utils import TINY, input_feature_names

# --------------------------------------------------------------------------- ComBat


class ComBat(TransformerMixin, BaseEstimator):
    """Empirical-Bayes harmonisation of features across sites (ComBat).

    The model of Johnson et al. (2007), as implemented in neuroCombat (Fortin et al. 2017/2018)
    and used for radiomics by Orlhac et al. (2018): for feature ``g`` of patient ``j`` at site
    ``i``, ``y_ijg = α_g + x_ij β_g + γ_ig + δ_ig ε_ijg``. ``fit`` estimates, on the training
    rows only,

    1. ``α_g`` and ``β_g`` by least squares on the site indicators and the covariates; the
       pooled mean is ``α_g`` (site effects weighted by site size) and the pooled variance
       ``σ²_g`` the residual sum of squares over ``n - n_sites``, the degrees of freedom of the
       per-site variances below (neuroCombat divides by ``n``, so a single site comes out
       scaled by ``sqrt(n / (n - 1))`` instead of unchanged: the only deviation from it);
    2. on the standardised data ``z = (y - α - x β) / σ``, each site's additive ``γ̂_ig``
       (mean) and multiplicative ``δ̂²_ig`` (variance, ddof=1);
    3. per site, normal / inverse-gamma priors over features (method of moments), and the
       empirical-Bayes posteriors ``γ*``, ``δ*²`` — by the parametric iterative solution
       (``parametric=True``) or the non-parametric Monte-Carlo integration over the other
       features (``parametric=False``).

    ``transform`` maps ``y ↦ (z - γ*_i) / δ*_i · σ + α + x β``: each site's location and scale
    are moved to the pooled ones while the covariate effects are preserved.

    By default the location is *not* shrunk (``γ* = γ̂``, ``shrink_location=False``): each
    site's training mean is removed in full and only the scale gets the empirical-Bayes
    posterior. neuroCombat's shrunk location manufactures label information when the site is
    associated with the outcome (see Notes); ``shrink_location=True`` restores it.

    Parameters
    ----------
    batch : str, int or sequence of them, default="site"
        The column(s) of ``X`` that identify the site: a column name (``X`` a DataFrame) or a
        position. Several columns (e.g. one-hot dummies) are combined into one key per row.
        These columns are consumed: they are not part of the output. Values may be strings or
        numbers; a missing value is an error.
    covariates : sequence of str or int, default=None
        Columns of ``X`` whose effect on the features is preserved (e.g. age, sex, stage).
        They are passed through unchanged (not harmonised). Missing covariate values are
        replaced by the training mean. Never include the outcome: harmonising with it leaks
        the label into the features (``fit`` warns when a covariate equals ``y``).
    parametric : bool, default=True
        Parametric empirical-Bayes priors (iterative solution) or non-parametric ones.
    unseen : {"error", "pooled"}, default="error"
        A site at ``transform`` that was not in the training rows. ``"error"``: raise a
        ValueError naming it. ``"pooled"``: warn and apply no site adjustment to those rows —
        they are standardised with the pooled mean and variance and mapped straight back, so
        they leave unchanged.
    shrink_location : bool, default=False
        Use the empirical-Bayes posterior ``γ*`` of each site's mean (neuroCombat) instead of
        the site's training mean ``γ̂``. Off by default: see Notes.
    tol : float, default=1e-4
        Relative convergence tolerance of the parametric iterations (neuroCombat's ``conv``).
    max_iter : int, default=1000
        Maximum number of parametric iterations.

    Attributes
    ----------
    sites_ : list
        The training sites (sorted), one key per site (a tuple when ``batch`` has several
        columns).
    site_counts_ : ndarray of shape (n_sites,)
        Training rows per site.
    grand_mean_ : ndarray of shape (n_features_out,)
        Pooled mean ``α`` of each harmonised feature (at covariates 0).
    coef_ : ndarray of shape (n_covariates, n_features_out)
        Covariate effects ``β``.
    var_pooled_ : ndarray of shape (n_features_out,)
        Pooled residual variance ``σ²``.
    gamma_hat_, delta_hat_ : ndarray of shape (n_sites, n_features_out)
        Per-site location and scale (variance) estimates before shrinkage.
    gamma_star_, delta_star_ : ndarray of shape (n_sites, n_features_out)
        The empirical-Bayes estimates applied by ``transform``.
    n_iter_ : int
        Most parametric iterations run for a site (0 when there was nothing to iterate).
    site_outcome_association_ : float or None
        Cramér's V between site and ``y`` on the training rows (None when ``fit`` had no
        ``y``); see :func:`site_outcome_association`.
    covariate_means_ : ndarray of shape (n_covariates,)
        Training means of the covariates (imputation of their missing values).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Defined only when ``X`` has string column names.

    Notes
    -----
    - Missing feature values are allowed (estimates use the observed values; they stay
      missing in the output), so ComBat can run before imputation.
    - A feature that is constant after removing site and covariate means (zero pooled
      variance) is left unchanged. A site with a single training row gets a shrunk location
      adjustment and no scale adjustment (its variance cannot be estimated).
    - With one site, ComBat is the identity (up to floating-point error).
    - Why the location is not shrunk by default (issue 15). The empirical-Bayes step keeps
      only part (often a third) of each site's mean ``γ̂``, computed from the training rows
      themselves. A training row of site ``i`` then keeps ``(1 - w) γ̂_i`` of its own site's
      noise while a new row of that site is moved by ``-w γ̂_i``: with many features, a learner
      fitted on the training rows aligns with their own noise, so the two shifts score in
      opposite directions. When the site is associated with the outcome this is label
      information: on pure noise, a logistic regression on shrunk-ComBat features scored a
      held-out AUC of 0.24 (an RBF-SVM 0.30, a stacking meta-learner that inverts them 0.66);
      removing each site's training mean in full gave 0.49 / 0.49.
    - Harmonisation cannot separate a site that is confounded with the outcome from the
      outcome: it removes both. ``fit`` warns when the site–outcome association on the
      training rows is strong (Cramér's V ≥ :data:`STRONG_ASSOCIATION`).

    References
    ----------
    Johnson WE, Li C, Rabinovic A. Adjusting batch effects in microarray expression data using
    empirical Bayes methods. Biostatistics 2007;8:118-127.
    """

    def __init__(
        self,
        batch: str | int | Sequence[str | int] = SITE_COLUMN,
        covariates: Sequence[str | int] | None = None,
        *,
        parametric: bool = True,
        unseen: str = "error",
        shrink_location: bool = False,
        tol: float = 1e-4,
        max_iter: int = 1000,
    ):
        self.batch = batch
        self.covariates = covariates
        self.parametric = parametric
        self.unseen = unseen
        self.shrink_location = shrink_location
        self.tol = tol
        self.max_iter = max_iter

    # ----------------------------------------------------------------- input handling

    def _columns(self, spec, n_columns: int, what: str) -> list[int]:
        if spec is None:
            return []
        items = [spec] if isinstance(spec, str | Integral) else list(spec)
        names = getattr(self, "feature_names_in_", None)
        out = []
        for item in items:
            if isinstance(item, str):
                if names is None:
                    raise ValueError(
                        f"{what} column {item!r} is given by name, but X has no column names: "
                        "pass a pandas DataFrame or give the column position"
                    )
                where = np.flatnonzero(names == item)
                if not len(where):
                    raise ValueError(f"{what} column {item!r} is not a column of X")
                out.append(int(where[0]))
            elif isinstance(item, Integral) and -n_columns <= item < n_columns:
                out.append(int(item) % n_columns)
            else:
                raise ValueError(
                    f"{what} column {item!r} is not a column of X ({n_columns} columns)"
                )
        if len(set(out)) != len(out):
            raise ValueError(f"{what} columns repeat: {items}")
        return out

    def _split(self, X, *, reset: bool):
        """X → (site keys, covariates, features) as (object array, float array, float array)."""
        if not hasattr(X, "iloc"):
            X = check_array(X, dtype=None, ensure_all_finite=False, ensure_min_features=1)
        validate_data(self, X, skip_check_array=True, reset=reset)
        n_columns = X.shape[1]
        batch = self._columns(self.batch, n_columns, "batch")
        if not batch:
            raise ValueError("batch must name at least one column of X")
        covariates = self._columns(self.covariates, n_columns, "covariate")
        if set(batch) & set(covariates):
            raise ValueError("a column cannot be both a batch and a covariate column")
        features = [j for j in range(n_columns) if j not in set(batch)]
        if len(features) == len(covariates):
            raise ValueError(
                f"X has {n_columns} feature(s) (n_features = {n_columns}), none to harmonise "
                "besides the batch and covariate columns"
            )
        frame = X if hasattr(X, "iloc") else pd.DataFrame(X)
        keys = frame.iloc[:, batch]
        missing = keys.isna().any(axis=1).to_numpy()
        if missing.any():
            rows = np.flatnonzero(missing)[:10].tolist()
            raise ValueError(
                f"the site (batch) is missing in {missing.sum()} row(s), e.g. rows {rows}"
            )
        if len(batch) == 1:
            sites = keys.iloc[:, 0].to_numpy(dtype=object)
        else:
            sites = np.empty(len(keys), dtype=object)
            sites[:] = list(keys.itertuples(index=False, name=None))
        values = check_array(
            frame.iloc[:, features],
            dtype=np.float64,
            ensure_all_finite="allow-nan",
            ensure_min_samples=1,
        )
        cov_positions = [features.index(j) for j in covariates]
        harmonised = [k for k in range(len(features)) if k not in set(cov_positions)]
        return sites, values, cov_positions, harmonised

    # ----------------------------------------------------------------- fit

    def fit(self, X, y=None):
        """Estimate pooled moments, site effects and their empirical-Bayes shrinkage.

        Parameters
        ----------
        X : DataFrame or array-like of shape (n_samples, n_features_in)
            Features, the batch column(s) and the covariate columns.
        y : array-like of shape (n_samples,), default=None
            Not used for the estimates; if given, a covariate equal to (or almost perfectly
            correlated with) it triggers a UserWarning.

        Returns
        -------
        self
        """
        self._check_params()
        sites, values, cov_pos, harm = self._split(X, reset=True)
        if y is not None and cov_pos:
            self._warn_outcome_covariates(values[:, cov_pos], y)
        self.site_outcome_association_ = None
        if y is not None:
            self.site_outcome_association_ = site_outcome_association(sites, y)
            if self.site_outcome_association_ >= STRONG_ASSOCIATION:
                warnings.warn(
                    CONFOUNDING_WARNING,
                    ConfoundedSiteWarning,
                    stacklevel=2,
                )
        self.sites_ = sorted(set(sites), key=_sort_key)
        index = {site: i for i, site in enumerate(self.sites_)}
        codes = np.array([index[s] for s in sites])
        n_sites = len(self.sites_)
        self.site_counts_ = np.bincount(codes, minlength=n_sites)

        C = values[:, cov_pos]
        self.covariate_means_ = np.nanmean(C, axis=0) if cov_pos else np.zeros(0)
        C = np.where(np.isnan(C), self.covariate_means_, C)
        Y = values[:, harm]
        design = np.hstack([np.eye(n_sites)[codes], C])
        B, observed = _least_squares(design, Y)
        site_weights = np.vstack([observed[codes == i].sum(axis=0) for i in range(n_sites)])
        total = site_weights.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            self.grand_mean_ = np.where(
                total > 0, (site_weights * B[:n_sites]).sum(axis=0) / np.maximum(total, 1), 0.0
            )
            residual = Y - design @ np.nan_to_num(B)
            dof = total - (site_weights > 0).sum(axis=0)
            dof = np.where(dof > 0, dof, np.maximum(total, 1))
            var = np.where(total > 0, np.nansum(residual**2, axis=0) / dof, 0.0)
        self.coef_ = B[n_sites:]
        scale = np.sqrt(var)
        informative = scale > TINY * np.maximum(1.0, np.abs(self.grand_mean_))
        self.var_pooled_ = np.where(informative, var, 1.0)

        Z = (Y - self.grand_mean_ - C @ self.coef_) / np.sqrt(self.var_pooled_)
        self.gamma_hat_, self.delta_hat_, self.gamma_star_, self.delta_star_ = (
            np.zeros((n_sites, Y.shape[1])),
            np.ones((n_sites, Y.shape[1])),
            np.zeros((n_sites, Y.shape[1])),
            np.ones((n_sites, Y.shape[1])),
        )
        self.n_iter_ = 0
        for i in range(n_sites):
            z = Z[codes == i][:, informative]
            g_hat, d_hat, g_star, d_star, n_iter = _site_estimates(
                z, self.parametric, self.tol, self.max_iter, self.shrink_location
            )
            self.n_iter_ = max(self.n_iter_, n_iter)
            self.gamma_hat_[i, informative], self.delta_hat_[i, informative] = g_hat, d_hat
            self.gamma_star_[i, informative], self.delta_star_[i, informative] = g_star, d_star
        return self

    def _check_params(self) -> None:
        if self.unseen not in ("error", "pooled"):
            raise ValueError(f"unseen must be 'error' or 'pooled', got {self.unseen!r}")
        if not (isinstance(self.tol, Real) and self.tol > 0):
            raise ValueError(f"tol must be a positive number, got {self.tol!r}")
        if not (isinstance(self.max_iter, Integral) and self.max_iter >= 1):
            raise ValueError(f"max_iter must be a positive integer, got {self.max_iter!r}")

    def _warn_outcome_covariates(self, C: np.ndarray, y) -> None:
        all_names = input_feature_names(self)
        positions = self._columns(self.covariates, self.n_features_in_, "covariate")
        names = [str(all_names[j]) for j in positions]
        y_name = getattr(y, "name", None)
        y_codes = pd.factorize(np.asarray(y).ravel(), sort=True)[0].astype(np.float64)
        for k, name in enumerate(names):
            column = C[:, k]
            ok = ~np.isnan(column)
            same = y_name is not None and str(y_name) == str(name)
            if not same and ok.sum() > 2 and np.ptp(column[ok]) > 0 and np.ptp(y_codes[ok]) > 0:
                same = abs(np.corrcoef(column[ok], y_codes[ok])[0, 1]) > 0.99
            if same:
                warnings.warn(
                    f"ComBat covariate {name!r} is the outcome: harmonising with it leaks the "
                    "label into the features. Remove it from the covariates.",
                    UserWarning,
                    stacklevel=3,
                )

    # ----------------------------------------------------------------- transform

    def transform(self, X):
        """Harmonise ``X``: each row is adjusted with its site's estimates.

        Returns
        -------
        ndarray of shape (n_samples, n_features_out)
            The input columns except the batch column(s), in order; covariates unchanged.
        """
        check_is_fitted(self)
        sites, values, cov_pos, harm = self._split(X, reset=False)
        index = {site: i for i, site in enumerate(self.sites_)}
        codes = np.array([index.get(s, -1) for s in sites], dtype=int)
        unknown = sorted({s for s, c in zip(sites, codes, strict=True) if c < 0}, key=_sort_key)
        if unknown:
            listed = ", ".join(map(repr, unknown[:10]))
            if self.unseen == "error":
                raise ValueError(
                    f"ComBat was not fitted on site(s) {listed} (training sites: "
                    f"{', '.join(map(repr, self.sites_[:10]))}). Use unseen='pooled' to leave "
                    "rows from new sites without site adjustment."
                )
            warnings.warn(
                f"ComBat: site(s) {listed} not seen in fit; their rows get no site adjustment "
                "(pooled mean and variance)",
                UserWarning,
                stacklevel=2,
            )
        C = values[:, cov_pos]
        C = np.where(np.isnan(C), self.covariate_means_, C)
        Y = values[:, harm]
        mean = self.grand_mean_ + C @ self.coef_
        sd = np.sqrt(self.var_pooled_)
        seen = codes >= 0
        gamma = np.zeros_like(Y)
        delta = np.ones_like(Y)
        gamma[seen] = self.gamma_star_[codes[seen]]
        delta[seen] = self.delta_star_[codes[seen]]
        out = values.copy()
        out[:, harm] = ((Y - mean) / sd - gamma) / np.sqrt(delta) * sd + mean
        out[:, harm] = np.where(seen[:, None], out[:, harm], Y)  # exact identity when unseen
        return out

    def get_feature_names_out(self, input_features=None):
        """The input column names without the batch column(s)."""
        check_is_fitted(self)
        names = check_feature_names_in(self, input_features)
        batch = set(self._columns(self.batch, self.n_features_in_, "batch"))
        return np.asarray([n for j, n in enumerate(names) if j not in batch], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True  # the site column may hold text
        return tags


def _sort_key(value) -> tuple:
    return (str(type(value)), str(value))


def _least_squares(design: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature OLS of ``Y`` on ``design`` using each feature's observed rows.

    Features are grouped by their missing-value pattern, so the usual case (no missing values,
    or whole rows missing for a patient without the modality) costs one ``lstsq`` per pattern.
    Returns the coefficients (n_design, n_features) and the observed-value mask.
    """
    observed = ~np.isnan(Y)
    B = np.zeros((design.shape[1], Y.shape[1]))
    patterns, inverse = np.unique(observed.T, axis=0, return_inverse=True)
    for k, rows in enumerate(patterns):
        cols = np.flatnonzero(inverse.ravel() == k)
        if rows.any():
            B[:, cols] = np.linalg.lstsq(design[rows], Y[np.ix_(rows, cols)], rcond=None)[0]
    return B, observed


def _site_estimates(
    z: np.ndarray, parametric: bool, tol: float, max_iter: int, shrink_location: bool = True
):
    """γ̂, δ̂², γ*, δ*² of one site from its standardised rows ``z`` (n_i × p, NaN allowed);
    ``γ* = γ̂`` unless ``shrink_location``."""
    n = (~np.isnan(z)).sum(axis=0).astype(np.float64)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        g_hat = np.nanmean(z, axis=0)
        d_hat = np.nanvar(z, axis=0, ddof=1) if len(z) > 1 else np.full(z.shape[1], np.nan)
    s1 = np.nansum(z, axis=0)
    s2 = np.nansum(z**2, axis=0)
    g_ok = n > 0
    d_ok = g_ok & np.isfinite(d_hat) & (d_hat > TINY)
    g_star = np.where(g_ok, g_hat, 0.0)
    d_star = np.where(d_ok, d_hat, 1.0)
    if not g_ok.any():
        return np.where(g_ok, g_hat, 0.0), np.where(d_ok, d_hat, 1.0), g_star, d_star, 0

    if not parametric:
        if d_ok.sum() >= 2:
            g_star, d_star = _nonparametric(n, s1, s2, g_hat, d_hat, g_ok, d_ok, g_star, d_star)
        if not shrink_location:
            g_star = np.where(g_ok, g_hat, 0.0)
        return np.where(g_ok, g_hat, 0.0), np.where(d_ok, d_hat, 1.0), g_star, d_star, 0

    g_bar = g_hat[g_ok].mean()
    tau2 = g_hat[g_ok].var(ddof=1) if g_ok.sum() > 1 else np.inf
    lam = theta = np.nan
    if d_ok.sum() > 1:
        m, v = d_hat[d_ok].mean(), d_hat[d_ok].var(ddof=1)
        if v > 0:
            lam, theta = (2 * v + m**2) / v, (m * v + m**3) / v

    def shrink_gamma(d):
        if not np.isfinite(tau2) or not shrink_location:
            return g_hat
        return (n * tau2 * g_hat + d * g_bar) / (n * tau2 + d)

    n_iter = 0
    if np.isfinite(lam):
        g_old, d_old = g_hat.copy(), np.where(d_ok, d_hat, 1.0)
        for n_iter in range(1, max_iter + 1):  # noqa: B007 (n_iter is reported)
            g_new = shrink_gamma(d_old)
            sum2 = s2 - 2 * g_new * s1 + n * g_new**2
            d_new = np.where(d_ok, (theta + 0.5 * sum2) / (n / 2 + lam - 1), 1.0)
            change = max(
                np.max(np.abs(g_new - g_old)[g_ok] / np.maximum(np.abs(g_old[g_ok]), TINY)),
                np.max(np.abs(d_new - d_old)[d_ok] / d_old[d_ok]),
            )
            g_old, d_old = g_new, d_new
            if change < tol:
                break
        g_star, d_star = g_old, d_old
    else:  # no usable scale prior (e.g. a single training row): shrink the location only
        g_star = shrink_gamma(d_star)
    g_star = np.where(g_ok, g_star, 0.0)
    d_star = np.where(d_ok, d_star, 1.0)
    return np.where(g_ok, g_hat, 0.0), np.where(d_ok, d_hat, 1.0), g_star, d_star, n_iter


def _nonparametric(n, s1, s2, g_hat, d_hat, g_ok, d_ok, g_star, d_star, chunk: int = 512):
    """neuroCombat's ``int_eprior``: posterior means under the empirical distribution of the
    other features' (γ̂, δ̂²), with log-likelihoods (no underflow)."""
    donors = np.flatnonzero(d_ok)
    gd, dd = g_hat[donors], d_hat[donors]
    targets = np.flatnonzero(g_ok)
    g_star, d_star = g_star.copy(), d_star.copy()
    for start in range(0, len(targets), chunk):
        t = targets[start : start + chunk]
        sum2 = s2[t, None] - 2 * s1[t, None] * gd + n[t, None] * gd**2
        loglik = -0.5 * n[t, None] * np.log(2 * np.pi * dd) - sum2 / (2 * dd)
        loglik[t[:, None] == donors[None, :]] = -np.inf  # leave the feature itself out
        loglik -= loglik.max(axis=1, keepdims=True)
        w = np.exp(loglik)
        w /= w.sum(axis=1, keepdims=True)
        g_star[t] = w @ gd
        d_star[t] = np.where(d_ok[t], w @ dd, 1.0)
    return g_star, d_star
