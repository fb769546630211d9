"""pyradiomics' batch CSV (``ID,Image,Mask[,Label]``) and the names of its cases.

A pyradiomics batch file lists one (image, mask) pair per row; the ``pyradiomics`` command
copies its columns into its output table. radfusion reads both unchanged: ``radfusion extract``
maps a batch file onto the manifest (:func:`batch_to_manifest`), and ``radfusion cv / train /
predict`` read the output table (:mod:`radfusion.pipeline.pyradiomics_table`). Both name every
row's case the same way (:func:`case_names`):

- the **modality** is the row's ``Modality`` cell, else the one given (``--modality``), else
  the image file name without the patient id (``P001_CT.nii.gz`` → ``CT``);
- the **mask** is the row's ``ROI`` cell, else the mask file name without the patient id
  (``P001_tumor.nrrd`` → ``tumor``), suffixed ``_label<L>`` when the same file name is used
  with more than one ``Label`` value.

A name derived from file names must be shared by several patients (one modality x mask per
distinct combination); a name found in one patient only means the files carry no common
name, and is an error asking for the ``Modality`` / ``ROI`` columns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import PurePosixPath

import pandas as pd

from .errors import Problem
from .naming import ID_COLUMN
from .spelling import spelling_problems

__all__ = [
    "BATCH_COLUMNS",
    "IMAGE",
    "LABEL",
    "LABEL_CHANNEL",
    "MASK",
    "MODALITY",
    "PROVENANCE_COLUMNS",
    "ROI",
    "batch_to_manifest",
    "case_names",
    "is_batch",
    "path_key",
]

IMAGE, MASK, LABEL, LABEL_CHANNEL = "Image", "Mask", "Label", "Label_channel"
#: Optional columns naming a row's modality and mask (ROI) explicitly.
MODALITY, ROI = "Modality", "ROI"
#: pyradiomics batch column → radfusion manifest column.
BATCH_COLUMNS = {"ID": ID_COLUMN, IMAGE: "image", MASK: "mask_path", LABEL: "label"}
#: Columns of a pyradiomics table that describe a case, never a predictor.
PROVENANCE_COLUMNS = (IMAGE, MASK, LABEL, LABEL_CHANNEL, MODALITY, ROI)
_EXTENSIONS = (".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd", ".dcm", ".tif", ".tiff")


def is_batch(columns: Sequence[str]) -> bool:
    """Whether a manifest's columns are pyradiomics' batch layout (``Image`` and ``Mask``)."""
    names = set(columns)
    return {IMAGE, MASK} <= names and not {"image", "mask_path"} & names


def path_key(path: str, patient: str, fallback: str) -> str:
    """A file's name without extension and patient id: the part patients share.

    ``/data/P001/P001_CT.nii.gz`` with patient ``P001`` → ``CT``. The id is removed as a
    whole ``_``/``-``/``.``-separated token when it is one, else wherever it occurs; when
    nothing is left, the parent folder's name is used the same way, then ``fallback``. The
    result holds letters, digits, ``-`` and single ``_`` only, so it fits the
    ``modality__mask__feature`` contract.
    """
    parts = PurePosixPath(str(path).replace("\\", "/"))
    name = parts.name
    for extension in _EXTENSIONS:
        if name.lower().endswith(extension):
            name = name[: -len(extension)]
            break
    for candidate in (name, parts.parent.name):
        key = _clean(_without(candidate, patient))
        if key:
            return key
    return fallback


def _without(text: str, patient: str) -> str:
    if not patient:
        return text
    token = re.compile(rf"(?<![A-Za-z0-9]){re.escape(patient)}(?![A-Za-z0-9])", re.IGNORECASE)
    if token.search(text):
        return token.sub("", text)
    return re.sub(re.escape(patient), "", text, flags=re.IGNORECASE)


def _clean(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9-]+", "_", text).strip("_-")


def _given(frame: pd.DataFrame, column: str) -> pd.Series | None:
    """A column's non-blank cells as text (None when the column is absent)."""
    if column not in frame.columns:
        return None
    cells = frame[column].astype("string").str.strip()
    return cells.where(cells.notna() & (cells != ""), None).astype(object)


def case_names(
    frame: pd.DataFrame,
    id_column: str,
    *,
    modality: str | None = None,
    file: str | None = None,
) -> tuple[pd.Series, pd.Series, list[Problem]]:
    """The modality and mask name of every row of a pyradiomics batch or output table.

    Parameters
    ----------
    frame : DataFrame
        Rows with the id column, ``Image`` and ``Mask``, optional ``Label``, ``Modality`` and
        ``ROI``; its index numbers the rows in messages.
    id_column : str
        The patient id column (text).
    modality : str, optional
        The modality of rows without a ``Modality`` cell.
    file : str, optional
        Named in the problems.

    Returns
    -------
    modalities, masks : Series of str
        Aligned with ``frame``.
    problems : list of Problem
        Names derived from file names that only one patient has (see the module text).
    """
    ids = frame[id_column].astype(str)
    images = frame[IMAGE].astype(str)
    masks = frame[MASK].astype(str)
    labels, problems = _labels(frame, ids, file)
    explicit_modality, explicit_roi = _given(frame, MODALITY), _given(frame, ROI)
    derived_modality = pd.Series(
        [path_key(i, p, "image") for i, p in zip(images, ids, strict=True)], index=frame.index
    )
    mask_keys = pd.Series(
        [path_key(m, p, "mask") for m, p in zip(masks, ids, strict=True)], index=frame.index
    )
    several = labels.groupby(mask_keys).transform("nunique") > 1
    derived_mask = mask_keys.where(~several, mask_keys + "_label" + labels.astype(str))
    modalities = derived_modality.copy()
    if modality is not None:
        modalities[:] = modality
    if explicit_modality is not None:
        modalities = explicit_modality.fillna(modalities)
    mask_names = derived_mask if explicit_roi is None else explicit_roi.fillna(derived_mask)
    modality_derived = pd.Series(modality is None, index=frame.index)
    if explicit_modality is not None:
        modality_derived &= explicit_modality.isna()
    mask_derived = explicit_roi.isna() if explicit_roi is not None else True
    from_files = modality_derived | mask_derived
    for names, column in ((modalities, MODALITY), (mask_names, ROI)):
        problems += spelling_problems(
            zip(names, frame.index, ids, strict=True),
            f"column {column!r} (else the file names)",
            file,
            "separate feature groups",
        )
    if ids.nunique() > 1:
        combos = modalities + "/" + mask_names
        patients = ids.groupby(combos).transform("nunique")
        for row in frame.index[(patients == 1) & from_files]:
            problems.append(
                Problem(
                    f"modality {modalities[row]!r} / mask {mask_names[row]!r} (from the file "
                    f"names {images[row]!r}, {masks[row]!r}) belongs to this patient only: "
                    f"add {MODALITY!r} and {ROI!r} columns naming each row's modality and mask",
                    row=int(row),
                    patient_id=ids[row],
                    file=file,
                )
            )
    return modalities.astype(str), mask_names.astype(str), problems[:20]


def _labels(frame: pd.DataFrame, ids: pd.Series, file: str | None) -> tuple[pd.Series, list]:
    """Each row's ``Label`` as integer text (a blank cell is 1, ``1.0`` is ``1``: a column
    with blanks is read as floats), and the cells that are not a positive integer."""
    if LABEL not in frame.columns:
        return pd.Series("1", index=frame.index), []
    labels, problems = [], []
    for row, cell in frame[LABEL].items():
        text = "" if pd.isna(cell) else str(cell).strip()
        try:
            number = float(text) if text else 1.0
            if not (number.is_integer() and number > 0):
                raise ValueError
            labels.append(str(int(number)))
        except ValueError:
            labels.append(text)
            problems.append(
                Problem(
                    f"{LABEL} {text!r} is not a positive integer (the mask value of the ROI)",
                    row=int(row),
                    patient_id=ids[row],
                    file=file,
                )
            )
    return pd.Series(labels, index=frame.index, dtype=object), problems


def batch_to_manifest(
    frame: pd.DataFrame, *, modality: str | None = None, file: str | None = None
) -> tuple[pd.DataFrame, list[Problem], str]:
    """A pyradiomics batch table as a radfusion manifest, the problems, and the mapping note.

    ``ID``, ``Image``, ``Mask`` and ``Label`` become ``patient_id``, ``image``, ``mask_path``
    and ``label``; the modality comes from a ``Modality`` column or ``modality``; the mask
    names from an ``ROI`` column or the mask file names (:func:`case_names`). The cells are
    the strings :func:`radfusion.features.manifest.read_manifest` reads.
    """
    problems = []
    if "ID" not in frame.columns:
        problems.append(Problem("pyradiomics batch file without an 'ID' column", file=file))
    if modality is None and MODALITY not in frame.columns:
        problems.append(
            Problem(
                f"a pyradiomics batch file needs the modality of its images: pass --modality "
                f"NAME (e.g. CT, MR_T2, PET) or add a {MODALITY!r} column",
                file=file,
            )
        )
    channels = frame[LABEL_CHANNEL] if LABEL_CHANNEL in frame.columns else pd.Series(dtype=str)
    if (channels.astype(str).str.strip() != "").any():
        problems.append(
            Problem(
                f"column {LABEL_CHANNEL!r} (multi-channel masks) is not supported: use one "
                "mask file per channel",
                file=file,
            )
        )
    if problems:
        return frame, problems, ""
    table = frame.rename(columns=BATCH_COLUMNS)
    source = frame.assign(ID=frame["ID"].astype(str))
    # A blank Modality cell without --modality stays blank: the manifest check reports it.
    modalities, masks, found = case_names(source, "ID", modality=modality or "", file=file)
    table["modality"] = modalities
    table["mask"] = masks
    table = table.drop(columns=[c for c in (MODALITY, ROI) if c in table.columns])
    where = (
        f"the {MODALITY!r} column" + (f" (else {modality!r}, --modality)" if modality else "")
        if MODALITY in frame.columns
        else f"{modality!r} (--modality)"
    )
    mask_from = f"the {ROI!r} column" if ROI in frame.columns else "the Mask file names"
    note = (
        "read as a pyradiomics batch file: "
        + ", ".join(f"{k} → {v}" for k, v in BATCH_COLUMNS.items() if k in frame.columns)
        + f"; modality from {where}; mask names from {mask_from} "
        + f"({', '.join(sorted(set(masks)))})"
    )
    return table, found, note
