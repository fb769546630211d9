"""Negative-control extraction: ROI voxels permuted (same histogram, no texture), deterministic,
named ``modality__mask~permuted__feature``, cached under their own keys."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.control import DIAGNOSTIC, permute_roi
from radfusion.features.extract import extract_case
from radfusion.features.naming import (
    CONTROL_SUFFIX,
    control_mask,
    is_control_column,
    split_feature_column,
)
from radfusion.features.params import load_params
from radfusion.features.runner import extract_cohort
from tests.features.conftest import sphere_case

TEXTURE = ("glcm", "glrlm", "glszm", "gldm", "ngtdm")


def test_permute_roi_keeps_the_roi_histogram_and_every_voxel_outside():
    image, mask = sphere_case(3)
    permuted = permute_roi(image, mask)
    before, after = sitk.GetArrayFromImage(image), sitk.GetArrayFromImage(permuted)
    roi = sitk.GetArrayFromImage(mask) == 1
    assert np.array_equal(before[~roi], after[~roi])
    assert np.array_equal(np.sort(before[roi]), np.sort(after[roi]))
    assert (before[roi] != after[roi]).mean() > 0.9  # really shuffled
    assert permuted.GetPixelID() == image.GetPixelID()
    assert permuted.GetOrigin() == image.GetOrigin()
    # seeded by the ROI's content: the same input gives the same bytes; a seed changes them
    assert np.array_equal(after, sitk.GetArrayFromImage(permute_roi(image, mask)))
    other = sitk.GetArrayFromImage(permute_roi(image, mask, seed=1))
    assert not np.array_equal(after, other)


@pytest.mark.parametrize("modality", ["CT", "MR_T2"])
def test_control_has_the_original_first_order_and_shape_but_other_texture(modality):
    # CT's default resamples (B-spline) and MR's normalises inside pyradiomics: the permutation
    # follows both, so the histogram pyradiomics sees is the original one
    params = load_params(None, [modality])[modality]
    image, mask = sphere_case(0)
    real, _ = extract_case(image, mask, params, modality=modality)
    control, diagnostics = extract_case(
        image, mask, params, modality=modality, negative_control=True
    )
    assert list(control) == list(real)
    assert DIAGNOSTIC in diagnostics
    for name, value in real.items():
        kind = name.split("_")[1]
        if kind == "shape":
            assert control[name] == value, name
        elif kind == "firstorder":  # same values; only the order of the sums differs
            assert control[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
    for kind in TEXTURE:
        names = [n for n in real if n.split("_")[1] == kind]
        changed = [n for n in names if not np.isclose(control[n], real[n], rtol=1e-6)]
        assert len(changed) >= len(names) / 2, (kind, changed)
    again, _ = extract_case(image, mask, params, modality=modality, negative_control=True)
    assert again == control  # deterministic, to the bit


def test_cohort_control_columns_follow_the_contract_and_have_their_own_cache_keys(
    write_cohort, tmp_path
):
    manifest = write_cohort([("P1", "CT", 1), ("P2", "CT", 2)])
    cache = tmp_path / "cache"
    plain = extract_cohort(manifest, n_jobs=1, progress=False, cache_dir=cache)
    result = extract_cohort(
        manifest, n_jobs=1, progress=False, cache_dir=cache, negative_control=True
    )
    assert result.n_cached == 2  # the real cases came from the cache, the controls did not
    table = result.features
    real = [c for c in table.columns if c.startswith("CT__tumor__")]
    controls = [c for c in table.columns if is_control_column(c)]
    assert control_mask("tumor") == "tumor" + CONTROL_SUFFIX == "tumor~permuted"
    assert controls == [c.replace("CT__tumor__", "CT__tumor~permuted__") for c in real]
    assert all(split_feature_column(c)[1] == "tumor~permuted" for c in controls)
    assert not any(is_control_column(c) for c in plain.features.columns)
    # the real columns are the same bytes with and without the controls
    assert table[real].equals(plain.features[real])
    volume = "CT__tumor~permuted__original_shape_MeshVolume"
    assert table[volume].equals(table["CT__tumor__original_shape_MeshVolume"])
    assert not np.allclose(
        table["CT__tumor~permuted__original_glcm_Contrast"],
        table["CT__tumor__original_glcm_Contrast"],
    )
    assert sorted(result.diagnostics["mask"]) == ["tumor"] * 2 + ["tumor~permuted"] * 2
    # a re-run reads all four cases from the cache and gives the same table
    again = extract_cohort(
        manifest, n_jobs=1, progress=False, cache_dir=cache, negative_control=True
    )
    assert again.n_cached == 4
    assert again.features.equals(table)


def test_control_composes_with_ibsi_mode():
    params = {**load_params(None, ["CT"])["CT"], "radfusion": {"ibsi": True}}
    image, mask = sphere_case(1)
    real, _ = extract_case(image, mask, params, modality="CT")
    control, diagnostics = extract_case(image, mask, params, modality="CT", negative_control=True)
    assert "diagnostics_radfusion_ibsi" in diagnostics and DIAGNOSTIC in diagnostics
    kurtosis = "original_firstorder_Kurtosis"  # IBSI's excess kurtosis, in both
    assert control[kurtosis] == pytest.approx(real[kurtosis], rel=1e-9)
    assert control["original_glcm_Contrast"] != pytest.approx(real["original_glcm_Contrast"])
