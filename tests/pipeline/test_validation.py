"""Tests of radfusion.pipeline.validation: folds, out-of-fold predictions, metrics, bootstrap
CIs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.optimize import minimize_scalar
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.ensemble import RandomForestClassifier
from sklearn.feature_selection import SelectKBest, f_classif
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline.targets import binary_metrics, stratified_bootstrap_weights
from radfusion.pipeline.validation import (
    CURVE_GRID,
    METRICS,
    compare_models,
    confusion_matrices,
    cross_validate_models,
    decision_curves,
    pr_curves,
    roc_curves,
    summarize,
)
from radfusion.pipeline.validation._cv import (
    PREDICTION_COLUMNS,
    default_comparisons,
    encode_labels,
    roc_curve_points,
)
from tests.fabricated import prediction_rows


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def reference_slope(y, p):
    """Unpenalised logistic regression of y on logit(p) (an independent solver)."""
    model = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000)
    return model.fit(_logit(np.asarray(p))[:, None], np.asarray(y)).coef_[0, 0]


def reference_intercept(y, p):
    """Intercept of the logistic model with logit(p) as offset, by 1-D minimisation."""
    lp, y = _logit(np.asarray(p)), np.asarray(y)

    def nll(a):
        eta = a + lp
        return np.sum(np.logaddexp(0, eta) - y * eta)

    return minimize_scalar(nll, bounds=(-20, 20), method="bounded", options={"xatol": 1e-12}).x


SKLEARN_METRICS = {
    "roc_auc": lambda y, p: roc_auc_score(y, p),
    "accuracy": lambda y, p: accuracy_score(y, p >= 0.5),
    "balanced_accuracy": lambda y, p: balanced_accuracy_score(y, p >= 0.5),
    "sensitivity": lambda y, p: recall_score(y, p >= 0.5),
    "specificity": lambda y, p: recall_score(y, p >= 0.5, pos_label=0),
    "precision": lambda y, p: precision_score(y, p >= 0.5, zero_division=0),
    "f1": lambda y, p: f1_score(y, p >= 0.5, zero_division=0),
    "brier": lambda y, p: brier_score_loss(y, p),
    "average_precision": lambda y, p: average_precision_score(y, p),
    "calibration_slope": reference_slope,
    "calibration_intercept": reference_intercept,
}
#: Agreement with the reference: iterative solvers for the calibration metrics.
TOLERANCE = {"calibration_slope": 1e-6, "calibration_intercept": 1e-6}


def make_data(n=60, p=5, seed=0, signal=1.0):
    """A small cohort indexed by patient id, with one informative feature."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        rng.normal(size=(n, p)),
        index=pd.Index([f"P{i:04d}" for i in range(n)], name="patient_id"),
        columns=[f"CT__tumor__f{j}" for j in range(p)],
    )
    y = (signal * X.iloc[:, 0] + rng.normal(size=n) > 0).astype(int).to_numpy()
    return X, y


def lr(C=1.0):
    return make_pipeline(StandardScaler(), LogisticRegression(C=C))


def synthetic_predictions(n=80, repeats=3, models=("a", "b"), seed=0, decimals=None):
    """A predictions frame with informative, optionally tied, probabilities."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    frames = []
    for model in models:
        for repeat in range(repeats):
            proba = 1 / (1 + np.exp(-(1.5 * (y - 0.5) + rng.normal(size=n))))
            if decimals is not None:
                proba = np.round(proba, decimals)
            frames.append(prediction_rows(model, repeat, y, proba, folds=5, id_digits=4))
    return pd.concat(frames, ignore_index=True)


class Recorder(ClassifierMixin, BaseEstimator):
    """Records its training and test patients; P(class 1) = 1 iff a test patient was trained on.

    The log is per process, so only read it with ``n_jobs=1``.
    """

    log: list[tuple[str, frozenset, frozenset]] = []

    def __init__(self, tag="r"):
        self.tag = tag

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.train_ids_ = frozenset(X.index)
        return self

    def predict_proba(self, X):
        leaked = np.array([pid in self.train_ids_ for pid in X.index], dtype=float)
        Recorder.log.append((self.tag, self.train_ids_, frozenset(X.index)))
        return np.column_stack([1 - leaked, leaked])


class Warner(ClassifierMixin, BaseEstimator):
    """Warns the same thing at every fit, like ComBat seeing a confounded site."""

    def fit(self, X, y):
        warnings.warn("site and outcome are confounded", UserWarning, stacklevel=2)
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        return np.full((len(X), 2), 0.5)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_a_warning_raised_in_every_fold_reaches_the_caller_once(n_jobs):
    X, y = make_data(n=30)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cross_validate_models(
            {"a": Warner(), "b": Warner()}, X, y, folds=3, repeats=2, n_jobs=n_jobs
        )
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert messages.count("site and outcome are confounded") == 1


class NoProba(BaseEstimator):
    def fit(self, X, y):
        return self


# --------------------------------------------------------------------------------------------
# cross_validate_models
# --------------------------------------------------------------------------------------------
def test_predictions_frame_layout():
    X, y = make_data(n=40)
    models = {"zeta": lr(), "alpha": lr(0.1)}
    pred = cross_validate_models(models, X, y, folds=4, repeats=2).predictions

    assert tuple(pred.columns) == PREDICTION_COLUMNS
    assert len(pred) == 2 * 2 * 40
    assert list(pd.unique(pred["model"])) == ["zeta", "alpha"]  # order as given, not sorted
    keys = pred.assign(m=pred["model"].map({"zeta": 0, "alpha": 1}))
    assert keys.equals(keys.sort_values(["m", "repeat", "patient_id"]))
    per_cell = pred.groupby(["model", "repeat"])["patient_id"]
    assert (per_cell.nunique() == 40).all() and (per_cell.size() == 40).all()
    assert set(pred["fold"]) == {0, 1, 2, 3} and set(pred["repeat"]) == {0, 1}
    assert pred["proba"].between(0, 1).all()
    by_id = pred.drop_duplicates("patient_id").set_index("patient_id")["y_true"]
    np.testing.assert_array_equal(by_id.loc[X.index].to_numpy(), y)


def test_same_folds_for_every_model_and_no_test_row_in_training():
    X, y = make_data(n=30)
    Recorder.log.clear()
    pred = cross_validate_models(
        {"a": Recorder("a"), "b": Recorder("b"), "c": lr()}, X, y, folds=3, repeats=2
    ).predictions

    # A test patient seen in training would get proba 1.
    assert (pred.loc[pred["model"] != "c", "proba"] == 0).all()
    # One task per split fits every model of that split, in the models' order.
    assert [tag for tag, *_ in Recorder.log] == ["a", "b"] * 6
    log = Recorder.log[0::2] + Recorder.log[1::2]
    everyone = frozenset(X.index)
    for (_, train_a, test_a), (_, train_b, test_b) in zip(log[:6], log[6:], strict=True):
        assert train_a == train_b and test_a == test_b  # identical splits across models
        assert not train_a & test_a and train_a | test_a == everyone
    for repeat in range(2):  # each repeat's test folds partition the patients
        tests = [test for _, _, test in log[3 * repeat : 3 * repeat + 3]]
        assert sum(len(t) for t in tests) == len(everyone) and frozenset().union(*tests) == everyone
    # The fold column names the split a patient was tested in, for every model alike.
    folds = pred.pivot_table(index=["repeat", "patient_id"], columns="model", values="fold")
    assert (folds.nunique(axis=1) == 1).all()
    for split, (_, _, test) in enumerate(log[:6]):
        repeat, fold = divmod(split, 3)
        rows = pred[(pred["model"] == "a") & (pred["repeat"] == repeat) & (pred["fold"] == fold)]
        assert frozenset(rows["patient_id"]) == test


def test_n_jobs_does_not_change_the_result():
    X, y = make_data(n=50)
    models = {"lr": lr(), "rf": RandomForestClassifier(n_estimators=15, random_state=0)}
    serial = cross_validate_models(models, X, y, folds=5, repeats=2, n_jobs=1).predictions
    parallel = cross_validate_models(models, X, y, folds=5, repeats=2, n_jobs=2).predictions
    pd.testing.assert_frame_equal(serial, parallel, check_exact=True)


def _test_rows(estimator, X_test, y_test, *, model, repeat, fold):
    """A fold hook: the held-out ids and the fitted coefficient of the first feature."""
    return {
        "ids": list(X_test.index),
        "y": y_test.tolist(),
        "coef": float(estimator[-1].coef_[0, 0]),
        "key": (model, repeat, fold),
    }


def test_fold_hook_sees_the_fitted_model_and_held_out_rows_only():
    X, y = make_data(n=40)
    models = {"a": lr(), "b": lr(C=0.1)}
    plain = cross_validate_models(models, X, y, folds=4, repeats=2).predictions
    result = cross_validate_models(models, X, y, folds=4, repeats=2, fold_hook=_test_rows)
    predictions, records = result.predictions, result.records
    pd.testing.assert_frame_equal(plain, predictions, check_exact=True)  # unchanged
    assert [(r["model"], r["repeat"], r["fold"]) for r in records] == [
        (m, r, f) for m in models for r in range(2) for f in range(4)
    ]
    for r in records:
        assert r["record"]["key"] == (r["model"], r["repeat"], r["fold"])
        rows = predictions[
            (predictions["model"] == r["model"])
            & (predictions["repeat"] == r["repeat"])
            & (predictions["fold"] == r["fold"])
        ]
        assert r["record"]["ids"] == rows["patient_id"].tolist()
        assert r["record"]["y"] == rows["y_true"].tolist()
        train = X.drop(index=r["record"]["ids"])
        fitted = lr(C=1.0 if r["model"] == "a" else 0.1).fit(
            train, y[~X.index.isin(r["record"]["ids"])]
        )
        assert r["record"]["coef"] == fitted[-1].coef_[0, 0]
    result = cross_validate_models(models, X, y, folds=4, repeats=2, n_jobs=2, fold_hook=_test_rows)
    _, parallel = result.predictions, result.records
    assert parallel == records


def test_seed_controls_the_folds():
    X, y = make_data(n=50)
    first = cross_validate_models({"lr": lr()}, X, y, seed=1).predictions
    again = cross_validate_models({"lr": lr()}, X, y, seed=1).predictions
    other = cross_validate_models({"lr": lr()}, X, y, seed=2).predictions
    pd.testing.assert_frame_equal(first, again, check_exact=True)
    assert not first["fold"].equals(other["fold"])
    assert not np.allclose(first["proba"], other["proba"])


@pytest.mark.parametrize("ids_as", ["index", "argument"])
def test_row_order_does_not_change_the_result(ids_as):
    X, y = make_data(n=45)
    models = {"lr": lr(), "rf": RandomForestClassifier(n_estimators=10, random_state=0)}
    perm = np.random.default_rng(3).permutation(len(X))
    X_shuffled, y_shuffled = X.iloc[perm], y[perm]
    if ids_as == "argument":
        ids = X_shuffled.index.to_numpy()
        X_shuffled = X_shuffled.reset_index(drop=True)
    else:
        ids = None
    reference = cross_validate_models(models, X, y, folds=3, repeats=2).predictions
    shuffled = cross_validate_models(
        models, X_shuffled, y_shuffled, ids=ids, folds=3, repeats=2
    ).predictions
    pd.testing.assert_frame_equal(reference, shuffled, check_exact=True)


@pytest.mark.parametrize(
    ("labels", "mapping"),
    [
        (["benign", "malignant"], {"benign": 0, "malignant": 1}),
        (["yes", "no"], {"no": 0, "yes": 1}),
        ([2, 1], {1: 0, 2: 1}),
        ([False, True], {False: 0, True: 1}),
    ],
)
def test_labels_are_mapped_to_0_1_and_recorded(labels, mapping):
    X, y01 = make_data(n=30)
    y = np.array(labels, dtype=object)[y01]
    result = cross_validate_models({"lr": lr()}, X, y, folds=3, repeats=1)
    pred = result.predictions
    assert result.label_mapping == mapping
    expected = np.array([mapping[v] for v in y])
    got = pred.set_index("patient_id").loc[X.index, "y_true"].to_numpy()
    np.testing.assert_array_equal(got, expected)
    assert encode_labels(y)[1] == mapping


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda X, y: (X, np.r_[np.ones(len(y) - 2), 0, 0]), ValueError, "only 2 patient"),
        (lambda X, y: (X, np.arange(len(y)) % 3), ValueError, "exactly two classes"),
        (lambda X, y: (X.set_axis(["P"] * len(X)), y), ValueError, "unique"),
        (lambda X, y: (X, y[:-1]), ValueError, "same length"),
        (lambda X, y: (X.to_numpy(), y), TypeError, "DataFrame"),
    ],
    ids=["class-smaller-than-folds", "three-classes", "duplicate-ids", "length", "ndarray"],
)
def test_invalid_input_is_rejected(change, error, match):
    X, y = make_data(n=30)
    X, y = change(X, y)
    with pytest.raises(error, match=match):
        cross_validate_models({"lr": lr()}, X, y, folds=5)


@pytest.mark.parametrize(
    ("kwargs", "models", "match"),
    [
        ({"folds": 1}, {"lr": lr()}, "folds"),
        ({"repeats": 0}, {"lr": lr()}, "repeats"),
        ({}, {}, "non-empty"),
        ({}, {"x": NoProba()}, "predict_proba"),
    ],
)
def test_invalid_settings_are_rejected(kwargs, models, match):
    X, y = make_data(n=30)
    with pytest.raises((ValueError, TypeError), match=match):
        cross_validate_models(models, X, y, **kwargs)


# --------------------------------------------------------------------------------------------
# summarize
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("decimals", [None, 1], ids=["continuous", "ties"])
@pytest.mark.parametrize("metric", METRICS)
def test_point_estimates_match_sklearn(metric, decimals):
    pred = synthetic_predictions(decimals=decimals)
    summary = summarize(pred, n_bootstrap=0)
    for model, rows in pred.groupby("model"):
        expected = np.mean(
            [SKLEARN_METRICS[metric](r["y_true"], r["proba"]) for _, r in rows.groupby("repeat")]
        )
        tolerance = TOLERANCE.get(metric, 1e-12)
        assert summary[model][metric]["mean"] == pytest.approx(expected, abs=tolerance)
        assert np.isnan(summary[model][metric]["ci_low"])  # no bootstrap, no CI


def test_vectorised_bootstrap_equals_explicit_resampling():
    pred = synthetic_predictions(n=40, repeats=1, models=("a",), decimals=1)
    pred = pred.sort_values("patient_id")
    y, p = pred["y_true"].to_numpy(), pred["proba"].to_numpy()
    weights = stratified_bootstrap_weights(y, n_bootstrap=15, seed=7)
    assert (weights[:, y == 1].sum(axis=1) == (y == 1).sum()).all()  # stratified
    fast = binary_metrics(weights, y, p[None, :])[:, 0, :]
    for b, w in enumerate(weights.astype(int)):
        rows = np.repeat(np.arange(len(y)), w)  # the resampled patients, explicitly
        for k, metric in enumerate(METRICS):
            expected = SKLEARN_METRICS[metric](y[rows], p[rows])
            tolerance = TOLERANCE.get(metric, 1e-12)
            assert fast[b, k] == pytest.approx(expected, abs=tolerance), metric


def test_ci_contains_the_mean_and_narrows_with_more_patients():
    small = summarize(synthetic_predictions(n=60), n_bootstrap=500)
    large = summarize(synthetic_predictions(n=600), n_bootstrap=500)
    for summary in (small, large):
        for metrics in summary.values():
            for values in metrics.values():
                assert values["ci_low"] <= values["mean"] <= values["ci_high"]
    for metric in METRICS:
        width_small = small["a"][metric]["ci_high"] - small["a"][metric]["ci_low"]
        width_large = large["a"][metric]["ci_high"] - large["a"][metric]["ci_low"]
        assert width_large < 0.6 * width_small, metric


def test_perfect_model_has_auc_one_with_a_degenerate_ci():
    pred = synthetic_predictions(n=50)
    pred["proba"] = np.where(pred["y_true"] == 1, 0.9, 0.1)
    summary = summarize(pred, n_bootstrap=200)["a"]
    for metric in ("roc_auc", "accuracy", "sensitivity", "specificity", "precision", "f1"):
        assert summary[metric] == {"mean": 1.0, "ci_low": 1.0, "ci_high": 1.0}
    assert summary["brier"]["mean"] == pytest.approx(0.01)


def test_summary_is_seeded_and_shares_resamples_across_models():
    pred = synthetic_predictions(models=("a", "b", "c"))
    assert summarize(pred, seed=3) == summarize(pred, seed=3)
    assert summarize(pred, seed=3)["a"] != summarize(pred, seed=4)["a"]
    # Resamples depend on the patients and the seed only: a model's CI does not depend on
    # which other models are summarised with it, nor on the row order.
    alone = summarize(pred[pred["model"] == "b"].sample(frac=1, random_state=0), seed=3)
    assert alone["b"] == summarize(pred, seed=3)["b"]
    assert list(summarize(pred)) == ["a", "b", "c"]
    assert list(summarize(pred)["a"]) == list(METRICS)


def test_summarize_rejects_incomplete_predictions():
    pred = synthetic_predictions()
    with pytest.raises(ValueError, match="exactly one row"):
        summarize(pred.iloc[1:])
    with pytest.raises(ValueError, match="single class"):
        summarize(pred.assign(y_true=1))


# --------------------------------------------------------------------------------------------
# roc_curve_points
# --------------------------------------------------------------------------------------------
def test_roc_curve_points():
    pred = synthetic_predictions(n=200, repeats=2)
    fpr, tpr = roc_curve_points(pred, "a")
    assert fpr.shape == tpr.shape == (101,)
    assert fpr[0] == 0 and fpr[-1] == 1 and tpr[-1] == 1
    assert (np.diff(fpr) > 0).all() and (np.diff(tpr) >= 0).all()
    auc = summarize(pred, n_bootstrap=0)["a"]["roc_auc"]["mean"]
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=0.01)

    perfect = pred.assign(proba=pred["y_true"].astype(float))
    assert (roc_curve_points(perfect, "a")[1] == 1).all()
    with pytest.raises(KeyError, match="nope"):
        roc_curve_points(pred, "nope")


def test_roc_curve_points_follow_the_polyline_exactly():
    """On a grid point between two thresholds the curve is the segment joining them."""
    y = np.array([0, 0, 0, 0, 1, 1, 0, 1, 1, 1])
    proba = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    pred = pd.DataFrame(
        {"patient_id": range(10), "model": "m", "repeat": 0, "fold": 0, "y_true": y, "proba": proba}
    )
    fpr, tpr = roc_curve_points(pred, "m")
    f, t, _ = roc_curve(y, proba, drop_intermediate=False)
    expected = [t[f <= x].max() if np.isclose(f, x).any() else np.interp(x, f, t) for x in fpr]
    np.testing.assert_allclose(tpr, expected, atol=1e-12)
    # A horizontal stretch stays horizontal: fpr in (0, 0.2) before the next positive.
    assert tpr[10] == pytest.approx(0.6) and tpr[19] == pytest.approx(0.6)


def test_roc_band_uses_the_bootstrap_and_contains_the_curve():
    pred = synthetic_predictions(n=120, models=("a", "b"))
    curves = roc_curves(pred, n_bootstrap=300, seed=1)
    for name in ("a", "b"):
        np.testing.assert_allclose(curves[name]["tpr"], roc_curve_points(pred, name)[1])
        low, high = curves[name]["tpr_ci_low"], curves[name]["tpr_ci_high"]
        inside = (low - 1e-12 <= curves[name]["tpr"]) & (curves[name]["tpr"] <= high + 1e-12)
        assert inside.mean() > 0.95
        assert (high - low)[10:90].min() > 0  # a real band away from the corners
    assert (
        roc_curves(pred, n_bootstrap=300, seed=1)["a"]["tpr_ci_low"].tolist()
        == curves["a"]["tpr_ci_low"].tolist()
    )
    assert np.isnan(roc_curves(pred, n_bootstrap=0)["a"]["tpr_ci_low"]).all()


def test_pr_curve_is_monotone_and_bounded_by_average_precision():
    pred = synthetic_predictions(n=150)
    precision = pr_curves(pred)["a"]
    assert precision.shape == CURVE_GRID.shape
    assert (np.diff(precision) <= 1e-12).all()  # interpolated precision never increases
    ap = summarize(pred, n_bootstrap=0)["a"]["average_precision"]["mean"]
    # Interpolated precision dominates the step-wise precision: its area is at least AP.
    assert np.trapezoid(precision, CURVE_GRID) >= ap - 0.01


def test_confusion_matrices_and_decision_curves_match_the_metrics():
    pred = synthetic_predictions(n=100, repeats=2)
    summary = summarize(pred, n_bootstrap=0)["a"]
    cm = confusion_matrices(pred)["a"]
    assert cm["tp"] + cm["fn"] == 50 and cm["tn"] + cm["fp"] == 50
    assert cm["tp"] / 50 == pytest.approx(summary["sensitivity"]["mean"])
    assert cm["tn"] / 50 == pytest.approx(summary["specificity"]["mean"])
    curves, treat_all = decision_curves(pred, thresholds=[0.5])
    assert curves["a"][0] == pytest.approx((cm["tp"] - cm["fp"]) / 100)  # t/(1-t) = 1
    assert treat_all[0] == pytest.approx(0.0)  # prevalence 0.5 at t = 0.5


def test_comparisons_pair_fused_with_single_models_and_adjust():
    names = ["CT__tumor", "clinical", "early", "stacking"]
    fused = ["early", "stacking"]
    assert default_comparisons(names, fused) == [
        ("early", "CT__tumor"),
        ("early", "clinical"),
        ("stacking", "CT__tumor"),
        ("stacking", "clinical"),
    ]
    pred = synthetic_predictions(n=120, models=tuple(names))
    tests = compare_models(pred, default_comparisons(names, fused))
    summary = summarize(pred, n_bootstrap=0)
    for test in tests:
        assert test["auc_model"] == pytest.approx(summary[test["model"]]["roc_auc"]["mean"])
        assert test["ci_low"] < test["difference"] < test["ci_high"]
        assert test["p_value"] <= test["p_holm"] <= 1
    with pytest.raises(KeyError, match="nope"):
        compare_models(pred, [("early", "nope")])


# --------------------------------------------------------------------------------------------
# The leakage law
# --------------------------------------------------------------------------------------------
def test_harness_catches_feature_selection_leakage():
    """Noise features, random labels: honest CV gives AUC ~ 0.5, selecting outside CV does not.

    Selecting the features most associated with the labels on all patients, then
    cross-validating only the classifier, lets the test folds choose the features: the AUC
    is inflated although there is nothing to learn. Inside the pipeline, selection is refitted
    on each training fold and the AUC stays at chance (CV on pure noise is slightly biased
    below 0.5, more so with few selected features: ~0.48 with k=50 over many draws).
    """
    honest, leaky = [], []
    for draw in range(5):
        rng = np.random.default_rng(100 + draw)
        n, p = 100, 500
        X = pd.DataFrame(rng.normal(size=(n, p)), index=[f"P{i:03d}" for i in range(n)])
        y = rng.permutation(np.arange(n) % 2)
        model = make_pipeline(StandardScaler(), SelectKBest(f_classif, k=50), LogisticRegression())
        pred = cross_validate_models({"m": model}, X, y, folds=5, repeats=2, seed=draw).predictions
        honest.append(summarize(pred, n_bootstrap=0)["m"]["roc_auc"]["mean"])

        selected = SelectKBest(f_classif, k=50).fit(X, y).get_support()  # the leak
        pred = cross_validate_models(
            {"m": lr()}, X.loc[:, selected], y, repeats=2, seed=draw
        ).predictions
        leaky.append(summarize(pred, n_bootstrap=0)["m"]["roc_auc"]["mean"])

    assert abs(np.mean(honest) - 0.5) < 0.1
    assert np.mean(leaky) > 0.8
    assert min(leaky) > max(honest)
