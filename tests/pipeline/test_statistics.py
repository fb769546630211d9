"""Tests of radfusion.pipeline.statistics: DeLong, calibration, net benefit, confusion matrix, Table
1."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.metrics import confusion_matrix, roc_auc_score

from radfusion.pipeline.statistics import (
    calibration_bins,
    calibration_fit,
    confusion_counts,
    delong_test,
    describe_cohort,
    holm,
    net_benefit,
    net_benefit_treat_all,
)


def correlated_scores(n=200, seed=0, shift=(1.0, 0.7), rho=0.5, ties=False):
    """Two correlated scores of the same patients, both informative."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    common = rng.normal(size=n)
    a = shift[0] * y + np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.normal(size=n)
    b = shift[1] * y + np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.normal(size=n)
    if ties:
        a, b = np.round(a, 0), np.round(b, 0)
    return y, a, b


def delong_by_definition(y, a, b):
    """DeLong et al. (1988) written out: the O(m n) kernel, structural components, z."""
    x = [s[y == 1] for s in (a, b)]
    z = [s[y == 0] for s in (a, b)]

    def psi(u, v):
        return (u[:, None] > v[None, :]) + 0.5 * (u[:, None] == v[None, :])

    kernels = [psi(x[k], z[k]) for k in range(2)]  # (m, n)
    aucs = [k.mean() for k in kernels]
    v10 = np.array([k.mean(axis=1) for k in kernels])
    v01 = np.array([k.mean(axis=0) for k in kernels])
    s = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    var = s[0, 0] + s[1, 1] - 2 * s[0, 1]
    zstat = (aucs[0] - aucs[1]) / np.sqrt(var)
    return aucs, np.sqrt(var), 2 * norm.sf(abs(zstat))


# --------------------------------------------------------------------------------------------
# DeLong
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("ties", [False, True], ids=["continuous", "ties"])
@pytest.mark.parametrize("seed", [0, 1])
def test_delong_equals_the_definition(seed, ties):
    y, a, b = correlated_scores(n=120, seed=seed, ties=ties)
    result = delong_test(y, a, b)
    (auc_a, auc_b), se, p = delong_by_definition(y, a, b)
    assert result.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-12)
    assert result.auc_a == pytest.approx(auc_a, abs=1e-12)
    assert result.auc_b == pytest.approx(auc_b, abs=1e-12)
    assert result.se == pytest.approx(se, rel=1e-10)
    assert result.p_value == pytest.approx(p, rel=1e-9)
    assert result.ci_low == pytest.approx(result.difference - 1.959964 * se, abs=1e-6)


def test_delong_standard_error_agrees_with_a_paired_bootstrap():
    y, a, b = correlated_scores(n=300, seed=3)
    result = delong_test(y, a, b)
    rng = np.random.default_rng(0)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    diffs = []
    for _ in range(600):
        rows = np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))]
        diffs.append(roc_auc_score(y[rows], a[rows]) - roc_auc_score(y[rows], b[rows]))
    assert result.se == pytest.approx(np.std(diffs, ddof=1), rel=0.15)


def test_delong_is_symmetric_and_degenerate_cases_are_defined():
    y, a, b = correlated_scores(seed=5)
    ab, ba = delong_test(y, a, b), delong_test(y, b, a)
    assert ab.difference == pytest.approx(-ba.difference)
    assert ab.p_value == pytest.approx(ba.p_value) and ab.se == pytest.approx(ba.se)
    same = delong_test(y, a, a)
    assert same.difference == 0 and same.se == 0 and same.p_value == 1.0
    # A monotone transform changes nothing: the test depends on ranks only.
    assert delong_test(y, np.exp(a), b).p_value == pytest.approx(ab.p_value)
    with pytest.raises(ValueError, match="both classes"):
        delong_test(np.ones(10, dtype=int), a[:10], b[:10])


def test_delong_over_repeats_averages_placements():
    y, a, b = correlated_scores(n=100, seed=2)
    rng = np.random.default_rng(1)
    a3 = a + 0.3 * rng.normal(size=(3, 100))
    b3 = b + 0.3 * rng.normal(size=(3, 100))
    result = delong_test(y, a3, b3)
    assert result.auc_a == pytest.approx(np.mean([roc_auc_score(y, s) for s in a3]))
    # One repeat given as (1, n) is the classical test.
    assert delong_test(y, a[None], b[None]) == delong_test(y, a, b)


def test_delong_keeps_its_size_under_the_null():
    """Two exchangeable scores: about 5 % of the tests reject at 0.05."""
    rejections = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        y = np.arange(80) % 2
        common = y + rng.normal(size=80)
        a, b = common + rng.normal(size=80), common + rng.normal(size=80)
        rejections.append(delong_test(y, a, b).p_value < 0.05)
    assert 0.02 <= np.mean(rejections) <= 0.09


def test_holm():
    adjusted = holm([0.01, 0.04, 0.03, np.nan, 0.5])
    np.testing.assert_allclose(adjusted[[0, 2, 1, 4]], [0.04, 0.09, 0.09, 0.5])
    assert np.isnan(adjusted[3])
    assert (holm([0.9, 0.8]) == 1.0).all()


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("distortion", "slope", "intercept"),
    [
        (lambda lp: lp, 1.0, 0.0),  # perfectly calibrated
        (lambda lp: 2.0 * lp, 0.5, None),  # overfitted: too extreme predictions
        (lambda lp: 0.5 * lp, 2.0, None),  # too modest predictions
        (lambda lp: lp - 1.0, 1.0, 1.0),  # risks underestimated by a constant odds ratio
    ],
    ids=["calibrated", "too-extreme", "too-modest", "underestimated"],
)
def test_calibration_slope_and_intercept_on_simulated_risks(distortion, slope, intercept):
    rng = np.random.default_rng(0)
    true_lp = rng.normal(-0.3, 1.5, size=40_000)
    y = (rng.random(true_lp.size) < 1 / (1 + np.exp(-true_lp))).astype(int)
    proba = 1 / (1 + np.exp(-distortion(true_lp)))
    fitted_slope, fitted_intercept = calibration_fit(y, proba)
    assert fitted_slope[0] == pytest.approx(slope, abs=0.05)
    if intercept is not None:
        assert fitted_intercept[0] == pytest.approx(intercept, abs=0.05)


def test_calibration_fit_vectorises_over_weights_and_flags_separation():
    rng = np.random.default_rng(1)
    y = np.arange(60) % 2
    proba = np.clip(0.5 + 0.3 * (y - 0.5) + 0.2 * rng.normal(size=60), 0.01, 0.99)
    weights = rng.multinomial(60, np.full(60, 1 / 60), size=5).astype(float)
    slopes, intercepts = calibration_fit(y, proba, weights)
    for k, w in enumerate(weights):
        rows = np.repeat(np.arange(60), w.astype(int))
        s, i = calibration_fit(y[rows], proba[rows])
        assert slopes[k] == pytest.approx(s[0], abs=1e-7)
        assert intercepts[k] == pytest.approx(i[0], abs=1e-7)
    separated = np.where(y == 1, 0.6, 0.4)
    slope, intercept = calibration_fit(y, separated)
    assert np.isnan(slope[0])  # the recalibration slope diverges
    assert intercept[0] == pytest.approx(0.0, abs=1e-9)  # mean risk 0.5 = prevalence


def test_calibration_bins():
    y = np.array([0, 0, 1, 0, 1, 1])
    proba = np.array([[0.1, 0.2, 0.3, 0.4, 0.8, 0.9], [0.1, 0.2, 0.3, 0.4, 0.8, 0.9]])
    bins = calibration_bins(y, proba, n_bins=3)
    assert bins["predicted"] == pytest.approx([0.15, 0.35, 0.85])
    assert bins["observed"] == pytest.approx([0.0, 0.5, 1.0])
    assert bins["n"] == [2.0, 2.0, 2.0]  # patients per bin per repeat


# --------------------------------------------------------------------------------------------
# Decision curve and confusion matrix
# --------------------------------------------------------------------------------------------
def test_net_benefit_formulas():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.arange(100) < 30).astype(int)
    thresholds = np.array([0.05, 0.2, 0.5, 0.8])
    prevalence = 0.3
    treat_all = net_benefit_treat_all(y, thresholds)
    np.testing.assert_allclose(
        treat_all, prevalence - (1 - prevalence) * thresholds / (1 - thresholds)
    )
    # A model that calls everyone positive is treat-all; nobody positive is treat-none.
    np.testing.assert_allclose(net_benefit(y, np.ones(100), thresholds), treat_all)
    np.testing.assert_allclose(net_benefit(y, np.zeros(100), thresholds), 0.0)
    # A perfect model earns the prevalence at every threshold.
    np.testing.assert_allclose(net_benefit(y, y.astype(float), thresholds), prevalence)
    proba = rng.random(100)
    for t, nb in zip(thresholds, net_benefit(y, proba, thresholds), strict=True):
        tn, fp, fn, tp = confusion_matrix(y, proba >= t).ravel()
        assert nb == pytest.approx(tp / 100 - fp / 100 * t / (1 - t))
    with pytest.raises(ValueError, match="between 0 and 1"):
        net_benefit(y, proba, [0.0, 0.5])


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_confusion_counts_match_sklearn(threshold):
    rng = np.random.default_rng(4)
    y = np.arange(50) % 2
    proba = rng.random((2, 50))
    counts = confusion_counts(y, proba, threshold)
    expected = np.mean(
        [confusion_matrix(y, p >= threshold, labels=[0, 1]).ravel() for p in proba], axis=0
    )
    assert [counts[k] for k in ("tn", "fp", "fn", "tp")] == pytest.approx(expected)


# --------------------------------------------------------------------------------------------
# Table 1
# --------------------------------------------------------------------------------------------
def test_describe_cohort():
    y = np.array([0, 0, 0, 1, 1, 1, 1, 0])
    variables = pd.DataFrame(
        {
            "age": [50, 60, np.nan, 70, 80, 65, 75, 55],
            "sex": ["F", "M", "M", None, "F", "F", "M", "M"],
            "smoker": [0, 1, 0, 1, 1, 1, 0, 0],
        },
        index=[f"P{i}" for i in range(8)],
    )
    site = pd.Series(list("AABBABAB"))
    missing = pd.DataFrame({"CT__tumor": [False] * 8, "MR__tumor": [True] + [False] * 6 + [True]})
    table = describe_cohort(
        y,
        ["benign", "malignant"],
        variables=variables,
        site=site,
        missing_groups=missing,
        group_sizes={"CT__tumor": 100, "MR__tumor": 90},
    )
    assert table["columns"] == [
        {"label": "All", "n": 8},
        {"label": "benign", "n": 4},
        {"label": "malignant", "n": 4},
    ]
    rows = {row["name"]: row for row in table["variables"]}
    assert list(rows) == ["age", "sex", "smoker", "site"]
    age = rows["age"]
    assert age["kind"] == "numeric"
    assert age["values"][1] == pytest.approx(
        {"n": 3, "mean": 55.0, "sd": 5.0, "median": 55.0, "q1": 52.5, "q3": 57.5, "missing": 1}
    )
    sex = rows["sex"]
    assert sex["kind"] == "categorical" and list(sex["values"][0]["levels"]) == ["F", "M"]
    assert sex["values"][2]["levels"]["F"] == {"n": 2, "percent": pytest.approx(200 / 3)}
    assert sex["values"][2]["missing"] == 1
    assert rows["smoker"]["kind"] == "categorical"  # 0/1 coded
    assert rows["site"]["values"][0]["levels"] == {
        "A": {"n": 4, "percent": 50.0},
        "B": {"n": 4, "percent": 50.0},
    }
    groups = {g["name"]: g for g in table["groups"]}
    assert groups["MR__tumor"]["columns"] == 90
    assert [m["n"] for m in groups["MR__tumor"]["missing"]] == [2, 2, 0]
    assert [m["n"] for m in groups["any group"]["missing"]] == [2, 2, 0]


def test_describe_cohort_truncates_many_levels_and_needs_no_variables():
    y = np.arange(30) % 2
    many = pd.DataFrame({"code": [f"c{i % 15}" for i in range(30)]})
    row = describe_cohort(y, ["0", "1"], variables=many)["variables"][0]
    levels = row["values"][0]["levels"]
    assert len(levels) == 11 and "other" in levels
    assert sum(v["n"] for v in levels.values()) == 30
    bare = describe_cohort(y, ["no", "yes"])
    assert bare == {
        "columns": [{"label": "All", "n": 30}, {"label": "no", "n": 15}, {"label": "yes", "n": 15}],
        "variables": [],
        "groups": [],
    }
