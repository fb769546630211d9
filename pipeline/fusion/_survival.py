"""Late fusion and stacking for time-to-event outcomes, with missing modalities.

The survival counterparts of :mod:`._voting` and :mod:`._stacking`, which
:class:`~radfusion.pipeline.fusion.FusionSurvival` composes like the classifier composes its
own: each branch (a :func:`~radfusion.pipeline.fusion.make_branch` pipeline ending in a
scikit-survival learner) is fitted on the training rows that have its group, provided they hold
at least :data:`MIN_EVENTS` events (else the branch sits out), and a patient is scored by the
branches whose group it has. ``predict`` is a risk score (higher = earlier event);
``predict_survival`` gives survival probabilities at chosen times.

- :class:`AvailableVotingSurvival` (late fusion, and stacking with ``combiner="mean"``): the
  mean of the branches' risks, each standardised on its training rows; survival: the mean of
  their survival functions (the training Kaplan–Meier estimate for a patient without any).
- :class:`AvailableStackingSurvival` (stacking, ``combiner="cox"``): a non-negative Cox model
  (:class:`NonNegativeCox`) on the branches' standardised inner out-of-fold risks (folds
  stratified by event) plus free-signed missing-modality indicators; survival from its Breslow
  baseline hazard.

scikit-survival is an optional extra (``radfusion[survival]``), imported when a model is fitted.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from ..shared_fits import fit_once
from ..survival import EVENT_FIELD, TIME_FIELD, EventStratifiedKFold
from ._availability import Availability

__all__ = [
    "MIN_EVENTS",
    "SHARED_SKIPPED",
    "SURVIVAL_SKIPPED",
    "AvailableStackingSurvival",
    "AvailableVotingSurvival",
    "NonNegativeCox",
    "survival_at",
]

SHARED_SKIPPED = (
    "the shared-space model has no survival form: its projection is fitted to a class or "
    "value target, and FusionSurvival refuses it rather than fit it to the time alone"
)
"""Why a survival run leaves the shared-space strategy out (``config.skipped_models``)."""
SURVIVAL_SKIPPED = {
    "pooled": "pooled fusion has no survival form yet: its learners were chosen on binary "
    "outcomes, and no survival benchmark has chosen theirs",
    "shared": SHARED_SKIPPED,
}
"""Why a survival run leaves each strategy out (``config.skipped_models``)."""

MIN_EVENTS = 2
"""Fewest events among the rows a branch is fitted on; fewer and the branch sits out."""


class NonNegativeCox:
    """Cox model with non-negative coefficients on (out-of-fold) risk scores, the stacking
    combiner of :class:`AvailableStackingSurvival`.

    Maximises the Breslow partial log-likelihood minus ``alpha * ||w||² / 2`` with L-BFGS-B
    under ``w >= 0`` for the risk columns; the last ``n_free`` columns (missing-modality
    indicators) may take either sign. As for the binary stacking meta-learner, the constraint
    keeps an out-of-fold artefact (held-out risks anti-correlated with the outcome when there
    is no signal) from being flipped into a spurious C-index above 0.5. Without active bounds
    it is scikit-survival's ``CoxPHSurvivalAnalysis(alpha=alpha)`` (Breslow ties), which the
    tests check. Not a scikit-learn estimator: it is fitted inside the stack.
    """

    def __init__(self, alpha: float = 1.0, n_free: int = 0, max_iter: int = 1000):
        self.alpha = alpha
        self.n_free = n_free
        self.max_iter = max_iter

    def fit(self, Z: np.ndarray, event: np.ndarray, time: np.ndarray) -> NonNegativeCox:
        Z = np.asarray(Z, dtype=np.float64)
        order = np.argsort(-time, kind="stable")
        Zs, d, t = Z[order], event[order].astype(bool), time[order]
        last = np.searchsorted(-t, -t, side="right") - 1  # ties: the whole tie is at risk
        alpha = float(self.alpha)

        def loss_grad(w):
            lp = Zs @ w
            shift = lp.max() if len(lp) else 0.0
            e = np.exp(lp - shift)
            s0 = np.cumsum(e)[last]
            s1 = np.cumsum(e[:, None] * Zs, axis=0)[last]
            loglik = (lp[d] - shift - np.log(s0[d])).sum()
            grad = (Zs[d] - s1[d] / s0[d, None]).sum(axis=0)
            return -loglik + 0.5 * alpha * w @ w, -grad + alpha * w

        p = Z.shape[1]
        bounds = [(0.0, None)] * (p - self.n_free) + [(None, None)] * self.n_free
        result = minimize(
            loss_grad,
            np.zeros(p),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": self.max_iter, "gtol": 1e-8},
        )
        if not result.success:
            warnings.warn(
                f"NonNegativeCox did not converge: {result.message}",
                ConvergenceWarning,
                stacklevel=2,
            )
        self.coef_ = result.x
        return self

    def predict(self, Z: np.ndarray) -> np.ndarray:
        """The linear predictor (log relative hazard)."""
        return np.asarray(Z, dtype=np.float64) @ self.coef_


def survival_at(functions, times: np.ndarray) -> np.ndarray:
    """Survival step functions (scikit-survival) evaluated at ``times``: (n, len(times))."""
    return (
        np.vstack([fn(times) for fn in functions]) if len(functions) else np.empty((0, len(times)))
    )


def branch_survival(branch, X, times: np.ndarray) -> np.ndarray:
    """A fitted branch's survival probabilities at ``times`` (its learner's survival
    functions on its transformed inputs)."""
    return survival_at(branch[-1].predict_survival_function(branch[:-1].transform(X)), times)


def _scale(risk: np.ndarray) -> tuple[float, float]:
    risk = np.asarray(risk, dtype=np.float64)
    sd = float(risk.std()) if len(risk) > 1 else 0.0
    return float(risk.mean()) if len(risk) else 0.0, sd if sd > 0 else 1.0


def _fit_branch(branch, X, y, rows):
    """Fit a clone of ``branch`` on ``rows`` of ``X`` (DataFrame) and ``y`` (shared within
    :func:`~radfusion.pipeline.shared_fits`)."""
    return fit_once(clone(branch), X, y, np.asarray(rows))


def _oof_risk(branch, X, y, train, test):
    """Fit on ``train`` rows, return the risk of ``test`` rows (None: too few events)."""
    if len(test) == 0 or y[EVENT_FIELD][train].sum() < MIN_EVENTS:
        return None
    return np.asarray(_fit_branch(branch, X, y, train).predict(X.iloc[test]), dtype=np.float64)


class _AvailableSurvival(Availability, BaseEstimator):
    """Branch fitting and per-patient presence shared by the survival ensembles."""

    def _fit_branches(self, X, y) -> tuple[list[str], dict, dict[str, np.ndarray]]:
        """Fit every usable branch on the rows having its group; return the branch names,
        the unfitted branches by name and each group's rows."""
        names = [name for name, _ in self.estimators]
        branches = dict(self.estimators)
        groups = list(self.groups)
        self.branch_groups_ = {
            name: groups[g] for name, g in zip(names, self._branch_groups(names), strict=True)
        }
        present = self._presence(X)
        rows = {g: np.flatnonzero(present[:, i]) for i, g in enumerate(groups)}
        usable = [
            n for n in names if y[EVENT_FIELD][rows[self.branch_groups_[n]]].sum() >= MIN_EVENTS
        ]
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_branch)(branches[n], X, y, rows[self.branch_groups_[n]]) for n in usable
        )
        self.branches_ = dict(zip(usable, fitted, strict=True))
        self.risk_scale_ = {}
        return usable, branches, rows

    def _group_presence(self, X) -> dict[str, np.ndarray]:
        present = self._presence(X)
        return {g: present[:, i] for i, g in enumerate(self.groups)}

    def _branch_risks(self, X) -> tuple[np.ndarray, np.ndarray]:
        """Standardised risk of every kept branch (n, b) and whether the row has its group."""
        present = self._group_presence(X)
        names = list(self.branches_)
        risk = np.zeros((len(X), len(names)))
        has = np.zeros((len(X), len(names)), dtype=bool)
        for j, name in enumerate(names):
            rows = np.flatnonzero(present[self.branch_groups_[name]])
            has[rows, j] = True
            if len(rows):
                mean, sd = self.risk_scale_[name]
                risk[rows, j] = (self.branches_[name].predict(X.iloc[rows]) - mean) / sd
        return risk, has


class AvailableVotingSurvival(_AvailableSurvival):
    """Mean standardised risk over the branches each patient has (late fusion of survival
    learners with missing modalities).

    Parameters
    ----------
    estimators : list of (str, estimator)
        Branches named ``branch_name(group, learner)``.
    groups : dict of str to list of str
        Group name → its columns: decides which rows have which group.
    n_jobs : int, optional
        Parallel jobs over branch fits.

    Attributes
    ----------
    branches_ : dict of str to estimator
        Fitted branches by name (those whose group's training rows hold enough events).
    branch_groups_ : dict of str to str
        Group of each branch.
    risk_scale_ : dict of str to (float, float)
        Mean and standard deviation of each branch's risk on its training rows.
    km_time_, km_survival_ : ndarray
        The training Kaplan–Meier estimate, the survival of a patient without any group.
    """

    def __init__(self, estimators, *, groups=None, n_jobs=None):
        self.estimators = estimators
        self.groups = groups
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit each branch on the rows having its group; standardise its risk there."""
        from sksurv.nonparametric import kaplan_meier_estimator

        usable, _, rows = self._fit_branches(X, y)
        for n in usable:
            r = rows[self.branch_groups_[n]]
            self.risk_scale_[n] = _scale(self.branches_[n].predict(X.iloc[r]))
        self.km_time_, self.km_survival_ = kaplan_meier_estimator(y[EVENT_FIELD], y[TIME_FIELD])
        return self

    def predict(self, X) -> np.ndarray:
        """The mean standardised branch risk over the groups the patient has (0, the training
        average, when none)."""
        check_is_fitted(self)
        risk, has = self._branch_risks(X)
        count = has.sum(axis=1)
        return np.where(count > 0, risk.sum(axis=1) / np.maximum(count, 1), 0.0)

    def predict_survival(self, X, times) -> np.ndarray:
        """The mean of the branches' survival functions at ``times`` over the groups the
        patient has (the training Kaplan–Meier estimate when none); times beyond the last
        training time are a ``ValueError``."""
        check_is_fitted(self)
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if times.max(initial=0.0) > self.km_time_[-1] or times.min(initial=0.0) < 0:
            raise ValueError(f"times must be within [0; {self.km_time_[-1]:f}]")
        present = self._group_presence(X)
        total = np.zeros((len(X), len(times)))
        count = np.zeros(len(X))
        for name, branch in self.branches_.items():
            rows = np.flatnonzero(present[self.branch_groups_[name]])
            if len(rows):
                total[rows] += branch_survival(branch, X.iloc[rows], times)
                count[rows] += 1
        position = np.searchsorted(self.km_time_, times, side="right") - 1
        km = np.where(position >= 0, self.km_survival_[np.maximum(position, 0)], 1.0)
        return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], km)


class AvailableStackingSurvival(_AvailableSurvival):
    """Stacking of survival branches over the groups each patient has.

    A :class:`NonNegativeCox` combines the branches' standardised inner out-of-fold risks
    (``cv`` folds stratified by event, :class:`~radfusion.pipeline.survival.
    EventStratifiedKFold`) with free-signed indicators of the groups missing in some training
    rows; the branches are fitted on all the training rows that have their group. Survival
    probabilities come from the Breslow baseline of the combiner's linear predictor.

    Parameters
    ----------
    estimators : list of (str, estimator)
        Branches named ``branch_name(group, learner)``.
    groups : dict of str to list of str
        Group name → its columns.
    cv : int, default=5
        Inner folds of the out-of-fold risks.
    alpha : float, default=1.0
        Ridge penalty of the combiner.
    random_state : int or None, default=0
        Seed of the inner folds.
    n_jobs : int, optional
        Parallel jobs over branch fits.

    Attributes
    ----------
    branches_, branch_groups_
        As in :class:`AvailableVotingSurvival` (branches without out-of-fold risks left out).
    risk_scale_ : dict of str to (float, float)
        Mean and standard deviation of each branch's inner out-of-fold risks.
    combiner_ : NonNegativeCox
        Weights of the branches, then of the indicators of ``indicator_groups_``.
    indicator_groups_ : list of str
    baseline_ : BreslowEstimator
    """

    def __init__(self, estimators, *, groups=None, cv=5, alpha=1.0, random_state=0, n_jobs=None):
        self.estimators = estimators
        self.groups = groups
        self.cv = cv
        self.alpha = alpha
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X, y):
        """Fit the branches, then the combiner on their inner out-of-fold risks."""
        from sksurv.linear_model.coxph import BreslowEstimator

        usable, branches, rows = self._fit_branches(X, y)
        event, time = y[EVENT_FIELD], y[TIME_FIELD]
        n = len(y)
        splits = list(EventStratifiedKFold(self.cv, random_state=self.random_state).split(X, y))
        tasks = []
        for name in usable:
            has = np.zeros(n, dtype=bool)
            has[rows[self.branch_groups_[name]]] = True
            for train, test in splits:
                tasks.append((name, train[has[train]], test[has[test]]))
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_oof_risk)(branches[name], X, y, train, test) for name, train, test in tasks
        )
        oof = {name: np.full(n, np.nan) for name in usable}
        for (name, _, test), risk in zip(tasks, results, strict=True):
            if risk is not None:
                oof[name][test] = risk
        # a branch without any out-of-fold risk cannot be weighed: it sits out
        kept = [name for name in usable if np.isfinite(oof[name]).sum() >= 2]
        self.branches_ = {name: self.branches_[name] for name in kept}
        columns = []
        for name in kept:
            scored = np.isfinite(oof[name])
            self.risk_scale_[name] = _scale(oof[name][scored])
            mean, sd = self.risk_scale_[name]
            columns.append(np.where(scored, (oof[name] - mean) / sd, 0.0))
        scored_groups = {
            g: np.any([np.isfinite(oof[m]) for m in kept if self.branch_groups_[m] == g], axis=0)
            if any(self.branch_groups_[m] == g for m in kept)
            else np.zeros(n, dtype=bool)
            for g in self.groups
        }
        self.indicator_groups_ = [g for g, s in scored_groups.items() if not s.all() and s.any()]
        indicators = [(~scored_groups[g]).astype(np.float64) for g in self.indicator_groups_]
        Z = np.column_stack(columns + indicators) if columns else np.zeros((n, 0))
        self.combiner_ = NonNegativeCox(alpha=self.alpha, n_free=len(indicators)).fit(
            Z, event, time
        )
        self.baseline_ = BreslowEstimator().fit(self.combiner_.predict(Z), event, time)
        return self

    def _stack_inputs(self, X) -> np.ndarray:
        risk, _ = self._branch_risks(X)
        present = self._group_presence(X)
        indicators = [(~present[g]).astype(np.float64) for g in self.indicator_groups_]
        return np.column_stack([risk, *indicators]) if risk.size or indicators else risk

    def predict(self, X) -> np.ndarray:
        """The combiner's log relative hazard."""
        check_is_fitted(self)
        return self.combiner_.predict(self._stack_inputs(X))

    def predict_survival(self, X, times) -> np.ndarray:
        """Survival probabilities at ``times`` from the combiner's Breslow baseline."""
        check_is_fitted(self)
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        lp = self.combiner_.predict(self._stack_inputs(X))
        return survival_at(self.baseline_.get_survival_function(lp), times)
