"""Extraction of one case, the parallel cohort runner, the wide table and parameter loading."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from radiomics import featureextractor

from radfusion.features.errors import InputError
from radfusion.features.extract import extract_case
from radfusion.features.manifest import read_manifest
from radfusion.features.naming import modality_kind
from radfusion.features.params import SHIPPED_DIR, load_params
from radfusion.features.runner import extract_cohort
from radfusion.features.table import (
    FeatureRecord,
    read_table,
    to_wide,
    write_extraction,
    write_table,
)
from tests.features.conftest import read_rows, sphere_case, write_manifest

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
COHORT = [
    (p, m, seed)
    for seed, (p, m) in enumerate(
        (p, m) for p in ("P01", "P02", "P03", "P10") for m in ("CT", "MR_T2")
    )
]
SITES = {"P01": "A", "P02": "B", "P03": "A", "P10": "B"}


@pytest.fixture(scope="module")
def ct_params() -> dict:
    return load_params(None, ["CT"])["CT"]


def test_extract_case_returns_finite_features_and_separate_diagnostics(ct_params):
    image, mask = sphere_case(0)
    features, diagnostics = extract_case(image, mask, ct_params)
    assert 90 <= len(features) <= 120
    assert all(type(v) is float and math.isfinite(v) for v in features.values())
    assert not [k for k in features if k.startswith("diagnostics_")]
    assert all(k.startswith("original_") for k in features)
    assert {k.split("_")[1] for k in features} == {
        "shape",
        "firstorder",
        "glcm",
        "glrlm",
        "glszm",
        "gldm",
        "ngtdm",
    }
    assert diagnostics and all(k.startswith("diagnostics_") for k in diagnostics)
    voxels = int(sitk.GetArrayViewFromImage(mask).sum())
    assert diagnostics["diagnostics_Mask-original_VoxelNum"] == voxels


def test_extract_case_reads_paths_like_images(tmp_path, ct_params):
    image, mask = sphere_case(1)
    sitk.WriteImage(image, str(tmp_path / "image.nrrd"))
    sitk.WriteImage(mask, str(tmp_path / "mask.nii.gz"))
    from_paths, _ = extract_case(tmp_path / "image.nrrd", str(tmp_path / "mask.nii.gz"), ct_params)
    assert from_paths == extract_case(image, mask, ct_params)[0]


def test_extract_case_uses_the_label_value(ct_params):
    image, mask = sphere_case(2)
    relabelled = mask * 7
    assert (
        extract_case(image, relabelled, ct_params, label=7)[0]
        == extract_case(image, mask, ct_params)[0]
    )
    with pytest.raises(ValueError, match="Label"):
        extract_case(image, relabelled, ct_params, label=1)


@pytest.fixture
def cohort(write_cohort) -> Path:
    return write_cohort(COHORT, sites=SITES)


def test_runner_is_the_same_with_two_workers(cohort):
    one = extract_cohort(cohort, n_jobs=1, progress=False)
    two = extract_cohort(read_manifest(cohort), n_jobs=2, progress=False)
    pd.testing.assert_frame_equal(one.features, two.features, check_exact=True)
    pd.testing.assert_frame_equal(one.diagnostics, two.diagnostics, check_exact=True)
    assert one.failures.empty and two.failures.empty

    table = one.features
    assert list(table["patient_id"]) == ["P01", "P02", "P03", "P10"]
    assert list(table.columns[:2]) == ["patient_id", "site"]
    assert list(table["site"]) == ["A", "B", "A", "B"]
    groups = [c.rsplit("__", 1)[0] for c in table.columns[2:]]
    assert groups == sorted(groups) and set(groups) == {"CT__tumor", "MR_T2__tumor"}
    assert table.iloc[:, 2:].notna().all().all()
    assert len(one.diagnostics) == len(COHORT)
    assert list(one.diagnostics.columns[:6]) == [
        "patient_id",
        "modality",
        "mask",
        "image",
        "mask_path",
        "label",
    ]


def test_shipped_kind_params_are_applied_per_modality(cohort):
    result = extract_cohort(cohort, n_jobs=1, progress=False)
    settings = result.diagnostics.set_index("modality")["diagnostics_Configuration_Settings"]
    assert "'binWidth': 25" in settings["CT"].iloc[0]
    assert "'normalize': True" in settings["MR_T2"].iloc[0]


def test_broken_case_is_recorded_and_the_others_finish(cohort):
    rows = read_rows(cohort)
    broken = cohort.parent / "images" / "broken.nii"
    sitk.WriteImage(sphere_case(9)[0], str(broken))
    broken.write_bytes(broken.read_bytes()[:2000])  # header intact, voxels truncated
    rows[2]["image"] = "images/broken.nii"  # P02, CT
    write_manifest(cohort, rows)
    result = extract_cohort(read_manifest(cohort), n_jobs=2, progress=False)
    assert len(result.diagnostics) == len(COHORT) - 1
    (failure,) = result.failures.to_dict("records")
    assert (failure["patient_id"], failure["modality"], failure["mask"]) == ("P02", "CT", "tumor")
    assert failure["file"] == str(broken)
    assert failure["error"].startswith(f"patient P02, modality CT, mask tumor, file {broken}: ")
    table = result.features.set_index("patient_id")
    ct = [c for c in table.columns if c.startswith("CT__")]
    assert table.loc["P02", ct].isna().all()
    assert table.loc[["P01", "P03", "P10"], ct].notna().all().all()
    assert table.loc["P02", [c for c in table.columns if c.startswith("MR_T2__")]].notna().all()


def test_runner_validates_a_manifest_path(cohort):
    rows = read_rows(cohort)
    rows[0]["label"] = "five"
    rows[3]["image"] = "images/absent.nii.gz"
    write_manifest(cohort, rows)
    with pytest.raises(InputError) as error:
        extract_cohort(cohort, n_jobs=1, progress=False)
    problems = [str(p) for p in error.value.problems]
    assert len(problems) == 2
    assert problems[0].startswith("row 1, patient P01") and "'five'" in problems[0]
    assert problems[1].startswith("row 4, patient P02") and "image file is missing" in problems[1]


def test_to_wide_names_sorts_and_fills_missing_cases():
    records = [
        FeatureRecord("P2", "PET", "tumor", {"b": 2.0, "a": 1.0}, "S1"),
        FeatureRecord("P1", "CT", "tumor", {"a": 3.0}, "S2"),
        FeatureRecord("P1", "CT", "ring", {"a": 4.0}, "S2"),
    ]
    table = to_wide(records)
    assert list(table.columns) == [
        "patient_id",
        "site",
        "CT__ring__a",
        "CT__tumor__a",
        "PET__tumor__a",
        "PET__tumor__b",
    ]
    assert list(table["patient_id"]) == ["P1", "P2"]
    assert list(table["site"]) == ["S2", "S1"]
    np.testing.assert_array_equal(
        table.iloc[:, 2:].to_numpy(), [[4.0, 3.0, np.nan, np.nan], [np.nan, np.nan, 1.0, 2.0]]
    )
    assert "site" not in to_wide([FeatureRecord("P1", "CT", "t", {"a": 1.0})]).columns
    with pytest.raises(ValueError, match="duplicated case"):
        to_wide(records + [records[0]])


@pytest.mark.parametrize("name", ["features.parquet", "features.csv.gz", "features.csv"])
def test_table_round_trip_is_exact_and_atomic(tmp_path, monkeypatch, name):
    rng = np.random.default_rng(0)
    table = to_wide(
        FeatureRecord(pid, "CT", "tumor", {"x": float(v), "y": float(v) / 3}, site)
        for pid, v, site in zip(
            ["007", "010", "1e3"], rng.normal(size=3), ["A", "B", "A"], strict=True
        )
    )
    path = write_table(table, tmp_path / "out" / name)
    back = read_table(path)
    pd.testing.assert_frame_equal(back, table, check_exact=True, check_dtype=False)
    assert back["patient_id"].tolist() == ["007", "010", "1e3"]
    assert sorted(p.name for p in path.parent.iterdir()) == [name]

    def crash_midway(self, target, *args, **kwargs):
        Path(target).write_bytes(b"half a table")
        raise KeyboardInterrupt

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash_midway)
    monkeypatch.setattr(pd.DataFrame, "to_csv", crash_midway)
    with pytest.raises(KeyboardInterrupt):
        write_table(table.assign(x=0.0), path)
    monkeypatch.undo()
    pd.testing.assert_frame_equal(read_table(path), back)  # the old file is intact
    assert sorted(p.name for p in path.parent.iterdir()) == [name]


def test_unsupported_table_suffix(tmp_path):
    with pytest.raises(ValueError, match="unsupported table file"):
        write_table(pd.DataFrame({"patient_id": ["1"]}), tmp_path / "t.xlsx")


def test_write_extraction_writes_sidecars(cohort, tmp_path):
    rows = read_rows(cohort)
    rows[0]["image"] = "images/absent.nii.gz"
    write_manifest(cohort, rows)
    result = extract_cohort(read_manifest(cohort), n_jobs=1, progress=False)
    paths = write_extraction(result, tmp_path / "run" / "features.parquet")
    assert paths["diagnostics"] == tmp_path / "run" / "features.diagnostics.csv"
    assert paths["failures"] == tmp_path / "run" / "features.failures.csv"
    diagnostics = pd.read_csv(paths["diagnostics"], dtype=str)
    assert len(diagnostics) == len(COHORT) - 1
    assert diagnostics.columns[0] == "patient_id"
    assert "diagnostics_Configuration_Settings" in diagnostics.columns
    failures = pd.read_csv(paths["failures"], dtype=str)
    assert failures[["patient_id", "modality", "mask"]].values.tolist() == [["P01", "CT", "tumor"]]
    assert "absent.nii.gz" in failures["file"][0] and "no such file" in failures["error"][0]
    pd.testing.assert_frame_equal(read_table(paths["features"]), result.features)

    result.failures = result.failures.iloc[:0]
    assert write_extraction(result, tmp_path / "run" / "features.parquet")["failures"] is None
    assert not (tmp_path / "run" / "features.failures.csv").exists()  # stale file removed


@pytest.mark.parametrize(
    "modality, kind",
    [
        ("CT", "ct"),
        ("ct_contrast", "ct"),
        ("MR", "mr"),
        ("t1c", "mr"),
        ("T2w", "mr"),
        ("FLAIR", "mr"),
        ("adc", "mr"),
        ("DWI_b800", "mr"),
        ("DCE", "mr"),
        ("PET", "pet"),
        ("pet_ct", "pet"),
        ("US", "default"),
        ("CBCT", "default"),
    ],
)
def test_modality_kind(modality, kind):
    assert modality_kind(modality) == kind


def test_shipped_params_are_pyradiomics_files_accepted_unchanged():
    assert sorted(p.name for p in SHIPPED_DIR.glob("*.yaml")) == [
        "ct.yaml",
        "default.yaml",
        "mr.yaml",
        "pet.yaml",
    ]
    for path in SHIPPED_DIR.glob("*.yaml"):
        extractor = featureextractor.RadiomicsFeatureExtractor(str(path))
        assert list(extractor.enabledImagetypes) == ["Original"]
        assert sorted(extractor.enabledFeatures) == sorted(
            ["shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm"]
        )
    params = load_params(None, ["CT", "MR", "PET", "US"])
    assert params["CT"]["setting"]["binWidth"] == 25
    assert params["MR"]["setting"]["normalize"] is True
    assert params["MR"]["setting"]["normalizeScale"] == 100
    assert params["PET"]["setting"]["binWidth"] == 0.25
    default = (SHIPPED_DIR / "default.yaml").read_text(encoding="utf-8")
    assert params["US"] == yaml.safe_load(default)


def test_load_params_from_a_file_and_a_folder(tmp_path):
    own = {"setting": {"binWidth": 10}, "featureClass": {"firstorder": None}}
    (tmp_path / "one.yaml").write_text(yaml.safe_dump(own))
    from_file = load_params(tmp_path / "one.yaml", ["CT", "PET"])
    assert from_file == {"CT": own, "PET": own}
    from_file["CT"]["setting"]["binWidth"] = 1
    assert from_file["PET"]["setting"]["binWidth"] == 10  # independent copies

    folder = tmp_path / "params"
    folder.mkdir()
    (folder / "CT.yaml").write_text(yaml.safe_dump(own))
    (folder / "pet.yml").write_text(yaml.safe_dump({"setting": {"binWidth": 0.5}}))
    loaded = load_params(folder, ["CT", "PET", "MR_T1"])
    assert loaded["CT"] == own
    assert loaded["PET"] == {"setting": {"binWidth": 0.5}}
    assert loaded["MR_T1"] == load_params(None, ["MR_T1"])["MR_T1"]


@pytest.mark.parametrize(
    "content, words",
    [
        ("setting:\n  binWidth: -5\n", "/setting/binWidth"),
        ("setting:\n  binwidth: 5\n", "Key 'binwidth' was not defined"),
        ("featureClass:\n  glcm: [Contrst]\n", "unrecognized features: {'Contrst'}"),
        ("imageType:\n  Wavelett: {}\n", "Wavelett"),
        ("setting: [binWidth\n", "not valid YAML"),
        ("- binWidth\n", "expected a mapping"),
    ],
)
def test_bad_params_file_is_an_input_error_naming_it(tmp_path, content, words):
    path = tmp_path / "CT.yaml"
    path.write_text(content)
    for params in (path, tmp_path):
        with pytest.raises(InputError) as error:
            load_params(params, ["CT"])
        (problem,) = error.value.problems
        assert problem.file == str(path) and words in problem.message


def test_absent_params_path(tmp_path):
    with pytest.raises(InputError, match="no such file or folder"):
        load_params(tmp_path / "nope.yaml", ["CT"])


@pytest.mark.skipif(not (SHARED / "pyradiomics").is_dir(), reason=f"{SHARED} absent")
@pytest.mark.parametrize(
    "name",
    [
        "Params.yaml",
        "exampleCT.yaml",
        "exampleMR_3mm.yaml",
        "exampleMR_NoResampling.yaml",
        "example_allShape.yaml",
    ],
)
def test_pyradiomics_example_settings_load_unchanged(name):
    path = SHARED / "pyradiomics" / "examples" / "exampleSettings" / name
    assert load_params(path, ["CT"])["CT"] == yaml.safe_load(path.read_text(encoding="utf-8"))


def test_complex_feature_values_keep_their_real_part_or_fail():
    from radfusion.features.extract import feature_value

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning
        assert feature_value("original_shape_Elongation", np.complex128(0.75 + 0j)) == 0.75
        assert feature_value("original_firstorder_Mean", np.float64(2.5)) == 2.5
    with pytest.raises(ValueError, match="original_shape_Flatness is complex"):
        feature_value("original_shape_Flatness", np.complex128(0.5 + 0.1j))
