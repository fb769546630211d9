"""The fusion estimators' parameters, checked once: scikit-learn's ``_parameter_constraints``.

:data:`FUSION_CONSTRAINTS` says which values every parameter of the fusion estimators takes;
:func:`check_parameters` checks an estimator's parameters against its constraints (and the
learner names inside its sequences), and reports every bad value at once as a
:class:`BadParametersError`, which is both radfusion's :class:`InputError` (the command line
prints it without a traceback) and scikit-learn's ``InvalidParameterError`` (so
``check_param_validation`` recognises it). The command line and
:func:`radfusion.pipeline.experiment.run_cv` call it before any table is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from numbers import Integral, Real
from os import PathLike
from typing import Any

import pandas as pd

from radfusion.features.errors import InputError, Problem

from .._sklearn_compat import (
    Choice,
    HasMethods,
    Interval,
    InvalidParameterError,
    validate_parameter_constraints,
)
from ..learners import LEARNER_NAMES, SURVIVAL_LEARNERS, named_learners
from ._combiners import COMBINERS

__all__ = [
    "COMPARISON_PARAMETERS",
    "FUSION_CONSTRAINTS",
    "NOT_SURVIVAL",
    "SURVIVAL_CONSTRAINTS",
    "BadParametersError",
    "check_fusion_params",
    "check_parameters",
    "parameter_problems",
]

_POSITIVE = Interval(Integral, 1, None, closed="left")
_FOLDS = Interval(Integral, 2, None, closed="left")
_UNIT = Interval(Real, 0, 1, closed="both")

FUSION_CONSTRAINTS: dict[str, list] = {
    "strategy": [Choice(("single", "early", "late", "stacking", "pooled", "shared"))],
    # every task's learner names (which ones fit the task is checked when the model is built),
    # or an unfitted estimator
    "learner": [Choice((*LEARNER_NAMES, *SURVIVAL_LEARNERS)), HasMethods(["fit"])],
    "learners": [list, tuple, None],
    "groups": [Mapping, None],
    "group_pattern": [str, None],
    "use_groups": [list, tuple, None],
    "categories": [Choice(("auto",)), Mapping],
    "max_levels": [_POSITIVE],
    "harmonize": [str, None],
    "harmonize_unseen": [Choice(("error", "pooled"))],
    "icc_table": [str, PathLike, pd.DataFrame, None],
    "icc_threshold": [_UNIT],
    "correlation_threshold": [Interval(Real, 0, 1, closed="right"), None],
    "select_k": [_POSITIVE, None],
    "select_method": [Choice(("anova", "mrmr"))],
    "resample": [Choice(("smote",)), None],
    "tune": ["boolean"],
    "n_iter": [_POSITIVE],
    "inner_cv": [_FOLDS],
    "cv": [_FOLDS],
    "random_state": ["random_state"],
    "n_jobs": [Integral, None],
    "calibration": [Choice(("sigmoid", "isotonic")), None],
    # every task's combiners; which ones fit the task is checked when the model is built
    "combiner": [Choice((*COMBINERS, "cox")), None],
}
"""The values each parameter of :class:`~radfusion.pipeline.fusion.FusionClassifier` and
``FusionRegressor`` takes (scikit-learn's ``_parameter_constraints``)."""

#: FusionClassifier parameters with no survival form, and why (FusionSurvival has none of them).
NOT_SURVIVAL = {
    "resample": "resampling oversamples a class; a survival target has none",
    "tune": "tuning has no survival search space yet",
    "n_iter": "n_iter sets the tuning search, which survival does not have",
    "inner_cv": "inner_cv sets the tuning search, which survival does not have",
    "calibration": "calibration calibrates class probabilities; survival has none",
}

SURVIVAL_CONSTRAINTS: dict[str, list] = {
    **{k: v for k, v in FUSION_CONSTRAINTS.items() if k not in NOT_SURVIVAL},
    "strategy": [Choice(("single", "early", "late", "stacking"))],  # no pooled, no shared
    "learner": [Choice(SURVIVAL_LEARNERS), HasMethods(["fit"])],
    "learners": [list, tuple],
    "combiner": [Choice(("cox", "mean")), None],
}
"""The values each parameter of :class:`~radfusion.pipeline.fusion.FusionSurvival` takes."""

#: Parameters whose items are learner names, checked item by item.
_LEARNER_LISTS = ("learners",)
#: Parameters whose items are group names.
_NAME_LISTS = ("use_groups",)


class BadParametersError(InputError, InvalidParameterError):
    """Parameters a fusion estimator cannot take, every one listed."""


def parameter_problems(
    constraints: Mapping[str, list], params: Mapping[str, Any], caller: str
) -> list[Problem]:
    """Every parameter of ``params`` that its ``constraints`` refuse, one problem each, in
    the order of ``constraints``; then the learner names inside learner lists."""
    problems = []
    for name, allowed in constraints.items():
        if name not in params:
            continue
        try:
            validate_parameter_constraints({name: allowed}, {name: params[name]}, caller)
        except InvalidParameterError as error:
            problems.append(Problem(str(error)))
            continue
        if name in _LEARNER_LISTS and params[name] is not None:
            problems += _learner_list_problems(name, params[name], constraints["learner"], caller)
        if name in _NAME_LISTS and params[name] is not None and not params[name]:
            problems.append(Problem(f"The {name!r} parameter of {caller} is empty."))
    return problems


def _learner_list_problems(name: str, values, item: list, caller: str) -> list[Problem]:
    """Each item a learner name, an estimator or a ``(label, estimator)`` pair; the labels
    distinct, not empty, and none a parameter's name (``get_params`` reaches an estimator by
    its label)."""
    problems = []
    named = named_learners(values)
    for _, learner in named:
        try:
            validate_parameter_constraints({name: item}, {name: learner}, caller)
        except InvalidParameterError as error:
            problems.append(Problem(f"{error} (an item of {name!r})"))
    labels = [label for label, _ in named]
    if not labels or len(set(labels)) != len(labels):
        problems.append(
            Problem(f"The {name!r} parameter of {caller} must be distinct and not empty: {labels}")
        )
    clashes = sorted(set(labels) & set(FUSION_CONSTRAINTS))
    if clashes:
        problems.append(
            Problem(f"learners labelled {clashes} clash with parameters of the same names")
        )
    return problems


def check_parameters(estimator) -> None:
    """Raise :class:`BadParametersError` listing every parameter of ``estimator`` that its
    ``_parameter_constraints`` refuse (nothing is fitted or read)."""
    caller = type(estimator).__name__
    problems = parameter_problems(
        estimator._parameter_constraints, estimator.get_params(deep=False), caller
    )
    if problems:
        raise BadParametersError(f"Bad parameters of {caller}", problems)


#: Parameters a comparison sets per model (the strategy and the groups it fits on).
COMPARISON_PARAMETERS = ("strategy", "use_groups")


def check_fusion_params(
    params: Mapping[str, Any] | None, random_state: Any = None
) -> dict[str, Any]:
    """The fusion estimators' parameters shared by every model of a run, checked before any
    table is read: unknown names, the per-model ``strategy`` and ``use_groups``, and values the
    constraints refuse are one :class:`BadParametersError` listing them all. ``random_state``,
    when given, is the default of the parameter of that name (a run's seed)."""
    params = dict(params or {})
    if random_state is not None:
        params.setdefault("random_state", random_state)
    problems = [
        Problem(f"{name!r} is not a parameter of the fusion estimators")
        for name in params
        if name not in FUSION_CONSTRAINTS
    ]
    problems += [
        Problem(f"{name!r} is set per model by the comparison, not for the whole run")
        for name in COMPARISON_PARAMETERS
        if name in params
    ]
    problems += parameter_problems(FUSION_CONSTRAINTS, params, "the fusion models")
    if problems:
        raise BadParametersError("Bad model parameters", problems)
    return params
