"""Read and validate the cohort manifest and the biomarker table.

The manifest lists one (patient, modality, mask) case per row::

    patient_id,modality,mask,image,mask_path,label,site
    P001,CT,tumor,images/P001_ct.nii.gz,masks/P001_ct_tumor.nii.gz,1,A

Validation collects every problem and raises one :class:`~radfusion.features.errors.InputError`,
each problem naming its row (1-based data row, header excluded), patient and file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from .batch import batch_to_manifest, is_batch
from .csvfile import csv_problem
from .dicom import ROI_COLUMN, DicomMaskError, dicom_kind, read_mask
from .errors import InputError, Problem
from .io import ImageHeader, ImageReadError, compare_grids, read_header
from .naming import CONTROL_SUFFIX, ID_COLUMN, SEPARATOR, SITE_COLUMN, control_characters
from .rules import dimension_problems
from .spelling import spelling_problems

__all__ = [
    "LABEL_COLUMN",
    "LESION_MODES",
    "LESIONS_COLUMN",
    "LABELS_COLUMN",
    "LABEL_MODES",
    "PyradiomicsBatchWarning",
    "RING_COLUMN",
    "OPTIONAL_COLUMNS",
    "duplicate_problems",
    "manifest_inputs",
    "PATH_COLUMNS",
    "REQUIRED_COLUMNS",
    "mask_values",
    "read_manifest",
    "roi_problems",
    "validate_cohort",
]

REQUIRED_COLUMNS = (ID_COLUMN, "modality", "mask", "image", "mask_path")
LABEL_COLUMN = "label"
#: Optional column: what to do with several connected components (lesions) in one ROI.
LESIONS_COLUMN = "lesions"
#: ``merge`` (default): one ROI; ``largest``: the largest component only; ``each``: one ROI
#: per component, named ``<mask>_lesion<k>`` (k = 1 for the largest).
LESION_MODES = ("merge", "largest", "each")
#: Optional column: ``one`` (default): the ROI is the ``label`` value; ``each``: one ROI per
#: non-zero value of the mask file, named ``<mask>_label<v>`` (``label`` is then ignored).
LABELS_COLUMN = "labels"
LABEL_MODES = ("one", "each")
#: Optional column: a positive number R adds a peritumoral ring of R mm around the ROI as an
#: extra ROI named ``<mask>_ring<R>mm``; empty: no ring.
RING_COLUMN = "ring_mm"
#: Optional column ``roi``: for a DICOM RTSTRUCT / SEG ``mask_path``, the structure or segment
#: (exact name or case-insensitive pattern; see :mod:`radfusion.features.dicom`).
OPTIONAL_COLUMNS = (
    LABEL_COLUMN,
    SITE_COLUMN,
    LESIONS_COLUMN,
    LABELS_COLUMN,
    RING_COLUMN,
    ROI_COLUMN,
)
PATH_COLUMNS = ("image", "mask_path")
DEFAULT_LABEL = 1


class PyradiomicsBatchWarning(UserWarning):
    """A pyradiomics batch file was read as a manifest; the message names the mapping."""


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV with every cell as a string; data rows are indexed 1, 2, ..."""
    if not path.is_file():
        raise InputError(f"{what} not found", [Problem("no such file", file=str(path))])
    problem = csv_problem(path)
    if problem:
        raise InputError(f"{what} is not a readable CSV", [Problem(problem, file=str(path))])
    try:
        df = pd.read_csv(
            path, dtype=str, keep_default_na=False, encoding="utf-8-sig", skipinitialspace=True
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise InputError(
            f"{what} is not a readable CSV", [Problem(str(error), file=str(path))]
        ) from None
    df.columns = [str(c).strip() for c in df.columns]
    df = df.apply(lambda column: column.str.strip())
    df.index = pd.RangeIndex(1, len(df) + 1, name="row")
    return df


def _missing_columns(df: pd.DataFrame, required: Iterable[str], path: Path) -> list[Problem]:
    return [
        Problem(
            f"missing required column {name!r} (columns found: {', '.join(df.columns)})",
            file=str(path),
        )
        for name in required
        if name not in df.columns
    ]


def _resolve(value: str, base: Path) -> str:
    """An absolute, normalised path; relative ones are taken from ``base``."""
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base / path)


def _load_manifest(path: Path, modality: str | None = None) -> tuple[pd.DataFrame, list[Problem]]:
    """Parse the manifest; return it with the problems found in its cells.

    A pyradiomics batch file (``ID,Image,Mask[,Label]``) is mapped onto the manifest's
    columns first (:func:`radfusion.features.batch.batch_to_manifest`), ``modality`` naming
    its images' modality unless it has a ``Modality`` column.
    """
    df = _read_csv(path, "manifest")
    file = str(path)
    if is_batch(df.columns):
        df, problems, note = batch_to_manifest(df, modality=modality, file=file)
        if problems:
            return df, problems
        warnings.warn(f"{file}: {note}", PyradiomicsBatchWarning, stacklevel=3)
    problems = _missing_columns(df, REQUIRED_COLUMNS, path)
    if LABEL_COLUMN not in df.columns:
        df[LABEL_COLUMN] = str(DEFAULT_LABEL)
    labels = []
    for row, value in df[LABEL_COLUMN].items():
        pid = df.at[row, ID_COLUMN] if ID_COLUMN in df.columns else None
        try:
            label = int(value) if value != "" else DEFAULT_LABEL
            if label <= 0:
                raise ValueError
        except ValueError:
            problems.append(Problem(f"label {value!r} is not a positive integer", row, pid, file))
            label = DEFAULT_LABEL
        labels.append(label)
    df[LABEL_COLUMN] = np.array(labels, dtype=np.int64)
    for column, choices in ((LESIONS_COLUMN, LESION_MODES), (LABELS_COLUMN, LABEL_MODES)):
        if column in df.columns:
            df[column] = _modes(df, column, choices, problems, file)
    if RING_COLUMN in df.columns:
        rings = []
        for row, value in df[RING_COLUMN].items():
            try:
                ring = float(value) if value != "" else None
                if ring is not None and not (ring > 0 and np.isfinite(ring)):
                    raise ValueError
            except ValueError:
                pid = df.at[row, ID_COLUMN] if ID_COLUMN in df.columns else None
                problems.append(
                    Problem(f"ring_mm {value!r} is not a positive number of mm", row, pid, file)
                )
                ring = None
            rings.append(ring)
        df[RING_COLUMN] = pd.Series(rings, index=df.index, dtype=object)
    for row in df.index:
        pid = df.at[row, ID_COLUMN] if ID_COLUMN in df.columns else None
        if pid == "":
            problems.append(Problem("patient_id is empty", row, None, file))
        for column in (ID_COLUMN, "modality", "mask"):
            if column in df.columns and control_characters(df.at[row, column]):
                problems.append(
                    Problem(
                        f"{column} {df.at[row, column]!r} holds control characters "
                        f"({control_characters(df.at[row, column])})",
                        row,
                        None if column == ID_COLUMN else pid,
                        file,
                    )
                )
        for column in ("modality", "mask"):
            if column not in df.columns:
                continue
            name = df.at[row, column]
            if not name or SEPARATOR in name:
                problems.append(
                    Problem(
                        f"{column} name {name!r} must be non-empty and contain no {SEPARATOR!r} "
                        f"(it becomes part of the column name modality{SEPARATOR}mask{SEPARATOR}"
                        "feature)",
                        row,
                        pid,
                        file,
                    )
                )
            elif CONTROL_SUFFIX in name:
                problems.append(
                    Problem(
                        f"{column} name {name!r} must not contain {CONTROL_SUFFIX!r} (reserved "
                        "for the negative-control ROIs of extract --negative-control)",
                        row,
                        pid,
                        file,
                    )
                )
    problems += _spelling_problems(df, file)
    base = path.resolve().parent
    for column in PATH_COLUMNS:
        if column in df.columns:
            df[column] = [_resolve(v, base) if v else "" for v in df[column]]
    if SITE_COLUMN in df.columns:
        df[SITE_COLUMN] = df[SITE_COLUMN].replace("", pd.NA)
    return df, problems


#: Manifest columns whose names must be spelled one way, and what two spellings would make.
_SPELLED = {
    "modality": "separate modalities (feature groups, parameter files)",
    "mask": "separate ROIs (feature groups)",
    SITE_COLUMN: "separate sites",
}


def _spelling_problems(df: pd.DataFrame, file: str) -> list[Problem]:
    """Modality, mask or site names written two ways (``CT`` / ``ct``): never split silently."""
    ids = df[ID_COLUMN] if ID_COLUMN in df.columns else pd.Series(None, index=df.index)
    return [
        problem
        for column, consequence in _SPELLED.items()
        if column in df.columns
        for problem in spelling_problems(
            zip(df[column], df.index, ids, strict=True), f"column {column!r}", file, consequence
        )
    ]


def _modes(
    df: pd.DataFrame, column: str, choices: tuple[str, ...], problems: list[Problem], file: str
) -> pd.Series:
    """A manifest column of modes, lower-cased, empty = the first choice; others are problems."""
    modes = df[column].str.lower().replace("", choices[0])
    for row, mode in modes.items():
        if mode not in choices:
            pid = df.at[row, ID_COLUMN] if ID_COLUMN in df.columns else None
            problems.append(
                Problem(
                    f"{column} {df.at[row, column]!r} is not one of {', '.join(choices)}",
                    row,
                    pid,
                    file,
                )
            )
    return modes


def read_manifest(path: str | Path, modality: str | None = None) -> pd.DataFrame:
    """Read a cohort manifest CSV.

    Parameters
    ----------
    path : str or Path
        CSV with columns ``patient_id, modality, mask, image, mask_path`` and optional
        ``label`` (the mask value of the ROI, default 1), ``site``, ``lesions``
        (:data:`LESION_MODES`, default ``merge``), ``labels`` (:data:`LABEL_MODES`, default
        ``one``), ``ring_mm`` (a peritumoral ring's width) and ``roi`` (the structure or
        segment of a DICOM RTSTRUCT / SEG ``mask_path``, whose ``image`` is then the DICOM
        series folder it references). Relative paths are taken from the manifest's folder. A
        pyradiomics batch file (``ID,Image,Mask[,Label]``) is accepted too (see
        :mod:`radfusion.features.batch`), with a :class:`PyradiomicsBatchWarning` naming the
        mapping.
    modality : str, optional
        The modality of a pyradiomics batch file's images (unless it has a ``Modality``
        column); ignored for a radfusion manifest.

    Returns
    -------
    pandas.DataFrame
        One row per case, indexed by the 1-based data row; ``patient_id`` as string,
        ``image`` and ``mask_path`` as absolute paths, ``label`` as int.

    Raises
    ------
    InputError
        Listing every missing column and every bad cell (label, empty names). Files are not
        opened; use :func:`validate_cohort` for that.
    """
    path = Path(path)
    df, problems = _load_manifest(path, modality)
    if problems:
        raise InputError(f"invalid manifest {path}", problems)
    return df


def manifest_inputs(manifest: pd.DataFrame) -> dict[str, str]:
    """Every image and mask file (or DICOM folder) a manifest reads, mapped to what it is
    (``"the image of patient P1 (row 1)"``): the inputs an output must not replace
    (:func:`radfusion.features.files.check_output_path`)."""
    inputs: dict[str, str] = {}
    for row, case in manifest.iterrows():
        for column, what in (("image", "image"), ("mask_path", "mask")):
            if case.get(column):
                inputs.setdefault(
                    case[column], f"the {what} of patient {case.get(ID_COLUMN)} (row {row})"
                )
    return inputs


class _ImageCache:
    """Headers and label values read once per file during one validation."""

    def __init__(self) -> None:
        self._headers: dict[str, ImageHeader | ImageReadError] = {}
        self._masks: dict[str | tuple, tuple[ImageHeader, np.ndarray] | ImageReadError] = {}

    def header(self, path: str) -> ImageHeader:
        if path not in self._headers:
            try:
                self._headers[path] = read_header(path)
            except ImageReadError as error:
                self._headers[path] = error
        return _unwrap(self._headers[path])

    def mask(
        self, path: str, image: str | None = None, roi: str | None = None, label: int = 1
    ) -> tuple[ImageHeader, np.ndarray]:
        """The mask's header and the sorted distinct values of its voxels (a DICOM RTSTRUCT /
        SEG: its ROI ``roi`` rasterised on ``image``'s grid with value ``label``)."""
        try:
            dicom = bool(roi) or dicom_kind(path) is not None
        except ImageReadError:  # a DICOM file that cannot be read: read_mask says why
            dicom = True
        key = (path, image, roi, label) if dicom else path  # a label image is read once
        if key not in self._masks:
            try:
                mask = read_mask(path, image, roi, label)
                values = mask_values(mask)
                self._masks[key] = (ImageHeader.of(mask), values)
            except ImageReadError as error:
                self._masks[key] = error
        return _unwrap(self._masks[key])


def _unwrap(value):
    if isinstance(value, ImageReadError):
        raise value
    return value


def mask_values(mask: sitk.Image) -> np.ndarray:
    """Sorted distinct voxel values of a mask (fast for small non-negative integer labels)."""
    voxels = sitk.GetArrayViewFromImage(mask)
    if voxels.dtype.kind in "ub" and voxels.dtype.itemsize <= 2:
        return np.flatnonzero(np.bincount(voxels.ravel()))
    return np.unique(voxels)


def _label_values(values: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def roi_problems(
    image: ImageHeader | None,
    mask: ImageHeader,
    values: np.ndarray | None,
    label: int,
    image_path: str | None = None,
) -> list[str]:
    """What prevents extracting one ROI: an empty mask / absent label, or mismatched grids.

    Shared by :func:`validate_cohort` and the extraction runner, so that a case reports the
    same message whether it is caught before or during extraction.

    Parameters
    ----------
    image : ImageHeader or None
        The image's grid (None: not compared).
    mask : ImageHeader
        The mask's grid.
    values : numpy.ndarray or None
        The mask's distinct voxel values (see :func:`mask_values`); None: label not checked.
    label : int
        The ROI's value in the mask.
    image_path : str, optional
        Named in grid messages.

    Returns
    -------
    list of str
        One sentence per problem; empty when the ROI can be extracted.
    """
    problems = []
    if values is not None and not np.any(values == label):
        problems.append(
            f"empty mask: no voxel has label {label}; values present: {_label_values(values)}"
        )
    if image is not None:
        where = f" (image {image_path})" if image_path else ""
        problems += [
            f"mask and image are on different grids: {difference}{where}"
            for difference in compare_grids(image, mask)
        ]
    return problems


def _missing_files(df: pd.DataFrame) -> list[Problem]:
    """Image and mask paths that do not exist (cheap: no file is opened)."""
    problems = []
    for row, case in df.iterrows():
        for column in PATH_COLUMNS:
            path = case[column]
            if not path or not os.path.exists(path):
                what = "image" if column == "image" else "mask"
                problems.append(
                    Problem(
                        f"{what} file is missing ({column})", row, case.get(ID_COLUMN), path or None
                    )
                )
    return problems


def _check_images(df: pd.DataFrame, cache: _ImageCache) -> list[Problem]:
    """Unreadable or truncated files, empty masks, mismatched grids (existing files only)."""
    problems = []
    for row, case in df.iterrows():
        pid = case.get(ID_COLUMN)
        image_path, mask_path, label = case["image"], case["mask_path"], case[LABEL_COLUMN]
        image = None
        if image_path and os.path.exists(image_path):
            try:
                image = cache.header(image_path)
            except ImageReadError as error:
                problems.append(Problem(f"{error.problem}: {error.reason}", row, pid, image_path))
            else:
                dimension = dimension_problems(image, "image")
                problems += [Problem(message, row, pid, image_path) for message in dimension]
                image = None if dimension else image  # its grid cannot match a 3-D mask
        if not (mask_path and os.path.exists(mask_path)):
            continue
        try:
            roi = case.get(ROI_COLUMN) or None
            mask, values = cache.mask(mask_path, image_path, roi, label)
        except ImageReadError as error:
            if os.path.normpath(error.path) == os.path.normpath(image_path):
                continue  # a DICOM mask's series that cannot be read: reported as the image's
            what = "unusable DICOM mask" if isinstance(error, DicomMaskError) else "unreadable mask"
            problems.append(Problem(f"{what}: {error.reason}", row, pid, mask_path))
            continue
        if case.get(LABELS_COLUMN) == "each":  # every non-zero value is a ROI
            if not np.any(values != 0):
                problems.append(Problem("empty mask: no non-zero voxel", row, pid, mask_path))
            values = None
        problems += [
            Problem(message, row, pid, mask_path)
            for message in roi_problems(image, mask, values, label, image_path)
        ]
    return problems


def duplicate_problems(df: pd.DataFrame, file: str) -> list[Problem]:
    """Rows repeating a (patient, modality, mask) case, and patients with several sites.

    Shared by :func:`validate_cohort` (hence ``radfusion extract``) and
    :func:`radfusion.features.check.check_cohort`, which both refuse such a manifest.
    """
    problems = []
    keys = [ID_COLUMN, "modality", "mask"]
    duplicated = df[df.duplicated(keys, keep=False)]
    for _, group in duplicated.groupby(keys, sort=True):
        rows = list(group.index)
        pid, modality, mask = group.iloc[0][keys]
        for row in rows[1:]:
            problems.append(
                Problem(
                    f"duplicated case (modality {modality!r}, mask {mask!r}), first given on row "
                    f"{rows[0]}",
                    row,
                    pid,
                    file,
                )
            )
    if SITE_COLUMN in df.columns:
        for pid, sites in df.groupby(ID_COLUMN, sort=True)[SITE_COLUMN]:
            if sites.dropna().nunique() > 1:
                listing = ", ".join(f"row {r}: {s}" for r, s in sites.dropna().items())
                problems.append(
                    Problem(
                        f"patient has more than one site ({listing})",
                        int(sites.index[0]),
                        pid,
                        file,
                    )
                )
    return problems


def _check_biomarkers(
    path: Path, manifest: pd.DataFrame, manifest_file: str, outcome: str | None
) -> tuple[pd.DataFrame | None, list[Problem]]:
    raw = _read_csv(path, "biomarker table")
    file = str(path)
    problems = _missing_columns(raw, [ID_COLUMN], path)
    if outcome is not None and outcome not in raw.columns:
        problems.append(
            Problem(
                f"outcome column {outcome!r} is absent (columns found: {', '.join(raw.columns)})",
                file=file,
            )
        )
    if ID_COLUMN not in raw.columns:
        return None, problems
    known = set(manifest[ID_COLUMN]) if ID_COLUMN in manifest.columns else set()
    first_row: dict[str, int] = {}
    for row, pid in raw[ID_COLUMN].items():
        if pid == "":
            problems.append(Problem("patient_id is empty", row, None, file))
            continue
        if pid in first_row:
            problems.append(
                Problem(
                    "duplicated biomarker row for this patient, first given on row "
                    f"{first_row[pid]}",
                    row,
                    pid,
                    file,
                )
            )
        else:
            first_row[pid] = row
        if known and pid not in known:
            problems.append(Problem("patient is not in the manifest", row, pid, file))
        if outcome is not None and outcome in raw.columns and raw.at[row, outcome] == "":
            problems.append(Problem(f"outcome {outcome!r} is missing", row, pid, file))
    if outcome is not None and ID_COLUMN in manifest.columns:
        for pid, rows in manifest.groupby(ID_COLUMN, sort=True).groups.items():
            if pid and pid not in first_row:
                problems.append(
                    Problem(
                        f"outcome {outcome!r} is missing: the patient (manifest "
                        f"{manifest_file}, row {min(rows)}) has no row in the biomarker table",
                        None,
                        pid,
                        file,
                    )
                )
    # Parse again with type inference now that the table's structure is known to be sound.
    biomarkers = pd.read_csv(
        path, dtype={ID_COLUMN: str}, encoding="utf-8-sig", skipinitialspace=True
    )
    biomarkers.columns = [str(c).strip() for c in biomarkers.columns]
    biomarkers[ID_COLUMN] = biomarkers[ID_COLUMN].str.strip()
    return biomarkers, problems


def validate_cohort(
    manifest_path: str | Path,
    biomarkers_path: str | Path | None = None,
    outcome: str | None = None,
    check_images: bool = True,
    modality: str | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Validate a manifest, its image and mask files, and the biomarker table.

    Structural checks (always): required columns; names (empty, or containing ``"__"``);
    labels; duplicated (patient, modality, mask); more than one site per patient; missing
    image and mask files; biomarker rows for patients absent from the manifest, duplicated
    biomarker patients; absent outcome column and missing outcomes.

    Image checks (``check_images=True``): unreadable or truncated files; images that are not
    3-D (:func:`radfusion.features.rules.dimension_problems`, extraction's rule); empty masks (no
    voxel equal to the label); mask and image grids (size, and spacing / origin / direction
    beyond 1e-3 relative / mm). Image voxels are not read, only headers; mask voxels are.
    With ``check_images=False`` these are left to extraction, which records such a case in
    the failures table and goes on with the others (see
    :func:`radfusion.features.runner.extract_cohort`).

    Parameters
    ----------
    manifest_path : str or Path
        The manifest CSV (see :func:`read_manifest`).
    biomarkers_path : str or Path, optional
        CSV with ``patient_id`` and clinical / laboratory columns, including the outcome.
    outcome : str, optional
        Name of the outcome column; when given, every manifest patient needs a value.
    check_images : bool, default=True
        Also open the files and check their contents (see above).
    modality : str, optional
        The modality of a pyradiomics batch file's images (see :func:`read_manifest`).

    Returns
    -------
    manifest : pandas.DataFrame
        As returned by :func:`read_manifest`.
    biomarkers : pandas.DataFrame or None
        The biomarker table (``patient_id`` as string), or None when no path was given.

    Raises
    ------
    InputError
        One error listing every problem found.
    """
    manifest_path = Path(manifest_path)
    manifest, problems = _load_manifest(manifest_path, modality)
    file = str(manifest_path)
    if all(column in manifest.columns for column in (ID_COLUMN, "modality", "mask")):
        problems += duplicate_problems(manifest, file)
    if all(column in manifest.columns for column in PATH_COLUMNS):
        problems += _missing_files(manifest)
        if check_images:
            problems += _check_images(manifest, _ImageCache())
    biomarkers = None
    if biomarkers_path is not None:
        biomarkers, found = _check_biomarkers(Path(biomarkers_path), manifest, file, outcome)
        problems += found
    elif outcome is not None:
        problems.append(
            Problem(
                f"outcome {outcome!r} was requested but no biomarker table was given", file=file
            )
        )
    if problems:
        raise InputError("invalid cohort", problems)
    return manifest, biomarkers
