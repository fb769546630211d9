"""Bad cases are recorded in the failures table, the others finish; ``strict`` stops instead."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radfusion.features.cache import FeatureCache
from radfusion.features.errors import InputError
from radfusion.features.manifest import validate_cohort
from radfusion.features.runner import CaseFailedError, extract_cohort
from radfusion.features.table import write_extraction
from tests.features.conftest import read_rows, write_manifest

GOOD = [("G1", "CT", 1), ("G2", "CT", 2), ("G3", "CT", 3), ("G4", "CT", 4)]
BAD = [("B1", "CT", 5), ("B2", "CT", 6), ("B3", "CT", 7), ("B4", "CT", 8)]


def _truncate(root: Path, row: dict) -> str:
    path = root / row["image"]
    path.write_bytes(path.read_bytes()[:-100])
    return str(path)


def _empty(root: Path, row: dict) -> str:
    path = root / row["mask_path"]
    mask = sitk.ReadImage(str(path))
    sitk.WriteImage(mask * 0, str(path))
    return str(path)


def _absent_label(root: Path, row: dict) -> str:
    row["label"] = 2
    return str(root / row["mask_path"])


def _other_grid(root: Path, row: dict) -> str:
    path = root / row["mask_path"]
    mask = sitk.ReadImage(str(path))
    mask.SetOrigin((-12.0, -12.0, -10.0))
    sitk.WriteImage(mask, str(path))
    return str(path)


# patient -> (how it breaks, words the message must hold)
BREAKS = {
    "B1": (_truncate, "truncated NIfTI file: the header announces 28000 bytes, the file holds"),
    "B2": (_empty, "empty mask: no voxel has label 1; values present: 0"),
    "B3": (_absent_label, "empty mask: no voxel has label 2; values present: 0, 1"),
    "B4": (_other_grid, "mask and image are on different grids: origin differs by 2 mm"),
}


@pytest.fixture
def broken_cohort(write_cohort) -> tuple[Path, dict[str, str]]:
    """Four good cases and four bad ones; returns the manifest and each bad case's file."""
    manifest = write_cohort(GOOD + BAD)
    rows = read_rows(manifest)
    files = {}
    for row in rows:
        if row["patient_id"] in BREAKS:
            files[row["patient_id"]] = BREAKS[row["patient_id"]][0](manifest.parent, row)
    write_manifest(manifest, rows)
    return manifest, files


def test_bad_cases_are_recorded_and_good_cases_complete(broken_cohort, tmp_path):
    manifest, files = broken_cohort
    result = extract_cohort(manifest, n_jobs=2, progress=False, cache_dir=tmp_path / "cache")

    failures = result.failures
    assert list(failures["patient_id"]) == ["B1", "B2", "B3", "B4"]
    for failure in failures.to_dict("records"):
        pid = failure["patient_id"]
        assert failure["file"] == files[pid]
        assert failure["error"].startswith(
            f"patient {pid}, modality CT, mask tumor, file {files[pid]}: "
        )
        assert BREAKS[pid][1] in failure["error"], failure["error"]
        assert "Traceback" not in failure["error"] and "\n" not in failure["error"]

    table = result.features.set_index("patient_id")
    assert list(table.index) == ["G1", "G2", "G3", "G4"]  # patients without any case: absent
    assert table.notna().all().all() and table.shape[1] > 90
    assert list(result.diagnostics["patient_id"]) == ["G1", "G2", "G3", "G4"]
    assert result.summary() == "8 case(s): 4 extracted (0 from the cache), 4 failed"
    assert len(FeatureCache(tmp_path / "cache")) == 4  # failures are not cached

    written = write_extraction(result, tmp_path / "out" / "features.csv")
    on_disk = pd.read_csv(written["failures"], dtype=str)
    pd.testing.assert_frame_equal(on_disk, failures.astype(str))


def test_a_bad_case_leaves_nan_in_its_columns_only(broken_cohort):
    manifest, _ = broken_cohort
    rows = read_rows(manifest)
    for row in rows:  # B2 also has a good MR case, so B2 stays in the table
        if row["patient_id"] == "G1":
            rows.append({**row, "patient_id": "B2", "modality": "MR"})
    write_manifest(manifest, rows)
    table = extract_cohort(manifest, n_jobs=1, progress=False).features.set_index("patient_id")
    ct = [c for c in table.columns if c.startswith("CT__")]
    mr = [c for c in table.columns if c.startswith("MR__")]
    assert table.loc["B2", ct].isna().all() and table.loc["B2", mr].notna().all()
    assert table.loc["G1", ct].notna().all() and table.loc["G1", mr].isna().all()


def test_roi_too_small_for_pyradiomics_is_a_failure(write_cohort):
    manifest = write_cohort(GOOD[:2])
    rows = read_rows(manifest)
    path = manifest.parent / rows[1]["mask_path"]
    mask = sitk.ReadImage(str(path))
    voxels = np.zeros(sitk.GetArrayViewFromImage(mask).shape, np.uint8)
    voxels[12, 12, 12] = 1
    single = sitk.GetImageFromArray(voxels)
    single.CopyInformation(mask)
    sitk.WriteImage(single, str(path))
    result = extract_cohort(manifest, n_jobs=1, progress=False)
    (failure,) = result.failures.to_dict("records")
    assert failure["patient_id"] == "G2" and failure["file"] == str(path)
    assert "ValueError: mask only contains 1 segmented voxel!" in failure["error"]
    assert list(result.features["patient_id"]) == ["G1"]


def test_strict_stops_at_the_first_failure(broken_cohort, tmp_path):
    manifest, files = broken_cohort
    with pytest.raises(CaseFailedError) as error:
        extract_cohort(
            manifest, n_jobs=2, progress=False, strict=True, cache_dir=tmp_path / "cache"
        )
    failure = error.value.failure
    assert failure["patient_id"] in BREAKS and failure["file"] == files[failure["patient_id"]]
    assert str(error.value) == failure["error"]
    assert BREAKS[failure["patient_id"]][1] in str(error.value)
    # what finished before the stop is cached: a later non-strict run reuses it
    stored = len(FeatureCache(tmp_path / "cache"))
    result = extract_cohort(manifest, n_jobs=1, progress=False, cache_dir=tmp_path / "cache")
    assert result.n_cached == stored and len(result.failures) == 4


def test_validation_leaves_image_problems_to_extraction(broken_cohort):
    manifest, files = broken_cohort
    validate_cohort(manifest, check_images=False)  # structural checks only: passes
    with pytest.raises(InputError) as error:
        validate_cohort(manifest)
    named = sorted({p.file for p in error.value.problems})
    assert named == sorted(files.values())

    rows = read_rows(manifest)
    rows[0]["mask_path"] = "masks/absent.nii.gz"  # a missing file is a manifest error
    write_manifest(manifest, rows)
    with pytest.raises(InputError, match="row 1, patient G1, file .*absent.nii.gz: mask file"):
        extract_cohort(manifest, n_jobs=1, progress=False)


def test_cli_extract_exits_nonzero_with_exactly_the_four_bad_cases(broken_cohort, tmp_path):
    from typer.testing import CliRunner

    from radfusion.pipeline.cli import EXIT_CASES_FAILED, app

    manifest, _ = broken_cohort
    out = tmp_path / "features.parquet"
    result = CliRunner().invoke(app, ["extract", str(manifest), "--out", str(out), "--jobs", "2"])
    assert result.exit_code == EXIT_CASES_FAILED, result.output
    assert "8 case(s): 4 extracted (0 from the cache), 4 failed" in result.output
    failures = pd.read_csv(tmp_path / "features.failures.csv", dtype=str)
    assert list(failures["patient_id"]) == ["B1", "B2", "B3", "B4"]
    assert list(pd.read_parquet(out)["patient_id"]) == ["G1", "G2", "G3", "G4"]
