"""Pre-flight check table, lesion modes in extraction, and provenance in the diagnostics."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.check import STATUSES, check_cohort, cohort_ok
from radfusion.features.manifest import read_manifest
from radfusion.features.runner import extract_cohort
from tests.features.conftest import write_manifest

SPACING = (1.0, 1.0, 2.0)
PARAMS = {
    "CT": {
        "imageType": {"Original": {}},
        "featureClass": {"shape": None},
        "setting": {"binWidth": 25},
    }
}


def _save(array: np.ndarray, path: Path, spacing=SPACING, origin=(0.0, 0.0, 0.0)) -> str:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    sitk.WriteImage(image, str(path))
    return path.name


def _blobs(shape=(12, 16, 16)) -> np.ndarray:
    """Two 26-disconnected cubes (z, y, x): 4x4x4 = 64 voxels and 3x3x3 = 27 voxels."""
    mask = np.zeros(shape, np.uint8)
    mask[1:5, 1:5, 1:5] = 1
    mask[7:10, 10:13, 10:13] = 1
    return mask


@pytest.fixture
def cohort(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    image = _save(rng.normal(0, 20, (12, 16, 16)).astype(np.int16), tmp_path / "img.nii.gz")
    other = _save(
        np.zeros((12, 16, 16), np.int16), tmp_path / "moved.nii.gz", origin=(0.5, 0.0, 0.0)
    )
    blobs = _save(_blobs(), tmp_path / "blobs.nii.gz")
    tiny = np.zeros((12, 16, 16), np.uint8)
    tiny[5, 5, 5:9] = 1  # a line: pyradiomics rejects it
    flat = np.zeros((12, 16, 16), np.uint8)
    flat[6, 2:6, 2:6] = 2  # 16 voxels, one slice thick
    _save(tiny, tmp_path / "tiny.nii.gz")
    _save(flat, tmp_path / "flat.nii.gz")
    rows = [
        dict(patient_id="P1", modality="CT", mask="blobs", image=image, mask_path=blobs, label=1),
        dict(
            patient_id="P2",
            modality="CT",
            mask="line",
            image=image,
            mask_path="tiny.nii.gz",
            label=1,
        ),
        dict(
            patient_id="P3",
            modality="CT",
            mask="flat",
            image=image,
            mask_path="flat.nii.gz",
            label=2,
        ),
        dict(patient_id="P4", modality="CT", mask="blobs", image=other, mask_path=blobs, label=1),
        dict(patient_id="P5", modality="CT", mask="absent", image=image, mask_path=blobs, label=3),
    ]
    return write_manifest(tmp_path / "manifest.csv", rows)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_check_table_values(cohort: Path, n_jobs: int) -> None:
    table = check_cohort(cohort, n_jobs=n_jobs).set_index("patient_id")
    voxel = np.prod(SPACING)
    assert table.loc["P1", "voxels"] == 91
    assert table.loc["P1", "volume_mm3"] == pytest.approx(91 * voxel)
    assert table.loc["P1", "components"] == 2
    assert table.loc["P1", "labels_found"] == "0 1"
    assert table.loc["P1", "grid"] == ""
    assert table.loc["P1", "status"] == "ok"
    assert "minimumROIDimensions" in table.loc["P2", "problem"]
    assert table.loc["P2", "status"] == "would fail"
    assert table.loc["P3", "status"] == "warning"
    assert "16 voxels" in table.loc["P3", "problem"]
    assert "one voxel thick along z" in table.loc["P3", "problem"]
    assert "origin differs by 0.5 mm" in table.loc["P4", "grid"]
    assert table.loc["P4", "status"] == "would fail"
    assert table.loc["P5", "status"] == "would fail"
    assert "no voxel has label 3" in table.loc["P5", "problem"]
    assert set(table["status"]) <= set(STATUSES)


@pytest.mark.parametrize(
    ("keep", "ok"), [(["P1"], True), (["P1", "P3"], True), (["P1", "P2"], False), (["P4"], False)]
)
def test_cohort_ok(cohort: Path, keep: list[str], ok: bool) -> None:
    manifest = read_manifest(cohort)
    assert cohort_ok(check_cohort(manifest[manifest.patient_id.isin(keep)], n_jobs=1)) is ok


def test_missing_file_would_fail(cohort: Path) -> None:
    manifest = read_manifest(cohort)
    manifest.loc[1, "mask_path"] = str(cohort.parent / "nowhere.nii.gz")
    table = check_cohort(manifest, n_jobs=1)
    assert table.loc[0, "status"] == "would fail"
    assert "mask file is missing" in table.loc[0, "problem"]


@pytest.mark.parametrize(
    ("mode", "masks", "volumes"),
    [
        ("merge", ["blobs"], [91]),
        ("largest", ["blobs"], [64]),
        ("each", ["blobs_lesion1", "blobs_lesion2"], [64, 27]),
    ],
)
def test_lesion_modes(cohort: Path, mode: str, masks: list[str], volumes: list[int]) -> None:
    manifest = read_manifest(cohort).iloc[:1].assign(lesions=mode)
    result = extract_cohort(manifest, PARAMS, n_jobs=1, progress=False)
    assert result.failures.empty
    assert list(result.diagnostics["mask"]) == masks
    found = [result.features[f"CT__{m}__original_shape_VoxelVolume"].iloc[0] for m in masks]
    assert found == pytest.approx([v * np.prod(SPACING) for v in volumes])


def test_lesions_column_validated(cohort: Path) -> None:
    from radfusion.features.errors import InputError

    text = cohort.read_text(encoding="utf-8").splitlines()
    rows = [text[0] + ",lesions", text[1] + ",Each", text[2] + ",some"]
    cohort.write_text("\n".join(rows) + "\n")
    with pytest.raises(InputError, match="lesions 'some' is not one of merge, largest, each"):
        read_manifest(cohort)


def test_lesion_each_with_cache_and_check(cohort: Path, tmp_path: Path) -> None:
    manifest = read_manifest(cohort).iloc[:1].assign(lesions="each")
    cold = extract_cohort(manifest, PARAMS, n_jobs=1, progress=False, cache_dir=tmp_path / "c")
    warm = extract_cohort(manifest, PARAMS, n_jobs=1, progress=False, cache_dir=tmp_path / "c")
    assert warm.n_cached == 2
    assert cold.features.equals(warm.features)
    table = check_cohort(manifest, n_jobs=1)
    assert table.loc[0, "status"] == "warning"  # lesion 2 has 27 voxels < 64
    assert "lesion 2 has 27 voxels" in table.loc[0, "problem"]


@pytest.mark.parametrize("cached", [False, True])
def test_provenance_hashes(cohort: Path, tmp_path: Path, cached: bool) -> None:
    manifest = read_manifest(cohort).iloc[:1]
    cache = tmp_path / "cache" if cached else None
    for _ in range(1 + cached):  # the second run reads the cache
        diagnostics = extract_cohort(
            manifest, PARAMS, n_jobs=1, progress=False, cache_dir=cache
        ).diagnostics
    row = diagnostics.iloc[0]
    for column, path in (("image_sha256", "image"), ("mask_sha256", "mask_path")):
        assert row[column] == hashlib.sha256(Path(row[path]).read_bytes()).hexdigest()
    assert row["label"] == 1
    assert row["series_uid"] is None


def test_series_uid_of_dicom_folder(tmp_path: Path) -> None:
    from radfusion.features.io import series_uid

    folder = tmp_path / "dicom"
    folder.mkdir()
    uid = "1.2.826.0.1.3680043.2.1125.1"
    for z in range(3):
        writer = sitk.ImageFileWriter()
        writer.KeepOriginalImageUIDOn()
        slice_ = sitk.Image(4, 4, sitk.sitkInt16)
        slice_.SetOrigin((0.0, 0.0, float(z)))
        for tag, value in (
            ("0020|000e", uid),
            ("0020|0013", str(z + 1)),
            ("0020|0032", f"0\\0\\{z}"),
            ("0008|0060", "CT"),
            ("0020|000d", uid + ".9"),
            ("0008|0018", f"{uid}.{z + 10}"),
        ):
            slice_.SetMetaData(tag, value)
        writer.SetFileName(str(folder / f"{z}.dcm"))
        writer.Execute(slice_)
    assert series_uid(folder) == uid
    assert series_uid(tmp_path / "dicom" / "0.dcm") is None
