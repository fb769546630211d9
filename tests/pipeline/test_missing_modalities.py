"""Missing modalities: late fusion and stacking combine only the branches a patient has.

A synthetic *table* (no images): three groups, each carrying one independent component of the
outcome's latent score; 30 % of patients lack the MR group entirely.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import clone
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_validate

from radfusion.pipeline.fusion import (
    AvailableStackingClassifier,
    AvailableVotingClassifier,
    NonNegativeLogisticRegression,
    build_model,
)
from radfusion.pipeline.persistence import is_trusted_type
from radfusion.pipeline.validation import cross_validate_models
from tests.pipeline.conftest import MULTIMODAL_GROUPS, multimodal_table

GROUPS = MULTIMODAL_GROUPS


def models(groups):
    return {
        "CT": build_model({"CT__tumor": groups["CT__tumor"]}, "single"),
        "late": build_model(groups, "late"),
        "stacking": build_model(groups, "stacking", combiner="logistic", learners=("lr",), cv=3),
    }


@pytest.fixture(scope="module")
def table():
    return multimodal_table()


def test_late_and_stacking_score_every_patient_and_beat_ct_only(table):
    X, y, groups = table
    predictions = cross_validate_models(models(groups), X, y, folds=3, repeats=1).predictions
    assert predictions["proba"].notna().all()
    auc = {name: roc_auc_score(g["y_true"], g["proba"]) for name, g in predictions.groupby("model")}
    assert auc["late"] > auc["CT"] + 0.05 and auc["stacking"] > auc["CT"] + 0.05, auc
    lacking = X[groups["MR__tumor"]].isna().all(axis=1).to_numpy()
    assert lacking.mean() == pytest.approx(0.3)
    for name in ("late", "stacking"):  # fusion helps the patients without MR too
        rows = predictions[predictions["model"] == name].set_index("patient_id").loc[X.index]
        sub = roc_auc_score(y[lacking], rows["proba"].to_numpy()[lacking])
        ct = predictions[predictions["model"] == "CT"].set_index("patient_id").loc[X.index]
        assert sub > roc_auc_score(y[lacking], ct["proba"].to_numpy()[lacking]), name


def test_branches_train_only_on_patients_having_their_group(table):
    X, y, groups = table
    has_mr = X[groups["MR__tumor"]].notna().any(axis=1).to_numpy()
    late = build_model(groups, "late").fit(X, y)
    stack = build_model(groups, "stacking", combiner="logistic", learners=("lr",), cv=3).fit(X, y)
    for model in (late, stack):
        assert model.named_estimators_["MR/tumor:lr"][-2].n_samples_seen_ == has_mr.sum()
        assert model.named_estimators_["CT/tumor:lr"][-2].n_samples_seen_ == len(X)
    assert stack.indicator_groups_ == ["MR__tumor"]
    assert stack.final_estimator_.n_free == 1
    assert stack.get_feature_names_out()[-1] == "availablestackingclassifier_missing_MR/tumor"
    assert np.all(stack.final_estimator_.coef_[0, :-1] >= 0)


def test_meta_learner_sees_strictly_out_of_fold_probabilities_and_indicators(table):
    X, y, groups = table
    model = build_model(groups, "stacking", combiner="logistic", learners=("lr",), cv=3).fit(X, y)
    has = X[groups["MR__tumor"]].notna().any(axis=1).to_numpy()
    columns = []
    for name, branch in model.estimators:
        present = has if name.startswith("MR") else np.ones(len(X), bool)
        column = np.full(len(X), 0.5)
        for train, test in model.cv.split(X, y):
            train, test = train[present[train]], test[present[test]]
            fitted = clone(branch).fit(X.iloc[train], y[train])
            column[test] = fitted.predict_proba(X.iloc[test])[:, 1]
        columns.append(column)
    meta = np.column_stack([*columns, (~has).astype(float)])
    refit = NonNegativeLogisticRegression(n_free=1).fit(meta, y)
    np.testing.assert_allclose(refit.coef_, model.final_estimator_.coef_, rtol=1e-6, atol=1e-8)


def test_missing_at_predict_time_and_no_group_gets_the_prevalence():
    X, y, groups = multimodal_table(missing_mr=0.0)
    train, test = X.iloc[:200], X.iloc[200:].copy()
    test.loc[test.index[:20], groups["MR__tumor"]] = np.nan
    test.loc[test.index[20:25], :] = np.nan
    late = build_model(groups, "late").fit(train, y[:200])
    stack = build_model(groups, "stacking", combiner="logistic", learners=("lr",), cv=3).fit(
        train, y[:200]
    )
    assert stack.indicator_groups_ == []  # complete training data: no indicator at all
    for model in (late, stack):
        proba = model.predict_proba(test)
        assert np.all(np.isfinite(proba)) and np.allclose(proba.sum(axis=1), 1)
        np.testing.assert_allclose(proba[20:25, 1], y[:200].mean())
        assert roc_auc_score(y[200:][:20], proba[:20, 1]) > 0.7
    branch = {n: e.predict_proba(test.iloc[:20])[:, 1] for n, e in late.named_estimators_.items()}
    np.testing.assert_allclose(
        late.predict_proba(test.iloc[:20])[:, 1],
        (branch["CT/tumor:lr"] + branch["PET/tumor:lr"]) / 2,
    )


def test_identical_to_sklearn_voting_and_stacking_on_complete_data():
    X, y, groups = multimodal_table(200, seed=1, missing_mr=0.0)
    train, test = X.iloc[:120], X.iloc[120:]
    late = build_model(groups, "late")
    voting = VotingClassifier(late.estimators, voting="soft")
    np.testing.assert_array_equal(
        late.fit(train, y[:120]).predict_proba(test), voting.fit(train, y[:120]).predict_proba(test)
    )
    stack = build_model(groups, "stacking", combiner="logistic", learners=("lr", "svm"), cv=3)
    plain = StackingClassifier(
        stack.estimators,
        final_estimator=NonNegativeLogisticRegression(),
        cv=stack.cv,
        stack_method="predict_proba",
    )
    np.testing.assert_array_equal(
        stack.fit(train, y[:120]).predict_proba(test), plain.fit(train, y[:120]).predict_proba(test)
    )
    np.testing.assert_array_equal(stack.final_estimator_.coef_, plain.final_estimator_.coef_)


@pytest.mark.filterwarnings("ignore:X has feature names, but NonNegativeLogisticRegression")
@pytest.mark.parametrize("strategy", ["late", "stacking"])
def test_clone_cross_validate_grid_search_set_output_pickle_and_skops(strategy, table):
    X, y, groups = table
    X_train, X_test, y_train = X.iloc[:200], X.iloc[200:], y[:200]
    combiner = "logistic" if strategy == "stacking" else None  # the grid searches its C
    model = build_model(groups, strategy, learners=("lr",), cv=3, combiner=combiner)
    assert clone(model).get_params().keys() == model.get_params().keys()
    scores = cross_validate(model, X_train, y_train, cv=3, scoring="roc_auc")["test_score"]
    assert scores.mean() > 0.7
    grid = {"CT/tumor:lr__logisticregression__C": [0.01, 0.1]}
    if strategy == "stacking":
        grid["final_estimator__C"] = [0.1, 1.0]
    GridSearchCV(model, grid, cv=3, scoring="roc_auc").fit(X_train, y_train)
    plain = clone(model).fit(X_train, y_train).predict_proba(X_test)
    framed = clone(model).set_output(transform="pandas").fit(X_train, y_train)
    np.testing.assert_allclose(framed.predict_proba(X_test), plain)
    out = framed.transform(X_test)
    assert isinstance(out, pd.DataFrame) and len(out) == len(X_test)
    restored = pickle.loads(pickle.dumps(framed))
    np.testing.assert_array_equal(restored.predict_proba(X_test), plain)
    data = sio.dumps(framed)
    untrusted = sio.get_untrusted_types(data=data)
    assert {f"{type(model).__module__}.{type(model).__name__}"} <= set(untrusted)
    assert type(model).__module__.startswith("radfusion.pipeline.fusion._")
    assert all(is_trusted_type(name) for name in untrusted), untrusted
    np.testing.assert_array_equal(sio.loads(data, trusted=untrusted).predict_proba(X_test), plain)


def test_informative_missingness_gets_a_free_signed_indicator_weight():
    X, y, groups = multimodal_table(300, seed=2, missing_mr=0.0)
    # MR is only acquired for some patients, more often for the positives: missing → lower risk
    rng = np.random.default_rng(0)
    lacking = rng.random(len(y)) < np.where(y == 1, 0.1, 0.6)
    X.loc[lacking, groups["MR__tumor"]] = np.nan
    model = build_model(groups, "stacking", combiner="logistic", learners=("lr",), cv=3).fit(X, y)
    assert model.final_estimator_.coef_[0, -1] < -0.5
    assert np.all(model.final_estimator_.coef_[0, :-1] >= 0)


def test_without_groups_every_branch_is_always_present(table):
    X, y, groups = table
    late = build_model(groups, "late")
    plain = AvailableVotingClassifier(late.estimators).fit(X, y)
    np.testing.assert_array_equal(
        plain.predict_proba(X),
        VotingClassifier(late.estimators, voting="soft").fit(X, y).predict_proba(X),
    )
    with pytest.raises(ValueError, match="match no group"):
        AvailableStackingClassifier(late.estimators, groups={"other": ["x"]}).fit(X, y)


@pytest.mark.parametrize(
    ("ensemble", "branches", "message"),
    [
        ("stacking regressor", "a:lr b:ridge", "LogisticRegression should be a regressor"),
        ("voting classifier", "a:lr b:ridge", "The estimator Ridge should be a classifier"),
        ("stacking classifier", "a:lr a:lr", "Names provided are not unique"),
        ("stacking classifier", "a:drop b:drop", "All estimators are dropped"),
    ],
)
def test_branches_are_checked_as_scikit_learns_ensembles_check_them(ensemble, branches, message):
    """The checks scikit-learn's own ensembles made (they now run on its public API): a
    regressor's branches are regressors, a voting classifier's classifiers, names unique."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from radfusion.pipeline.fusion import (
        AvailableStackingClassifier,
        AvailableStackingRegressor,
        AvailableVotingClassifier,
    )

    made = {"lr": LogisticRegression, "ridge": Ridge, "drop": lambda: "drop"}
    estimators = [(name, made[key]()) for name, key in (b.split(":") for b in branches.split())]
    model = {
        "stacking regressor": lambda: AvailableStackingRegressor(estimators, cv=3),
        "voting classifier": lambda: AvailableVotingClassifier(estimators),
        "stacking classifier": lambda: AvailableStackingClassifier(estimators, cv=3),
    }[ensemble]()
    X, y, _ = multimodal_table(n=40, missing_mr=0.0, p=2, k=1)
    with pytest.raises(ValueError, match=message):
        model.fit(X, y)
