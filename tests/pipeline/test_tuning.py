"""Tuned branches: nested CV by construction, search spaces, early-stopped XGBoost, class
imbalance, chosen hyperparameters and compatibility (clone, CV, grid search, set_output, skops).

Searches draw 1-4 settings here to keep the suite quick; the shipped default is 20.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    ParameterSampler,
    RandomizedSearchCV,
    StratifiedKFold,
    StratifiedShuffleSplit,
    cross_val_predict,
)
from xgboost import XGBClassifier

from radfusion.features.errors import InputError
from radfusion.pipeline.fusion import (
    build_model,
    build_models,
    chosen_hyperparameters,
    make_branch,
    search_space,
    tuned_branch,
)
from radfusion.pipeline.fusion._tuning import (
    IntLogUniform,
    IntUniform,
    LogUniform,
    TunedSearchCV,
    Uniform,
)
from radfusion.pipeline.learners import LEARNERS, EarlyStoppingXGBClassifier
from radfusion.pipeline.persistence import is_trusted_type
from radfusion.pipeline.validation import cross_validate_models
from tests.pipeline.conftest import check_clone_cv_and_grid_search


def make_table(n, p=10, groups=("CT__tumor", "MR__tumor"), seed=0, signal=1.0, permute=False):
    """Two groups of ``p`` features; the first feature of each carries the outcome."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, len(groups)))
    y = (latent.sum(axis=1) + rng.normal(size=n) > 0).astype(int)
    blocks, columns = [], {}
    for g, group in enumerate(groups):
        block = rng.normal(size=(n, p))
        block[:, 0] += signal * latent[:, g]
        names = [f"{group}__f{j}" for j in range(p)]
        blocks.append(pd.DataFrame(block, columns=names))
        columns[group] = names
    X = pd.concat(blocks, axis=1)
    X.index = pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id")
    if permute:
        y = rng.permutation(y)
    return X, y, columns


class Recorder(ClassifierMixin, BaseEstimator):
    """Logistic-like scorer that logs the row labels (DataFrame index) of every call."""

    log: list = []

    def __init__(self, C=1.0):
        self.C = C

    def fit(self, X, y):
        Recorder.log.append(("fit", tuple(X.index), np.bincount(y, minlength=2).tolist()))
        self.classes_ = np.unique(y)
        self.w_ = np.asarray(X)[y == 1].mean(axis=0) - np.asarray(X)[y == 0].mean(axis=0)
        return self

    def predict_proba(self, X):
        Recorder.log.append(("proba", tuple(X.index), None))
        p = 1 / (1 + np.exp(-self.C * np.asarray(X) @ self.w_))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.5).astype(int)


# --------------------------------------------------------------------------- nested CV


def test_inner_search_never_sees_the_outer_held_out_rows():
    X, y, groups = make_table(60, p=4)
    columns = groups["CT__tumor"]
    tuned = tuned_branch(
        columns,
        Recorder(),
        n_iter=2,
        inner_cv=3,
        param_distributions={"recorder__C": [0.1, 1.0, 10.0]},
    )
    tuned.set_output(transform="pandas")  # the learner sees the DataFrame index: row labels

    def hook(estimator, X_test, y_test, **_):
        calls, Recorder.log[:] = list(Recorder.log), []
        return {"test": set(X_test.index), "calls": calls}

    Recorder.log[:] = []
    result = cross_validate_models({"tuned": tuned}, X, y, folds=3, repeats=1, fold_hook=hook)
    records = result.records
    assert len(records) == 3
    for record in (r["record"] for r in records):
        test, calls = record["test"], record["calls"]
        *search, (last_kind, last_rows, _) = calls
        train = set(X.index) - test
        # 2 settings x 3 inner folds (fit + score) and the refit of the best
        assert [kind for kind, _, _ in search] == ["fit", "proba"] * 6 + ["fit"]
        for _, rows, _ in search:
            assert set(rows) <= train, "the inner search touched an outer held-out row"
        scored = [set(rows) for kind, rows, _ in search if kind == "proba"]
        assert set().union(*scored[:3]) == train  # the inner folds cover the training rows
        assert set(search[-1][1]) == train  # refit on all the outer training rows
        assert last_kind == "proba" and set(last_rows) == test  # only the outer score


@pytest.mark.parametrize("select_k", [None, 20], ids=["lr", "lr+topk"])
def test_permuted_labels_give_chance_auc_with_tuning(select_k):
    aucs = []
    for seed in range(3):
        X, y, groups = make_table(80, p=100, seed=seed, permute=True)
        model = build_model(groups, "early", "lr", tune=True, n_iter=3, select_k=select_k)
        proba = cross_val_predict(
            model,
            X,
            y,
            method="predict_proba",
            cv=StratifiedKFold(5, shuffle=True, random_state=seed),
        )
        aucs.append(roc_auc_score(y, proba[:, 1]))
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs


def test_tuning_recovers_from_a_badly_wrong_default_c():
    """A suppressor pair: x1 = z + 0.3 u, x2 = z, y = [u > 0]. Strong shrinkage (the default
    C = 0.1 with few rows) keeps the marginal direction x1, swamped by z; a weak penalty finds
    x1 - x2 = 0.3 u."""
    rng = np.random.default_rng(1)
    n_train, n_test = 60, 2000
    n = n_train + n_test
    z, u = rng.normal(size=n) * 3, rng.normal(size=n)
    noise = rng.normal(size=(n, 3))
    X = pd.DataFrame(
        np.column_stack([z + 0.3 * u, z, noise]), columns=[f"CT__tumor__f{j}" for j in range(5)]
    )
    y = (u > 0).astype(int)
    columns = list(X.columns)
    train, test = slice(0, n_train), slice(n_train, n)
    default = make_branch(columns, "lr").set_params(logisticregression__C=1e-3)
    tuned = tuned_branch(
        columns,
        "lr",
        n_iter=8,
        inner_cv=3,
        param_distributions={"logisticregression__C": LogUniform(1e-3, 1e3)},
    )
    aucs = {}
    for name, model in (("default", default), ("tuned", tuned)):
        model.fit(X.iloc[train], y[train])
        aucs[name] = roc_auc_score(y[test], model.predict_proba(X.iloc[test])[:, 1])
    assert aucs["tuned"] >= aucs["default"] + 0.1, aucs
    assert tuned.best_params_["logisticregression__C"] > 1e-2


def test_tuned_stacking_searches_once_per_branch_and_reuses_the_setting_inner(monkeypatch):
    """The stack's cost: one search per branch on the whole training set; its inner folds
    refit the chosen setting instead of searching again (cv + 1 searches otherwise)."""
    X, y, groups = make_table(120)
    searched = []
    search_fit = TunedSearchCV.fit

    def counting_fit(self, X, y=None, **params):
        searched.append(len(X))
        return search_fit(self, X, y, **params)

    monkeypatch.setattr(TunedSearchCV, "fit", counting_fit)
    model = build_model(groups, "stacking", learners=["lr"], tune=True, n_iter=3, cv=4)
    model.fit(X, y)
    assert searched == [len(X)] * len(groups)


# --------------------------------------------------------------------------- search spaces


@pytest.mark.parametrize("select_k", [False, True, 8])
@pytest.mark.parametrize("learner", LEARNERS)
def test_search_space_keys_are_branch_parameters_and_draws_are_valid(learner, select_k):
    space = search_space(learner, select_k)
    branch = make_branch(
        ["a", "b", "c"], learner, early_stopping=True, select_k=None if select_k is False else 4
    )
    assert set(space) <= set(branch.get_params())
    assert ("selecttopk__k" in space) == (select_k is not False)
    for params in ParameterSampler(space, n_iter=20, random_state=0):
        clone(branch).set_params(**params)  # accepted
        if "selecttopk__k" in params:
            k = params["selecttopk__k"]
            assert isinstance(k, int)
            assert (2 <= k <= 64) if select_k is True else (2 <= k <= 32)
    for value in space.values():  # distributions are clonable, comparable objects
        if hasattr(value, "rvs"):
            assert repr(clone(value)) == repr(value)


@pytest.mark.parametrize(
    ("dist", "low", "high", "kind"),
    [
        (LogUniform(1e-3, 1e1), 1e-3, 1e1, float),
        (Uniform(0.3, 1.0), 0.3, 1.0, float),
        (IntUniform(2, 6), 2, 6, int),
        (IntLogUniform(2, 64), 2, 64, int),
    ],
)
def test_distributions_draw_in_range_reproducibly(dist, low, high, kind):
    draws = dist.rvs(size=500, random_state=0)
    assert low <= draws.min() and draws.max() <= high
    np.testing.assert_array_equal(draws, dist.rvs(size=500, random_state=0))
    assert isinstance(dist.rvs(random_state=1), kind if kind is int else (float, np.floating))
    if kind is int:
        assert set(np.unique(draws)) >= {low, high} or dist.high - dist.low > 20


# --------------------------------------------------------------------------- early stopping


def _easy(n=200, seed=0, positives=None):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = (
        (X[:, 0] > 0).astype(int)
        if positives is None
        else np.r_[np.ones(positives, int), np.zeros(n - positives, int)]
    )
    if positives is not None:
        X[:, 0] += 2.0 * y
    return X, y


@pytest.mark.parametrize("refit", [True, False])
def test_early_stopping_uses_only_its_own_training_rows(refit):
    X, y = _easy()
    rows = np.arange(0, 200, 2)  # the "training fold"; the other rows must not matter
    model = EarlyStoppingXGBClassifier(refit=refit).fit(X[rows], y[rows])
    assert model.best_iteration_ < model.n_estimators - 1
    train, val = model.train_rows_, model.validation_rows_
    assert len(val) == 15 and np.intersect1d(train, val).size == 0
    assert np.union1d(train, val).tolist() == list(range(len(rows)))
    # the same split and booster by hand, on the fold's rows only
    split = StratifiedShuffleSplit(1, test_size=15, random_state=0)
    t, v = (np.sort(i) for i in next(split.split(X[rows], y[rows])))
    np.testing.assert_array_equal(t, train)
    spw = (y[rows] == 0).sum() / (y[rows] == 1).sum()
    manual = XGBClassifier(
        tree_method="hist",
        n_estimators=500,
        max_depth=3,
        learning_rate=0.05,
        subsample=0.8,
        colsample_bytree=0.5,
        min_child_weight=1.0,
        reg_lambda=1.0,
        scale_pos_weight=spw,
        eval_metric="logloss",
        early_stopping_rounds=25,
        n_jobs=1,
        random_state=0,
    )
    manual.fit(X[rows][t], y[rows][t], eval_set=[(X[rows][v], y[rows][v])], verbose=False)
    assert manual.best_iteration == model.best_iteration_
    expected_rounds = model.best_iteration_ + 1 if refit else manual.best_iteration + 26
    assert model.estimator_.get_booster().num_boosted_rounds() == expected_rounds
    # changing the rows outside the fold changes nothing
    X2 = X.copy()
    X2[1::2] = 0.0
    again = EarlyStoppingXGBClassifier(refit=refit).fit(X2[rows], y[rows])
    np.testing.assert_array_equal(again.predict_proba(X), model.predict_proba(X))


def test_early_stopping_without_enough_rows_uses_every_round():
    X, y = _easy(n=30, positives=1)
    model = EarlyStoppingXGBClassifier(n_estimators=40).fit(X, y)
    assert model.best_iteration_ == 39 and len(model.validation_rows_) == 0
    assert model.predict_proba(X).shape == (30, 2)


@pytest.mark.parametrize("positives", [10, 25])
def test_scale_pos_weight_is_computed_from_the_training_rows(positives):
    X, y = _easy(n=100, positives=positives)
    model = EarlyStoppingXGBClassifier(n_estimators=30).fit(X, y)
    assert model.scale_pos_weight_ == pytest.approx((100 - positives) / positives)
    assert model.estimator_.get_params()["scale_pos_weight"] == model.scale_pos_weight_
    weights = np.where(y == 1, 2.0, 1.0)
    weighted = EarlyStoppingXGBClassifier(n_estimators=30).fit(X, y, sample_weight=weights)
    assert weighted.scale_pos_weight_ == pytest.approx((100 - positives) / (2 * positives))
    assert EarlyStoppingXGBClassifier(scale_pos_weight=None).fit(X, y).scale_pos_weight_ == 1.0
    # inside a tuned branch in an outer fold: the fold's ratio, not the full data's
    frame = pd.DataFrame(X, columns=[f"CT__tumor__f{j}" for j in range(5)])
    fold = np.r_[np.arange(positives // 2), np.arange(positives, 100)]  # half the positives
    tuned = tuned_branch(list(frame.columns), "xgb", n_iter=1, inner_cv=2)
    tuned.fit(frame.iloc[fold], y[fold])
    fitted = tuned.best_estimator_[-1]
    assert isinstance(fitted, EarlyStoppingXGBClassifier)
    assert fitted.scale_pos_weight_ == pytest.approx((100 - positives) / (positives // 2))


def test_smote_resamples_only_at_fit_time():
    pytest.importorskip("imblearn")
    X, y = _easy(n=100, positives=20)
    frame = pd.DataFrame(X, columns=list("abcde"))
    branch = make_branch(list(frame.columns), Recorder(), resample="smote")
    assert "smote" in branch.named_steps
    branch.set_output(transform="pandas")
    Recorder.log[:] = []
    branch.fit(frame, y)
    assert Recorder.log[0][2] == [80, 80]  # the learner was fitted on balanced classes
    assert branch.predict_proba(frame).shape == (100, 2)  # and predicts every row once
    tuned = build_model(
        {"CT": list(frame.columns)}, "single", "lr", tune=True, n_iter=1, resample="smote"
    ).fit(frame, y)
    assert "smote" in tuned.best_estimator_.named_steps


# --------------------------------------------------------------------------- integration


def _tuned(strategy):
    learner, learners = ("xgb", ("lr",)) if strategy == "late" else ("lr", ("lr",))
    _, _, groups = make_table(10, p=6)
    model_groups = {"CT__tumor": groups["CT__tumor"]} if strategy == "single" else groups
    return build_model(
        model_groups, strategy, learner, learners=learners, cv=3, tune=True, n_iter=2
    ), model_groups


def _grid(strategy):
    if strategy in ("single", "early"):
        return {"n_iter": [1, 2]}
    if strategy == "late":
        return {"CT/tumor:xgb__n_iter": [1, 2]}
    return {"CT/tumor:lr__n_iter": [1, 2]}


@pytest.mark.filterwarnings("ignore:X has feature names, but NonNegativeLogisticRegression")
@pytest.mark.parametrize("strategy", ["single", "early", "late", "stacking"])
def test_tuned_models_clone_cross_validate_grid_search_set_output_and_skops(strategy, tmp_path):
    X, y, _ = make_table(90, p=6, seed=3)
    X_train, X_test, y_train = X.iloc[:60], X.iloc[60:], y[:60]
    model, model_groups = _tuned(strategy)
    branches = (
        [model] if isinstance(model, RandomizedSearchCV) else [est for _, est in model.estimators]
    )
    assert all(isinstance(b, TunedSearchCV) for b in branches)

    check_clone_cv_and_grid_search(model, X_train, y_train, _grid(strategy), cv=2)

    fitted = clone(model).fit(X_train, y_train)
    plain = fitted.predict_proba(X_test)
    framed = clone(model).set_output(transform="pandas").fit(X_train, y_train)
    np.testing.assert_allclose(framed.predict_proba(X_test), plain)
    if isinstance(framed, TunedSearchCV):
        out = framed.best_estimator_[:-1].transform(X_test)
        assert isinstance(out, pd.DataFrame)

    chosen = chosen_hyperparameters(fitted)
    expected = (
        {"model": fitted} if isinstance(fitted, TunedSearchCV) else dict(fitted.named_estimators_)
    )
    assert chosen.keys() == expected.keys()
    for name, branch in expected.items():
        assert chosen[name] == branch.best_params_
        assert all(not isinstance(v, np.generic) for v in chosen[name].values())

    path = tmp_path / "model.skops"
    sio.dump(fitted, path)
    untrusted = sio.get_untrusted_types(file=path)
    assert [t for t in untrusted if not is_trusted_type(t)] == []
    loaded = sio.load(path, trusted=untrusted)
    np.testing.assert_array_equal(loaded.predict_proba(X_test), plain)
    assert chosen_hyperparameters(loaded) == chosen
    if isinstance(loaded, TunedSearchCV):
        assert loaded.score(X_test, y[60:]) == fitted.score(X_test, y[60:])


def test_defaults_are_untuned_and_build_models_passes_tuning_to_every_model():
    _, _, groups = make_table(10, p=3)
    plain = build_models(groups, "lr", learners=("lr",))
    with pytest.warns(UserWarning, match="shared-space fusion left out: tune"):
        tuned = build_models(groups, "lr", learners=("lr",), tune=True, n_iter=4)
    assert plain.keys() - {"shared"} == tuned.keys()  # shared has nothing to tune: left out
    with pytest.raises(InputError, match="Shared-space fusion does not take every option"):
        build_model(groups, "shared", tune=True)
    for name in plain:
        assert not isinstance(plain[name], RandomizedSearchCV)
        assert chosen_hyperparameters(plain[name]) == {}
        if name == "shared":
            continue
        model = tuned[name]
        branches = (
            [model] if isinstance(model, TunedSearchCV) else [est for _, est in model.estimators]
        )
        assert branches and all(isinstance(b, TunedSearchCV) and b.n_iter == 4 for b in branches)


def test_xgb_is_early_stopped_only_when_tuned():
    _, _, groups = make_table(10, p=3)
    plain = build_model(groups, "early", "xgb")
    tuned = build_model(groups, "early", "xgb", tune=True)
    assert isinstance(plain[-1], XGBClassifier)
    assert isinstance(tuned.estimator[-1], EarlyStoppingXGBClassifier)
    assert set(search_space("xgb")) <= set(tuned.estimator.get_params())


def test_tuning_an_estimator_needs_a_space():
    with pytest.raises(ValueError, match="param_distributions"):
        tuned_branch(["a"], Recorder())
