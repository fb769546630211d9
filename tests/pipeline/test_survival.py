"""Survival endpoints: the learners, FusionSurvival and the survival metrics.

They need the optional scikit-survival (``radfusion[survival]``) and skip without it; the
target's own tests (tests/pipeline/test_survival_target.py) do not.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import cross_val_score

from radfusion.features.errors import InputError
from radfusion.features.synthetic import synthetic_outcomes
from radfusion.pipeline.preprocessing import SelectTopK
from radfusion.pipeline.statistics import ConfoundedSiteWarning
from radfusion.pipeline.survival import (
    EventStratifiedKFold,
    check_survival_y,
    survival_target,
)

from .conftest import MULTIMODAL_GROUPS

sksurv = pytest.importorskip("sksurv", reason="survival models need scikit-survival")

from sksurv.compare import compare_survival  # noqa: E402
from sksurv.datasets import load_whas500  # noqa: E402
from sksurv.linear_model import CoxPHSurvivalAnalysis  # noqa: E402
from sksurv.metrics import (  # noqa: E402
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)

from radfusion.pipeline.fusion import FusionSurvival, NonNegativeCox  # noqa: E402
from radfusion.pipeline.learners import SURVIVAL_LEARNERS, make_survival_learner  # noqa: E402
from radfusion.pipeline.survival_metrics import (  # noqa: E402
    bootstrap_indices,
    c_index_difference,
    default_horizons,
    ibs_times,
    survival_metrics,
    survival_metrics_ci,
)


def survival_table(n=200, seed=0, p=6, k=3, missing_mr=0.3, signal=0.7):
    """Three imaging groups, each with an independent share of the log hazard in its first k
    columns; Weibull-free exponential times, exponential censoring (~35 %); a fraction of
    the patients lacks every MR column."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, len(MULTIMODAL_GROUPS)))
    X = pd.DataFrame(
        {
            f"{group}__f{j}": rng.normal(size=n) + (latent[:, g] if j < k else 0.0) + 3.0 * j
            for g, group in enumerate(MULTIMODAL_GROUPS)
            for j in range(p)
        },
        index=[f"P{i:03d}" for i in range(n)],
    )
    event_time = rng.exponential(1.0 / np.exp(signal * latent.sum(axis=1)))
    censor = rng.exponential(2.0, size=n)
    y = survival_target(np.minimum(event_time, censor), event_time <= censor, X.index)
    lacking = rng.permutation(n)[: round(missing_mr * n)]
    X.loc[X.index[lacking], [c for c in X if c.startswith("MR__")]] = np.nan
    return X, y


def c_index(y, risk):
    return concordance_index_censored(y["event"], y["time"], risk)[0]


@pytest.mark.parametrize("name", SURVIVAL_LEARNERS)
def test_survival_learners_fit_and_rank(name):
    X, y = survival_table(n=150, missing_mr=0.0)
    X_test, y_test = survival_table(n=150, seed=1, missing_mr=0.0)
    model = make_survival_learner(name, random_state=0).fit(X.to_numpy(), y)
    assert c_index(y_test, model.predict(X_test.to_numpy())) > 0.6
    surv = model.predict_survival_function(X_test.to_numpy()[:3])
    assert len(surv) == 3


def test_unknown_survival_learner():
    with pytest.raises(InputError, match="'cox'"):
        make_survival_learner("cox")


def test_cox_score_selection_is_the_log_rank_test_of_a_binary_feature():
    rng = np.random.default_rng(0)
    group = rng.random(80) < 0.5
    times = rng.exponential(np.where(group, 0.5, 1.0))  # continuous: no ties
    y = survival_target(times, rng.random(80) < 0.8)
    X = np.column_stack([rng.normal(size=80), group.astype(float)])
    selector = SelectTopK(k=1).fit(X, y)
    chi2, _ = compare_survival(y, group)
    assert selector.scores_[1] == pytest.approx(chi2, rel=1e-9)
    assert selector.selected_.tolist() == [1]


def test_non_negative_cox_is_sksurvs_cox_when_the_bounds_are_inactive():
    X, y = load_whas500()
    Z = X[["age", "bmi", "hr"]].astype(float).to_numpy()
    Z = (Z - Z.mean(axis=0)) / Z.std(axis=0)
    Z[:, 1] *= -1  # bmi is protective: flip it so every weight is positive
    reference = CoxPHSurvivalAnalysis(alpha=2.0).fit(Z, y)
    ours = NonNegativeCox(alpha=2.0).fit(Z, y[y.dtype.names[0]], y[y.dtype.names[1]])
    assert (reference.coef_ > 0).all()
    np.testing.assert_allclose(ours.coef_, reference.coef_, rtol=1e-4, atol=1e-6)
    flipped = NonNegativeCox(alpha=2.0).fit(-Z, y[y.dtype.names[0]], y[y.dtype.names[1]])
    np.testing.assert_allclose(flipped.coef_, 0.0, atol=1e-8)  # can only ignore, never flip


# ----------------------------------------------------------------------------- FusionSurvival

STRATEGIES = {
    "early": {},
    "late": {},
    "stacking": {"learners": ("coxnet",), "cv": 3},
}


@pytest.fixture(scope="module")
def tables():
    return survival_table(), survival_table(seed=1)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fusion_survival_ranks_held_out_patients(tables, strategy):
    (X, y), (X_test, y_test) = tables
    model = FusionSurvival(strategy, **STRATEGIES[strategy]).fit(X, y)
    risk = model.predict(X_test)
    assert c_index(y_test, risk) > 0.62
    times = np.quantile(y["time"], [0.1, 0.5, 0.9])
    surv = model.predict_survival(X_test, times)
    assert surv.shape == (len(X_test), 3)
    assert ((surv >= 0) & (surv <= 1)).all() and (np.diff(surv, axis=1) <= 1e-12).all()
    # the higher the risk, the lower the survival at the median time
    assert np.corrcoef(risk, surv[:, 1])[0, 1] < -0.5
    with pytest.raises(ValueError):
        model.predict_survival(X_test, [y["time"].max() * 2])


def test_fusion_survival_under_shuffled_outcomes_is_chance():
    """The permuted-outcome law: with (time, event) pairs shuffled over patients, the held-out
    C-index of every strategy is 0.5 on average over draws (here: per-fold C of 3-fold CV)."""
    X, y = survival_table(n=150)
    rng = np.random.default_rng(0)
    scores = {strategy: [] for strategy in STRATEGIES}
    for draw in range(3):
        shuffled = y[rng.permutation(len(y))]  # (time, event) pairs stay together
        folds = EventStratifiedKFold(3, random_state=draw).split(X, shuffled)
        for train, test in folds:
            for strategy, params in STRATEGIES.items():
                model = FusionSurvival(strategy, **params).fit(X.iloc[train], shuffled[train])
                scores[strategy].append(c_index(shuffled[test], model.predict(X.iloc[test])))
    for strategy, values in scores.items():
        assert abs(np.mean(values) - 0.5) < 0.05, (strategy, values)


def test_missing_modalities_use_the_groups_a_patient_has(tables):
    (X, y), (X_test, _) = tables
    late = FusionSurvival("late").fit(X, y)
    stack = FusionSurvival("stacking", learners=("coxnet",), cv=3).fit(X, y)
    assert stack.model_.indicator_groups_ == ["MR__tumor"]
    assert (stack.model_.combiner_.coef_[:3] >= 0).all()
    lacking = X_test["MR__tumor__f0"].isna().to_numpy()
    has_mr = X_test[~lacking]
    # without MR a late-fusion risk is the mean of the two other branches' standardised risks
    no_mr = X_test[lacking].head(5)
    scale = late.model_.risk_scale_
    expected = np.mean(
        [
            (late.model_.branches_[name].predict(no_mr) - scale[name][0]) / scale[name][1]
            for name in ("CT/tumor:coxnet", "PET/tumor:coxnet")
        ],
        axis=0,
    )
    np.testing.assert_allclose(late.predict(no_mr), expected)
    assert len(has_mr) and np.isfinite(stack.predict(X_test)).all()
    nobody = X_test.head(2).copy()
    nobody.loc[:, :] = np.nan
    np.testing.assert_allclose(late.predict(nobody), 0.0)


def test_branch_options_reach_every_survival_branch(tables):
    (X, y), (X_test, y_test) = tables
    X = X.assign(site=np.where(np.arange(len(X)) % 2, "A", "B"))
    X_test = X_test.assign(site="A")
    with warnings.catch_warnings():  # a balanced site: no confounding warning from ComBat
        warnings.simplefilter("error", ConfoundedSiteWarning)
        model = FusionSurvival(
            "late",
            harmonize="site",
            correlation_threshold=0.9,
            select_k=2,
            use_groups=["CT__tumor", "PET__tumor"],
        ).fit(X, y)
    assert all("site" not in cols for cols in model.groups_.values())
    for branch in model.model_.branches_.values():
        assert "combat" in branch[0].named_transformers_
        assert (
            branch.named_steps["selecttopk"].selected_.tolist()
            and "correlationfilter" in branch.named_steps
        )
    assert c_index(y_test, model.predict(X_test)) > 0.6


def test_fusion_survival_errors_name_patients_and_options(tables):
    (X, y), _ = tables
    bad = y.copy()
    bad["time"][[3, 7]] = -1.0
    with pytest.raises(InputError) as error:
        FusionSurvival("early").fit(X, bad)
    assert "patient P003" in str(error.value) and "patient P007" in str(error.value)
    with pytest.raises(InputError, match="'shared'"):
        FusionSurvival("shared").fit(X, y)
    with pytest.raises(InputError, match="'lr'"):
        FusionSurvival("early", learner="lr").fit(X, y)
    with pytest.raises(ValueError, match="structured array"):
        FusionSurvival("early").fit(X, y["event"].astype(int))


def test_fusion_survival_is_a_scikit_learn_estimator(tables):
    (X, y), _ = tables
    model = FusionSurvival("single", use_groups=["CT__tumor"], select_k=2)
    scores = cross_val_score(model, X, y, cv=EventStratifiedKFold(3, random_state=0))
    assert scores.mean() > 0.55
    fitted = clone(model).fit(X, y)
    assert fitted.groups_ == {"CT__tumor": [c for c in X if c.startswith("CT__")]}
    assert fitted.score(X, y) == pytest.approx(c_index(y, fitted.predict(X)))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_estimator_check_properties_with_a_survival_target(tables, strategy):
    """What scikit-learn's fitting checks assert (they cannot pass a survival y):
    fit returns self and leaves the parameters alone; fitting twice gives the same model;
    pickling, row order and row subsets do not change a prediction; n_features_in_."""
    (X, y), (X_test, _) = tables
    X, y, X_test = X.iloc[:120], y[:120], X_test.iloc[:40]
    model = FusionSurvival(strategy, **STRATEGIES[strategy])
    params = model.get_params()
    assert model.fit(X, y) is model
    assert model.get_params() == params and model.n_features_in_ == X.shape[1]
    risk = model.predict(X_test)
    np.testing.assert_allclose(clone(model).fit(X, y).predict(X_test), risk)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(model)).predict(X_test), risk)
    order = np.random.default_rng(0).permutation(len(X_test))
    np.testing.assert_allclose(model.predict(X_test.iloc[order]), risk[order])
    np.testing.assert_allclose(model.predict(X_test.iloc[:7]), risk[:7])
    with pytest.raises(ValueError, match="features"):
        model.predict(X_test.to_numpy()[:, :5])


# ----------------------------------------------------------------------------- metrics


@pytest.fixture(scope="module")
def whas():
    X, y = load_whas500()
    y = check_survival_y(y)  # field names event / time
    numeric = X[["age", "bmi", "hr", "sysbp", "diasbp", "los"]].astype(float)
    model = CoxPHSurvivalAnalysis(alpha=0.1).fit(numeric, y)
    grid = ibs_times(y)
    surv = np.vstack([fn(grid) for fn in model.predict_survival_function(numeric)])
    return y, model.predict(numeric), surv, grid, numeric


def test_metrics_equal_scikit_survivals(whas):
    y, risk, surv, grid, _ = whas
    horizons = default_horizons(y)
    np.testing.assert_allclose(horizons, np.quantile(y["time"][y["event"]], [0.25, 0.5, 0.75]))
    ours = survival_metrics(y, risk, surv, grid)
    assert ours["harrell_c"] == concordance_index_censored(y["event"], y["time"], risk)[0]
    assert ours["uno_c"] == concordance_index_ipcw(y, y, risk)[0]
    aucs, _ = cumulative_dynamic_auc(y, y, risk, horizons)
    np.testing.assert_allclose([ours[f"auc@{h:g}"] for h in horizons], aucs)
    assert ours["mean_auc"] == pytest.approx(np.mean(aucs))
    assert ours["ibs"] == integrated_brier_score(y, y, surv, grid)
    assert 0.7 < ours["harrell_c"] < 0.9 and 0.05 < ours["ibs"] < 0.25


def test_bootstrap_intervals_cover_the_estimate(whas):
    y, risk, surv, grid, _ = whas
    indices = bootstrap_indices(y, n_boot=60, seed=1)
    assert (y["event"][indices].sum(axis=1) == y["event"].sum()).all()  # stratified by event
    result = survival_metrics_ci(y, risk, surv, grid, indices=indices)
    for values in result.values():
        assert values["ci_low"] <= values["mean"] <= values["ci_high"]
        assert values["n_boot_used"] == 60
    assert result["harrell_c"]["ci_high"] - result["harrell_c"]["ci_low"] < 0.1


def test_paired_c_index_difference(whas):
    y, risk, _, _, numeric = whas
    same = c_index_difference(y, risk, risk, n_boot=30)
    assert same["delta"] == 0 and same["ci_low"] == 0 and same["ci_high"] == 0
    versus_noise = c_index_difference(
        y, risk, np.random.default_rng(0).normal(size=len(y)), n_boot=50, seed=2
    )
    assert versus_noise["ci_low"] > 0.15 and versus_noise["p_value"] <= 0.04
    age_only = c_index_difference(y, risk, numeric["age"].to_numpy(), n_boot=10)
    assert age_only["delta"] == pytest.approx(c_index(y, risk) - c_index(y, numeric["age"]))


def test_synthetic_survival_outcome_follows_its_hazard():
    outcomes = synthetic_outcomes(400, seed=0)
    y = survival_target(outcomes["time"], outcomes["event"], outcomes["patient_id"])
    assert 0.55 < y["event"].mean() < 0.75
    assert 0.7 < c_index(y, outcomes["risk"]) < 0.8  # the true risk ranks well, not perfectly
    assert (y["time"] <= 60).all()


def test_the_cv_engine_scores_every_patient_once_per_repeat(tables):
    from radfusion.pipeline.targets import SurvivalTask, survival_output_column
    from radfusion.pipeline.validation import cross_validate_models

    (X, y), _ = tables
    X, y = X.iloc[:120], y[:120]
    task = SurvivalTask.for_target(y, n_grid=5)
    grid = task.grid
    models = {"early": FusionSurvival("early"), "late": FusionSurvival("late")}
    predictions = cross_validate_models(
        models, X, y, folds=3, repeats=2, seed=0, task=task
    ).predictions
    assert len(predictions) == 2 * 2 * len(X)
    for (_, _), rows in predictions.groupby(["model", "repeat"]):
        assert sorted(rows["patient_id"]) == sorted(X.index)
    early = predictions[(predictions["model"] == "early") & (predictions["repeat"] == 0)]
    early = early.set_index("patient_id").loc[X.index]
    surv = early[[survival_output_column(t) for t in grid]].to_numpy()
    assert np.isfinite(surv).all() and (np.diff(surv, axis=1) <= 1e-12).all()
    # the pooled out-of-fold predictions feed the metrics directly
    metrics = survival_metrics(y, early["risk"].to_numpy(), surv, grid)
    assert metrics["harrell_c"] > 0.6 and 0 < metrics["ibs"] < 0.25
