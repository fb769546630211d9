"""Explanations: held-out permutation importance, meta-learner weights, late-fusion group drop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.inspection import permutation_importance
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold
from threadpoolctl import threadpool_limits

from radfusion.pipeline.experiment import run_cv
from radfusion.pipeline.fusion import STRATEGIES, build_model, build_models
from radfusion.pipeline.report._document import _explanations_html
from radfusion.pipeline.validation import (
    FoldExplainer,
    cross_validate_models,
    fused_models,
    single_group_models,
    summarize_explanations,
)
from radfusion.pipeline.validation._explain import (
    _columnwise_steps,
    fold_seed,
    held_out_importance,
)

GROUPS = {
    "CT__tumor": ["CT__tumor__signal", "CT__tumor__noise"],
    "MR__tumor": ["MR__tumor__weak", "MR__tumor__noise"],
    "clinical": ["age"],
}
FOLDS, REPEATS, SEED = 3, 2, 0


def cohort(n: int = 60, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.tile([0, 1], n // 2)
    X = pd.DataFrame(
        {
            "CT__tumor__signal": 2.0 * y + rng.normal(size=n),
            "CT__tumor__noise": rng.normal(size=n),
            "MR__tumor__weak": 0.5 * y + rng.normal(size=n),
            "MR__tumor__noise": rng.normal(size=n),
            "age": rng.normal(size=n),
        },
        index=[f"P{i:03d}" for i in range(n)],
    )
    return X, y


def explain_run(n_jobs: int):
    X, y = cohort()
    models = build_models(GROUPS, learners=("lr",), random_state=SEED, combiner="logistic")
    single = single_group_models(list(models), GROUPS, fused_models(models))
    hook = FoldExplainer(groups=GROUPS, single=single, seed=SEED)
    result = cross_validate_models(
        models, X, y, folds=FOLDS, repeats=REPEATS, seed=SEED, n_jobs=n_jobs, fold_hook=hook
    )
    predictions, records = result.predictions, result.records
    return (
        X,
        y,
        models,
        predictions,
        records,
        summarize_explanations(records, groups=GROUPS, single=single),
    )


@pytest.fixture(scope="module")
def explained():
    with threadpool_limits(limits=1):
        return explain_run(n_jobs=1)


def test_planted_feature_ranks_top_and_noise_is_zero(explained):
    summary = explained[-1]
    ct = summary["importance"]["groups"]["CT__tumor"]
    assert ct[0]["feature"] == "CT__tumor__signal" and ct[0]["mean"] > 0.1
    noise = {f["feature"]: f["mean"] for g in summary["importance"]["groups"].values() for f in g}
    assert abs(noise["CT__tumor__noise"]) < 0.03
    assert abs(noise["MR__tumor__noise"]) < 0.03
    assert summary["selection"]["ran"] is False and all(f["selected"] is None for f in ct)


class Memoriser(ClassifierMixin, BaseEstimator):
    """Looks up the label of a training row by its key; 0.5 for a row it has not seen."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        self.table_ = dict(zip(X["key"], y, strict=True))
        return self

    def predict_proba(self, X):
        p = np.array([self.table_.get(k, 0.5) for k in X["key"]], dtype=float)
        return np.column_stack([1 - p, p])


def test_importance_is_computed_on_held_out_rows():
    X, y = cohort()
    X = X.assign(key=np.arange(len(X), dtype=float))  # a training-only artefact
    hook = FoldExplainer(groups={"g": ["key"]}, single={"m": "g"}, seed=SEED)
    result = cross_validate_models(
        {"m": Memoriser()}, X, y, folds=FOLDS, repeats=1, seed=SEED, fold_hook=hook
    )
    records = result.records
    assert all(r["record"]["importance"][0] == 0.0 for r in records)
    # The instrument is sensitive: on training rows the key would look decisive.
    fitted = Memoriser().fit(X, y)
    on_train = permutation_importance(fitted, X, y, scoring="roc_auc", n_repeats=3, random_state=0)
    assert on_train.importances_mean[list(X.columns).index("key")] > 0.3


def test_meta_weights_equal_a_fold_coef(explained):
    X, y, models, _, records, summary = explained
    order = np.argsort(X.index.to_numpy(dtype=object), kind="stable")
    Xs, ys = X.iloc[order], y[order]
    train, _ = next(
        iter(
            RepeatedStratifiedKFold(n_splits=FOLDS, n_repeats=REPEATS, random_state=SEED).split(
                Xs, ys
            )
        )
    )
    fitted = clone(models["stacking"]).fit(Xs.iloc[train], ys[train])
    record = next(
        r["record"]
        for r in records
        if r["model"] == "stacking" and (r["repeat"], r["fold"]) == (0, 0)
    )
    coef = fitted.final_estimator_.coef_.ravel()[: len(record["weights"])]
    np.testing.assert_array_equal(list(record["weights"].values()), coef)
    weights = [r["record"]["weights"] for r in records if r["model"] == "stacking"]
    meta = summary["meta_weights"]
    assert meta["n_fits"] == FOLDS * REPEATS
    for row in meta["branches"]:
        values = [w[row["branch"]] for w in weights]
        assert row["mean"] == pytest.approx(np.mean(values))
        assert (row["min"], row["max"]) == (min(values), max(values))
    assert [g["group"] for g in meta["groups"]] == list(GROUPS)


def test_group_drop_matches_refitting_late_fusion_without_the_group(explained):
    X, y, _, predictions, _, summary = explained
    drop = summary["group_drop"]

    def pooled_aucs(frame):
        return np.array(
            [roc_auc_score(part["y_true"], part["proba"]) for _, part in frame.groupby("repeat")]
        )

    full = pooled_aucs(predictions[predictions["model"] == "late"])
    assert drop["auc"] == pytest.approx(full.mean(), abs=1e-12)
    for row in drop["groups"]:
        kept = {g: c for g, c in GROUPS.items() if g != row["group"]}
        refit = cross_validate_models(
            {"late": build_model(kept, "late", random_state=SEED)},
            X,
            y,
            folds=FOLDS,
            repeats=REPEATS,
            seed=SEED,
        ).predictions
        without = pooled_aucs(refit)
        assert row["auc_without"] == pytest.approx(without.mean(), abs=1e-12)
        assert row["drop"]["mean"] == pytest.approx((full - without).mean(), abs=1e-12)
        assert row["drop"]["min"] == pytest.approx((full - without).min(), abs=1e-12)
    ct = next(r for r in drop["groups"] if r["group"] == "CT__tumor")
    assert ct["drop"]["mean"] > 0.05  # the informative modality matters


def test_explanations_do_not_depend_on_n_jobs(explained):
    parallel = explain_run(n_jobs=2)
    assert json.dumps(parallel[-1]) == json.dumps(explained[-1])
    pd.testing.assert_frame_equal(parallel[3], explained[3])


def test_fold_seed_is_stable():
    # pinned: the same in every process and Python (no hash() of the model name)
    assert fold_seed(0, "CT__tumor", 0, 1) == 2371289244
    assert len({fold_seed(0, m, r, f) for m in "ab" for r in range(2) for f in range(3)}) == 12


def test_run_cv_report_is_reproducible_and_html_shows_the_json(tmp_path):
    X, y = cohort()
    table = X.assign(outcome=np.where(y == 1, "yes", "no")).rename_axis("patient_id")
    path = tmp_path / "features.csv"
    table.reset_index().to_csv(path, index=False)
    reports = [
        run_cv(
            path,
            label="outcome",
            out=tmp_path / name,
            params=dict(learners=("lr",), select_k=1, combiner="logistic"),
            strategies=STRATEGIES,
            folds=3,
            repeats=1,
            n_bootstrap=50,
        )
        for name in ("a", "b")
    ]
    first = (tmp_path / "a" / "report.json").read_bytes()
    assert first == (tmp_path / "b" / "report.json").read_bytes()
    report = reports[0]
    assert report["schema_version"] == "2.2"
    explanations = report["explanations"]
    assert explanations["selection"]["ran"] is True
    top = explanations["importance"]["groups"]["CT__tumor"][0]
    assert top["feature"] == "CT__tumor__signal" and top["selected"] == 1.0
    page = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert page == (tmp_path / "b" / "report.html").read_text(encoding="utf-8")
    assert 'id="explanations"' in page and 'id="figure-group_contributions"' in page
    assert _explanations_html(explanations) in page
    for g in explanations["meta_weights"]["groups"]:
        assert f"{g['mean']:.3f} [{g['min']:.3f}, {g['max']:.3f}]" in page
    for g in explanations["group_drop"]["groups"]:
        assert f"{g['auc_without']:.3f}" in page
        d = g["drop"]
        assert f"{d['mean']:.3f} [{d['min']:.3f}, {d['max']:.3f}]" in page
    for features in explanations["importance"]["groups"].values():
        for f in features:
            assert f"{f['mean']:.4f} ({f['sd']:.4f})" in page
    item = next(i for i in report["checklists"]["items"] if i["where"] == "explanations")
    assert item["status"] == "answered"
    # SHAP values of the headline model's branches (pooled, over lr here), exact, held out.
    shap = explanations["shap"]
    assert shap["model"] == report["primary"]["model"] == "pooled" and shap["computed"]
    branch = shap["branches"]["pooled:lr"]
    assert branch["kind"] == "linear" and branch["output"] == "log-odds of class 1"
    assert branch["n_rows"] == report["data"]["n_patients"]  # every patient once, held out
    assert branch["additivity_error"] < 1e-9
    assert branch["top"][0]["feature"] in {"CT__tumor__signal", "MR__tumor__weak"}
    assert "pooled:lr" in page and 'id="figure-shap"' in page


@pytest.mark.parametrize(
    "learner, options",
    [
        ("lr", {}),
        ("lr", {"select_k": 1}),
        ("rf", {"correlation_threshold": 0.9}),
        ("lr", {"harmonize": "site"}),  # ComBat mixes rows: the generic path
    ],
)
def test_column_by_column_importance_equals_predicting_every_shuffled_copy(learner, options):
    """The shortcut (steps run once, one changed term of a logistic regression) gives the
    numbers of predicting every shuffled copy through the whole branch."""
    X, y = cohort(n=80)
    X = X.assign(site=np.where(np.arange(len(X)) % 3 == 0, "A", "B"))
    columns = ["CT__tumor__signal", "CT__tumor__noise"]
    model = build_model({"CT__tumor": columns}, "single", learner=learner, **options)
    fitted = model.fit(X.iloc[:50], y[:50])
    kwargs = {"n_repeats": 4, "random_state": 3}
    fast = held_out_importance(fitted, X.iloc[50:], y[50:], columns, **kwargs)
    # the same shuffles, every copy predicted through the whole pipeline
    rng = np.random.default_rng(3)
    baseline = roc_auc_score(y[50:], fitted.predict_proba(X.iloc[50:])[:, 1])
    slow = np.zeros((4, len(columns)))
    for r in range(4):
        for j, column in enumerate(columns):
            shuffled = X.iloc[50:].copy()
            shuffled[column] = shuffled[column].to_numpy()[rng.permutation(30)]
            slow[r, j] = baseline - roc_auc_score(y[50:], fitted.predict_proba(shuffled)[:, 1])
    np.testing.assert_allclose(fast, slow.mean(axis=0), atol=1e-12)
    assert (_columnwise_steps(fitted) is None) == ("harmonize" in options)


@pytest.mark.parametrize("combiner", ("mean", "platt"))
def test_a_stack_with_equal_weights_reports_none_and_says_why(combiner):
    """The mean and platt combiners fit no weights: equal weights would read as 'every
    modality counts the same', so none are reported and the methods sentence says so."""
    X, y = cohort()
    models = build_models(GROUPS, learners=("lr",), random_state=SEED, combiner=combiner)
    single = single_group_models(list(models), GROUPS, fused_models(models))
    hook = FoldExplainer(groups=GROUPS, single=single, seed=SEED)
    result = cross_validate_models(models, X, y, folds=FOLDS, repeats=1, seed=SEED, fold_hook=hook)
    summary = summarize_explanations(result.records, groups=GROUPS, single=single)
    assert summary["meta_weights"] is None and summary["group_drop"] is not None
    assert (
        "not reported" in summary["methods"][0] and "same weight by design" in summary["methods"][0]
    )
    page = _explanations_html(summary)
    assert "Meta-learner weight mean" not in page and "AUC drop mean" in page


def test_branch_shap_values_are_exact_on_held_out_rows():
    """Each branch's SHAP values add up to its learner's own output on rows it never saw
    (linear: the log-odds; forest: the probability; boosted trees: the log-odds)."""
    pytest.importorskip("shap", reason="the shap extra (radfusion[explain]) is not installed")
    from radfusion.pipeline.fusion import build_model
    from radfusion.pipeline.validation._shap import branch_shap

    rng = np.random.default_rng(3)
    groups = {g: c for g, c in GROUPS.items() if g != "clinical"}
    X = pd.DataFrame(rng.normal(size=(90, 4)), columns=[c for g in groups.values() for c in g])
    y = (X["CT__tumor__signal"] + 0.5 * rng.normal(size=90) > 0).astype(int).to_numpy()
    model = build_model(groups, "stacking", learners=("lr", "rf", "xgb", "svm")).fit(
        X.iloc[:60], y[:60]
    )
    record = branch_shap(model, X.iloc[60:], name="stacking")
    assert set(record["branches"]) == {
        f"{g}:{m}" for g in ("CT/tumor", "MR/tumor") for m in ("lr", "rf", "xgb")
    }
    assert set(record["skipped"]) == {"CT/tumor:svm", "MR/tumor:svm"}  # no exact SHAP
    for name, part in record["branches"].items():
        assert part["n"] == 30 and len(part["sum_abs"]) == len(part["features"]) == 2
        assert part["additivity"] < (1e-5 if name.endswith("xgb") else 1e-9), name
    # a linear branch's values are w_j x_j on its standardised inputs
    branch = model.named_estimators_["CT/tumor:lr"]
    expected = np.abs(branch[:-1].transform(X.iloc[60:]) * branch[-1].coef_[0]).sum(axis=0)
    np.testing.assert_allclose(record["branches"]["CT/tumor:lr"]["sum_abs"], expected)
