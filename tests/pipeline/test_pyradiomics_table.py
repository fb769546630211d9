"""Tables written by the ``pyradiomics`` command line, used as they are by cv / train / predict.

Every table here is a genuine ``pyradiomics`` CLI output: of the shared reference cases, and of
tiny synthetic CT + PET cases written in the test (several rows per patient).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from typer.testing import CliRunner

from radfusion.features.errors import InputError
from radfusion.pipeline.cli import EXIT_BAD_INPUT, app
from radfusion.pipeline.columns import is_pyradiomics_feature
from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.persistence import predict_table, train_model
from radfusion.pipeline.pyradiomics_table import (
    PyradiomicsColumnsWarning,
    is_pyradiomics_table,
)
from tests.conftest import shared_data

runner = CliRunner()
PARAMS = """\
imageType:
  Original: {}
featureClass:
  firstorder:
  shape:
setting:
  binWidth: 25
  label: 1
"""


def pyradiomics_cli(batch: Path, params: Path, out: Path) -> pd.DataFrame:
    """Run the ``pyradiomics`` command installed with radfusion; return its output table."""
    command = shutil.which("pyradiomics", path=str(Path(sys.executable).parent))
    if command is None:
        pytest.skip("the pyradiomics command is not installed beside this Python")
    subprocess.run(
        [command, str(batch), "-p", str(params), "-o", str(out), "-f", "csv", "-j", "1"],
        check=True,
        capture_output=True,
    )
    return pd.read_csv(out, dtype={"ID": str})


@pytest.fixture(scope="module")
def reference_table(tmp_path_factory):
    """pyradiomics' own batch example (5 reference cases) through its own command line."""
    batch = shared_data("pyradiomics", "examples", "testCases.csv")
    folder = tmp_path_factory.mktemp("pyradiomics_cli")
    params = folder / "params.yaml"
    params.write_text(PARAMS, encoding="utf-8")
    out = folder / "features.csv"
    raw = pyradiomics_cli(batch, params, out)
    bio = pd.DataFrame(
        {
            "patient_id": ["brain1", "brain2", "breast1", "lung1", "lung2"],
            "age": [61, 55, 48, 70, 66],
            "outcome": [1, 0, 0, 1, 1],
        }
    )
    bio.to_csv(folder / "biomarkers.csv", index=False)
    return out, folder / "biomarkers.csv", raw


def test_reference_cli_table_gives_groups_columns_and_settings(reference_table, tmp_path):
    out, bio, raw = reference_table
    assert is_pyradiomics_table(raw.columns)
    features = [c for c in raw.columns if is_pyradiomics_feature(c)]
    assert {"Image", "Mask", "diagnostics_Image-original_Mean"} <= set(raw.columns)
    # ID in the features, patient_id in the biomarkers: joined without options.
    result = runner.invoke(
        app,
        [
            "cv",
            str(out),
            "--biomarkers",
            str(bio),
            "--label",
            "outcome",
            "--out",
            str(tmp_path / "report"),
            "--folds",
            "2",
            "--repeats",
            "1",
            "--strategy",
            "single",
            "--strategy",
            "early",
            "--jobs",
            "1",
            "--no-explain",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    # One modality x mask (every row: image file <id>_image, mask file <id>_label) + clinical.
    assert report["data"]["groups"] == {"image__label": len(features), "clinical": 1}
    assert report["config"]["id_column"] == "ID"
    assert report["config"]["biomarkers_id_column"] == "patient_id"
    data = load_dataset(out, label="outcome", biomarkers=bio)
    assert set(data.X.columns) == {f"image__label__{f}" for f in features} | {"age"}
    assert not [c for c in data.X.columns if "diagnostics" in c or c in ("Label", "Image")]
    assert list(data.X.index) == sorted(raw["ID"])
    np.testing.assert_allclose(
        data.X.loc[raw["ID"], "image__label__original_firstorder_Mean"],
        raw["original_firstorder_Mean"],
    )
    # The settings pyradiomics recorded reach the methods text; the count adds up.
    text = " ".join(report["methods"]["text"])
    assert "not known to radfusion" not in text
    version = raw["diagnostics_Versions_PyRadiomics"].iloc[0]
    assert f"PyRadiomics {version} from 5 segmentations" in text
    assert "fixed bin width of 25" in text and "not resampled" in text
    assert f"recorded by PyRadiomics in {out.name}" in text
    assert f"used {len(features) + 1} columns in 2 feature group(s)" in text
    assert report["methods"]["extraction"]["modalities"]["image"]["settings"]["binWidth"] == 25


def test_reference_cli_table_trains_and_predicts(reference_table, tmp_path):
    out, bio, raw = reference_table
    trained = train_model(
        out,
        label="outcome",
        biomarkers=bio,
        strategy="early",
        params=dict(learners=("lr",)),
    )
    assert trained.id_column == "ID"
    assert "age" in trained.columns and "Label" not in trained.columns
    predictions = predict_table(trained, out, biomarkers=bio)
    assert list(predictions["ID"]) == list(raw["ID"])
    assert predictions["probability"].between(0, 1).all()


def _sphere(seed: int, size: int = 16) -> tuple[sitk.Image, sitk.Image]:
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((size, size, size))
    inside = (x - 7.5) ** 2 + (y - 7.5) ** 2 + (z - 7.5) ** 2 <= 16
    image = sitk.GetImageFromArray((rng.normal(0, 10, inside.shape) + 40 * inside).astype(np.int16))
    return image, sitk.GetImageFromArray(inside.astype(np.uint8))


@pytest.fixture(scope="module")
def multirow_table(tmp_path_factory):
    """4 patients x (CT, PET) images sharing one tumour mask: two rows per patient."""
    folder = tmp_path_factory.mktemp("multirow")
    rows = []
    for k, patient in enumerate(["007", "010", "1e3", "P4"]):
        for m, modality in enumerate(["CT", "PET"]):
            image, mask = _sphere(10 * k + m)
            sitk.WriteImage(image, str(folder / f"{patient}_{modality}.nii.gz"))
            sitk.WriteImage(mask, str(folder / f"{patient}_tumor.nii.gz"))
            rows.append((patient, f"{patient}_{modality}.nii.gz", f"{patient}_tumor.nii.gz"))
    batch = folder / "batch.csv"
    pd.DataFrame(rows, columns=["ID", "Image", "Mask"]).to_csv(batch, index=False)
    params = folder / "params.yaml"
    params.write_text(PARAMS.replace("  shape:\n", ""), encoding="utf-8")
    out = folder / "features.csv"
    raw = pyradiomics_cli(batch, params, out)
    pd.DataFrame(
        {"pid": ["007", "010", "1e3", "P4"], "outcome": ["yes", "no", "yes", "no"]}
    ).to_csv(folder / "bio.csv", index=False)
    return out, folder / "bio.csv", raw


def test_several_rows_per_patient_become_one_wide_row(multirow_table):
    out, bio, raw = multirow_table
    data = load_dataset(out, label="outcome", biomarkers=bio, biomarkers_id="pid")
    assert list(data.groups) == ["CT__tumor", "PET__tumor"]
    assert list(data.X.index) == ["007", "010", "1e3", "P4"]  # ids stay text
    features = [c for c in raw.columns if is_pyradiomics_feature(c)]
    for modality in ("CT", "PET"):
        rows = raw[raw["Image"].str.endswith(f"_{modality}.nii.gz")]
        for feature in features:
            patients = rows["Image"].map(lambda path: Path(path).name.split("_")[0])
            expected = dict(zip(patients, rows[feature], strict=True))
            got = data.X[f"{modality}__tumor__{feature}"]
            assert {p: got[p] for p in expected} == pytest.approx(expected)
    assert len(data.diagnostics) == 8
    assert set(zip(data.diagnostics["modality"], data.diagnostics["mask"], strict=True)) == {
        ("CT", "tumor"),
        ("PET", "tumor"),
    }


def test_a_modality_column_and_a_missing_case(multirow_table, tmp_path):
    out, bio, raw = multirow_table
    table = pd.read_csv(out, dtype={"ID": str})
    table["Modality"] = np.where(table["Image"].str.endswith("_CT.nii.gz"), "CT_venous", "PET")
    table = table.drop(index=1)  # patient 007 has no PET
    path = tmp_path / "edited.csv"
    table.to_csv(path, index=False)
    data = load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")
    assert list(data.groups) == ["CT_venous__tumor", "PET__tumor"]
    assert data.X.loc["007", data.groups["PET__tumor"]].isna().all()
    assert data.X.loc["010", data.groups["PET__tumor"]].notna().all()


def test_unrecognised_text_columns_and_duplicates_are_one_error(multirow_table, tmp_path):
    out, bio, _ = multirow_table
    table = pd.read_csv(out, dtype={"ID": str})
    table["scanner"] = "GE"
    table["reader"] = "JB"
    table = pd.concat([table, table.iloc[[0]]])
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError) as error:
        load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")
    message = str(error.value)
    assert "'scanner' is text" in message and "'reader' is text" in message
    assert "--biomarkers table" in message and str(path) in message
    assert "patient 007" in message and "duplicated case (modality 'CT', mask 'tumor')" in message
    result = runner.invoke(
        app,
        ["cv", str(path), "--biomarkers", str(bio), "--biomarkers-id", "pid", "--label", "outcome"]
        + ["--out", str(tmp_path / "report")],
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "'scanner' is text" in result.output and "Traceback" not in result.output


def test_numeric_extra_columns_are_named_and_patient_level(multirow_table, tmp_path):
    out, bio, _ = multirow_table
    table = pd.read_csv(out, dtype={"ID": str})
    table["dose"] = table["ID"].map({"007": 1.0, "010": 2.0, "1e3": 3.0, "P4": 4.0})
    path = tmp_path / "dose.csv"
    table.to_csv(path, index=False)
    with pytest.warns(PyradiomicsColumnsWarning, match="'dose'"):
        data = load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")
    assert data.groups["clinical"] == ["dose"]
    table.loc[1, "dose"] = 9.0  # a second value for patient 007
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match="'dose' has several values"):
        load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")


def test_file_names_that_share_nothing_ask_for_modality_and_roi(multirow_table, tmp_path):
    out, bio, _ = multirow_table
    table = pd.read_csv(out, dtype={"ID": str})
    table["Mask"] = [f"seg{k}.nii.gz" for k in range(len(table))]
    path = tmp_path / "unnamed.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError, match="add 'Modality' and 'ROI' columns"):
        load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")


def test_cli_train_and_predict_with_a_named_biomarker_id(multirow_table, tmp_path):
    out, bio, raw = multirow_table
    model = tmp_path / "model.skops"
    common = ["--biomarkers", str(bio), "--biomarkers-id", "pid"]
    result = runner.invoke(
        app,
        ["train", str(out), "--label", "outcome", "--strategy", "early", "--out", str(model)]
        + common,
    )
    assert result.exit_code == 0, result.output
    predictions = tmp_path / "predictions.csv"
    arguments = ["predict", str(model), str(out), "--out", str(predictions), *common]
    result = runner.invoke(app, arguments)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(predictions, dtype={"ID": str})
    assert list(table["ID"]) == ["007", "010", "1e3", "P4"]
    assert set(table["predicted"]) <= {"yes", "no"}


def test_a_label_blank_in_some_rows_and_1_in_others_is_one_roi(multirow_table, tmp_path):
    """A Label column with blanks is read as floats: 1.0 and the blanks' 1 made two ROIs
    (label1.0 and label1), each half empty."""
    out, bio, _ = multirow_table
    reference = load_dataset(out, label="outcome", biomarkers=bio, biomarkers_id="pid")
    table = pd.read_csv(out, dtype={"ID": str})
    table.insert(3, "Label", [1, None] * (len(table) // 2))
    path = tmp_path / "labels.csv"
    table.to_csv(path, index=False)
    data = load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")
    assert list(data.groups) == ["CT__tumor", "PET__tumor"]
    pd.testing.assert_frame_equal(data.X, reference.X)
    table["Label"] = ["1.0", "x"] * (len(table) // 2)
    table.to_csv(path, index=False)
    with pytest.raises(InputError) as error:
        load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")
    assert str(error.value.problems[0]) == (
        f"row 2, patient 007, file {path}: Label 'x' is not a positive integer (the mask value "
        "of the ROI)"
    )


@pytest.mark.parametrize("column", ["Modality", "ROI"])
def test_names_spelled_two_ways_are_an_error_not_two_groups(multirow_table, tmp_path, column):
    out, bio, _ = multirow_table
    table = pd.read_csv(out, dtype={"ID": str})
    modality = np.where(table["Image"].str.endswith("_CT.nii.gz"), "CT", "PET")
    table["Modality"], table["ROI"] = modality, "tumor"
    table.loc[2, column] = {"Modality": "ct", "ROI": "Tumor "}[column]  # patient 010's CT
    path = tmp_path / "spelled.csv"
    table.to_csv(path, index=False)
    with pytest.raises(InputError) as error:
        load_dataset(path, label="outcome", biomarkers=bio, biomarkers_id="pid")
    (problem,) = error.value.problems
    assert (problem.row, problem.patient_id, problem.file) == (3, "010", str(path))
    assert f"column {column!r} (else the file names) writes one name 2 " in (problem.message)
    assert "they would become separate feature groups: write it one way" in problem.message
    result = runner.invoke(
        app,
        ["cv", str(path), "--biomarkers", str(bio), "--biomarkers-id", "pid", "--label", "outcome"]
        + ["--out", str(tmp_path / "report")],
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "differing only by case or spaces" in result.output
    assert "Traceback" not in result.output
