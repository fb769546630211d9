"""Body-weight SUV of a synthetic DICOM PET series equals the hand-computed values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radfusion.features.check import check_cohort
from radfusion.features.io import read_image
from radfusion.features.preprocess import parse_config
from radfusion.features.runner import extract_cohort
from radfusion.features.suv import SuvError, suv_factor, to_suv
from tests.features.conftest import write_manifest
from tests.features.dicom_data import write_series

# Hand computation for the defaults of dicom_data.write_series: 370 MBq of F-18 (half-life
# 6586.2 s) injected at 09:00:00, series decay-corrected to its start at 10:00:00, 70 kg.
DOSE_AT_SCAN = 370e6 * 0.5 ** (3600 / 6586.2)  # Bq, 1 h after injection: 253,291,... Bq
FACTOR = 70_000 / DOSE_AT_SCAN  # g / Bq
SLOPES = np.array([0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25])  # exact in binary and DS


def activity(seed: int = 0) -> np.ndarray:
    """Bq/ml, as stored: integers times each slice's slope."""
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 12000, (8, 12, 12))
    return stored * SLOPES[:, None, None]


def test_suv_of_the_synthetic_pet_equals_the_hand_computed_values(tmp_path):
    bqml = activity()
    write_series(tmp_path / "pet", bqml, modality="PT", slopes=SLOPES)
    assert FACTOR == pytest.approx(2.763366817e-4, rel=1e-9)
    assert suv_factor(tmp_path / "pet") == pytest.approx(FACTOR, rel=1e-12)
    suv = sitk.GetArrayFromImage(to_suv(read_image(tmp_path / "pet"), tmp_path / "pet"))
    np.testing.assert_allclose(suv, bqml * FACTOR, rtol=1e-12)
    # one voxel by hand: 10,000 Bq/ml in a 70 kg patient, 253.29 MBq at scan time
    assert 10_000 * FACTOR == pytest.approx(2.7634, abs=1e-4)


@pytest.mark.parametrize(
    ("pet", "factor"),
    [
        # the injection as a time only (on the series date)
        (
            {"radiopharmaceutical": {"RadiopharmaceuticalStartDateTime": None,
                                     "RadiopharmaceuticalStartTime": "090000"}},
            FACTOR,
        ),
        # a series re-created at 11:00: the earliest acquisition (10:00) is the scan time
        ({"SeriesTime": "110000"}, FACTOR),
        # acquisitions from 10:30 on, series time 10:00 before them: the series time counts
        ({"AcquisitionTime": [f"1030{k:02d}" for k in range(8)]}, FACTOR),
        # injection the evening before, across midnight: 13 h
        (
            {"radiopharmaceutical": {"RadiopharmaceuticalStartDateTime": "20260104210000"}},
            70_000 / (370e6 * 0.5 ** (13 * 3600 / 6586.2)),
        ),
        # decay-corrected to the administration: no decay term
        ({"DecayCorrection": "ADMIN"}, 70_000 / 370e6),
        # another weight and dose
        (
            {"PatientWeight": "82.5",
             "radiopharmaceutical": {"RadionuclideTotalDose": "2.5e8"}},
            82_500 / (2.5e8 * 0.5 ** (3600 / 6586.2)),
        ),
    ],
)  # fmt: skip
def test_the_scan_and_injection_times_follow_the_qiba_rules(tmp_path, pet, factor):
    write_series(tmp_path / "pet", activity(), modality="PT", slopes=SLOPES, pet=pet)
    assert suv_factor(tmp_path / "pet") == pytest.approx(factor, rel=1e-12)


@pytest.mark.parametrize(
    ("pet", "message"),
    [
        ({"PatientWeight": None}, "missing tag PatientWeight (0010,1030)"),
        (
            {"PatientWeight": "0"},
            "PatientWeight (0010,1030) is 0 kg, outside the plausible 1-400 kg",
        ),
        (
            {"radiopharmaceutical": {"RadionuclideTotalDose": None}},
            "missing tag RadionuclideTotalDose (0018,1074)",
        ),
        (
            {"radiopharmaceutical": {"RadionuclideHalfLife": None}},
            "missing tag RadionuclideHalfLife (0018,1075)",
        ),
        (
            {"radiopharmaceutical": {"RadiopharmaceuticalStartDateTime": None}},
            "missing tag RadiopharmaceuticalStartTime (0018,1072)",
        ),
        ({"Units": "CNTS"}, "Units (0054,1001) is 'CNTS'; only BQML"),
        ({"CorrectedImage": ["ATTN"]}, "CorrectedImage (0028,0051) lacks DECY"),
        ({"DecayCorrection": "NONE"}, "DecayCorrection (0054,1102) is 'NONE'"),
        (
            {"SeriesTime": "080000", "AcquisitionTime": "080000"},
            "the scan starts 1 h 00 min before the injection: check "
            "RadiopharmaceuticalStartDateTime (0018,1078)",
        ),
        # plausibility: the units users get wrong, each naming the tag and the value
        (
            {"PatientWeight": "70000"},
            "tag PatientWeight (0010,1030) is 70000 kg, outside the plausible 1-400 kg (grams "
            "in the kilogram tag?)",
        ),
        (
            {"radiopharmaceutical": {"RadionuclideTotalDose": "370"}},
            "tag RadionuclideTotalDose (0018,1074) is 370 Bq, outside the plausible 1e+06-2e+10 "
            "Bq (MBq in the becquerel tag?)",
        ),
        (
            {"radiopharmaceutical": {"RadionuclideHalfLife": "20.4"}},
            "RadionuclideHalfLife (0018,1075) is 20.4 s, outside the plausible 60-1e+06 s "
            "(minutes in the seconds tag?)",
        ),
        (
            {"radiopharmaceutical": {"RadiopharmaceuticalStartDateTime": "20260104090000"}},
            "the scan starts 25 h 00 min after the injection, more than 10 half-lives "
            "(RadionuclideHalfLife (0018,1075) 6586.2 s) later",
        ),
        (
            {"radiopharmaceutical": {"RadiopharmaceuticalStartDateTime": "2026XX05090000"}},
            "RadiopharmaceuticalStartDateTime (0018,1078) is not a valid DICOM date/time to the "
            "minute (value not shown",
        ),
        (  # a date without the time of day: midnight was taken silently
            {"radiopharmaceutical": {"RadiopharmaceuticalStartDateTime": "20260105"}},
            "RadiopharmaceuticalStartDateTime (0018,1078) is not a valid DICOM date/time to the",
        ),
        (
            {"SeriesTime": "10"},
            "SeriesDate (0008,0021) + SeriesTime (0008,0031) is not a valid DICOM date/time",
        ),
    ],
)
def test_headers_that_cannot_support_the_suv_are_named(tmp_path, pet, message):
    write_series(tmp_path / "pet", activity(), modality="PT", pet=pet)
    with pytest.raises(SuvError) as error:
        suv_factor(tmp_path / "pet")
    assert message in str(error.value)
    assert str(tmp_path / "pet" / "slice000.dcm") in str(error.value)
    assert_no_date_or_time(str(error.value).replace(str(tmp_path), ""))


def assert_no_date_or_time(message: str) -> None:
    """Dates of service identify patients: a message states intervals, never dates or times."""
    import re

    for pattern in (r"\d{8}", r"\d{4}-\d{2}-\d{2}", r"\d{1,2}:\d{2}", r"\b\d{6}(\.\d+)?\b"):
        assert not re.search(pattern, message), (pattern, message)


def test_slices_that_disagree_on_a_tag_are_named_without_dates(tmp_path):
    """The first slice's weight was used silently before."""
    write_series(tmp_path / "pet", activity(), modality="PT", slopes=SLOPES)
    from pydicom import dcmread

    for k, weight in ((3, "75"), (5, "75")):
        dataset = dcmread(tmp_path / "pet" / f"slice00{k}.dcm")
        dataset.PatientWeight = weight
        dataset.save_as(tmp_path / "pet" / f"slice00{k}.dcm")
    with pytest.raises(SuvError) as error:
        suv_factor(tmp_path / "pet")
    assert (
        "the slices disagree on PatientWeight (0010,1030): 70 in 6 slice(s) (slice000.dcm, "
        "slice001.dcm, ...); 75 in 2 slice(s) (slice003.dcm, slice005.dcm); one series must "
        "have one value"
    ) in str(error.value)
    dataset = dcmread(tmp_path / "pet" / "slice003.dcm")
    dataset.PatientWeight = "70"
    dataset.SeriesTime = "101500"
    dataset.save_as(tmp_path / "pet" / "slice003.dcm")
    with pytest.raises(SuvError) as error:
        suv_factor(tmp_path / "pet")
    assert "disagree on PatientWeight" in str(error.value)
    dataset = dcmread(tmp_path / "pet" / "slice005.dcm")
    dataset.PatientWeight = "70"
    dataset.save_as(tmp_path / "pet" / "slice005.dcm")
    with pytest.raises(SuvError) as error:
        suv_factor(tmp_path / "pet")
    assert "disagree on SeriesTime (0008,0031) (dates and times not shown): value 1 in 7 " in (
        str(error.value)
    )
    assert_no_date_or_time(str(error.value).replace(str(tmp_path), ""))


def test_an_implausible_rescale_of_one_slice_is_named(tmp_path):
    slopes = SLOPES.copy()
    write_series(tmp_path / "pet", activity(), modality="PT", slopes=slopes)
    from pydicom import dcmread

    dataset = dcmread(tmp_path / "pet" / "slice004.dcm")
    dataset.RescaleSlope = "0"
    dataset.save_as(tmp_path / "pet" / "slice004.dcm")
    with pytest.raises(SuvError) as error:
        suv_factor(tmp_path / "pet")
    assert "tag RescaleSlope (0028,1053) is 0 Bq/ml per stored value, outside the plausible" in (
        str(error.value)
    )
    assert str(tmp_path / "pet" / "slice004.dcm") in str(error.value)


def test_an_injection_before_midnight_and_a_scan_after_it_without_dates(tmp_path):
    """The injection time alone, at 23:30, and the series at 00:30 the next day: 1 h."""
    pet = {
        "SeriesTime": "003000",
        "AcquisitionTime": "003000",
        "radiopharmaceutical": {
            "RadiopharmaceuticalStartDateTime": None,
            "RadiopharmaceuticalStartTime": "233000",
        },
    }
    write_series(tmp_path / "pet", activity(), modality="PT", slopes=SLOPES, pet=pet)
    assert suv_factor(tmp_path / "pet") == pytest.approx(FACTOR, rel=1e-12)


def test_a_ct_series_or_a_nifti_image_is_refused(tmp_path):
    write_series(tmp_path / "ct", activity().astype(np.int16))
    with pytest.raises(SuvError, match=r"Modality \(0008,0060\) is 'CT', not a PET series"):
        suv_factor(tmp_path / "ct")
    sitk.WriteImage(read_image(tmp_path / "ct"), str(tmp_path / "pet.nii.gz"))
    with pytest.raises(SuvError, match="needs the image to be a DICOM PET series folder"):
        suv_factor(tmp_path / "pet.nii.gz")


def test_the_block_accepts_bw_only():
    assert parse_config({"suv": "bw"}).suv == "bw"
    assert parse_config({}).suv is None
    with pytest.raises(ValueError, match="suv must be one of bw, got 'lbm'"):
        parse_config({"suv": "lbm"})


PARAMS = {
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": ["Maximum", "Mean", "Minimum"]},
    "setting": {"binWidth": 0.25},
    "radfusion": {"suv": "bw"},
}


def _cohort(tmp_path: Path, pets: dict[str, dict]) -> tuple[Path, np.ndarray]:
    inside = np.zeros((8, 12, 12), dtype=bool)
    inside[2:6, 3:9, 4:10] = True
    rows = []
    for patient, pet in pets.items():
        write_series(tmp_path / patient, activity(), modality="PT", slopes=SLOPES, pet=pet)
        mask = sitk.GetImageFromArray(inside.astype(np.uint8))
        mask.CopyInformation(read_image(tmp_path / patient))
        sitk.WriteImage(mask, str(tmp_path / f"{patient}_mask.nii.gz"))
        rows.append(
            {
                "patient_id": patient,
                "modality": "PET",
                "mask": "tumor",
                "image": patient,
                "mask_path": f"{patient}_mask.nii.gz",
            }
        )
    return write_manifest(tmp_path / "manifest.csv", rows), inside


@pytest.mark.parametrize(
    ("pet", "reason"),
    [
        ({"PatientWeight": None}, "cannot compute SUV: missing tag PatientWeight (0010,1030)"),
        (  # SUVs of 1,357 with exit 0 before
            {"PatientWeight": "70000"},
            "cannot compute SUV: tag PatientWeight (0010,1030) is 70000 kg, outside the "
            "plausible 1-400 kg (grams in the kilogram tag?)",
        ),
        (  # SUVs of 1,357,412 with exit 0 before
            {"radiopharmaceutical": {"RadionuclideTotalDose": "370"}},
            "cannot compute SUV: tag RadionuclideTotalDose (0018,1074) is 370 Bq, outside the "
            "plausible 1e+06-2e+10 Bq (MBq in the becquerel tag?)",
        ),
    ],
)
def test_extraction_with_suv_bw_gives_suv_features_and_names_the_patient_on_error(
    tmp_path, pet, reason
):
    manifest, inside = _cohort(tmp_path, {"001": {}, "002": pet})
    result = extract_cohort(manifest, {"PET": PARAMS}, n_jobs=1, progress=False)
    roi = activity()[inside] * FACTOR
    row = result.features.set_index("patient_id").loc["001"]
    assert row["PET__tumor__original_firstorder_Maximum"] == pytest.approx(roi.max(), rel=1e-9)
    assert row["PET__tumor__original_firstorder_Mean"] == pytest.approx(roi.mean(), rel=1e-9)
    (error,) = result.failures["error"]
    assert error == (
        f"patient 002, modality PET, mask tumor, file {tmp_path / '002'}: {reason} (file "
        f"{tmp_path / '002' / 'slice000.dcm'})"
    )


def test_check_flags_pet_headers_that_cannot_give_the_suv(tmp_path):
    manifest, _ = _cohort(tmp_path, {"001": {}, "002": {"Units": "CNTS"}})
    table = check_cohort(manifest, n_jobs=1, params={"PET": PARAMS}).set_index("patient_id")
    assert table.loc["001", "status"] == "ok"
    assert table.loc["002", "status"] == "would fail"
    assert "Units (0054,1001) is 'CNTS'; only BQML" in table.loc["002", "problem"]
    unconverted = check_cohort(manifest, n_jobs=1, params={"PET": {**PARAMS, "radfusion": {}}})
    assert list(unconverted["status"]) == ["ok", "ok"]


def test_extract_case_converts_a_pet_folder_and_refuses_an_image_it_cannot_convert(tmp_path):
    from radfusion.features.extract import extract_case

    manifest, inside = _cohort(tmp_path, {"001": {}})
    mask = tmp_path / "001_mask.nii.gz"
    features, _ = extract_case(tmp_path / "001", mask, PARAMS)
    roi = activity()[inside] * FACTOR
    assert features["original_firstorder_Maximum"] == pytest.approx(roi.max(), rel=1e-9)
    with pytest.raises(ValueError, match="suv: give the image as its DICOM PET series folder"):
        extract_case(read_image(tmp_path / "001"), mask, PARAMS)


def test_check_and_extract_name_a_weight_in_grams_through_the_command_line(tmp_path):
    """The user's path: ``check`` flags the patient before any extraction, ``extract`` keeps
    the good patient and records the other in failures.csv, never an SUV of 1,357."""
    import yaml
    from typer.testing import CliRunner

    from radfusion.pipeline.cli import EXIT_CASES_FAILED, app

    manifest, _ = _cohort(tmp_path, {"001": {}, "002": {"PatientWeight": "70000"}})
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "PET.yaml").write_text(yaml.safe_dump(PARAMS), encoding="utf-8")
    options = ["--params", str(tmp_path / "params"), "--jobs", "1"]
    runner = CliRunner()
    checked = runner.invoke(app, ["check", str(manifest), *options])
    assert "would fail" in checked.output and "70000 kg" in checked.output
    out = tmp_path / "features.csv"
    extracted = runner.invoke(app, ["extract", str(manifest), "--out", str(out), *options])
    assert extracted.exit_code == EXIT_CASES_FAILED, extracted.output
    assert "patient 002" in extracted.output and "grams in the kilogram tag?" in extracted.output
    assert list(pd.read_csv(out, dtype={"patient_id": str})["patient_id"]) == ["001"]
