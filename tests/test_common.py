"""scikit-learn's estimator checks over every estimator radfusion defines.

The estimators are found by walking the installed packages (as imbalanced-learn's
``tests/test_common.py`` does), so a new estimator is checked by default: it needs an entry in
``EXAMPLES`` only when it cannot be built from its defaults. Every expected failure carries its
reason in ``EXPECTED_FAILURES``; a check that starts to pass while listed there fails the test
(scikit-learn's ``xfail(strict=True)``).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
from sklearn.naive_bayes import GaussianNB
from sklearn.tree import DecisionTreeRegressor
from sklearn.utils.estimator_checks import check_param_validation, parametrize_with_checks

import radfusion.features
import radfusion.pipeline
from radfusion.pipeline.fusion import (
    AvailableStackingClassifier,
    AvailableStackingRegressor,
    AvailableVotingClassifier,
    AvailableVotingRegressor,
    CombinerClassifier,
    FusionClassifier,
    FusionRegressor,
    FusionSurvival,
    NonNegativeLogisticRegression,
)
from radfusion.pipeline.fusion._shared_space import (
    SharedSpaceClassifier,
    SharedSpaceRegressor,
)
from radfusion.pipeline.fusion._survival import (
    AvailableStackingSurvival,
    AvailableVotingSurvival,
)
from radfusion.pipeline.fusion._tuning import (
    TunedSearchCV,
)
from radfusion.pipeline.learners import EarlyStoppingXGBClassifier
from radfusion.pipeline.preprocessing import (
    CategoricalEncoder,
    ComBat,
    CorrelationFilter,
    RobustnessFilter,
    SelectTopK,
)
from radfusion.pipeline.survival import survival_target


def discover_estimators() -> list[type]:
    """Every public class deriving from ``BaseEstimator`` with a ``fit``, defined in radfusion."""
    found = []
    for package in (radfusion.features, radfusion.pipeline):
        for module_info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            module = importlib.import_module(module_info.name)
            for name, obj in vars(module).items():
                if (
                    inspect.isclass(obj)
                    and issubclass(obj, BaseEstimator)
                    and obj.__module__ == module.__name__
                    and not name.startswith("_")
                    and hasattr(obj, "fit")
                    and not inspect.isabstract(obj)
                ):
                    found.append(obj)
    return sorted(found, key=lambda cls: (cls.__module__, cls.__name__))


_ICC = pd.DataFrame({"feature": ["x0", "x1"], "icc": [0.9, 0.1]})


class CheckedFusionSurvival(FusionSurvival):
    """FusionSurvival as scikit-learn's checks can fit it: their plain numeric ``y`` read as
    event times, every one an event (the checks know no censored target). Everything else is
    FusionSurvival's own, so its fit / clone / pickle / predict contract is what is checked."""

    def fit(self, X, y):
        return super().fit(X, _as_survival(y))

    def score(self, X, y):
        return super().score(X, _as_survival(y))


def _as_survival(y):
    if y is None:
        return None
    y = np.asarray(y)
    if y.dtype.names is not None:
        return y
    return survival_target(np.abs(y.astype(float)) + 1.0, np.ones(len(y), dtype=bool))


EXAMPLES: dict[type, list[BaseEstimator]] = {
    # The checks feed numeric arrays; the fusion estimators name their columns x0, x1, ... and
    # so see one group, "all" (late fusion then votes over the learners). Cheap learners keep
    # the checks fast; stacking uses 3 inner folds for the checks' smallest classes.
    FusionClassifier: [
        FusionClassifier("early"),
        FusionClassifier("late", learners=("lr", "svm")),
        FusionClassifier("stacking", learners=("lr",), cv=3),
        FusionClassifier("shared"),
        # The learned combiners (CombinerClassifier inside a stack of two branches; svm, not
        # rf: a 500-tree forest per fit made these three instances 210 s of the suite).
        FusionClassifier("stacking", learners=("lr", "svm"), cv=3, combiner="convex"),
        FusionClassifier("stacking", learners=("lr", "svm"), cv=3, combiner="shrunk"),
        FusionClassifier("stacking", learners=("lr", "svm"), cv=3, combiner="best"),
    ],
    FusionRegressor: [
        FusionRegressor("early"),
        FusionRegressor("stacking", learners=("lr",), cv=3),
        FusionRegressor("stacking", learners=("lr",), cv=3, combiner="shrunk"),
    ],
    # Fitted on the checks' y read as event times (CheckedFusionSurvival); cheap settings.
    FusionSurvival: [
        CheckedFusionSurvival("early"),
        CheckedFusionSurvival("late"),
        CheckedFusionSurvival("stacking", learners=("coxnet",), cv=3),
    ],
    # Inputs of the meta-learner are probabilities by default; the checks' data are not.
    NonNegativeLogisticRegression: [NonNegativeLogisticRegression(logit=False)],
    # Ensembles without groups: every branch always present (plain voting / stacking).
    AvailableVotingClassifier: [
        AvailableVotingClassifier([("lr", LogisticRegression()), ("nb", GaussianNB())])
    ],
    AvailableVotingRegressor: [
        AvailableVotingRegressor(
            [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))]
        )
    ],
    AvailableStackingClassifier: [
        AvailableStackingClassifier(
            [("lr", LogisticRegression()), ("nb", GaussianNB())], cv=3, stack_method="predict_proba"
        )
    ],
    AvailableStackingRegressor: [
        AvailableStackingRegressor(
            [("ridge", Ridge()), ("tree", DecisionTreeRegressor(random_state=0))],
            final_estimator=LinearRegression(positive=True),
            cv=3,
        )
    ],
    EarlyStoppingXGBClassifier: [EarlyStoppingXGBClassifier(n_estimators=20)],
    # The site is column 0 (every value its own site); rows with new values come at transform.
    ComBat: [ComBat(batch=0, unseen="pooled"), ComBat(batch=0, unseen="pooled", parametric=False)],
    CorrelationFilter: [CorrelationFilter(), CorrelationFilter(0.5, method="spearman")],
    RobustnessFilter: [RobustnessFilter(_ICC)],
    SelectTopK: [SelectTopK(k=2), SelectTopK(k=2, method="mrmr")],
    CategoricalEncoder: [CategoricalEncoder()],
}

NOT_CHECKED: dict[type, str] = {
    AvailableVotingSurvival: "needs a DataFrame, its column groups and a survival target; "
    "checked through FusionSurvival('late'), which builds it over the checks' tables",
    AvailableStackingSurvival: "needs a DataFrame, its column groups and a survival target; "
    "checked through FusionSurvival('stacking'), which builds it over the checks' tables",
    CombinerClassifier: "combines probabilities in [0, 1] and refuses other values, which the "
    "checks' real-valued data are; checked through FusionClassifier(combiner=...), which "
    "feeds it stacked probabilities (CombinerRegressor takes any values and is checked)",
    SharedSpaceClassifier: "needs a DataFrame and its column groups; checked through "
    "FusionClassifier('shared'), which builds it over the checks' tables",
    SharedSpaceRegressor: "needs a DataFrame and its column groups; exercised through "
    "FusionRegressor('shared'), which builds it over a grouped table (and "
    "tests/pipeline/test_shared.py)",
    TunedSearchCV: "RandomizedSearchCV with a different saved state; a meta-estimator whose "
    "behaviour is scikit-learn's (tests/pipeline/test_tuning.py covers the state)",
}

EXPECTED_FAILURES: dict[type, dict[str, str]] = {
    EarlyStoppingXGBClassifier: {
        "check_sample_weight_equivalence_on_dense_data": "early stopping holds out a stratified "
        "split of the rows: repeating a row is not the same as doubling its weight there",
    },
    NonNegativeLogisticRegression: {
        "check_classifiers_train": "weights are constrained >= 0: the check's blobs need a "
        "negative weight to reach 83 % accuracy (by design)",
    },
    ComBat: {
        "check_estimators_pickle": "the check writes NaN into every column, the site column "
        "(0) included; a missing site is an error by design",
        "check_transformer_n_iter": "the check's site column (0) is continuous: every site "
        "has one row, so there is no scale prior to iterate on",
    },
}


def _instances() -> list[BaseEstimator]:
    instances = []
    for cls in discover_estimators():
        if cls in NOT_CHECKED:
            continue
        instances += EXAMPLES.get(cls) or [cls()]
    return instances


def _expected_failed_checks(estimator) -> dict[str, str]:
    if isinstance(estimator, FusionClassifier) and estimator.strategy == "shared":
        return {
            "check_fit2d_1feature": "the shared space has n_components=2 dimensions: one "
            "feature column cannot span it, and fit says so instead of shrinking it"
        }
    return EXPECTED_FAILURES.get(type(estimator), {})


def test_every_estimator_is_checked_or_excused():
    classes = discover_estimators()
    assert FusionClassifier in classes and ComBat in classes
    for cls in classes:
        if cls in NOT_CHECKED:
            assert NOT_CHECKED[cls], cls
            continue
        signature = inspect.signature(cls.__init__)
        required = [
            p
            for p in list(signature.parameters.values())[1:]
            if p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        assert not required or cls in EXAMPLES, f"{cls.__name__} needs an entry in EXAMPLES"


@parametrize_with_checks(_instances(), expected_failed_checks=_expected_failed_checks)
def test_estimator_checks(estimator, check):
    check(estimator)


def _fitted_through(cls: type) -> BaseEstimator:
    """The checked estimator an excused class is exercised through, fitted on a small table
    with its column groups (a third of the patients without MR)."""
    from tests.pipeline.conftest import multimodal_table

    X, y, _ = multimodal_table(n=60, p=3, k=2)
    if cls in (AvailableVotingSurvival, AvailableStackingSurvival):
        strategy = "late" if cls is AvailableVotingSurvival else "stacking"
        time = np.exp(-X.filter(like="__f0").fillna(0).sum(axis=1).to_numpy()) + 0.1
        target = survival_target(time, np.arange(len(time)) % 4 != 0, X.index)
        return FusionSurvival(strategy, learners=("coxnet",), cv=3).fit(X, target)
    if cls is SharedSpaceRegressor:
        return FusionRegressor("shared").fit(X, y + 0.1 * np.arange(len(y)))
    model = {
        CombinerClassifier: FusionClassifier("stacking", learners=("lr",), cv=3, combiner="best"),
        SharedSpaceClassifier: FusionClassifier("shared"),
        TunedSearchCV: FusionClassifier("early", learners=("lr",), tune=True, n_iter=2),
    }[cls]
    return model.fit(X, y)


def _estimators_within(estimator, depth: int = 6):
    """Every estimator reachable through a fitted estimator's attributes."""
    yield estimator
    if depth == 0:
        return
    for value in vars(estimator).values():
        items = value.values() if isinstance(value, dict) else value
        if isinstance(items, (list, tuple, type({}.values()))):
            items = [i[1] if isinstance(i, tuple) and len(i) == 2 else i for i in items]
        else:
            items = [value]
        for item in items:
            if isinstance(item, BaseEstimator):
                yield from _estimators_within(item, depth - 1)


@pytest.mark.parametrize(
    "cls", sorted(NOT_CHECKED, key=lambda c: c.__name__), ids=lambda c: c.__name__
)
def test_excused_estimators_are_fitted_inside_a_checked_one(cls):
    """Each excused class really runs inside the checked estimator its reason names."""
    assert any(type(e) is cls for e in _estimators_within(_fitted_through(cls))), NOT_CHECKED[cls]


def _validated() -> list[BaseEstimator]:
    """The checked instances whose class declares scikit-learn's ``_parameter_constraints``."""
    return [est for est in _instances() if hasattr(type(est), "_parameter_constraints")]


@pytest.mark.parametrize("estimator", _validated(), ids=lambda est: type(est).__name__)
def test_parameters_are_checked_once_by_their_constraints(estimator):
    # scikit-learn runs this check on its own estimators only (it is not in
    # parametrize_with_checks): every parameter has a constraint, and a bad type or value is
    # an InvalidParameterError naming it, raised at fit.
    check_param_validation(type(estimator).__name__, estimator)


#: scikit-learn's private names an estimator of ours may define or call, each with its reason
#: (every other one is reached through the public API or ``pipeline/_sklearn_compat.py``).
SKLEARN_EXTENSION_POINTS = {
    "_get_support_mask": "SelectorMixin's documented extension point: a selector defines it",
    "_parameter_constraints": "the documented parameter validation: an ensemble extends its "
    "scikit-learn base's constraints instead of retyping them",
}


def _sklearn_private_names(cls: type) -> set[str]:
    """The private names of scikit-learn's classes in ``cls``'s bases that our classes in its
    bases define, call or read."""
    theirs = [base for base in cls.__mro__ if base.__module__.startswith("sklearn")]
    used = set()
    for base in cls.__mro__:
        if base.__module__.startswith("radfusion"):
            for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(base)))):
                if isinstance(node, ast.FunctionDef):
                    used.add(node.name)
                elif isinstance(node, ast.Attribute):
                    used.add(node.attr)
    return {
        name
        for name in used
        if name.startswith("_")
        and not name.startswith("__")
        and any(name in vars(base) for base in theirs)
    }


@pytest.mark.parametrize("cls", discover_estimators(), ids=lambda c: c.__name__)
def test_estimators_use_no_private_scikit_learn_hook(cls):
    assert _sklearn_private_names(cls) - set(SKLEARN_EXTENSION_POINTS) == set()
