"""Base learners with defaults that suit radiomics tables (n ≈ 50–500, p ≈ 100–2000).

:data:`LEARNERS` are the defaults; :data:`WIDE_LEARNERS` (penalised logistic regressions that
choose their penalty by inner CV, extra-trees) are available by name and were compared with
them in ``benchmarks/base_learners.py``.

Every learner exposes ``predict_proba`` (soft voting and stacking need it), is deterministic
for a fixed ``random_state`` and single-threaded (parallelism belongs to the outer CV loop).
They expect standardised inputs without missing values;
:func:`radfusion.pipeline.fusion.make_branch` puts each one behind imputation and scaling.
"""

from __future__ import annotations

import inspect
from numbers import Integral, Real

import numpy as np
import sklearn
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import ExtraTreesClassifier, RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, LogisticRegressionCV, RidgeCV
from sklearn.model_selection import StratifiedShuffleSplit
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from xgboost import XGBClassifier, XGBRegressor

from radfusion.features.errors import InputError, Problem

from ._sklearn_compat import check_sample_weight
from .splits import AdaptiveStratifiedKFold

LEARNERS = ("lr", "svm", "rf", "xgb")
"""The default learners, in the order fusion models list them (stacking's ``learners``)."""

WIDE_LEARNERS = ("l1", "enet", "et")
"""Further classifiers for wide tables (``benchmarks/base_learners.py``), by name only."""

POOLED_LEARNERS = ("lr", "rf30")
"""The default learners of the ``pooled`` strategy: the winner of the second pre-registered
round of ``benchmarks/honest_default.py`` (mean AUC 0.729 on 12 radMLBench tables against
stacking's 0.723, at 0.88 of its cost), with ``rf30`` at 100 trees by its third round (mean
AUC 0.727, 0.56 of the cost)."""

LEARNER_NAMES = (*LEARNERS, "rf30", *WIDE_LEARNERS)
"""Every name :func:`make_learner` accepts for a classification task."""

REGRESSOR_NAMES = (*LEARNERS, "rf30")
"""Every name :func:`make_regressor` accepts."""

PENALTY_CS = tuple(np.logspace(-2, 1, 7))
"""Inverse penalties (``C``) that ``"l1"`` and ``"enet"`` choose among by inner CV."""

ENET_L1_RATIOS = (0.5,)
"""L1 share of ``"enet"`` (one value: saga over several costs ~3x more per fit)."""


_SKLEARN_VERSION = tuple(int(part) for part in sklearn.__version__.split(".")[:2])

RIDGE_ALPHAS = tuple(np.logspace(-1, 4, 11))
"""Penalties the regression ``"lr"`` learner chooses among (leave-one-out, training rows)."""


#: The boosted trees of ``"xgb"`` (classifier and regressor): 200 shallow, slow, subsampled
#: rounds, for small radiomics tables.
XGB_SETTINGS = dict(
    tree_method="hist",
    n_estimators=200,
    max_depth=3,
    learning_rate=0.05,
    subsample=0.8,
    colsample_bytree=0.5,
    n_jobs=1,
)


def learner_label(learner: str | BaseEstimator) -> str:
    """The name of a learner inside a fusion model: a name is its own label, an estimator is
    labelled by its class name in lower case (scikit-learn's ``make_pipeline`` naming).

    >>> from sklearn.linear_model import LogisticRegression
    >>> learner_label("rf"), learner_label(LogisticRegression())
    ('rf', 'logisticregression')
    """
    return learner if isinstance(learner, str) else type(learner).__name__.lower()


def named_learners(learners) -> list[tuple[str, str | BaseEstimator]]:
    """``(label, learner)`` of each item of a ``learners`` parameter: a name, an estimator
    (labelled by :func:`learner_label`) or a ``(label, estimator)`` pair, in order."""
    return [
        (item[0], item[1])
        if isinstance(item, (tuple, list))
        and len(item) == 2
        and isinstance(item[0], str)
        and not isinstance(item[1], str)
        else (learner_label(item), item)
        for item in learners
    ]


def strategy_learners(strategy: str, learners=None):
    """The learners of a stacking or pooled model: ``learners``, or when None the strategy's
    defaults (:data:`POOLED_LEARNERS` for ``"pooled"``, :data:`LEARNERS` otherwise).

    >>> strategy_learners("pooled"), strategy_learners("stacking", ["lr"])
    (('lr', 'rf30'), ['lr'])
    """
    if learners is not None:
        return learners
    return POOLED_LEARNERS if strategy == "pooled" else LEARNERS


def make_learner(
    name: str,
    random_state: int | None = 0,
    *,
    early_stopping: bool = False,
    multiclass: bool = False,
) -> BaseEstimator:
    """Return an unfitted base classifier with radiomics defaults.

    Parameters
    ----------
    name : {"lr", "svm", "rf", "xgb", "rf30", "l1", "enet", "et"}
        The first four are stacking's defaults (:data:`LEARNERS`), ``"lr"`` and ``"rf30"``
        the pooled strategy's (:data:`POOLED_LEARNERS`); the others (:data:`WIDE_LEARNERS`)
        are chosen by name.
        ``"lr"``: L2 logistic regression, strong shrinkage (``C=0.1``) because p ≫ n is the
        norm, balanced class weights.
        ``"svm"``: RBF SVC (``C=1``, ``gamma="scale"``, balanced class weights) whose decision
        values are mapped to probabilities by Platt scaling fitted on 5 internal stratified
        folds (``CalibratedClassifierCV(..., ensemble=False)``; this is what
        ``SVC(probability=True)`` does, which scikit-learn deprecated in 1.9).
        ``"rf"``: 200 trees, ``max_features="sqrt"``, balanced bootstrap class weights.
        ``"rf30"``: a forest of 100 trees drawing 30 % of the features at each split (RELY's
        other ``max_features``; radiomics tables are wide and redundant, so a split that sees
        more features meets an informative one more often; 100 trees, not 200, by the third
        round of ``benchmarks/honest_default.py``: they cost 0.56 as much for -0.0017 AUC).
        ``"xgb"``: 200 shallow boosted trees (depth 3, learning rate 0.05, row subsample 0.8,
        column subsample 0.5), ``hist`` tree method. Expects labels 0/1 when used on its own
        (the fusion ensembles encode labels themselves).
        ``"l1"``: L1 logistic regression (liblinear; saga for multiclass), ``"enet"``:
        elastic-net logistic regression (saga, ``l1_ratio`` 0.5). Both are
        ``LogisticRegressionCV`` with balanced class weights choosing ``C`` among
        :data:`PENALTY_CS` by log-loss on 5 inner stratified folds of their own training rows
        (fewer when a class is small, :class:`~radfusion.pipeline.splits.AdaptiveStratifiedKFold`),
        then refitting on all of them. Classification only.
        ``"et"``: extra-trees, 500 trees, ``max_features="sqrt"``, balanced bootstrap class
        weights. Classification only.
    random_state : int or None, default=0
        Seed of every random choice (bootstrap, subsampling, Platt and inner-CV folds).
    early_stopping : bool, default=False
        For ``"xgb"`` only: return an :class:`EarlyStoppingXGBClassifier` (same tree
        defaults, up to 500 rounds stopped on an inner validation split of its own training
        rows, ``scale_pos_weight`` = n_neg / n_pos of those rows) instead of the plain
        ``XGBClassifier``. Used by tuned branches (:mod:`radfusion.pipeline.fusion`). Ignored
        otherwise.
    multiclass : bool, default=False
        The same classifiers for three or more classes (LR multinomial, SVM with one-vs-rest
        Platt scaling, RF, XGBoost ``multi:softprob``; ``"l1"`` switches to saga); early
        stopping is binary only. A regression target's learners are :func:`make_regressor`'s,
        a survival target's :func:`make_survival_learner`'s.

    Returns
    -------
    ClassifierMixin
        An unfitted scikit-learn compatible classifier.

    Raises
    ------
    InputError
        Unknown ``name`` (a ``ValueError``), listing the valid names; early stopping with
        ``multiclass``.
    """
    if early_stopping and multiclass:
        raise InputError(
            "Early-stopped XGBoost is for binary targets",
            [Problem("three or more classes: use the plain 'xgb' learner")],
        )
    if name == "lr":
        return LogisticRegression(
            C=0.1, class_weight="balanced", max_iter=10_000, random_state=random_state
        )
    if name == "svm":
        return CalibratedClassifierCV(
            SVC(C=1.0, gamma="scale", class_weight="balanced", random_state=random_state),
            method="sigmoid",
            cv=AdaptiveStratifiedKFold(5, shuffle=True, random_state=random_state),
            ensemble=False,
        )
    if name in ("rf", "rf30"):
        return RandomForestClassifier(
            n_estimators=200 if name == "rf" else 100,
            max_features="sqrt" if name == "rf" else 0.3,
            class_weight="balanced_subsample",
            n_jobs=1,
            random_state=random_state,
        )
    if name in ("l1", "enet"):
        return _penalised_logistic(name, random_state, multiclass=multiclass)
    if name == "et":
        return ExtraTreesClassifier(
            n_estimators=500,
            max_features="sqrt",
            class_weight="balanced_subsample",
            n_jobs=1,
            random_state=random_state,
        )
    if name == "xgb" and early_stopping:
        return EarlyStoppingXGBClassifier(random_state=random_state)
    if name == "xgb":
        return XGBClassifier(**XGB_SETTINGS, eval_metric="logloss", random_state=random_state)
    raise InputError(
        "Unknown learner",
        [Problem(f"{name!r} is not one of {', '.join(map(repr, LEARNER_NAMES))}")],
    )


def _penalised_logistic(
    name: str, random_state: int | None, *, multiclass: bool = False
) -> LogisticRegressionCV:
    """``"l1"`` / ``"enet"``: logistic regression whose penalty inner CV chooses."""
    l1_ratios = (1.0,) if name == "l1" else ENET_L1_RATIOS
    # liblinear is binary only; saga fits the multinomial model
    solver = "liblinear" if name == "l1" and not multiclass else "saga"
    kwargs: dict = {"l1_ratios": l1_ratios}
    if _SKLEARN_VERSION < (1, 8):  # 1.8 deprecated ``penalty``: l1_ratios alone says it
        kwargs["penalty"] = "l1" if name == "l1" else "elasticnet"
        if name == "l1":
            kwargs.pop("l1_ratios")
    if "use_legacy_attributes" in inspect.signature(LogisticRegressionCV).parameters:
        kwargs["use_legacy_attributes"] = False
    return LogisticRegressionCV(
        Cs=list(PENALTY_CS),
        cv=AdaptiveStratifiedKFold(5, shuffle=True, random_state=random_state),
        scoring="neg_log_loss",
        solver=solver,
        class_weight="balanced",
        max_iter=5_000,
        tol=1e-3,
        n_jobs=1,
        random_state=random_state,
        **kwargs,
    )


def make_regressor(name: str, random_state: int | None = 0) -> BaseEstimator:
    """Return an unfitted base regressor, the counterpart of :func:`make_learner`'s learner.

    ``"lr"``: ridge regression with its penalty chosen among :data:`RIDGE_ALPHAS` by efficient
    leave-one-out on the training rows (``RidgeCV``). ``"svm"``: RBF SVR (``C=1``,
    ``epsilon=0.1``) on the standardised target (``TransformedTargetRegressor``), so its
    margins do not depend on the target's units. ``"rf"``: 200 trees, ``max_features=1/3``
    (Breiman's default for regression), ``"rf30"``: 100 trees, ``max_features=0.3``.
    ``"xgb"``: the same trees as the classifier, squared error. The classification-only
    names of :data:`WIDE_LEARNERS` are refused.
    """
    if name in WIDE_LEARNERS:
        raise InputError(
            "No regression counterpart",
            [
                Problem(
                    f"learner {name!r} is for classification only; for a regression target "
                    f"use one of {', '.join(map(repr, LEARNERS))}"
                )
            ],
        )
    if name == "lr":
        return RidgeCV(alphas=RIDGE_ALPHAS)
    if name == "svm":
        return TransformedTargetRegressor(
            regressor=SVR(C=1.0, gamma="scale", epsilon=0.1), transformer=StandardScaler()
        )
    if name in ("rf", "rf30"):
        return RandomForestRegressor(
            n_estimators=200 if name == "rf" else 100,
            max_features=1 / 3 if name == "rf" else 0.3,
            n_jobs=1,
            random_state=random_state,
        )
    if name == "xgb":
        return XGBRegressor(**XGB_SETTINGS, random_state=random_state)
    raise InputError(
        "Unknown learner",
        [Problem(f"{name!r} is not one of {', '.join(map(repr, REGRESSOR_NAMES))}")],
    )


class EarlyStoppingXGBClassifier(ClassifierMixin, BaseEstimator):
    """XGBoost whose number of rounds is chosen by early stopping on its own training rows.

    At ``fit`` time a stratified ``validation_fraction`` of the rows *passed to fit* (seeded by
    ``random_state``) is held out; boosting runs on the rest for at most ``n_estimators``
    rounds and stops when the validation log-loss has not improved for
    ``early_stopping_rounds`` rounds. ``best_iteration_`` records the best round. With
    ``refit=True`` the booster is then refitted on all the rows with ``best_iteration_ + 1``
    rounds (small cohorts cannot spare 15 % of the patients). Nothing outside the rows given
    to ``fit`` is ever seen, so inside a cross-validation fold the held-out fold stays unseen.

    Class imbalance: with ``scale_pos_weight="balanced"`` the positive class is weighted by
    ``n_neg / n_pos`` (sample-weighted counts) of the rows given to ``fit``, computed at fit
    time (``scale_pos_weight_``), never from the full data.

    When a class has fewer than 2 rows, or the split would leave fewer than 2 rows on a side,
    there is no validation split: all ``n_estimators`` rounds are used
    (``best_iteration_ = n_estimators - 1``, ``validation_rows_`` empty).

    Parameters
    ----------
    n_estimators : int, default=500
        Maximum number of boosting rounds.
    max_depth, learning_rate, subsample, colsample_bytree, min_child_weight, reg_lambda
        As in ``xgboost.XGBClassifier`` (defaults: 3, 0.05, 0.8, 0.5, 1.0, 1.0).
    validation_fraction : float, default=0.15
        Fraction of the training rows held out for early stopping.
    early_stopping_rounds : int, default=25
        Patience, in rounds.
    scale_pos_weight : "balanced", float or None, default="balanced"
        ``"balanced"``: n_neg / n_pos of the training rows; a float is used as is; None: 1.
    refit : bool, default=True
        Refit on all the training rows with the chosen number of rounds.
    random_state : int or None, default=0
        Seed of the validation split and of XGBoost's subsampling.
    n_jobs : int, default=1
        XGBoost threads.

    Attributes
    ----------
    estimator_ : XGBClassifier
        The fitted booster used for prediction (labels encoded 0/1).
    best_iteration_ : int
        Best round (0-based) on the validation split.
    scale_pos_weight_ : float
        The positive-class weight used.
    train_rows_, validation_rows_ : ndarray of int
        Positions, among the rows passed to ``fit``, of the boosting and validation rows.
    classes_ : ndarray of shape (2,)
    n_features_in_ : int
    feature_names_in_ : ndarray
        Defined only when ``X`` has string column names.
    """

    def __init__(
        self,
        n_estimators=500,
        *,
        max_depth=3,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.5,
        min_child_weight=1.0,
        reg_lambda=1.0,
        validation_fraction=0.15,
        early_stopping_rounds=25,
        scale_pos_weight="balanced",
        refit=True,
        random_state=0,
        n_jobs=1,
    ):
        self.n_estimators = n_estimators
        self.max_depth = max_depth
        self.learning_rate = learning_rate
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.min_child_weight = min_child_weight
        self.reg_lambda = reg_lambda
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds
        self.scale_pos_weight = scale_pos_weight
        self.refit = refit
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _booster(self, n_estimators, scale_pos_weight, early_stopping_rounds=None):
        return XGBClassifier(
            tree_method="hist",
            n_estimators=int(n_estimators),
            max_depth=int(self.max_depth),
            learning_rate=self.learning_rate,
            subsample=self.subsample,
            colsample_bytree=self.colsample_bytree,
            min_child_weight=self.min_child_weight,
            reg_lambda=self.reg_lambda,
            scale_pos_weight=scale_pos_weight,
            eval_metric="logloss",
            early_stopping_rounds=early_stopping_rounds,
            n_jobs=self.n_jobs,
            random_state=self.random_state,
        )

    def _check_params(self):
        if not (isinstance(self.n_estimators, Integral) and self.n_estimators >= 1):
            raise ValueError(f"n_estimators must be a positive integer, got {self.n_estimators!r}")
        if not (isinstance(self.validation_fraction, Real) and 0 < self.validation_fraction < 1):
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}"
            )
        if not (
            isinstance(self.early_stopping_rounds, Integral) and self.early_stopping_rounds >= 1
        ):
            raise ValueError(
                "early_stopping_rounds must be a positive integer, got "
                f"{self.early_stopping_rounds!r}"
            )
        spw = self.scale_pos_weight
        if not (spw is None or spw == "balanced" or (isinstance(spw, Real) and spw > 0)):
            raise ValueError(
                f"scale_pos_weight must be 'balanced', a positive number or None, got {spw!r}"
            )

    def fit(self, X, y, sample_weight=None):
        """Hold out a validation split of these rows, boost with early stopping, refit."""
        self._check_params()
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan")
        check_classification_targets(y)
        self.classes_, y01 = np.unique(y, return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError(
                f"Only binary classification is supported. {type(self).__name__} "
                f"got {len(self.classes_)} classes"
            )
        sw = check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.scale_pos_weight == "balanced":
            n_pos, n_neg = sw[y01 == 1].sum(), sw[y01 == 0].sum()
            self.scale_pos_weight_ = float(n_neg / n_pos) if n_pos > 0 else 1.0
        else:
            self.scale_pos_weight_ = (
                1.0 if self.scale_pos_weight is None else float(self.scale_pos_weight)
            )
        n = len(y01)
        n_val = int(np.ceil(self.validation_fraction * n))
        rows = np.arange(n)
        if np.bincount(y01).min() >= 2 and n_val >= 2 and n - n_val >= 2:
            split = StratifiedShuffleSplit(1, test_size=n_val, random_state=self.random_state)
            train, val = next(split.split(np.zeros((n, 1)), y01))
            train, val = np.sort(train), np.sort(val)
            model = self._booster(
                self.n_estimators, self.scale_pos_weight_, self.early_stopping_rounds
            )
            model.fit(
                X[train],
                y01[train],
                sample_weight=sw[train],
                eval_set=[(X[val], y01[val])],
                sample_weight_eval_set=[sw[val]],
                verbose=False,
            )
            self.best_iteration_ = int(model.best_iteration)
        else:
            train, val = rows, rows[:0]
            model = None
            self.best_iteration_ = int(self.n_estimators) - 1
        self.train_rows_, self.validation_rows_ = train, val
        if model is None or self.refit:
            model = self._booster(self.best_iteration_ + 1, self.scale_pos_weight_)
            model.fit(X, y01, sample_weight=sw, verbose=False)
        self.estimator_ = model
        return self

    def predict_proba(self, X):
        """Probabilities of ``classes_``, shape (n_samples, 2)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=np.float64, ensure_all_finite="allow-nan", reset=False)
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        """The more probable class."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def feature_importances_(self):
        """Gain-based feature importances of the fitted booster."""
        check_is_fitted(self)
        return self.estimator_.feature_importances_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.classifier_tags.multi_class = False
        return tags


SURVIVAL_LEARNERS = ("coxnet", "rsf", "gbsa")
"""Names accepted by :func:`make_survival_learner` (scikit-survival, optional extra)."""

COXNET_ALPHA_RATIO = 0.1
"""CoxNet's penalty as a fraction of the smallest penalty that zeroes every coefficient."""


def make_survival_learner(name: str, random_state: int | None = 0) -> BaseEstimator:
    """Return an unfitted scikit-survival learner with radiomics defaults.

    Each predicts a risk score (higher = earlier event) and survival functions. Needs the
    optional extra ``radfusion[survival]`` (scikit-survival).

    Parameters
    ----------
    name : {"coxnet", "rsf", "gbsa"}
        ``"coxnet"``: elastic-net Cox (``CoxnetSurvivalAnalysis``, ``l1_ratio=0.5``) whose
        path of 30 penalties runs from ``alpha_max`` (the smallest penalty that zeroes every
        coefficient, from the training rows) down to ``COXNET_ALPHA_RATIO * alpha_max``; it
        predicts with the last one, so no inner search is needed. Baseline hazard kept
        (Breslow) for survival functions.
        ``"rsf"``: random survival forest, 200 trees, ``max_features="sqrt"``,
        ``min_samples_leaf=5``.
        ``"gbsa"``: gradient-boosted Cox model (``GradientBoostingSurvivalAnalysis``, Cox
        partial likelihood loss), 200 trees of depth 3, learning rate 0.05, row subsample 0.8,
        ``max_features="sqrt"``.
    random_state : int or None, default=0
        Seed of the forests and of the boosting subsamples.

    Raises
    ------
    InputError
        Unknown ``name``, or scikit-survival is not installed.
    """
    if name not in SURVIVAL_LEARNERS:
        raise InputError(
            "Unknown survival learner",
            [Problem(f"{name!r} is not one of {', '.join(map(repr, SURVIVAL_LEARNERS))}")],
        )
    try:
        from sksurv.ensemble import GradientBoostingSurvivalAnalysis, RandomSurvivalForest
        from sksurv.linear_model import CoxnetSurvivalAnalysis
    except ImportError as error:
        raise InputError(
            "Survival models need scikit-survival",
            [Problem("install the extra: pip install 'radfusion[survival]'")],
        ) from error
    if name == "coxnet":
        return CoxnetSurvivalAnalysis(
            l1_ratio=0.5,
            n_alphas=30,
            alpha_min_ratio=COXNET_ALPHA_RATIO,
            fit_baseline_model=True,
            max_iter=100_000,
        )
    if name == "rsf":
        return RandomSurvivalForest(
            n_estimators=200,
            max_features="sqrt",
            min_samples_leaf=5,
            n_jobs=1,
            random_state=random_state,
        )
    return GradientBoostingSurvivalAnalysis(
        loss="coxph",
        n_estimators=200,
        learning_rate=0.05,
        max_depth=3,
        subsample=0.8,
        max_features="sqrt",
        random_state=random_state,
    )
