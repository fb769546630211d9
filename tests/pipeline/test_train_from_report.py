"""The model you validate is the model you ship: cv → train --from-report → predict."""

from __future__ import annotations

import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfusion.features.errors import InputError
from radfusion.features.files import file_digest
from radfusion.pipeline.cli import app
from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.fusion import make_estimator
from radfusion.pipeline.persistence import (
    CARD_SCHEMA_VERSION,
    TrainedModel,
    TrainingDataWarning,
    card_paths,
    cross_validation_summary,
    load_model,
    model_card,
    predict_table,
    save_model,
    train_from_report,
    train_model,
)
from radfusion.pipeline.report import jsonable
from tests.pipeline.conftest import multimodal_table

OPTIONS = [
    "--harmonize",
    "site",
    "--correlation-threshold",
    "0.9",
    "--select-k",
    "3",
    "--tune",
    "--n-iter",
    "2",
]


@pytest.fixture(scope="module")
def validated(tmp_path_factory):
    """A cv run with harmonisation, correlation filter, selection and tuning."""
    folder = tmp_path_factory.mktemp("validated")
    X, y, _ = multimodal_table(n=90, seed=2, missing_mr=0.0, p=5, k=2)
    table = X.rename_axis("patient_id").reset_index()
    table["site"] = np.where(np.arange(len(table)) % 3 == 0, "A", "B")
    table["outcome"] = np.where(y == 1, "yes", "no")
    features = folder / "features.csv"
    table.to_csv(features, index=False)
    result = CliRunner().invoke(
        app,
        [
            "cv",
            str(features),
            "--label",
            "outcome",
            "--out",
            str(folder / "report"),
            "--strategy",
            "early",
            "--strategy",
            "stacking",
            "--primary",
            "stacking",  # the report's headline: what train --from-report fits by default
            "--learners",
            "lr",
            "--folds",
            "3",
            "--repeats",
            "1",
            "--no-explain",
            "-j",
            "1",
            *OPTIONS,
        ],
    )
    assert result.exit_code == 0, result.output
    return features, folder / "report" / "report.json"


def test_train_from_report_saves_the_validated_configuration(validated, tmp_path):
    features, report_path = validated
    model_path = tmp_path / "model.skops"
    result = CliRunner().invoke(
        app, ["train", str(features), "--from-report", str(report_path), "--out", str(model_path)]
    )
    assert result.exit_code == 0, result.output
    config = json.loads(report_path.read_text(encoding="utf-8"))["config"]
    trained = load_model(model_path)
    # The saved estimator's parameters are the ones the report validated, one by one.
    assert trained.settings["strategy"] == "stacking"
    assert trained.settings["params"] == config["models"]["stacking"]
    assert jsonable(trained.estimator.get_params(deep=False)) == config["models"]["stacking"]
    params = config["models"]["stacking"]
    assert params["learners"] == ["lr"]
    assert params["harmonize"] == "site" and params["select_k"] == 3
    assert params["correlation_threshold"] == 0.9 and params["tune"] is True
    assert params["n_iter"] == 2
    # config.models is the one record of a model: no other copy of its options
    assert {"options", "preprocessing", "learner", "stacking_learners"}.isdisjoint(config)
    assert trained.settings["task"] == config["task"] and trained.label == config["label"]
    # The saved model predicts the training table exactly as the in-memory one does.
    in_memory = train_from_report(report_path, features)
    data = load_dataset(features, label="outcome", harmonize="site")
    expected = in_memory.estimator.predict_proba(data.table)[:, 1]
    predicted = predict_table(trained, features).set_index("patient_id")["probability"]
    np.testing.assert_allclose(predicted.loc[data.X.index].to_numpy(), expected, rtol=0, atol=1e-12)


def test_cv_validates_the_estimators_the_report_records(validated):
    _, report_path = validated
    report = json.loads(report_path.read_text(encoding="utf-8"))
    models = report["config"]["models"]
    assert list(models) == list(report["models"]) == ["early", "stacking"]
    assert {params["strategy"] for params in models.values()} == {"early", "stacking"}
    assert make_estimator(**models["early"]).get_params(deep=False)["select_k"] == 3


def test_the_harmonised_model_needs_the_site_at_predict(validated, tmp_path):
    features, report_path = validated
    trained = train_from_report(report_path, features, strategy="early")
    table = pd.read_csv(features, dtype={"patient_id": str})
    with pytest.raises(InputError, match="no 'site' column"):
        predict_table(trained, table.drop(columns="site"))


def test_a_strategy_the_report_did_not_validate_is_refused(validated):
    features, report_path = validated
    with pytest.raises(InputError, match="'late' is not among its fused models"):
        train_from_report(report_path, features, strategy="late")


def test_other_tables_than_the_validated_ones_are_flagged(validated, tmp_path):
    features, report_path = validated
    other = tmp_path / "other.csv"
    pd.read_csv(features, dtype={"patient_id": str}).iloc[:-3].to_csv(other, index=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_from_report(report_path, other, strategy="early")
    assert any(issubclass(w.category, TrainingDataWarning) for w in caught)


def test_train_takes_the_same_model_options_as_cv(validated, tmp_path):
    features, _ = validated
    result = CliRunner().invoke(
        app,
        [
            "train",
            str(features),
            "--label",
            "outcome",
            "--strategy",
            "early",
            "--out",
            str(tmp_path / "m.skops"),
            *OPTIONS,
        ],
    )
    assert result.exit_code == 0, result.output
    params = load_model(tmp_path / "m.skops").settings["params"]
    assert params["harmonize"] == "site" and params["select_k"] == 3
    assert params["correlation_threshold"] == 0.9 and params["tune"] is True


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m.update(select_kk=3), r"config\.models\.stacking\.select_kk: not a parameter"),
        (lambda m: m.pop("learner"), r"config\.models\.stacking\.learner is missing"),
        (lambda m: m.update(select_k="ten"), r"'select_k' parameter .* Got 'ten'"),
        (lambda m: m.update(learner="lrr"), r"'learner' parameter .* Got 'lrr'"),
    ],
    ids=["unknown", "missing", "mistyped", "misspelt-value"],
)
def test_a_hand_edited_model_record_is_refused_naming_the_parameter(
    validated, tmp_path, edit, message
):
    """A report edited by hand never trains a model other than the one it records: an unknown,
    missing or mistyped parameter is an error naming it (not a scikit-learn traceback, not a
    silent default)."""
    features, report_path = validated
    report = json.loads(report_path.read_text(encoding="utf-8"))
    edit(report["config"]["models"]["stacking"])
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        train_from_report(edited, features, strategy="stacking")


def test_a_model_record_that_is_not_a_mapping_is_refused(validated, tmp_path):
    features, report_path = validated
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report["config"]["models"]["stacking"] = [1]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(InputError, match="config.models.stacking is not a mapping") as error:
        train_from_report(edited, features, strategy="stacking")
    assert str(edited) in str(error.value)


#: The top-level sections of the Model Card Toolkit's JSON schema 0.0.2 (its only
#: ``additionalProperties: false`` object) and the fields of a performance metric.
CARD_SECTIONS = {
    "schema_version",
    "model_details",
    "model_parameters",
    "quantitative_analysis",
    "considerations",
}


def test_the_saved_model_has_a_card_whose_numbers_are_the_reports(validated, tmp_path):
    features, report_path = validated
    report = json.loads(report_path.read_text(encoding="utf-8"))
    model_path = tmp_path / "model.skops"
    save_model(train_from_report(report_path, features), model_path)
    card_json, card_md = card_paths(model_path)
    card = json.loads(card_json.read_text(encoding="utf-8"))
    assert set(card) == CARD_SECTIONS and card["schema_version"] == CARD_SCHEMA_VERSION
    assert not list(tmp_path.glob(".*journal"))  # the set landed: no journal left
    # Every performance number is the report's own, with its CI, never retyped.
    metrics = report["models"]["stacking"]["metrics"]
    rows = card["quantitative_analysis"]["performance_metrics"]
    assert {row["type"] for row in rows} == {m for m, v in metrics.items() if v["mean"] is not None}
    for row in rows:
        assert set(row) <= {"type", "value", "slice", "confidence_interval"}
        assert row["slice"] == "cross-validation (3 folds x 1 repeats)"
        assert row["value"] == metrics[row["type"]]["mean"]
        assert row["confidence_interval"] == {
            "lower_bound": metrics[row["type"]]["ci_low"],
            "upper_bound": metrics[row["type"]]["ci_high"],
        }
    limitations = [item["description"] for item in card["considerations"]["limitations"]]
    assert all(text in limitations for text in report["evaluability"]["sentences"])
    assert load_model(model_path).training["cross_validation"]["report_sha256"] == file_digest(
        report_path
    )
    markdown = card_md.read_text(encoding="utf-8")
    auc = metrics["roc_auc"]
    assert f"| roc_auc | {auc['mean']:.3f} | [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}] |" in (
        markdown
    )
    # Same model, same card bytes.
    again = tmp_path / "again.skops"
    save_model(train_from_report(report_path, features), again)
    assert card_paths(again)[0].read_bytes() == card_json.read_bytes()


def test_a_model_trained_without_a_report_has_a_card_that_says_so(validated, tmp_path):
    features, _ = validated
    model_path = tmp_path / "plain.skops"
    save_model(train_model(features, label="outcome", params={"learners": ["lr"]}), model_path)
    card = json.loads(card_paths(model_path)[0].read_text(encoding="utf-8"))
    assert card["quantitative_analysis"]["performance_metrics"] == []
    assert "no performance estimate" in card["considerations"]["limitations"][0]["description"]
    assert card["model_details"]["name"] == "radfusion pooled model of outcome"


def test_the_card_keeps_the_held_out_sites_of_a_leave_one_site_out_report():
    rows = [
        {
            "group": "A",
            "n": 30,
            "events": 12,
            "roc_auc": {"mean": 0.7, "ci_low": 0.5, "ci_high": 0.9},
        },
        {"group": "B", "n": 25, "events": 9, "roc_auc": None, "note": "one class"},
    ]
    report = {
        "config": {"group_by": "site", "folds": 2, "repeats": 1},
        "seed": 0,
        "models": {
            "pooled": {"metrics": {"roc_auc": {"mean": 0.6, "ci_low": 0.5, "ci_high": 0.7}}}
        },
        "groups": {"column": "site", "method": "...", "models": {"pooled": rows}},
    }
    summary = cross_validation_summary(report, "pooled", None)
    assert summary["groups"] == rows and summary["report_sha256"] is None
    trained = dataclasses.replace(
        _plain_model(), training={"n_patients": 55, "cross_validation": summary}
    )
    card = model_card(trained)
    slices = {r["slice"]: r["value"] for r in card["quantitative_analysis"]["performance_metrics"]}
    assert slices == {"cross-validation (leave one site out)": 0.6, "held-out site A (n = 30)": 0.7}
    assert "given in memory" in card["model_details"]["documentation"]


def _plain_model():
    return TrainedModel(
        estimator=None,
        label="outcome",
        classes=["no", "yes"],
        id_column="patient_id",
        columns=["CT__tumor__a"],
        groups={"CT__tumor": ["CT__tumor__a"]},
        settings={"strategy": "pooled", "task": "binary", "params": {"combiner": "mean"}},
        versions={"radfusion": "0"},
    )


def test_train_from_report_defaults_to_the_headline_then_the_task_default(validated):
    features, report_path = validated
    report = json.loads(report_path.read_text(encoding="utf-8"))
    # a headline that is a single group (or none, an older report) is not a fused model
    for primary in ({"model": "CT__tumor", "declared": "--primary"}, None):
        report["primary"] = primary
        trained = train_from_report(report, features)
        assert trained.settings["strategy"] == "stacking"  # pooled was not compared
    assert (
        "averaged with equal weights"
        in model_card(_plain_model())["model_parameters"]["model_architecture"]
    )
