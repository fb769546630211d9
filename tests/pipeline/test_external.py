"""External validation (``radfusion validate``): train on site A, validate on site B."""

import dataclasses
import json
import os
import zipfile

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from radfusion.features.errors import InputError
from radfusion.pipeline.cli import app
from radfusion.pipeline.external import validate_model
from radfusion.pipeline.persistence import (
    card_paths,
    load_model,
    predict_table,
    save_model,
    train_model,
)
from radfusion.pipeline.statistics import calibration_fit

from .two_site import write_two_site_model


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_two_site_model(tmp_path_factory.mktemp("two_site"), n_a=80, n_b=60)


def _validate(cohort, out, **kwargs):
    return validate_model(
        cohort["model"],
        cohort["features_B"],
        biomarkers=cohort["biomarkers_B"],
        out=out,
        n_bootstrap=100,
        **kwargs,
    )


def test_metrics_are_those_of_the_saved_model_on_the_external_patients(cohort, tmp_path):
    report = _validate(cohort, tmp_path / "r")
    predicted = predict_table(
        load_model(cohort["model"]), cohort["features_B"], biomarkers=cohort["biomarkers_B"]
    )
    bio = pd.read_csv(cohort["biomarkers_B"], dtype={"patient_id": str})
    y = (bio.set_index("patient_id").loc[predicted["patient_id"], "outcome"] == "yes").to_numpy()
    proba = predicted["probability"].to_numpy()
    auc = report["metrics"]["roc_auc"]
    assert auc["mean"] == pytest.approx(roc_auc_score(y, proba), abs=1e-6)
    assert auc["ci_low"] < auc["mean"] < auc["ci_high"]
    slope, intercept = calibration_fit(y.astype(int), proba)
    assert report["metrics"]["calibration_slope"]["mean"] == pytest.approx(slope[0], abs=1e-5)
    assert report["metrics"]["calibration_intercept"]["mean"] == pytest.approx(
        intercept[0], abs=1e-5
    )
    recal = report["curves"]["recalibration"]
    assert recal["slope"] == pytest.approx(slope[0], rel=1e-3)  # two fits of one model agree
    assert report["data"] == {
        "task": "binary",
        "label": "outcome",
        "n_patients": 60,
        "n_positive": int(y.sum()),
        "n_negative": int(60 - y.sum()),
    }
    # Table 1 of both cohorts; the training one comes from the model file, not the tables
    assert report["cohorts"]["training"]["columns"][0]["n"] == 80
    assert report["cohorts"]["external"]["columns"][0]["n"] == 60
    assert report["case_mix"]["computed"] is False
    assert "--training-features" in report["case_mix"]["reason"]
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "100 replicates" in report["ci_method"] and "repeats" not in report["ci_method"]
    assert "Not computed" in html and "Training cohort" in html and "<svg" in html
    assert "http://" not in html.replace("http://www.w3.org", "")
    assert {p.name for p in (tmp_path / "r" / "figures").iterdir()} >= {
        "external_roc.svg",
        "external_calibration.png",
        "external_decision_curve.svg",
    }


def test_the_model_file_holds_no_training_patient(cohort):
    with zipfile.ZipFile(cohort["model"]) as archive:
        meta = archive.read("radfusion.json").decode()
    assert json.loads(meta)["training"]["cohort"]["variables"]
    ids = pd.read_csv(cohort["features_A"], dtype={"patient_id": str})["patient_id"]
    assert not any(i in meta for i in ids)


def test_case_mix_tells_other_sites_from_the_same_site(cohort, tmp_path):
    other = _validate(
        cohort,
        tmp_path / "b",
        training_features=cohort["features_A"],
        training_biomarkers=cohort["biomarkers_A"],
    )["case_mix"]
    assert other["computed"] and other["auc"]["mean"] > 0.9  # CT offset + older patients
    assert other["differences"][0]["column"].startswith("CT__tumor__")
    # A random half of site A against the other half: indistinguishable
    features = pd.read_csv(cohort["features_A"], dtype={"patient_id": str})
    bio = pd.read_csv(cohort["biomarkers_A"], dtype={"patient_id": str})
    half = np.random.default_rng(0).permutation(len(features)) < len(features) // 2
    paths = {}
    for name, rows in (("one", half), ("two", ~half)):
        paths[name] = (tmp_path / f"f_{name}.csv", tmp_path / f"b_{name}.csv")
        features[rows].to_csv(paths[name][0], index=False)
        bio[rows].to_csv(paths[name][1], index=False)
    same = validate_model(
        cohort["model"],
        paths["two"][0],
        biomarkers=paths["two"][1],
        training_features=paths["one"][0],
        training_biomarkers=paths["one"][1],
        out=tmp_path / "s",
        n_bootstrap=100,
    )["case_mix"]
    assert same["auc"]["ci_low"] < 0.5 + 0.1 and same["auc"]["mean"] < 0.7


def test_a_model_saved_before_table_1_was_stored_says_so(cohort, tmp_path):
    trained = load_model(cohort["model"])
    old = dataclasses.replace(
        trained, training={k: v for k, v in trained.training.items() if k != "cohort"}
    )
    report = validate_model(
        old, cohort["features_B"], biomarkers=cohort["biomarkers_B"], out=tmp_path / "r"
    )
    assert report["cohorts"]["training"] is None
    assert report["cohorts"]["external"]["columns"][0]["n"] == 60
    assert "retrain it to compare" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")


def test_same_inputs_and_seed_give_the_same_bytes(cohort, tmp_path):
    for name in ("a", "b"):
        _validate(
            cohort,
            tmp_path / name,
            seed=3,
            training_features=cohort["features_A"],
            training_biomarkers=cohort["biomarkers_A"],
        )
    for member in ("report.json", "report.html", "predictions.csv"):
        assert (tmp_path / "a" / member).read_bytes() == (tmp_path / "b" / member).read_bytes()


def test_an_unknown_or_missing_outcome_names_the_patient(cohort, tmp_path):
    bio = pd.read_csv(cohort["biomarkers_B"], dtype={"patient_id": str})
    bio.loc[2, "outcome"] = "maybe"
    bio.loc[5, "outcome"] = None
    path = tmp_path / "bio.csv"
    bio.to_csv(path, index=False)
    with pytest.raises(InputError) as error:
        validate_model(cohort["model"], cohort["features_B"], biomarkers=path, out=tmp_path / "r")
    message = str(error.value)
    assert "B002" in message and "'maybe'" in message and "B005" in message
    assert str(path) in message


def test_an_unseen_external_site_follows_the_models_policy(cohort, tmp_path):
    options = dict(harmonize="site")
    trained = train_model(
        cohort["features_A"],
        label="outcome",
        biomarkers=cohort["biomarkers_A"],
        strategy="early",
        params=options,
    )
    with pytest.warns(UserWarning, match="ComBat: site"):
        report = validate_model(
            trained, cohort["features_B"], biomarkers=cohort["biomarkers_B"], out=tmp_path / "r"
        )
    assert report["data"]["harmonisation"] == {
        "column": "site",
        "policy": "pooled",
        "training_sites": ["A"],
        "external_sites": ["B"],
        "unseen_sites": ["B"],
    }
    assert "unseen in training: policy &#x27;pooled&#x27;" in (
        tmp_path / "r" / "report.html"
    ).read_text(encoding="utf-8")
    strict = train_model(
        cohort["features_A"],
        label="outcome",
        biomarkers=cohort["biomarkers_A"],
        strategy="early",
        params=dict(harmonize="site", harmonize_unseen="error"),
    )
    with pytest.raises(InputError, match="cannot harmonise") as error:
        validate_model(
            strict, cohort["features_B"], biomarkers=cohort["biomarkers_B"], out=tmp_path / "s"
        )
    assert "site 'B'" in str(error.value) and str(cohort["features_B"]) in str(error.value)
    # predict refuses the same way, naming the patients, instead of ComBat's traceback
    with pytest.raises(InputError, match="cannot harmonise") as error:
        predict_table(strict, cohort["features_B"], biomarkers=cohort["biomarkers_B"])
    assert "site 'B'" in str(error.value) and "patient" in str(error.value).lower()


def _with_outcomes(cohort, tmp_path, site):
    """Site ``site``'s biomarkers with a 3-level grade and a continuous score that follow
    the imaging signal (the first CT column)."""
    bio = pd.read_csv(cohort[f"biomarkers_{site}"], dtype={"patient_id": str})
    ct = pd.read_csv(cohort[f"features_{site}"])["CT__tumor__f0"].to_numpy()
    ct = ct - (2.0 if site == "B" else 0.0)  # the site offset, so both sites share one law
    bio["grade"] = np.array(["g1", "g2", "g3"])[np.digitize(ct, [-0.5, 0.5])]
    bio["score"] = 10 + 3 * ct + np.random.default_rng(1).normal(size=len(ct))
    path = tmp_path / f"bio_{site}.csv"
    bio.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(
    ("label", "task", "metric"),
    [("grade", "multiclass", "roc_auc_ovr"), ("score", "regression", "pearson_r")],
)
def test_multiclass_and_regression_models_get_their_metrics(cohort, tmp_path, label, task, metric):
    bio_a, bio_b = _with_outcomes(cohort, tmp_path, "A"), _with_outcomes(cohort, tmp_path, "B")
    trained = train_model(
        cohort["features_A"], label=label, biomarkers=bio_a, strategy="early", task=task
    )
    report = validate_model(
        trained,
        cohort["features_B"],
        biomarkers=bio_b,
        out=tmp_path / "r",
        n_bootstrap=50,
        training_features=cohort["features_A"],
        training_biomarkers=bio_a,
    )
    assert report["data"]["task"] == task and report["curves"] is None
    value = report["metrics"][metric]
    assert value["ci_low"] <= value["mean"] <= value["ci_high"]
    # the imaging law is shared; the CT offset of site B biases R² but not the ranking
    assert value["mean"] > 0.6
    predicted = predict_table(trained, cohort["features_B"], biomarkers=bio_b)
    observed = pd.read_csv(bio_b, dtype={"patient_id": str}).set_index("patient_id")[label]
    observed = observed.loc[predicted["patient_id"]]
    if task == "regression":
        from sklearn.metrics import r2_score

        r2 = r2_score(observed, predicted["predicted"])
        assert report["metrics"]["r2"]["mean"] == pytest.approx(r2, abs=1e-5)
    else:
        accuracy = float(np.mean(observed.to_numpy() == predicted["predicted"].to_numpy()))
        assert report["metrics"]["accuracy"]["mean"] == pytest.approx(accuracy, abs=1e-6)
    assert report["case_mix"]["computed"]
    html = (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    assert "binary models only" in html and "Table 1: training" not in html
    assert not (tmp_path / "r" / "figures" / "external_roc.svg").exists()


def test_a_non_numeric_continuous_outcome_names_the_patient(cohort, tmp_path):
    bio_a, bio_b = _with_outcomes(cohort, tmp_path, "A"), _with_outcomes(cohort, tmp_path, "B")
    trained = train_model(
        cohort["features_A"], label="score", biomarkers=bio_a, strategy="early", task="regression"
    )
    bio = pd.read_csv(bio_b, dtype={"patient_id": str})
    bio["score"] = bio["score"].astype(object)
    bio.loc[4, "score"] = "high"
    bio.to_csv(bio_b, index=False)
    with pytest.raises(InputError) as error:
        validate_model(trained, cohort["features_B"], biomarkers=bio_b, out=tmp_path / "r")
    assert "B004" in str(error.value) and "'high'" in str(error.value)


def test_cli_validate(cohort, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "validate",
            str(cohort["model"]),
            str(cohort["features_B"]),
            "--biomarkers",
            str(cohort["biomarkers_B"]),
            "--training-features",
            str(cohort["features_A"]),
            "--training-biomarkers",
            str(cohort["biomarkers_A"]),
            "--bootstrap",
            "50",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "case-mix AUC" in result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["kind"] == "external_validation" and report["case_mix"]["computed"]
    assert set(report["inputs"]) == {
        "features",
        "biomarkers",
        "training_features",
        "training_biomarkers",
    }


def test_validate_adds_its_results_to_the_model_card(cohort, tmp_path):
    model = tmp_path / "model.skops"
    save_model(load_model(cohort["model"]), model)
    card_json, card_md = card_paths(model)
    report = validate_model(
        model, cohort["features_B"], biomarkers=cohort["biomarkers_B"], out=tmp_path / "r"
    )
    card = json.loads(card_json.read_text(encoding="utf-8"))
    source = f"external: {cohort['features_B']}"
    rows = [r for r in card["quantitative_analysis"]["performance_metrics"] if r["slice"] == source]
    auc = next(r for r in rows if r["type"] == "roc_auc")
    assert auc["value"] == report["metrics"]["roc_auc"]["mean"]
    assert auc["confidence_interval"]["lower_bound"] == report["metrics"]["roc_auc"]["ci_low"]
    assert source in card_md.read_text(encoding="utf-8")
    # The same cohort again (here by another spelling of its path) replaces its entry;
    # another cohort adds one.
    relative = os.path.relpath(cohort["features_B"])
    validate_model(model, relative, biomarkers=cohort["biomarkers_B"], out=tmp_path / "r2")
    source = f"external: {relative}"
    validate_model(
        model, cohort["features_A"], biomarkers=cohort["biomarkers_A"], out=tmp_path / "r3"
    )
    card = json.loads(card_json.read_text(encoding="utf-8"))
    names = [d["name"] for d in card["model_parameters"]["data"]]
    assert names == ["training cohort", source, f"external: {cohort['features_A']}"]
    # A card that cannot be read is a warning: the validation itself is written.
    card_json.write_text("{", encoding="utf-8")
    with pytest.warns(UserWarning, match="model card .* was not updated"):
        validate_model(
            model, cohort["features_B"], biomarkers=cohort["biomarkers_B"], out=tmp_path / "r4"
        )
    assert (tmp_path / "r4" / "report.json").is_file()
