"""One scikit-learn estimator is the model: its parameters are the whole run configuration.

:class:`FusionClassifier` (binary and multiclass outcomes) and :class:`FusionRegressor`
(continuous outcomes) take the joined patient table — feature columns
``modality__mask__feature``, raw clinical columns (text categories included) and, when
harmonising, the site column — and hold every modelling choice as a parameter: strategy,
learners, groups, harmonisation, correlation filter, top-k selection, resampling, tuning, inner
folds, seed and jobs. At ``fit`` they encode text columns
(:class:`~radfusion.pipeline.preprocessing.CategoricalEncoder`, on the training rows), infer
the groups from the column names unless given (into ``groups_``), and build and fit the fusion
model of :func:`radfusion.pipeline.fusion.build_model` (into ``model_``). So ``clone``,
``cross_validate``, ``GridSearchCV`` (e.g. over
``strategy``), a user's own ``Pipeline`` and ``get_params`` all see one object, and the model
that is cross-validated is the model that is saved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from ..columns import baseline_groups, infer_groups
from ..learners import LEARNERS
from ..preprocessing import MAX_LEVELS, CategoricalEncoder, check_table
from ..targets import Task, get_task
from ._inputs import chosen_groups, input_frame, resolve_groups
from ._model import FUSED, STACKING_CV, STRATEGIES, build_model
from ._shared_fits import fit_once

__all__ = [
    "FusionClassifier",
    "FusionRegressor",
    "build_estimators",
    "fitted_model",
    "make_estimator",
]


class _Fusion(BaseEstimator):
    """Shared ``fit`` / input handling of the fusion estimators (not public)."""

    _task_kind: str  # "classification" or "regression"

    def __init__(
        self,
        strategy: str = "stacking",
        *,
        learner: str = "lr",
        learners: Sequence[str] = LEARNERS,
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

    def _fit(self, X, y, task: str):
        frame = self._frame(X, fitting=True)
        passthrough = (self.harmonize,) if self.harmonize else ()
        self.encoder_ = CategoricalEncoder(
            self.categories, max_levels=self.max_levels, passthrough=passthrough
        ).fit(frame)
        encoded = self.encoder_.transform(frame)
        columns = list(encoded.columns)
        self.groups_ = self._chosen_groups(self._resolve_groups(columns), columns)
        self.task_ = task
        self.model_ = build_model(
            self.groups_,
            self.strategy,
            learner=self.learner,
            learners=tuple(self.learners),
            cv=self.cv,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
            harmonize=self.harmonize,
            harmonize_unseen=self.harmonize_unseen,
            icc_table=self.icc_table,
            icc_threshold=self.icc_threshold,
            correlation_threshold=self.correlation_threshold,
            select_k=self.select_k,
            select_method=self.select_method,
            resample=self.resample,
            tune=self.tune,
            n_iter=self.n_iter,
            inner_cv=self.inner_cv,
            task=task,
            calibration=self.calibration,
            combiner=self.combiner,
        )
        self.model_ = fit_once(self.model_, encoded, y)
        return self

    def _encoded(self, X) -> pd.DataFrame:
        check_is_fitted(self, "model_")
        return self.encoder_.transform(self._frame(X, fitting=False))

    def _frame(self, X, *, fitting: bool) -> pd.DataFrame:
        return input_frame(self, X, fitting=fitting)

    def _chosen_groups(
        self, groups: dict[str, list[str]], columns: list[str]
    ) -> dict[str, list[str]]:
        return chosen_groups(self, groups, columns)

    def _resolve_groups(self, columns: list[str]) -> dict[str, list[str]]:
        return resolve_groups(self, columns)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class FusionClassifier(ClassifierMixin, _Fusion):
    """Multimodal fusion classifier: per-group branches fused early, late, by stacking or shared.

    Parameters
    ----------
    strategy : {"single", "early", "late", "stacking", "shared"}, default="stacking"
        How the groups are fused (see :func:`radfusion.pipeline.fusion.build_model`).
    learner : str, default="lr"
        Learner of the single, early and late models (a name from ``LEARNERS``).
    learners : sequence of str, default=("lr", "svm", "rf", "xgb")
        Learners of the stacking model (and of late fusion over a single group).
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
        Name of the site column: each branch harmonises its imaging columns with ComBat.
    harmonize_unseen : {"error", "pooled"}, default="pooled"
        ComBat's handling of a site absent from the training rows.
    icc_table : path or DataFrame, optional
        Per branch, keep the features whose ICC in this table (columns ``feature``, ``icc``)
        reaches ``icc_threshold``; features it does not name are kept.
    icc_threshold : float, default=0.75
    correlation_threshold : float, optional
        Per branch, drop features correlated above it with an earlier kept one.
    select_k : int, optional
        Per branch, keep the ``select_k`` best features by ``select_method``.
    select_method : {"anova", "mrmr"}, default="anova"
    resample : {"smote"}, optional
        Per branch, SMOTE oversampling of the training rows.
    tune : bool, default=False
        Per branch, a randomised search of ``n_iter`` settings on ``inner_cv`` folds.
    n_iter : int, default=20
    inner_cv : int, default=3
    cv : int, default=3
        Inner folds of stacking's out-of-fold predictions (and of ``calibration``).
    random_state : int or None, default=0
        Seed of the learners and inner folds.
    n_jobs : int or None, default=None
        Parallel jobs over branches.
    calibration : {"sigmoid", "isotonic"}, optional
        Recalibrate the probabilities on inner out-of-fold predictions of the training rows
        (classifier only; see :func:`radfusion.pipeline.fusion.build_model`).
    combiner : {"mean", "platt", "best", "convex", "shrunk", "logistic"}, optional
        How stacking combines its branches (late fusion is always the mean): equal weights;
        equal weights then a Platt map that only stretches (``b >= 1``) fitted by inner CV
        (classifiers only);
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
        The fitted fusion model (on class codes ``0 … K-1``).
    feature_names_in_ : ndarray of str
        Defined when ``X`` was a DataFrame.
    n_features_in_ : int
    """

    _task_kind = "classification"

    def fit(self, X, y):
        """Fit on a patient table ``X`` (DataFrame) and outcome ``y``.

        Sample weights are not taken: the branches' imputers, filters and selectors have no
        weighted form. For class imbalance use ``resample="smote"`` (inside each branch).
        """
        X = check_table(X, type(self).__name__)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(
                f"The outcome needs at least two classes; got {len(self.classes_)} "
                f"class: {self.classes_[0]!r}"
            )
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
    non-negative least squares. ``tune`` and ``resample`` are for classifiers only.
    """

    _task_kind = "regression"

    def fit(self, X, y):
        """Fit on a patient table ``X`` (DataFrame) and a numeric outcome ``y``."""
        y = column_or_1d(y, warn=True).astype(np.float64)
        if not np.all(np.isfinite(y)):
            raise ValueError("The outcome has missing or infinite values")
        return self._fit(X, y, "regression")

    def predict(self, X) -> np.ndarray:
        """The predicted outcome of each row."""
        encoded = self._encoded(X)
        return np.asarray(self.model_.predict(encoded), dtype=np.float64)


def make_estimator(
    strategy: str = "stacking", *, task: str | Task = "binary", **params
) -> FusionClassifier | FusionRegressor:
    """The fusion estimator of a task (object or name): :class:`FusionClassifier` for a
    classification task, else :class:`FusionRegressor`, with ``strategy`` and the other
    parameters given."""
    kind = FusionClassifier if get_task(task).is_classifier else FusionRegressor
    return kind(strategy, **params)


def build_estimators(
    groups: Sequence[str],
    *,
    task: str | Task = "binary",
    columns: Sequence[str] | None = None,
    **params,
) -> dict[str, FusionClassifier | FusionRegressor]:
    """Every model of a multimodal comparison, by name, in a fixed order, as fusion estimators.

    With two or more groups: one ``"single"`` model per group (``use_groups=[group]``), keyed by
    the group name (``"single:{group}"`` when the name is itself a strategy). With ``columns``
    (the table's columns), the baselines the table has: ``"volume"`` (a single model on the ROI
    volume of each imaging group) and ``"control"`` (a single model on the negative-control
    columns), see :func:`radfusion.pipeline.columns.baseline_groups`; a baseline whose name is
    already a group is not added. Then ``"early"``, ``"late"``, ``"stacking"`` and ``"shared"``,
    which never fuse a baseline. Every model gets the same ``params``; they are the models
    :func:`radfusion.pipeline.fusion.build_models` builds, behind one estimator each.
    """
    models: dict[str, FusionClassifier | FusionRegressor] = {}
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
        models[strategy] = make_estimator(strategy, task=task, **params)
    return models


def fitted_model(estimator, X):
    """The fitted model inside a fusion estimator, and ``X`` encoded as that model sees it.

    Explanations (weights, permutation importance, chosen hyperparameters) look inside the
    fitted model; a calibrated model (``calibration=``) is looked into below its calibrator
    (the model fitted on every training row, whose scores the monotone calibration maps to
    probabilities). Any other estimator is returned as it is, with ``X`` unchanged.
    """
    if not isinstance(estimator, _Fusion):
        return estimator, X
    model = estimator.model_
    if isinstance(model, CalibratedClassifierCV):
        model = model.calibrated_classifiers_[0].estimator
    return model, estimator._encoded(X)
