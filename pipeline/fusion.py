"""Fusion models over column groups: single branch, early, late and stacked fusion.

A *branch* is a :class:`~sklearn.pipeline.Pipeline` that sees the columns of one group (or of
several, for early fusion) of a pandas DataFrame: select → median-impute → drop constant
features → standardise → base learner. Every step is fitted on the data passed to ``fit`` only,
so the models can go straight into ``cross_validate`` without leakage.

- ``single``: one group, one branch.
- ``early``: one branch on the columns of all groups together.
- ``late``: one branch per group, probabilities averaged (soft voting).
- ``stacking``: one branch per group × learner; a non-negative logistic regression
  (:class:`NonNegativeLogisticRegression`) combines their out-of-fold probabilities from an
  inner stratified CV, then the branches are refitted on all the training data.

Branch (estimator) names are ``"{group}:{learner}"`` with the column separator ``__`` written as
``/`` (scikit-learn reserves ``__`` for nested parameters), e.g. ``"CT/tumor:lr"``; nested
parameters read ``"CT/tumor:lr__logisticregression__C"``. See :func:`branch_name`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from numbers import Real

import numpy as np
from scipy import special
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from features.errors import InputError, Problem
from features.naming import CLINICAL_GROUP, SEPARATOR
from pipeline.learners import LEARNERS, make_learner
from pipeline.preprocessing import ComBat, CorrelationFilter, SelectTopK, VarianceFilter

STRATEGIES = ("single", "early", "late", "stacking")
"""Fusion strategies accepted by :func:`build_model`."""

_EPS = 1e-6  # probabilities are clipped to [_EPS, 1 - _EPS] before the logit


# --------------------------------------------------------------------------- branches


class DropConstantFeatures(VarianceFilter):
    """Drop features that are constant on the training data (zero variance).

    :class:`pipeline.preprocessing.VarianceFilter` with ``threshold=0`` and no parameters:
    when *every* feature is constant it keeps them all instead of raising, so a branch whose
    modality is missing (all NaN, imputed to a constant) in a training fold predicts the base
    rate instead of aborting the whole CV run.
    """

    threshold = 0.0

    def __init__(self):
        pass


def make_branch(
    columns: Sequence[str],
    learner: str | ClassifierMixin = "lr",
    random_state: int | None = 0,
    *,
    harmonize: str | None = None,
    harmonize_columns: Sequence[str] | None = None,
    harmonize_unseen: str = "error",
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
) -> Pipeline:
    """One fusion branch: the given DataFrame columns → impute → filter → scale → learner.

    Parameters
    ----------
    columns : sequence of str
        Names of the DataFrame columns this branch sees (all others are dropped).
    learner : str or classifier, default="lr"
        A name from :data:`pipeline.learners.LEARNERS`, or an unfitted classifier (cloned).
    random_state : int or None, default=0
        Seed of the learner (ignored when ``learner`` is an estimator).
    harmonize : str, optional
        Name of the site column of the DataFrame: the branch's columns (those in
        ``harmonize_columns``) are harmonised by :class:`~pipeline.preprocessing.ComBat`
        before imputation. The site column is read by ComBat and is not a feature.
    harmonize_columns : sequence of str, optional
        The columns to harmonise (default: all of ``columns``); the others pass through.
    harmonize_unseen : {"error", "pooled"}, default="error"
        ComBat's handling of a site not seen in training (see :class:`ComBat`).
    correlation_threshold : float, optional
        Add a :class:`~pipeline.preprocessing.CorrelationFilter` (Pearson) with this
        threshold after the constant filter.
    select_k : int, optional
        Add a :class:`~pipeline.preprocessing.SelectTopK` keeping ``select_k`` features.
    select_method : {"anova", "mrmr"}, default="anova"
        Method of the top-k selector.

    Returns
    -------
    Pipeline
        Steps ``columntransformer`` (selection, ``remainder="drop"``; with ``harmonize`` its
        transformer ``combat`` harmonises and ``select`` passes the other columns through),
        ``simpleimputer`` (median, all-NaN columns kept as 0), ``dropconstantfeatures``,
        optionally ``correlationfilter`` and ``selecttopk``, ``standardscaler`` and the learner,
        named after its class (e.g. ``logisticregression``). Without the optional arguments the
        branch is exactly the historical one.
    """
    columns = [c for c in dict.fromkeys(columns) if c != harmonize]
    if not columns:
        raise ValueError("a branch needs at least one column")
    estimator = make_learner(learner, random_state) if isinstance(learner, str) else clone(learner)
    harmonized = []
    if harmonize is not None:
        wanted = set(columns if harmonize_columns is None else harmonize_columns)
        harmonized = [c for c in columns if c in wanted]
    passthrough = [c for c in columns if c not in set(harmonized)]
    transformers = []
    if harmonized:
        combat = ComBat(batch=harmonize, unseen=harmonize_unseen)
        transformers.append(("combat", combat, [*harmonized, harmonize]))
    if passthrough:
        transformers.append(("select", "passthrough", passthrough))
    select = ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)
    steps = [
        select,
        SimpleImputer(strategy="median", keep_empty_features=True),
        DropConstantFeatures(),
    ]
    if correlation_threshold is not None:
        steps.append(CorrelationFilter(threshold=correlation_threshold))
    if select_k is not None:
        steps.append(SelectTopK(k=select_k, method=select_method))
    return make_pipeline(*steps, StandardScaler(), estimator)


def branch_name(group: str, learner: str | None = None) -> str:
    """Estimator name of a group's branch inside a fusion ensemble.

    >>> branch_name("CT__tumor", "lr")
    'CT/tumor:lr'
    """
    name = group.replace(SEPARATOR, "/")
    return name if learner is None else f"{name}:{learner}"


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

    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
        Non-negative weight of each base model.
    intercept_ : ndarray of shape (1,)
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined only when X has string column names.
    n_iter_ : int
        Iterations run by the optimiser.
    """

    def __init__(self, C=1.0, *, logit=True, tol=1e-6, max_iter=1000):
        self.C = C
        self.logit = logit
        self.tol = tol
        self.max_iter = max_iter

    def fit(self, X, y, sample_weight=None):
        """Fit the weights and intercept on (out-of-fold) probabilities ``X`` and labels ``y``."""
        if not (isinstance(self.C, Real) and self.C > 0):
            raise ValueError(f"C must be a positive number, got {self.C!r}")
        X, y = validate_data(self, X, y, dtype=np.float64)
        check_classification_targets(y)
        y_type = type_of_target(y, input_name="y")
        if y_type != "binary":
            raise ValueError(
                "Only binary classification is supported. The type of the target is "
                f"{y_type}."
            )
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                f"{type(self).__name__} needs 2 classes in y; got 1 class: {self.classes_[0]!r}"
            )
        Z = self._inputs(X)
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
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
            bounds=[(None, None)] + [(0.0, None)] * n_features,
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
        if X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"{type(self).__name__}(logit=True) expects probabilities in [0, 1] (e.g. "
                f"stacked predict_proba outputs); got values in [{X.min():.3g}, {X.max():.3g}]. "
                "Use logit=False for real-valued scores."
            )
        return special.logit(np.clip(X, _EPS, 1.0 - _EPS))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


# --------------------------------------------------------------------------- fusion models


def build_model(
    groups: Mapping[str, Sequence[str]],
    strategy: str,
    learner: str = "lr",
    learners: Sequence[str] = LEARNERS,
    cv: int = 5,
    random_state: int | None = 0,
    *,
    n_jobs: int | None = None,
    harmonize: str | None = None,
    harmonize_unseen: str = "error",
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
) -> BaseEstimator:
    """Build an unfitted fusion model over column groups of a DataFrame.

    Parameters
    ----------
    groups : mapping of str to sequence of str
        Group name → its column names, e.g. from :func:`pipeline.columns.infer_groups`.
    strategy : {"single", "early", "late", "stacking"}
        ``"single"``: exactly one group, one branch with ``learner``.
        ``"early"``: one branch with ``learner`` on all groups' columns together.
        ``"late"``: soft vote (mean probability) of one branch per group with ``learner``; with
        a single group, a soft vote of that group's branches with every learner in ``learners``.
        ``"stacking"``: branches for every group × every learner in ``learners``, named
        ``"{group}:{learner}"``, combined by :class:`NonNegativeLogisticRegression` fitted on
        their out-of-fold positive-class probabilities from ``StratifiedKFold(cv, shuffle=True,
        random_state)``; the branches are then refitted on all the training data.
    learner : str, default="lr"
        Learner of the single, early and (multi-group) late models.
    learners : sequence of str, default=LEARNERS
        Learners of the stacking model (and of late fusion over a single group).
    cv : int, default=5
        Inner folds of stacking.
    random_state : int or None, default=0
        Seed of the learners and of the inner folds.
    n_jobs : int or None, default=None
        Parallel jobs over branches (late) or branch fits (stacking).
    harmonize : str, optional
        Site column of the DataFrame (e.g. ``"site"``, see ``load_dataset(keep_site=True)``):
        every branch harmonises its imaging columns with ComBat, fitted on its training rows;
        the ``clinical`` group's columns are never harmonised. See :func:`make_branch`.
    harmonize_unseen : {"error", "pooled"}, default="error"
        ComBat's handling of a site absent from the training rows (outer or, for stacking,
        inner folds). Small sites may be missing from a fold: use ``"pooled"`` then.
    correlation_threshold : float, optional
        Per branch, drop features correlated above it with an earlier kept one.
    select_k : int, optional
        Per branch, keep the ``select_k`` best features (``select_method``: "anova"/"mrmr").
    select_method : {"anova", "mrmr"}, default="anova"

    Returns
    -------
    BaseEstimator
        A ``Pipeline``, ``VotingClassifier`` or ``StackingClassifier``; fit it on a DataFrame.

    Raises
    ------
    InputError
        Unknown strategy or learner, empty groups, or ``"single"`` with several groups.
    """
    groups = _check_groups(groups)
    if strategy not in STRATEGIES:
        raise InputError(
            "Unknown fusion strategy",
            [Problem(f"{strategy!r} is not one of {', '.join(map(repr, STRATEGIES))}")],
        )
    _check_learners([learner])
    learners = _check_learners(learners)
    options = _branch_options(groups, harmonize, harmonize_unseen, correlation_threshold,
                              select_k, select_method)

    if strategy == "single":
        if len(groups) != 1:
            raise InputError(
                "The 'single' strategy needs exactly one group",
                [Problem(f"got {len(groups)} groups: {', '.join(groups)}")],
            )
        (columns,) = groups.values()
        return make_branch(columns, learner, random_state, **options)
    if strategy == "early":
        columns = [c for cols in groups.values() for c in cols]
        return make_branch(columns, learner, random_state, **options)

    if strategy == "late" and len(groups) > 1:
        pairs = [(group, learner) for group in groups]
    else:  # stacking, or late fusion of the learners on a single group
        pairs = [(group, name) for group in groups for name in learners]
    estimators = _named_branches(groups, pairs, random_state, options)
    if strategy == "late":
        return VotingClassifier(estimators, voting="soft", n_jobs=n_jobs)
    return StackingClassifier(
        estimators,
        final_estimator=NonNegativeLogisticRegression(),
        cv=StratifiedKFold(cv, shuffle=True, random_state=random_state),
        stack_method="predict_proba",
        n_jobs=n_jobs,
    )


def build_models(
    groups: Mapping[str, Sequence[str]],
    learner: str = "lr",
    learners: Sequence[str] = LEARNERS,
    cv: int = 5,
    random_state: int | None = 0,
    *,
    n_jobs: int | None = None,
    harmonize: str | None = None,
    harmonize_unseen: str = "error",
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
) -> dict[str, BaseEstimator]:
    """All the models a multimodal comparison needs, by name, in a fixed order.

    With two or more groups: one ``"single"`` model per group, keyed by the group name, then
    ``"early"``, ``"late"`` and ``"stacking"`` (see :func:`build_model`). A group whose name is
    itself ``"early"``, ``"late"`` or ``"stacking"`` (C4KC-KiTS has a ``late`` contrast phase) is
    keyed ``"single:{group}"`` instead.

    With one group: ``"early"`` is the single-branch model with ``learner``; ``"late"`` is a
    soft vote and ``"stacking"`` a stack of that group's branches over ``learners``.

    ``harmonize``, ``harmonize_unseen``, ``correlation_threshold``, ``select_k`` and
    ``select_method`` apply to every branch of every model (see :func:`build_model`).
    """
    groups = _check_groups(groups)
    kwargs = dict(learner=learner, learners=learners, cv=cv, random_state=random_state,
                  n_jobs=n_jobs, harmonize=harmonize, harmonize_unseen=harmonize_unseen,
                  correlation_threshold=correlation_threshold, select_k=select_k,
                  select_method=select_method)
    models: dict[str, BaseEstimator] = {}
    if len(groups) > 1:
        for group, columns in groups.items():
            key = f"single:{group}" if group in STRATEGIES else group
            models[key] = build_model({group: columns}, "single", **kwargs)
    for strategy in ("early", "late", "stacking"):
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
        Problem(f"{name!r} is not one of {', '.join(map(repr, LEARNERS))}")
        for name in learners
        if name not in LEARNERS
    ]
    if not learners:
        problems.append(Problem("no learners given"))
    if len(set(learners)) != len(learners):
        problems.append(Problem(f"learners repeat: {learners}"))
    if problems:
        raise InputError("Bad learner list", problems)
    return learners


def _branch_options(groups, harmonize, harmonize_unseen, correlation_threshold, select_k,
                    select_method) -> dict:
    """Keyword arguments of :func:`make_branch`; only the non-default ones (so that a model
    built without options is exactly the historical one)."""
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
        (bname, make_branch(groups[g], name, random_state, **options))
        for bname, (g, name) in zip(names, pairs, strict=True)
    ]
