"""Feature robustness to segmentation: perturb each mask, re-extract, ICC(3,1) per feature.

Each ROI is perturbed (binary erosion and dilation by one voxel with a ball of radius 1;
shifts by ±1 voxel along x and along y), the perturbed masks are written to files so that the
usual runner (:func:`radfusion.features.runner.extract_cohort`: parallel, cached, failures recorded)
extracts them, and :func:`icc_3_1` measures each feature's agreement across the original and
perturbed versions, patients as targets. The output (``feature, icc, n_patients``) is what
``radfusion.pipeline.preprocessing.RobustnessFilter`` reads.

A perturbation that empties or shrinks a tiny ROI below what pyradiomics accepts makes that
perturbed case fail (so does a broken image or mask for every version); the patient is then
left out of the ICC of that case's features (ICC needs every version of each patient):
``n_patients`` says how many patients each ICC uses, and one warning per failed case names
the patient, modality, mask, version, file and reason.
"""

from __future__ import annotations

import hashlib
import tempfile
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .dicom import ROI_COLUMN, dicom_kind, read_mask
from .files import file_digest
from .manifest import LABEL_COLUMN, read_manifest
from .naming import ID_COLUMN, SITE_COLUMN
from .runner import extract_cohort
from .table import write_table

__all__ = [
    "ORIGINAL",
    "PERTURBATIONS",
    "icc_3_1",
    "icc_table",
    "perturb_mask",
    "perturbed_tables",
    "robustness_icc",
]

ORIGINAL = "original"
#: Perturbation names; ``shift`` stands for the four in-plane shifts.
PERTURBATIONS = ("erode", "dilate", "shift_x+1", "shift_x-1", "shift_y+1", "shift_y-1")
_SHIFTS = {"shift_x+1": (2, 1), "shift_x-1": (2, -1), "shift_y+1": (1, 1), "shift_y-1": (1, -1)}


def icc_3_1(ratings: np.ndarray) -> float:
    """ICC(3,1): two-way mixed, consistency, single measure (Shrout & Fleiss 1979).

    ``(BMS - EMS) / (BMS + (k - 1) EMS)`` from the two-way ANOVA of ``n`` targets (rows) by
    ``k`` raters (columns), without replication.

    Parameters
    ----------
    ratings : numpy.ndarray of shape (n_targets, k_raters)
        Complete (no NaN).

    Returns
    -------
    float
        NaN with fewer than two targets or raters, or when the values do not vary at all.
    """
    ratings = np.asarray(ratings, dtype=float)
    n, k = ratings.shape
    if n < 2 or k < 2:
        return float("nan")
    mean = ratings.mean()
    rows = k * ((ratings.mean(axis=1) - mean) ** 2).sum()
    columns = n * ((ratings.mean(axis=0) - mean) ** 2).sum()
    error = ((ratings - mean) ** 2).sum() - rows - columns
    bms, ems = rows / (n - 1), max(error, 0.0) / ((n - 1) * (k - 1))
    denominator = bms + (k - 1) * ems
    scale = max(abs(mean), 1.0) ** 2 * 1e-24  # a numerically constant feature: undefined
    return float((bms - ems) / denominator) if denominator > scale else float("nan")


def perturb_mask(mask: sitk.Image, label: int, perturbation: str) -> sitk.Image:
    """The ROI ``mask == label`` perturbed, as a binary ``UInt8`` mask (ROI = 1), same grid.

    ``erode`` / ``dilate``: binary erosion / dilation with ITK's ball of radius 1 voxel (the
    3×3×3 cube without its 8 corners).
    ``shift_x±1`` / ``shift_y±1``: the ROI moved by one voxel along x / y (voxels leaving
    the grid are dropped).
    """
    roi = sitk.Cast(mask == int(label), sitk.sitkUInt8)
    if perturbation in ("erode", "dilate"):
        operation = sitk.BinaryErode if perturbation == "erode" else sitk.BinaryDilate
        out = operation(roi, [1] * roi.GetDimension(), sitk.sitkBall, 0, 1)
    elif perturbation in _SHIFTS:
        axis, step = _SHIFTS[perturbation]
        voxels = sitk.GetArrayFromImage(roi)
        moved = np.zeros_like(voxels)
        source = [slice(None)] * voxels.ndim
        target = [slice(None)] * voxels.ndim
        source[axis] = slice(None, -1) if step > 0 else slice(1, None)
        target[axis] = slice(1, None) if step > 0 else slice(None, -1)
        moved[tuple(target)] = voxels[tuple(source)]
        out = sitk.GetImageFromArray(moved)
    else:
        raise ValueError(
            f"unknown perturbation {perturbation!r}: use {', '.join(PERTURBATIONS)} or 'shift'"
        )
    out.CopyInformation(mask)
    return out


def _expand(perturbations: Iterable[str]) -> list[str]:
    names = []
    for name in perturbations:
        for one in _SHIFTS if name == "shift" else [name]:
            if one not in PERTURBATIONS:
                raise ValueError(
                    f"unknown perturbation {one!r}: use {', '.join(PERTURBATIONS)} or 'shift'"
                )
            if one not in names:
                names.append(one)
    return names


def _perturbed_manifest(
    manifest: pd.DataFrame, perturbations: list[str], folder: Path
) -> tuple[pd.DataFrame, dict[str, tuple[str, str]]]:
    """One manifest of every version; a version's patients get ids ``<k>:<patient>``.

    Perturbed masks are written to ``folder``, named by the source mask's content, label
    and perturbation (a re-run with the same cache folder reuses them, and so hits the
    cache). An unreadable mask is kept as is: extraction records the failure.
    """
    frames, ids = [], {}
    base = manifest.drop(columns=[SITE_COLUMN], errors="ignore").copy()
    if LABEL_COLUMN not in base.columns:
        base[LABEL_COLUMN] = 1
    for k, version in enumerate([ORIGINAL, *perturbations]):
        frame = base.copy()
        frame[ID_COLUMN] = [f"{k}:{pid}" for pid in base[ID_COLUMN]]
        ids.update({f"{k}:{pid}": (version, str(pid)) for pid in base[ID_COLUMN]})
        if version != ORIGINAL:
            paths, labels, rois = [], [], []
            for _, case in base.iterrows():
                mask_path, label, roi = case["mask_path"], case[LABEL_COLUMN], case.get(ROI_COLUMN)
                try:
                    paths.append(str(_write_perturbed(case, int(label), version, folder)))
                    labels.append(1)
                    rois.append("")  # a DICOM mask's ROI is now a label image
                except OSError:
                    paths.append(mask_path)
                    labels.append(label)
                    rois.append(roi)
            frame["mask_path"], frame[LABEL_COLUMN] = paths, labels
            if ROI_COLUMN in frame.columns:
                frame[ROI_COLUMN] = rois
        frames.append(frame)
    return pd.concat(frames, ignore_index=True), ids


def _write_perturbed(case: pd.Series, label: int, version: str, folder: Path) -> Path:
    mask_path, roi = case["mask_path"], case.get(ROI_COLUMN) or None
    name = file_digest(mask_path)[:24]
    if dicom_kind(mask_path) is not None:  # rasterised on the image's grid: both in the name
        source = f"{roi}\0{file_digest(case['image'])}".encode()
        name += "_" + hashlib.sha256(source).hexdigest()[:12]
    out = folder / f"{name}_{label}_{version}.nii.gz"
    if not out.exists():
        image = perturb_mask(read_mask(mask_path, case["image"], roi, label), label, version)
        temporary = out.with_name(f".{out.name}.tmp.nii.gz")
        sitk.WriteImage(image, str(temporary), True)
        temporary.replace(out)
    return out


def perturbed_tables(
    manifest: pd.DataFrame | str | Path,
    params: str | Path | Mapping[str, dict] | None = None,
    perturbations: Iterable[str] = ("erode", "dilate", "shift"),
    n_jobs: int = -1,
    cache_dir: str | Path | None = None,
    progress: bool = False,
) -> dict[str, pd.DataFrame]:
    """Extract the features of every ROI, original and perturbed (one runner call).

    Parameters are those of :func:`robustness_icc`.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{version: table}``, ``original`` first; each table indexed by ``patient_id`` with
        the feature columns ``modality__mask__feature``; failed cases are NaN.
    """
    if not isinstance(manifest, pd.DataFrame):
        manifest = read_manifest(manifest)
    names = _expand(perturbations)
    with tempfile.TemporaryDirectory(prefix="radfusion-robustness-") as temporary:
        folder = Path(cache_dir) / "perturbed-masks" if cache_dir is not None else Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        combined, ids = _perturbed_manifest(manifest, names, folder)
        result = extract_cohort(combined, params, n_jobs, progress, cache_dir=cache_dir)
    for note in _dropped(result.failures, ids):
        warnings.warn(note, UserWarning, stacklevel=2)
    features = result.features.drop(columns=[SITE_COLUMN], errors="ignore")
    version = features[ID_COLUMN].map(lambda i: ids[i][0])
    features[ID_COLUMN] = features[ID_COLUMN].map(lambda i: ids[i][1])
    patients = sorted({str(p) for p in manifest[ID_COLUMN]})
    return {
        name: features[version == name].set_index(ID_COLUMN).reindex(patients)
        for name in [ORIGINAL, *names]
    }


def _dropped(failures: pd.DataFrame, ids: dict[str, tuple[str, str]]) -> list[str]:
    """One sentence per failed case of the combined run, in the patient's own id."""
    notes = []
    for row in failures.itertuples(index=False):
        version, patient = ids[getattr(row, ID_COLUMN)]
        prefix = (
            f"patient {getattr(row, ID_COLUMN)}, modality {row.modality}, mask "
            f"{row.mask}, file {row.file}: "
        )
        reason = row.error[len(prefix) :] if row.error.startswith(prefix) else row.error
        notes.append(
            f"robustness: patient {patient} left out of the ICC of "
            f"{row.modality}__{row.mask} features: its {version} version failed "
            f"(modality {row.modality}, mask {row.mask}, file {row.file}: {reason})"
        )
    return notes


def icc_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """ICC(3,1) of every feature column across versions, patients as targets.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        ``{version: table}`` as :func:`perturbed_tables` returns (same index of patients).

    Returns
    -------
    pandas.DataFrame
        ``feature, icc, n_patients``, one row per feature column (sorted); a patient with a
        missing value in any version is left out of that feature's ICC.
    """
    frames = list(tables.values())
    columns = sorted(set().union(*(f.columns for f in frames)))
    rows = []
    for column in columns:
        ratings = np.column_stack(
            [
                f[column].to_numpy(dtype=float) if column in f.columns else np.full(len(f), np.nan)
                for f in frames
            ]
        )
        complete = ratings[~np.isnan(ratings).any(axis=1)]
        rows.append({"feature": column, "icc": icc_3_1(complete), "n_patients": len(complete)})
    return pd.DataFrame(rows, columns=["feature", "icc", "n_patients"])


def robustness_icc(
    manifest: pd.DataFrame | str | Path,
    params: str | Path | Mapping[str, dict] | None = None,
    perturbations: Iterable[str] = ("erode", "dilate", "shift"),
    n_jobs: int = -1,
    cache_dir: str | Path | None = None,
    *,
    out: str | Path | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """ICC(3,1) of every feature under mask perturbations.

    Parameters
    ----------
    manifest : pandas.DataFrame, str or Path
        The cohort (see :func:`radfusion.features.manifest.read_manifest`).
    params : str, Path, mapping or None, default=None
        As for :func:`radfusion.features.runner.extract_cohort`.
    perturbations : iterable of str, default=("erode", "dilate", "shift")
        Names from :data:`PERTURBATIONS`; ``shift`` means the four in-plane shifts.
    n_jobs : int, default=-1
        Worker processes for extraction.
    cache_dir : str or Path, optional
        The runner's cache; perturbed masks are kept under ``<cache_dir>/perturbed-masks``
        so a re-run extracts nothing. Without it they go to a temporary folder.
    out : str or Path, optional
        Also write the table there, atomically (``.csv``, ``.csv.gz`` or ``.parquet``).
    progress : bool, default=False
        Show the runner's progress bar.

    Returns
    -------
    pandas.DataFrame
        ``feature`` (full column name ``modality__mask__feature``), ``icc`` and
        ``n_patients`` (see :func:`icc_table`).
    """
    table = icc_table(
        perturbed_tables(manifest, params, perturbations, n_jobs, cache_dir, progress)
    )
    if out is not None:
        write_table(table, out)
    return table
