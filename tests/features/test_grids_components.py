"""One grid comparison and one connected-component labelling, pinned on tiny images.

Manifest validation, ``radfusion check``, extraction and mask alignment all compare grids
with :func:`radfusion.features.io.compare_grids`; ``check``'s component count and the
``lesions`` modes of extraction both come from :func:`radfusion.features.extract.lesions`.
These tests pin what they say, and that the callers agree on the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.check import check_cohort
from radfusion.features.extract import lesion_extents, lesion_mask, lesions
from radfusion.features.io import ImageHeader, compare_grids
from radfusion.features.manifest import roi_problems
from radfusion.features.preprocess import AlignMask, misalignment
from radfusion.features.runner import expand_lesions, extract_cohort
from tests.features.conftest import write_manifest

SHAPE = (6, 8, 10)  # z, y, x
PARAMS = {"imageType": {"Original": {}}, "featureClass": {"shape": None}, "setting": {}}


def image(array: np.ndarray, spacing=(1.0, 1.0, 2.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    out = sitk.GetImageFromArray(array)
    out.SetSpacing(spacing)
    out.SetOrigin(origin)
    return out


def header(**geometry) -> ImageHeader:
    return ImageHeader.of(image(np.zeros(SHAPE, np.uint8), **geometry))


def test_equal_grids_and_differences_within_tolerance_match():
    assert compare_grids(header(), header()) == []
    assert compare_grids(header(), header(origin=(0.0, 0.0, 0.0005))) == []
    assert compare_grids(header(), header(spacing=(1.0, 1.0, 2.0015))) == []


def test_each_grid_difference_is_one_sentence():
    moved = header(origin=(3.0, 4.0, 0.0))
    assert compare_grids(header(), moved) == [
        "origin differs by 5 mm: image (0, 0, 0), mask (3, 4, 0)"
    ]
    assert compare_grids(header(), header(spacing=(1.0, 1.0, 2.5))) == [
        "spacing differs by 0.2 relative: image (1, 1, 2), mask (1, 1, 2.5)"
    ]
    turned = image(np.zeros(SHAPE, np.uint8))
    turned.SetDirection((0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0))
    (direction,) = compare_grids(header(), ImageHeader.of(turned))
    assert direction.startswith("direction differs by 1 (largest cosine difference): image (1,")
    small = ImageHeader.of(image(np.zeros((6, 8, 9), np.uint8)))
    assert compare_grids(header(), small) == [
        "size differs: image (10, 8, 6), mask (9, 8, 6)"
    ]  # a size difference says nothing more: the other properties cannot be compared


def test_alignment_tolerance_is_the_same_comparison_with_wider_limits():
    near, far = header(origin=(0.3, 0.0, 0.0)), header(origin=(0.8, 0.0, 0.0))
    config = AlignMask()  # origin: half the smallest spacing (0.5 mm)
    assert compare_grids(header(), near) != [] and misalignment(header(), near, config) == []
    assert misalignment(header(), far, config) == [
        "origin differs by 0.8 mm, beyond the align_mask tolerance 0.5 mm"
    ]
    assert misalignment(header(), far, config) == compare_grids(
        header(), far, origin_mm=0.5, spacing=config.spacing_tolerance, setting="align_mask"
    )
    assert misalignment(header(), header(spacing=(1.0, 1.0, 2.5)), config) == [
        "spacing differs by 0.2 relative, beyond the align_mask tolerance 0.001"
    ]


def test_validation_check_and_extraction_report_the_same_grid_difference(tmp_path: Path):
    rng = np.random.default_rng(0)
    values = rng.integers(0, 100, SHAPE).astype(np.int16)
    roi = np.zeros(SHAPE, np.uint8)
    roi[1:5, 2:6, 2:8] = 1
    sitk.WriteImage(image(values), str(tmp_path / "image.nii.gz"))
    sitk.WriteImage(image(roi, origin=(0.0, 2.0, 0.0)), str(tmp_path / "mask.nii.gz"))
    manifest = write_manifest(
        tmp_path / "manifest.csv",
        [
            dict(
                patient_id="P1",
                modality="CT",
                mask="tumor",
                image="image.nii.gz",
                mask_path="mask.nii.gz",
            )
        ],
    )
    expected = "origin differs by 2 mm: image (0, 0, 0), mask (0, 2, 0)"
    image_header = ImageHeader.of(sitk.ReadImage(str(tmp_path / "image.nii.gz")))
    mask_header = ImageHeader.of(sitk.ReadImage(str(tmp_path / "mask.nii.gz")))
    assert compare_grids(image_header, mask_header) == [expected]
    assert roi_problems(image_header, mask_header, None, 1) == [
        f"mask and image are on different grids: {expected}"
    ]
    assert check_cohort(manifest, n_jobs=1, params={"CT": PARAMS})["grid"].tolist() == [expected]
    failure = extract_cohort(manifest, {"CT": PARAMS}, n_jobs=1, progress=False).failures
    assert f"mask and image are on different grids: {expected}" in failure["error"].iloc[0]


def components_mask() -> np.ndarray:
    """Four 26-connected components (z, y, x), sizes by hand: 8, 3, 2, 2."""
    mask = np.zeros(SHAPE, np.uint8)
    mask[0, 0, 0] = mask[1, 1, 1] = 1  # corner-touching pair: 2 voxels, extent 2x2x2
    mask[4, 6, 0:3] = 1  # a 3-voxel line along x: extent 3x1x1
    mask[2:4, 2:4, 5:7] = 1  # a 2x2x2 cube: 8 voxels
    mask[5, 0, 8:10] = 1  # a 2-voxel pair along x, last in scan order: extent 2x1x1
    mask[3, 7, 9] = 2  # another label: ignored
    return mask


def test_components_are_26_connected_largest_first_ties_in_scan_order():
    mask = image(components_mask())
    # x, y, z extents; the two 2-voxel components keep scan order (z, then y, then x)
    assert lesion_extents(mask, 1) == [
        (8, (2, 2, 2)),
        (3, (3, 1, 1)),
        (2, (2, 2, 2)),
        (2, (2, 1, 1)),
    ]
    labelled = sitk.GetArrayFromImage(lesions(mask, 1))
    assert labelled[0, 0, 0] == labelled[1, 1, 1] == 3 and labelled[5, 0, 9] == 4
    assert labelled[3, 7, 9] == 0
    assert lesion_extents(mask, 2) == [(1, (1, 1, 1))]
    assert lesion_extents(mask, 7) == []
    second = sitk.GetArrayFromImage(lesion_mask(mask, 1, 2))
    assert second.sum() == 3 and second[4, 6].tolist()[:3] == [1, 1, 1]


@pytest.mark.parametrize("lesions_mode", ["each", "largest"])
def test_check_and_extraction_see_the_same_components(tmp_path: Path, lesions_mode: str):
    sitk.WriteImage(image(np.ones(SHAPE, np.int16)), str(tmp_path / "image.nii.gz"))
    sitk.WriteImage(image(components_mask()), str(tmp_path / "mask.nii.gz"))
    row = dict(
        patient_id="P1",
        modality="CT",
        mask="tumor",
        image=str(tmp_path / "image.nii.gz"),
        mask_path=str(tmp_path / "mask.nii.gz"),
        label=1,
        lesions=lesions_mode,
    )
    table = check_cohort(write_manifest(tmp_path / "m.csv", [row]), n_jobs=1, params={})
    assert table["components"].tolist() == [4]
    cases = expand_lesions({k: v for k, v in row.items()})
    expected = 4 if lesions_mode == "each" else 1
    assert [c["lesion"] for c in cases] == list(range(1, expected + 1))
