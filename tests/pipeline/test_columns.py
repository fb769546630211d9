"""Column groups from names: each rule, the real radMLBench headers, the naming contract."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from radfusion.features.errors import InputError
from radfusion.features.naming import (
    CLINICAL_GROUP,
    ID_COLUMN,
    SITE_COLUMN,
    feature_column,
    group_of,
    split_feature_column,
)
from radfusion.pipeline.columns import ALL_GROUP, infer_groups, pyradiomics_prefix

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
RADMLBENCH = DATA / "radmlbench" / "datasets"


# --------------------------------------------------------------------------- rule: "__" names


def test_separator_names_group_by_modality_and_mask_with_clinical_last():
    columns = [
        "age",
        "CT__tumor__original_glcm_Contrast",
        "PET__tumor__original_firstorder_Mean",
        "CT__ring__original_shape_Volume",
        "CT__tumor__wavelet-LLH_glszm_ZoneEntropy",
        "HPV",
    ]
    groups = infer_groups(columns)
    assert groups == {
        "CT__tumor": [
            "CT__tumor__original_glcm_Contrast",
            "CT__tumor__wavelet-LLH_glszm_ZoneEntropy",
        ],
        "PET__tumor": ["PET__tumor__original_firstorder_Mean"],
        "CT__ring": ["CT__ring__original_shape_Volume"],
        CLINICAL_GROUP: ["age", "HPV"],
    }
    assert list(groups)[-1] == CLINICAL_GROUP


def test_identifier_and_site_are_never_features_unless_asked():
    columns = [ID_COLUMN, SITE_COLUMN, "CT__tumor__original_glcm_Contrast", "age"]
    assert infer_groups(columns) == {
        "CT__tumor": ["CT__tumor__original_glcm_Contrast"],
        CLINICAL_GROUP: ["age"],
    }
    assert infer_groups(columns, exclude=())[CLINICAL_GROUP] == [ID_COLUMN, SITE_COLUMN, "age"]


def test_malformed_separator_names_are_all_reported_at_once():
    columns = ["CT__tumor__original_glcm_Contrast", "PD_L1__pct", "CT____x", "age"]
    with pytest.raises(InputError) as info:
        infer_groups(columns)
    assert len(info.value.problems) == 2
    assert "PD_L1__pct" in str(info.value) and "CT____x" in str(info.value)


def test_duplicate_columns_are_an_input_error():
    with pytest.raises(InputError, match="duplicate"):
        infer_groups(["CT__t__a", "CT__t__a"])


@pytest.mark.parametrize(
    ("modality", "mask", "feature"),
    [
        ("CT", "tumor", "original_glcm_Contrast"),
        ("MR_T2", "peritumoral", "log-sigma-1-0-mm-3D_firstorder_Mean"),
        ("PET", "lymph_node", "wavelet-HLL_gldm_DependenceEntropy"),
    ],
)
def test_naming_round_trip(modality, mask, feature):
    column = feature_column(modality, mask, feature)
    groups = infer_groups([column, "age"])
    (group,) = (g for g in groups if g != CLINICAL_GROUP)
    assert group == group_of(column) == f"{modality}__{mask}"
    assert split_feature_column(groups[group][0]) == (modality, mask, feature)


# --------------------------------------------------------------------------- rule: prefixes


@pytest.mark.parametrize(
    ("column", "prefix"),
    [
        ("CT_original_glcm_Contrast", "CT"),
        ("PET_wavelet-LLH_glszm_ZoneEntropy", "PET"),
        ("Portal_vein_original_shape_Volume", "Portal_vein"),
        ("ADC_general_info_VoxelNum", "ADC"),
        ("T1_log-sigma-1-0-mm-3D_firstorder_Mean", "T1"),
        ("MR_T2_wavelet2-HHL_glcm_Idm", "MR_T2"),
        ("CT_lbp-3D-m1_firstorder_Mean", "CT"),
        ("CT_lbp-2D_glrlm_RunEntropy", "CT"),
        ("CT_squareroot_ngtdm_Busyness", "CT"),
        ("CT_diagnostics_Image-original_Mean", "CT"),
        ("original_glcm_Contrast", None),  # no prefix
        ("CT_original", None),  # no feature class and name after the image type
        ("tumour_gradient", None),
        ("age", None),
    ],
)
def test_pyradiomics_prefix(column, prefix):
    assert pyradiomics_prefix(column) == prefix


def test_prefixed_pyradiomics_names_with_clinical_columns():
    columns = [
        "Mass_original_shape_Volume",
        "age",
        "Portal_vein_original_glcm_Idm",
        "Mass_wavelet-LLH_glcm_Idm",
        "AFP",
    ]
    assert infer_groups(columns) == {
        "Mass": ["Mass_original_shape_Volume", "Mass_wavelet-LLH_glcm_Idm"],
        "Portal_vein": ["Portal_vein_original_glcm_Idm"],
        CLINICAL_GROUP: ["age", "AFP"],
    }


@pytest.mark.parametrize(
    "columns",
    [
        ["f1", "f2", "f3"],  # no block structure at all
        ["original_glcm_Contrast", "original_firstorder_Mean"],  # pyradiomics, no prefix
        ["CT_original_glcm_Contrast", "age", "sex"],  # a single prefixed column is not a block
    ],
)
def test_without_block_structure_the_table_is_one_group(columns):
    assert infer_groups(columns) == {ALL_GROUP: columns}


# --------------------------------------------------------------------------- rule: pattern


def test_pattern_with_a_capturing_group_overrides_the_automatic_rules():
    columns = ["T2w_glcm_a", "ADC_glcm_b", "T2w_shape_c", "psa_density", "CT__t__x"]
    assert infer_groups(columns, pattern=r"(T2w|ADC)_") == {
        "T2w": ["T2w_glcm_a", "T2w_shape_c"],
        "ADC": ["ADC_glcm_b"],
        CLINICAL_GROUP: ["psa_density", "CT__t__x"],
    }


def test_pattern_named_group_wins_over_the_first_group():
    columns = ["x_CT_1", "x_PET_2", "y"]
    groups = infer_groups(columns, pattern=r"(x)_(?P<group>[A-Z]+)_")
    assert groups == {"CT": ["x_CT_1"], "PET": ["x_PET_2"], CLINICAL_GROUP: ["y"]}


@pytest.mark.parametrize("pattern", [r"CT_", r"(CT"])
def test_pattern_without_a_group_or_invalid_is_rejected(pattern):
    with pytest.raises(ValueError, match="pattern"):
        infer_groups(["CT_a"], pattern=pattern)


# --------------------------------------------------------------------------- real tables

EXPECTED = {
    # table: (groups in order of first column, columns per group)
    "C4KC-KiTS": (["noncontrast", "late", "arterial"], 105),
    "HCC-TACE-Seg": (["Portal_vein", "Abdominal_aorta", "Mass", "Liver"], 105),
    "HNSCC": (["GTV"], 105),
    "Head-Neck-PET-CT": (["CT", "PET"], 105),
    "LGG-1p19qDeletion": (["T2", "T1"], 1015),
    "Song2020": (["ADC", "DWI", "T2"], 88),
}


@pytest.mark.skipif(not RADMLBENCH.is_dir(), reason=f"radMLBench tables not found at {RADMLBENCH}")
@pytest.mark.parametrize("table", sorted(EXPECTED))
def test_radmlbench_headers_give_the_readme_groups(table):
    header = pd.read_csv(RADMLBENCH / f"{table}.gz", nrows=0).columns
    features = [c for c in header if c not in ("ID", "Target")]
    groups = infer_groups(features)
    names, size = EXPECTED[table]
    assert list(groups) == names
    assert all(len(columns) == size for columns in groups.values())
    assert sorted(c for columns in groups.values() for c in columns) == sorted(features)
