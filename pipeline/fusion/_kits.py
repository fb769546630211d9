"""What the fusion models build differently per task, chosen once by the task's name.

A fusion estimator composes the same strategies for every task (one branch, a vote over the
groups a patient has, a stack, a shared space); what differs is the learner behind a branch
name, the ensemble that votes or stacks, the meta-learner of ``combiner="logistic"``, the
shared-space model and the options that have no meaning for the task. Each task has one
:class:`Kit` that answers these, in :data:`KITS`; :class:`~radfusion.pipeline.fusion.
FusionClassifier` and its siblings ask it instead of comparing task names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sklearn.base import BaseEstimator, clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import KFold

from radfusion.features.errors import Problem

from ..learners import make_learner, make_regressor, make_survival_learner
from ..splits import AdaptiveStratifiedKFold
from ._combiners import CombinerClassifier, CombinerRegressor
from ._meta import NonNegativeLogisticRegression
from ._shared_space import SharedSpaceClassifier, SharedSpaceRegressor
from ._stacking import AvailableStackingClassifier, AvailableStackingRegressor
from ._survival import SHARED_SKIPPED, AvailableStackingSurvival, AvailableVotingSurvival
from ._voting import AvailableVotingClassifier, AvailableVotingRegressor

__all__ = ["KITS", "Kit"]

Branches = list[tuple[str, BaseEstimator]]


class Kit:
    """The building blocks of one task's fusion models (binary classification here)."""

    #: Options the task refuses when set, and why.
    refuses: Mapping[str, str] = {}

    def learner(self, learner: str | BaseEstimator, random_state: Any) -> BaseEstimator:
        """The unfitted learner behind a learner name (an estimator given: a clone)."""
        if not isinstance(learner, str):
            return clone(learner)
        return self.named(learner, random_state)

    def named(self, name: str, random_state: Any) -> BaseEstimator:
        """The task's learner of that name, with radiomics defaults."""
        return make_learner(name, random_state)

    def vote(self, branches: Branches, groups: dict, *, n_jobs: Any) -> BaseEstimator:
        """The mean over the branches a patient has (late fusion; ``combiner="mean"``)."""
        return AvailableVotingClassifier(branches, groups=groups, voting="soft", n_jobs=n_jobs)

    def stack(
        self, branches: Branches, groups: dict, combiner: str, *, cv: int, random_state, n_jobs
    ) -> BaseEstimator:
        """The branches combined by a fitted ``combiner`` on inner out-of-fold outputs."""
        final = (
            self.logistic()
            if combiner == "logistic"
            else CombinerClassifier(combiner, cv=cv, random_state=random_state)
        )
        return AvailableStackingClassifier(
            branches,
            final_estimator=final,
            groups=groups,
            cv=AdaptiveStratifiedKFold(cv, shuffle=True, random_state=random_state),
            stack_method="predict_proba",
            n_jobs=n_jobs,
        )

    def logistic(self) -> BaseEstimator:
        """The meta-learner of ``combiner="logistic"`` (radfusion <= 0.2's)."""
        return NonNegativeLogisticRegression()

    def shared(self, groups: dict, *, random_state, branch_options) -> BaseEstimator:
        """The shared-space model."""
        return SharedSpaceClassifier(
            groups, random_state=random_state, branch_options=branch_options
        )

    def problems(self, params: Mapping[str, Any]) -> list[Problem]:
        """The options set in ``params`` that the task refuses, each with why."""
        return [Problem(why) for name, why in self.refuses.items() if params.get(name)]


class MulticlassKit(Kit):
    """Three or more classes: a multinomial meta-learner; no tuning."""

    refuses = {"tune": "tuning is built for binary targets only: run without --tune"}

    def named(self, name: str, random_state: Any) -> BaseEstimator:
        return make_learner(name, random_state, multiclass=True)

    def logistic(self) -> BaseEstimator:
        return LogisticRegression(max_iter=1000)


class RegressionKit(Kit):
    """A continuous outcome: the learners' regressor counterparts, squared-error combiners."""

    refuses = {
        "calibration": "calibration is for classifiers: run a regression without it",
        "tune": "tuning is built for binary targets only: run without --tune",
        "resample": "SMOTE oversamples classes: not for a regression target",
    }

    def named(self, name: str, random_state: Any) -> BaseEstimator:
        return make_regressor(name, random_state)

    def vote(self, branches: Branches, groups: dict, *, n_jobs: Any) -> BaseEstimator:
        return AvailableVotingRegressor(branches, groups=groups, n_jobs=n_jobs)

    def stack(
        self, branches: Branches, groups: dict, combiner: str, *, cv: int, random_state, n_jobs
    ) -> BaseEstimator:
        final = (
            LinearRegression(positive=True)
            if combiner == "logistic"
            else CombinerRegressor(combiner, cv=cv, random_state=random_state)
        )
        return AvailableStackingRegressor(
            branches,
            final_estimator=final,
            groups=groups,
            cv=KFold(cv, shuffle=True, random_state=random_state),
            n_jobs=n_jobs,
        )

    def shared(self, groups: dict, *, random_state, branch_options) -> BaseEstimator:
        return SharedSpaceRegressor(
            groups, random_state=random_state, branch_options=branch_options
        )


class SurvivalKit(Kit):
    """A time-to-event outcome: scikit-survival learners, risks averaged or Cox-stacked."""

    def named(self, name: str, random_state: Any) -> BaseEstimator:
        return make_survival_learner(name, random_state)

    def vote(self, branches: Branches, groups: dict, *, n_jobs: Any) -> BaseEstimator:
        return AvailableVotingSurvival(branches, groups=groups, n_jobs=n_jobs)

    def stack(
        self, branches: Branches, groups: dict, combiner: str, *, cv: int, random_state, n_jobs
    ) -> BaseEstimator:
        return AvailableStackingSurvival(
            branches, groups=groups, cv=cv, random_state=random_state, n_jobs=n_jobs
        )

    def shared(self, groups: dict, *, random_state, branch_options) -> BaseEstimator:
        raise ValueError(SHARED_SKIPPED)


KITS: dict[str, Kit] = {
    "binary": Kit(),
    "multiclass": MulticlassKit(),
    "regression": RegressionKit(),
    "survival": SurvivalKit(),
}
"""The fusion building blocks of each task, by task name."""
