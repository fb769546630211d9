"""The wide-table learners ``l1``, ``enet`` and ``et``: available by name, not by default."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import ParameterSampler
from sklearn.utils.estimator_checks import parametrize_with_checks

from radfusion.features.errors import InputError
from radfusion.pipeline.fusion import (
    FusionClassifier,
    build_model,
    check_fusion_params,
    make_branch,
    search_space,
)
from radfusion.pipeline.learners import (
    LEARNER_NAMES,
    LEARNERS,
    PENALTY_CS,
    WIDE_LEARNERS,
    make_learner,
    make_regressor,
    strategy_learners,
)
from radfusion.pipeline.persistence import is_trusted_type


def wide_table(n=120, p=60, seed=0):
    """A wide binary table with 5 informative columns, split in train and test halves."""
    X, y = make_classification(
        n, p, n_informative=5, n_redundant=0, class_sep=2.0, shuffle=False, random_state=seed
    )
    return X[::2], y[::2], X[1::2], y[1::2]


def test_wide_learners_are_accepted_but_not_defaults():
    assert LEARNERS == ("lr", "svm", "rf", "xgb")
    assert set(WIDE_LEARNERS) == {"l1", "enet", "et"}
    assert LEARNER_NAMES == (*LEARNERS, "rf30", *WIDE_LEARNERS)
    assert FusionClassifier().learners is None  # the strategy's defaults
    assert strategy_learners("stacking") == LEARNERS
    params = check_fusion_params({"learner": "l1", "learners": ("lr", "enet", "et")})
    assert params["learner"] == "l1"
    with pytest.raises(InputError, match="Got 'knn'.*") as raised:
        check_fusion_params({"learner": "knn"})
    assert "'lr', 'svm', 'rf', 'xgb', 'rf30', 'l1', 'enet', 'et'" in str(raised.value)


@pytest.mark.parametrize("name", WIDE_LEARNERS)
def test_learner_fits_predicts_and_is_seeded(name):
    X, y, X_test, y_test = wide_table()
    model = make_learner(name, random_state=3)
    params = model.get_params()
    seeds = [v for k, v in params.items() if k.endswith("random_state")]
    seeds += [model.cv.random_state] if hasattr(model, "cv") else []
    assert seeds and set(seeds) == {3}
    proba = model.fit(X, y).predict_proba(X_test)
    assert proba.shape == (len(y_test), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert roc_auc_score(y_test, proba[:, 1]) > 0.8  # 5 informative columns of 60
    again = make_learner(name, random_state=3).fit(X, y).predict_proba(X_test)
    np.testing.assert_array_equal(proba, again)


@pytest.mark.parametrize("name", ["l1", "enet"])
def test_penalised_lr_chooses_its_penalty_on_its_rows_and_is_sparse(name):
    X, y, _, _ = wide_table()
    model = make_learner(name).fit(X, y)
    C = float(np.ravel(model.C_)[0])
    assert C in PENALTY_CS
    ratio = float(np.ravel(model.l1_ratio_)[0])
    assert ratio == (1.0 if name == "l1" else 0.5)
    # an L1 part zeroes most of the 55 noise columns, and keeps informative ones
    coef = model.coef_.ravel()
    assert (coef[5:] == 0).mean() > 0.5
    assert np.abs(coef[:5]).max() > np.abs(coef[5:]).max()


@pytest.mark.parametrize("name", WIDE_LEARNERS)
def test_multiclass(name):
    X, y = make_classification(90, 20, n_informative=5, n_classes=3, random_state=0)
    proba = make_learner(name, multiclass=True).fit(X, y).predict_proba(X)
    assert proba.shape == (90, 3)
    assert (proba.argmax(axis=1) == y).mean() > 0.6


@pytest.mark.parametrize("name", WIDE_LEARNERS)
def test_regression_is_refused_by_name(name):
    with pytest.raises(InputError, match=f"'{name}' is for classification only"):
        make_regressor(name)


@pytest.mark.parametrize("name", WIDE_LEARNERS)
def test_in_a_fusion_branch_and_saved_with_trusted_types_only(name):
    X, y, X_test, y_test = wide_table()
    columns = [f"CT__tumor__f{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=columns, index=[f"P{i}" for i in range(len(y))])
    model = build_model({"CT__tumor": columns}, "early", learner=name, random_state=0)
    model.fit(frame, y)
    proba = model.predict_proba(pd.DataFrame(X_test, columns=columns))[:, 1]
    assert roc_auc_score(y_test, proba) > 0.8
    untrusted = sio.get_untrusted_types(data=sio.dumps(model))
    assert all(is_trusted_type(t) for t in untrusted), untrusted


def test_tuning_et_has_a_space_and_l1_enet_say_why_not():
    space = search_space("et")
    branch = make_branch(["a", "b", "c"], "et", early_stopping=True)
    assert set(space) == {
        "extratreesclassifier__max_features",
        "extratreesclassifier__min_samples_leaf",
        "extratreesclassifier__max_depth",
    }
    assert set(space) <= set(branch.get_params())
    for params in ParameterSampler(space, n_iter=10, random_state=0):
        clone(branch).set_params(**params)  # accepted
    for name in ("l1", "enet"):
        with pytest.raises(InputError, match="chooses its penalty by inner CV already"):
            search_space(name)


#: Checks our configurations fail inside scikit-learn itself, with the reason.
EXPECTED_FAILURES = {
    "check_sample_weight_equivalence_on_dense_data": (
        "a weight of 2 is not a repeated row for inner CV folds (LogisticRegressionCV) or "
        "bootstraps (extra-trees); scikit-learn excuses these classes in its own suite"
    ),
    "check_sample_weight_equivalence_on_sparse_data": "as on dense data",
    "check_classifiers_one_label_sample_weights": (
        "class_weight='balanced' divides by the zero weight of the trimmed class in "
        "scikit-learn before the one-class message is reached"
    ),
}
LIBLINEAR_MULTICLASS = {
    "check_classifier_not_supporting_multiclass": (
        "liblinear's own message; make_learner(multiclass=True) switches 'l1' to saga"
    )
}


def _expected_failures(estimator):
    if getattr(estimator, "solver", None) == "liblinear":
        return {**EXPECTED_FAILURES, **LIBLINEAR_MULTICLASS}
    return EXPECTED_FAILURES


@parametrize_with_checks(
    [  # "enet" is the same class and inner CV as "l1", with saga: left out to save ~15 s
        make_learner("l1"),
        make_learner("et").set_params(n_estimators=20),  # same configuration, fewer trees
    ],
    expected_failed_checks=_expected_failures,
)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
