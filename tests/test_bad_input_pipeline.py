"""Bad-input corpus of the modelling commands (cv, train, predict, synth, demo options).

Each case runs the CLI as a user would and asserts the exit code, that the message names the
patient / file / column / option concerned, and that no traceback is printed. The good cases
pin the numbers printed before these checks existed (they must not change).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfusion.pipeline.cli import EXIT_BAD_INPUT, app

runner = CliRunner()

#: One learner, one repeat, one worker.
QUICK = ["--repeats", "1", "--jobs", "1", "--learners", "lr"]
#: Fast model options for the corpus (:data:`QUICK` on three folds).
FAST = [
    "--folds",
    "3",
    *QUICK,
    # The pinned numbers predate the mean default; the logistic meta-learner reproduces them.
    "--combiner",
    "logistic",
    "--strategy",
    "single",
    "--strategy",
    "early",
    "--strategy",
    "late",
    "--strategy",
    "stacking",
    "--no-explain",
]

#: Mean ROC AUCs of FAST on ``cohort_tables(24)`` with ids P001..P024, computed by the code
#: before this corpus existed (commit 15362bb); ids written as 001..024 must give the same.
PINNED_AUC = {
    "CT__tumor": 0.923611,
    "MR__tumor": 0.701389,
    "clinical": 0.8125,
    "early": 0.909722,
    "late": 0.923611,
    "stacking": 0.916667,
}


def cohort_tables(
    n: int = 24, ids: list[str] | None = None, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A feature table (two imaging groups) and a biomarker table (age, sex, outcome)."""
    rng = np.random.default_rng(seed)
    y = np.array([0, 1] * (n // 2))
    ids = ids or [f"P{i:03d}" for i in range(1, n + 1)]
    features = pd.DataFrame(
        {
            "patient_id": ids,
            **{
                f"CT__tumor__original_firstorder_F{j}": rng.normal(size=n) + 0.9 * y
                for j in range(4)
            },
            **{f"MR__tumor__original_glcm_F{j}": rng.normal(size=n) + 0.4 * y for j in range(4)},
        }
    )
    bio = pd.DataFrame(
        {
            "patient_id": ids,
            "age": (60 + 10 * rng.normal(size=n) + 5 * y).round(1),
            "sex": rng.choice(["F", "M"], size=n),
            "outcome": np.where(y == 1, "yes", "no"),
        }
    )
    return features, bio


def _write(tmp_path, features, bio, features_name="features.parquet", bio_name="bio.csv"):
    f, b = tmp_path / features_name, tmp_path / bio_name
    if features_name.endswith(".parquet"):
        features.to_parquet(f, index=False)
    else:
        features.to_csv(f, index=False)
    bio.to_csv(b, index=False)
    return f, b


def _run(*args):
    result = runner.invoke(app, [str(a) for a in args])
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in output
    return result.exit_code, output


def _cv(features, biomarkers, out, *options):
    """``radfusion cv`` of the corpus' tables, outcome ``outcome``; ``(exit code, output)``."""
    return _run(
        "cv", features, "--biomarkers", biomarkers, "--label", "outcome", "--out", out, *options
    )


def _aucs(report_dir):
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    return {name: model["metrics"]["roc_auc"]["mean"] for name, model in report["models"].items()}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """The good cohort on disk and a model trained on it."""
    folder = tmp_path_factory.mktemp("good")
    features, bio = _write(folder, *cohort_tables(24))
    model = folder / "model.skops"
    code, output = _run(
        "train",
        features,
        "--biomarkers",
        bio,
        "--label",
        "outcome",
        "--out",
        model,
        "--strategy",
        "early",
    )
    assert code == 0, output
    return folder, features, bio, model


# ----------------------------------------------------------------------------- good cases


def test_good_case_values_are_unchanged(good, tmp_path):
    _, features, bio, _ = good
    code, output = _run(
        "cv", features, "--biomarkers", bio, "--label", "outcome", "--out", tmp_path / "r", *FAST
    )
    assert code == 0, output
    assert _aucs(tmp_path / "r") == PINNED_AUC
    assert "warning" not in output


def test_ids_with_leading_zeros_join_and_give_the_same_numbers(tmp_path):
    ids = [f"{i:03d}" for i in range(1, 25)]  # sorted as P001..P024: same folds
    features, bio = _write(tmp_path, *cohort_tables(24, ids=ids))
    code, output = _run(
        "cv", features, "--biomarkers", bio, "--label", "outcome", "--out", tmp_path / "r", *FAST
    )
    assert code == 0, output
    assert _aucs(tmp_path / "r") == PINNED_AUC  # the clinical model is not at 0.5
    written = pd.read_csv(tmp_path / "r" / "predictions.csv", dtype=str)
    assert sorted(set(written["patient_id"])) == ids


@pytest.mark.parametrize("out_name", ["predictions.csv", "predictions.parquet"])
def test_predict_writes_ids_exactly_as_given(good, tmp_path, out_name):
    _, _, _, model = good
    ids = ["007", "1e3", "12345678901234567890", "NA", "nan", "P010"]
    features, bio = cohort_tables(6, ids=ids)
    features_path, bio_path = _write(
        tmp_path, features, bio.drop(columns="outcome"), features_name="new.csv"
    )
    code, output = _run(
        "predict", model, features_path, "--biomarkers", bio_path, "--out", tmp_path / out_name
    )
    assert code == 0, output
    if out_name.endswith(".csv"):
        written = pd.read_csv(tmp_path / out_name, dtype=str, keep_default_na=False)
    else:
        written = pd.read_parquet(tmp_path / out_name)
    assert written["patient_id"].tolist() == ids


# ----------------------------------------------------------------------------- patient ids


def test_tables_without_a_common_patient_are_an_error_naming_both_files(tmp_path):
    features, bio = cohort_tables(24, ids=[f"{i:03d}" for i in range(1, 25)])
    bio["patient_id"] = [str(i) for i in range(1, 25)]  # 1 instead of 001
    features_path, bio_path = _write(tmp_path, features, bio)
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == EXIT_BAD_INPUT
    assert "No patient id" in output and str(bio_path) in output and str(features_path) in output
    assert "001" in output and "e.g. 1, 10" in output
    assert not (tmp_path / "r").exists()


def test_patients_in_one_table_only_are_reported_with_count_and_ids(tmp_path):
    features, bio = cohort_tables(24)
    bio = pd.concat([bio.iloc[2:], bio.iloc[:1].assign(patient_id="X999")])  # no P001, P002
    features = features.assign(outcome=cohort_tables(24)[1]["outcome"])
    features_path, bio_path = _write(tmp_path, features, bio.drop(columns="outcome"))
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == 0, output
    assert f"1 patient(s) of {bio_path}" in output and "X999" in output
    assert f"2 patient(s) of {features_path}" in output and "P001, P002" in output


@pytest.mark.parametrize(
    "ids, shown",
    [([7.0, 8.0], "7.0"), (["A", None], "is empty")],
    ids=["float-parquet-ids", "empty-id"],
)
def test_ids_that_are_not_text_are_refused_naming_file_column_and_row(tmp_path, ids, shown):
    features, bio = cohort_tables(24)
    features = features.iloc[:2].assign(patient_id=ids)
    features_path, bio_path = _write(tmp_path, features, bio)
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == EXIT_BAD_INPUT
    assert str(features_path) in output and "'patient_id'" in output and shown in output
    assert "row 1" in output or "row 2" in output


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("where", ["features", "biomarkers"])
def test_infinite_values_name_column_patient_and_file_in_cv(tmp_path, where):
    features, bio = cohort_tables(24)
    if where == "features":
        features.loc[3, "CT__tumor__original_firstorder_F1"] = np.inf
        column, patient = "CT__tumor__original_firstorder_F1", "P004"
    else:
        bio.loc[5, "age"] = -np.inf
        column, patient = "age", "P006"
    features_path, bio_path = _write(tmp_path, features, bio)
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == EXIT_BAD_INPUT
    assert f"'{column}'" in output and patient in output and "inf" in output
    assert str(features_path if where == "features" else bio_path) in output


def test_infinite_values_in_train_and_predict(good, tmp_path):
    _, _, bio_good, model = good
    features, bio = cohort_tables(24)
    features.loc[0, "MR__tumor__original_glcm_F2"] = np.inf
    features_path, bio_path = _write(tmp_path, features, bio, features_name="f.csv")
    code, output = _run(
        "train",
        features_path,
        "--biomarkers",
        bio_path,
        "--label",
        "outcome",
        "--out",
        tmp_path / "m.skops",
        "--strategy",
        "early",
    )
    assert code == EXIT_BAD_INPUT and "'MR__tumor__original_glcm_F2'" in output
    assert "P001" in output and not (tmp_path / "m.skops").exists()
    code, output = _run(
        "predict", model, features_path, "--biomarkers", bio_good, "--out", tmp_path / "p.csv"
    )
    assert code == EXIT_BAD_INPUT and "'MR__tumor__original_glcm_F2'" in output
    assert "P001" in output and str(features_path) in output
    assert not (tmp_path / "p.csv").exists()


def test_labels_differing_by_case_or_spaces_are_one_clear_error(tmp_path):
    features, bio = cohort_tables(24)
    bio["outcome"] = bio["outcome"].str.capitalize()  # Yes / No
    bio.loc[[1, 3], "outcome"] = "yes "
    features_path, bio_path = _write(tmp_path, features, bio)
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == EXIT_BAD_INPUT
    assert "'Yes' (10 patient(s))" in output and "'yes ' (2 patient(s))" in output
    assert str(bio_path) in output and "folds" not in output


def test_a_numeric_biomarker_with_a_typo_names_column_patient_value_and_biomarker_file(tmp_path):
    features, bio = cohort_tables(24)
    bio["age"] = bio["age"].astype(str)
    bio.loc[4, "age"] = "1O.2"
    features_path, bio_path = _write(tmp_path, features, bio)
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == EXIT_BAD_INPUT
    assert "'age'" in output and "P005 '1O.2'" in output and "23 of 24" in output
    assert f"file {bio_path}" in output and f"file {features_path}" not in output


def test_a_text_biomarker_with_too_many_levels_is_reported_against_the_biomarker_file(tmp_path):
    features, bio = cohort_tables(24)
    bio["note"] = [f"note {i}" for i in range(24)]
    features_path, bio_path = _write(tmp_path, features, bio)
    code, output = _cv(features_path, bio_path, tmp_path / "r", *FAST)
    assert code == EXIT_BAD_INPUT
    assert "'note'" in output and f"file {bio_path}" in output
    assert f"file {features_path}" not in output


# ----------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    "args, option",
    [
        (["cv", "{f}", "--label", "outcome", "--out", "{o}", "--folds", "1"], "--folds"),
        (["cv", "{f}", "--label", "outcome", "--out", "{o}", "--repeats", "0"], "--repeats"),
        (["cv", "{f}", "--label", "outcome", "--out", "{o}", "--select-k", "0"], "--select-k"),
        (["cv", "{f}", "--label", "outcome", "--out", "{o}", "-j", "0"], "--jobs"),
        (
            ["cv", "{f}", "--label", "outcome", "--out", "{o}", "--correlation-threshold", "2"],
            "--correlation-threshold",
        ),
        (["cv", "{f}", "--label", "outcome", "--out", "{o}", "--n-iter", "0"], "--n-iter"),
        (
            [
                "cv",
                "{f}",
                "--biomarkers",
                "{b}",
                "--label",
                "outcome",
                "--out",
                "{o}",
                "--select-k",
                "3",
                "--select-method",
                "lasso",
            ],
            "--select-method must be a str among {'anova', 'mrmr'}. Got 'lasso'",
        ),
        (["train", "{f}", "--label", "outcome", "--out", "{o}", "--seed", "-1"], "--seed"),
        (["synth", "--out", "{o}", "--patients", "0"], "--patients"),
        (["synth", "--out", "{o}", "--missing-mr", "1.5"], "--missing-mr"),
        (["demo", "--out", "{o}", "--folds", "1"], "--folds"),
    ],
    ids=[
        "cv-folds",
        "cv-repeats",
        "cv-select-k",
        "cv-jobs",
        "cv-correlation",
        "cv-n-iter",
        "cv-select-method",
        "train-seed",
        "synth-patients",
        "synth-missing-mr",
        "demo-folds",
    ],
)
def test_bad_option_values_are_one_usage_error(good, tmp_path, args, option):
    _, features, bio, _ = good
    out = tmp_path / "out"
    code, output = _run(*[a.format(f=features, b=bio, o=out) for a in args])
    assert code == EXIT_BAD_INPUT
    assert option in output
    assert not out.exists()


# ----------------------------------------------------------------------------- small cohorts


def test_cv_on_12_patients_with_default_folds_fits_stacking(tmp_path):
    # default 5 outer folds leave 4-5 patients per class: stacking's inner 5 folds must adapt
    # (the SVM's calibration folds adapt the same way: tests/pipeline/test_splits.py)
    features, bio = _write(tmp_path, *cohort_tables(12))
    code, output = _cv(
        features,
        bio,
        tmp_path / "r",
        *QUICK,
        "--strategy",
        "late",
        "--strategy",
        "stacking",
        "--no-explain",
    )
    assert code == 0, output
    assert set(_aucs(tmp_path / "r")) == {"late", "stacking"}
    assert "skipped" not in output


def test_cv_on_8_patients_with_2_folds_skips_stacking_with_a_reason(tmp_path):
    features, bio = _write(tmp_path, *cohort_tables(8))
    # A learned combiner needs inner folds that 4 training patients cannot give (the default
    # mean needs none, so stacking would fit).
    options = ["--folds", "2", "--repeats", "1", "--jobs", "1", "--no-explain"]
    options += ["--strategy", "late", "--strategy", "stacking", "--combiner", "logistic"]
    code, output = _cv(features, bio, tmp_path / "r", *options)
    assert code == 0, output
    assert "model 'stacking' skipped" in output and "4 training patients" in output
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert "stacking" not in report["models"] and "late" in report["models"]
    assert "4 training patients" in report["config"]["skipped_models"]["stacking"]


def test_cv_on_8_patients_with_5_folds_says_how_many_folds_fit(tmp_path):
    features, bio = _write(tmp_path, *cohort_tables(8))
    code, output = _cv(features, bio, tmp_path / "r", "--jobs", "1")
    assert code == EXIT_BAD_INPUT
    assert "only 4 patient(s)" in output and "--folds 4 or fewer" in output


# ----------------------------------------------------------------------------- model files


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[: len(data) * 2 // 3], "damaged or truncated"),
        (lambda data: b"patient_id,x\n1,2\n", "Not a radfusion model file"),
    ],
    ids=["truncated", "not-a-model"],
)
def test_damaged_model_files_are_named_and_described(good, tmp_path, damage, message):
    _, features, bio, model = good
    broken = tmp_path / "model.skops"
    broken.write_bytes(damage(model.read_bytes()))
    code, output = _run(
        "predict", broken, features, "--biomarkers", bio, "--out", tmp_path / "p.csv"
    )
    assert code == EXIT_BAD_INPUT
    assert message in output and str(broken) in output


# ----------------------------------------------------------------------------- output over input
def _over_input(folder, features, bio, model, command):
    """(arguments, words of the refusal, the input that must stay as it was)."""
    if command == "cv":  # a feature table named like a report file, inside the report folder
        report = folder / "report"
        report.mkdir()
        table = report / "predictions.csv"
        pd.read_parquet(features).to_csv(table, index=False)
        args = ["cv", table, "--biomarkers", bio, "--label", "outcome", "--out", report, *FAST]
        words = f"the run also writes {table}, which would replace the feature table"
        return args, words, table
    if command == "train":
        args = ["train", features, "--biomarkers", bio, "--label", "outcome", "--out", bio]
        return args, "it would replace the biomarker table of this run", bio
    if command == "predict":
        args = ["predict", model, features, "--out", folder / "features.parquet"]
        return args, "it would replace the feature table of this run", features
    report = folder / "external"  # validate: the training table where the report goes
    report.mkdir()
    training = report / "report.json"
    training.write_bytes(features.read_bytes())
    args = ["validate", model, features, "--biomarkers", bio, "--out", report]
    args += ["--training-features", training]
    words = f"the run also writes {training}, which would replace the training feature table"
    return args, words, training


@pytest.mark.parametrize("command", ["cv", "train", "predict", "validate"])
def test_an_output_that_is_an_input_is_refused_before_any_work(good, tmp_path, command):
    """``predict model.skops features.parquet --out features.parquet`` replaced the features
    with the predictions; each modelling command refuses it, naming what it would replace."""
    _, features, bio, model = good
    for path in (features, bio, model):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    features, bio, model = (tmp_path / p.name for p in (features, bio, model))
    args, words, kept = _over_input(tmp_path, features, bio, model, command)
    before = kept.read_bytes()
    code, output = _run(*args)
    assert code == EXIT_BAD_INPUT, output
    assert "Cannot write" in output and words in " ".join(output.split()), output
    assert kept.read_bytes() == before
