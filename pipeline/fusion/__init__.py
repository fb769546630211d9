"""The fusion models: per-group branches, early / late / stacking / shared-space fusion, nested
tuning, and the :class:`FusionClassifier` / :class:`FusionRegressor` estimators that hold a
whole run's configuration.
"""

from ._branch import (
    DropConstantFeatures,
    branch_name,
    make_branch,
)
from ._estimator import (
    FusionClassifier,
    FusionRegressor,
)
from ._model import (
    CALIBRATIONS,
    FUSED,
    HARMONIZE_UNSEEN,
    SELECT_METHODS,
    STRATEGIES,
    AvailableStackingClassifier,
    AvailableStackingRegressor,
    AvailableVotingClassifier,
    AvailableVotingRegressor,
    NonNegativeLogisticRegression,
    build_model,
    build_models,
)
from ._shared_space import (
    SharedSpaceClassifier,
    SharedSpaceRegressor,
)
from ._tuning import (
    IntLogUniform,
    IntUniform,
    LogUniform,
    TunedSearchCV,
    Uniform,
    chosen_hyperparameters,
    search_space,
    tuned_branch,
)

__all__ = [
    "AvailableStackingClassifier",
    "AvailableStackingRegressor",
    "AvailableVotingClassifier",
    "AvailableVotingRegressor",
    "DropConstantFeatures",
    "FUSED",
    "FusionClassifier",
    "FusionRegressor",
    "CALIBRATIONS",
    "HARMONIZE_UNSEEN",
    "IntLogUniform",
    "IntUniform",
    "LogUniform",
    "NonNegativeLogisticRegression",
    "SELECT_METHODS",
    "STRATEGIES",
    "SharedSpaceClassifier",
    "SharedSpaceRegressor",
    "TunedSearchCV",
    "Uniform",
    "branch_name",
    "build_model",
    "build_models",
    "chosen_hyperparameters",
    "make_branch",
    "search_space",
    "tuned_branch",
]
