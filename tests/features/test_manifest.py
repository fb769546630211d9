"""Manifest and biomarker validation: every problem named with its row, patient and file."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.errors import InputError
from radfusion.features.io import (
    ImageHeader,
    ImageReadError,
    compare_grids,
    read_header,
    read_image,
)
from radfusion.features.manifest import read_manifest, validate_cohort
from tests.features.conftest import read_rows, sphere_case, write_manifest

CASES = [("P1", "CT", 1), ("P2", "CT", 2), ("P3", "CT", 3)]


def write_biomarkers(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def problems_of(error: pytest.ExceptionInfo[InputError]) -> list[str]:
    return [str(p) for p in error.value.problems]


# Each breaks one thing in row 2 (patient P2); returns (file named, words of the message).
def _missing_image(root: Path, rows: list[dict]) -> tuple[str, str]:
    (root / rows[1]["image"]).unlink()
    return str(root / rows[1]["image"]), "image file is missing"


def _missing_mask(root: Path, rows: list[dict]) -> tuple[str, str]:
    (root / rows[1]["mask_path"]).unlink()
    return str(root / rows[1]["mask_path"]), "mask file is missing"


def _duplicate(root: Path, rows: list[dict]) -> tuple[str, str]:
    rows[0]["patient_id"] = "P2"
    return "manifest.csv", "duplicated case (modality 'CT', mask 'tumor'), first given on row 1"


def _double_underscore(root: Path, rows: list[dict]) -> tuple[str, str]:
    rows[1]["modality"] = "CT__A"
    return "manifest.csv", "contain no '__'"


def _control_suffix(root: Path, rows: list[dict]) -> tuple[str, str]:
    rows[1]["mask"] = "tumor~permuted"  # reserved for extract --negative-control
    return "manifest.csv", "must not contain '~permuted'"


def _empty_mask_name(root: Path, rows: list[dict]) -> tuple[str, str]:
    rows[1]["mask"] = ""
    return "manifest.csv", "must be non-empty"


def _empty_mask(root: Path, rows: list[dict]) -> tuple[str, str]:
    rows[1]["label"] = 3
    return str(root / rows[1]["mask_path"]), "no voxel has label 3; values present: 0, 1"


def _shifted_origin(root: Path, rows: list[dict]) -> tuple[str, str]:
    mask = sitk.ReadImage(str(root / rows[1]["mask_path"]))
    mask.SetOrigin((-12.0, -12.0, -11.5))
    sitk.WriteImage(mask, str(root / rows[1]["mask_path"]))
    return str(root / rows[1]["mask_path"]), "origin differs by 0.5 mm"


def _other_spacing(root: Path, rows: list[dict]) -> tuple[str, str]:
    mask = sitk.ReadImage(str(root / rows[1]["mask_path"]))
    mask.SetSpacing((1.0, 1.0, 1.01))
    sitk.WriteImage(mask, str(root / rows[1]["mask_path"]))
    return str(root / rows[1]["mask_path"]), "spacing differs by 0.0099 relative"


def _other_size(root: Path, rows: list[dict]) -> tuple[str, str]:
    mask = sitk.ReadImage(str(root / rows[1]["mask_path"]))
    sitk.WriteImage(mask[:, :, :20], str(root / rows[1]["mask_path"]))
    return str(root / rows[1]["mask_path"]), "size differs: image (24, 24, 24), mask (24, 24, 20)"


def _unreadable_image(root: Path, rows: list[dict]) -> tuple[str, str]:
    (root / rows[1]["image"]).write_bytes(gzip.compress(b"not an image at all" * 20))
    return str(root / rows[1]["image"]), "unreadable image"


def _truncated_image(root: Path, rows: list[dict]) -> tuple[str, str]:
    # ITK's NIfTI reader would accept this file silently and return garbage voxels.
    path = root / rows[1]["image"]
    path.write_bytes(path.read_bytes()[:-100])
    return str(path), "unreadable image: truncated NIfTI file: the header announces 28000 bytes"


def _bad_label(root: Path, rows: list[dict]) -> tuple[str, str]:
    rows[1]["label"] = "tumour"
    return "manifest.csv", "label 'tumour' is not a positive integer"


MANIFEST_PROBLEMS = [
    _missing_image,
    _missing_mask,
    _duplicate,
    _double_underscore,
    _control_suffix,
    _empty_mask_name,
    _empty_mask,
    _shifted_origin,
    _other_spacing,
    _other_size,
    _unreadable_image,
    _truncated_image,
    _bad_label,
]


@pytest.mark.parametrize("breaks", MANIFEST_PROBLEMS, ids=lambda f: f.__name__.strip("_"))
def test_manifest_problem_names_row_patient_and_file(write_cohort, breaks):
    manifest = write_cohort(CASES)
    rows = read_rows(manifest)
    file, words = breaks(manifest.parent, rows)
    write_manifest(manifest, rows)
    with pytest.raises(InputError) as error:
        validate_cohort(manifest)
    problems = problems_of(error)
    assert len(problems) == 1, problems
    assert problems[0].startswith("row 2, patient P2, file ")
    assert file in problems[0] and words in problems[0]


def test_missing_required_columns_are_each_reported(write_cohort):
    manifest = write_cohort(CASES)
    rows = read_rows(manifest)
    for row in rows:
        del row["mask_path"], row["modality"]
    write_manifest(manifest, rows)
    with pytest.raises(InputError) as error:
        validate_cohort(manifest)
    problems = problems_of(error)
    assert [p.split(": ")[1] for p in problems] == [
        "missing required column 'modality' (columns found",
        "missing required column 'mask_path' (columns found",
    ]
    assert all(p.startswith(f"file {manifest}") for p in problems)


def test_small_grid_differences_within_tolerance_pass(write_cohort):
    manifest = write_cohort(CASES)
    root, rows = manifest.parent, read_rows(manifest)
    mask = sitk.ReadImage(str(root / rows[0]["mask_path"]))
    mask.SetOrigin((-12.0, -12.0, -12.0005))
    mask.SetSpacing((1.0, 1.0, 1.0005))
    sitk.WriteImage(mask, str(root / rows[0]["mask_path"]))
    cases, _ = validate_cohort(manifest)  # no InputError
    assert len(cases) == len(CASES)


@pytest.fixture
def cohort_with_biomarkers(write_cohort):
    manifest = write_cohort(CASES)
    rows = [
        {"patient_id": p, "age": 50 + i, "response": i % 2} for i, (p, _, _) in enumerate(CASES)
    ]
    return manifest, rows


# Each breaks the biomarker table; returns (row, patient, words of the message).
def _stranger(rows):
    rows.append({"patient_id": "P9", "age": 70, "response": 1})
    return 4, "P9", "patient is not in the manifest"


def _duplicated_patient(rows):
    rows.append(dict(rows[0]))
    return 4, "P1", "duplicated biomarker row for this patient, first given on row 1"


def _missing_outcome(rows):
    rows[1]["response"] = ""
    return 2, "P2", "outcome 'response' is missing"


BIOMARKER_PROBLEMS = [_stranger, _duplicated_patient, _missing_outcome]


@pytest.mark.parametrize("breaks", BIOMARKER_PROBLEMS, ids=lambda f: f.__name__.strip("_"))
def test_biomarker_problem_names_row_patient_and_file(cohort_with_biomarkers, tmp_path, breaks):
    manifest, rows = cohort_with_biomarkers
    row, patient, words = breaks(rows)
    biomarkers = write_biomarkers(tmp_path / "biomarkers.csv", rows)
    with pytest.raises(InputError) as error:
        validate_cohort(manifest, biomarkers, outcome="response")
    assert problems_of(error) == [f"row {row}, patient {patient}, file {biomarkers}: {words}"]


def test_outcome_column_absent(cohort_with_biomarkers, tmp_path):
    manifest, rows = cohort_with_biomarkers
    biomarkers = write_biomarkers(tmp_path / "biomarkers.csv", rows)
    with pytest.raises(InputError) as error:
        validate_cohort(manifest, biomarkers, outcome="survival")
    (problem,) = problems_of(error)
    assert problem.startswith(f"file {biomarkers}: outcome column 'survival' is absent")


def test_patient_without_biomarker_row_has_no_outcome(cohort_with_biomarkers, tmp_path):
    manifest, rows = cohort_with_biomarkers
    biomarkers = write_biomarkers(tmp_path / "biomarkers.csv", rows[:2])
    with pytest.raises(InputError) as error:
        validate_cohort(manifest, biomarkers, outcome="response")
    (problem,) = problems_of(error)
    assert problem.startswith(f"patient P3, file {biomarkers}: outcome 'response' is missing")
    assert f"manifest {manifest}, row 3" in problem


def test_every_problem_is_reported_at_once(cohort_with_biomarkers, tmp_path):
    manifest, biomarker_rows = cohort_with_biomarkers
    root, rows = manifest.parent, read_rows(manifest)
    (root / rows[0]["image"]).unlink()
    rows[1]["mask"] = "tumor__core"
    rows[2]["label"] = 2
    write_manifest(manifest, rows)
    biomarker_rows[0]["response"] = ""
    biomarker_rows.append({"patient_id": "P7", "age": 1, "response": 0})
    biomarkers = write_biomarkers(tmp_path / "biomarkers.csv", biomarker_rows)
    with pytest.raises(InputError) as error:
        validate_cohort(manifest, biomarkers, outcome="response")
    problems = problems_of(error)
    assert len(problems) == 5, problems
    expected = [
        ("row 1, patient P1", "image file is missing"),
        ("row 2, patient P2", "mask name 'tumor__core'"),
        ("row 3, patient P3", "no voxel has label 2"),
        ("row 1, patient P1", "outcome 'response' is missing"),
        ("row 4, patient P7", "patient is not in the manifest"),
    ]
    for (where, words), problem in zip(expected, sorted(problems, key=_order), strict=True):
        assert problem.startswith(where) and words in problem
    assert str(error.value).startswith("invalid cohort (5 problem(s)):")


def _order(problem: str) -> tuple[bool, str]:
    return "biomarkers.csv" in problem, problem


def test_valid_cohort_passes_with_paths_resolved_from_manifest_folder(
    cohort_with_biomarkers, tmp_path, monkeypatch
):
    manifest, biomarker_rows = cohort_with_biomarkers
    rows = read_rows(manifest)
    rows[0]["image"] = str(manifest.parent / rows[0]["image"])  # absolute paths are kept
    for row, site in zip(rows, ["A", "B", "A"], strict=True):
        row["site"] = site
    rows[1]["label"] = ""  # empty label means 1
    write_manifest(manifest, rows)
    biomarkers = write_biomarkers(tmp_path / "biomarkers.csv", biomarker_rows)
    monkeypatch.chdir(tmp_path / "images")  # the working folder plays no part
    df, clinical = validate_cohort(manifest, biomarkers, outcome="response")
    assert list(df["patient_id"]) == ["P1", "P2", "P3"]
    assert list(df.index) == [1, 2, 3]
    assert list(df["label"]) == [1, 1, 1]
    assert list(df["site"]) == ["A", "B", "A"]
    for column in ("image", "mask_path"):
        for row, value in zip(read_rows(manifest), df[column], strict=True):
            assert Path(value).is_absolute()
            assert Path(value) == manifest.parent / row[column]
    assert list(clinical["patient_id"]) == ["P1", "P2", "P3"]
    assert clinical["age"].dtype.kind == "i"


def test_patient_id_is_read_as_string(write_cohort):
    manifest = write_cohort([("007", "CT", 1), ("1e3", "CT", 2)])
    df = read_manifest(manifest)
    assert list(df["patient_id"]) == ["007", "1e3"]


def test_dicom_series_reads_as_one_volume_with_matching_header(tmp_path):
    image, mask = sphere_case(5)
    image.SetSpacing((0.8, 0.8, 2.5))
    image.SetOrigin((10.0, -20.0, 30.0))
    folder = tmp_path / "dicom"
    folder.mkdir()
    for k in range(image.GetDepth()):
        piece = image[:, :, k]
        position = image.TransformIndexToPhysicalPoint((0, 0, k))
        for tag, value in {
            "0008|0060": "CT",
            "0020|000d": "1.2.826.0.1.3680043.2.1125.1",
            "0020|000e": "1.2.826.0.1.3680043.2.1125.1.2",
            "0020|0013": str(k + 1),
            "0020|0032": "\\".join(f"{v:.4f}" for v in position),
            "0020|0037": "1\\0\\0\\0\\1\\0",
            "0018|0050": "2.5",
        }.items():
            piece.SetMetaData(tag, value)
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        writer.SetFileName(str(folder / f"slice{k:03d}.dcm"))
        writer.Execute(piece)
    volume = read_image(folder)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume), sitk.GetArrayFromImage(image))
    header = read_header(folder)
    assert header.size == (24, 24, 24)
    assert compare_grids(header, ImageHeader.of(volume)) == []
    assert compare_grids(header, ImageHeader.of(image)) == []


def test_read_errors_name_the_path(tmp_path):
    with pytest.raises(ImageReadError, match=f"cannot read image {tmp_path / 'absent.nii'}"):
        read_header(tmp_path / "absent.nii")
    with pytest.raises(ImageReadError, match="no DICOM series"):
        read_image(tmp_path)


@pytest.mark.parametrize(
    ("column", "odd", "consequence"),
    [
        ("modality", "ct", "separate modalities (feature groups, parameter files)"),
        ("mask", "Tumor", "separate ROIs (feature groups)"),
        ("site", "a ", "separate sites"),
    ],
)
def test_names_spelled_two_ways_are_refused(write_cohort, column, odd, consequence):
    """'CT' and 'ct' made two modalities, each with part of the cohort."""
    manifest = write_cohort(CASES, sites={"P1": "A", "P2": "A", "P3": "A"})
    rows = read_rows(manifest)
    rows[1][column] = odd
    write_manifest(manifest, rows)
    with pytest.raises(InputError) as error:
        validate_cohort(manifest, check_images=False)
    (problem,) = error.value.problems
    assert (problem.row, problem.patient_id, problem.file) == (2, "P2", str(manifest))
    expected = rows[0][column]
    assert problem.message == (
        f"column {column!r} writes one name 2 ways, differing only by case or spaces: "
        f"{expected!r} (2 rows: row 1 patient P1, row 3 patient P3), {odd.strip()!r} (1 row: "
        f"row 2 patient P2); they would become {consequence}: write it one way"
    )


def test_a_manifest_that_is_no_comma_separated_utf8_csv_is_named_so(write_cohort, tmp_path):
    from tests.features.conftest import not_csv_files

    rows = read_rows(write_cohort(CASES))
    files = not_csv_files(tmp_path, list(rows[0]), [list(r.values()) for r in rows])
    for case, (path, words) in files.items():
        with pytest.raises(InputError) as error:
            validate_cohort(path, check_images=False)
        (problem,) = error.value.problems
        assert problem.file == str(path), case
        assert words in problem.message, (case, problem.message)
        assert str(error.value).startswith("manifest is not a readable CSV"), case
    bom = tmp_path / "bom.csv"  # Excel's "CSV UTF-8" starts with a byte-order mark: fine
    bom.write_bytes(b"\xef\xbb\xbf" + (tmp_path / "manifest.csv").read_bytes())
    assert len(validate_cohort(bom, check_images=False)[0]) == len(CASES)


def test_ids_and_names_holding_control_characters_are_refused(write_cohort):
    """An id with a carriage return in it is split into two rows by every CSV written from
    the feature table; a tab or a line break in a name would end up in column names."""
    manifest = write_cohort(CASES)
    rows = read_rows(manifest)
    rows[1]["patient_id"], rows[2]["mask"] = "P\r2", "tu\tmor"
    write_manifest(manifest, rows)
    with pytest.raises(InputError) as error:
        read_manifest(manifest)
    assert problems_of(error) == [
        f"row 2, file {manifest}: patient_id 'P\\r2' holds control characters ('\\r')",
        f"row 3, patient P3, file {manifest}: mask 'tu\\tmor' holds control characters ('\\t')",
    ]
