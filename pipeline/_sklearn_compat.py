"""The one module that imports scikit-learn's private names.

Every other module imports them from here, under public names, so a scikit-learn release that
moves one breaks this file only. The supported range is pinned in ``pyproject.toml``
(``scikit-learn>=1.6,<1.10``: 1.6 brought ``validate_data`` and ``__sklearn_tags__``; the
upper bound is the newest minor release the test suite has run on).
"""

from sklearn.model_selection._search import BaseSearchCV
from sklearn.utils import _safe_indexing as safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import _check_feature_names_in as check_feature_names_in
from sklearn.utils.validation import _check_sample_weight as check_sample_weight
from sklearn.utils.validation import _num_samples as num_samples

__all__ = [
    "BaseSearchCV",
    "Choice",
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "StrOptions",
    "check_feature_names_in",
    "check_sample_weight",
    "num_samples",
    "safe_indexing",
    "validate_parameter_constraints",
    "validate_params",
]


class Choice(StrOptions):
    """``StrOptions`` that lists its options in the order given (scikit-learn's takes a set,
    whose order changes from one process to the next, and so would its error messages)."""

    def __init__(self, options):
        super().__init__(set(options))
        self.options = tuple(options)


def validate_params(estimator) -> None:
    """Check an estimator's parameters against its ``_parameter_constraints`` (what
    ``BaseEstimator._validate_params`` does, through the function scikit-learn exposes for
    it): an ``InvalidParameterError`` naming the parameter, the accepted values and the one
    given."""
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )
