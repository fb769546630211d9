"""Shared-space fusion: per-modality maps into one latent space, a classifier on top.

A synthetic table (no images): three groups, each carrying one independent component of the
outcome's latent score; 30 % of patients lack the MR group entirely.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_validate

from radfusion.pipeline.fusion import (
    build_model,
)
from radfusion.pipeline.fusion._shared_space import (
    SharedSpaceClassifier,
)
from radfusion.pipeline.validation import cross_validate_models
from tests.pipeline.conftest import MULTIMODAL_GROUPS, multimodal_table

GROUPS = MULTIMODAL_GROUPS


def mean_auc(predictions):
    """Per model, the mean over repeats of the pooled out-of-fold AUC."""
    return {
        model: np.mean([roc_auc_score(d.y_true, d.proba) for _, d in rows.groupby("repeat")])
        for model, rows in predictions.groupby("model", sort=False)
    }


@pytest.fixture(scope="module")
def table():
    return multimodal_table(p=20)


@pytest.mark.parametrize("missing_mr", [0.0, 0.3])
def test_beats_every_single_group_out_of_fold(missing_mr):
    X, y, groups = multimodal_table(missing_mr=missing_mr, p=20)
    models = {g: build_model({g: cols}, "single") for g, cols in groups.items()}
    models["shared"] = SharedSpaceClassifier(groups)
    predictions = cross_validate_models(models, X, y, folds=5, repeats=2).predictions
    assert predictions.groupby("model").proba.apply(np.isfinite).all()
    assert (predictions.groupby("model").size() == 2 * len(X)).all()  # every patient scored
    auc = mean_auc(predictions)
    best_single = max(auc[g] for g in groups)
    assert auc["shared"] > best_single + 0.05, auc


def test_patient_missing_mr_is_mapped_through_the_other_groups(table):
    X, y, groups = table
    model = SharedSpaceClassifier(groups).fit(X.iloc[:200], y[:200])
    test = X.iloc[200:]
    lacking = test[groups["MR__tumor"]].isna().all(axis=1).to_numpy()
    assert 10 < lacking.sum() < 60
    z = model.transform(test)
    proba = model.predict_proba(test)
    assert np.all(np.isfinite(z)) and np.all(np.isfinite(proba))
    assert roc_auc_score(y[200:][lacking], proba[lacking, 1]) > 0.7
    # z is the mean of the present groups' maps, each computed from that group's columns alone
    for i in np.flatnonzero(lacking)[:5].tolist() + np.flatnonzero(~lacking)[:5].tolist():
        row = test.iloc[[i]]
        present = [g for g, cols in groups.items() if row[cols].notna().any(axis=None)]
        maps = [model.maps_[g].predict(row[groups[g]].to_numpy()) for g in present]
        np.testing.assert_allclose(z[i], np.mean(maps, axis=0).ravel(), rtol=1e-10)
    per_group = model.group_transform(test)
    assert np.isnan(per_group["MR__tumor"][lacking]).all()
    np.testing.assert_allclose(
        z[lacking], (per_group["CT__tumor"][lacking] + per_group["PET__tumor"][lacking]) / 2
    )
    # no group at all: the training mean of Z (the origin), i.e. one constant prediction
    empty = test.iloc[:3].copy()
    empty.loc[:, :] = np.nan
    np.testing.assert_allclose(model.transform(empty), 0.0)
    assert np.ptp(model.predict_proba(empty)[:, 1]) == 0


def test_shared_space_is_standardised_and_oriented_with_the_label(table):
    X, y, groups = table
    model = SharedSpaceClassifier(groups, n_components=2).fit(X, y)
    assert set(model.maps_) == set(groups) and all(model.usable_.values())
    z = model.transform(X)
    assert z.shape == (len(X), 2)
    # every modality's map points the same way: positively correlated with the label
    for g, zg in model.group_transform(X).items():
        rows = ~np.isnan(zg[:, 0])
        assert np.corrcoef(zg[rows, 0], y[rows])[0, 1] > 0.2, g


def test_permuted_labels_are_at_chance():
    rng = np.random.default_rng(0)
    n, p = 100, 300
    names = [f"{g}__f{j}" for g in GROUPS for j in range(p // 3)]
    groups = {g: [c for c in names if c.startswith(g + "__")] for g in GROUPS}
    aucs = []
    for draw in range(5):
        X = pd.DataFrame(rng.normal(size=(n, p)), columns=names)
        X.loc[rng.permutation(n)[:30], groups["MR__tumor"]] = np.nan
        y = rng.permutation(np.repeat([0, 1], n // 2))
        predictions = cross_validate_models(
            {"shared": SharedSpaceClassifier(groups)}, X, y, folds=5, repeats=1, seed=draw
        ).predictions
        aucs.append(roc_auc_score(predictions.y_true, predictions.proba))
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs


def test_deterministic_and_row_order_free(table):
    X, y, groups = table
    a = SharedSpaceClassifier(groups).fit(X, y).predict_proba(X)
    b = SharedSpaceClassifier(groups).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    order = np.random.default_rng(1).permutation(len(X))
    c = SharedSpaceClassifier(groups).fit(X.iloc[order], y[order]).predict_proba(X)
    np.testing.assert_allclose(a, c, atol=1e-8)


def test_string_labels_and_extra_columns(table):
    X, y, groups = table
    labels = np.where(y == 1, "relapse", "none")
    model = SharedSpaceClassifier(groups).fit(X.assign(site="A"), labels)
    assert list(model.classes_) == ["none", "relapse"]
    assert set(model.predict(X)) <= {"none", "relapse"}
    np.testing.assert_allclose(
        model.predict_proba(X), SharedSpaceClassifier(groups).fit(X, y).predict_proba(X)
    )


def test_clone_cross_validate_grid_search_set_output_pickle(table):
    X, y, groups = table
    X_train, X_test, y_train = X.iloc[:200], X.iloc[200:], y[:200]
    model = SharedSpaceClassifier(groups, classifier=LogisticRegression())
    params = model.get_params(deep=False)
    assert params["groups"] is groups and params["n_components"] == 2
    assert clone(model).get_params().keys() == model.get_params().keys()
    # a hard 200-row subsample: early/late fusion also score 0.6-0.68 here
    scores = cross_validate(model, X_train, y_train, cv=3, scoring="roc_auc")["test_score"]
    assert scores.mean() > 0.58
    grid = GridSearchCV(
        model, {"n_components": [1, 2], "classifier__C": [0.1, 1.0]}, cv=3, scoring="roc_auc"
    ).fit(X_train, y_train)
    assert grid.best_score_ > 0.58
    plain = clone(model).fit(X_train, y_train)
    framed = clone(model).set_output(transform="pandas").fit(X_train, y_train)
    np.testing.assert_allclose(framed.predict_proba(X_test), plain.predict_proba(X_test))
    out = framed.transform(X_test)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == ["shared0", "shared1"]
    assert list(out.index) == list(X_test.index)
    assert list(plain.get_feature_names_out()) == ["shared0", "shared1"]
    assert clone(model).fit_transform(X_train, y_train).shape == (200, 2)
    restored = pickle.loads(pickle.dumps(framed))
    np.testing.assert_array_equal(restored.predict_proba(X_test), plain.predict_proba(X_test))


def test_errors(table):
    X, y, groups = table
    with pytest.raises(ValueError, match="two or more classes"):
        SharedSpaceClassifier(groups).fit(X, np.zeros(len(y), dtype=int))
    with pytest.raises(ValueError, match="Unknown label type"):
        SharedSpaceClassifier(groups).fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="not in X.*US__tumor__f0"):
        SharedSpaceClassifier({**groups, "US__tumor": ["US__tumor__f0"]}).fit(X, y)
    fitted = SharedSpaceClassifier(groups).fit(X, y)
    with pytest.raises(ValueError, match="not in X.*CT__tumor__f0"):
        fitted.predict_proba(X.drop(columns="CT__tumor__f0"))
    with pytest.raises(TypeError, match="DataFrame"):
        SharedSpaceClassifier(groups).fit(X.to_numpy(), y)
    with pytest.raises(ValueError, match="n_components"):
        SharedSpaceClassifier(groups, n_components=0).fit(X, y)
    with pytest.raises(ValueError, match="too large"):
        SharedSpaceClassifier(groups, n_components=500).fit(X, y)
    with pytest.raises(ValueError, match="method"):
        SharedSpaceClassifier(groups, method="cca").fit(X, y)
    one_alpha = SharedSpaceClassifier(groups, alphas=[10.0]).fit(X, y)
    assert one_alpha.maps_["CT__tumor"][-1].alpha_.tolist() == [10.0, 10.0]
    with pytest.raises(ValueError, match="alphas"):
        SharedSpaceClassifier(groups, alphas=[0.0]).fit(X, y)
    with pytest.raises(ValueError, match="without columns"):
        SharedSpaceClassifier({"CT__tumor": []}).fit(X, y)
