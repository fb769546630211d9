"""pyradiomics batch CSVs accepted by extract; voxel-based parameter files refused."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from typer.testing import CliRunner

from radfusion.features.batch import path_key
from radfusion.features.errors import InputError
from radfusion.features.manifest import PyradiomicsBatchWarning, validate_cohort
from radfusion.features.params import read_params
from radfusion.pipeline.cli import EXIT_BAD_INPUT, app
from tests.conftest import shared_data
from tests.features.conftest import read_rows, write_manifest

runner = CliRunner()


@pytest.mark.parametrize(
    ("path", "patient", "key"),
    [
        ("/data/P001/P001_CT.nii.gz", "P001", "CT"),
        ("../data/brain1_label.nrrd", "brain1", "label"),
        ("scans/007-T2w.mha", "007", "T2w"),
        ("scans/ct/P1.nii.gz", "P1", "ct"),  # the folder names it
        ("P12CT.nrrd", "P12", "CT"),  # no separator: removed wherever it is
        ("T1_1.nii", "1", "T1"),  # patient '1': the '1' inside 'T1' is not the id token
        ("P2.nii.gz", "P2", "mask"),  # nothing left: the fallback
    ],
)
def test_path_key_removes_extension_and_patient_id(path, patient, key):
    assert path_key(path, patient, "mask") == key


def test_batch_csv_extraction_equals_the_manifest_extraction(write_cohort, tmp_path):
    manifest = write_cohort([("P1", "CT", 1), ("P2", "CT", 2), ("P3", "CT", 3)])
    rows = read_rows(manifest)
    for row in rows:  # the mask name a batch file's names give: masks/P1_CT_tumor → CT_tumor
        row["mask"] = "CT_tumor"
    write_manifest(manifest, rows)
    batch = write_manifest(
        tmp_path / "batch.csv",
        [
            {"ID": r["patient_id"], "Image": r["image"], "Mask": r["mask_path"], "Label": 1}
            for r in rows
        ],
    )
    outputs = {}
    for name, source, extra in (
        ("manifest", manifest, []),
        ("batch", batch, ["--modality", "CT"]),
    ):
        out = tmp_path / f"{name}.parquet"
        result = runner.invoke(
            app, ["extract", str(source), "--out", str(out), "--jobs", "1", *extra]
        )
        assert result.exit_code == 0, result.output
        outputs[name] = (pd.read_parquet(out), result.output)
    pd.testing.assert_frame_equal(outputs["batch"][0], outputs["manifest"][0])
    assert any(c.startswith("CT__CT_tumor__original_") for c in outputs["batch"][0].columns)
    note = outputs["batch"][1]
    assert "read as a pyradiomics batch file: ID → patient_id, Image → image" in note
    assert "Mask → mask_path, Label → label; modality from 'CT' (--modality)" in note
    assert "mask names from the Mask file names (CT_tumor)" in note
    assert "pyradiomics batch" not in outputs["manifest"][1]
    # check reads the same batch file with the same --modality, one row per case
    checked = tmp_path / "check.csv"
    result = runner.invoke(
        app, ["check", str(batch), "--modality", "CT", "--out", str(checked), "--jobs", "1"]
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(checked, dtype=str)
    assert sorted(table["patient_id"]) == ["P1", "P2", "P3"] and set(table["modality"]) == {"CT"}


def test_batch_csv_without_modality_names_both_ways_to_give_it(tmp_path):
    batch = shared_data("pyradiomics", "examples", "testCases.csv")
    with pytest.raises(InputError, match="pass --modality NAME .* or add a 'Modality' column"):
        validate_cohort(batch, check_images=False)
    result = runner.invoke(app, ["extract", str(batch), "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code == EXIT_BAD_INPUT and "--modality" in result.output
    # pyradiomics' own example, unchanged, with the modality given once.
    with pytest.warns(PyradiomicsBatchWarning, match="mask names from the Mask file names"):
        manifest, _ = validate_cohort(batch, check_images=False, modality="MR")
    assert list(manifest["patient_id"]) == ["brain1", "brain2", "breast1", "lung1", "lung2"]
    assert set(manifest["modality"]) == {"MR"} and set(manifest["mask"]) == {"label"}
    assert manifest["image"].iloc[0].endswith("pyradiomics/data/brain1_image.nrrd")


def test_batch_csv_modality_column_and_roi_column(tmp_path):
    folder = shared_data("pyradiomics", "data")
    rows = [
        {
            "ID": case,
            "Image": str(folder / f"{case}_image.nrrd"),
            "Mask": str(folder / f"{case}_label.nrrd"),
            "Modality": "CT" if case.startswith("lung") else "MR",
            "ROI": "tumour",
        }
        for case in ("brain1", "brain2", "lung1", "lung2")
    ]
    batch = write_manifest(tmp_path / "batch.csv", rows)
    with pytest.warns(PyradiomicsBatchWarning, match="modality from the 'Modality' column"):
        manifest, _ = validate_cohort(batch, check_images=False)
    assert list(manifest["modality"]) == ["MR", "MR", "CT", "CT"]
    assert set(manifest["mask"]) == {"tumour"}


def test_voxel_based_parameter_file_is_refused(tmp_path):
    example = shared_data("pyradiomics", "examples", "exampleSettings", "exampleVoxel.yaml")
    copy = tmp_path / "voxel.yaml"
    shutil.copy(example, copy)
    with pytest.raises(InputError, match="voxel-based parameter file") as error:
        read_params(copy)
    assert str(copy) in str(error.value) and "remove the voxelSetting block" in str(error.value)
    # The same file without the block is a valid segment-based file.
    segment = tmp_path / "segment.yaml"
    text = copy.read_text(encoding="utf-8")
    segment.write_text(text.split("voxelSetting:")[0], encoding="utf-8")
    assert read_params(segment)["featureClass"] == {"glcm": ["JointEntropy"]}


def test_a_batch_csv_with_a_modality_written_two_ways_is_refused_by_check(write_cohort, tmp_path):
    """Through the command a user runs first: 'CT' and 'ct ' would be two modalities, each
    with half the patients; a blank Label reads as pyradiomics' default 1, not a new ROI."""
    manifest = write_cohort([("P1", "CT", 1), ("P2", "CT", 2), ("P3", "CT", 3)])
    rows = [
        {"ID": r["patient_id"], "Image": r["image"], "Mask": r["mask_path"], "Label": label}
        for r, label in zip(read_rows(manifest), [1, "", 1], strict=True)
    ]
    for row, modality in zip(rows, ["CT", "ct ", "CT"], strict=True):
        row["Modality"] = modality
    batch = write_manifest(tmp_path / "batch.csv", rows)
    result = runner.invoke(app, ["check", str(batch), "--jobs", "1"])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert (
        "writes one name 2 ways" in result.output
        and "'ct' (1 row: row 2 patient P2)" in result.output
    )
    for row in rows:
        row["Modality"] = "CT"
    write_manifest(batch, rows)
    with pytest.warns(PyradiomicsBatchWarning):
        cases, _ = validate_cohort(batch, check_images=False)
    assert len(cases) == 3 and cases["mask"].nunique() == 1
