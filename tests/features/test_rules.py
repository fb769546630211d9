"""Per-case rules shared by check and extraction; non-finite voxels; parameter fallbacks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.io import ImageHeader, nonfinite_voxels
from radfusion.features.params import SHIPPED_DIR, fallback_notes, load_params, params_files
from radfusion.features.preprocess import parse_config
from radfusion.features.rules import dimension_problems, fill_nonfinite, nonfinite_problems


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
@pytest.mark.parametrize("pixel", [np.float32, np.float64])
def test_nonfinite_voxels_are_found_where_the_file_holds_them(tmp_path, suffix, pixel):
    voxels = np.arange(5 * 6 * 7, dtype=pixel).reshape(5, 6, 7)
    voxels[4, 1, 2], voxels[0, 0, 0], voxels[2, 5, 6] = np.nan, np.inf, -np.inf
    path = tmp_path / f"image{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(voxels), str(path))
    found = nonfinite_voxels(path)
    assert found is not None and found.shape == (5, 6, 7)
    assert np.argwhere(found).tolist() == [[0, 0, 0], [2, 5, 6], [4, 1, 2]]
    finite = tmp_path / f"finite{suffix}"
    sitk.WriteImage(sitk.GetImageFromArray(np.nan_to_num(voxels)), str(finite))
    assert nonfinite_voxels(finite) is None


def test_integer_images_are_not_read_for_nonfinite_voxels(tmp_path):
    path = tmp_path / "ct.nii.gz"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((3, 4, 5), np.int16)), str(path))
    assert nonfinite_voxels(path) is None


def test_nonfinite_rule_inside_outside_and_fill():
    nonfinite = np.zeros((4, 4, 4), bool)
    roi = np.zeros((4, 4, 4), bool)
    roi[1:3, 1:3, 1:3] = True
    assert nonfinite_problems(None, roi) == []
    nonfinite[0, 0, 0] = True  # outside the ROI
    (outside,) = nonfinite_problems(nonfinite, roi, path="img.nii.gz")
    assert "image img.nii.gz has 1 NaN or infinite voxel(s) outside the ROI" in outside
    assert "fill_non_finite" in outside
    assert nonfinite_problems(nonfinite, roi, fill=0.0) == []
    nonfinite[1, 1, 1] = True  # inside: fails even with a fill value
    (inside,) = nonfinite_problems(nonfinite, roi, fill=0.0)
    assert "1 NaN or infinite voxel(s) inside the ROI" in inside

    image = sitk.GetImageFromArray(np.where(nonfinite, np.nan, 1.0).astype(np.float32))
    filled = sitk.GetArrayFromImage(fill_nonfinite(image, nonfinite, -7.0))
    assert filled[0, 0, 0] == -7.0 and filled[1, 1, 1] == -7.0 and np.isfinite(filled).all()


@pytest.mark.parametrize(
    ("size", "expected"),
    [((8, 8, 8), None), ((8, 8), "2-D (size 8x8)"), ((8, 8, 8, 2), "4-D (size 8x8x8x2)")],
)
def test_only_3d_images_pass(size, expected):
    header = ImageHeader(
        size, (1.0,) * len(size), (0.0,) * len(size), tuple(np.eye(len(size)).ravel())
    )
    problems = dimension_problems(header, "image", "a.nii.gz")
    assert problems == [] if expected is None else expected in problems[0]


@pytest.mark.parametrize("value", ["zero", float("nan"), True, [0]])
def test_fill_non_finite_must_be_a_finite_number(value):
    with pytest.raises(ValueError, match="fill_non_finite must be a finite number"):
        parse_config({"fill_non_finite": value})
    assert parse_config({"fill_non_finite": 0}).fill_non_finite == 0.0


def test_fallbacks_are_noted_and_warned(tmp_path: Path):
    assert fallback_notes(None, ["CT", "MR"]) == []  # the documented defaults of known kinds
    (unknown,) = fallback_notes(None, ["US", "CT"])
    assert unknown.startswith("modality US: no parameters given; the name matches no known")
    assert unknown.endswith("using the shipped default.yaml parameters")

    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "CT.yaml").write_text((SHIPPED_DIR / "ct.yaml").read_text())
    (folder / "T2W.yaml").write_text((SHIPPED_DIR / "mr.yaml").read_text())
    notes = fallback_notes(folder, ["CT", "MR"])
    assert notes == [
        f"modality MR: no MR.yaml in {folder}: using the shipped mr.yaml parameters",
        f"parameter file {folder / 'T2W.yaml'} matches no modality of the manifest (CT, MR): "
        "ignored",
    ]
    assert params_files(folder, ["CT", "MR"]) == {
        "CT": folder / "CT.yaml",
        "MR": SHIPPED_DIR / "mr.yaml",
    }
    with pytest.warns(UserWarning) as caught:
        load_params(folder, ["CT", "MR"])
    assert [str(w.message) for w in caught if "parameter" in str(w.message)] == notes


def test_extract_case_applies_the_nonfinite_rule_to_files_and_images(tmp_path):
    from radfusion.features.extract import extract_case
    from tests.features.conftest import sphere_case

    image, mask = sphere_case(0)
    voxels = sitk.GetArrayFromImage(image).astype(np.float32)
    voxels[0, 0, :] = np.nan  # background only
    broken = sitk.GetImageFromArray(voxels)
    broken.CopyInformation(image)
    path = tmp_path / "image.nii.gz"
    sitk.WriteImage(broken, str(path))
    params = {"featureClass": {"firstorder": ["Mean", "Minimum"]}}
    for given in (path, broken):  # ITK reads the file's NaN as 0: found all the same
        with pytest.raises(ValueError, match="24 NaN or infinite voxel"):
            extract_case(given, mask, params)
    filled, _ = extract_case(path, mask, {**params, "radfusion": {"fill_non_finite": 0}})
    clean = sitk.Cast(image, sitk.sitkFloat32)
    assert filled == extract_case(clean, mask, params)[0]  # the ROI's values are unchanged


def test_validate_cohort_with_images_refuses_a_4d_image_like_extraction(tmp_path):
    from radfusion.features.errors import InputError
    from radfusion.features.manifest import validate_cohort
    from tests.features.conftest import sphere_case, write_case

    image, mask = sphere_case(0)
    manifest = write_case(
        tmp_path,
        sitk.JoinSeries([image, image]),
        mask,
        {"patient_id": "007"},
        image_file="image.nii.gz",
        mask_file="mask.nii.gz",
    )
    with pytest.raises(InputError) as caught:
        validate_cohort(manifest, check_images=True)
    (problem,) = caught.value.problems
    assert (problem.patient_id, problem.file) == ("007", str(tmp_path / "image.nii.gz"))
    assert problem.message.startswith("image is 4-D (size 24x24x24x2)")
