"""Leakage-safe transformers: ComBat numerics and laws, filters, selection, estimator checks,
fusion integration."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline.experiment import run_cv
from radfusion.pipeline.fusion import build_model, build_models
from radfusion.pipeline.learners import make_learner
from radfusion.pipeline.preprocessing import (
    ComBat,
    CorrelationFilter,
    RobustnessFilter,
    SelectTopK,
    VarianceFilter,
    pyradiomics_name,
)
from radfusion.pipeline.report import (
    model_record,
)
from radfusion.pipeline.report._config import (
    preprocessing_settings,
)
from radfusion.pipeline.statistics import ConfoundedSiteWarning
from radfusion.pipeline.validation import cross_validate_models


def _auc(predictions: pd.DataFrame, model: str = "m") -> float:
    rows = predictions[predictions["model"] == model]
    return roc_auc_score(rows["y_true"], rows["proba"])


def _columns(p: int, prefix: str = "CT__tumor__original_firstorder_F") -> list[str]:
    return [f"{prefix}{j}" for j in range(p)]


# --------------------------------------------------------------------------- permuted labels

ICC = pd.DataFrame(
    {
        "feature": [f"original_firstorder_F{j}" for j in range(300)],
        "icc": np.linspace(0.5, 1.0, 300),
    }
)

TRANSFORMERS = {
    "combat": lambda: ComBat("site"),
    "combat-nonparametric": lambda: ComBat("site", parametric=False),
    "variance": lambda: VarianceFilter(0.5),
    "correlation": lambda: CorrelationFilter(0.2),
    "robustness": lambda: RobustnessFilter(ICC, threshold=0.75),
    "topk-anova": lambda: SelectTopK(10),
    "topk-mrmr": lambda: SelectTopK(10, method="mrmr"),
}


@pytest.mark.parametrize("name", list(TRANSFORMERS))
def test_permuted_labels_give_chance_auc(name):
    """Noise features, random labels, two sites: every transformer + LR scores AUC ≈ 0.5."""
    aucs = []
    for draw in range(5):
        rng = np.random.default_rng(draw)
        X = pd.DataFrame(
            rng.normal(size=(100, 300)),
            columns=_columns(300),
            index=[f"P{i:03d}" for i in range(100)],
        )
        y = rng.permutation(np.r_[np.zeros(50, int), np.ones(50, int)])
        if name.startswith("combat"):
            X["site"] = rng.choice(["A", "B"], size=100)
        model = make_pipeline(TRANSFORMERS[name](), StandardScaler(), make_learner("lr"))
        predictions = cross_validate_models(
            {"m": model}, X, y, folds=5, repeats=1, seed=draw
        ).predictions
        aucs.append(_auc(predictions))
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs


# --------------------------------------------------------------------------- planted scanner


def _scanner_data(seed=0, n=200, p=30):
    """Label signal in 5 features; site B shifts every feature (by 0.5 to 2.5) and scales it
    (by 1.5 to 3.5), independently of the label."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    site = rng.choice(np.array(["A", "B"]), n)
    X = rng.normal(size=(n, p))
    X[:, :5] += 0.8 * y[:, None]
    b = site == "B"
    X[b] = rng.uniform(1.5, 3.5, p) * X[b] + rng.uniform(0.5, 2.5, p)
    frame = pd.DataFrame(X, columns=_columns(p), index=[f"P{i:03d}" for i in range(n)])
    frame["site"] = site
    return frame, y, site


def _site_auc(frame, site, harmonise: bool) -> float:
    """Held-out site prediction: ComBat and the site classifier are fitted on the training
    folds; the classifier (LR on features and their squares, so that scale differences count
    too) scores the held-out rows."""
    target = (site == "B").astype(int)
    scores = np.empty(len(frame))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(frame, target):
        if harmonise:
            combat = ComBat("site").fit(frame.iloc[train])
            H_train = combat.transform(frame.iloc[train])
            H_test = combat.transform(frame.iloc[test])
        else:
            H_train = frame.iloc[train].drop(columns="site").to_numpy()
            H_test = frame.iloc[test].drop(columns="site").to_numpy()
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        clf.fit(np.hstack([H_train, H_train**2]), target[train])
        scores[test] = clf.predict_proba(np.hstack([H_test, H_test**2]))[:, 1]
    return roc_auc_score(target, scores)


def test_planted_scanner_effect_is_removed_and_label_signal_survives():
    raw, harmonised = [], []
    for seed in range(3):
        frame, y, site = _scanner_data(seed)
        raw.append(_site_auc(frame, site, harmonise=False))
        harmonised.append(_site_auc(frame, site, harmonise=True))
    assert min(raw) > 0.95, raw
    assert abs(np.mean(harmonised) - 0.5) < 0.1, harmonised

    frame, y, site = _scanner_data(0)
    drop_site = ColumnTransformer([("drop", "drop", ["site"])], remainder="passthrough")
    models = {
        "raw": make_pipeline(drop_site, StandardScaler(), make_learner("lr")),
        "combat": make_pipeline(ComBat("site"), StandardScaler(), make_learner("lr")),
    }
    predictions = cross_validate_models(models, frame, y, folds=5, repeats=1, seed=0).predictions
    before, after = _auc(predictions, "raw"), _auc(predictions, "combat")
    assert after >= before - 0.05, (before, after)
    assert after > 0.75


# --------------------------------------------------------------------------- ComBat numerics


def _reference_combat(Y, sites, C, parametric=True, tol=1e-12):
    """A direct, loop-based port of neuroCombat (pooled variance over n - n_sites degrees of
    freedom, see the ComBat docstring)."""
    levels = sorted(set(sites))
    m = len(levels)
    batch = np.array([[s == level for level in levels] for s in sites], dtype=float)
    design = np.hstack([batch, C])
    B = np.linalg.inv(design.T @ design) @ design.T @ Y
    n = len(Y)
    grand = (batch.sum(axis=0) / n) @ B[:m]
    var = ((Y - design @ B) ** 2).sum(axis=0) / (n - m)
    stand = grand + C @ B[m:]
    Z = (Y - stand) / np.sqrt(var)
    out = np.empty_like(Y)
    for level in levels:
        rows = np.asarray(sites) == level
        z = Z[rows]
        g, d = z.mean(axis=0), z.var(axis=0, ddof=1)
        n_i = rows.sum()
        if parametric:
            g_bar, t2 = g.mean(), g.var(ddof=1)
            mean_d, var_d = d.mean(), d.var(ddof=1)
            a = (2 * var_d + mean_d**2) / var_d
            b = (mean_d * var_d + mean_d**3) / var_d
            g_old, d_old = g.copy(), d.copy()
            for _ in range(10_000):
                g_new = (t2 * n_i * g + d_old * g_bar) / (t2 * n_i + d_old)
                d_new = (0.5 * ((z - g_new) ** 2).sum(axis=0) + b) / (n_i / 2 + a - 1)
                change = max(
                    np.max(np.abs(g_new - g_old) / np.abs(g_old)),
                    np.max(np.abs(d_new - d_old) / d_old),
                )
                g_old, d_old = g_new, d_new
                if change < tol:
                    break
        else:
            g_old, d_old = np.empty_like(g), np.empty_like(d)
            for k in range(len(g)):
                gg, dd = np.delete(g, k), np.delete(d, k)
                sum2 = ((z[:, k][None, :] - gg[:, None]) ** 2).sum(axis=1)
                lh = (2 * np.pi * dd) ** (-n_i / 2) * np.exp(-sum2 / (2 * dd))
                g_old[k], d_old[k] = (gg * lh).sum() / lh.sum(), (dd * lh).sum() / lh.sum()
        out[rows] = (z - g_old) / np.sqrt(d_old) * np.sqrt(var) + stand[rows]
    return out


def _small_example(seed=0, n=45, p=8):
    rng = np.random.default_rng(seed)
    sites = np.array(["s1", "s2", "s3"])[rng.integers(0, 3, n)]
    age = rng.normal(60, 10, n)
    shift = {"s1": 0.0, "s2": 1.0, "s3": -2.0}
    scale = {"s1": 1.0, "s2": 2.0, "s3": 0.7}
    Y = rng.normal(size=(n, p)) * rng.uniform(0.5, 3, p) + rng.normal(0, 5, p)
    Y = np.array([row * scale[s] + shift[s] for row, s in zip(Y, sites, strict=True)])
    Y += 0.05 * (age - 60)[:, None]
    frame = pd.DataFrame(Y, columns=[f"f{j}" for j in range(p)])
    frame.insert(2, "age", age)
    frame["site"] = sites
    return frame, Y, sites, age


@pytest.mark.parametrize("parametric", [True, False])
@pytest.mark.parametrize("with_covariate", [True, False])
def test_combat_matches_a_direct_reimplementation(parametric, with_covariate):
    frame, Y, sites, age = _small_example()
    C = age[:, None] if with_covariate else np.zeros((len(Y), 0))
    expected = _reference_combat(Y, sites, C, parametric=parametric)
    if not with_covariate:
        frame = frame.drop(columns="age")
    combat = ComBat(
        "site",
        covariates=["age"] if with_covariate else None,
        parametric=parametric,
        shrink_location=True,  # neuroCombat's empirical-Bayes location
        tol=1e-12,
    )
    out = combat.fit_transform(frame)
    assert list(combat.get_feature_names_out()) == [c for c in frame.columns if c != "site"]
    if with_covariate:  # the covariate passes through, unchanged
        np.testing.assert_array_equal(out[:, 2], age)
        out = np.delete(out, 2, axis=1)
    np.testing.assert_allclose(out, expected, rtol=1e-8, atol=1e-8)


def test_combat_with_one_site_is_the_identity():
    frame, Y, *_ = _small_example()
    frame["site"] = "only"
    for parametric in (True, False):
        out = ComBat("site", covariates=["age"], parametric=parametric).fit_transform(frame)
        np.testing.assert_allclose(out, frame.drop(columns="site").to_numpy(), atol=1e-10)


def test_combat_aligns_site_moments_and_preserves_a_covariate_effect():
    rng = np.random.default_rng(1)
    n = 600
    site = rng.choice(np.array(["A", "B"]), n)
    age = rng.normal(0, 1, n) + 1.0 * (site == "B")  # B patients are older: confounded
    X = rng.normal(size=(n, 20))
    X[site == "B"] = 3.0 * X[site == "B"] + 4.0
    X += 1.0 * age[:, None]  # the same age effect at both sites (ComBat's model)
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(20)]).assign(age=age, site=site)

    out = ComBat("site", covariates=["age"]).fit_transform(frame)[:, :20]
    b = site == "B"
    design = np.column_stack([np.ones(n), age])
    slopes = np.linalg.lstsq(design, out, rcond=None)[0][1]  # per feature, standard error 0.08
    assert abs(slopes.mean() - 1.0) < 0.05 and np.all(np.abs(slopes - 1.0) < 0.3), slopes
    resid = out - age[:, None]  # the true age effect removed: what is left is site + noise
    assert abs((resid[b].mean(axis=0) - resid[~b].mean(axis=0)).mean()) < 0.1
    ratio = resid[b].var(axis=0) / resid[~b].var(axis=0)
    assert np.all((ratio > 0.75) & (ratio < 1.33)), ratio
    # Without the covariate, B's extra age is taken for a site effect and removed.
    plain = ComBat("site").fit_transform(frame.drop(columns="age")) - age[:, None]
    assert (plain[b].mean(axis=0) - plain[~b].mean(axis=0)).mean() < -0.7


def test_combat_missing_values_use_observed_rows_and_stay_missing():
    frame, *_ = _small_example()
    features = [c for c in frame.columns if c.startswith("f")]
    gaps = frame.copy()
    rows = [0, 5, 9]
    gaps.loc[rows, features] = np.nan  # patients without the modality
    out = ComBat("site").fit_transform(gaps.drop(columns="age"))
    assert np.isnan(out[rows]).all() and not np.isnan(np.delete(out, rows, 0)).any()
    complete = ComBat("site").fit_transform(frame.drop(columns="age").drop(index=rows))
    np.testing.assert_allclose(np.delete(out, rows, 0), complete, rtol=1e-10)
    gaps.loc[[1, 2], features[:3]] = np.nan  # scattered gaps: estimated from observed values
    partial = ComBat("site").fit_transform(gaps.drop(columns="age"))
    np.testing.assert_array_equal(np.isnan(partial), gaps[features].isna().to_numpy())


def test_combat_unseen_site_error_and_pooled_fallback():
    frame, *_ = _small_example()
    train = frame[frame["site"] != "s3"]
    with pytest.raises(ValueError, match="not fitted on site.*'s3'"):
        ComBat("site").fit(train).transform(frame)
    combat = ComBat("site", unseen="pooled").fit(train)
    with pytest.warns(UserWarning, match="'s3' not seen"):
        out = combat.transform(frame)
    new = (frame["site"] == "s3").to_numpy()
    np.testing.assert_array_equal(out[new], frame.drop(columns="site").to_numpy()[new])
    np.testing.assert_allclose(out[~new], combat.transform(train))


def test_combat_site_as_one_hot_columns_and_by_position():
    frame, *_ = _small_example()
    by_name = ComBat("site").fit_transform(frame)
    dummies = pd.get_dummies(frame["site"], prefix="site", drop_first=True, dtype=float)
    one_hot = pd.concat([frame.drop(columns="site"), dummies], axis=1)
    by_dummies = ComBat(list(dummies.columns)).fit_transform(one_hot)
    np.testing.assert_allclose(by_dummies, by_name)
    by_position = ComBat(-1).fit_transform(frame.to_numpy(dtype=object))
    np.testing.assert_allclose(by_position, by_name)


def test_combat_warns_when_a_covariate_is_the_outcome():
    frame, *_ = _small_example()
    y = pd.Series((frame["f0"] > frame["f0"].median()).astype(int), name="outcome")
    leaky = frame.assign(outcome=y.to_numpy())
    with pytest.warns(UserWarning, match="covariate 'outcome' is the outcome"):
        ComBat("site", covariates=["outcome"]).fit(leaky, y)
    renamed = leaky.rename(columns={"outcome": "response"})
    with pytest.warns(UserWarning, match="covariate 'response' is the outcome"):
        ComBat("site", covariates=["response"]).fit(renamed, y.to_numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", ConfoundedSiteWarning)  # f0 carries the site here
        ComBat("site", covariates=["age"]).fit(frame, y)


def test_combat_clone_pickle_and_pandas_output():
    frame, *_ = _small_example()
    combat = ComBat("site", covariates=["age"]).set_output(transform="pandas")
    out = clone(combat).fit(frame).transform(frame)
    assert list(out.columns) == [c for c in frame.columns if c != "site"]
    again = pickle.loads(pickle.dumps(combat.fit(frame)))
    pd.testing.assert_frame_equal(again.transform(frame), out)


# --------------------------------------------------------------------------- filters


def test_correlation_filter_keeps_one_of_a_near_duplicate_pair():
    rng = np.random.default_rng(0)
    a, c = rng.normal(size=(2, 200))
    X = pd.DataFrame({"a": a, "b": 3 * a + 0.01 * rng.normal(size=200), "c": c, "d": np.exp(c)})
    pearson = CorrelationFilter(0.95).fit(X)
    assert list(pearson.get_feature_names_out()) == ["a", "c", "d"]
    assert pearson.representative_.tolist() == [0, 0, 2, 3]
    spearman = CorrelationFilter(0.95, method="spearman").fit(X)  # d is monotone in c
    assert list(spearman.get_feature_names_out()) == ["a", "c"]
    assert list(CorrelationFilter(0.95).fit(X[["b", "a"]]).get_feature_names_out()) == ["b"]


def test_variance_filter_threshold_and_all_constant_fallback():
    X = np.array([[0.0, 1.0, 5.0], [0.0, 2.0, 5.1], [0.0, 3.0, 5.2]])
    assert VarianceFilter().fit(X).get_support().tolist() == [False, True, True]
    assert VarianceFilter(0.1).fit(X).get_support().tolist() == [False, True, False]
    assert VarianceFilter(10.0).fit(X).get_support().all()  # nothing passes: keep all


def test_robustness_filter_matches_full_and_pyradiomics_names(tmp_path):
    table = pd.DataFrame(
        {
            "feature": [
                "CT__tumor__original_glcm_Contrast",
                "original_glcm_Contrast",
                "original_firstorder_Mean",
                "original_firstorder_Mean",
            ],
            "icc": [0.9, 0.2, 0.8, 0.6],  # a repeated name counts with its lowest ICC
        }
    )
    path = tmp_path / "icc.csv"
    table.to_csv(path, index=False)
    X = pd.DataFrame(
        np.ones((3, 5)),
        columns=[
            "CT__tumor__original_glcm_Contrast",
            "PET__tumor__original_glcm_Contrast",
            "CT__tumor__original_firstorder_Mean",
            "CT_original_glcm_Contrast",
            "age",
        ],
    )
    for source in (table, str(path)):
        kept = RobustnessFilter(source, threshold=0.75).fit(X)
        assert list(kept.get_feature_names_out()) == ["CT__tumor__original_glcm_Contrast", "age"]
        np.testing.assert_allclose(kept.icc_, [0.9, 0.2, 0.6, 0.2, np.nan])
    dropped = RobustnessFilter(table, threshold=0.5, missing="drop").fit(X)
    assert list(dropped.get_feature_names_out()) == [
        "CT__tumor__original_glcm_Contrast",
        "CT__tumor__original_firstorder_Mean",
    ]
    with pytest.raises(ValueError, match="keeps no feature"):
        RobustnessFilter(table, threshold=0.95, missing="drop").fit(X)
    assert pyradiomics_name("MR_T2_log-sigma-1-0-mm-3D_glcm_Idm") == "log-sigma-1-0-mm-3D_glcm_Idm"


def _informative(seed=0, n=200, p=50, planted=(3, 7, 11)):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, p))
    for rank, j in enumerate(planted):
        X[:, j] += (2.0 - 0.2 * rank) * y
    return X, y


@pytest.mark.parametrize("method", ["anova", "mrmr"])
@pytest.mark.parametrize("relevance", ["f", "mi"])
def test_select_top_k_finds_the_planted_features(method, relevance):
    if method == "anova" and relevance == "mi":
        pytest.skip("relevance only applies to mRMR")
    X, y = _informative()
    selector = SelectTopK(3, method=method, relevance=relevance).fit(X, y)
    assert sorted(selector.selected_.tolist()) == [3, 7, 11]
    assert SelectTopK(500, method=method).fit(X, y).get_support().all()  # k > p: keep all


def test_mrmr_does_not_pick_two_copies_of_the_same_feature():
    X, y = _informative()
    rng = np.random.default_rng(1)
    copy = X[:, 3] + 0.05 * rng.normal(size=len(X))
    X = np.column_stack([X, copy])
    anova = SelectTopK(2).fit(X, y)
    mrmr = SelectTopK(2, method="mrmr").fit(X, y)
    assert sorted(anova.selected_.tolist()) == [3, 50]  # both copies
    first, second = mrmr.selected_.tolist()
    assert first in (3, 50) and second in (7, 11)  # another informative feature, not the copy
    again = SelectTopK(2, method="mrmr").fit(X, y)
    np.testing.assert_array_equal(again.selected_, mrmr.selected_)


# --------------------------------------------------------------------------- estimator checks

# The estimator checks of every estimator run in tests/test_common.py.


# --------------------------------------------------------------------------- fusion


def _fusion_data(seed=0, n=120):
    frame, y, site = _scanner_data(seed, n=n, p=12)
    features = [c for c in frame.columns if c != "site"]
    frame = frame.rename(columns={c: c.replace("CT__", "PET__") for c in features[1::2]})
    frame["age"] = np.random.default_rng(seed).normal(60, 10, n)
    groups = {
        "CT__tumor": [c for c in frame.columns if c.startswith("CT__")],
        "PET__tumor": [c for c in frame.columns if c.startswith("PET__")],
        "clinical": ["age"],
    }
    return frame, y, groups


@pytest.mark.parametrize("strategy", ["early", "late", "stacking"])
def test_fusion_with_harmonisation_and_selection_is_a_sklearn_estimator(strategy):
    frame, y, groups = _fusion_data()
    model = build_model(
        groups,
        strategy,
        learners=("lr",),
        harmonize="site",
        select_k=5,
        correlation_threshold=0.95,
        cv=3,
    )
    scores = cross_validate(clone(model), frame, y, cv=3, scoring="roc_auc")
    assert scores["test_score"].mean() > 0.7
    fitted = clone(model).fit(frame, y)
    branch = fitted if strategy == "early" else fitted.named_estimators_["CT/tumor:lr"]
    combat = branch.named_steps["columntransformer"].named_transformers_["combat"]
    assert combat.sites_ == ["A", "B"]
    assert branch.named_steps["selecttopk"].k == 5


def test_harmonised_branch_grid_search_set_output_and_clinical_left_alone():
    frame, y, groups = _fusion_data()
    model = build_model(groups, "early", harmonize="site", select_k=5)
    assert model[0].transformers[0][2][-1] == "site"
    assert "age" not in model[0].transformers[0][2]  # clinical columns are not harmonised
    search = GridSearchCV(
        model,
        {
            "selecttopk__k": [2, 5],
            "logisticregression__C": [0.1, 1.0],
            "columntransformer__combat__parametric": [True, False],
        },
        cv=3,
        scoring="roc_auc",
    ).fit(frame, y)
    assert search.best_score_ > 0.7
    steps = clone(model).set_output(transform="pandas")[:-1].fit(frame, y)
    out = steps.transform(frame)
    assert isinstance(out, pd.DataFrame) and out.shape[1] == 5 and "site" not in out.columns


def test_build_models_options_default_off_and_run_through_cross_validation():
    frame, y, groups = _fusion_data()
    plain = build_model(groups, "early")
    assert [name for name, _ in plain.steps] == [
        "columntransformer",
        "simpleimputer",
        "dropconstantfeatures",
        "standardscaler",
        "logisticregression",
    ]
    models = build_models(
        groups,
        learners=("lr",),
        harmonize="site",
        harmonize_unseen="pooled",
        select_k=3,
        select_method="mrmr",
    )
    predictions = cross_validate_models(models, frame, y, folds=3, repeats=1).predictions
    assert set(predictions["model"]) == set(models)
    assert predictions["proba"].notna().all()


def test_run_cv_harmonizes_and_records_the_preprocessing(tmp_path):
    frame, y, _ = _fusion_data(n=80)
    table = frame.assign(outcome=y).rename_axis("patient_id").reset_index()
    path = tmp_path / "features.csv"
    table.to_csv(path, index=False)
    report = run_cv(
        path,
        label="outcome",
        out=tmp_path / "out",
        params=dict(
            learners=("lr",),
            harmonize="site",
            harmonize_unseen="pooled",
            correlation_threshold=0.95,
            select_k=3,
        ),
        strategies=("single", "early", "late"),
        repeats=1,
        n_bootstrap=20,
    )
    assert preprocessing_settings(model_record(report["config"])) == {
        "harmonize": "site",
        "harmonize_unseen": "pooled",
        "icc_table": None,
        "icc_threshold": None,
        "correlation_threshold": 0.95,
        "select_k": 3,
        "select_method": "anova",
    }
    assert (tmp_path / "out" / "report.json").is_file()
