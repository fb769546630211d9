"""What a cohort can tell (issue 24 item 3): the counts-only bounds hold by simulation, the
per-fold interval is the corrected resampled t, and every report opens with the answer."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sksurv.metrics import concordance_index_censored

from radfusion.pipeline.evaluability import (
    best_of_optimism,
    chance_thresholds,
    corrected_resampled_interval,
)
from radfusion.pipeline.report import (
    build_cv_report,
    cohort_evaluability,
    primary_model,
    render_html,
)
from radfusion.pipeline.report._survival import fusion_sentences
from radfusion.pipeline.survival import survival_target
from radfusion.pipeline.targets import get_task
from radfusion.pipeline.validation import cross_validate_models, fold_scores, summarize


def _hanley_mcneil_null_se(k, m):
    """Hanley and McNeil's standard error of an AUC of 0.5 on k positives and m negatives."""
    q1, q2 = 0.5 / 1.5, 2 * 0.25 / 1.5
    return np.sqrt((0.25 + (k - 1) * (q1 - 0.25) + (m - 1) * (q2 - 0.25)) / (k * m))


def test_chance_draws_spread_as_hanley_and_mcneil_say_on_a_large_cohort():
    draws, counts, words = get_task("binary").chance_scores(np.repeat([1, 0], [30, 60]), 4000, 0)
    assert counts == {"positive": 30, "negative": 60} and words.startswith("30 positive")
    assert np.std(draws) == pytest.approx(_hanley_mcneil_null_se(30, 60), rel=0.06)
    assert np.mean(draws) == pytest.approx(0.5, abs=0.005)


@pytest.mark.parametrize(
    ("positive", "negative", "exact"),
    # the exact two-sided 5 % critical AUC of the Mann-Whitney test; None: not even a perfect
    # ranking is significant (p = 2 / C(n, positive) > 0.05)
    [(2, 2, None), (3, 4, None), (5, 5, 0.92), (10, 10, 0.77)],
)
def test_small_cohorts_follow_the_exact_null(positive, negative, exact):
    draws, _, _ = get_task("binary").chance_scores(np.repeat([1, 0], [positive, negative]), 4000, 0)
    thresholds = chance_thresholds(draws)
    if exact is None:
        assert thresholds["min_significant"] is None and thresholds["min_detectable"] is None
    else:
        assert thresholds["min_significant"] == pytest.approx(exact)
    section = cohort_evaluability(get_task("binary"), np.repeat([1, 0], [positive, negative]))
    assert section["too_small"] and "too small for the question" in section["warning"]


def test_the_detectable_value_sits_power_sds_above_the_significant_one():
    draws = np.random.default_rng(0).normal(0.5, 0.05, 50_000)
    thresholds = chance_thresholds(draws)
    assert thresholds["min_significant"] == pytest.approx(0.5 + norm.ppf(0.975) * 0.05, abs=2e-3)
    assert thresholds["min_detectable"] - thresholds["min_significant"] == pytest.approx(
        norm.ppf(0.8) * thresholds["null_sd"]
    )


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
        "pooled": make_pipeline(StandardScaler(), LogisticRegression(C=0.01)),
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
        assert headline["model"] == "pooled" and headline["declared"] == "the default strategy"
        assert headline["mean"] == pytest.approx(
            report["models"]["pooled"]["metrics"]["roc_auc"]["mean"]
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


def test_each_task_draws_its_own_chance():
    times = np.arange(1.0, 61.0)
    ids = [f"P{i}" for i in range(60)]
    survival = cohort_evaluability(
        get_task("survival"), survival_target(times, np.arange(60) % 4 == 0, ids)
    )
    assert survival["counts"] == {"events": 15, "censored": 45}
    assert survival["sentences"][0].startswith("With 15 events among 60 patients, a C-index below")
    # the drawn spread is that of scikit-survival's Harrell's C of random scores
    y = survival_target(times, np.arange(60) % 4 == 0, ids)
    rng = np.random.default_rng(3)
    reference = [
        concordance_index_censored(y["event"], y["time"], rng.random(60))[0] for _ in range(300)
    ]
    assert survival["null_sd"] == pytest.approx(np.std(reference), rel=0.15)
    # every patient an event (no censoring) is a cohort like any other
    everyone = cohort_evaluability(get_task("survival"), survival_target(times, np.ones(60), ids))
    assert everyone["counts"] == {"events": 60, "censored": 0} and everyone["min_significant"]
    # the only event is the last time: no pair a C-index could order, nothing to say
    last = cohort_evaluability(get_task("survival"), survival_target(times, times == 60, ids))
    assert last["counts"] is None and last["sentences"] == []
    multiclass = cohort_evaluability(get_task("multiclass"), np.repeat([0, 1, 2], [30, 8, 40]))
    assert multiclass["counts"] == {"smallest_class": 8, "others": 70}
    assert multiclass["too_small"] and "too small" in multiclass["warning"]
    regression = cohort_evaluability(get_task("regression"), np.linspace(0, 1, 50))
    assert regression["counts"] is None and regression["sentences"] == []
    assert regression["method"] == ""


def test_a_regression_report_says_only_what_it_computed():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["CT__tumor__a", "CT__tumor__b"])
    X.index = [f"P{i:03d}" for i in range(60)]
    y = X["CT__tumor__a"].to_numpy() + rng.normal(size=60)
    result = cross_validate_models(
        {"pooled": make_pipeline(StandardScaler(), Ridge())}, X, y, folds=3, task="regression"
    )
    summary = summarize(result.predictions, task="regression", n_bootstrap=50)
    report = build_cv_report(
        result, summary, config={}, seed=0, inputs={}, groups={"CT__tumor": list(X)}
    )
    section = report["evaluability"]
    assert section["counts"] is None and section["headline"]["model"] == "pooled"
    assert "class counts" not in section["method"] and "outcomes alone" not in section["method"]
    assert "Nadeau and Bengio" in section["method"]


def test_a_declared_model_that_could_not_be_fitted_falls_back():
    config = {"primary": "late", "skipped_models": {"late": "ValueError: broken"}}
    headline = primary_model(["CT__tumor", "early", "pooled"], config, ["early", "pooled"])
    assert headline == {
        "model": "pooled",
        "declared": "--primary late could not be fitted; the default strategy",
    }


def test_the_survival_answer_says_whether_fusion_helped():
    def report(ci_low):
        test = {"fused": "late", "single": "CT", "delta": 0.04, "ci_low": ci_low, "ci_high": 0.09}
        return {
            "comparisons": {"best_single": "CT", "tests": [test]},
            "models": {"CT": {"metrics": {"harrell_c": {"mean": 0.61}}}},
        }

    (better,) = fusion_sentences(report(0.01))
    assert better == (
        "Fusion does better than the best single group (CT, Harrell's C 0.610): "
        "ΔC-index late +0.040 (95 % CI 0.010 to 0.090)."
    )
    (same,) = fusion_sentences(report(-0.01))
    assert same.startswith("Fusion does not help over the best single group (CT")
    assert fusion_sentences({"comparisons": {"best_single": None, "tests": []}}) == []
