"""Multimodal fusion for time-to-event outcomes: :class:`FusionSurvival`.

The survival counterpart of :class:`~radfusion.pipeline.fusion.FusionClassifier`: the same
table, groups, branches (select → impute → drop constants → harmonise → filter/select →
standardise → learner, :func:`~radfusion.pipeline.fusion.make_branch`) and strategies, with
scikit-survival learners (:func:`radfusion.pipeline.learners.make_survival_learner`) and a
survival target (:mod:`radfusion.pipeline.survival`). ``predict`` is a risk score (higher =
earlier event); ``predict_survival`` gives survival probabilities at chosen times.

- ``single`` / ``early``: one branch (one group's columns, or all groups' together).
- ``late``: one branch per group, each fitted on the training rows that have its group; a
  patient's risk is the mean of the standardised risks of the branches it has.
- ``stacking``: every group × learner; a non-negative Cox model (:class:`NonNegativeCox`)
  combines their standardised inner out-of-fold risks (folds stratified by event) plus
  free-signed missing-modality indicators, fitted on the training rows only.

scikit-survival is an optional extra (``radfusion[survival]``), imported when a model is fitted.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import check_is_fitted

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import CLINICAL_GROUP

from ..columns import baseline_groups, infer_groups
from ..learners import SURVIVAL_LEARNERS, make_survival_learner
from ..preprocessing import MAX_LEVELS, CategoricalEncoder
from ..survival import EVENT_FIELD, TIME_FIELD, EventStratifiedKFold, check_survival_y
from ._branch import branch_name, make_branch
from ._inputs import chosen_groups, input_frame, resolve_groups
from ._model import HARMONIZE_UNSEEN, SELECT_METHODS
from ._shared_fits import fit_once

__all__ = [
    "SHARED_SKIPPED",
    "SURVIVAL_STRATEGIES",
    "FusionSurvival",
    "NonNegativeCox",
    "build_survival_estimators",
]

SURVIVAL_STRATEGIES = ("single", "early", "late", "stacking")
"""Strategies of :class:`FusionSurvival` (the shared space has no survival form yet)."""

SHARED_SKIPPED = (
    "the shared-space model has no survival form: its projection is fitted to a class or "
    "value target, and FusionSurvival refuses it rather than fit it to the time alone"
)
"""Why a survival run leaves the shared-space strategy out (``config.skipped_models``)."""

MIN_EVENTS = 2
"""Fewest events among the rows a branch is fitted on; fewer and the branch sits out."""


class NonNegativeCox:
    """Cox model with non-negative coefficients on (out-of-fold) risk scores, the stacking
    combiner of :class:`FusionSurvival`.

    Maximises the Breslow partial log-likelihood minus ``alpha * ||w||² / 2`` with L-BFGS-B
    under ``w >= 0`` for the risk columns; the last ``n_free`` columns (missing-modality
    indicators) may take either sign. As for the binary stacking meta-learner, the constraint
    keeps an out-of-fold artefact (held-out risks anti-correlated with the outcome when there
    is no signal) from being flipped into a spurious C-index above 0.5. Without active bounds
    it is scikit-survival's ``CoxPHSurvivalAnalysis(alpha=alpha)`` (Breslow ties), which the
    tests check. Not a scikit-learn estimator: it is fitted inside :class:`FusionSurvival`.
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


def _survival_at(functions, times: np.ndarray) -> np.ndarray:
    """Survival step functions (scikit-survival) evaluated at ``times``: (n, len(times))."""
    return (
        np.vstack([fn(times) for fn in functions]) if len(functions) else np.empty((0, len(times)))
    )


def _fit_branch(branch, X, y, rows):
    """Fit a clone of ``branch`` on ``rows`` of ``X`` (DataFrame) and ``y`` (shared within
    :func:`~radfusion.pipeline.fusion.shared_fits`)."""
    return fit_once(clone(branch), X, y, np.asarray(rows))


def _oof_risk(branch, X, y, train, test):
    """Fit on ``train`` rows, return the risk of ``test`` rows (None: too few events)."""
    if len(test) == 0 or y[EVENT_FIELD][train].sum() < MIN_EVENTS:
        return None
    return np.asarray(_fit_branch(branch, X, y, train).predict(X.iloc[test]), dtype=np.float64)


class FusionSurvival(BaseEstimator):
    """Multimodal fusion survival model: per-group branches fused early, late or by stacking.

    Parameters
    ----------
    strategy : {"single", "early", "late", "stacking"}, default="stacking"
        How the groups are fused (module docstring). ``"single"`` needs exactly one group
        (use ``use_groups``).
    learner : {"coxnet", "rsf", "gbsa"}, default="coxnet"
        Learner of the single, early and (multi-group) late models
        (:func:`~radfusion.pipeline.learners.make_survival_learner`).
    learners : sequence of str, default=("coxnet", "rsf", "gbsa")
        Learners of the stacking model (and of late fusion over a single group).
    groups, group_pattern, use_groups, categories, max_levels
        As in :class:`~radfusion.pipeline.fusion.FusionClassifier`.
    harmonize, harmonize_unseen, icc_table, icc_threshold, correlation_threshold
        As in :class:`~radfusion.pipeline.fusion.FusionClassifier`, inside each branch.
    select_k : int, optional
        Per branch, keep the ``select_k`` features with the largest univariate Cox score
        statistic (``select_method="mrmr"``: that relevance, minus redundancy).
    select_method : {"anova", "mrmr"}, default="anova"
        ``"anova"`` means plain top-k by relevance here (the Cox score test for survival).
    cv : int, default=5
        Inner folds (stratified by event) of stacking's out-of-fold risks.
    combiner_alpha : float, default=1.0
        Ridge penalty of the stacking combiner (:class:`NonNegativeCox`).
    random_state : int or None, default=0
        Seed of the learners and inner folds.
    n_jobs : int or None, default=None
        Parallel jobs over branch fits.

    Attributes
    ----------
    groups_ : dict of str to list of str
        The groups over the encoded columns.
    encoder_ : CategoricalEncoder
    branches_ : dict of str to estimator
        Fitted branches by name (``"CT/tumor:coxnet"``; single/early: one, named after the
        strategy).
    branch_groups_ : dict of str to str or None
        Group of each branch (None: always present).
    risk_scale_ : dict of str to (float, float)
        Mean and standard deviation used to standardise each branch's risk (late: its
        training rows; stacking: its inner out-of-fold risks).
    combiner_ : NonNegativeCox
        Stacking only: weights of the branches, then of the missing-modality indicators of
        ``indicator_groups_``.
    indicator_groups_ : list of str
    event_times_ : ndarray
        Sorted distinct event times of the training rows.
    feature_names_in_ : ndarray of str
        Defined when ``X`` was a DataFrame.
    n_features_in_ : int
    """

    def __init__(
        self,
        strategy: str = "stacking",
        *,
        learner: str = "coxnet",
        learners: Sequence[str] = SURVIVAL_LEARNERS,
        groups: Mapping[str, Sequence[str]] | None = None,
        group_pattern: str | None = None,
        use_groups: Sequence[str] | None = None,
        categories="auto",
        max_levels: int = MAX_LEVELS,
        harmonize: str | None = None,
        harmonize_unseen: str = "pooled",
        icc_table=None,
        icc_threshold: float = 0.75,
        correlation_threshold: float | None = None,
        select_k: int | None = None,
        select_method: str = "anova",
        cv: int = 5,
        combiner_alpha: float = 1.0,
        random_state: int | None = 0,
        n_jobs: int | None = None,
    ):
        self.strategy = strategy
        self.learner = learner
        self.learners = learners
        self.groups = groups
        self.group_pattern = group_pattern
        self.use_groups = use_groups
        self.categories = categories
        self.max_levels = max_levels
        self.harmonize = harmonize
        self.harmonize_unseen = harmonize_unseen
        self.icc_table = icc_table
        self.icc_threshold = icc_threshold
        self.correlation_threshold = correlation_threshold
        self.select_k = select_k
        self.select_method = select_method
        self.cv = cv
        self.combiner_alpha = combiner_alpha
        self.random_state = random_state
        self.n_jobs = n_jobs

    # ------------------------------------------------------------------ checks and inputs

    def _check_params(self) -> list[str]:
        problems = []
        if self.strategy not in SURVIVAL_STRATEGIES:
            problems.append(
                Problem(
                    f"strategy {self.strategy!r} is not one of "
                    f"{', '.join(map(repr, SURVIVAL_STRATEGIES))}"
                )
            )
        learners = [str(name) for name in self.learners]
        for name in {self.learner, *learners}:
            if name not in SURVIVAL_LEARNERS:
                problems.append(
                    Problem(
                        f"learner {name!r} is not one of {', '.join(map(repr, SURVIVAL_LEARNERS))}"
                    )
                )
        if not learners or len(set(learners)) != len(learners):
            problems.append(Problem(f"learners must be distinct and not empty: {learners}"))
        if self.harmonize is not None and self.harmonize_unseen not in HARMONIZE_UNSEEN:
            problems.append(Problem(f"harmonize_unseen {self.harmonize_unseen!r} is not known"))
        if self.correlation_threshold is not None and not 0 < self.correlation_threshold <= 1:
            problems.append(Problem(f"correlation_threshold {self.correlation_threshold!r}"))
        if self.select_k is not None and not (
            isinstance(self.select_k, Integral) and self.select_k >= 1
        ):
            problems.append(Problem(f"select_k {self.select_k!r} is not a positive integer"))
        if self.select_method not in SELECT_METHODS:
            problems.append(Problem(f"select_method {self.select_method!r} is not known"))
        if not (isinstance(self.cv, Integral) and self.cv >= 2):
            problems.append(Problem(f"cv {self.cv!r} is not an integer >= 2"))
        if not (isinstance(self.combiner_alpha, Real) and self.combiner_alpha >= 0):
            problems.append(Problem(f"combiner_alpha {self.combiner_alpha!r} is not >= 0"))
        if problems:
            raise InputError("Bad survival model options", problems)
        return learners

    def _frame(self, X, *, fitting: bool) -> pd.DataFrame:
        return input_frame(self, X, fitting=fitting)

    def _resolve_groups(self, columns: list[str]) -> dict[str, list[str]]:
        return chosen_groups(self, resolve_groups(self, columns), columns)

    def _encoded(self, X) -> pd.DataFrame:
        check_is_fitted(self, "branches_")
        return self.encoder_.transform(self._frame(X, fitting=False))

    def _branch(self, columns: list[str], learner: str):
        options: dict = {}
        if self.harmonize is not None:
            options.update(
                harmonize=self.harmonize,
                harmonize_unseen=self.harmonize_unseen,
                harmonize_columns=[
                    c for g, cols in self.groups_.items() if g != CLINICAL_GROUP for c in cols
                ],
            )
        if self.icc_table is not None:
            options.update(icc_table=self.icc_table, icc_threshold=self.icc_threshold)
        if self.correlation_threshold is not None:
            options["correlation_threshold"] = self.correlation_threshold
        if self.select_k is not None:
            options.update(select_k=self.select_k, select_method=self.select_method)
        estimator = make_survival_learner(learner, self.random_state)
        return make_branch(columns, estimator, self.random_state, **options)

    def _presence(self, X: pd.DataFrame) -> dict[str, np.ndarray]:
        """Per group: the rows having at least one of its values."""
        return {
            g: X.reindex(columns=cols).notna().any(axis=1).to_numpy()
            for g, cols in self.groups_.items()
        }

    # ------------------------------------------------------------------ fit

    def fit(self, X, y):
        """Fit on a patient table ``X`` and a survival target ``y``.

        ``y``: a structured array of ``(event, time)`` records
        (:func:`radfusion.pipeline.survival.survival_target`, or scikit-survival's
        ``Surv.from_arrays``), or a DataFrame with ``event`` and ``time`` columns. Missing
        or negative times, events that are not 0/1 and a target without events are errors
        naming the patients (the rows of a DataFrame ``X`` by its index).
        """
        learners = self._check_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        frame = self._frame(X, fitting=True)
        ids = frame.index if isinstance(X, pd.DataFrame) else None
        y = check_survival_y(y, ids)
        if len(y) != len(frame):
            raise ValueError(f"X has {len(frame)} rows but y has {len(y)}")
        passthrough = (self.harmonize,) if self.harmonize else ()
        self.encoder_ = CategoricalEncoder(
            self.categories, max_levels=self.max_levels, passthrough=passthrough
        ).fit(frame)
        encoded = self.encoder_.transform(frame)
        self.groups_ = self._resolve_groups(list(encoded.columns))
        if not self.groups_ or any(not cols for cols in self.groups_.values()):
            raise InputError("No feature columns in a group", [Problem(str(self.groups_))])
        event, time = y[EVENT_FIELD], y[TIME_FIELD]
        self.event_times_ = np.unique(time[event])
        self.risk_scale_, self.indicator_groups_ = {}, []
        if self.strategy in ("single", "early"):
            if self.strategy == "single" and len(self.groups_) != 1:
                raise InputError(
                    "The 'single' strategy needs exactly one group",
                    [Problem(f"got {len(self.groups_)} groups: {', '.join(self.groups_)}")],
                )
            columns = [c for cols in self.groups_.values() for c in cols]
            branch = self._branch(columns, self.learner)
            self.branches_ = {self.strategy: fit_once(branch, encoded, y)}
            self.branch_groups_ = {self.strategy: None}
            return self
        if self.strategy == "late" and len(self.groups_) > 1:
            pairs = [(g, self.learner) for g in self.groups_]
        else:
            pairs = [(g, name) for g in self.groups_ for name in learners]
        names = [branch_name(g, name) for g, name in pairs]
        if len(set(names)) != len(names):
            raise InputError(
                "Group names collide once '__' is written as '/'",
                [Problem(f"groups: {', '.join(self.groups_)}")],
            )
        self.branch_groups_ = {n: g for n, (g, _) in zip(names, pairs, strict=True)}
        branches = {
            n: self._branch(self.groups_[g], lrn) for n, (g, lrn) in zip(names, pairs, strict=True)
        }
        present = self._presence(encoded)
        rows = {g: np.flatnonzero(p) for g, p in present.items()}
        usable = [n for n in names if event[rows[self.branch_groups_[n]]].sum() >= MIN_EVENTS]
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_branch)(branches[n], encoded, y, rows[self.branch_groups_[n]])
            for n in usable
        )
        self.branches_ = dict(zip(usable, fitted, strict=True))
        if self.strategy == "late":
            for n, est in self.branches_.items():
                r = rows[self.branch_groups_[n]]
                self.risk_scale_[n] = self._scale(est.predict(encoded.iloc[r]))
            self._fit_baseline_km(event, time)
            return self
        return self._fit_stacking(encoded, y, branches, usable, rows)

    @staticmethod
    def _scale(risk: np.ndarray) -> tuple[float, float]:
        risk = np.asarray(risk, dtype=np.float64)
        sd = float(risk.std()) if len(risk) > 1 else 0.0
        return float(risk.mean()) if len(risk) else 0.0, sd if sd > 0 else 1.0

    def _fit_baseline_km(self, event, time):
        from sksurv.nonparametric import kaplan_meier_estimator

        self.km_time_, self.km_survival_ = kaplan_meier_estimator(event, time)

    def _fit_stacking(self, encoded, y, branches, usable, rows):
        event, time = y[EVENT_FIELD], y[TIME_FIELD]
        n = len(y)
        splits = list(
            EventStratifiedKFold(self.cv, random_state=self.random_state).split(encoded, y)
        )
        tasks = []
        for n_ in usable:
            has = np.zeros(n, dtype=bool)
            has[rows[self.branch_groups_[n_]]] = True
            for train, test in splits:
                tasks.append((n_, train[has[train]], test[has[test]]))
        results = Parallel(n_jobs=self.n_jobs)(
            delayed(_oof_risk)(branches[n_], encoded, y, train, test) for n_, train, test in tasks
        )
        oof = {n_: np.full(n, np.nan) for n_ in usable}
        for (n_, _, test), risk in zip(tasks, results, strict=True):
            if risk is not None:
                oof[n_][test] = risk
        # a branch without any out-of-fold risk cannot be weighed: it sits out
        kept = [n_ for n_ in usable if np.isfinite(oof[n_]).sum() >= 2]
        self.branches_ = {n_: self.branches_[n_] for n_ in kept}
        columns = []
        for n_ in kept:
            scored = np.isfinite(oof[n_])
            self.risk_scale_[n_] = self._scale(oof[n_][scored])
            mean, sd = self.risk_scale_[n_]
            columns.append(np.where(scored, (oof[n_] - mean) / sd, 0.0))
        scored_groups = {
            g: np.any([np.isfinite(oof[n_]) for n_ in kept if self.branch_groups_[n_] == g], axis=0)
            if any(self.branch_groups_[n_] == g for n_ in kept)
            else np.zeros(n, dtype=bool)
            for g in self.groups_
        }
        self.indicator_groups_ = [g for g, s in scored_groups.items() if not s.all() and s.any()]
        indicators = [(~scored_groups[g]).astype(np.float64) for g in self.indicator_groups_]
        Z = np.column_stack(columns + indicators) if columns else np.zeros((n, 0))
        self.combiner_ = NonNegativeCox(alpha=self.combiner_alpha, n_free=len(indicators)).fit(
            Z, event, time
        )
        self._fit_breslow(self.combiner_.predict(Z), event, time)
        return self

    def _fit_breslow(self, lp, event, time):
        from sksurv.linear_model.coxph import BreslowEstimator

        self.baseline_ = BreslowEstimator().fit(lp, event, time)

    # ------------------------------------------------------------------ predict

    def _branch_risks(self, encoded: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Standardised risk of every kept branch (n, b) and whether the row has its group."""
        present = self._presence(encoded)
        names = list(self.branches_)
        risk = np.zeros((len(encoded), len(names)))
        has = np.zeros((len(encoded), len(names)), dtype=bool)
        for j, name in enumerate(names):
            rows = np.flatnonzero(present[self.branch_groups_[name]])
            has[rows, j] = True
            if len(rows):
                mean, sd = self.risk_scale_[name]
                risk[rows, j] = (self.branches_[name].predict(encoded.iloc[rows]) - mean) / sd
        return risk, has

    def _stack_inputs(self, encoded: pd.DataFrame) -> np.ndarray:
        risk, _ = self._branch_risks(encoded)
        present = self._presence(encoded)
        indicators = [(~present[g]).astype(np.float64) for g in self.indicator_groups_]
        return np.column_stack([risk, *indicators]) if risk.size or indicators else risk

    def predict(self, X) -> np.ndarray:
        """Risk score of each row: higher means an earlier event.

        single/early: the learner's risk; late: the mean standardised branch risk over the
        groups the patient has (0, the training average, when none); stacking: the
        combiner's log relative hazard.
        """
        encoded = self._encoded(X)
        if self.strategy in ("single", "early"):
            return np.asarray(self.branches_[self.strategy].predict(encoded), dtype=np.float64)
        if self.strategy == "late":
            risk, has = self._branch_risks(encoded)
            count = has.sum(axis=1)
            return np.where(count > 0, risk.sum(axis=1) / np.maximum(count, 1), 0.0)
        return self.combiner_.predict(self._stack_inputs(encoded))

    def predict_survival(self, X, times) -> np.ndarray:
        """Survival probabilities ``S(t | x)`` at ``times``, shape (n_rows, len(times)).

        single/early: the learner's survival function (CoxNet and GBSA: Breslow baseline;
        RSF: the forest's). late: the mean over the branches the patient has (the training
        Kaplan–Meier estimate when none). stacking: Breslow baseline of the combiner fitted
        on the training rows' out-of-fold inputs. Times outside ``[0, last training time]``
        are a ``ValueError`` (nothing is extrapolated).
        """
        encoded = self._encoded(X)
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        if self.strategy in ("single", "early"):
            branch = self.branches_[self.strategy]
            features = branch[:-1].transform(encoded)
            return _survival_at(branch[-1].predict_survival_function(features), times)
        if self.strategy == "stacking":
            lp = self.combiner_.predict(self._stack_inputs(encoded))
            return _survival_at(self.baseline_.get_survival_function(lp), times)
        if times.max(initial=0.0) > self.km_time_[-1] or times.min(initial=0.0) < 0:
            raise ValueError(f"times must be within [0; {self.km_time_[-1]:f}]")
        present = self._presence(encoded)
        total = np.zeros((len(encoded), len(times)))
        count = np.zeros(len(encoded))
        for name, branch in self.branches_.items():
            rows = np.flatnonzero(present[self.branch_groups_[name]])
            if len(rows):
                features = branch[:-1].transform(encoded.iloc[rows])
                total[rows] += _survival_at(branch[-1].predict_survival_function(features), times)
                count[rows] += 1
        position = np.searchsorted(self.km_time_, times, side="right") - 1
        km = np.where(position >= 0, self.km_survival_[np.maximum(position, 0)], 1.0)
        return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], km)

    def score(self, X, y) -> float:
        """Harrell's concordance index of ``predict(X)`` with the survival target ``y``."""
        from sksurv.metrics import concordance_index_censored

        y = check_survival_y(y)
        return float(concordance_index_censored(y[EVENT_FIELD], y[TIME_FIELD], self.predict(X))[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.target_tags.required = True
        return tags


def build_survival_estimators(
    groups: Sequence[str], *, columns: Sequence[str] | None = None, **params
) -> dict[str, FusionSurvival]:
    """Every model of a multimodal survival comparison, by name, as :class:`FusionSurvival`.

    The survival counterpart of :func:`radfusion.pipeline.fusion.build_estimators`, in the
    same order and with the same names: one single model per group (two or more groups), the
    ``volume`` and ``control`` baselines the table's ``columns`` have, then ``early``,
    ``late`` and ``stacking`` (no ``shared``: :data:`SHARED_SKIPPED`). Every model gets the
    same ``params``.
    """
    models: dict[str, FusionSurvival] = {}
    if len(groups) > 1:
        for group in groups:
            key = f"single:{group}" if group in (*SURVIVAL_STRATEGIES, "shared") else group
            models[key] = FusionSurvival("single", use_groups=[group], **params)
    if columns is not None:
        names = [str(c) for c in columns]
        found = infer_groups(names, pattern=params.get("group_pattern"))
        for baseline in baseline_groups(names, found):
            if baseline not in groups:
                models[baseline] = FusionSurvival("single", use_groups=[baseline], **params)
    for strategy in SURVIVAL_STRATEGIES[1:]:
        models[strategy] = FusionSurvival(strategy, **params)
    return models
