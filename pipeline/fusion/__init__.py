"""The fusion models: per-group branches, early / late / stacking / shared-space fusion, their
combiners, nested tuning, and the :class:`FusionClassifier` / :class:`FusionRegressor` /
:class:`FusionSurvival` estimators that hold a whole run's configuration.
"""

from ._branch import (
    make_branch,
)
from ._combiners import (
    CombinerClassifier,
)
from ._meta import (
    NonNegativeLogisticRegression,
)
from ._model import (
    ESTIMATORS,
    FUSED,
    STRATEGIES,
    FusionClassifier,
    FusionRegressor,
    FusionSurvival,
    build_estimators,
    build_model,
    build_models,
    make_estimator,
    unavailable_strategies,
)
from ._parameters import (
    FUSION_CONSTRAINTS,
    check_fusion_params,
)
from ._stacking import (
    AvailableStackingClassifier,
    AvailableStackingRegressor,
)
from ._survival import (
    NonNegativeCox,
)
from ._tuning import (
    chosen_hyperparameters,
    search_space,
    tuned_branch,
)
from ._voting import (
    AvailableVotingClassifier,
    AvailableVotingRegressor,
)

__all__ = [
    "ESTIMATORS",
    "unavailable_strategies",
    "FUSION_CONSTRAINTS",
    "check_fusion_params",
    "AvailableStackingClassifier",
    "AvailableStackingRegressor",
    "AvailableVotingClassifier",
    "AvailableVotingRegressor",
    "CombinerClassifier",
    "FUSED",
    "FusionClassifier",
    "FusionRegressor",
    "FusionSurvival",
    "build_estimators",
    "make_estimator",
    "NonNegativeCox",
    "NonNegativeLogisticRegression",
    "STRATEGIES",
    "build_model",
    "build_models",
    "chosen_hyperparameters",
    "make_branch",
    "search_space",
    "tuned_branch",
]
