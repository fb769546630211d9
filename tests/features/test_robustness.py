"""ICC(3,1) and the mask-perturbation robustness table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radfusion.features.robustness import icc_3_1, icc_table, perturb_mask, perturbed_tables
from tests.features.conftest import write_manifest

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; ICC(3,1) = 0.71.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
                          [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]])
PARAMS = {"CT": {"imageType": {"Original": {}},
                 "featureClass": {"shape": ["VoxelVolume", "Sphericity"], "firstorder": ["Mean"]},
                 "setting": {"binWidth": 25}}}


@pytest.mark.parametrize(("ratings", "expected"), [
    (SHROUT_FLEISS, 0.7148),
    (np.tile([[1.0], [3.0], [2.0], [7.0]], (1, 3)), 1.0),  # perfect agreement
    (np.array([[1.0, 2.0], [5.0, 6.0], [9.0, 10.0]]), 1.0),  # consistency: offsets ignored
    (np.ones((4, 3)), np.nan),  # no variance at all: undefined
])
def test_icc_3_1(ratings: np.ndarray, expected: float) -> None:
    assert icc_3_1(ratings) == pytest.approx(expected, abs=1e-4, nan_ok=True)


def test_icc_table_drops_incomplete_patients() -> None:
    index = pd.Index(["a", "b", "c", "d"], name="patient_id")
    original = pd.DataFrame({"CT__t__f": [1.0, 2.0, 3.0, 4.0]}, index=index)
    perturbed = pd.DataFrame({"CT__t__f": [1.0, 2.0, 3.0, np.nan]}, index=index)
    table = icc_table({"original": original, "erode": perturbed})
    assert table.to_dict("records") == [{"feature": "CT__t__f", "icc": 1.0, "n_patients": 3}]


@pytest.mark.parametrize(("perturbation", "voxels"), [
    ("erode", 1), ("dilate", 5**3 - 8), ("shift_x+1", 27), ("shift_y-1", 27)])
def test_perturb_mask(perturbation: str, voxels: int) -> None:
    array = np.zeros((7, 7, 7), np.uint8)
    array[2:5, 2:5, 2:5] = 3
    out = sitk.GetArrayFromImage(perturb_mask(sitk.GetImageFromArray(array), 3, perturbation))
    assert out.sum() == voxels
    if perturbation == "shift_x+1":
        assert out[3, 3, 5] == 1 and out[3, 3, 2] == 0


def _cohort(folder: Path, n: int = 6) -> Path:
    rows = []
    z, y, x = np.indices((20, 20, 20))
    rng = np.random.default_rng(1)
    for i in range(n):
        radius = 1.2 if i == 0 else 3.0 + 0.6 * i  # P0: a 7-voxel ROI that erosion empties
        inside = (x - 10) ** 2 + (y - 10) ** 2 + (z - 10) ** 2 <= radius**2
        image = sitk.GetImageFromArray((rng.normal(0, 10, inside.shape) + 50 * inside)
                                       .astype(np.int16))
        mask = sitk.GetImageFromArray(inside.astype(np.uint8))
        sitk.WriteImage(image, str(folder / f"P{i}_img.nii.gz"))
        sitk.WriteImage(mask, str(folder / f"P{i}_mask.nii.gz"))
        rows.append(dict(patient_id=f"P{i}", modality="CT", mask="tumor",
                         image=f"P{i}_img.nii.gz", mask_path=f"P{i}_mask.nii.gz", site="A"))
    return write_manifest(folder / "manifest.csv", rows)


def test_robustness_end_to_end(tmp_path: Path) -> None:
    from radfusion.features.robustness import robustness_icc

    manifest = _cohort(tmp_path)
    tables = perturbed_tables(manifest, PARAMS, ("erode", "shift"), n_jobs=1,
                              cache_dir=tmp_path / "cache")
    assert list(tables) == ["original", "erode", "shift_x+1", "shift_x-1", "shift_y+1",
                            "shift_y-1"]
    volume = "CT__tumor__original_shape_VoxelVolume"
    assert np.isnan(tables["erode"].loc["P0", volume])  # erosion emptied the tiny ROI
    shifts = icc_table({k: v for k, v in tables.items() if k != "erode"}).set_index("feature")
    assert shifts.loc[volume, "icc"] == pytest.approx(1.0)  # a shift keeps the shape
    assert shifts.loc[volume, "n_patients"] == 6
    out = tmp_path / "icc.csv"
    table = robustness_icc(manifest, PARAMS, ("erode", "shift"), n_jobs=1,
                           cache_dir=tmp_path / "cache", out=out)  # all from the cache
    assert list(table.columns) == ["feature", "icc", "n_patients"]
    assert set(table["feature"]) == {"CT__tumor__original_shape_VoxelVolume",
                                     "CT__tumor__original_shape_Sphericity",
                                     "CT__tumor__original_firstorder_Mean"}
    assert table.set_index("feature").loc[volume, "n_patients"] == 5  # P0 left out
    assert table.set_index("feature").loc[volume, "icc"] > 0.9  # volumes differ a lot
    pd.testing.assert_frame_equal(pd.read_csv(out), table)
