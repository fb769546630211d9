"""Shared fits: within one CV split a branch is fitted once and reused by every model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from radfusion.pipeline.fusion import build_estimators
from radfusion.pipeline.shared_fits import fit_once, shared_fits
from radfusion.pipeline.validation import cross_validate_models

from .conftest import multimodal_table


def _models(X):
    return build_estimators(
        ["CT__tumor", "MR__tumor", "PET__tumor"],
        columns=list(X.columns),
        learners=("lr", "svm"),
        random_state=0,
    )


def test_single_late_stacking_and_pooled_share_one_fitted_branch_per_group():
    X, y, _ = multimodal_table(n=90, p=4, missing_mr=0.0)
    models = _models(X)
    with shared_fits() as store:
        fitted = {name: clone(model).fit(X, y) for name, model in models.items()}
    ct = fitted["CT__tumor"].model_
    late = fitted["late"].model_.named_estimators_
    stacking = fitted["stacking"].model_.named_estimators_
    assert late["CT/tumor:lr"] is ct and stacking["CT/tumor:lr"] is ct
    assert stacking["MR/tumor:lr"] is fitted["MR__tumor"].model_
    assert stacking["CT/tumor:svm"] is not ct
    # pooled's lr branch sees every column: it is early fusion's model
    assert fitted["pooled"].model_.named_estimators_["pooled:lr"] is fitted["early"].model_
    # late reuses 3 single-group branches, stacking the same 3 lr branches again, pooled early's
    assert store.hits == 7


def test_shared_cv_gives_the_predictions_of_independent_fits():
    X, y, _ = multimodal_table(n=90, p=4, missing_mr=0.3)
    models = _models(X)
    together = cross_validate_models(models, X, y, folds=3, repeats=1, seed=1).predictions
    apart = pd.concat(
        [
            cross_validate_models({name: model}, X, y, folds=3, repeats=1, seed=1).predictions
            for name, model in models.items()
        ],
        ignore_index=True,
    )
    assert_frame_equal(together, apart, check_exact=True)


def test_fit_once_refits_on_other_rows_other_targets_or_other_parameters():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(40, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int).to_numpy()
    model = LogisticRegression()
    with shared_fits() as store:
        first = fit_once(clone(model), X, y)
        assert fit_once(clone(model), X.copy(), y) is first  # same content, another object
        assert fit_once(clone(model), X, y, rows=np.arange(30)) is not first
        assert fit_once(clone(model), X, 1 - y) is not first
        assert fit_once(LogisticRegression(C=0.5), X, y) is not first
        assert (store.hits, store.misses) == (1, 4)
    # Outside a context nothing is kept.
    assert fit_once(clone(model), X, y) is not first


def test_survival_models_share_their_branch_fits():
    pytest.importorskip("sksurv", reason="scikit-survival (extra radfusion[survival]) absent")
    from sksurv.util import Surv

    from radfusion.pipeline.fusion import build_estimators

    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        rng.normal(size=(60, 6)),
        columns=[f"{m}__tumor__f{j}" for m in ("CT", "MR") for j in (0, 1, 2)],
    )
    time = rng.exponential(np.exp(-X["CT__tumor__f0"].to_numpy()))
    y = Surv.from_arrays(rng.random(60) < 0.7, time)
    models = build_estimators(["CT__tumor", "MR__tumor"], task="survival", random_state=0)
    with shared_fits() as store:
        fitted = {name: clone(model).fit(X, y) for name, model in models.items()}
    ct = fitted["CT__tumor"].model_
    assert any(branch is ct for branch in fitted["late"].model_.branches_.values())
    assert store.hits >= 2  # late and stacking reuse each single-group branch
