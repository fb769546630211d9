"""Tests of radfusion.pipeline.report and radfusion.pipeline.report: accurate to the run,
deterministic."""

from __future__ import annotations

import copy

import pandas as pd
import pytest

from radfusion.pipeline.report import (
    STATUSES,
    feature_classes,
    read_extraction,
)
from radfusion.pipeline.report._checklists import (
    ITEMS,
    build_checklists,
)
from radfusion.pipeline.report._methods import (
    build_methods,
    learner_parameters,
)

SETTINGS = (
    "{'normalize': %s, 'normalizeScale': 100, 'resampledPixelSpacing': %s, "
    "'interpolator': 'sitkBSpline', 'binWidth': %s, 'voxelArrayShift': 1000, "
    "'force2D': False, 'distances': [1], 'label': %d}"
)


def _report(preprocessing=None, models=("CT__tumor", "clinical", "early", "stacking")):
    return {
        "radfusion_version": "0.1.0",
        "task": "binary",
        "config": {
            "folds": 5,
            "repeats": 3,
            "models": {
                "stacking": {"learner": "lr", "learners": ["lr", "rf"], **(preprocessing or {})}
            },
            "encoded_columns": {"sex": ["sex_M"]},
        },
        "seed": 7,
        "data": {
            "n_patients": 40,
            "n_positive": 18,
            "n_negative": 22,
            "groups": {"CT__tumor": 3, "clinical": 2},
        },
        "inputs": {"features": {"path": "features.parquet", "sha256": "0"}},
        "versions": {"python": "3.11", "platform": "x", "numpy": "2.0", "xgboost": None},
        "ci_method": "Bootstrap CIs.",
        "models": {name: {} for name in models},
        "threshold": 0.5,
        "comparisons": {"method": "DeLong."},
        "cohort": {"variables": [{"name": "site"}]},
    }


GROUPS = {
    "CT__tumor": [
        "CT__tumor__original_glcm_Contrast",
        "CT__tumor__original_shape_Sphericity",
        "CT__tumor__wavelet-LLH_firstorder_Mean",
    ],
    "clinical": ["age", "sex_M"],
}


@pytest.fixture
def sidecar(tmp_path):
    rows = [
        {
            "patient_id": f"P{i}",
            "modality": modality,
            "mask": mask,
            "diagnostics_Versions_PyRadiomics": "v3.1.4",
            "diagnostics_Configuration_Settings": SETTINGS
            % (
                (modality == "MR"),
                "[1, 1, 1]" if modality == "CT" else "None",
                25 if modality == "CT" else 5,
                label,
            ),
            "diagnostics_Configuration_EnabledImageTypes": "{'Original': {}}",
            "diagnostics_Image-original_Spacing": f"({0.7 + i / 10}, {0.7 + i / 10}, 2.5)",
        }
        for i in range(3)
        for modality in ("CT", "MR")
        for mask, label in (("tumor", 1), ("peritumoral", 2))
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "features.diagnostics.csv", index=False)
    return tmp_path / "features.parquet"


def test_read_extraction_summarises_the_sidecar(sidecar):
    extraction = read_extraction(sidecar)
    assert extraction["source"] == "features.diagnostics.csv"
    ct, mr = extraction["modalities"]["CT"], extraction["modalities"]["MR"]
    assert ct["cases"] == 6 and ct["masks"] == {
        "peritumoral": {"cases": 3, "label": 2},
        "tumor": {"cases": 3, "label": 1},
    }
    assert ct["settings"]["binWidth"] == 25 and "label" not in ct["settings"]
    assert ct["settings"]["resampledPixelSpacing"] == [1, 1, 1] and not ct["settings_vary"]
    assert mr["settings"]["normalize"] is True and mr["settings"]["resampledPixelSpacing"] is None
    assert ct["spacing_mm"] == {"min": [0.7, 0.7, 2.5], "max": [0.9, 0.9, 2.5]}
    assert ct["pyradiomics"] == "v3.1.4" and ct["image_types"] == {"Original": {}}
    assert read_extraction(sidecar.with_name("other.parquet")) is None


def test_methods_text_states_the_settings_actually_used(sidecar):
    methods = build_methods(_report(), extraction=read_extraction(sidecar), groups=GROUPS)
    text = "\n".join(methods["text"])
    assert "PyRadiomics v3.1.4" in text
    assert "resampled to 1 x 1 x 1 mm" in text and "fixed bin width of 25" in text
    assert "not resampled" in text and "fixed bin width of 5" in text
    assert "multiplied by 100" in text
    assert "5 folds" not in text and "3 x repeated stratified 5-fold" in text
    assert "seed 7" in text and "not nested" in text and "patient-level" in text
    assert "No harmonisation" in text and "ComBat" not in text
    assert "(sex)" in text
    assert methods["feature_classes"]["CT__tumor"] == {
        "original glcm": 1,
        "original shape": 1,
        "wavelet-LLH firstorder": 1,
    }
    assert list(methods["learners"]) == ["lr", "rf"]
    assert methods["learners"]["lr"]["params"]["C"] == 0.1
    assert methods["learners"]["rf"]["params"]["n_estimators"] == 200


def test_methods_without_sidecar_says_the_table_was_given():
    methods = build_methods(_report(models=("CT__tumor", "early")), groups=GROUPS)
    assert methods["extraction"] is None
    assert "precomputed table (features.parquet)" in methods["text"][0]
    assert list(methods["learners"]) == ["lr"]  # no stacking, so only the single learner
    assert "stacking" not in methods["text"][3]


def test_preprocessing_follows_the_config():
    pre = {
        "harmonize": "site",
        "harmonize_unseen": "pooled",
        "correlation_threshold": 0.85,
        "select_k": 12,
        "select_method": "mrmr",
    }
    text = " ".join(build_methods(_report(pre), groups=GROUPS)["text"])
    assert "ComBat harmonisation" in text and "unadjusted" in text
    assert "above 0.85" in text and "the 12 best features by minimum-redundancy" in text


def test_learner_parameters_come_from_make_learner():
    params = learner_parameters(["svm", "xgb"], random_state=3)
    assert params["svm"]["params"]["C"] == 1.0 and params["svm"]["params"]["kernel"] == "rbf"
    assert params["svm"]["params"]["cv"] == "5-fold stratified"
    assert params["xgb"]["params"]["max_depth"] == 3


def test_feature_classes_of_non_pyradiomics_columns():
    assert feature_classes({"all": ["CT_original_glcm_Id", "x"]}) == {
        "all": {"original glcm": 1, "other": 1}
    }


def test_checklist_status_follows_the_run(sidecar):
    plain = _report()
    plain["methods"] = build_methods(plain, groups=GROUPS)
    full = _report({"harmonize": "site", "select_k": 5, "select_method": "anova"})
    full["methods"] = build_methods(full, extraction=read_extraction(sidecar), groups=GROUPS)

    def status(report, checklist, item):
        (row,) = [
            i
            for i in build_checklists(report)["items"]
            if i["checklist"] == checklist and i["item"] == item
        ]
        return row["status"]

    assert status(plain, "CLEAR", "Harmonization") == "user must supply"
    assert status(full, "CLEAR", "Harmonization") == "answered"
    assert status(plain, "METRICS", "13 Feature extraction parameters") == "user must supply"
    assert status(full, "METRICS", "13 Feature extraction parameters") == "answered"
    assert status(plain, "METRICS", "15 Removal of redundant features") == "partly"
    assert status(full, "METRICS", "15 Removal of redundant features") == "answered"
    assert status(plain, "CLEAR", "Comparison with a non-radiomic / clinical model") == "answered"
    assert status(plain, "TRIPOD+AI", "17 Ethical approval") == "user must supply"
    checklists = build_checklists(full)
    assert len(checklists["items"]) == len(ITEMS)
    assert {i["status"] for i in checklists["items"]} <= set(STATUSES)
    assert {c for c, *_ in ITEMS} == {"TRIPOD+AI", "CLEAR", "METRICS"}
    for name, counts in checklists["counts"].items():
        assert sum(counts.values()) == sum(1 for c, *_ in ITEMS if c == name)


def test_methods_and_checklists_are_deterministic(sidecar):
    report = _report({"harmonize": "site"})
    first = build_methods(copy.deepcopy(report), extraction=read_extraction(sidecar), groups=GROUPS)
    second = build_methods(
        copy.deepcopy(report), extraction=read_extraction(sidecar), groups=GROUPS
    )
    assert first == second
    report["methods"] = first
    assert build_checklists(report) == build_checklists(copy.deepcopy(report))


def test_negative_control_masks_are_named_as_a_control_not_as_segmentations(sidecar):
    extraction = copy.deepcopy(read_extraction(sidecar))
    ct = extraction["modalities"]["CT"]
    (mask, info), *_ = ct["masks"].items()
    ct["masks"][f"{mask}~permuted"] = dict(info)
    text = "\n".join(build_methods(_report(), extraction=extraction, groups=GROUPS)["text"])
    assert f"{mask}~permuted (label" not in text
    assert "negative control" in text and f"masks {mask}~permuted" in text


def test_wide_table_learners_are_described_with_their_settings():
    from radfusion.pipeline.report._methods import (
        learner_parameters,
    )

    described = learner_parameters(["l1", "enet", "et"])
    assert described["l1"]["params"]["l1_ratios"] == [1.0]
    assert described["enet"]["params"]["l1_ratios"] == [0.5]
    assert described["l1"]["params"]["cv"] == "5-fold stratified"
    assert described["et"]["estimator"] == "ExtraTreesClassifier"
    assert described["et"]["params"]["n_estimators"] == 500
