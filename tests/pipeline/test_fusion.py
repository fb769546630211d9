"""Fusion models: every strategy × learner, scikit-learn compatibility, the stacking meta-learner.

Random-forest branches are fitted with 50 instead of 300 trees here (``_fast``) to keep the
suite quick; everything else runs with the shipped defaults.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit
from sklearn.base import clone
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import (
    StratifiedKFold,
    cross_val_predict,
)
from sklearn.pipeline import Pipeline
from sklearn.utils.estimator_checks import check_estimator

from radfusion.features.errors import InputError
from radfusion.features.naming import feature_column
from radfusion.pipeline.columns import branch_name
from radfusion.pipeline.fusion import (
    ESTIMATORS,
    STRATEGIES,
    NonNegativeLogisticRegression,
    build_model,
    build_models,
    make_branch,
)
from radfusion.pipeline.fusion._branch import (
    DropConstantFeatures,
)
from radfusion.pipeline.learners import LEARNERS, POOLED_LEARNERS, make_learner
from radfusion.pipeline.targets import get_task
from tests.pipeline.conftest import check_clone_cv_and_grid_search

GROUPS = ("CT__tumor", "PET__tumor", "MR__ring")


def make_data(n, seed=0, groups=GROUPS, p=12, k=3, signal=1.0):
    """Each group sees one independent component of the outcome's latent score.

    Columns are ``modality__mask__feature`` on very different scales; the first ``k`` of each
    group carry that group's component, the others are noise. No single group has all the signal.
    """
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, len(groups)))
    y = (latent.sum(axis=1) + 0.5 * rng.normal(size=n) > 0).astype(int)
    columns = {}
    for g, group in enumerate(groups):
        modality, mask = group.split("__")
        for j in range(p):
            value = rng.normal(size=n) + (signal * latent[:, g] if j < k else 0.0)
            columns[feature_column(modality, mask, f"original_firstorder_f{j}")] = (
                value * 10.0 ** (j % 4) + 5.0 * j
            )
    X = pd.DataFrame(columns)
    return X, y, {group: [c for c in X if c.startswith(group + "__")] for group in groups}


def _fast(model):
    """Fewer random-forest trees, for test speed only."""
    keys = [k for k in model.get_params() if k.endswith("randomforestclassifier__n_estimators")]
    return model.set_params(**dict.fromkeys(keys, 50)) if keys else model


def _auc(model, X, y):
    return roc_auc_score(y, model.predict_proba(X)[:, 1])


@pytest.fixture(scope="module")
def data():
    X, y, groups = make_data(400)
    return X.iloc[:160], X.iloc[160:], y[:160], y[160:], groups


@pytest.fixture(scope="module")
def single_aucs(data):
    """Held-out AUC of each group's single-branch model, per learner (computed once)."""
    X_train, X_test, y_train, y_test, groups = data
    cache = {}

    def get(learner):
        if learner not in cache:
            cache[learner] = [
                _auc(
                    _fast(build_model({g: c}, "single", learner)).fit(X_train, y_train),
                    X_test,
                    y_test,
                )
                for g, c in groups.items()
            ]
        return cache[learner]

    return get


# --------------------------------------------------------------------------- every strategy


@pytest.mark.parametrize("learner", LEARNERS)
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_and_learner_fits_and_fusion_beats_the_best_single_group(
    strategy, learner, data, single_aucs
):
    X_train, X_test, y_train, y_test, groups = data
    model_groups = {"CT__tumor": groups["CT__tumor"]} if strategy == "single" else groups
    model = build_model(model_groups, strategy, learner, learners=(learner,), cv=3)
    _fast(model).fit(X_train, y_train)

    proba = model.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2)
    assert np.all((proba >= 0) & (proba <= 1)) and np.allclose(proba.sum(axis=1), 1)
    assert set(model.predict(X_test)) <= {0, 1}
    auc = roc_auc_score(y_test, proba[:, 1])
    if strategy == "single":
        assert auc > 0.6  # one third of the signal
    else:
        assert auc > max(single_aucs(learner)) + 0.03, (auc, single_aucs(learner))


def test_default_stacking_over_groups_and_learners(data, single_aucs):
    X_train, X_test, y_train, y_test, groups = data
    model = _fast(build_model(groups, "stacking", combiner="logistic")).fit(X_train, y_train)

    names = [name for name, _ in model.estimators]
    assert names == [branch_name(g, learner) for g in groups for learner in LEARNERS]
    assert names[:2] == ["CT/tumor:lr", "CT/tumor:svm"]
    # binary problem: one column (P(y=1)) per branch reaches the meta-learner
    meta = model.final_estimator_
    assert meta.n_features_in_ == len(groups) * len(LEARNERS)
    assert np.all(meta.coef_ >= 0) and meta.coef_.sum() > 0
    assert _auc(model, X_test, y_test) > max(single_aucs("lr")) + 0.03


def test_meta_learner_receives_out_of_fold_positive_class_probabilities(data):
    X_train, X_test, y_train, _, groups = data
    model = build_model(groups, "stacking", combiner="logistic", learners=("lr",), cv=3).fit(
        X_train, y_train
    )
    meta_inputs = model.transform(X_test)
    expected = np.column_stack([est.predict_proba(X_test)[:, 1] for est in model.estimators_])
    np.testing.assert_allclose(meta_inputs, expected)
    # at fit time the meta-learner saw out-of-fold, not in-sample, probabilities
    oof = np.column_stack(
        [
            cross_val_predict(est, X_train, y_train, cv=model.cv, method="predict_proba")[:, 1]
            for _, est in model.estimators
        ]
    )
    refit = NonNegativeLogisticRegression().fit(oof, y_train)
    np.testing.assert_allclose(refit.coef_, model.final_estimator_.coef_, rtol=1e-6, atol=1e-8)


def test_informative_branch_gets_positive_weight_and_noise_branches_little():
    X, y, groups = make_data(300, seed=3, groups=("CT__tumor", "noise__a", "noise__b"))
    # only the CT group is informative: rebuild y from its features alone
    y = (X[groups["CT__tumor"][:3]].rank().sum(axis=1) > 1.5 * len(X)).astype(int).to_numpy()
    model = build_model(groups, "stacking", combiner="logistic", learners=("lr",)).fit(X, y)
    weights = dict(
        zip([n for n, _ in model.estimators], model.final_estimator_.coef_[0], strict=True)
    )
    assert all(w >= 0 for w in weights.values())
    assert weights["CT/tumor:lr"] > 1.0
    assert weights["noise/a:lr"] + weights["noise/b:lr"] < 0.25 * weights["CT/tumor:lr"]


# --------------------------------------------------------------------------- sklearn protocol


def _grid(strategy):
    if strategy in ("single", "early"):
        return {"logisticregression__C": [0.01, 0.1]}
    if strategy == "late":
        return {"CT/tumor:lr__logisticregression__C": [0.01, 0.1]}
    if strategy == "shared":
        return {"n_components": [1, 2]}
    if strategy == "pooled":
        return {"pooled:lr__logisticregression__C": [0.01, 0.1]}
    return {"final_estimator__C": [0.1, 1.0], "CT/tumor:lr__logisticregression__C": [0.01, 0.1]}


# StackingClassifier fits its final estimator on an array but, under set_output("pandas"), feeds
# it a DataFrame at predict time (scikit-learn behaviour); harmless, the columns are positional.
@pytest.mark.filterwarnings("ignore:X has feature names, but NonNegativeLogisticRegression")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_clone_cross_validate_grid_search_set_output_and_pickle(strategy, data):
    X_train, X_test, y_train, _, groups = data
    model_groups = {"CT__tumor": groups["CT__tumor"]} if strategy == "single" else groups
    combiner = "logistic" if strategy == "stacking" else None  # the grid searches its C
    model = build_model(model_groups, strategy, "lr", learners=("lr",), cv=3, combiner=combiner)

    check_clone_cv_and_grid_search(model, X_train, y_train, _grid(strategy), cv=3)

    plain = clone(model).fit(X_train, y_train).predict_proba(X_test)
    framed = clone(model).set_output(transform="pandas").fit(X_train, y_train)
    np.testing.assert_allclose(framed.predict_proba(X_test), plain)
    if isinstance(framed, Pipeline):
        out = framed[:-1].transform(X_test)
        assert isinstance(out, pd.DataFrame) and list(out.columns) == model_groups_columns(
            model_groups
        )
    else:
        out = framed.transform(X_test)
        assert isinstance(out, pd.DataFrame) and len(out.columns) > 0

    restored = pickle.loads(pickle.dumps(framed))
    np.testing.assert_array_equal(restored.predict_proba(X_test), framed.predict_proba(X_test))


def model_groups_columns(groups):
    return [c for columns in groups.values() for c in columns]


def test_branch_selects_by_name_so_column_order_and_extra_columns_do_not_matter(data):
    X_train, X_test, y_train, _, groups = data
    branch = make_branch(groups["PET__tumor"]).fit(X_train, y_train)
    shuffled = X_test[list(reversed(X_test.columns))].assign(extra=1.0)
    np.testing.assert_allclose(branch.predict_proba(shuffled), branch.predict_proba(X_test))
    assert list(branch[:-1].get_feature_names_out()) == groups["PET__tumor"]


@pytest.mark.parametrize("learner", LEARNERS)
def test_same_random_state_gives_identical_probabilities(learner, data):
    X_train, X_test, y_train, _, groups = data
    probas = [
        _fast(build_model(groups, "late", learner, random_state=7))
        .fit(X_train, y_train)
        .predict_proba(X_test)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*probas)


def test_stacking_is_deterministic_and_seeded(data):
    X_train, X_test, y_train, _, groups = data

    def fit(seed):
        model = build_model(
            groups, "stacking", combiner="logistic", learners=("lr", "svm"), random_state=seed
        )
        return model.fit(X_train, y_train).predict_proba(X_test)

    np.testing.assert_array_equal(fit(1), fit(1))
    assert not np.array_equal(fit(1), fit(2))  # inner folds and Platt folds follow the seed


# --------------------------------------------------------------------------- missing values


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_missing_values_and_a_missing_modality_are_imputed(strategy):
    X, y, groups = make_data(200, seed=5)
    rng = np.random.default_rng(0)
    X = X.mask(rng.random(X.shape) < 0.2)  # 20 % missing everywhere
    X.loc[:, groups["MR__ring"][0]] = np.nan  # a feature never measured
    X.loc[X.index[:100], groups["PET__tumor"]] = np.nan  # PET missing for half the cohort
    X_train, X_test, y_train, y_test = X.iloc[:100], X.iloc[100:], y[:100], y[100:]
    # in training, PET is entirely missing: that branch sees only constants
    model_groups = {"PET__tumor": groups["PET__tumor"]} if strategy == "single" else groups
    model = build_model(model_groups, strategy, learners=("lr", "xgb"), cv=3)
    proba = model.fit(X_train, y_train).predict_proba(X_test)[:, 1]
    assert np.all(np.isfinite(proba))
    if strategy == "single":  # nothing to learn from: the base rate for everyone
        assert np.ptp(proba) < 1e-9
    else:
        assert roc_auc_score(y_test, proba) > 0.6


def test_drop_constant_features_keeps_everything_when_all_are_constant():
    X = np.array([[1.0, 2.0, 3.0], [1.0, 5.0, 3.0], [1.0, 7.0, 3.0]])
    assert DropConstantFeatures().fit(X).get_support().tolist() == [False, True, False]
    assert DropConstantFeatures().fit(X[:, [0, 2]]).get_support().tolist() == [True, True]
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    selector = DropConstantFeatures().set_output(transform="pandas").fit(frame)
    assert list(selector.transform(frame).columns) == ["b"]


# --------------------------------------------------------------------------- the meta-learner


def _noise(n, seed, groups=GROUPS, p=20):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(n, p * len(groups))),
        columns=[f"{g}__f{j}" for g in groups for j in range(p)],
    )
    y = rng.permutation(np.arange(n) % 3 == 0).astype(int)  # 1/3 positive, no signal
    return X, y, {g: [c for c in X if c.startswith(g + "__")] for g in groups}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_anti_correlation_trap_unconstrained_meta_flips_noise_ours_predicts_base_rate(seed):
    """Pure noise and random labels: out-of-fold predictions are *anti*-correlated with y.

    Each held-out sample is missing from the model that scores it, so the training labels that
    model saw lean the other way (here: 10 stratified folds that cannot all hold exactly 1/3
    positives, and a strongly regularised, unweighted learner that is mostly its intercept). A
    free meta-learner learns negative weights and turns this artefact into an apparently useful
    model; the non-negative one ignores every branch and predicts the base rate.
    """
    X, y, groups = _noise(45, seed)
    cv = StratifiedKFold(10, shuffle=True, random_state=seed)
    oof = np.column_stack(
        [
            cross_val_predict(
                make_branch(columns, LogisticRegression(C=1e-3)),
                X,
                y,
                cv=cv,
                method="predict_proba",
            )[:, 1]
            for columns in groups.values()
        ]
    )
    base_aucs = [roc_auc_score(y, column) for column in oof.T]
    assert max(base_aucs) < 0.5, base_aucs  # every base model is anti-correlated with y

    free = LogisticRegression(C=1e4).fit(logit(oof), y)
    assert free.coef_.min() < 0
    assert roc_auc_score(y, free.predict_proba(logit(oof))[:, 1]) > 0.55  # spurious "signal"

    ours = NonNegativeLogisticRegression().fit(oof, y)
    np.testing.assert_array_equal(ours.coef_, 0.0)
    np.testing.assert_allclose(ours.predict_proba(oof)[:, 1], y.mean(), rtol=1e-5)


def test_weights_are_exactly_zero_whenever_no_branch_correlates_positively():
    # KKT at w = 0: the gradient is -n cov(y, logit p_j) >= 0 for every branch, so w = 0 is optimal
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(200):
        y = rng.integers(0, 2, 30)
        P = rng.uniform(0.05, 0.95, size=(30, 3))
        covariances = [np.cov(y, logit(p))[0, 1] for p in P.T]
        coef = NonNegativeLogisticRegression().fit(P, y).coef_[0]
        assert np.all(coef >= 0)
        if max(covariances) <= 0:
            checked += 1
            np.testing.assert_array_equal(coef, 0.0)
    assert checked >= 10


def test_stacking_on_noise_has_held_out_auc_near_one_half():
    aucs = []
    for seed in range(8):
        X, y, groups = _noise(120, 100 + seed, groups=GROUPS[:2])
        train, test = np.arange(60), np.arange(60, 120)
        model = build_model(
            groups, "stacking", combiner="logistic", learners=("lr", "xgb"), random_state=seed
        )
        model.fit(X.iloc[train], y[train])
        assert np.all(model.final_estimator_.coef_ >= 0)
        aucs.append(_auc(model, X.iloc[test], y[test]))
    assert abs(np.mean(aucs) - 0.5) < 0.07, aucs


def test_meta_learner_rejects_non_probabilities_and_more_than_two_classes():
    P = np.random.default_rng(0).uniform(size=(30, 2))
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        NonNegativeLogisticRegression().fit(P * 3 - 1, np.arange(30) % 2)
    with pytest.raises(ValueError, match="Only binary classification"):
        NonNegativeLogisticRegression().fit(P, np.arange(30) % 3)
    with pytest.raises(ValueError, match="C must be a positive"):
        NonNegativeLogisticRegression(C=0).fit(P, np.arange(30) % 2)
    fitted = NonNegativeLogisticRegression().fit(P, np.where(np.arange(30) % 2, "yes", "no"))
    assert fitted.classes_.tolist() == ["no", "yes"]
    assert set(fitted.predict(P)) <= {"no", "yes"}


def test_meta_learner_feature_names_and_sample_weights():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    P = pd.DataFrame(
        {
            "a": np.clip(0.5 + 0.3 * (y - 0.5) + rng.normal(0, 0.2, 50), 0, 1),
            "b": rng.uniform(size=50),
        }
    )
    model = NonNegativeLogisticRegression().fit(P, y)
    assert model.feature_names_in_.tolist() == ["a", "b"]
    assert model.coef_.shape == (1, 2) and model.intercept_.shape == (1,)
    assert model.coef_[0, 0] > model.coef_[0, 1] >= 0
    twice = np.r_[P.to_numpy(), P.to_numpy()[:10]]
    weighted = NonNegativeLogisticRegression().fit(
        P.to_numpy(), y, np.r_[2 * np.ones(10), np.ones(40)]
    )
    duplicated = NonNegativeLogisticRegression().fit(twice, np.r_[y, y[:10]])
    np.testing.assert_allclose(weighted.coef_, duplicated.coef_, rtol=1e-5)


# The estimator checks of every estimator run in tests/test_common.py.


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
def test_default_meta_learner_fails_checks_only_for_inputs_that_are_not_probabilities():
    """With ``logit=True`` (the default) inputs must lie in [0, 1]; the generic checks feed
    unbounded data. Every check must pass or fail for that reason (or non-negativity)."""
    results = check_estimator(NonNegativeLogisticRegression(), on_fail=None)
    for result in results:
        if result["status"] != "failed" or result["check_name"] == "check_classifiers_train":
            continue
        error = result["exception"]
        messages = [str(e) for e in (error, error.__cause__, error.__context__) if e is not None]
        assert any("expects probabilities in [0, 1]" in m for m in messages), (
            result["check_name"],
            messages,
        )
    assert sum(r["status"] == "passed" for r in results) >= 25


# --------------------------------------------------------------------------- model sets, errors


#: The fused models ``build_models`` adds after the single groups, in order.
FUSED_MODELS = ["early", "late", "stacking", "pooled", "shared"]


def test_build_models_names_and_kinds():
    groups = {g: [f"{g}__f"] for g in ("CT__tumor", "PET__tumor", "clinical")}
    models = build_models(groups)
    assert list(models) == ["CT__tumor", "PET__tumor", "clinical", *FUSED_MODELS]
    assert isinstance(models["late"], VotingClassifier)
    assert [n for n, _ in models["late"].estimators] == [
        "CT/tumor:lr",
        "PET/tumor:lr",
        "clinical:lr",
    ]
    # The default combiner is platt: the mean of every group x learner, Platt-scaled on
    # inner out-of-fold probabilities; "mean" is a soft vote.
    assert isinstance(models["stacking"], StackingClassifier)
    assert models["stacking"].final_estimator.method == "platt"
    assert len(models["stacking"].estimators) == 3 * len(LEARNERS)
    assert isinstance(build_models(groups, combiner="mean")["stacking"], VotingClassifier)
    stacked = build_models(groups, combiner="logistic")["stacking"]
    assert isinstance(stacked, StackingClassifier)
    assert len(stacked.estimators) == 3 * len(LEARNERS)
    # The default (pooled): the default pair of learners on every group's columns at once.
    pooled = models["pooled"]
    assert isinstance(pooled, StackingClassifier)
    assert [n for n, _ in pooled.estimators] == [f"pooled:{name}" for name in POOLED_LEARNERS]
    assert pooled.final_estimator.method == "platt"
    assert pooled.groups == {"pooled": ["CT__tumor__f", "PET__tumor__f", "clinical__f"]}
    forest = pooled.estimators[1][1][-1]
    assert forest.max_features == 0.3 and forest.n_estimators == 100


def test_each_task_defaults_to_its_declared_strategy():
    # The default strategy is one fact (Task.default_strategy) that the estimators, build_model
    # and the report's headline share: pooled, stacking for survival (no pooled form).
    for task, estimator in ESTIMATORS.items():
        assert estimator().strategy == get_task(task).default_strategy
    assert get_task("binary").default_strategy == "pooled"
    assert get_task("survival").default_strategy == "stacking"
    groups = {"CT__tumor": ["CT__tumor__f"], "MR__tumor": ["MR__tumor__f"]}
    assert [n for n, _ in build_model(groups).estimators] == ["pooled:lr", "pooled:rf30"]


def test_build_models_with_one_group_fuses_learners():
    models = build_models({"GTV": ["GTV_original_shape_Volume"]}, learners=("lr", "rf"))
    assert list(models) == ["early", "late", "stacking", "pooled", "shared"]
    assert isinstance(models["early"], Pipeline)
    assert [n for n, _ in models["late"].estimators] == ["GTV:lr", "GTV:rf"]
    assert [n for n, _ in models["stacking"].estimators] == ["GTV:lr", "GTV:rf"]
    assert [n for n, _ in models["pooled"].estimators] == ["pooled:lr", "pooled:rf"]


def test_a_group_named_like_a_strategy_keeps_both_models():
    # C4KC-KiTS has a contrast phase called "late"
    groups = {"noncontrast": ["noncontrast_a"], "late": ["late_a"], "arterial": ["arterial_a"]}
    models = build_models(groups)
    assert list(models) == ["noncontrast", "single:late", "arterial", *FUSED_MODELS]
    assert isinstance(models["late"], VotingClassifier)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "middle"}, "'strategy' parameter of FusionClassifier must be a str among"),
        ({"strategy": "single"}, "exactly one group"),
        ({"strategy": "early", "learner": "knn"}, "knn"),
        ({"strategy": "stacking", "learners": ("lr", "lr")}, "distinct and not empty"),
        ({"strategy": "stacking", "learners": ()}, "distinct and not empty"),
        ({"strategy": "late", "groups": {"CT": []}}, "no columns"),
        ({"strategy": "late", "groups": {}}, "No feature groups"),
        ({"strategy": "late", "groups": {"a__b": ["x"], "a/b": ["y"]}}, "collide"),
    ],
)
def test_bad_model_requests_are_input_errors(kwargs, match):
    kwargs.setdefault("groups", {"CT": ["CT_a"], "PET": ["PET_a"]})
    with pytest.raises(InputError, match=match):
        build_model(**kwargs)


def test_make_learner_names_and_seeds():
    for name in LEARNERS:
        model = make_learner(name, random_state=3)
        assert hasattr(model, "predict_proba")
        params = model.get_params()
        seeds = [v for k, v in params.items() if k.endswith("random_state")]
        seeds += [model.cv.random_state] if hasattr(model, "cv") else []
        assert seeds and set(seeds) <= {3}, (name, seeds)
    with pytest.raises(ValueError, match="'lr', 'svm', 'rf', 'xgb'"):
        make_learner("knn")
