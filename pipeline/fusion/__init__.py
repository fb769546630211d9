"""The fusion models: per-group branches, early / late / stacking / shared-space fusion, their
combiners, nested tuning, and the :class:`FusionClassifier` / :class:`FusionRegressor` /
:class:`FusionSurvival` estimators that hold a whole run's configuration.
"""

from ._branch import DropConstantFeatures, make_branch
from ._combiners import (
    COMBINERS,
    SHRINKAGE_GRID,
    CombinerClassifier,
    CombinerRegressor,
    resolve_combiner,
)
from ._meta import NonNegativeLogisticRegression
from ._model import (
    CALIBRATIONS,
    ESTIMATORS,
    FUSED,
    HARMONIZE_UNSEEN,
    SELECT_METHODS,
    STACKING_CV,
    STRATEGIES,
    SURVIVAL_STRATEGIES,
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
    BadParametersError,
    check_fusion_params,
)
from ._shared_space import (
    SharedSpaceClassifier,
    SharedSpaceRegressor,
)
from ._stacking import AvailableStackingClassifier, AvailableStackingRegressor
from ._survival import (
    SHARED_SKIPPED,
    AvailableStackingSurvival,
    AvailableVotingSurvival,
    NonNegativeCox,
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
from ._voting import AvailableVotingClassifier, AvailableVotingRegressor

__all__ = [
    "AvailableStackingSurvival",
    "AvailableVotingSurvival",
    "ESTIMATORS",
    "unavailable_strategies",
    "FUSION_CONSTRAINTS",
    "BadParametersError",
    "check_fusion_params",
    "AvailableStackingClassifier",
    "AvailableStackingRegressor",
    "AvailableVotingClassifier",
    "AvailableVotingRegressor",
    "COMBINERS",
    "CombinerClassifier",
    "CombinerRegressor",
    "SHRINKAGE_GRID",
    "resolve_combiner",
    "DropConstantFeatures",
    "FUSED",
    "FusionClassifier",
    "FusionRegressor",
    "SHARED_SKIPPED",
    "FusionSurvival",
    "CALIBRATIONS",
    "build_estimators",
    "make_estimator",
    "HARMONIZE_UNSEEN",
    "IntLogUniform",
    "IntUniform",
    "LogUniform",
    "NonNegativeCox",
    "NonNegativeLogisticRegression",
    "SELECT_METHODS",
    "STACKING_CV",
    "STRATEGIES",
    "SURVIVAL_STRATEGIES",
    "SharedSpaceClassifier",
    "SharedSpaceRegressor",
    "TunedSearchCV",
    "Uniform",
    "build_model",
    "build_models",
    "chosen_hyperparameters",
    "make_branch",
    "search_space",
    "tuned_branch",
]
