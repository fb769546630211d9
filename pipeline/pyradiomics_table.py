"""A table written by the ``pyradiomics`` command line, read as a radfusion feature table.

``pyradiomics batch.csv -o features.csv -f csv`` writes one row per (image, mask) pair: the
batch file's columns (``ID``, ``Image``, ``Mask``, ``Label``, and any other the user added),
pyradiomics' ``diagnostics_*`` entries, then the features (``original_glcm_Contrast``, ...).
:func:`widen_pyradiomics_table` turns it into radfusion's wide table, one row per patient:

- ``Image``, ``Mask``, ``Label``, ``Label_channel``, ``Modality``, ``ROI`` and every
  ``diagnostics_*`` column are provenance, never predictors; the diagnostics are returned
  apart, so the methods text states the settings pyradiomics recorded;
- each row's modality and mask are named by :func:`radfusion.features.batch.case_names`
  (``Modality`` / ``ROI`` columns, else the image and mask file names without the patient
  id), and its features become ``modality__mask__feature`` columns: a patient with several
  rows (one per modality or mask) gets one wide row, a missing (modality, mask) is missing;
- the outcome and ``site`` (``keep``) and other numeric columns that hold one value per
  patient are patient-level columns (the clinical group; numeric ones not in ``keep`` are
  named in a :class:`PyradiomicsColumnsWarning`); other text columns are refused, all listed
  in one error saying what to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import pandas as pd

from radfusion.features.batch import IMAGE, MASK, PROVENANCE_COLUMNS, case_names
from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import feature_column

from .columns import is_pyradiomics_feature

__all__ = [
    "DIAGNOSTICS_PREFIX",
    "PyradiomicsColumnsWarning",
    "is_pyradiomics_table",
    "widen_pyradiomics_table",
]

DIAGNOSTICS_PREFIX = "diagnostics_"
#: Cells shown per problem.
SHOWN = 5


class PyradiomicsColumnsWarning(UserWarning):
    """Numeric columns of a pyradiomics table that are neither provenance nor features."""


def is_pyradiomics_table(columns: Sequence[str]) -> bool:
    """Whether a table's columns are the pyradiomics command line's output.

    ``Image`` and ``Mask`` columns, and ``diagnostics_*`` columns or unprefixed pyradiomics
    feature names (``original_firstorder_Mean``).
    """
    names = [str(c) for c in columns]
    return (
        IMAGE in names
        and MASK in names
        and any(n.startswith(DIAGNOSTICS_PREFIX) or is_pyradiomics_feature(n) for n in names)
    )


def widen_pyradiomics_table(
    table: pd.DataFrame, id_column: str, *, file: str, keep: Iterable[str] = ()
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One wide row per patient from a pyradiomics output table (see the module text).

    Parameters
    ----------
    table : DataFrame
        The table as read (:func:`radfusion.pipeline.tables.read_table`), ids as text.
    id_column : str
        Its patient id column.
    file : str
        Named in the messages.
    keep : iterable of str
        Patient-level columns that may be text (the outcome, ``site``).

    Returns
    -------
    wide : DataFrame
        The id column, the patient-level columns, then ``modality__mask__feature`` columns in
        order of first appearance; patients in order of first appearance.
    diagnostics : DataFrame
        One row per case: the id, ``modality``, ``mask`` and the ``diagnostics_*`` columns.

    Raises
    ------
    InputError
        Every problem at once: unrecognised text columns, a patient-level column with
        several values for one patient, duplicated (patient, modality, mask) rows, text in a
        feature column, names that cannot be derived from the file names.
    """
    frame = table.reset_index(drop=True)
    frame.index = pd.RangeIndex(1, len(frame) + 1)
    modalities, masks, problems = case_names(frame, id_column, file=file)
    ids = frame[id_column]
    columns = [c for c in frame.columns if c != id_column]
    features = [c for c in columns if is_pyradiomics_feature(c)]
    diagnostics = [c for c in columns if str(c).startswith(DIAGNOSTICS_PREFIX)]
    other = [
        c for c in columns if c not in PROVENANCE_COLUMNS and c not in {*features, *diagnostics}
    ]
    kept = set(keep)
    numeric = {c for c in other if pd.api.types.is_numeric_dtype(frame[c])}
    text = [c for c in other if c not in numeric and c not in kept]
    for name in text:
        problems.append(
            Problem(
                f"column {name!r} is text and not part of pyradiomics' output (provenance: "
                f"{', '.join(PROVENANCE_COLUMNS)}, diagnostics_*; features: "
                "<image type>_<class>_<feature>): move a biomarker to the --biomarkers table, "
                "name it with --label if it is the outcome, or drop the column",
                file=file,
            )
        )
    for name in [c for c in other if c not in text]:
        values = frame.groupby(ids, sort=False)[name].nunique()
        for patient in values.index[values > 1][:SHOWN]:
            shown = ", ".join(map(str, frame.loc[ids == patient, name].unique()[:SHOWN]))
            problems.append(
                Problem(
                    f"column {name!r} has several values for one patient ({shown}); a "
                    "patient-level column needs one",
                    patient_id=str(patient),
                    file=file,
                )
            )
    for name in features:
        if not pd.api.types.is_numeric_dtype(frame[name]):
            cells = frame[name][pd.to_numeric(frame[name], errors="coerce").isna()].dropna()
            problems += [
                Problem(f"feature {name!r} is {value!r}, not a number", int(r), ids[r], file)
                for r, value in cells[:SHOWN].items()
            ]
    cases = pd.DataFrame({"patient": ids, "modality": modalities, "mask": masks})
    first = {}
    for row, key in zip(frame.index, map(tuple, cases.to_numpy()), strict=True):
        if key in first:
            problems.append(
                Problem(
                    f"duplicated case (modality {key[1]!r}, mask {key[2]!r}), first given on "
                    f"row {first[key]}",
                    int(row),
                    str(key[0]),
                    file,
                )
            )
        else:
            first[key] = int(row)
    combos = list(dict.fromkeys(zip(modalities, masks, strict=True)))
    for modality, mask in combos:
        try:
            feature_column(modality, mask, "x")
        except ValueError as error:
            problems.append(Problem(str(error), file=file))
    if problems:
        raise InputError(f"Cannot read the pyradiomics table {file}", problems)
    extra = [c for c in other if c not in kept]
    if extra:
        warnings.warn(
            f"{file}: numeric column(s) {', '.join(map(repr, extra))} are neither pyradiomics "
            "provenance nor features; they are used as clinical predictors (drop them if not)",
            PyradiomicsColumnsWarning,
            stacklevel=3,
        )
    order = pd.Index(pd.unique(ids), name=id_column)
    parts = [frame.groupby(ids, sort=False)[other].first().reindex(order)] if other else []
    for modality, mask in combos:
        rows = frame[(modalities == modality) & (masks == mask)]
        block = rows.set_index(id_column)[features].dropna(axis=1, how="all")
        block.columns = [feature_column(modality, mask, f) for f in block.columns]
        parts.append(block.reindex(order))
    wide = pd.concat(parts, axis=1) if parts else pd.DataFrame(index=order)
    wide.index.name = id_column
    provenance = frame[[id_column, *diagnostics]].assign(modality=modalities, mask=masks)
    return wide.reset_index(), provenance
