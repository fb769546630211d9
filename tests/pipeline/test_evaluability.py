"""What a cohort can tell (issue 24 item 3): the counts-only bounds hold by simulation, the
per-fold interval is the corrected resampled t, and every report opens with the answer."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm, rankdata
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline.evaluability import (
    best_of_optimism,
    corrected_resampled_interval,
    hanley_mcneil_se,
    smallest_distinguishable_auc,
)
from radfusion.pipeline.report import build_cv_report, cohort_evaluability, render_html
from radfusion.pipeline.survival import survival_target
from radfusion.pipeline.targets import get_task
from radfusion.pipeline.validation import cross_validate_models, fold_scores, summarize


def test_hanley_mcneil_matches_the_spread_of_null_aucs():
    rng = np.random.default_rng(0)
    ranks = rankdata(rng.normal(size=(20_000, 90)), axis=1)  # 30 positive, then 60 negative
    aucs = (ranks[:, :30].sum(axis=1) - 30 * 31 / 2) / (30 * 60)
    assert np.std(aucs) == pytest.approx(hanley_mcneil_se(0.5, 30, 60), rel=0.06)
    with pytest.raises(ValueError, match="a patient of each class"):
        hanley_mcneil_se(0.7, 0, 10)


def test_the_smallest_distinguishable_auc_sits_on_its_boundary():
    z = norm.ppf(0.975)
    significant = smallest_distinguishable_auc(25, 68)
    assert significant - z * hanley_mcneil_se(significant, 25, 68) == pytest.approx(0.5, abs=1e-9)
    detectable = smallest_distinguishable_auc(25, 68, power=0.8)
    assert detectable - 0.5 == pytest.approx(
        z * hanley_mcneil_se(0.5, 25, 68) + norm.ppf(0.8) * hanley_mcneil_se(detectable, 25, 68)
    )
    assert 0.5 < significant < detectable < 1
    # more patients tell smaller signals; two of each tell nothing
    assert smallest_distinguishable_auc(250, 680) < significant
    assert smallest_distinguishable_auc(2, 2) is None  # exact: a perfect ranking has p = 1/3
    assert smallest_distinguishable_auc(3, 4) is None  # p = 2/35 > 0.05
    assert smallest_distinguishable_auc(4, 4) is not None  # p = 2/70


def test_best_of_optimism_is_the_expected_maximum():
    rng = np.random.default_rng(1)
    draws = rng.normal(scale=0.05, size=(200_000, 6)).max(axis=1).mean()
    assert best_of_optimism(6, 0.05) == pytest.approx(draws, abs=5e-4)
    assert best_of_optimism(1, 0.05) == 0.0


def test_the_corrected_interval_is_wider_than_the_naive_one():
    scores = [0.70, 0.80, 0.75, 0.65, 0.85, 0.72, 0.78, 0.69, 0.81, 0.74]
    corrected = corrected_resampled_interval(scores, 0.25)
    naive = corrected_resampled_interval(scores, 0.0)
    assert corrected["mean"] == naive["mean"] == pytest.approx(np.mean(scores))
    ratio = (corrected["ci_high"] - corrected["mean"]) / (naive["ci_high"] - naive["mean"])
    assert ratio == pytest.approx(np.sqrt((1 / 10 + 0.25) / (1 / 10)))
    assert corrected_resampled_interval([0.7, float("nan")], 0.25) is None


def _run(n, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(n, 3)),
        index=[f"P{i:03d}" for i in range(n)],
        columns=["CT__tumor__a", "CT__tumor__b", "PET__tumor__c"],
    )
    y = (X["CT__tumor__a"] + rng.normal(size=n) > 0).astype(int).to_numpy()
    models = {
        "ct": make_pipeline(StandardScaler(), LogisticRegression()),
        "stacking": make_pipeline(StandardScaler(), LogisticRegression(C=0.01)),
    }
    result = cross_validate_models(models, X, y, folds=3, repeats=2, seed=seed)
    summary = summarize(result.predictions, n_bootstrap=100, seed=seed)
    groups = {"CT__tumor": ["CT__tumor__a", "CT__tumor__b"], "PET__tumor": ["PET__tumor__c"]}
    report = build_cv_report(result, summary, config={}, seed=seed, inputs={}, groups=groups)
    return result, report


def test_fold_scores_are_each_folds_auc():
    result, _ = _run(60)
    scores, ratio = fold_scores(result.predictions, "ct")
    rows = result.predictions[result.predictions["model"] == "ct"]
    expected = [
        roc_auc_score(fold["y_true"], fold["proba"])
        for _, fold in rows.groupby(["repeat", "fold"], sort=True)
    ]
    np.testing.assert_allclose(scores, expected)
    assert ratio == pytest.approx(0.5)  # 3 folds: 20 held out against 40


def test_the_report_opens_with_what_the_cohort_can_tell():
    result, small = _run(24)
    _, large = _run(400)
    for report in (small, large):
        section = report["evaluability"]
        y = result.predictions.drop_duplicates("patient_id")["y_true"] if report is small else None
        if y is not None:
            assert section["counts"] == {
                "positive": int(y.sum()),
                "negative": int(len(y) - y.sum()),
            }
        headline = section["headline"]
        assert headline["model"] == "stacking" and headline["declared"] == "the default strategy"
        assert headline["mean"] == pytest.approx(
            report["models"]["stacking"]["metrics"]["roc_auc"]["mean"]
        )
        best = report["best"]
        assert section["optimism"]["observed"] == pytest.approx(
            report["models"][best]["metrics"]["roc_auc"]["mean"] - headline["mean"]
        )
        assert section["headline"]["fold_interval"]["n_scores"] == 6
    assert small["evaluability"]["too_small"] and small["evaluability"]["warning"]
    assert not large["evaluability"]["too_small"] and large["evaluability"]["warning"] is None
    html = render_html(small)
    answer = html.index("The answer")
    assert answer < html.index('id="cohort"') and answer < html.index('id="methods"')
    assert "too small for the question" in html[answer : html.index('id="cohort"')]


def test_each_task_names_the_counts_that_bound_its_metric():
    survival = cohort_evaluability(
        get_task("survival"),
        survival_target(np.arange(1.0, 41.0), np.arange(40) % 4 == 0, [f"P{i}" for i in range(40)]),
    )
    assert survival["counts"] == {"positive": 10, "negative": 30}
    assert survival["sentences"][0].startswith(
        "With 10 events and 30 censored patients, a C-index below"
    )
    multiclass = cohort_evaluability(get_task("multiclass"), np.repeat([0, 1, 2], [30, 8, 40]))
    assert multiclass["counts"] == {"positive": 8, "negative": 70}
    assert multiclass["too_small"] and "too small" in multiclass["warning"]
    regression = cohort_evaluability(get_task("regression"), np.linspace(0, 1, 50))
    assert regression["counts"] is None and regression["sentences"] == []
