"""Hyperparameter tuning of fusion branches by an inner randomised search (nested CV).

:func:`tuned_branch` wraps one branch (:func:`radfusion.pipeline.fusion.make_branch`) in a
:class:`TunedSearchCV`, a :class:`~sklearn.model_selection.RandomizedSearchCV` that draws
``n_iter`` settings from :func:`search_space` (the base learner's hyperparameters and, when
the branch has a top-k selector, its ``k``), scores each by ROC AUC on ``inner_cv`` stratified
folds *of the rows passed to fit*, then refits the best setting on all those rows.

Nested cross-validation by construction: :func:`radfusion.pipeline.validation.cross_validate_models`
fits a fresh ``clone`` of the whole model on each outer training fold, so the search (and,
for late fusion and stacking, every branch's search, including those inside stacking's own
inner folds) sees only that fold's training rows; the outer held-out rows score a model whose
hyperparameters never saw them. ``tests/pipeline/test_tuning.py`` checks this with an
estimator that records the rows it is fitted and scored on.

Search: scikit-learn's randomised search. Optuna (TPE) would need fewer draws, but it is an
optional dependency that is not installed; with 20 draws and 1-3 hyperparameters the
randomised search is close enough and keeps the model a plain, clonable estimator.

The distributions are small classes of this module (:class:`LogUniform`, :class:`Uniform`,
:class:`IntUniform`, :class:`IntLogUniform`) that draw from ``scipy.stats`` distributions: unlike
scipy's frozen distributions they are scikit-learn style objects with parameters, so a tuned
model stays clonable, comparable and loadable by :func:`radfusion.pipeline.persistence.load_model`
(which trusts the estimator classes defined in ``pipeline``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import stats
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import check_scoring
from sklearn.model_selection import RandomizedSearchCV

from radfusion.features.errors import InputError, Problem

from .._sklearn_compat import BaseSearchCV
from ..learners import LEARNER_NAMES
from ..splits import AdaptiveStratifiedKFold
from ._branch import make_branch

__all__ = [
    "IntLogUniform",
    "IntUniform",
    "LogUniform",
    "TunedSearchCV",
    "Uniform",
    "chosen_hyperparameters",
    "search_space",
    "tuned_branch",
]


# --------------------------------------------------------------------------- distributions


class _Distribution(BaseEstimator):
    """A parameter distribution with ``rvs`` (what ``ParameterSampler`` calls)."""

    def _frozen(self):  # pragma: no cover - abstract
        raise NotImplementedError

    def rvs(self, size=None, random_state=None):
        """Draw from the distribution (``scipy.stats`` semantics)."""
        return self._frozen().rvs(size=size, random_state=random_state)


class LogUniform(_Distribution):
    """Log-uniform on [low, high] (``scipy.stats.loguniform``)."""

    def __init__(self, low=1e-3, high=1e1):
        self.low = low
        self.high = high

    def _frozen(self):
        return stats.loguniform(self.low, self.high)


class Uniform(_Distribution):
    """Uniform on [low, high] (``scipy.stats.uniform(low, high - low)``)."""

    def __init__(self, low=0.0, high=1.0):
        self.low = low
        self.high = high

    def _frozen(self):
        return stats.uniform(self.low, self.high - self.low)


class IntUniform(_Distribution):
    """Integers uniform on [low, high], both included (``scipy.stats.randint``)."""

    def __init__(self, low=1, high=10):
        self.low = low
        self.high = high

    def _frozen(self):
        return stats.randint(self.low, self.high + 1)

    def rvs(self, size=None, random_state=None):
        draw = super().rvs(size=size, random_state=random_state)
        return int(draw) if size is None else draw


class IntLogUniform(_Distribution):
    """Integers on [low, high] drawn log-uniformly (rounded ``scipy.stats.loguniform``)."""

    def __init__(self, low=2, high=64):
        self.low = low
        self.high = high

    def _frozen(self):
        return stats.loguniform(self.low - 0.5 + 1e-9, self.high + 0.5 - 1e-9)

    def rvs(self, size=None, random_state=None):
        draw = np.clip(
            np.rint(super().rvs(size=size, random_state=random_state)), self.low, self.high
        ).astype(int)
        return int(draw) if size is None else draw


# --------------------------------------------------------------------------- search spaces


def search_space(learner: str, select_k: bool | int = False) -> dict[str, Any]:
    """The randomised-search space of a branch with this base learner.

    Keys are parameter names of the branch :class:`~sklearn.pipeline.Pipeline` built by
    :func:`radfusion.pipeline.fusion.make_branch` (for ``"xgb"``, with ``early_stopping=True``, as
    in tuned branches). Values are distributions (``rvs``) or lists (uniform choice).

    - ``"lr"``: ``C`` log-uniform on [1e-3, 10] (the default 0.1 is in the middle).
    - ``"svm"``: RBF ``C`` log-uniform on [1e-2, 100], ``gamma`` log-uniform on [1e-4, 1]
      (inputs are standardised, so ``gamma="scale"`` is 1 / p: 1e-3 to 1e-1 for p = 10..1000).
    - ``"rf"``, ``"rf30"`` and ``"et"``: ``max_features`` in {sqrt, log2, 0.1, 0.3},
      ``min_samples_leaf`` 1..10, ``max_depth`` in {None, 3, 5, 8}.
    - ``"l1"``, ``"enet"``: refused (they choose their penalty by inner CV themselves).
    - ``"xgb"``: ``max_depth`` 2..6, ``learning_rate`` log-uniform on [0.01, 0.3],
      ``min_child_weight`` log-uniform on [0.1, 2] (a row adds at most 0.25 to a leaf's
      hessian, so larger values forbid any split on the 30-60 rows of a small inner fold),
      ``subsample`` on [0.6, 1], ``colsample_bytree`` on [0.3, 1]; the number of rounds is
      set by early stopping.

    Parameters
    ----------
    learner : {"lr", "svm", "rf", "rf30", "xgb", "et"}
    select_k : bool or int, default=False
        The branch has a :class:`~radfusion.pipeline.preprocessing.SelectTopK`: add
        ``selecttopk__k``, integers log-uniform on [2, 64] (``True``) or on [max(2, k // 4), 4 k]
        around a given ``k`` (``k`` larger than the number of features keeps them all).

    Returns
    -------
    dict
        Parameter name → distribution or list.
    """
    if learner == "lr":
        space: dict[str, Any] = {"logisticregression__C": LogUniform(1e-3, 1e1)}
    elif learner == "svm":
        space = {
            "calibratedclassifiercv__estimator__C": LogUniform(1e-2, 1e2),
            "calibratedclassifiercv__estimator__gamma": LogUniform(1e-4, 1e0),
        }
    elif learner in ("rf", "rf30", "et"):
        step = "extratreesclassifier" if learner == "et" else "randomforestclassifier"
        space = {
            f"{step}__max_features": ["sqrt", "log2", 0.1, 0.3],
            f"{step}__min_samples_leaf": IntUniform(1, 10),
            f"{step}__max_depth": [None, 3, 5, 8],
        }
    elif learner == "xgb":
        prefix = "earlystoppingxgbclassifier__"
        space = {
            f"{prefix}max_depth": IntUniform(2, 6),
            f"{prefix}learning_rate": LogUniform(1e-2, 0.3),
            f"{prefix}min_child_weight": LogUniform(0.1, 2.0),
            f"{prefix}subsample": Uniform(0.6, 1.0),
            f"{prefix}colsample_bytree": Uniform(0.3, 1.0),
        }
    elif learner in ("l1", "enet"):
        raise InputError(
            "Nothing to tune",
            [Problem(f"{learner!r} chooses its penalty by inner CV already: use tune=False")],
        )
    else:
        raise InputError(
            "Unknown learner",
            [Problem(f"{learner!r} is not one of {', '.join(map(repr, LEARNER_NAMES))}")],
        )
    if select_k is True:
        space["selecttopk__k"] = IntLogUniform(2, 64)
    elif select_k is not False and select_k is not None:
        k = int(select_k)
        space["selecttopk__k"] = IntLogUniform(max(2, k // 4), max(3, 4 * k))
    return space


# --------------------------------------------------------------------------- tuned branches


class TunedSearchCV(RandomizedSearchCV):
    """:class:`~sklearn.model_selection.RandomizedSearchCV` that can be saved with skops.

    Identical behaviour; only the saved state differs: the fitted scorer (a function
    reference, which :func:`radfusion.pipeline.persistence.load_model` refuses) is rebuilt from
    ``scoring`` on load, and ``cv_results_``'s masked parameter arrays are stored as plain
    object arrays.
    """

    def set_output(self, *, transform=None):
        """Set the output container of the searched branch's transformers (and so of every
        candidate and of ``best_estimator_``); see ``Pipeline.set_output``."""
        if transform is not None:
            self.estimator.set_output(transform=transform)
        return self

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("scorer_", None)
        results = state.get("cv_results_")
        if results is not None:
            state["cv_results_"] = {
                key: (
                    np.asarray(value.astype(object).filled(None), dtype=object)
                    if isinstance(value, np.ma.MaskedArray)
                    else value
                )
                for key, value in results.items()
            }
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._restore_scorer()

    def _restore_scorer(self):
        if hasattr(self, "best_estimator_") and not hasattr(self, "scorer_"):
            self.scorer_ = check_scoring(self.estimator, self.scoring)

    def score(self, X, y=None, **params):
        """``scoring`` of the refitted best branch on ``X, y`` (see ``RandomizedSearchCV``)."""
        self._restore_scorer()  # skops rebuilds the state without __setstate__
        return super().score(X, y, **params)


def tuned_branch(
    columns: Sequence[str],
    learner: str | ClassifierMixin = "lr",
    *,
    n_iter: int = 20,
    inner_cv: int = 3,
    scoring: str = "roc_auc",
    random_state: int | None = 0,
    select_k: int | None = None,
    param_distributions: dict[str, Any] | None = None,
    n_jobs: int | None = None,
    **branch_options: Any,
) -> TunedSearchCV:
    """A branch whose hyperparameters are tuned on inner folds of its training rows.

    Parameters
    ----------
    columns : sequence of str
        The branch's DataFrame columns (see :func:`radfusion.pipeline.fusion.make_branch`).
    learner : str or classifier, default="lr"
        Base learner name; ``"xgb"`` becomes an
        :class:`~radfusion.pipeline.learners.EarlyStoppingXGBClassifier` (early stopping on a split
        of its own training rows, ``scale_pos_weight`` from them). An estimator needs
        ``param_distributions``.
    n_iter : int, default=20
        Settings drawn.
    inner_cv : int, default=3
        Inner stratified folds (shuffled, seeded by ``random_state``).
    scoring : str, default="roc_auc"
    random_state : int or None, default=0
        Seed of the learner, the inner folds and the draws.
    select_k : int, optional
        Add a top-k selector and tune its ``k`` around this value.
    param_distributions : dict, optional
        Replaces :func:`search_space` (``learner, select_k``).
    n_jobs : int, optional
        Parallel jobs of the search (default 1: parallelism belongs to the outer loop).
    **branch_options
        Passed to :func:`radfusion.pipeline.fusion.make_branch` (``harmonize``,
        ``correlation_threshold``, ``select_method``, ``resample``...).

    Returns
    -------
    TunedSearchCV
        A ``RandomizedSearchCV`` (``refit=True``) over the branch pipeline; after ``fit``,
        ``best_params_`` holds the chosen setting and ``best_estimator_`` the refitted branch.
    """
    if param_distributions is None:
        if not isinstance(learner, str):
            raise ValueError("tuning an estimator learner needs param_distributions")
        param_distributions = search_space(learner, select_k if select_k is not None else False)
    if isinstance(learner, str):
        branch_options.setdefault("early_stopping", True)
    branch = make_branch(columns, learner, random_state, select_k=select_k, **branch_options)
    return TunedSearchCV(
        branch,
        param_distributions,
        n_iter=n_iter,
        scoring=scoring,
        cv=AdaptiveStratifiedKFold(inner_cv, shuffle=True, random_state=random_state),
        refit=True,
        random_state=random_state,
        n_jobs=n_jobs,
    )


def chosen_hyperparameters(
    fitted_model: BaseEstimator, name: str = "model"
) -> dict[str, dict[str, Any]]:
    """Each tuned branch's chosen hyperparameters, by branch name.

    Walks a fitted model from :func:`radfusion.pipeline.fusion.build_model` (``tune=True``): a tuned
    single/early branch is reported under ``name``; late fusion's and stacking's branches
    under their estimator names (e.g. ``"CT/tumor:lr"``). Values are plain Python scalars
    (JSON-ready). Untuned models give ``{}``.
    """
    found: dict[str, dict[str, Any]] = {}
    if isinstance(fitted_model, BaseSearchCV):
        if hasattr(fitted_model, "best_params_"):
            found[name] = {
                key: _plain(value) for key, value in sorted(fitted_model.best_params_.items())
            }
        return found
    named = getattr(fitted_model, "named_estimators_", None)
    if named is not None:
        for branch, estimator in named.items():
            if estimator != "drop":
                found.update(chosen_hyperparameters(estimator, branch))
    return found


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value
