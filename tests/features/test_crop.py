"""Resampling computes only the grid around the ROI (issue 25): values unchanged.

radfusion's ``resample`` (IBSI mode and standard) used to interpolate the whole scan; it now
computes the part of the same grid that covers the ROI plus the margin the filters read
(:func:`radfusion.features.preprocess.filter_margin`), so memory follows the ROI.
"""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.extract import extract_case
from radfusion.features.preprocess import Resample, filter_margin, resample


def scan(seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """An oblique, anisotropic int16 scan (0.7 x 0.8 x 2.5 mm) with a small textured ROI far
    from its centre."""
    rng = np.random.default_rng(seed)
    shape = (18, 60, 70)
    z, y, x = np.indices(shape)
    inside = ((x - 50.2) / 6) ** 2 + ((y - 16.7) / 5) ** 2 + ((z - 11.3) / 2.4) ** 2 <= 1
    voxels = rng.normal(0, 30, shape) + 80 * inside + 3 * x
    image = sitk.GetImageFromArray(np.rint(voxels).astype(np.int16))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    angle = 0.3
    direction = (np.cos(angle), -np.sin(angle), 0, np.sin(angle), np.cos(angle), 0, 0, 0, 1)
    for item in (image, mask):
        item.SetSpacing((0.7, 0.8, 2.5))
        item.SetOrigin((-20.0, 13.0, 40.0))
        item.SetDirection(direction)
    return image, mask


@pytest.mark.parametrize(
    "spacing", [(1.0, 1.0, 1.0), (1.3, 0.9, 2.0)], ids=["isotropic", "anisotropic"]
)
@pytest.mark.parametrize("margin", [0, 3])
def test_the_cut_grid_holds_the_whole_grids_values_around_the_roi(spacing, margin):
    image, mask = scan()
    config = Resample(spacing, "linear", "ibsi")
    whole_image, whole_mask = resample(image, mask, 1, config)
    image_cut, mask_cut = resample(image, mask, 1, config, margin=margin)
    assert np.prod(image_cut.GetSize()) < np.prod(whole_image.GetSize()) / 10
    # the same voxel centres: the cut's origin is a voxel of the whole grid
    index = whole_image.TransformPhysicalPointToContinuousIndex(image_cut.GetOrigin())
    np.testing.assert_allclose(index, np.round(index), atol=1e-6)
    start = [int(round(v)) for v in index]
    part = sitk.GetArrayFromImage(sitk.RegionOfInterest(whole_image, image_cut.GetSize(), start))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(image_cut), part)
    part_mask = sitk.GetArrayFromImage(sitk.RegionOfInterest(whole_mask, mask_cut.GetSize(), start))
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(mask_cut), part_mask)
    # nothing of the ROI is left out, and the margin is there
    assert (
        sitk.GetArrayViewFromImage(mask_cut).sum() == sitk.GetArrayViewFromImage(whole_mask).sum()
    )
    roi = np.argwhere(sitk.GetArrayViewFromImage(mask_cut))
    assert (roi.min(axis=0) >= margin).all()
    assert (np.array(mask_cut.GetSize()[::-1]) - 1 - roi.max(axis=0) >= margin).all()


def test_ibsi_mode_features_are_those_of_the_whole_grid():
    image, mask = scan(1)
    params = {
        "imageType": {"Original": {}, "LoG": {"sigma": [1.0]}},
        "featureClass": {c: None for c in ("shape", "firstorder", "glcm", "glszm", "ngtdm")},
        "setting": {"binWidth": 25},
    }
    spacing = [1.0, 1.0, 1.0]
    cut, _ = extract_case(
        image,
        mask,
        {**params, "radfusion": {"resample": {"spacing": spacing, "mode": "ibsi"}}},
        modality="CT",
    )
    whole_image, whole_mask = resample(
        image, mask, 1, Resample(tuple(spacing), "linear", "ibsi"), round_intensities=True
    )
    whole, _ = extract_case(whole_image, whole_mask, {**params, "radfusion": {"ibsi": True}})
    assert list(cut) == list(whole)
    original = [k for k in whole if k.startswith("original_")]
    assert len(original) > 70
    assert {k: cut[k] for k in original} == {k: whole[k] for k in original}
    for name in set(whole) - set(original):  # LoG: cut 16 sigma away from the ROI
        assert cut[name] == pytest.approx(whole[name], rel=1e-6, abs=1e-9), name


def test_the_margin_covers_pyradiomics_pad_and_the_filters():
    assert filter_margin({"setting": {}}, (1.0, 1.0, 1.0)) == 5
    assert filter_margin({"setting": {"padDistance": 2}}, (1.0,) * 3) == 2
    log = {"imageType": {"LoG": {"sigma": [1.0, 3.0]}}, "setting": {}}
    assert filter_margin(log, (0.5, 1.0, 1.0)) == 96  # 16 x 3 mm at 0.5 mm
    wavelet = {"imageType": {"Wavelet": {}}, "setting": {}}
    assert filter_margin(wavelet, (1.0,) * 3) == 12  # coif1: 6 taps x 2^1


def test_standard_resampling_computes_the_whole_grid():
    image, mask = scan()
    config = Resample((1.0, 1.0, 1.0), "bspline")
    whole, _ = resample(image, mask, 1, config)
    assert resample(image, mask, 1, config, margin=3)[0].GetSize() == whole.GetSize()
