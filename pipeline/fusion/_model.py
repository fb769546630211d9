"""Fusion models over column groups: single branch, early, late and stacked fusion.

A *branch* is a :class:`~sklearn.pipeline.Pipeline` that sees the columns of one group (or of
several, for early fusion) of a pandas DataFrame: select → median-impute → drop constant
features → standardise → base learner. Every step is fitted on the data passed to ``fit`` only,
so the models can go straight into ``cross_validate`` without leakage.

- ``single``: one group, one branch.
- ``early``: one branch on the columns of all groups together.
- ``late``: one branch per group, probabilities averaged (soft voting).
- ``stacking``: one branch per group × learner, combined by the ``combiner`` (default
  ``"platt"`` for classes: their mean, Platt-scaled; ``"mean"`` for regression, a plain
  average). A fitted combiner (``"platt"``, ``"logistic"``: :class:`NonNegativeLogisticRegression`,
  ...) is fitted on their out-of-fold probabilities from an inner stratified CV, then the
  branches are refitted on all the training data.

Branch (estimator) names are ``"{group}:{learner}"`` with the column separator ``__`` written as
``/`` (scikit-learn reserves ``__`` for nested parameters), e.g. ``"CT/tumor:lr"``; nested
parameters read ``"CT/tumor:lr__logisticregression__C"``. See :func:`branch_name`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np
from scipy import sparse, special
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    StackingClassifier,
    StackingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold, check_cv
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import Bunch
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import CLINICAL_GROUP

from .._sklearn_compat import StrOptions, check_sample_weight, num_samples, safe_indexing
from ..learners import LEARNER_NAMES, LEARNERS
from ..splits import AdaptiveStratifiedKFold
from ..targets import TASKS
from ._branch import branch_name, make_branch
from ._combiners import COMBINERS, CombinerClassifier, CombinerRegressor, resolve_combiner
from ._shared_fits import fit_once
from ._shared_space import SharedSpaceClassifier, SharedSpaceRegressor
from ._tuning import tuned_branch

STRATEGIES = ("single", "early", "late", "stacking", "shared")
#: Accepted ``harmonize_unseen`` and ``select_method`` values (checked when a model is built).
HARMONIZE_UNSEEN = ("error", "pooled")
SELECT_METHODS = ("anova", "mrmr")
#: Accepted ``calibration`` values (:func:`build_model`).
CALIBRATIONS = ("sigmoid", "isotonic")
#: Default inner folds of stacking's out-of-fold predictions (and of ``calibration``): 3,
#: the folds the tuning uses, chosen with the ``platt`` default by the third rule of
#: ``benchmarks/calibrated_mean.py`` (5 inner folds cost a 400 x 2,000 ``cv`` 459 s).
STACKING_CV = 3
#: Options the shared-space model cannot honour, and why (it refuses them).
SHARED_REFUSES = {
    "tune": "shared-space fusion has no learner hyperparameters to search (its ridge "
    "penalties are already chosen by leave-one-out)",
    "resample": "shared-space fusion does not oversample (SMOTE rows would enter the PLS "
    "that defines the shared space)",
}
#: The strategies that fuse groups; every other model name is a single group.
FUSED = STRATEGIES[1:]
"""Fusion strategies accepted by :func:`build_model`."""

_EPS = 1e-6  # probabilities are clipped to [_EPS, 1 - _EPS] before the logit


# --------------------------------------------------------------------------- meta-learner


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
    feature_names_in_ : ndarray of shape (n_features_in_,)
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

        rate = np.clip(np.average(y01, weights=sw) if sw.sum() > 0 else 0.5, _EPS, 1 - _EPS)
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
        Z = special.logit(np.clip(P, _EPS, 1.0 - _EPS))
        return np.hstack([Z, free]) if self.n_free else Z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


# --------------------------------------------------------------------------- missing modalities


class _Availability:
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


def _branch_output(estimator, X, method: str) -> np.ndarray:
    """A branch's stacked output, shape (n, c): P(class 1) of a binary classifier, every
    class's probability of a multiclass one, the prediction of a regressor."""
    if method == "predict":
        return np.asarray(estimator.predict(X), dtype=np.float64).reshape(-1, 1)
    proba = np.asarray(estimator.predict_proba(X), dtype=np.float64)
    return proba[:, 1:] if proba.shape[1] == 2 else proba


def _fit_predict_rows(estimator, X, y, train, test, sample_weight, method="predict_proba"):
    """Fit on ``train`` rows, return the output of ``test`` rows (out-of-fold predictions)."""
    estimator = fit_once(estimator, X, y, train, sample_weight)
    if len(test) == 0:
        return None
    return _branch_output(estimator, safe_indexing(X, test), method)


def _chosen_setting(fitted: BaseEstimator, branch: BaseEstimator) -> BaseEstimator:
    """What a branch's inner (out-of-fold) fits use: for a fitted search (a tuned branch),
    its best setting, unfitted, so that the search runs once per training set rather than in
    every inner fold; otherwise the branch itself."""
    best = getattr(fitted, "best_estimator_", None)
    return branch if best is None else clone(best)


def _trainable(
    rows: np.ndarray, present: np.ndarray, y: np.ndarray, n_classes: int | None = 2
) -> np.ndarray | None:
    """The rows having the group, or None when they do not hold every class (classification,
    ``n_classes``) or two distinct values (regression, ``n_classes=None``)."""
    rows = rows[present[rows]]
    if n_classes is None:
        return rows if len(rows) >= 2 and np.ptp(y[rows]) > 0 else None
    return rows if len(np.unique(y[rows])) == n_classes else None


def _rows_or_all(rows: np.ndarray, n: int) -> np.ndarray | None:
    return None if len(rows) == n else rows


class _AvailableVoting(_Availability):
    """Fit and average shared by the voting classifier and regressor with missing modalities."""

    def _fit_branches(self, X, y, sw, n_classes: int | None):
        """Fit each kept branch on the rows having its group (``y`` encoded; ``n_classes``
        None for regression); set the fitted attributes."""
        names, estimators = self._validate_estimators()
        if self.weights is not None and len(self.weights) != len(self.estimators):
            raise ValueError(
                f"got {len(self.weights)} weights for {len(self.estimators)} estimators"
            )
        kept = [(name, est) for name, est in zip(names, estimators, strict=True) if est != "drop"]
        self.branch_groups_ = self._branch_groups([name for name, _ in kept])
        present = self._presence(X)
        everyone = np.arange(len(y))
        train = [_trainable(everyone, present[:, g], y, n_classes) for g in range(present.shape[1])]
        self.usable_ = np.array([rows is not None for rows in train], dtype=bool)
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_once)(
                clone(est),
                X,
                y,
                None if g < 0 or train[g] is None else _rows_or_all(train[g], len(y)),
                sw,
            )
            for (_, est), g in zip(kept, self.branch_groups_, strict=True)
        )
        _set_named_estimators(self)
        return self

    def _vote_weights(self, n_branches: int) -> np.ndarray:
        """Each kept branch's voting weight (ones without ``weights``)."""
        if self._weights_not_none is None:
            return np.ones(n_branches)
        return np.asarray(self._weights_not_none, dtype=np.float64)

    def _available_mean(self, outputs: np.ndarray, X, fallback) -> np.ndarray:
        """Weighted mean over axis 0 (branches) of ``outputs`` (n_branches, n_samples, ...)
        over the branches each row has; ``fallback`` for rows with none."""
        mask = self._branch_presence(X).T.astype(np.float64)
        weights = self._vote_weights(len(outputs))
        mask = (mask * weights[:, None]).reshape(mask.shape + (1,) * (outputs.ndim - 2))
        total = mask.sum(axis=0)
        mean = (outputs * mask).sum(axis=0) / np.where(total > 0, total, 1.0)
        mean[total.reshape(len(total), -1)[:, 0] == 0] = fallback
        return mean


def _set_named_estimators(ensemble) -> None:
    """``named_estimators_`` (dropped ones kept as "drop") and ``feature_names_in_`` of a
    fitted ensemble whose ``estimators_`` are its kept branches, in order."""
    ensemble.named_estimators_ = Bunch()
    fitted = iter(ensemble.estimators_)
    for name, est in ensemble.estimators:
        ensemble.named_estimators_[name] = est if est == "drop" else next(fitted)
    if hasattr(ensemble.estimators_[0], "feature_names_in_"):
        ensemble.feature_names_in_ = ensemble.estimators_[0].feature_names_in_


class AvailableVotingClassifier(_AvailableVoting, VotingClassifier):
    """Soft vote over the branches each patient has (late fusion with missing modalities).

    Each branch is fitted only on the training rows where its group is present; a patient's
    probability is the (weighted) mean over the branches whose group it has. A patient with no
    group gets the training prevalence ``class_prior_``. With every group present everywhere,
    this is exactly :class:`~sklearn.ensemble.VotingClassifier` with ``voting="soft"``.

    Parameters
    ----------
    estimators : list of (str, estimator)
        Branches named ``branch_name(group, learner)`` (see :func:`branch_name`).
    groups : dict of str to list of str, optional
        Group name → its columns: decides which rows have which group. None: every branch is
        always present (plain soft voting).
    voting : {"soft"}, default="soft"
        Only soft voting is supported.
    pool : {"mean", "evidence"}, default="mean"
        ``"mean"``: the mean probability over the branches a row has (soft voting).
        ``"evidence"``: the mean within each group, then the groups' evidence added: ``log
        p_k = log prior_k + sum_g (log p_gk - log prior_k)`` over the groups a row has,
        normalised (the naive-Bayes pool of groups that are independent given the class; a
        row's absent group adds nothing). With one group, or ``groups=None``, both are the
        same. Not a stacking combiner: radiomics groups are not independent, and the pool is
        over-confident (calibration slope 0.28-0.83 where the mean's is 0.86-2.7,
        ``benchmarks/evidence_pool.py``); kept to reproduce that finding.
    weights, n_jobs, flatten_transform, verbose
        As in :class:`~sklearn.ensemble.VotingClassifier`.

    Attributes
    ----------
    estimators_, named_estimators_, le_, classes_
        As in :class:`~sklearn.ensemble.VotingClassifier`.
    branch_groups_ : ndarray of shape (n_branches,)
        Index of each fitted branch's group in ``groups``.
    usable_ : ndarray of shape (n_groups,) of bool
        Groups whose training rows held both classes. An unusable group's branch is fitted on
        all rows (imputed, the historical behaviour) but never counted as present.
    class_prior_ : ndarray of shape (n_classes,)
        Training class frequencies, the prediction for a patient without any usable group.
    """

    _parameter_constraints: dict = {
        **VotingClassifier._parameter_constraints,
        "groups": [dict, None],
        "voting": [StrOptions({"soft"})],
        "pool": [StrOptions({"mean", "evidence"})],
    }

    def __init__(
        self,
        estimators,
        *,
        groups=None,
        voting="soft",
        pool="mean",
        weights=None,
        n_jobs=None,
        flatten_transform=True,
        verbose=False,
    ):
        super().__init__(
            estimators,
            voting=voting,
            weights=weights,
            n_jobs=n_jobs,
            flatten_transform=flatten_transform,
            verbose=verbose,
        )
        self.groups = groups
        self.pool = pool

    def fit(self, X, y, sample_weight=None):
        """Fit each branch on the rows having its group."""
        self._validate_params()
        X, y = self._fit_inputs(X, y, regression=False)
        check_classification_targets(y)
        self.le_ = LabelEncoder().fit(y)
        self.classes_ = self.le_.classes_
        y = self.le_.transform(y)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.class_prior_ = np.bincount(y, weights=sw, minlength=len(self.classes_))
        self.class_prior_ = self.class_prior_ / self.class_prior_.sum()
        return self._fit_branches(X, y, sw, len(self.classes_))

    def predict_proba(self, X):
        """Class probabilities pooled (``pool``) over the branches each row has; the training
        prevalence for a row without any."""
        check_is_fitted(self)
        X = self._table(X)
        probas = self._collect_probas(X)  # (n_branches, n_samples, n_classes)
        if self.pool == "mean":
            return self._available_mean(probas, X, self.class_prior_)
        return self._evidence(probas, X)

    def _evidence(self, probas: np.ndarray, X) -> np.ndarray:
        """``pool="evidence"``: each group's mean probability, its log-ratio to the prior
        summed over the groups a row has, normalised."""
        presence = self._branch_presence(X)  # (n_samples, n_branches)
        weights = self._vote_weights(len(probas))
        log_prior = np.log(self.class_prior_)
        logits = np.broadcast_to(log_prior, probas.shape[1:]).copy()
        for group in np.unique(self.branch_groups_):
            members = self.branch_groups_ == group
            mask = presence[:, members] * weights[members]  # (n_samples, members)
            total = mask.sum(axis=1)
            has = total > 0
            mean = np.einsum("nb,bnk->nk", mask, probas[members])[has] / total[has, None]
            logits[has] += np.log(np.clip(mean, _EPS, None)) - log_prior
        logits -= logits.max(axis=1, keepdims=True)
        proba = np.exp(logits)
        return proba / proba.sum(axis=1, keepdims=True)


class AvailableVotingRegressor(_AvailableVoting, VotingRegressor):
    """Mean prediction over the branches each patient has (late fusion of regressors).

    As :class:`AvailableVotingClassifier` for continuous targets: each branch is fitted on the
    training rows having its group (a group whose rows hold fewer than two distinct values is
    fitted on all rows, imputed, and never counted as present); a patient's prediction is the
    (weighted) mean of the branches it has, the training mean ``y_mean_`` when none.
    """

    _parameter_constraints: dict = {
        **VotingRegressor._parameter_constraints,
        "groups": [dict, None],
    }

    def __init__(self, estimators, *, groups=None, weights=None, n_jobs=None, verbose=False):
        super().__init__(estimators, weights=weights, n_jobs=n_jobs, verbose=verbose)
        self.groups = groups

    def fit(self, X, y, sample_weight=None):
        """Fit each branch on the rows having its group."""
        self._validate_params()
        X, y = self._fit_inputs(X, y, regression=True)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.y_mean_ = float(np.average(y, weights=sw))
        return self._fit_branches(X, y, sw, None)

    def predict(self, X):
        """Weighted mean prediction over the branches each row has; the training mean if none."""
        check_is_fitted(self)
        X = self._table(X)
        return self._available_mean(self._predict(X).T, X, self.y_mean_)  # (n_branches, n)


class _AvailableStacking(_Availability):
    """The fit and transform shared by stacking classifiers and regressors with missing
    modalities (see :class:`AvailableStackingClassifier`)."""

    def _fit_stack(self, X, y, sw, n_classes: int | None):
        """Fit branches and meta-learner; ``y`` encoded, ``n_classes`` None for regression."""
        names, clfs = self._validate_estimators()
        kept = [(name, clf) for name, clf in zip(names, clfs, strict=True) if clf != "drop"]
        method = "predict" if n_classes is None else "predict_proba"
        self.stack_method_ = [method] * len(kept)
        self.branch_groups_ = self._branch_groups([name for name, _ in kept])
        present = np.column_stack([self._presence(X), np.ones((len(y), 1), dtype=bool)])
        n, n_groups = len(y), present.shape[1] - 1

        cv = check_cv(self.cv, y=y, classifier=n_classes is not None)
        if hasattr(cv, "random_state") and cv.random_state is None:
            cv.random_state = np.random.RandomState()
        splits = [(np.arange(n), None)] + list(cv.split(X, y))
        # per split and group (last column: always present): training rows, scored test rows
        train = [
            [_trainable(rows, present[:, g], y, n_classes) for g in range(n_groups + 1)]
            for rows, _ in splits
        ]
        # First every branch on all its training rows (a tuned branch runs its search here),
        # then the inner folds: a tuned branch reuses its search's chosen setting there
        # instead of searching again in every inner fold.
        self.estimators_ = Parallel(n_jobs=self.n_jobs)(
            delayed(fit_once)(
                clone(clf),
                X,
                y,
                *self._split_rows(train[0][g], splits[0], present[:, g], n),
                sw,
            )
            for (_, clf), g in zip(kept, self.branch_groups_, strict=True)
        )
        inner = [
            _chosen_setting(fitted, clf)
            for fitted, (_, clf) in zip(self.estimators_, kept, strict=True)
        ]
        tasks = [(b, s) for b in range(len(kept)) for s in range(1, len(splits))]
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_predict_rows)(
                clone(inner[b]),
                X,
                y,
                *self._split_rows(train[s][g], splits[s], present[:, g], n),
                sw,
                method,
            )
            for b, s in tasks
            for g in [self.branch_groups_[b]]
        )
        self.usable_ = np.array([rows is not None for rows in train[0][:n_groups]], dtype=bool)

        width = 1 if n_classes is None or n_classes == 2 else n_classes
        oof = np.full((n, len(kept), width), np.nan)
        scored = np.zeros((n, n_groups + 1), dtype=bool)
        for (b, s), p in zip(tasks, results, strict=True):
            g = self.branch_groups_[b]
            if train[s][g] is not None and p is not None:
                test = splits[s][1][present[splits[s][1], g]]
                oof[test, b] = p
                scored[test, g] = True
        missing = ~scored[:, :n_groups]
        indicators = np.flatnonzero(missing.any(axis=0))
        self.indicator_groups_ = [list(self.groups)[g] for g in indicators]
        self.neutral_ = float(np.average(y, weights=sw)) if n_classes is None else 1.0 / n_classes
        # A combiner re-normalises its weights over the branches a row has (NaN: absent);
        # another meta-learner sees the neutral value there.
        combiner = isinstance(self.final_estimator_, (CombinerClassifier, CombinerRegressor))
        self.absent_value_ = np.nan if combiner else self.neutral_
        X_meta = np.hstack(
            [
                np.where(np.isnan(oof), self.absent_value_, oof).reshape(n, -1),
                missing[:, indicators].astype(np.float64),
            ]
        )
        if "n_free" in self.final_estimator_.get_params():
            self.final_estimator_.set_params(n_free=len(indicators))
        params = {} if sw is None else {"sample_weight": sw}
        self.final_estimator_.fit(X_meta, y, **params)

        self._n_feature_outs = [width] * len(kept)
        _set_named_estimators(self)
        return self

    @staticmethod
    def _split_rows(rows, split, present, n):
        """(train, test) rows of one fit task: the full fit (test None) or an inner fold."""
        train_all, test = split
        train = train_all if rows is None else rows  # unusable: imputed fit, not scored
        train = _rows_or_all(train, n) if test is None else train
        if test is None:
            return (train,)
        return train, (test[present[test]] if rows is not None else test[:0])

    def _transform(self, X):
        """Meta-learner inputs: branch outputs (``absent_value_`` where absent: neutral, or
        NaN for a combiner), then indicators."""
        check_is_fitted(self)
        X = self._table(X)
        has = self._branch_presence(X)
        outputs = np.stack(
            [
                _branch_output(est, X, method)
                for est, method in zip(self.estimators_, self.stack_method_, strict=True)
            ],
            axis=1,
        )
        fill = getattr(self, "absent_value_", self.neutral_)
        outputs = np.where(has[:, :, None], outputs, fill).reshape(len(outputs), -1)
        columns = [list(self.groups).index(g) for g in self.indicator_groups_]
        absent = ~(self._presence(X) & self.usable_)[:, columns]
        return np.hstack([outputs, absent.astype(np.float64)])

    def get_feature_names_out(self, input_features=None):
        """Branch names (as scikit-learn's stacking), then ``{class}_missing_{group}``."""
        names = super().get_feature_names_out(input_features)
        prefix = type(self).__name__.lower()
        extra = [f"{prefix}_missing_{branch_name(g)}" for g in self.indicator_groups_]
        return np.asarray([*names, *extra], dtype=object)


class AvailableStackingClassifier(_AvailableStacking, StackingClassifier):
    """Stacking over the branches each patient has (stacking with missing modalities).

    Branches stacked by ``predict_proba``. Each branch is fitted, in every inner fold and on
    the whole training set, only on the rows where its group is present. The meta-learner's
    inputs are, per branch, its strictly out-of-fold probability of class 1 where the patient
    has the group and a neutral 0.5 (log-odds 0: no contribution) where not (multiclass: every
    class's probability, neutral 1/K), then
    one *missingness indicator* per group (1 = absent) for the groups absent in at least one
    training row. With the default meta-learner the branch weights stay non-negative, while the
    indicators' weights are free-signed (``n_free``): an indicator is a plain covariate, not a
    prediction, so the out-of-fold anti-correlation artefact that motivates the constraint does
    not apply, and missingness may legitimately raise or lower the risk (e.g. MR ordered only
    for suspicious cases). A patient with no usable group gets ``class_prior_``.

    A tuned branch (a fitted search such as :func:`radfusion.pipeline.fusion.tuned_branch`) searches
    once, on the whole training set; its inner-fold fits reuse the chosen setting
    (``best_estimator_``, unfitted) instead of searching again in every inner fold, so a tuned stack
    costs about its branches' searches plus ``cv`` plain fits each. The setting was chosen on rows
    that include the inner test rows, a mild optimism of the meta-learner's inputs only; the rows
    the whole stack is later scored on are never seen. With every
    group present everywhere this is exactly :class:`~sklearn.ensemble.StackingClassifier`.

    Parameters
    ----------
    estimators : list of (str, estimator)
        Branches named ``branch_name(group, learner)`` (see :func:`branch_name`).
    final_estimator : classifier, default=None
        Meta-learner (default :class:`NonNegativeLogisticRegression` for binary targets,
        ``LogisticRegression`` for multiclass ones). When it has an
        ``n_free`` parameter it is set to the number of indicators.
    groups : dict of str to list of str, optional
        Group name → its columns. None: every branch is always present.
    cv, n_jobs, verbose
        As in :class:`~sklearn.ensemble.StackingClassifier` (``stack_method`` must resolve to
        ``predict_proba`` and ``passthrough`` must be False).

    Attributes
    ----------
    estimators_, named_estimators_, final_estimator_, classes_, stack_method_
        As in :class:`~sklearn.ensemble.StackingClassifier`.
    branch_groups_, usable_, class_prior_
        As in :class:`AvailableVotingClassifier`.
    indicator_groups_ : list of str
        Groups with a missingness indicator (absent in some training rows).
    """

    _parameter_constraints: dict = {
        **StackingClassifier._parameter_constraints,
        "groups": [dict, None],
        "stack_method": [StrOptions({"auto", "predict_proba"})],
    }

    def __init__(
        self,
        estimators,
        final_estimator=None,
        *,
        groups=None,
        cv=None,
        stack_method="auto",
        n_jobs=None,
        passthrough=False,
        verbose=0,
    ):
        super().__init__(
            estimators,
            final_estimator,
            cv=cv,
            stack_method=stack_method,
            n_jobs=n_jobs,
            passthrough=passthrough,
            verbose=verbose,
        )
        self.groups = groups

    def fit(self, X, y, sample_weight=None):
        """Fit the branches on the rows having their group, then the meta-learner on their
        out-of-fold probabilities and the missingness indicators."""
        self._validate_params()
        if self.passthrough:
            raise ValueError(f"{type(self).__name__} does not support passthrough=True")
        X, y = self._fit_inputs(X, y, regression=False)
        check_classification_targets(y)
        binary = type_of_target(y, input_name="y") == "binary"
        self._clone_final_estimator(
            default=NonNegativeLogisticRegression() if binary else LogisticRegression(max_iter=1000)
        )
        self._label_encoder = LabelEncoder().fit(y)
        self.classes_ = self._label_encoder.classes_
        y = self._label_encoder.transform(y)
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.class_prior_ = np.bincount(y, weights=sw, minlength=len(self.classes_)) / (
            len(y) if sw is None else sw.sum()
        )
        names, clfs = self._validate_estimators()
        methods = {
            self._method_name(n, c, self.stack_method)
            for n, c in zip(names, clfs, strict=True)
            if c != "drop"
        }
        if methods != {"predict_proba"}:
            raise ValueError(f"{type(self).__name__} stacks predict_proba only")
        return self._fit_stack(X, y, sw, len(self.classes_))

    def predict_proba(self, X):
        """Meta-learner probabilities; the training prevalence for rows without any group."""
        check_is_fitted(self)
        X = self._table(X)
        proba = super().predict_proba(X)
        if self.groups is not None:
            none = ~self._branch_presence(X).any(axis=1)
            proba[none] = self.class_prior_
        return proba


class AvailableStackingRegressor(_AvailableStacking, StackingRegressor):
    """Stacking regression over the branches each patient has (continuous targets).

    As :class:`AvailableStackingClassifier`, with branches stacked by ``predict``: the
    meta-learner (default ``LinearRegression(positive=True)``, Breiman's non-negative stacked
    regression) sees each branch's out-of-fold prediction where the patient has the group and
    the training mean of ``y`` where not, then the missingness indicators. A patient without
    any usable group gets the training mean ``y_mean_``.
    """

    _parameter_constraints: dict = {
        **StackingRegressor._parameter_constraints,
        "groups": [dict, None],
    }

    def __init__(
        self,
        estimators,
        final_estimator=None,
        *,
        groups=None,
        cv=None,
        n_jobs=None,
        passthrough=False,
        verbose=0,
    ):
        super().__init__(
            estimators,
            final_estimator,
            cv=cv,
            n_jobs=n_jobs,
            passthrough=passthrough,
            verbose=verbose,
        )
        self.groups = groups

    def fit(self, X, y, sample_weight=None):
        """Fit the branches on the rows having their group, then the meta-learner on their
        out-of-fold predictions and the missingness indicators."""
        self._validate_params()
        if self.passthrough:
            raise ValueError(f"{type(self).__name__} does not support passthrough=True")
        X, y = self._fit_inputs(X, y, regression=True)
        self._clone_final_estimator(default=LinearRegression(positive=True))
        sw = None if sample_weight is None else check_sample_weight(sample_weight, X)
        self.y_mean_ = float(np.average(y, weights=sw))
        return self._fit_stack(X, y, sw, None)

    def predict(self, X, **predict_params):
        """Meta-learner predictions; the training mean for rows without any group."""
        check_is_fitted(self)
        X = self._table(X)
        prediction = np.asarray(super().predict(X, **predict_params), dtype=np.float64)
        if self.groups is not None:
            prediction[~self._branch_presence(X).any(axis=1)] = self.y_mean_
        return prediction


# --------------------------------------------------------------------------- fusion models


def build_model(
    groups: Mapping[str, Sequence[str]],
    strategy: str,
    learner: str = "lr",
    learners: Sequence[str] = LEARNERS,
    cv: int = STACKING_CV,
    random_state: int | None = 0,
    *,
    n_jobs: int | None = None,
    harmonize: str | None = None,
    harmonize_unseen: str = "pooled",
    icc_table=None,
    icc_threshold: float = 0.75,
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
    resample: str | None = None,
    tune: bool = False,
    n_iter: int = 20,
    inner_cv: int = 3,
    task: str = "binary",
    calibration: str | None = None,
    combiner: str | None = None,
) -> BaseEstimator:
    """Build an unfitted fusion model over column groups of a DataFrame.

    Parameters
    ----------
    groups : mapping of str to sequence of str
        Group name → its column names, e.g. from :func:`radfusion.pipeline.columns.infer_groups`.
    strategy : {"single", "early", "late", "stacking", "shared"}
        ``"single"``: exactly one group, one branch with ``learner``.
        ``"early"``: one branch with ``learner`` on all groups' columns together.
        ``"late"``: soft vote (mean probability) of one branch per group with ``learner``; with
        a single group, a soft vote of that group's branches with every learner in ``learners``.
        ``"stacking"``: branches for every group × every learner in ``learners``, named
        ``"{group}:{learner}"``, combined by ``combiner`` (default
        :data:`~radfusion.pipeline.fusion.DEFAULT_COMBINER` of the task; ``"logistic"``:
        :class:`NonNegativeLogisticRegression`) fitted on their out-of-fold outputs from
        ``StratifiedKFold(cv, shuffle=True, random_state)``; the branches are then refitted
        on all the training data.
        ``"shared"``: every group mapped into one latent space, a classifier on it
        (:class:`radfusion.pipeline.fusion.SharedSpaceClassifier`); ``harmonize``, the
        correlation filter and top-k selection run per group before the shared space is fitted,
        and ``tune`` or ``resample`` are refused (:data:`SHARED_REFUSES`).
    learner : str, default="lr"
        Learner of the single, early and (multi-group) late models.
    learners : sequence of str, default=LEARNERS
        Learners of the stacking model (and of late fusion over a single group).
    cv : int, default=3
        Inner folds of stacking (and of ``calibration``).
    random_state : int or None, default=0
        Seed of the learners and of the inner folds.
    n_jobs : int or None, default=None
        Parallel jobs over branches (late) or branch fits (stacking).
    harmonize : str, optional
        Site column of the DataFrame (e.g. ``"site"``, see ``load_dataset(keep_site=True)``):
        every branch harmonises its imaging columns with ComBat, fitted on its training rows;
        the ``clinical`` group's columns are never harmonised. See :func:`make_branch`.
    harmonize_unseen : {"error", "pooled"}, default="pooled"
        ComBat's handling of a site absent from the training rows (outer or, for stacking,
        inner folds). Small sites may be missing from a fold: use ``"pooled"`` then.
    icc_table : path or DataFrame, optional
        Per branch, keep the features whose ICC in this table reaches ``icc_threshold``
        (:class:`~radfusion.pipeline.preprocessing.RobustnessFilter`; unnamed features kept).
    icc_threshold : float, default=0.75
    correlation_threshold : float, optional
        Per branch, drop features correlated above it with an earlier kept one.
    select_k : int, optional
        Per branch, keep the ``select_k`` best features (``select_method``: "anova"/"mrmr").
    select_method : {"anova", "mrmr"}, default="anova"
    resample : {"smote"}, optional
        Per branch, SMOTE oversampling of the training rows (see :func:`make_branch`).
    tune : bool, default=False
        Every branch (single, early, late's and stacking's) becomes a
        :func:`radfusion.pipeline.fusion.tuned_branch`: a randomised search of ``n_iter`` settings
        of its learner's hyperparameters (and ``selecttopk__k`` with ``select_k``), scored by ROC
        AUC on ``inner_cv`` folds of the branch's training rows; ``xgb`` uses early stopping and
        ``scale_pos_weight`` from its training rows. Cross-validating the model is then nested
        CV. Read the choices with :func:`radfusion.pipeline.fusion.chosen_hyperparameters`.
    n_iter : int, default=20
        Settings drawn per tuned branch.
    inner_cv : int, default=3
        Inner folds of each tuned branch's search.
    task : {"binary", "multiclass", "regression"}, default="binary"
        The target's kind. Multiclass: the same models; stacking's meta-learner is a
        multinomial ``LogisticRegression`` on every branch's class probabilities.
        Regression: the learners' regressor counterparts (:func:`radfusion.pipeline.learners.
        make_regressor`); late fusion averages predictions (:class:`AvailableVotingRegressor`);
        stacking combines out-of-fold predictions by non-negative least squares
        (:class:`AvailableStackingRegressor`); shared-space fusion ends with a linear
        regression (:class:`radfusion.pipeline.fusion.SharedSpaceRegressor`). ``tune`` is for binary
        targets only.
    calibration : {"sigmoid", "isotonic"}, optional
        Recalibrate the model's probabilities inside its training rows: scikit-learn's
        ``CalibratedClassifierCV(method=calibration, ensemble=False)`` fits the model on
        ``cv`` inner stratified folds, fits a Platt (``"sigmoid"``) or isotonic map from the
        inner out-of-fold probabilities to the labels, and refits the model on all its
        training rows. Costs ``cv`` extra fits. Classification only; off by default.
    combiner : {"mean", "platt", "best", "convex", "shrunk", "logistic"}, optional
        How stacking combines its branches (the other strategies ignore it; late fusion is
        always the mean): ``"mean"`` is a soft vote (no inner CV), ``"platt"`` the same mean
        Platt-scaled (slope ``b >= 1``) on inner out-of-fold outputs (classification only),
        ``"logistic"`` the learned
        meta-learner of radfusion <= 0.2, the others
        :class:`~radfusion.pipeline.fusion.CombinerClassifier` / ``Regressor`` fitted on the
        branches' inner out-of-fold outputs (``cv`` folds). None:
        :data:`~radfusion.pipeline.fusion.DEFAULT_COMBINER` of the task (``"platt"`` for
        classes, ``"mean"`` for regression).

    Returns
    -------
    BaseEstimator
        A ``Pipeline``, :class:`AvailableVotingClassifier` (late) or
        :class:`AvailableStackingClassifier` (stacking), or their regressor counterparts;
        fit it on a DataFrame. Patients missing
        a whole group are kept: late fusion and stacking combine only the branches they have.

    Raises
    ------
    InputError
        Unknown strategy or learner, empty groups, or ``"single"`` with several groups.
    """
    groups = _check_groups(groups)
    if calibration is not None:
        if calibration not in CALIBRATIONS:
            raise InputError(
                "Unknown calibration",
                [Problem(f"{calibration!r} is not one of {', '.join(map(repr, CALIBRATIONS))}")],
            )
        if task == "regression":
            raise InputError(
                "Calibration is for classifiers", [Problem("run a regression without it")]
            )
        model = build_model(
            groups,
            strategy,
            learner,
            learners,
            cv,
            random_state,
            n_jobs=n_jobs,
            harmonize=harmonize,
            harmonize_unseen=harmonize_unseen,
            icc_table=icc_table,
            icc_threshold=icc_threshold,
            correlation_threshold=correlation_threshold,
            select_k=select_k,
            select_method=select_method,
            resample=resample,
            tune=tune,
            n_iter=n_iter,
            inner_cv=inner_cv,
            task=task,
            combiner=combiner,
        )
        return CalibratedClassifierCV(
            model,
            method=calibration,
            cv=AdaptiveStratifiedKFold(cv, shuffle=True, random_state=random_state),
            ensemble=False,
        )
    if strategy not in STRATEGIES:
        raise InputError(
            "Unknown fusion strategy",
            [Problem(f"{strategy!r} is not one of {', '.join(map(repr, STRATEGIES))}")],
        )
    if combiner is not None and combiner not in COMBINERS:
        raise InputError(
            "Unknown combiner",
            [Problem(f"{combiner!r} is not one of {', '.join(map(repr, COMBINERS))}")],
        )
    _check_learners([learner])
    learners = _check_learners(learners)
    if task not in TASKS:
        raise InputError("Unknown task", [Problem(f"{task!r} is not one of {TASKS}")])
    if tune and task != "binary":
        raise InputError(
            "Tuning is built for binary targets only",
            [Problem(f"task {task!r}: run without --tune")],
        )
    options = _branch_options(
        groups, harmonize, harmonize_unseen, correlation_threshold, select_k, select_method
    )
    if icc_table is not None:
        options["icc_table"] = icc_table
        options["icc_threshold"] = icc_threshold
    if resample is not None:
        options["resample"] = resample
    if tune:
        options["tune"] = {"n_iter": n_iter, "inner_cv": inner_cv}
    if task != "binary":
        options["task"] = task
    regression = task == "regression"

    if strategy == "single":
        if len(groups) != 1:
            raise InputError(
                "The 'single' strategy needs exactly one group",
                [Problem(f"got {len(groups)} groups: {', '.join(groups)}")],
            )
        (columns,) = groups.values()
        return _branch(columns, learner, random_state, options)
    if strategy == "early":
        columns = [c for cols in groups.values() for c in cols]
        return _branch(columns, learner, random_state, options)

    if strategy == "shared":
        refused = [name for name in ("tune", "resample") if name in options]
        if refused:
            raise InputError(
                "Shared-space fusion does not take every option",
                [
                    Problem(
                        f"{name}: {SHARED_REFUSES[name]}; run it without this option or "
                        "leave the strategy 'shared' out"
                    )
                    for name in refused
                ],
            )
        shared = SharedSpaceRegressor if regression else SharedSpaceClassifier
        branch_options = {k: v for k, v in options.items() if k != "task"}
        return shared(groups, random_state=random_state, branch_options=branch_options or None)
    if strategy == "late" and len(groups) > 1:
        pairs = [(group, learner) for group in groups]
    else:  # stacking, or late fusion of the learners on a single group
        pairs = [(group, name) for group in groups for name in learners]
    estimators = _named_branches(groups, pairs, random_state, options)
    combiner = resolve_combiner(combiner, strategy, task)
    if combiner == "mean" and regression:
        return AvailableVotingRegressor(estimators, groups=groups, n_jobs=n_jobs)
    if combiner == "mean":
        return AvailableVotingClassifier(estimators, groups=groups, voting="soft", n_jobs=n_jobs)
    if combiner == "logistic":
        final = (
            LinearRegression(positive=True)
            if regression
            else NonNegativeLogisticRegression()
            if task == "binary"
            else LogisticRegression(max_iter=1000)
        )
    else:
        kind = CombinerRegressor if regression else CombinerClassifier
        final = kind(combiner, cv=cv, random_state=random_state)
    if regression:
        return AvailableStackingRegressor(
            estimators,
            final_estimator=final,
            groups=groups,
            cv=KFold(cv, shuffle=True, random_state=random_state),
            n_jobs=n_jobs,
        )
    return AvailableStackingClassifier(
        estimators,
        final_estimator=final,
        groups=groups,
        cv=AdaptiveStratifiedKFold(cv, shuffle=True, random_state=random_state),
        stack_method="predict_proba",
        n_jobs=n_jobs,
    )


def build_models(
    groups: Mapping[str, Sequence[str]],
    learner: str = "lr",
    learners: Sequence[str] = LEARNERS,
    cv: int = STACKING_CV,
    random_state: int | None = 0,
    *,
    n_jobs: int | None = None,
    harmonize: str | None = None,
    harmonize_unseen: str = "pooled",
    icc_table=None,
    icc_threshold: float = 0.75,
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
    resample: str | None = None,
    tune: bool = False,
    n_iter: int = 20,
    inner_cv: int = 3,
    task: str = "binary",
    calibration: str | None = None,
    combiner: str | None = None,
) -> dict[str, BaseEstimator]:
    """All the models a multimodal comparison needs, by name, in a fixed order.

    With two or more groups: one ``"single"`` model per group, keyed by the group name, then
    ``"early"``, ``"late"``, ``"stacking"`` and ``"shared"`` (see :func:`build_model`). A group
    whose name is itself a strategy (C4KC-KiTS has a ``late`` contrast phase) is keyed
    ``"single:{group}"`` instead.

    With one group: ``"early"`` is the single-branch model with ``learner``; ``"late"`` is a
    soft vote and ``"stacking"`` a stack of that group's branches over ``learners``.

    ``harmonize``, ``harmonize_unseen``, ``icc_table``, ``icc_threshold``,
    ``correlation_threshold``, ``select_k`` and
    ``select_method``, ``resample``, ``tune``, ``n_iter``, ``inner_cv`` and ``task`` apply to
    every branch of every model (see :func:`build_model`); the shared-space model applies
    ComBat, the filter and the selection per group, and is left out (with a warning) under
    ``tune`` or ``resample``, which it cannot honour. ``calibration`` wraps every model.
    """
    groups = _check_groups(groups)
    kwargs = dict(
        learner=learner,
        learners=learners,
        cv=cv,
        random_state=random_state,
        n_jobs=n_jobs,
        harmonize=harmonize,
        harmonize_unseen=harmonize_unseen,
        icc_table=icc_table,
        icc_threshold=icc_threshold,
        correlation_threshold=correlation_threshold,
        select_k=select_k,
        select_method=select_method,
        resample=resample,
        tune=tune,
        n_iter=n_iter,
        inner_cv=inner_cv,
        task=task,
        calibration=calibration,
        combiner=combiner,
    )
    models: dict[str, BaseEstimator] = {}
    if len(groups) > 1:
        for group, columns in groups.items():
            key = f"single:{group}" if group in STRATEGIES else group
            models[key] = build_model({group: columns}, "single", **kwargs)
    refused = [name for name in SHARED_REFUSES if kwargs[name]]
    for strategy in FUSED:
        if strategy == "shared" and refused:
            warnings.warn(
                "shared-space fusion left out: "
                + "; ".join(f"{name}: {SHARED_REFUSES[name]}" for name in refused),
                UserWarning,
                stacklevel=2,
            )
            continue
        models[strategy] = build_model(groups, strategy, **kwargs)
    return models


def _check_groups(groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    groups = {str(g): list(cols) for g, cols in groups.items()}
    if not groups:
        raise InputError("No feature groups: the table has no feature columns")
    empty = [Problem(f"group {g!r} has no columns") for g, cols in groups.items() if not cols]
    if empty:
        raise InputError("Empty feature groups", empty)
    return groups


def _check_learners(learners: Sequence[str]) -> list[str]:
    learners = list(learners)
    problems = [
        Problem(f"{name!r} is not one of {', '.join(map(repr, LEARNER_NAMES))}")
        for name in learners
        if name not in LEARNER_NAMES
    ]
    if not learners:
        problems.append(Problem("no learners given"))
    if len(set(learners)) != len(learners):
        problems.append(Problem(f"learners repeat: {learners}"))
    if problems:
        raise InputError("Bad learner list", problems)
    return learners


def _branch_options(
    groups, harmonize, harmonize_unseen, correlation_threshold, select_k, select_method
) -> dict:
    """Keyword arguments of :func:`make_branch`; only the non-default ones (so that a model
    built without options is exactly the historical one)."""
    problems = []
    if harmonize is not None and harmonize_unseen not in HARMONIZE_UNSEEN:
        problems.append(
            Problem(
                f"harmonize_unseen {harmonize_unseen!r} is not one of {', '.join(HARMONIZE_UNSEEN)}"
            )
        )
    if correlation_threshold is not None and not 0 < correlation_threshold <= 1:
        problems.append(
            Problem(f"correlation_threshold {correlation_threshold!r} is not in (0, 1]")
        )
    if select_k is not None and not (isinstance(select_k, Integral) and select_k >= 1):
        problems.append(Problem(f"select_k {select_k!r} is not a positive integer"))
    if select_k is not None and select_method not in SELECT_METHODS:
        problems.append(
            Problem(f"select_method {select_method!r} is not one of {', '.join(SELECT_METHODS)}")
        )
    if problems:
        raise InputError("Bad model options", problems)
    options: dict = {}
    if harmonize is not None:
        if any(harmonize in cols for cols in groups.values()):
            raise InputError(
                "The site column is also a feature column",
                [Problem(f"column {harmonize!r} is in a feature group; it only names the site")],
            )
        options["harmonize"] = harmonize
        options["harmonize_unseen"] = harmonize_unseen
        options["harmonize_columns"] = [
            c for g, cols in groups.items() if g != CLINICAL_GROUP for c in cols
        ]
    if correlation_threshold is not None:
        options["correlation_threshold"] = correlation_threshold
    if select_k is not None:
        options["select_k"] = select_k
        options["select_method"] = select_method
    return options


def _named_branches(groups, pairs, random_state, options) -> list[tuple[str, Pipeline]]:
    names = [branch_name(g, name) for g, name in pairs]
    if len(set(names)) != len(names):
        raise InputError(
            "Group names collide once '__' is written as '/'",
            [Problem(f"groups: {', '.join(groups)}")],
        )
    return [
        (bname, _branch(groups[g], name, random_state, options))
        for bname, (g, name) in zip(names, pairs, strict=True)
    ]


def _branch(columns, learner, random_state, options) -> BaseEstimator:
    """A plain branch, or a tuned one when ``options`` holds ``tune`` settings."""
    options = dict(options)
    tune = options.pop("tune", None)
    if tune is None:
        return make_branch(columns, learner, random_state, **options)
    return tuned_branch(columns, learner, random_state=random_state, **tune, **options)
