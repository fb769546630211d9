"""The ``"platt"`` combiner (issue 15 item 4): the mean of the branches, Platt-scaled on their
inner out-of-fold probabilities. Its slope is at least 1 by default (it only stretches the
mean); with ``min_slope=0`` no signal means the base rate."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from radfusion.features.errors import InputError
from radfusion.pipeline.fusion import (
    AvailableStackingClassifier,
    CombinerClassifier,
    FusionClassifier,
    build_model,
)
from radfusion.pipeline.fusion._combiners import (
    CombinerRegressor,
)
from tests.pipeline.conftest import multimodal_table


def _slope(y, proba) -> float:
    """Calibration slope: the logistic regression of y on logit(p), unpenalised."""
    z = logit(np.clip(proba, 1e-6, 1 - 1e-6))[:, None]
    return float(LogisticRegression(C=np.inf).fit(z, y).coef_[0, 0])


def _under_confident(seed, n, branches=6):
    """Labels drawn from expit(z), and branches that each see a damped, noisy z: their mean
    is under-confident (calibration slope well above 1)."""
    rng = np.random.default_rng(seed)
    z = 1.5 * rng.normal(size=n)
    y = (rng.random(n) < expit(z)).astype(int)
    X = expit(0.3 * z[:, None] + 0.3 * rng.normal(size=(n, branches)))
    return X, y


def test_binary_platt_is_logistic_regression_on_the_logit_of_the_mean():
    X, y = _under_confident(0, 400)
    model = CombinerClassifier("platt").fit(X, y)
    reference = LogisticRegression(C=np.inf).fit(logit(X.mean(axis=1))[:, None], y)
    assert model.slope_ == pytest.approx(reference.coef_[0, 0], rel=1e-3)
    assert model.intercept_[1] == pytest.approx(reference.intercept_[0], abs=1e-3)
    expected = reference.predict_proba(logit(X.mean(axis=1))[:, None])[:, 1]
    assert np.abs(model.predict_proba(X)[:, 1] - expected).max() < 1e-3
    # equal weights over the branches, nothing on the base rate: the mean, then the map
    assert np.allclose(model.weights_, 1 / 6) and model.base_weight_ == 0


def test_planted_signal_gives_a_held_out_slope_near_one():
    X, y = _under_confident(1, 4000)
    train, test = slice(0, 2000), slice(2000, None)
    mean = CombinerClassifier("mean").fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    platt = CombinerClassifier("platt").fit(X[train], y[train]).predict_proba(X[test])[:, 1]
    assert _slope(y[test], mean) > 2.0
    assert 0.8 < _slope(y[test], platt) < 1.25  # the goal interval
    # a monotone map: the ranking, hence the AUC, is the mean's
    assert roc_auc_score(y[test], platt) == pytest.approx(roc_auc_score(y[test], mean))


def test_with_min_slope_0_no_signal_falls_back_to_the_base_rate():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    X = rng.uniform(0.05, 0.95, size=(300, 4))  # confident branches, unrelated to y
    model = CombinerClassifier("platt", min_slope=0.0).fit(X, y)
    proba = model.predict_proba(X)[:, 1]
    assert model.slope_ < 0.15
    assert np.abs(proba - y.mean()).max() < 0.05
    # Anti-correlated inputs (the out-of-fold artefact under no signal) hit the bound: the
    # slope is 0, never negative, and every patient gets the training base rate.
    flipped = np.where(y[:, None] == 1, 0.4, 0.6) + 0.05 * rng.normal(size=(300, 4))
    bounded = CombinerClassifier("platt", min_slope=0.0).fit(flipped, y)
    assert bounded.slope_ == 0.0
    assert np.allclose(bounded.predict_proba(flipped)[:, 1], y.mean(), atol=1e-4)


def test_by_default_no_signal_leaves_the_mean_recentred():
    """The default map only stretches: on unrelated or anti-correlated inputs its slope is
    1, so the predictions are the mean shifted on the logit scale (same order, same spread
    of logits), never the flipped artefact and never one base rate per fold."""
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.3).astype(int)
    flipped = np.where(y[:, None] == 1, 0.4, 0.6) + 0.05 * rng.normal(size=(300, 4))
    model = CombinerClassifier("platt").fit(flipped, y)
    assert model.slope_ == 1.0
    shift = logit(model.predict_proba(flipped)[:, 1]) - logit(flipped.mean(axis=1))
    assert np.allclose(shift, model.intercept_[1])
    with pytest.raises(ValueError, match="min_slope must be a finite number >= 0"):
        CombinerClassifier("platt", min_slope=-1.0).fit(flipped, y)


def test_absent_branches_are_left_out_of_the_mean_before_the_map():
    X, y = _under_confident(2, 300, branches=3)
    model = CombinerClassifier("platt").fit(X, y)
    a, b = model.intercept_[1], model.slope_
    row = np.array([[0.8, np.nan, 0.6]])
    assert model.predict_proba(row)[0, 1] == pytest.approx(expit(a + b * logit(0.7)))
    assert model.predict_proba(np.full((1, 3), np.nan))[0] == pytest.approx(model.class_prior_)


def test_multiclass_is_temperature_scaling_with_class_offsets():
    rng = np.random.default_rng(0)
    logits = 2.0 * rng.normal(size=(3000, 3))
    truth = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = (rng.random(3000)[:, None] > truth.cumsum(axis=1)).sum(axis=1)
    soft = np.exp(logits / 3)  # a branch three times too soft
    soft /= soft.sum(axis=1, keepdims=True)
    model = CombinerClassifier("platt").fit(np.hstack([soft, soft]), y)
    assert model.slope_ == pytest.approx(3.0, rel=0.1)
    assert model.intercept_.shape == (3,) and model.intercept_[0] == 0
    proba = model.predict_proba(np.hstack([soft, soft]))
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert np.abs(proba - truth).mean() < 0.5 * np.abs(soft - truth).mean()


def test_regression_is_refused_by_name():
    _, _, groups = multimodal_table(n=30)
    with pytest.raises(InputError, match="'platt' combiner calibrates class probabilities"):
        build_model(groups, "stacking", task="regression", combiner="platt")
    with pytest.raises(ValueError, match="'platt' calibrates class probabilities"):
        CombinerRegressor("platt").fit(np.ones((10, 2)), np.arange(10.0))


def test_the_map_is_fitted_on_inner_out_of_fold_probabilities_only():
    """Random forests memorise pure noise: on their own training rows they separate the
    classes, out of fold they do not. Free to shrink (``min_slope=0``), the stack's Platt
    slope falls back to ~0, so it was fitted on out-of-fold probabilities; fitted on the
    in-sample ones it would be steep."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(90, 10)), columns=[f"CT__tumor__f{j}" for j in range(5)]
                     + [f"MR__tumor__f{j}" for j in range(5)])  # fmt: skip
    y = rng.permutation(np.repeat([0, 1], 45))
    groups = {g: [c for c in X if c.startswith(g)] for g in ("CT__tumor", "MR__tumor")}
    model = build_model(groups, "stacking", learners=("rf",), cv=3, combiner="platt")
    assert isinstance(model, AvailableStackingClassifier)
    model.set_params(final_estimator__min_slope=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, y)
    assert model.final_estimator_.slope_ < 0.3
    in_sample = model.transform(X)  # the refitted branches on their own training rows
    assert CombinerClassifier("platt", min_slope=0.0).fit(in_sample, y).slope_ > 2.0
    spread = model.predict_proba(X)[:, 1]
    assert np.ptp(spread) < 0.25 * np.ptp(in_sample[:, :2].mean(axis=1))


def test_the_estimator_takes_it_and_keeps_the_signal():
    X, y, groups = multimodal_table(n=200, seed=0, missing_mr=0.3, p=6, k=2)
    model = FusionClassifier("stacking", learners=("lr",), cv=3, combiner="platt")
    vote = FusionClassifier("stacking", learners=("lr",), cv=3, combiner="mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X.iloc[:140], y[:140])
        vote.fit(X.iloc[:140], y[:140])
    proba = model.predict_proba(X.iloc[140:])[:, 1]
    auc = roc_auc_score(y[140:], proba)
    assert auc > 0.7 and model.model_.final_estimator_.slope_ > 0.5
    # the same branches, refitted on all training rows, and a monotone map of their mean
    assert auc == pytest.approx(roc_auc_score(y[140:], vote.predict_proba(X.iloc[140:])[:, 1]))
