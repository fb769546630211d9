"""IBSI mode: grey levels counted from the re-segmentation lower bound, excess kurtosis.

A unit test on a synthetic image whose IBSI grey levels are computed by hand, and the IBSI-1
digital phantom (CC BY 4.0, in ``../shared/data/ibsi``) against its consensus reference values.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

from radfusion.features.cache import FeatureCache
from radfusion.features.extract import extract_case
from radfusion.features.ibsi import DIAGNOSTIC, ibsi_levels
from radfusion.features.preprocess import parse_config, split_params
from radfusion.features.runner import extract_cohort
from tests.conftest import shared_data
from tests.features.conftest import write_case


def test_levels_count_from_the_lower_bound_by_hand():
    values = [-1000, -975.5, -975, -951, -950, 399.9, 400]
    # floor((x + 1000) / 25) + 1: 0/25, 24.5/25, 25/25, 49/25, 50/25, 1399.9/25, 1400/25
    assert ibsi_levels(values, 25, -1000).tolist() == [1, 1, 2, 2, 3, 56, 57]
    # without a range, from the smallest value: -975.5 -> 1, -951 -> floor(24.5/25) + 1 = 1
    assert ibsi_levels([-975.5, -951, -950.5], 25).tolist() == [1, 1, 2]
    with pytest.raises(ValueError, match="below the IBSI bin origin -1000"):
        ibsi_levels([-1001, 0], 25, -1000)


def two_halves() -> tuple[sitk.Image, sitk.Image]:
    """A 4x4x4 CT ROI: -940 HU for z < 2, -860 HU above, every voxel in the ROI."""
    voxels = np.full((4, 4, 4), -860, np.int16)
    voxels[:2] = -940
    image, mask = sitk.GetImageFromArray(voxels), sitk.GetImageFromArray(np.ones_like(voxels))
    return image, sitk.Cast(mask, sitk.sitkUInt8)


PARAMS = {
    "imageType": {"Original": {}},
    "featureClass": {
        "shape": ["VoxelVolume"],
        "firstorder": ["Mean", "Kurtosis", "Entropy"],
        "glcm": ["JointAverage", "Contrast"],
        "glszm": ["HighGrayLevelZoneEmphasis", "LowGrayLevelZoneEmphasis"],
    },
    "setting": {"binWidth": 25, "resegmentRange": [-1000, 400]},
}


def test_texture_grey_levels_start_at_the_resegmentation_lower_bound():
    image, mask = two_halves()
    plain, _ = extract_case(image, mask, PARAMS)
    ibsi, diagnostics = extract_case(image, mask, {**PARAMS, "radfusion": {"ibsi": True}})
    # IBSI levels: floor((-940 + 1000) / 25) + 1 = 3 and floor((-860 + 1000) / 25) + 1 = 6;
    # pyradiomics starts at -950 (the multiple of 25 below -940): levels 1 and 4.
    # Two 32-voxel zones, one per level: HGLZE = (a² + b²) / 2, LGLZE = (1/a² + 1/b²) / 2.
    assert ibsi["original_glszm_HighGrayLevelZoneEmphasis"] == pytest.approx((9 + 36) / 2)
    assert ibsi["original_glszm_LowGrayLevelZoneEmphasis"] == pytest.approx((1 / 9 + 1 / 36) / 2)
    assert plain["original_glszm_HighGrayLevelZoneEmphasis"] == pytest.approx((1 + 16) / 2)
    # the halves mirror each other, so each level is half of every co-occurrence matrix
    assert ibsi["original_glcm_JointAverage"] == pytest.approx((3 + 6) / 2)
    assert plain["original_glcm_JointAverage"] == pytest.approx((1 + 4) / 2)
    # what does not depend on where the levels start is unchanged
    for name in ("glcm_Contrast", "firstorder_Mean", "firstorder_Entropy", "shape_VoxelVolume"):
        assert ibsi[f"original_{name}"] == plain[f"original_{name}"], name
    assert plain["original_firstorder_Mean"] == -900
    # two equal point masses: kurtosis 1, excess kurtosis -2
    assert plain["original_firstorder_Kurtosis"] == pytest.approx(1)
    assert ibsi["original_firstorder_Kurtosis"] == pytest.approx(-2)
    assert "re-segmentation lower bound (-1000)" in diagnostics[DIAGNOSTIC]
    assert "excess kurtosis" in diagnostics[DIAGNOSTIC]


def test_filtered_images_keep_pyradiomics_binning_and_every_feature_keeps_its_name():
    image, mask = two_halves()
    params = {**PARAMS, "imageType": {"Original": {}, "Square": {}}}
    plain, _ = extract_case(image, mask, params)
    ibsi, _ = extract_case(image, mask, {**params, "radfusion": {"ibsi": True}})
    assert list(ibsi) == list(plain)  # same features, same order
    changed = sorted(name for name in plain if ibsi[name] != plain[name])
    assert changed == [
        "original_firstorder_Kurtosis",
        "original_glcm_JointAverage",
        "original_glszm_HighGrayLevelZoneEmphasis",
        "original_glszm_LowGrayLevelZoneEmphasis",
        "square_firstorder_Kurtosis",
    ]
    assert ibsi["square_firstorder_Kurtosis"] == pytest.approx(
        plain["square_firstorder_Kurtosis"] - 3
    )


def test_without_a_range_levels_start_at_the_roi_minimum():
    image, mask = two_halves()
    image = sitk.Minimum(image, -920)  # halves at -940 and -920 HU
    params = copy.deepcopy(PARAMS)
    del params["setting"]["resegmentRange"]
    plain, _ = extract_case(image, mask, params)
    ibsi, diagnostics = extract_case(image, mask, {**params, "radfusion": {"ibsi": True}})
    # IBSI from -940: floor(0 / 25) + 1 = floor(20 / 25) + 1 = 1, one zone of level 1;
    # pyradiomics from -950: floor(10 / 25) + 1 = 1 and floor(30 / 25) + 1 = 2, two zones
    assert ibsi["original_glszm_HighGrayLevelZoneEmphasis"] == pytest.approx(1)
    assert plain["original_glszm_HighGrayLevelZoneEmphasis"] == pytest.approx((1 + 4) / 2)
    assert "ROI's minimum intensity" in diagnostics[DIAGNOSTIC]


def test_ibsi_mode_is_on_with_ibsi_resampling_and_validated():
    assert parse_config({"resample": {"spacing": [1, 1, 1], "mode": "ibsi"}}).ibsi
    assert not parse_config({"resample": {"spacing": [1, 1, 1]}}).ibsi
    assert not parse_config(
        {"resample": {"spacing": [1, 1, 1], "mode": "ibsi"}, "ibsi": False}
    ).ibsi
    assert parse_config({"ibsi": True}).ibsi and not parse_config({}).ibsi
    with pytest.raises(ValueError, match="ibsi must be true or false"):
        parse_config({"ibsi": "yes"})
    relative = {**PARAMS, "setting": {"resegmentRange": [0.5], "resegmentMode": "relative"}}
    with pytest.raises(ValueError, match="resegmentMode must be absolute"):
        split_params({**relative, "radfusion": {"ibsi": True}})
    split_params(relative)  # pyradiomics' own binning takes any mode


# --- the IBSI-1 digital phantom --------------------------------------------------------------


def _phantom() -> tuple[str, str, dict, pd.DataFrame]:
    folder = shared_data("ibsi")
    params = yaml.safe_load((folder / "digital_phantom_params.yaml").read_text())
    reference = pd.read_csv(
        folder / "reference_values_digital_phantom.csv", dtype=str, encoding="utf-8-sig"
    ).set_index("tag")
    mapping = pd.read_csv(folder / "pyradiomics_to_ibsi_map.csv", dtype=str)
    mapped = mapping[mapping["relation"].isin(["same", "alias", "offset"])]
    expected = mapped.assign(
        reference=[float(reference.loc[t, "reference value"]) for t in mapped["ibsi_tag"]],
        tolerance=[float(reference.loc[t, "tolerance"]) for t in mapped["ibsi_tag"]],
    ).set_index("pyradiomics_feature")
    phantom = folder / "digital_phantom"
    return str(phantom / "image.nii.gz"), str(phantom / "mask.nii.gz"), params, expected


def _misses(features: dict[str, float], expected: pd.DataFrame) -> list[str]:
    """Mapped features outside the IBSI tolerance (or, at tolerance 0, outside the reference's
    three significant digits)."""
    misses = []
    for name, row in expected.iterrows():
        reference = row["reference"]
        digits = 0.5 * 10 ** (math.floor(math.log10(abs(reference))) - 2) if reference else 0
        if abs(features[f"original_{name}"] - reference) > max(row["tolerance"], digits) + 1e-12:
            misses.append(name)
    return misses


def test_digital_phantom_matches_106_of_108_in_ibsi_mode():
    image, mask, params, expected = _phantom()
    assert len(expected) == 108
    plain, _ = extract_case(image, mask, params)
    ibsi, _ = extract_case(image, mask, {**params, "radfusion": {"ibsi": True}})
    assert _misses(plain, expected) == [
        "shape_MinorAxisLength",
        "shape_LeastAxisLength",
        "firstorder_Kurtosis",
    ]
    # the two axis lengths are pyradiomics' eigenvalues on a 74-voxel ROI (0.7 % short)
    assert _misses(ibsi, expected) == ["shape_MinorAxisLength", "shape_LeastAxisLength"]


def test_digital_phantom_levels_follow_the_resegmentation_lower_bound():
    image, mask, params, expected = _phantom()
    ibsi = {**params, "radfusion": {"ibsi": True}}
    base, _ = extract_case(image, mask, ibsi)
    wider = copy.deepcopy(ibsi)
    wider["setting"]["resegmentRange"] = [-1, 10]  # keeps every voxel, levels move up by 2
    shifted, _ = extract_case(image, mask, wider)
    assert shifted["original_glcm_JointAverage"] == pytest.approx(
        base["original_glcm_JointAverage"] + 2
    )
    assert base["original_glcm_JointAverage"] == pytest.approx(
        expected.loc["glcm_JointAverage", "reference"], abs=0.005
    )
    for name in ("glcm_Contrast", "glcm_JointEntropy", "glszm_ZoneEntropy", "firstorder_Mean"):
        assert shifted[f"original_{name}"] == pytest.approx(base[f"original_{name}"]), name
    del wider["radfusion"]  # pyradiomics' binning ignores where the range starts
    plain, _ = extract_case(image, mask, wider)
    assert plain["original_glcm_JointAverage"] == pytest.approx(base["original_glcm_JointAverage"])


def test_ibsi_resampling_results_get_their_own_cache_key(tmp_path):
    image, mask = two_halves()
    manifest = write_case(
        tmp_path, image, mask, {"mask": "t"}, image_file="image.nii.gz", mask_file="mask.nii.gz"
    )
    params = {**PARAMS, "radfusion": {"resample": {"spacing": [1, 1, 1], "mode": "ibsi"}}}
    result = extract_cohort(
        manifest, {"CT": params}, n_jobs=1, progress=False, cache_dir=tmp_path / "cache"
    )
    assert result.features["CT__t__original_firstorder_Kurtosis"].iloc[0] == pytest.approx(-2)
    cache = FeatureCache(tmp_path / "cache")
    # the key such a case had before IBSI mode binned the IBSI way holds nothing
    old = cache.key(tmp_path / "image.nii.gz", tmp_path / "mask.nii.gz", 1, params)
    assert len(cache) == 1 and not cache.path(old).exists()
