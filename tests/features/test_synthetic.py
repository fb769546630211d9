"""Tests of the synthetic multimodal cohort (features/synthetic.py)."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from radfusion.features.synthetic import (
    CT_GRID,
    CT_SITE_SHIFT_HU,
    MR_GRID,
    MR_SITE_GAIN,
    RING_MM,
    SyntheticCohort,
    make_cohort,
)

N = 8


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _array(path: Path) -> np.ndarray:
    return sitk.GetArrayFromImage(sitk.ReadImage(str(path)))


def _files(root: Path) -> list[Path]:
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SyntheticCohort:
    return make_cohort(tmp_path_factory.mktemp("cohort"), n_patients=N, seed=3)


@pytest.fixture(scope="module")
def manifest(cohort: SyntheticCohort) -> list[dict[str, str]]:
    return _rows(cohort.manifest)


@pytest.fixture(scope="module")
def segmentations(cohort: SyntheticCohort, manifest) -> dict[tuple[str, str], np.ndarray]:
    root = cohort.manifest.parent
    return {(r["patient_id"], r["modality"]): _array(root / r["mask_path"]) for r in manifest}


def test_returns_paths_and_outcome_name(cohort: SyntheticCohort) -> None:
    assert cohort.manifest.name == "manifest.csv" and cohort.manifest.is_file()
    assert cohort.biomarkers.name == "biomarkers.csv" and cohort.biomarkers.is_file()
    assert cohort.outcome == "outcome"
    with pytest.raises(dataclasses.FrozenInstanceError):
        cohort.outcome = "y"  # type: ignore[misc]


def test_same_seed_gives_identical_files(cohort: SyntheticCohort, tmp_path: Path) -> None:
    again = make_cohort(tmp_path, n_patients=N, seed=3)
    first, second = cohort.manifest.parent, again.manifest.parent
    assert _files(first) == _files(second)
    for rel in _files(first):  # CSVs and gzipped NIfTI alike: byte for byte
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_patient_does_not_depend_on_cohort_size(cohort: SyntheticCohort, tmp_path: Path) -> None:
    small = make_cohort(tmp_path, n_patients=2, seed=3).manifest.parent
    big = cohort.manifest.parent
    for rel in _files(small):
        if rel.suffix == ".gz":
            assert (small / rel).read_bytes() == (big / rel).read_bytes(), rel
    assert _rows(small / "biomarkers.csv") == _rows(big / "biomarkers.csv")[:2]


def test_different_seed_gives_different_cohort(cohort: SyntheticCohort, tmp_path: Path) -> None:
    other = make_cohort(tmp_path, n_patients=N, seed=4)
    assert cohort.biomarkers.read_bytes() != other.biomarkers.read_bytes()
    a = _array(cohort.manifest.parent / "images/P001_CT.nii.gz")
    b = _array(other.manifest.parent / "images/P001_CT.nii.gz")
    assert not np.array_equal(a, b)


def test_manifest_rows_columns_and_paths(cohort: SyntheticCohort, manifest) -> None:
    assert list(manifest[0]) == [
        "patient_id",
        "modality",
        "mask",
        "image",
        "mask_path",
        "label",
        "site",
    ]
    assert len(manifest) == N * 2 * 2
    ids = [f"P{k:03d}" for k in range(1, N + 1)]
    keys = {(r["patient_id"], r["modality"], r["mask"], r["label"]) for r in manifest}
    assert keys == {
        (p, m, mask, label)
        for p in ids
        for m in ("CT", "MR")
        for mask, label in (("tumor", "1"), ("peritumoral", "2"))
    }
    root = cohort.manifest.parent
    for r in manifest:
        assert not Path(r["image"]).is_absolute() and (root / r["image"]).is_file()
        assert (root / r["mask_path"]).is_file()
        assert r["image"] == f"images/{r['patient_id']}_{r['modality']}.nii.gz"
        assert r["mask_path"] == f"masks/{r['patient_id']}_{r['modality']}_seg.nii.gz"
    sites = {r["patient_id"]: r["site"] for r in manifest}
    assert len(sites) == N and set(sites.values()) == {"A", "B"}
    assert sum(s == "B" for s in sites.values()) == N // 2  # blocked: one of each per pair


def test_images_have_modality_types_and_distinct_grids(cohort: SyntheticCohort) -> None:
    root = cohort.manifest.parent
    ct = sitk.ReadImage(str(root / "images/P001_CT.nii.gz"))
    mr = sitk.ReadImage(str(root / "images/P001_MR.nii.gz"))
    assert ct.GetPixelID() == sitk.sitkInt16 and mr.GetPixelID() == sitk.sitkFloat32
    assert ct.GetSpacing() == pytest.approx(CT_GRID.spacing)
    assert mr.GetSpacing() == pytest.approx(MR_GRID.spacing)
    assert ct.GetSize() != mr.GetSize()
    assert not np.allclose(ct.GetSpacing(), mr.GetSpacing())
    for modality, image in (("CT", ct), ("MR", mr)):
        seg = sitk.ReadImage(str(root / f"masks/P001_{modality}_seg.nii.gz"))
        assert seg.GetSize() == image.GetSize()
        assert seg.GetSpacing() == pytest.approx(image.GetSpacing())
        assert seg.GetOrigin() == pytest.approx(image.GetOrigin())
    ct_hu = sitk.GetArrayFromImage(ct)
    assert ct_hu.min() <= -900  # air outside the body
    assert -100 < np.median(ct_hu) < 150  # mostly soft tissue
    assert sitk.GetArrayFromImage(mr).min() >= 0  # magnitude image


def test_labels_tumour_and_ring(segmentations) -> None:
    for (patient, modality), seg in segmentations.items():
        spacing = (CT_GRID if modality == "CT" else MR_GRID).spacing_zyx()
        assert set(np.unique(seg)) == {0, 1, 2}, (patient, modality)
        tumour, ring = seg == 1, seg == 2
        assert tumour.sum() > 100 and ring.sum() > 100
        # Disjoint by construction of a label map; the ring hugs the tumour...
        distance = ndimage.distance_transform_edt(~tumour, sampling=spacing)
        assert distance[ring].max() <= RING_MM + 1e-6
        # ...and surrounds it: every tumour voxel's face neighbours are tumour or ring.
        grown = ndimage.binary_dilation(tumour) & ~tumour
        assert np.all(ring[grown]), (patient, modality)
        # The lesion stays inside the field of view.
        assert not tumour[[0, -1]].any() and not tumour[:, [0, -1]].any()
        assert not tumour[:, :, [0, -1]].any()


def test_same_lesion_in_both_modalities(segmentations) -> None:
    for patient in {p for p, _ in segmentations}:
        volumes = []
        for modality, grid in (("CT", CT_GRID), ("MR", MR_GRID)):
            volumes.append((segmentations[patient, modality] == 1).sum() * np.prod(grid.spacing))
        assert volumes[0] == pytest.approx(volumes[1], rel=0.15), patient


def test_biomarkers(cohort: SyntheticCohort) -> None:
    rows = _rows(cohort.biomarkers)
    assert list(rows[0]) == ["patient_id", "age", "sex", "ldh", "outcome"]
    assert [r["patient_id"] for r in rows] == [f"P{k:03d}" for k in range(1, N + 1)]
    assert all(30 <= int(r["age"]) <= 90 for r in rows)
    assert {r["sex"] for r in rows} <= {"F", "M"}
    assert all(50 < float(r["ldh"]) < 1000 for r in rows)
    assert {r["outcome"] for r in rows} == {"0", "1"}


def test_scanner_effect_by_site(cohort: SyntheticCohort, manifest, segmentations) -> None:
    # Background = soft tissue well inside the body, away from the tumour and its ring.
    root = cohort.manifest.parent
    site = {r["patient_id"]: r["site"] for r in manifest}
    background = {("CT", "A"): [], ("CT", "B"): [], ("MR", "A"): [], ("MR", "B"): []}
    for patient, s in site.items():
        for modality, grid in (("CT", CT_GRID), ("MR", MR_GRID)):
            x, y, _ = grid.coordinates()
            lesion = ndimage.binary_dilation(segmentations[patient, modality] > 0, iterations=2)
            keep = (np.hypot(x, y) < 17.0) & ~lesion
            image = _array(root / f"images/{patient}_{modality}.nii.gz")
            background[modality, s].append(np.median(image[keep]))
    mean = {key: np.mean(values) for key, values in background.items()}
    assert mean["CT", "A"] == pytest.approx(40.0, abs=6.0)
    assert mean["CT", "B"] - mean["CT", "A"] == pytest.approx(CT_SITE_SHIFT_HU, abs=6.0)
    assert mean["MR", "B"] / mean["MR", "A"] == pytest.approx(MR_SITE_GAIN, abs=0.1)


@pytest.mark.parametrize("n_patients", [0, -3])
def test_rejects_bad_size(tmp_path: Path, n_patients: int) -> None:
    with pytest.raises(ValueError, match="n_patients"):
        make_cohort(tmp_path, n_patients=n_patients)


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="seed"):
        make_cohort(tmp_path, n_patients=1, seed=-1)
    with pytest.raises(TypeError, match="n_patients"):
        make_cohort(tmp_path, n_patients=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="seed"):
        make_cohort(tmp_path, n_patients=1, seed="0")  # type: ignore[arg-type]


def test_missing_mr_drops_mr_for_a_seeded_fraction_only(
    cohort: SyntheticCohort, manifest, tmp_path: Path
) -> None:
    sparse = make_cohort(tmp_path, n_patients=N, seed=3, missing_mr=0.5)
    rows = _rows(sparse.manifest)
    with_mr = {r["patient_id"] for r in rows if r["modality"] == "MR"}
    everyone = {r["patient_id"] for r in manifest}
    assert len(everyone - with_mr) == round(0.5 * N)
    # the kept rows, the files they name and the biomarkers/outcomes are unchanged
    assert rows == [r for r in manifest if r["modality"] == "CT" or r["patient_id"] in with_mr]
    for r in rows:
        for column in ("image", "mask_path"):
            assert (tmp_path / r[column]).read_bytes() == (
                cohort.manifest.parent / r[column]
            ).read_bytes()
    assert not any(tmp_path.glob(f"images/{sorted(everyone - with_mr)[0]}_MR*"))
    assert sparse.biomarkers.read_bytes() == cohort.biomarkers.read_bytes()
    again = make_cohort(tmp_path, n_patients=N, seed=3, missing_mr=0.5)
    assert _rows(again.manifest) == rows
    for bad in (-0.1, 1.5, True):
        with pytest.raises(ValueError, match="missing_mr"):
            make_cohort(tmp_path, n_patients=1, missing_mr=bad)


def test_survival_outcome_replaces_the_binary_outcome_by_time_and_event(
    cohort: SyntheticCohort, tmp_path: Path
) -> None:
    from radfusion.features.synthetic import synthetic_outcomes

    survival = make_cohort(tmp_path, n_patients=N, seed=3, outcome="survival")
    assert (survival.outcome, survival.time, survival.event) == (None, "time", "event")
    first, second = cohort.manifest.parent, survival.manifest.parent
    for rel in _files(first):  # images, masks and manifest are the binary cohort's
        if rel.name != "biomarkers.csv":
            assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    binary, rows = _rows(cohort.biomarkers), _rows(survival.biomarkers)
    # the binary outcome (same latent factors) would be a leaking predictor: left out
    assert list(rows[0]) == [*(k for k in binary[0] if k != "outcome"), "time", "event"]
    assert [{k: r[k] for k in r if k not in ("time", "event")} for r in rows] == [
        {k: v for k, v in r.items() if k != "outcome"} for r in binary
    ]
    expected = synthetic_outcomes(N, seed=3)
    assert [float(r["time"]) for r in rows] == expected["time"].tolist()
    assert [int(r["event"]) for r in rows] == expected["event"].tolist()
    assert all(0 < float(r["time"]) <= 60 for r in rows)
    with pytest.raises(ValueError, match="outcome"):
        make_cohort(tmp_path, n_patients=1, outcome="time")
