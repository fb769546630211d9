"""One scikit-learn estimator is the model: its parameters are the whole run configuration.

:class:`FusionClassifier` (binary and multiclass outcomes) and :class:`FusionRegressor`
(continuous outcomes) take the joined patient table — feature columns
``modality__mask__feature``, raw clinical columns (text categories included) and, when
harmonising, the site column — and hold every modelling choice as a parameter. At ``fit`` they
check their parameters once (``_parameter_constraints``, scikit-learn's mechanism), encode text
columns (:class:`~radfusion.pipeline.preprocessing.CategoricalEncoder`, on the training rows),
infer the groups from the column names unless given (``groups_``), then compose the fusion
model from their own parameters (``model_``) and fit it:

- ``single``: one group, one branch (select → median-impute → drop constant features →
  harmonise → filter/select → standardise → learner, :func:`make_branch`).
- ``early``: one branch on the columns of all groups together.
- ``late``: one branch per group, probabilities averaged over the groups a patient has.
- ``stacking``: one branch per group × learner, combined by the ``combiner`` (default
  ``"platt"`` for classes: their mean, Platt-scaled; ``"mean"`` for regression), fitted on
  their inner out-of-fold outputs; the branches are then refitted on all the training rows.
- ``pooled`` (the default): stacking over one group, the columns of all groups pooled: one
  branch per learner (default ``"lr"`` and ``"rf30"``), combined as stacking's.
- ``shared``: every group mapped into one latent space, a classifier on it.

So ``clone``, ``cross_validate``, ``GridSearchCV`` (e.g. over ``strategy``), a user's own
``Pipeline`` and ``get_params`` all see one object, and the model that is cross-validated is the
model that is saved. :func:`build_model` returns the fitted-to-be inner model of one estimator
over given groups (for a notebook that wants the scikit-learn ensemble itself).

Branch (estimator) names are ``"{group}:{learner}"`` with the column separator ``__`` written as
``/`` (scikit-learn reserves ``__`` for nested parameters), e.g. ``"CT/tumor:lr"``; nested
parameters read ``"CT/tumor:lr__logisticregression__C"``. See :func:`branch_name`.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.utils.validation import check_is_fitted, column_or_1d

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import CLINICAL_GROUP

from ..columns import baseline_groups, branch_name, infer_groups
from ..learners import SURVIVAL_LEARNERS, learner_label, named_learners, strategy_learners
from ..preprocessing import MAX_LEVELS, CategoricalEncoder, check_table
from ..shared_fits import fit_once
from ..splits import AdaptiveStratifiedKFold
from ..survival import EVENT_FIELD, TIME_FIELD, check_survival_y
from ..targets import Task, get_task
from ._branch import make_branch
from ._combiners import resolve_combiner
from ._inputs import chosen_groups, class_codes, input_frame, resolve_groups
from ._kits import KITS
from ._parameters import (
    FUSION_CONSTRAINTS,
    NOT_SURVIVAL,
    SURVIVAL_CONSTRAINTS,
    check_parameters,
)
from ._survival import SURVIVAL_SKIPPED, branch_survival
from ._tuning import chosen_hyperparameters, tuned_branch

__all__ = [
    "CALIBRATIONS",
    "FUSED",
    "HARMONIZE_UNSEEN",
    "SELECT_METHODS",
    "SHARED_REFUSES",
    "STACKING_CV",
    "STRATEGIES",
    "SURVIVAL_STRATEGIES",
    "FusionClassifier",
    "FusionRegressor",
    "FusionSurvival",
    "ESTIMATORS",
    "build_estimators",
    "build_model",
    "build_models",
    "make_estimator",
    "unavailable_strategies",
]

STRATEGIES = ("single", "early", "late", "stacking", "pooled", "shared")
"""Fusion strategies, in report order."""
#: The one group of the ``pooled`` strategy (its branches are ``"pooled:{learner}"``).
POOLED_GROUP = "pooled"
#: Accepted ``harmonize_unseen`` and ``select_method`` values.
HARMONIZE_UNSEEN = ("error", "pooled")
SELECT_METHODS = ("anova", "mrmr")
#: Accepted ``calibration`` values.
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
#: Strategies of :class:`FusionSurvival` (pooled fusion and the shared space have no survival
#: form yet).
SURVIVAL_STRATEGIES = STRATEGIES[:4]


class _Fusion(BaseEstimator):
    """Shared ``fit``, input handling and composition of the fusion estimators (not public)."""

    _parameter_constraints: dict = FUSION_CONSTRAINTS

    def __init__(
        self,
        strategy: str = "pooled",
        *,
        learner: str = "lr",
        learners: Sequence[str] | None = None,
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
        resample: str | None = None,
        tune: bool = False,
        n_iter: int = 20,
        inner_cv: int = 3,
        cv: int = STACKING_CV,
        random_state: int | None = 0,
        n_jobs: int | None = None,
        calibration: str | None = None,
        combiner: str | None = None,
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
        self.resample = resample
        self.tune = tune
        self.n_iter = n_iter
        self.inner_cv = inner_cv
        self.cv = cv
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.calibration = calibration
        self.combiner = combiner

    # ------------------------------------------------------------------ fit and inputs

    def _fit(self, X, y, task: str):
        frame = self._frame(X, fitting=True)
        passthrough = (self.harmonize,) if self.harmonize else ()
        self.encoder_ = CategoricalEncoder(
            self.categories, max_levels=self.max_levels, passthrough=passthrough
        ).fit(frame)
        encoded = self.encoder_.transform(frame)
        columns = list(encoded.columns)
        self.groups_ = chosen_groups(self, resolve_groups(self, columns), columns)
        self.task_ = task
        self.model_ = fit_once(self._build(self.groups_, task), encoded, y)
        return self

    def _encoded(self, X) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        return self.encoder_.transform(self._frame(X, fitting=False))

    def _frame(self, X, *, fitting: bool) -> pd.DataFrame:
        return input_frame(self, X, fitting=fitting)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags

    @property
    def fuses_groups(self) -> bool:
        """Whether the model combines groups (every strategy but ``"single"``)."""
        return self.strategy != "single"

    def inner_model(self, X) -> tuple[BaseEstimator, pd.DataFrame]:
        """The fitted model inside (``model_``) and ``X`` encoded as that model sees it.

        Explanations (weights, permutation importance) look inside the fitted model; a
        calibrated model (``calibration=``) is looked into below its calibrator (the model
        fitted on every training row, whose scores the monotone calibration maps to
        probabilities).
        """
        return self._unwrapped(), self._encoded(X)

    def chosen_hyperparameters(self) -> dict[str, dict[str, Any]]:
        """Each tuned branch's chosen hyperparameters, by branch name (``{}`` untuned; see
        :func:`radfusion.pipeline.fusion.chosen_hyperparameters`)."""
        return chosen_hyperparameters(self._unwrapped())

    def _unwrapped(self) -> BaseEstimator:
        check_is_fitted(self, "model_")
        model = self.model_
        if isinstance(model, CalibratedClassifierCV):
            model = model.calibrated_classifiers_[0].estimator
        return model

    # ------------------------------------------------------------------ composition

    def _build(self, groups: Mapping[str, Sequence[str]], task: str) -> BaseEstimator:
        """The unfitted fusion model of this estimator's parameters over ``groups`` (group →
        columns of the encoded table) for a task name; its ``calibration`` wraps it."""
        check_parameters(self)
        groups = _check_groups(groups)
        self._check_task(task)
        model = self._fuse(groups, task)
        if self.calibration is None:
            return model
        return CalibratedClassifierCV(
            model,
            method=self.calibration,
            cv=AdaptiveStratifiedKFold(self.cv, shuffle=True, random_state=self.random_state),
            ensemble=False,
        )

    def _check_task(self, task: str) -> None:
        """The options that do not fit the task (the values were checked already): a
        :class:`~radfusion.features.errors.InputError` saying why."""
        resolve_combiner(self.combiner, self.strategy, task)
        problems = KITS[task].problems(self.get_params(deep=False))
        if problems:
            raise InputError(f"Options that do not fit a {task} target", problems)

    def _fuse(self, groups: dict[str, list[str]], task: str) -> BaseEstimator:
        """The strategy's model: one branch, a vote, a stack or the shared space, from the
        task's building blocks (:data:`~radfusion.pipeline.fusion._kits.KITS`)."""
        kit, strategy = KITS[task], self.strategy
        options = self._branch_options(groups)
        if strategy == "single":
            if len(groups) != 1:
                raise InputError(
                    "The 'single' strategy needs exactly one group",
                    [Problem(f"got {len(groups)} groups: {', '.join(groups)}")],
                )
            (columns,) = groups.values()
            return self._branch(columns, self.learner, options, kit)
        if strategy == "early":
            columns = [c for cols in groups.values() for c in cols]
            return self._branch(columns, self.learner, options, kit)
        if strategy == "shared":
            refused = [name for name in SHARED_REFUSES if name in options]
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
            return kit.shared(
                groups, random_state=self.random_state, branch_options=options or None
            )
        if strategy == "pooled":
            groups = {POOLED_GROUP: [c for cols in groups.values() for c in cols]}
        if strategy == "late" and len(groups) > 1:
            pairs = [(group, learner_label(self.learner), self.learner) for group in groups]
        else:  # stacking, pooled, or late fusion of the learners on a single group
            learners = named_learners(strategy_learners(strategy, self.learners))
            pairs = [(group, label, learner) for group in groups for label, learner in learners]
        estimators = self._named_branches(groups, pairs, options, kit)
        combiner = resolve_combiner(self.combiner, strategy, task)
        if combiner == "mean":
            return kit.vote(estimators, groups, n_jobs=self.n_jobs)
        return kit.stack(
            estimators,
            groups,
            combiner,
            cv=self.cv,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )

    def _branch_options(self, groups: dict[str, list[str]]) -> dict:
        """Keyword arguments of :func:`make_branch` (and ``tune`` for a tuned branch): only the
        non-default ones, so that a model built without options is exactly the historical
        one."""
        options: dict = {}
        if self.harmonize is not None:
            if any(self.harmonize in cols for cols in groups.values()):
                raise InputError(
                    "The site column is also a feature column",
                    [
                        Problem(
                            f"column {self.harmonize!r} is in a feature group; it only names "
                            "the site"
                        )
                    ],
                )
            options["harmonize"] = self.harmonize
            options["harmonize_unseen"] = self.harmonize_unseen
            options["harmonize_columns"] = [
                c for g, cols in groups.items() if g != CLINICAL_GROUP for c in cols
            ]
        if self.correlation_threshold is not None:
            options["correlation_threshold"] = self.correlation_threshold
        if self.select_k is not None:
            options["select_k"] = self.select_k
            options["select_method"] = self.select_method
        if self.icc_table is not None:
            options["icc_table"] = self.icc_table
            options["icc_threshold"] = self.icc_threshold
        if self.resample is not None:
            options["resample"] = self.resample
        if self.tune:
            options["tune"] = {"n_iter": self.n_iter, "inner_cv": self.inner_cv}
        return options

    def _named_branches(self, groups, pairs, options, kit) -> list[tuple[str, BaseEstimator]]:
        names = [branch_name(g, label) for g, label, _ in pairs]
        if len(set(names)) != len(names):
            raise InputError(
                "Group names collide once '__' is written as '/'",
                [Problem(f"groups: {', '.join(groups)}")],
            )
        return [
            (bname, self._branch(groups[g], learner, options, kit))
            for bname, (g, _, learner) in zip(names, pairs, strict=True)
        ]

    def _branch(self, columns, learner, options, kit) -> BaseEstimator:
        """A plain branch with the task's learner of that name, or a tuned one when
        ``options`` holds ``tune`` settings (binary targets: the search space is by name)."""
        options = dict(options)
        tune = options.pop("tune", None)
        if tune is None:
            estimator = kit.learner(learner, self.random_state)
            return make_branch(columns, estimator, self.random_state, **options)
        if not isinstance(learner, str):
            raise InputError(
                "Tuning searches the space of a learner name",
                [Problem(f"{learner!r} is an estimator: tune it with GridSearchCV instead")],
            )
        return tuned_branch(columns, learner, random_state=self.random_state, **tune, **options)

    def get_params(self, deep: bool = True) -> dict:
        """The parameters (scikit-learn's); with ``deep``, each estimator in ``learners`` is
        reached by its label too (``"rf"``, ``"rf__n_estimators"``), as a ``Pipeline``'s
        steps are, so a grid search can tune it."""
        params = super().get_params(deep=deep)
        if deep:
            for label, learner in self._learner_estimators().items():
                params[label] = learner
                params.update(
                    (f"{label}__{key}", value)
                    for key, value in learner.get_params(deep=True).items()
                )
        return params

    def set_params(self, **params):
        """Set parameters (scikit-learn's), and those of the estimators in ``learners`` by
        their labels (a label alone replaces that estimator)."""
        by_label = self._learner_estimators()
        own = {}
        for key, value in params.items():
            label, _, nested = key.partition("__")
            if label not in by_label or label in inspect.signature(type(self)).parameters:
                own[key] = value
            elif nested:
                by_label[label].set_params(**{nested: value})
            else:
                self.learners = [
                    (label, value) if item_label == label else item
                    for (item_label, _), item in zip(
                        named_learners(self.learners), self.learners, strict=True
                    )
                ]
        return super().set_params(**own) if own else self

    def _learner_estimators(self) -> dict[str, BaseEstimator]:
        """The estimators in ``learners``, by label (none when ``learners`` is no sequence:
        its check comes at fit)."""
        learners = strategy_learners(self.strategy, self.learners)
        if not isinstance(learners, (list, tuple)):
            return {}
        return {
            label: learner
            for label, learner in named_learners(learners)
            if hasattr(learner, "get_params") and not isinstance(learner, type)
        }


class FusionClassifier(ClassifierMixin, _Fusion):
    """Multimodal fusion classifier: per-group branches fused early, late, by stacking or shared.

    Parameters
    ----------
    strategy : {"single", "early", "late", "stacking", "pooled", "shared"}, default="pooled"
        How the groups are fused. ``"single"``: exactly one group (see ``use_groups``), one
        branch with ``learner``. ``"early"``: one branch with ``learner`` on all groups'
        columns together. ``"late"``: soft vote (mean probability) of one branch per group
        with ``learner`` over the groups a patient has; with a single group, a soft vote of
        that group's branches with every learner in ``learners``. ``"stacking"``: branches
        for every group × every learner in ``learners``, named ``"{group}:{learner}"``,
        combined by ``combiner`` on their out-of-fold outputs of ``cv`` inner stratified folds;
        the branches are then refitted on all the training rows. ``"pooled"``: stacking over
        one group made of every group's columns, one branch per learner in ``learners``
        (``"pooled:lr"``, ``"pooled:rf30"``); the default, chosen by the pre-registered rule
        of ``benchmarks/honest_default.py``. ``"shared"``: every group
        mapped into one latent space, a classifier on it
        (:class:`~radfusion.pipeline.fusion._shared_space.SharedSpaceClassifier`);
        ``harmonize``, the
        correlation filter and top-k selection run per group before the shared space is
        fitted, and ``tune`` or ``resample`` are refused (:data:`SHARED_REFUSES`).
    learner : str, default="lr"
        Learner of the single, early and late models: a name from ``LEARNER_NAMES`` (see
        :func:`radfusion.pipeline.learners.make_learner`).
    learners : sequence of str or estimators, optional
        Learners of the stacking and pooled models (and of late fusion over a single group).
        None: the strategy's defaults, ``("lr", "rf30")`` for ``"pooled"`` and
        ``("lr", "svm", "rf", "xgb")`` otherwise (see
        :func:`radfusion.pipeline.learners.strategy_learners`).
    groups : mapping of str to sequence of str, optional
        Group name → its columns (raw names: a text column stands for its indicators). None:
        inferred from the column names at ``fit`` (:func:`radfusion.pipeline.columns.
        infer_groups`, with ``group_pattern``).
    group_pattern : str, optional
        Regular expression naming each column's group (see ``infer_groups``).
    use_groups : sequence of str, optional
        Fit on these groups only (e.g. ``["CT"]`` with ``strategy="single"``: the CT-only model
        of a comparison); None: every group. Besides the groups, it may name the baselines
        ``"volume"`` (the ROI volume feature of each imaging group) and ``"control"`` (the
        negative-control columns), which are in no group and so never fused otherwise (see
        :func:`radfusion.pipeline.columns.baseline_groups`).
    categories : "auto" or mapping, default="auto"
        Levels of text columns (see :class:`~radfusion.pipeline.preprocessing.CategoricalEncoder`).
    max_levels : int, default=10
        Largest number of levels of an encoded text column.
    harmonize : str, optional
        Site column by which each branch harmonises its imaging columns with ComBat (e.g.
        ``"site"``), fitted on its training rows; the ``clinical`` group's columns are never
        harmonised.
    harmonize_unseen : {"error", "pooled"}, default="pooled"
        ComBat's handling of a site absent from the training rows (outer or, for stacking,
        inner folds). Small sites may be missing from a fold: use ``"pooled"`` then.
    icc_table : path or DataFrame, optional
        Per branch, keep the features whose ICC in this table (columns ``feature``, ``icc``)
        reaches ``icc_threshold``; features it does not name are kept.
    icc_threshold : float, default=0.75
        Lowest ICC the ``icc_table`` filter keeps.
    correlation_threshold : float, optional
        Per branch, drop features correlated above it with an earlier kept one.
    select_k : int, optional
        Per branch, keep the ``select_k`` best features by ``select_method``.
    select_method : {"anova", "mrmr"}, default="anova"
        Ranking of the top-k selection: the ANOVA F statistic, or minimum-redundancy
        maximum-relevance.
    resample : {"smote"}, optional
        Per branch, SMOTE oversampling of the training rows (see :func:`make_branch`).
    tune : bool, default=False
        A randomised search of each branch's hyperparameters on inner folds (nested CV): every
        branch becomes a :func:`radfusion.pipeline.fusion.tuned_branch`, a randomised search
        of ``n_iter`` settings of its learner's hyperparameters (and ``selecttopk__k`` with
        ``select_k``), scored by ROC AUC on ``inner_cv`` folds of the branch's training
        rows; ``xgb`` uses early stopping and ``scale_pos_weight`` from its training rows.
        Cross-validating the model is then nested CV. Binary targets only.
    n_iter : int, default=20
        Settings drawn per tuned branch.
    inner_cv : int, default=3
        Inner folds of each tuned branch's search.
    cv : int, default=3
        Inner folds of stacking's out-of-fold predictions (and of ``calibration``).
    random_state : int or None, default=0
        Seed of the learners and inner folds.
    n_jobs : int or None, default=None
        Parallel jobs over branches.
    calibration : {"sigmoid", "isotonic"}, optional
        Recalibrate the probabilities inside the training rows: scikit-learn's
        ``CalibratedClassifierCV(method=calibration, ensemble=False)`` fits the model on
        ``cv`` inner stratified folds, fits a Platt (``"sigmoid"``) or isotonic map from the
        inner out-of-fold probabilities to the labels, and refits the model on all its
        training rows. Costs ``cv`` extra fits. Off by default.
    combiner : {"mean", "platt", "best", "convex", "shrunk", "logistic"}, optional
        How stacking combines its branches (late fusion is always the mean): equal weights;
        equal weights then a Platt map that only stretches (``b >= 1``) fitted by inner CV;
        the single best branch by inner CV; convex weights (super learner); convex weights
        shrunk toward equal ones by an amount chosen by inner CV; the non-negative logistic
        meta-learner of radfusion <= 0.2. The learned ones are fitted on inner out-of-fold
        predictions of the training rows. None: ``DEFAULT_COMBINER[task]`` (``"platt"``;
        ``"mean"`` for regression).

    Attributes
    ----------
    classes_ : ndarray
        The class labels, sorted.
    task_ : {"binary", "multiclass"}
    groups_ : dict of str to list of str
        The groups over the encoded columns.
    encoder_ : CategoricalEncoder
    model_ : estimator
        The fitted fusion model (on class codes ``0 … K-1``): a ``Pipeline`` (single, early),
        :class:`~radfusion.pipeline.fusion.AvailableVotingClassifier` (late, and stacking with
        ``combiner="mean"``), :class:`~radfusion.pipeline.fusion.AvailableStackingClassifier`
        (stacking) or
        :class:`~radfusion.pipeline.fusion._shared_space.SharedSpaceClassifier`; inside a
        ``CalibratedClassifierCV`` with ``calibration``.
    feature_names_in_ : ndarray of str
        Defined when ``X`` was a DataFrame.
    n_features_in_ : int
    """

    def fit(self, X, y):
        """Fit on a patient table ``X`` (DataFrame) and outcome ``y``.

        Sample weights are not taken: the branches' imputers, filters and selectors have no
        weighted form. For class imbalance use ``resample="smote"`` (inside each branch).
        """
        check_parameters(self)
        X = check_table(X, type(self).__name__)
        y = column_or_1d(y, warn=True)
        self.classes_, codes = class_codes(y, "The outcome")
        task = "binary" if len(self.classes_) == 2 else "multiclass"
        return self._fit(X, codes, task)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``."""
        encoded = self._encoded(X)
        return self.model_.predict_proba(encoded)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]


class FusionRegressor(RegressorMixin, _Fusion):
    """Multimodal fusion regressor for a continuous outcome.

    The parameters and attributes are :class:`FusionClassifier`'s (``learners`` name the
    regressor counterparts: ridge, SVR, random forest, XGBoost); ``classes_`` does not exist and
    ``task_`` is ``"regression"``. The combiners minimise squared error; ``"logistic"`` is
    non-negative least squares. ``tune``, ``resample`` and ``calibration`` are for classifiers
    only.
    """

    def fit(self, X, y):
        """Fit on a patient table ``X`` (DataFrame) and a numeric outcome ``y``."""
        check_parameters(self)
        y = column_or_1d(y, warn=True).astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("The outcome has missing or infinite values")
        return self._fit(X, y, "regression")

    def predict(self, X) -> np.ndarray:
        """The predicted outcome of each row."""
        encoded = self._encoded(X)
        return np.asarray(self.model_.predict(encoded), dtype=np.float64)


class FusionSurvival(_Fusion):
    """Multimodal fusion survival model: per-group branches fused early, late or by stacking.

    The survival counterpart of :class:`FusionClassifier`: the same table, groups, branches
    (select → impute → drop constants → harmonise → filter/select → standardise → learner) and
    strategies, with scikit-survival learners (:func:`radfusion.pipeline.learners.
    make_survival_learner`) and a survival target (:mod:`radfusion.pipeline.survival`).
    ``predict`` is a risk score (higher = earlier event); ``predict_survival`` gives survival
    probabilities at chosen times. Tuning, resampling and calibration have no survival form
    here: they are not parameters. scikit-survival is an optional extra
    (``radfusion[survival]``), imported when a model is fitted.

    Parameters
    ----------
    strategy : {"single", "early", "late", "stacking"}, default="stacking"
        ``"single"`` / ``"early"``: one branch (one group's columns, or all groups'
        together). ``"late"``: one branch per group, each fitted on the training rows that
        have its group; a patient's risk is the mean of the standardised risks of the
        branches it has (:class:`~radfusion.pipeline.fusion._survival.AvailableVotingSurvival`).
        ``"stacking"``: every group × learner, combined by ``combiner``.
    learner : {"coxnet", "rsf", "gbsa"}, default="coxnet"
        Learner of the single, early and (multi-group) late models.
    learners : sequence of str, default=("coxnet", "rsf", "gbsa")
        Learners of the stacking model (and of late fusion over a single group).
    groups, group_pattern, use_groups, categories, max_levels
        As in :class:`FusionClassifier`.
    harmonize, harmonize_unseen, icc_table, icc_threshold, correlation_threshold
        As in :class:`FusionClassifier`, inside each branch.
    select_k : int, optional
        Per branch, keep the ``select_k`` features with the largest univariate Cox score
        statistic (``select_method="mrmr"``: that relevance, minus redundancy).
    select_method : {"anova", "mrmr"}, default="anova"
        ``"anova"`` means plain top-k by relevance here (the Cox score test for survival).
    cv : int, default=5
        Inner folds (stratified by event) of stacking's out-of-fold risks.
    random_state : int or None, default=0
        Seed of the learners and inner folds.
    n_jobs : int or None, default=None
        Parallel jobs over branch fits.
    combiner : {"cox", "mean"}, optional
        How stacking combines its branches: a non-negative Cox model on their standardised
        inner out-of-fold risks plus free-signed missing-modality indicators
        (:class:`~radfusion.pipeline.fusion._survival.AvailableStackingSurvival`; the default,
        None);
        or the mean of their standardised risks, as late fusion.

    Attributes
    ----------
    groups_ : dict of str to list of str
        The groups over the encoded columns.
    encoder_ : CategoricalEncoder
    model_ : estimator
        The fitted fusion model: a ``Pipeline`` (single, early),
        :class:`~radfusion.pipeline.fusion._survival.AvailableVotingSurvival` (late) or
        :class:`~radfusion.pipeline.fusion._survival.AvailableStackingSurvival` (stacking).
    task_ : {"survival"}
    feature_names_in_ : ndarray of str
        Defined when ``X`` was a DataFrame.
    n_features_in_ : int
    """

    _parameter_constraints: dict = SURVIVAL_CONSTRAINTS
    # FusionClassifier's options with no survival form: fixed here, not parameters.
    resample = None
    tune = False
    n_iter = 20
    inner_cv = 3
    calibration = None

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
        random_state: int | None = 0,
        n_jobs: int | None = None,
        combiner: str | None = None,
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
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.combiner = combiner

    def fit(self, X, y):
        """Fit on a patient table ``X`` and a survival target ``y``.

        ``y``: a structured array of ``(event, time)`` records
        (:func:`radfusion.pipeline.survival.survival_target`, or scikit-survival's
        ``Surv.from_arrays``), or a DataFrame with ``event`` and ``time`` columns. Missing
        or negative times, events that are not 0/1 and a target without events are errors
        naming the patients (the rows of a DataFrame ``X`` by its index).
        """
        check_parameters(self)
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X = check_table(X, type(self).__name__)
        y = check_survival_y(y, X.index if isinstance(X, pd.DataFrame) else None)
        if len(y) != len(X):
            raise ValueError(f"X has {len(X)} rows but y has {len(y)}")
        return self._fit(X, y, "survival")

    def predict(self, X) -> np.ndarray:
        """Risk score of each row: higher means an earlier event.

        single/early: the learner's risk; late: the mean standardised branch risk over the
        groups the patient has (0, the training average, when none); stacking: the
        combiner's log relative hazard.
        """
        encoded = self._encoded(X)
        return np.asarray(self.model_.predict(encoded), dtype=np.float64)

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
        if hasattr(self.model_, "predict_survival"):
            return self.model_.predict_survival(encoded, times)
        return branch_survival(self.model_, encoded, times)

    def score(self, X, y) -> float:
        """Harrell's concordance index of ``predict(X)`` with the survival target ``y``."""
        from sksurv.metrics import concordance_index_censored

        y = check_survival_y(y)
        return float(concordance_index_censored(y[EVENT_FIELD], y[TIME_FIELD], self.predict(X))[0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = True
        return tags


#: The fusion estimator of each task (the one place a task picks its estimator class).
ESTIMATORS: dict[str, type[_Fusion]] = {
    "binary": FusionClassifier,
    "multiclass": FusionClassifier,
    "regression": FusionRegressor,
    "survival": FusionSurvival,
}


def make_estimator(
    strategy: str | None = None, *, task: str | Task = "binary", **params
) -> _Fusion:
    """The fusion estimator of a task (object or name) — :class:`FusionClassifier`,
    :class:`FusionRegressor` or :class:`FusionSurvival` — with ``strategy`` (None: the task's
    ``default_strategy``) and the other parameters given; a parameter that estimator does not
    take is an :class:`~radfusion.features.errors.InputError` saying why."""
    kind = ESTIMATORS[get_task(task).name]
    strategy = get_task(task).default_strategy if strategy is None else strategy
    taken = inspect.signature(kind).parameters
    refused = [name for name in params if name not in taken]
    if refused:
        raise InputError(
            f"Options that do not fit a {get_task(task).name} target",
            [
                Problem(NOT_SURVIVAL.get(name, f"{kind.__name__} has no {name!r}"))
                for name in refused
            ],
        )
    estimator = kind(strategy, **params)
    check_parameters(estimator)  # before any work: a bad value is not a failed fold
    estimator._check_task(get_task(task).name)
    return estimator


def unavailable_strategies(task: str | Task) -> dict[str, str]:
    """The strategies a task's estimator has no form of, and why (``config.skipped_models``)."""
    available = ESTIMATORS[get_task(task).name]._parameter_constraints["strategy"][0].options
    return {s: SURVIVAL_SKIPPED[s] for s in STRATEGIES if s not in available}


def build_estimators(
    groups: Sequence[str],
    *,
    task: str | Task = "binary",
    columns: Sequence[str] | None = None,
    **params,
) -> dict[str, _Fusion]:
    """Every model of a multimodal comparison, by name, in a fixed order, as fusion estimators.

    With two or more groups: one ``"single"`` model per group (``use_groups=[group]``), keyed by
    the group name (``"single:{group}"`` when the name is itself a strategy: C4KC-KiTS has a
    ``late`` contrast phase). With ``columns`` (the table's columns), the baselines the table
    has: ``"volume"`` (a single model on the ROI volume of each imaging group) and
    ``"control"`` (a single model on the negative-control columns), see
    :func:`radfusion.pipeline.columns.baseline_groups`; a baseline whose name is already a group
    is not added. Then ``"early"``, ``"late"``, ``"stacking"``, ``"pooled"`` and ``"shared"``,
    which never fuse a baseline. Every model gets the same ``params``. With one group,
    ``"early"`` is the single-branch model with ``learner``; ``"late"`` is a soft vote and
    ``"stacking"`` a stack of that group's branches over ``learners``.
    """
    models: dict[str, _Fusion] = {}
    if len(groups) > 1:
        for group in groups:
            key = f"single:{group}" if group in STRATEGIES else group
            models[key] = make_estimator("single", task=task, use_groups=[group], **params)
    if columns is not None:
        found = infer_groups(
            [str(c) for c in columns],
            pattern=params.get("group_pattern"),
        )  # the site and id columns are never imaging: the default exclusions suffice
        for baseline in baseline_groups([str(c) for c in columns], found):
            if baseline not in groups:
                models[baseline] = make_estimator(
                    "single", task=task, use_groups=[baseline], **params
                )
    for strategy in FUSED:
        if strategy not in unavailable_strategies(task):
            models[strategy] = make_estimator(strategy, task=task, **params)
    return models


def build_model(
    groups: Mapping[str, Sequence[str]],
    strategy: str | None = None,
    learner: str = "lr",
    *,
    task: str = "binary",
    **params,
) -> BaseEstimator:
    """The unfitted fusion model of :class:`FusionClassifier` (or :class:`FusionRegressor`)
    with these parameters over column groups of a DataFrame: a ``Pipeline`` (single, early),
    :class:`~radfusion.pipeline.fusion.AvailableVotingClassifier` (late),
    :class:`~radfusion.pipeline.fusion.AvailableStackingClassifier` (stacking) or
    :class:`~radfusion.pipeline.fusion._shared_space.SharedSpaceClassifier`, or their regressor
    counterparts
    for ``task="regression"``; fit it on a DataFrame whose text columns are already encoded.
    ``strategy`` None is the task's default (``"pooled"``); ``params`` are the estimator's
    (see :class:`FusionClassifier`)."""
    return make_estimator(strategy, task=task, learner=learner, **params)._build(groups, task)


def build_models(
    groups: Mapping[str, Sequence[str]],
    learner: str = "lr",
    *,
    task: str = "binary",
    **params,
) -> dict[str, BaseEstimator]:
    """:func:`build_model` of every model of :func:`build_estimators` (no baselines), by name.

    The shared-space model is left out, with a warning, under ``tune`` or ``resample``, which it
    cannot honour.
    """
    groups = _check_groups(groups)
    refused = [name for name in SHARED_REFUSES if params.get(name)]
    models = {}
    for name, estimator in build_estimators(
        list(groups), task=task, learner=learner, **params
    ).items():
        if name == "shared" and refused:
            warnings.warn(
                "shared-space fusion left out: "
                + "; ".join(f"{option}: {SHARED_REFUSES[option]}" for option in refused),
                UserWarning,
                stacklevel=2,
            )
            continue
        chosen = groups if estimator.use_groups is None else chosen_groups(estimator, groups, [])
        models[name] = estimator._build(chosen, task)
    return models


def _check_groups(groups: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    groups = {str(g): list(cols) for g, cols in groups.items()}
    if not groups:
        raise InputError("No feature groups: the table has no feature columns")
    empty = [Problem(f"group {g!r} has no columns") for g, cols in groups.items() if not cols]
    if empty:
        raise InputError("Empty feature groups", empty)
    return groups
