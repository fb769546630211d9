"""Pre-flight check of a cohort: read every image header and mask, extract nothing.

:func:`check_cohort` gives one row per manifest case with what the mask holds (label values,
ROI voxel count and volume, connected components), whether mask and image share a grid, and
whether the ROI is too small for texture features; ``status`` says whether extraction would
succeed. :func:`cohort_ok` is False when any case would fail.

A manifest that extraction refuses as a whole (a repeated (patient, modality, mask), a
patient with several sites: :func:`radfusion.features.manifest.duplicate_problems`) is refused here
too, with the same :class:`~radfusion.features.errors.InputError`.

Rules (``status``):

- ``would fail``: an image or mask file missing or unreadable; an image or mask that is not
  3-D; NaN or infinite image voxels (inside the ROI always; outside it unless the modality's
  parameters set ``fill_non_finite``); no voxel with the label; mask and image on different
  grids (:func:`radfusion.features.io.compare_grids`); a ROI that spans more than one voxel in fewer
  than two axes (a line or a single voxel: pyradiomics' default ``minimumROIDimensions: 2``
  rejects it). With ``lesions: largest`` this applies to the largest component, with
  ``each`` to every component. The 3-D and non-finite rules are extraction's own
  (:mod:`radfusion.features.rules`).
- ``would fail`` too: a DICOM RTSTRUCT / SEG whose ``roi`` matches no ROI or several, or that
  references another series; PET headers that cannot give the SUV that the modality's
  ``radfusion: {suv: ...}`` asks for (:mod:`radfusion.features.suv`).
- ``warning``: a ROI (or a component extracted on its own) with fewer than ``min_voxels``
  voxels (default 64, a 4×4×4 cube: texture matrices of so few voxels are mostly empty), or
  one voxel thick along an axis (a flat ROI: 3D texture sees no neighbour along that axis).
- ``ok``: none of the above.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import SimpleITK as sitk

from .dicom import ROI_COLUMN, dicom_kind, read_mask, roi_names
from .errors import InputError
from .extract import lesion_extents
from .io import (
    ImageHeader,
    ImageReadError,
    compare_grids,
    nonfinite_voxels,
    read_header,
    read_image,
)
from .lifeline import exit_with_parent
from .manifest import (
    LABEL_COLUMN,
    LESIONS_COLUMN,
    duplicate_problems,
    mask_values,
    read_manifest,
)
from .naming import ID_COLUMN
from .params import load_params
from .preprocess import BLOCK, parse_config
from .rules import dimension_problems, nonfinite_problems
from .suv import suv_factor

__all__ = ["CHECK_COLUMNS", "MIN_VOXELS", "STATUSES", "check_cohort", "cohort_ok"]

#: Fewer ROI voxels than this: a warning (too small for texture features).
MIN_VOXELS = 64
#: ``status`` values, from best to worst.
STATUSES = ("ok", "warning", "would fail")
CHECK_COLUMNS = (
    ID_COLUMN,
    "modality",
    "mask",
    LABEL_COLUMN,
    LESIONS_COLUMN,
    "image",
    "mask_path",
    "labels_found",
    "rois_found",
    "voxels",
    "volume_mm3",
    "components",
    "grid",
    "status",
    "problem",
)
_AXES = ("x", "y", "z", "t")


def _extent(roi: np.ndarray) -> tuple[int, ...]:
    """Bounding-box size of a non-empty ROI per axis, in x, y, z order."""
    spans = []
    for axis in range(roi.ndim):
        hit = np.flatnonzero(roi.any(axis=tuple(a for a in range(roi.ndim) if a != axis)))
        spans.append(int(hit[-1] - hit[0] + 1))
    return tuple(reversed(spans))


def _size_problems(
    voxels: int, extent: tuple[int, ...], min_voxels: int, what: str
) -> tuple[list[str], list[str]]:
    """(fatal, warnings) for one extracted ROI of ``voxels`` voxels and bounding ``extent``."""
    fatal, warnings = [], []
    if sum(e > 1 for e in extent) < 2:
        fatal.append(
            f"{what} spans {'x'.join(map(str, extent))} voxels: pyradiomics needs "
            "more than one voxel along at least two axes (minimumROIDimensions 2)"
        )
        return fatal, warnings
    if voxels < min_voxels:
        warnings.append(
            f"{what} has {voxels} voxels (< {min_voxels}): too small for texture features"
        )
    flat = [_AXES[i] for i, e in enumerate(extent) if e == 1]
    if flat:
        warnings.append(f"{what} is one voxel thick along {', '.join(flat)}")
    return fatal, warnings


def _check_mask(
    mask_path: str,
    rows: list[dict],
    min_voxels: int,
    fills: dict[str, float | None],
    parent: int | None = None,
) -> list[dict]:
    """Check every manifest row that uses one mask file (the mask is read once)."""
    if parent is not None:  # a worker: exit when the checking process dies
        exit_with_parent(parent)
    try:
        kind = dicom_kind(mask_path)
    except ImageReadError as failure:  # a damaged DICOM file, or no pydicom to read one
        return [_check_row(row, None, f"unreadable mask: {failure.reason}", 0) for row in rows]
    if kind is not None:  # a DICOM RTSTRUCT / SEG: one rasterisation per row (roi, image)
        return [_check_dicom_row(row, mask_path, kind, min_voxels, fills) for row in rows]
    mask, error = None, "mask file is missing"
    if os.path.exists(mask_path):
        try:
            mask = read_image(mask_path)
        except ImageReadError as failure:
            error = f"unreadable mask: {failure.reason}"
        else:
            dimension = dimension_problems(ImageHeader.of(mask), "mask", mask_path)
            if dimension:
                mask, error = None, dimension[0]
    return [
        _check_row(row, mask, error, min_voxels, fills.get(row["modality"]))
        if not row.get(ROI_COLUMN)
        else _check_row(row, None, _not_dicom(row), min_voxels)
        for row in rows
    ]


def _not_dicom(row: dict) -> str:
    return f"roi {row[ROI_COLUMN]!r} is set but the mask is not a DICOM RTSTRUCT or SEG file"


def _check_dicom_row(
    row: dict, mask_path: str, kind: str, min_voxels: int, fills: dict[str, float | None]
) -> dict:
    """One row whose mask is a DICOM RTSTRUCT / SEG: list its ROIs, rasterise the row's."""
    mask, error, names = None, "", []
    try:
        names = roi_names(mask_path)
        mask = read_mask(mask_path, row["image"], row.get(ROI_COLUMN) or None, row[LABEL_COLUMN])
    except ImageReadError as failure:
        if os.path.normpath(failure.path) != os.path.normpath(row["image"]):
            error = f"unusable {kind} mask: {failure.reason}"
        # else: the series it is drawn on cannot be read, which the image's check reports
    out = _check_row(row, mask, error, min_voxels, fills.get(row["modality"]))
    out["rois_found"] = "; ".join(names)
    return out


def _check_row(
    row: dict, mask: sitk.Image | None, mask_error: str, min_voxels: int, fill: float | None = None
) -> dict:
    out = {c: row.get(c) for c in CHECK_COLUMNS}
    fatal: list[str] = []
    warnings: list[str] = []
    image_ok = False
    if not os.path.exists(row["image"]):
        fatal.append("image file is missing")
    else:
        try:
            image = read_header(row["image"])
        except ImageReadError as error:
            fatal.append(f"{error.problem}: {error.reason}")
        else:
            dimension = dimension_problems(image, "image", row["image"])
            fatal += dimension
            image_ok = not dimension
            if mask is not None and image_ok:
                grid = compare_grids(image, ImageHeader.of(mask))
                out["grid"] = "; ".join(grid)
                fatal += [f"mask and image are on different grids: {g}" for g in grid]
    if mask is None:
        fatal += [mask_error] if mask_error else []
        return _status(out, fatal, warnings)
    label = int(row[LABEL_COLUMN])
    out["labels_found"] = " ".join(f"{v:g}" for v in mask_values(mask))
    roi = sitk.GetArrayViewFromImage(mask) == label
    count = int(roi.sum())
    out["voxels"] = count
    out["volume_mm3"] = count * math.prod(mask.GetSpacing())
    if count == 0:
        out["components"] = 0
        fatal.append(
            f"empty mask: no voxel has label {label}; values present: {out['labels_found']}"
        )
        return _status(out, fatal, warnings)
    if image_ok:
        try:
            nonfinite = nonfinite_voxels(row["image"])
        except ImageReadError as error:
            fatal.append(f"{error.problem}: {error.reason}")
        else:
            fatal += nonfinite_problems(nonfinite, roi, fill, row["image"])
    components = lesion_extents(mask, label)
    out["components"] = len(components)
    mode = row.get(LESIONS_COLUMN) or "merge"
    if mode == "merge":
        units = [("ROI", count, _extent(roi))]
    elif mode == "largest":
        units = [("largest lesion", *components[0])]
    else:
        units = [(f"lesion {k}", *c) for k, c in enumerate(components, start=1)]
    for what, size, extent in units:
        more_fatal, more_warnings = _size_problems(size, extent, min_voxels, what)
        fatal += more_fatal
        warnings += more_warnings
    return _status(out, fatal, warnings)


def _status(out: dict, fatal: list[str], warnings: list[str]) -> dict:
    out["status"] = STATUSES[2] if fatal else STATUSES[1] if warnings else STATUSES[0]
    out["problem"] = "; ".join(fatal + warnings)
    return out


def check_cohort(
    manifest: pd.DataFrame | str | Path,
    n_jobs: int = -1,
    *,
    min_voxels: int = MIN_VOXELS,
    params: str | Path | dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Check every case of a cohort without extracting features.

    Parameters
    ----------
    manifest : pandas.DataFrame, str or Path
        A manifest as returned by :func:`radfusion.features.manifest.read_manifest`, or its CSV
        path.
    n_jobs : int, default=-1
        Worker processes (joblib); -1 uses every core. Each mask file is read once.
    min_voxels : int, default=64
        ROIs with fewer voxels get a warning (see the module's rules).
    params : str, Path, dict or None, default=None
        The parameters extraction will use (as for
        :func:`radfusion.features.runner.extract_cohort`); only their ``radfusion: fill_non_finite``
        option matters here.

    Returns
    -------
    pandas.DataFrame
        One row per manifest row, in manifest order, with :data:`CHECK_COLUMNS`:
        ``labels_found`` (distinct mask values, space-separated), ``rois_found`` (for a
        DICOM RTSTRUCT / SEG mask, the names of its structures or segments, ``"; "``-separated;
        empty otherwise), ``voxels`` and
        ``volume_mm3`` of the ROI (all components), ``components`` (26-connected),
        ``grid`` (how the mask's grid differs from the image's; empty when equal),
        ``status`` (one of :data:`STATUSES`) and ``problem`` (readable, ``"; "``-separated).

    Raises
    ------
    InputError
        When the manifest (given as a path) has missing columns or bad cells, repeats a
        (patient, modality, mask) case or gives a patient several sites; when ``params``
        is invalid.
    """
    source = "manifest"
    if not isinstance(manifest, pd.DataFrame):
        source = str(manifest)
        manifest = read_manifest(manifest)
    problems = duplicate_problems(manifest, source)
    if problems:
        raise InputError(f"invalid manifest {source}", problems)
    modalities = set(manifest["modality"])
    per_modality = params if isinstance(params, dict) else load_params(params, modalities)
    fills = {
        m: parse_config((per_modality.get(m) or {}).get(BLOCK)).fill_non_finite for m in modalities
    }
    rows = manifest.assign(**({} if LABEL_COLUMN in manifest.columns else {LABEL_COLUMN: 1}))
    rows = rows.astype(object).where(rows.notna(), None).to_dict("records")
    by_mask: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        by_mask.setdefault(row["mask_path"], []).append(index)
    tasks = [
        (path, [rows[i] for i in indexes], min_voxels, fills) for path, indexes in by_mask.items()
    ]
    workers = min(joblib.effective_n_jobs(n_jobs), len(tasks))
    if workers <= 1:
        results = [_check_mask(*task) for task in tasks]
    else:
        results = joblib.Parallel(n_jobs=workers, backend="loky")(
            joblib.delayed(_check_mask)(*task, os.getpid()) for task in tasks
        )
    checked: list[dict | None] = [None] * len(rows)
    for indexes, found in zip(by_mask.values(), results, strict=True):
        for index, row in zip(indexes, found, strict=True):
            checked[index] = row
    table = pd.DataFrame(checked, columns=list(CHECK_COLUMNS))
    table[LESIONS_COLUMN] = table[LESIONS_COLUMN].fillna("merge")
    table["grid"] = table["grid"].fillna("")
    table["rois_found"] = table["rois_found"].fillna("")
    _check_suv(table, per_modality)
    table["voxels"] = table["voxels"].astype("Int64")
    table["components"] = table["components"].astype("Int64")
    table["volume_mm3"] = table["volume_mm3"].astype(float)
    return table


def _check_suv(table: pd.DataFrame, per_modality: dict[str, dict]) -> None:
    """Rows of a modality with ``suv`` whose PET headers cannot give it would fail."""
    factors: dict[tuple[str, str], str] = {}
    for index, row in table.iterrows():
        kind = parse_config((per_modality.get(row["modality"]) or {}).get(BLOCK)).suv
        if kind is None or not os.path.exists(row["image"]):
            continue
        if (row["image"], kind) not in factors:
            try:
                suv_factor(row["image"], kind)
                factors[row["image"], kind] = ""
            except ImageReadError as error:  # SuvError, or a folder with no series
                factors[row["image"], kind] = error.reason
        if factors[row["image"], kind]:
            table.at[index, "status"] = STATUSES[2]
            table.at[index, "problem"] = "; ".join(
                p for p in (factors[row["image"], kind], row["problem"]) if p
            )


def cohort_ok(table: pd.DataFrame) -> bool:
    """True when no case of a :func:`check_cohort` table would fail (warnings allowed)."""
    return not (table["status"] == STATUSES[2]).any()
