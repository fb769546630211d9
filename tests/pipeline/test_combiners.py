"""The combiners of late fusion and stacking: weights on the simplex, shrinkage toward equal
weights, the base rate under no signal, missing branches, today's models one value away, and
the permuted-label law."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from radfusion.features.errors import InputError
from radfusion.pipeline.fusion import (
    AvailableStackingClassifier,
    AvailableVotingClassifier,
    CombinerClassifier,
    FusionClassifier,
    NonNegativeLogisticRegression,
    build_model,
    check_fusion_params,
)
from radfusion.pipeline.fusion._combiners import (
    COMBINERS,
    CombinerRegressor,
    resolve_combiner,
)
from radfusion.pipeline.report._methods import (
    build_methods,
)
from radfusion.pipeline.validation import cross_validate_models, summarize
from tests.pipeline.conftest import multimodal_table

LEARNED = ("best", "convex", "shrunk")


def _meta(seed=0, n=200, signal=(2.0, 0.5, 0.0)):
    """Out-of-fold-like probabilities of three branches of decreasing signal, and labels."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    z = np.column_stack([s * (2 * y - 1) + rng.normal(size=n) for s in signal])
    return 1.0 / (1.0 + np.exp(-z)), y


@pytest.mark.parametrize("method", ("mean", *LEARNED))
def test_weights_are_on_the_simplex(method):
    X, y = _meta()
    model = CombinerClassifier(method).fit(X, y)
    assert model.weights_.shape == (3,)
    assert (model.weights_ >= 0).all() and model.base_weight_ >= 0
    assert model.weights_.sum() + model.base_weight_ == pytest.approx(1.0)
    proba = model.predict_proba(X)
    assert proba.shape == (len(y), 2) and np.allclose(proba.sum(axis=1), 1.0)
    regression = CombinerRegressor(method).fit(X, X[:, 0] + 0.1 * y)
    assert regression.weights_.sum() + regression.base_weight_ == pytest.approx(1.0)


def test_convex_weights_follow_the_signal_and_best_picks_the_strongest_branch():
    X, y = _meta()
    convex = CombinerClassifier("convex").fit(X, y)
    assert convex.weights_[0] > 0.6 and convex.weights_[2] < 0.1
    assert list(CombinerClassifier("best").fit(X, y).weights_) == [1.0, 0.0, 0.0]


def test_shrunk_weights_lie_between_convex_and_equal_weights():
    X, y = _meta(seed=1, n=80)
    convex = CombinerClassifier("convex").fit(X, y)
    shrunk = CombinerClassifier("shrunk").fit(X, y)
    amount = shrunk.shrinkage_
    assert 0.0 <= amount <= 1.0
    equal = np.full(3, 1.0 / 3)
    expected = (1 - amount) * np.append(convex.weights_, convex.base_weight_)
    expected += amount * np.append(equal, 0.0)
    assert np.allclose(np.append(shrunk.weights_, shrunk.base_weight_), expected, atol=1e-6)
    # Branches that are exact copies of each other carry no information on how to weight
    # them: every amount fits equally well and the tie goes to full shrinkage.
    copies = np.repeat(X[:, :1], 3, axis=1)
    assert CombinerClassifier("shrunk").fit(copies, y).shrinkage_ == 1.0


@pytest.mark.parametrize("method", ("convex", "shrunk", "best"))
def test_no_signal_falls_back_to_the_base_rate(method):
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    X = rng.uniform(0.05, 0.95, size=(300, 4))  # confident, unrelated to y
    model = CombinerClassifier(method).fit(X, y)
    proba = model.predict_proba(X)[:, 1]
    assert model.base_weight_ > 0.8
    assert np.abs(proba - y.mean()).max() < 0.1
    mean = CombinerClassifier("mean").fit(X, y).predict_proba(X)[:, 1]
    assert proba.std() < 0.5 * mean.std()


def test_absent_branches_are_left_out_and_the_weights_renormalised():
    X, y = _meta()
    model = CombinerClassifier("convex").fit(X, y)
    w, b = model.weights_, model.base_weight_
    row = np.array([[0.9, np.nan, 0.2]])
    expected = (w[0] * 0.9 + w[2] * 0.2 + b * model.class_prior_[1]) / (w[0] + w[2] + b)
    assert model.predict_proba(row)[0, 1] == pytest.approx(expected)
    nothing = np.full((1, 3), np.nan)
    assert model.predict_proba(nothing)[0] == pytest.approx(model.class_prior_)
    best = CombinerClassifier("best").fit(X, y)  # the next-ranked branch the row has
    assert best.predict_proba(np.array([[np.nan, 0.7, 0.1]]))[0, 1] == pytest.approx(0.7)


def test_indicator_columns_are_ignored_and_bad_inputs_refused():
    X, y = _meta()
    indicators = np.random.default_rng(0).integers(0, 2, (len(y), 2)).astype(float)
    with_free = CombinerClassifier("convex", n_free=2).fit(np.hstack([X, indicators]), y)
    plain = CombinerClassifier("convex").fit(X, y)
    assert np.allclose(with_free.weights_, plain.weights_)
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        CombinerClassifier().fit(X * 3, y)
    with pytest.raises(ValueError, match="method must be one of"):
        CombinerClassifier("median").fit(X, y)


def test_multiclass_inputs_are_one_block_of_probabilities_per_branch():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    good = np.eye(3)[y] * 0.6 + 0.4 / 3
    noise = rng.dirichlet(np.ones(3), size=150)
    model = CombinerClassifier("convex").fit(np.hstack([good, noise]), y)
    assert model.weights_[0] > 0.8
    proba = model.predict_proba(np.hstack([good, noise]))
    assert proba.shape == (150, 3) and np.allclose(proba.sum(axis=1), 1.0)


def test_the_default_models_are_todays_and_mean_stacking_is_a_vote():
    _, _, groups = multimodal_table(n=30)
    assert resolve_combiner(None, "late") == "mean"
    late = build_model(groups, "late")
    assert isinstance(late, AvailableVotingClassifier)
    stacking = build_model(groups, "stacking", combiner="logistic")
    assert isinstance(stacking.final_estimator, NonNegativeLogisticRegression)
    vote = build_model(groups, "stacking", learners=("lr", "rf"), combiner="mean")
    assert isinstance(vote, AvailableVotingClassifier) and len(vote.estimators) == 6
    learned = build_model(groups, "stacking", combiner="shrunk", cv=4, random_state=3)
    assert isinstance(learned, AvailableStackingClassifier)
    assert learned.final_estimator.get_params()["cv"] == 4
    # Late fusion is the mean of one branch per group, whatever the combiner.
    assert isinstance(build_model(groups, "late", combiner="convex"), AvailableVotingClassifier)
    with pytest.raises(InputError, match="The .combiner. parameter of FusionClassifier"):
        build_model(groups, "stacking", combiner="median")
    with pytest.raises(InputError, match="Got 'median' instead"):
        check_fusion_params({"combiner": "median"})


@pytest.mark.parametrize("task", ("binary", "multiclass", "regression"))
@pytest.mark.parametrize("combiner", COMBINERS)
def test_every_combiner_fits_every_task_with_a_missing_modality(task, combiner):
    X, y, groups = multimodal_table(n=90, seed=2, missing_mr=0.3, p=4, k=2)
    if task == "multiclass":
        score = X["CT__tumor__f0"] + X["PET__tumor__f0"]
        y = np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    elif task == "regression":
        y = (X["CT__tumor__f0"] + X["PET__tumor__f0"]).to_numpy()
    if task == "regression" and combiner == "platt":
        with pytest.raises(InputError, match="calibrates class probabilities"):
            build_model(groups, "stacking", learners=("lr",), cv=3, task=task, combiner=combiner)
        return
    model = build_model(groups, "stacking", learners=("lr",), cv=3, task=task, combiner=combiner)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X.iloc[:70], y[:70])
    out = model.predict(X.iloc[70:]) if task == "regression" else model.predict_proba(X.iloc[70:])
    assert np.isfinite(out).all() and len(out) == 20
    if task != "regression":
        assert np.allclose(out.sum(axis=1), 1.0)


def test_clone_and_get_params_round_trip():
    estimator = FusionClassifier("stacking", combiner="shrunk")
    assert clone(estimator).get_params() == estimator.get_params()
    assert estimator.get_params()["combiner"] == "shrunk"
    combiner = CombinerClassifier("best", n_free=2, cv=3, random_state=5)
    assert clone(combiner).get_params() == combiner.get_params()


@pytest.mark.slow  # about 5 s per combiner on an idle 2-core machine, 15-20 s on a busy one
@pytest.mark.parametrize("combiner", (*LEARNED, "platt"))
def test_permuted_labels_give_chance_auc(combiner):
    """The null law for each fitted combiner (mean is late fusion's, covered elsewhere),
    with 30 % of the patients lacking MR: mean out-of-fold AUC over four draws."""
    aucs = []
    for seed in range(4):
        X, y, groups = multimodal_table(n=60, seed=seed, missing_mr=0.3, p=6, k=2)
        y = np.random.default_rng(seed).permutation(y)
        model = build_model(
            groups, "stacking", learners=("lr",), cv=3, random_state=seed, combiner=combiner
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictions = cross_validate_models(
                {"stacking": model}, X, y, folds=3, repeats=1, seed=seed, n_jobs=1
            ).predictions
        aucs.append(summarize(predictions, n_bootstrap=2, seed=seed)["stacking"]["roc_auc"]["mean"])
    assert abs(np.mean(aucs) - 0.5) < 0.1, np.round(aucs, 3)


def test_a_learned_combiner_keeps_the_signal():
    X, y, groups = multimodal_table(n=150, seed=0, missing_mr=0.3, p=6, k=2)
    model = build_model(groups, "stacking", learners=("lr",), cv=3, combiner="convex")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X.iloc[:100], y[:100])
    assert roc_auc_score(y[100:], model.predict_proba(X.iloc[100:])[:, 1]) > 0.7


@pytest.mark.parametrize(
    ("combiner", "phrase"),
    [
        (None, "recalibrated by a logistic (Platt) map"),
        ("logistic", "logistic meta-learner"),
        ("convex", "super learner"),
        ("shrunk", "shrunk toward equal weights"),
        ("best", "discrete super learner"),
        ("platt", "recalibrated by a logistic (Platt) map"),
        ("mean", "equal weights, nothing fitted"),
    ],
)
def test_the_methods_text_names_the_combiner_that_ran(combiner, phrase):
    report = {
        "task": "binary",
        "config": {
            "folds": 5,
            "repeats": 1,
            "models": {"stacking": {"learner": "lr", "learners": ["lr"], "combiner": combiner}},
        },
        "seed": 0,
        "data": {"n_patients": 40, "n_positive": 20, "n_negative": 20, "groups": {"CT": 2}},
        "versions": {},
        "ci_method": "",
        "models": {"CT": {}, "late": {}, "stacking": {}},
        "fused": ["late", "stacking"],
    }
    text = " ".join(build_methods(report)["text"])
    assert phrase in text
    assert "soft voting" in text  # late fusion


def test_the_evidence_pool_adds_each_groups_log_odds_over_the_prior():
    """``pool="evidence"`` (kept to reproduce ``benchmarks/evidence_pool.py``'s rejected
    candidate): the groups' mean probabilities combined as independent evidence; an absent
    group adds nothing, and with one group it is the mean."""
    X, y, groups = multimodal_table(n=80, seed=3, missing_mr=0.3, p=4, k=2)
    groups = {g: cols for g, cols in groups.items() if g != "clinical"}
    model = build_model(groups, "stacking", learners=("lr", "svm"), combiner="mean")
    model.set_params(pool="evidence").fit(X, y)
    branches = np.stack([est.predict_proba(X)[:, 1] for est in model.estimators_])
    present = model._branch_presence(X)
    prior = model.class_prior_[1]
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    z = np.full(len(X), logit(prior))
    for g in np.unique(model.branch_groups_):
        members = model.branch_groups_ == g
        has = present[:, members].all(axis=1)
        z[has] += logit(branches[members][:, has].mean(axis=0)) - logit(prior)
    np.testing.assert_allclose(model.predict_proba(X)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-9)
    one = {"all": [c for cols in groups.values() for c in cols]}
    mean = build_model(one, "stacking", learners=("lr", "svm"), combiner="mean").fit(X, y)
    evidence = clone(mean).set_params(pool="evidence").fit(X, y)
    np.testing.assert_allclose(evidence.predict_proba(X), mean.predict_proba(X), atol=1e-9)
