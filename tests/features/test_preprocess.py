"""Preprocessing per modality: resampling, IBSI mode, mask alignment, normalisation, rings."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from scipy import ndimage

from radfusion.features.cache import FeatureCache
from radfusion.features.errors import InputError
from radfusion.features.extract import extract_case
from radfusion.features.params import load_params, read_params
from radfusion.features.preprocess import (
    CaseSpec,
    Normalize,
    Resample,
    align_mask,
    ibsi_grid,
    normalize,
    parse_config,
    preprocess,
    resample,
    ring_mask,
)
from radfusion.features.runner import extract_cohort
from tests.features.conftest import sphere_case, write_case, write_manifest

LIGHT = {
    "imageType": {"Original": {}},
    "featureClass": {"shape": None, "firstorder": None},
    "setting": {"binWidth": 25},
}


def light(block: dict | None = None) -> dict:
    params = copy.deepcopy(LIGHT)
    if block is not None:
        params["radfusion"] = block
    return params


def image_of(array: np.ndarray, spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0)) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    return image


def centre(image: sitk.Image) -> np.ndarray:
    index = [(s - 1) / 2 for s in image.GetSize()]
    return np.array(image.TransformContinuousIndexToPhysicalPoint(index))


# --- resampling -----------------------------------------------------------------------


def test_resample_spacing_size_and_rebinarised_mask():
    rng = np.random.default_rng(0)
    image = image_of(rng.normal(0, 10, (8, 20, 20)).astype(np.float32), spacing=(0.8, 0.8, 2.5))
    mask_array = np.zeros((8, 20, 20), np.uint8)
    mask_array[2:6, 5:15, 5:15] = 3
    mask_array[0, 0, 0] = 1  # another label: not part of the ROI
    mask = image_of(mask_array, spacing=(0.8, 0.8, 2.5))
    new_image, new_mask = resample(image, mask, 3, Resample((1.0, 1.0, 1.0), "linear"))
    for out in (new_image, new_mask):
        assert out.GetSpacing() == (1.0, 1.0, 1.0)
        assert out.GetSize() == (16, 16, 20)  # ceil(20 x 0.8), ceil(8 x 2.5)
        np.testing.assert_allclose(centre(out), centre(image), atol=1e-9)
    values = np.unique(sitk.GetArrayViewFromImage(new_mask))
    assert set(values) == {0, 3}
    assert new_mask.GetPixelID() == mask.GetPixelID()
    volume = (mask_array == 3).sum() * 0.8 * 0.8 * 2.5  # mm³; new voxels are 1 mm³
    assert abs((sitk.GetArrayViewFromImage(new_mask) == 3).sum() - volume) < 0.25 * volume


def test_ibsi_grid_is_centre_aligned_with_ceil_size():
    image = image_of(
        np.zeros((7, 11, 13), np.int16), spacing=(0.7, 0.9, 3.0), origin=(-5.0, 2.0, 10.0)
    )
    size, origin = ibsi_grid(image, (2.0, 2.0, 2.0))
    assert size == (5, 5, 11)  # ceil(9.1 / 2), ceil(9.9 / 2), ceil(21 / 2)
    new = sitk.Image(size, sitk.sitkUInt8)
    new.SetOrigin(origin)
    new.SetSpacing((2.0, 2.0, 2.0))
    np.testing.assert_allclose(centre(new), centre(image), atol=1e-9)


def test_ibsi_mask_kept_where_interpolated_value_reaches_one_half():
    # 4 voxels along x at spacing 1 -> 2 voxels at spacing 2, centred: new centres lie at
    # x = 0.5 and x = 2.5, halfway between old voxels 0|1 and 2|3.
    mask_array = np.zeros((2, 2, 4), np.uint8)
    mask_array[:, :, 1] = 1
    mask = image_of(mask_array)
    image = image_of(np.zeros((2, 2, 4), np.float32))
    config = Resample((2.0, 1.0, 1.0), "linear", "ibsi")
    _, new_mask = resample(image, mask, 1, config)
    assert new_mask.GetSize() == (2, 2, 2)
    assert np.all(sitk.GetArrayViewFromImage(new_mask)[:, :, 0] == 1)  # 0.5: kept
    assert np.all(sitk.GetArrayViewFromImage(new_mask)[:, :, 1] == 0)  # 0.0
    mask_array[:, :, 1] = 0
    mask_array[0, 0, 1] = 1  # one voxel: 0.5 at one new voxel only
    _, thin = resample(image, image_of(mask_array), 1, config)
    assert sitk.GetArrayViewFromImage(thin).sum() == 1


def test_ibsi_rounds_ct_intensities_only():
    rng = np.random.default_rng(1)
    image = image_of(rng.integers(-1000, 1000, (6, 6, 6)).astype(np.int16))
    mask = image_of(np.ones((6, 6, 6), np.uint8))
    block = {"resample": {"spacing": [0.7, 0.7, 0.7], "mode": "ibsi"}}
    ct, _ = preprocess(image, mask, CaseSpec.from_params(light(block), modality="CT"))
    mr, _ = preprocess(image, mask, CaseSpec.from_params(light(block), modality="MR_T2"))
    ct_values = sitk.GetArrayViewFromImage(ct)
    assert np.array_equal(ct_values, np.round(ct_values))
    assert not np.array_equal(
        sitk.GetArrayViewFromImage(mr), np.round(sitk.GetArrayViewFromImage(mr))
    )
    forced = light({"resample": {"spacing": [0.7] * 3, "mode": "ibsi", "round": False}})
    assert not np.array_equal(
        *(lambda v: (v, np.round(v)))(
            sitk.GetArrayFromImage(
                preprocess(image, mask, CaseSpec.from_params(forced, modality="CT"))[0]
            )
        )
    )


def test_resample_in_extract_case_changes_the_roi_grid():
    image, mask = sphere_case(0)
    _, plain = extract_case(image, mask, light())
    _, coarse = extract_case(image, mask, light({"resample": {"spacing": [2, 2, 2]}}))
    assert plain["diagnostics_Mask-original_Spacing"] == (1.0, 1.0, 1.0)
    assert coarse["diagnostics_Mask-original_Spacing"] == (2.0, 2.0, 2.0)
    voxels = "diagnostics_Mask-original_VoxelNum"
    ratio = plain[voxels] / coarse[voxels]
    assert 6 < ratio < 10


# --- parameters: defaults off, validation, cache key ------------------------------------


def test_empty_block_gives_identical_features():
    image, mask = sphere_case(3)
    params = load_params(None, ["CT"])["CT"]
    with_block = {**params, "radfusion": {}}
    assert parse_config({}).is_noop and parse_config(None).is_noop
    assert extract_case(image, mask, with_block) == extract_case(image, mask, params)


def test_a_case_spec_is_the_parameter_dict_parsed_once():
    image, mask = sphere_case(3)
    params = light({"resample": {"spacing": [2, 2, 2], "mode": "ibsi"}})
    spec = CaseSpec.from_params(params, label=1, modality="CT")
    assert spec.pyradiomics == LIGHT and spec.round_intensities
    assert spec.preprocessing == parse_config(params["radfusion"])
    assert extract_case(image, mask, spec) == extract_case(image, mask, params, modality="CT")
    with pytest.raises(TypeError, match="CaseSpec"):
        extract_case(image, mask, spec, label=1)
    with pytest.raises(ValueError, match="resampledPixelSpacing"):  # validated when parsed
        CaseSpec.from_params({**params, "setting": {"resampledPixelSpacing": [1, 1, 1]}})


def test_an_invalid_block_given_as_a_mapping_stops_extraction_before_any_case(tmp_path):
    manifest = write_manifest(
        tmp_path / "m.csv",
        [
            dict(
                patient_id="P1",
                modality="CT",
                mask="t",
                image="missing.nii.gz",
                mask_path="missing.nii.gz",
            )
        ],
    )
    rows = pd.read_csv(manifest, dtype=str)
    with pytest.raises(ValueError, match="invalid radfusion block of modality CT: unknown"):
        extract_cohort(rows, {"CT": light({"resampl": {}})}, n_jobs=1, progress=False)


def test_params_file_with_block_is_validated(tmp_path):
    shipped = load_params(None, ["CT"])["CT"]
    good = copy.deepcopy(shipped)
    del good["setting"]["resampledPixelSpacing"]
    good["radfusion"] = {
        "resample": {"spacing": [1, 1, 1], "mode": "ibsi"},
        "normalize": {"window": [-1000, 400]},
        "align_mask": True,
    }
    (tmp_path / "good.yaml").write_text(yaml.safe_dump(good))
    assert read_params(tmp_path / "good.yaml")["radfusion"] == good["radfusion"]
    both = {**shipped, "radfusion": {"resample": {"spacing": [1, 1, 1]}}}
    (tmp_path / "both.yaml").write_text(yaml.safe_dump(both))
    with pytest.raises(InputError, match="resampledPixelSpacing"):
        read_params(tmp_path / "both.yaml")
    for block in (
        {"resample": {"spacing": [1, 1, 1], "mode": "ibsi", "interpolator": "bspline"}},
        {"normalize": "minmax"},
        {"normalize": {"window": [400, -1000]}},
        {"resampl": {}},
    ):
        with pytest.raises(ValueError):
            parse_config(block)


def test_changing_the_block_changes_the_cache_key(tmp_path):
    image, mask = sphere_case(0)
    sitk.WriteImage(image, str(tmp_path / "i.nii.gz"))
    sitk.WriteImage(mask, str(tmp_path / "m.nii.gz"))
    cache = FeatureCache(tmp_path / "cache")
    keys = {
        cache.key(tmp_path / "i.nii.gz", tmp_path / "m.nii.gz", 1, light(block))
        for block in (None, {"normalize": "zscore"}, {"normalize": {"window": [0, 50]}})
    }
    assert len(keys) == 3


def test_cohort_recomputes_a_modality_when_its_block_changes(tmp_path):
    manifest = write_case(tmp_path, *sphere_case(0))
    run = {"n_jobs": 1, "progress": False, "cache_dir": tmp_path / "cache"}
    first = extract_cohort(manifest, {"CT": light()}, **run)
    assert extract_cohort(manifest, {"CT": light()}, **run).n_cached == 1
    window = extract_cohort(manifest, {"CT": light({"normalize": {"window": [0, 20]}})}, **run)
    assert window.n_cached == 0 and window.failures.empty
    assert (
        window.features["CT__tumor__original_firstorder_Maximum"].iloc[0]
        == 20.0
        != first.features["CT__tumor__original_firstorder_Maximum"].iloc[0]
    )


# --- normalisation ------------------------------------------------------------------------


def test_normalisations():
    rng = np.random.default_rng(2)
    array = rng.normal(40, 300, (10, 10, 10)).astype(np.float32)
    image = image_of(array)
    z = sitk.GetArrayFromImage(normalize(image, Normalize("zscore")))
    assert abs(z.mean()) < 1e-5 and abs(z.std() - 1) < 1e-5
    clipped = sitk.GetArrayFromImage(normalize(image, Normalize("clip_percentiles", (5, 95))))
    low, high = np.percentile(array, (5, 95))
    assert np.isclose(clipped.min(), low, atol=1e-3) and np.isclose(clipped.max(), high, atol=1e-3)
    inside = (array > low) & (array < high)
    np.testing.assert_allclose(clipped[inside], array[inside], rtol=1e-6)
    window = sitk.GetArrayFromImage(normalize(image, Normalize("window", (-100.0, 200.0))))
    assert window.min() == -100 and window.max() == 200
    kept = (array >= -100) & (array <= 200)
    np.testing.assert_array_equal(window[kept], array[kept])
    assert normalize(image, Normalize("zscore")).GetSpacing() == image.GetSpacing()


# --- mask on a slightly different grid --------------------------------------------------


def shifted_cohort(tmp_path: Path, shift_mm: float) -> Path:
    image, mask = sphere_case(0)
    mask.SetOrigin(tuple(o + d for o, d in zip(mask.GetOrigin(), (shift_mm, 0, 0), strict=True)))
    return write_case(
        tmp_path, image, mask, mask_file=f"m{shift_mm}.nii.gz", manifest=f"manifest{shift_mm}.csv"
    )


def test_mask_within_tolerance_is_aligned_beyond_it_fails(tmp_path):
    aligned = {"CT": light({"align_mask": True})}
    near = shifted_cohort(tmp_path, 0.3)  # < half a voxel (0.5 mm)
    strict = extract_cohort(near, {"CT": light()}, n_jobs=1, progress=False)
    assert "different grids" in strict.failures["error"].iloc[0]  # off by default
    result = extract_cohort(near, aligned, n_jobs=1, progress=False)
    assert result.failures.empty
    image, mask = sphere_case(0)
    assert (
        result.features["CT__tumor__original_shape_VoxelVolume"].iloc[0]
        == extract_case(image, mask, light())[0]["original_shape_VoxelVolume"]
    )
    far = extract_cohort(shifted_cohort(tmp_path, 0.8), aligned, n_jobs=1, progress=False)
    assert "beyond the align_mask tolerance 0.5 mm" in far.failures["error"].iloc[0]
    wide = {"CT": light({"align_mask": {"tolerance_mm": 1.0}})}
    assert extract_cohort(
        shifted_cohort(tmp_path, 0.8), wide, n_jobs=1, progress=False
    ).failures.empty


def test_align_mask_puts_the_mask_on_the_image_grid():
    image, mask = sphere_case(1)
    mask.SetOrigin((-11.7, -12.0, -12.0))
    moved = align_mask(image, mask)
    assert moved.GetOrigin() == image.GetOrigin()
    np.testing.assert_array_equal(
        sitk.GetArrayViewFromImage(moved), sitk.GetArrayViewFromImage(mask)
    )


# --- derived ROIs -----------------------------------------------------------------------


def test_ring_lies_outside_the_roi_within_r_mm():
    spacing = (0.8, 0.8, 2.0)
    mask_array = np.zeros((12, 30, 30), np.uint8)
    mask_array[4:8, 10:20, 12:18] = 2
    mask = image_of(mask_array, spacing=spacing)
    ring = sitk.GetArrayFromImage(ring_mask(mask, 2, 3.0))
    assert set(np.unique(ring)) == {0, 2}
    roi = mask_array == 2
    assert not np.any(ring[roi])
    # distance (mm) from every voxel to the ROI; numpy axes are z, y, x
    distance = ndimage.distance_transform_edt(~roi, sampling=spacing[::-1])
    half_voxel = np.linalg.norm(spacing) / 2
    assert distance[ring > 0].max() <= 3.0 + half_voxel
    assert np.array_equal(ring > 0, (distance > 0) & (distance <= 3.0 + 1e-6))


def test_manifest_ring_and_labels_each_give_extra_rois(tmp_path):
    image, mask = sphere_case(4)
    two = sitk.GetArrayFromImage(mask)
    two[2:6, 2:6, 2:6] = 2  # a second label
    multi = sitk.GetImageFromArray(two)
    multi.CopyInformation(mask)
    manifest = write_case(
        tmp_path,
        image,
        multi,
        {"label": 1, "labels": "", "ring_mm": 2},
        {"mask": "all", "label": "", "labels": "each", "ring_mm": ""},
    )
    result = extract_cohort(manifest, {"CT": light()}, n_jobs=1, progress=False)
    assert result.failures.empty
    masks = sorted({c.split("__")[1] for c in result.features.columns if "__" in c})
    assert masks == ["all_label1", "all_label2", "tumor", "tumor_ring2mm"]
    row = result.features.iloc[0]
    name = "original_firstorder_Mean"
    assert row[f"CT__all_label2__{name}"] == extract_case(image, multi, light(), 2)[0][name]
    assert row[f"CT__all_label1__{name}"] == row[f"CT__tumor__{name}"]
    ring = ring_mask(multi, 1, 2.0)
    assert row[f"CT__tumor_ring2mm__{name}"] == extract_case(image, ring, light())[0][name]
