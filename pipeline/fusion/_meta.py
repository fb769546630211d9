"""The non-negative logistic meta-learner of stacking (radfusion <= 0.2's default)."""

from __future__ import annotations

import warnings
from numbers import Real

import numpy as np
from scipy import special
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import check_is_fitted, validate_data

from .._sklearn_compat import check_sample_weight

__all__ = ["LOGIT_CLIP", "NonNegativeLogisticRegression"]

LOGIT_CLIP = 1e-6
"""Probabilities are clipped to [LOGIT_CLIP, 1 - LOGIT_CLIP] before a logit or a log."""


class NonNegativeLogisticRegression(ClassifierMixin, BaseEstimator):
    """Logistic regression with non-negative coefficients, the stacking meta-learner.

    Models ``P(y=1) = expit(intercept + sum_j w_j logit(p_j))`` with ``w_j >= 0``, where
    ``p_j`` are the base models' out-of-fold probabilities of the positive class (Breiman's stacked
    regression, with a logistic link). It minimises the sample-weighted log-loss plus
    ``||w||² / (2 C)`` (intercept not penalised) with L-BFGS-B under the bounds ``w >= 0``.

    Why constrained: with weak or no signal, out-of-fold predictions are *anti*-correlated with
    the labels (each held-out sample is missing from the model that scores it). An unconstrained
    meta-learner learns negative weights and turns this CV artefact into a spurious AUC above 0.5.
    With non-negative weights it can only keep or ignore a base model; if it ignores all of them
    it predicts the base rate.

    Parameters
    ----------
    C : float, default=1.0
        Inverse strength of the L2 penalty on the weights (as in ``LogisticRegression``).
    logit : bool, default=True
        Inputs are probabilities in [0, 1] (clipped to [1e-6, 1 - 1e-6]) and enter through their
        logit. If False, inputs are real-valued scores (e.g. decision functions) used as they are.
    tol : float, default=1e-6
        Tolerance on the projected gradient (L-BFGS-B ``gtol``).
    max_iter : int, default=1000
        Maximum number of L-BFGS-B iterations.
    n_free : int, default=0
        The last ``n_free`` columns are covariates (e.g. the missingness indicators of
        :class:`AvailableStackingClassifier`): they enter as they are, without the logit, and
        their weights may take either sign (still L2-penalised).

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
        Weight of each base model (non-negative), then of each free covariate.
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Defined only when X has string column names.
    n_iter_ : int
        Iterations run by the optimiser.
    """

    def __init__(self, C=1.0, *, logit=True, tol=1e-6, max_iter=1000, n_free=0):
        self.C = C
        self.logit = logit
        self.tol = tol
        self.max_iter = max_iter
        self.n_free = n_free

    def fit(self, X, y, sample_weight=None):
        """Fit the weights and intercept on (out-of-fold) probabilities ``X`` and labels ``y``."""
        if not (isinstance(self.C, Real) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise ValueError(
                f"Only binary classification is supported. The type of the target is {y_type}."
            )
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                f"{type(self).__name__} needs 2 classes in y; got 1 class: {self.classes_[0]!r}"
            )
        if not (isinstance(self.n_free, (int, np.integer)) and 0 <= self.n_free <= X.shape[1]):
            raise ValueError(
                f"n_free must be an integer in [0, {X.shape[1]}] (the number of columns), "
                f"got {self.n_free!r}"
            )
        Z = self._inputs(X)
        sw = check_sample_weight(sample_weight, X, dtype=np.float64)
        y01 = y01.astype(np.float64)
        n_features = Z.shape[1]

        def loss_grad(theta):
            b, w = theta[0], theta[1:]
            z = b + Z @ w
            loss = sw @ (np.logaddexp(0.0, z) - y01 * z) + w @ w / (2.0 * self.C)
            r = sw * (special.expit(z) - y01)
            return loss, np.concatenate(([r.sum()], Z.T @ r + w / self.C))

        rate = np.clip(
            np.average(y01, weights=sw) if sw.sum() > 0 else 0.5, LOGIT_CLIP, 1 - LOGIT_CLIP
        )
        theta0 = np.concatenate(([special.logit(rate)], np.zeros(n_features)))
        result = minimize(
            loss_grad,
            theta0,
            jac=True,
            method="L-BFGS-B",
            bounds=[(None, None)]
            + [(0.0, None)] * (n_features - self.n_free)
            + [(None, None)] * self.n_free,
            options={"maxiter": self.max_iter, "gtol": self.tol, "ftol": 1e3 * np.finfo(float).eps},
        )
        if not result.success:
            warnings.warn(
                f"{type(self).__name__} did not converge: {result.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.intercept_ = result.x[:1].copy()
        self.coef_ = result.x[1:].reshape(1, -1)
        self.n_iter_ = int(result.nit)
        return self

    def decision_function(self, X):
        """Log-odds of the positive class ``classes_[1]``."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self._inputs(X) @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X):
        """Probabilities of ``classes_``, shape (n_samples, 2)."""
        p = special.expit(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X):
        """The more probable class."""
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(int)]

    def _inputs(self, X):
        if not self.logit:
            return X
        split = X.shape[1] - self.n_free
        P, free = X[:, :split], X[:, split:]
        if P.size and (P.min() < 0 or P.max() > 1):
            raise ValueError(
                f"{type(self).__name__}(logit=True) expects probabilities in [0, 1] (e.g. "
                f"stacked predict_proba outputs); got values in [{P.min():.3g}, {P.max():.3g}]. "
                "Use logit=False for real-valued scores."
            )
        Z = special.logit(np.clip(P, LOGIT_CLIP, 1.0 - LOGIT_CLIP))
        return np.hstack([Z, free]) if self.n_free else Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
