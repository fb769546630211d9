"""FusionClassifier / FusionRegressor: one scikit-learn estimator holds the whole configuration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_predict
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.features.errors import InputError
from radfusion.pipeline.fusion import FusionClassifier, FusionRegressor, build_model
from radfusion.pipeline.preprocessing import CategoricalEncoder, level_sets
from tests.pipeline.conftest import multimodal_table

FAST = {"learners": ("lr",)}


def patient_table(n=120, seed=0):
    """Imaging groups plus raw clinical columns: a number, a text category, a boolean."""
    X, y, _ = multimodal_table(n=n, seed=seed, missing_mr=0.2, p=4, k=2)
    rng = np.random.default_rng(seed)
    X["age"] = rng.normal(60, 10, n).round()
    X["stage"] = rng.choice(["I", "II", "III"], n)
    X.loc[X.index[:5], "stage"] = None
    X["smoker"] = rng.random(n) < 0.3
    return X, np.where(y == 1, "relapse", "none")


def test_groups_and_categories_are_learned_inside_fit():
    X, y = patient_table()
    model = FusionClassifier("late", **FAST).fit(X, y)
    assert list(model.groups_) == ["CT__tumor", "MR__tumor", "PET__tumor", "clinical"]
    assert model.groups_["clinical"] == ["age", "smoker", "stage_II", "stage_III"]
    assert model.encoder_.levels_ == {"stage": ["I", "II", "III"]}
    assert list(model.classes_) == ["none", "relapse"] and model.task_ == "binary"
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(model.predict(X)) <= {"none", "relapse"}


@pytest.mark.parametrize("strategy", ["early", "late", "stacking", "shared"])
def test_same_predictions_as_the_model_built_on_the_encoded_table(strategy):
    """The estimator is build_model behind the encoder: nothing numeric changes."""
    X, y = patient_table()
    model = FusionClassifier(strategy, categories=level_sets(X), **FAST).fit(X, y)
    encoded = CategoricalEncoder(level_sets(X)).fit(X).transform(X)
    codes = (y == "relapse").astype(int)
    reference = build_model(model.groups_, strategy, learners=FAST["learners"]).fit(encoded, codes)
    np.testing.assert_array_equal(model.predict_proba(X), reference.predict_proba(encoded))


def test_unseen_level_at_predict_is_an_error_naming_patient_and_column():
    X, y = patient_table()
    model = FusionClassifier("early").fit(X, y)
    new = X.iloc[:3].copy()
    new.loc[new.index[1], "stage"] = "IV"
    with pytest.raises(InputError, match="Unknown category levels") as raised:
        model.predict_proba(new)
    message = str(raised.value)
    assert f"patient {new.index[1]}" in message and "'stage'" in message and "'IV'" in message


def test_a_missing_column_at_predict_is_named():
    X, y = patient_table()
    model = FusionClassifier("early").fit(X, y)
    with pytest.raises(InputError, match="age"):
        model.predict_proba(X.drop(columns="age"))


def test_columns_are_matched_by_name_not_position():
    X, y = patient_table()
    model = FusionClassifier("late", **FAST).fit(X, y)
    shuffled = X[X.columns[::-1]]
    np.testing.assert_array_equal(model.predict_proba(shuffled), model.predict_proba(X))


def test_groups_given_by_raw_column_names():
    X, y = patient_table()
    groups = {"imaging": [c for c in X if "__" in c], "clinical": ["age", "stage", "smoker"]}
    model = FusionClassifier("late", groups=groups, **FAST).fit(X, y)
    assert model.groups_["clinical"] == ["age", "stage_II", "stage_III", "smoker"]
    with pytest.raises(InputError, match="'weight' is not in the table"):
        FusionClassifier("late", groups={"clinical": ["weight"]}).fit(X, y)


def test_get_params_is_the_configuration_and_clone_keeps_it():
    model = FusionClassifier(
        "stacking", select_k=5, correlation_threshold=0.9, tune=True, random_state=3
    )
    params = model.get_params()
    assert params["select_k"] == 5 and params["tune"] is True and params["random_state"] == 3
    assert clone(model).get_params() == params
    rebuilt = FusionClassifier(**params)
    assert rebuilt.get_params() == params


def test_inside_a_users_pipeline_searched_over_strategy():
    """A user's own scaler in front (pandas output keeps the column names, so the groups are
    found), and GridSearchCV choosing the strategy by inner CV."""
    X, y = patient_table(n=90)
    numeric = X.drop(columns=["stage", "smoker"])
    pipe = Pipeline([("scale", StandardScaler()), ("fusion", FusionClassifier(**FAST))]).set_output(
        transform="pandas"
    )
    search = GridSearchCV(
        pipe,
        {"fusion__strategy": ["early", "late"]},
        scoring="roc_auc",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )
    search.fit(numeric, y)
    assert search.best_params_["fusion__strategy"] in ("early", "late")
    fitted = search.best_estimator_.named_steps["fusion"]
    assert list(fitted.groups_) == ["CT__tumor", "MR__tumor", "PET__tumor", "clinical"]
    assert search.predict_proba(numeric).shape == (len(numeric), 2)


def test_harmonize_keeps_the_site_column_out_of_the_features():
    X, y = patient_table()
    X["site"] = np.where(np.arange(len(X)) % 2, "A", "B")
    model = FusionClassifier("early", harmonize="site", harmonize_unseen="pooled").fit(X, y)
    assert all("site" not in columns for columns in model.groups_.values())
    assert model.predict_proba(X).shape == (len(X), 2)


def test_permuted_labels_give_chance_auc():
    """No leakage through the encoder or the groups: out-of-fold AUC on permuted labels ≈ 0.5
    (mean over five permutations; one permutation's AUC has an SD of about 0.05 here)."""
    from sklearn.metrics import roc_auc_score

    X, y = patient_table(n=150, seed=1)
    aucs = []
    for seed in range(5):
        permuted = np.random.default_rng(seed).permutation(y)
        proba = cross_val_predict(
            FusionClassifier("late", **FAST),
            X,
            permuted,
            cv=StratifiedKFold(5, shuffle=True, random_state=seed),
            method="predict_proba",
        )[:, 1]
        aucs.append(roc_auc_score(permuted == "relapse", proba))
    assert abs(np.mean(aucs) - 0.5) < 0.1, aucs


def test_multiclass_and_regression():
    X, y = patient_table()
    three = np.where(X["CT__tumor__f0"] > 1, "high", np.where(y == "relapse", "mid", "low"))
    model = FusionClassifier("late", **FAST).fit(X, three)
    assert model.task_ == "multiclass" and model.predict_proba(X).shape == (len(X), 3)
    target = X["CT__tumor__f0"].to_numpy() + np.random.default_rng(0).normal(size=len(X))
    regressor = FusionRegressor("late", **FAST).fit(X.drop(columns="CT__tumor__f0"), target)
    assert regressor.task_ == "regression"
    assert regressor.predict(X.drop(columns="CT__tumor__f0")).shape == (len(X),)


def test_a_single_class_is_refused():
    X, _ = patient_table(n=30)
    with pytest.raises(ValueError, match="at least two classes"):
        FusionClassifier("early").fit(X, np.zeros(len(X)))


def test_encoder_output_order_matches_load_dataset():
    """Numbers first in table order, then each text column's indicators (first level dropped)."""
    table = pd.DataFrame(
        {
            "sex": ["F", "M", None],
            "age": [50, 60, 70],
            "stage": ["II", "I", "III"],
            "flag": [True, False, True],
        }
    )
    encoded = CategoricalEncoder().fit(table).transform(table)
    assert list(encoded.columns) == ["age", "flag", "sex_M", "stage_II", "stage_III"]
    assert np.isnan(encoded.loc[2, "sex_M"]) and encoded["flag"].tolist() == [1.0, 0.0, 1.0]


# ----------------------------------------------------------------------------- learners


def test_a_grid_search_reaches_a_learners_hyperparameter():
    from sklearn.linear_model import LogisticRegression

    X, y = patient_table(n=90, seed=3)
    model = FusionClassifier("late", learner=LogisticRegression(C=1.0, max_iter=1000))
    assert model.get_params(deep=True)["learner__C"] == 1.0
    search = GridSearchCV(
        model, {"learner__C": [1e-4, 1.0]}, cv=StratifiedKFold(3), scoring="roc_auc"
    ).fit(X, y)
    assert search.best_params_ == {"learner__C": 1.0}  # C=1e-4 flattens every branch
    fitted = search.best_estimator_
    branch = fitted.model_.named_estimators_["CT/tumor:logisticregression"]
    assert branch[-1].C == 1.0 and fitted.learner is not model.learner  # cloned, not shared


def test_learners_are_names_estimators_or_labelled_pairs():
    from sklearn.ensemble import RandomForestClassifier

    X, y = patient_table(n=90, seed=4)
    forest = RandomForestClassifier(n_estimators=15, random_state=0)
    model = FusionClassifier("stacking", learners=("lr", ("forest", forest)), combiner="mean")
    params = model.get_params(deep=True)
    assert params["forest"] is forest and params["forest__n_estimators"] == 15
    model.set_params(forest__max_depth=2)
    assert forest.max_depth == 2 and clone(model).get_params()["forest__max_depth"] == 2
    names = [name for name, _ in model.fit(X, y).model_.estimators]
    assert names[:2] == ["CT/tumor:lr", "CT/tumor:forest"]
    with pytest.raises(InputError, match="distinct and not empty"):
        FusionClassifier(learners=("lr", ("lr", forest))).fit(X, y)
    with pytest.raises(InputError, match="clash with parameters"):
        FusionClassifier(learners=(("cv", forest),)).fit(X, y)
    with pytest.raises(InputError, match="tune it with GridSearchCV"):
        FusionClassifier("early", learner=forest, tune=True).fit(X, y)


def test_a_learner_given_as_an_estimator_is_recorded_and_rebuilt_from_the_report(tmp_path):
    import json

    from sklearn.linear_model import LogisticRegression

    from radfusion.pipeline.experiment import run_cv
    from radfusion.pipeline.persistence import train_from_report

    X, y = patient_table(n=60, seed=5)
    path = tmp_path / "table.csv"
    X.assign(outcome=y).rename_axis("patient_id").reset_index().to_csv(path, index=False)
    learner = LogisticRegression(C=0.5, max_iter=500)
    run_cv(
        path,
        label="outcome",
        out=tmp_path / "report",
        params={"learner": learner},
        strategies=("early",),
        folds=3,
        repeats=1,
        n_bootstrap=0,
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    recorded = report["config"]["models"]["early"]["learner"]
    assert recorded["estimator"].endswith("LogisticRegression")
    assert recorded["params"]["C"] == 0.5
    methods = report["methods"]["learners"]["logisticregression"]
    assert methods == {"estimator": "LogisticRegression", "params": recorded["params"]}
    trained = train_from_report(tmp_path / "report" / "report.json", path)
    rebuilt = trained.estimator.learner
    assert isinstance(rebuilt, LogisticRegression) and rebuilt.get_params() == learner.get_params()
    tampered = json.loads(json.dumps(report))
    tampered["config"]["models"]["early"]["learner"]["estimator"] = "os.system"
    with pytest.raises(InputError, match="does not rebuild"):
        train_from_report(tampered, path)
