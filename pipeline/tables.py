"""Reading user tables with the patient id as text, and joining them by patient.

Patient ids are text everywhere: ``007`` stays ``007``, ``1e3`` stays ``1e3``, a 20-digit id
stays itself and ``NA`` stays ``NA``. A CSV's id column is read as the characters the file
holds (no missing-value markers); a Parquet id column that is integer typed is converted to
its decimal text, while a floating-point one is refused (``7.0`` may have been ``007``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from radfusion.features.csvfile import csv_problem
from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import ID_COLUMN, control_characters
from radfusion.features.spelling import spelling_key, spelling_problems
from radfusion.features.table import settle_extraction

__all__ = [
    "ID_CANDIDATES",
    "UnmatchedPatientsWarning",
    "index_by_id",
    "join_biomarkers",
    "patient_ids",
    "read_table",
    "resolve_id",
]

#: Identifier columns recognised without ``--id``: ours, then radMLBench's.
ID_CANDIDATES = (ID_COLUMN, "ID")
#: Unmatched ids shown in a message (the count is always given).
SHOWN_IDS = 10


class UnmatchedPatientsWarning(UserWarning):
    """Some patients of one table have no row in the other (they are reported, not guessed)."""


def read_table(path: str | Path, id_column: str | None = None) -> pd.DataFrame:
    """Read a Parquet or CSV table (``.csv.gz`` and other compressed CSVs too).

    The patient id column (``id_column`` if present, else the first of :data:`ID_CANDIDATES`
    present) holds text: see :func:`patient_ids`. Other columns are parsed as pandas does.

    Raises
    ------
    InputError
        Missing or unreadable file, or an id column that is not text (see
        :func:`patient_ids`).
    """
    path = Path(path)
    file = str(path)
    settle_extraction(path)  # an interrupted write of the extraction set: finish it first
    if not path.is_file():
        raise InputError("Cannot read table", [Problem("file not found", file=file)])
    problem = None if path.suffix == ".parquet" else csv_problem(path)
    if problem:
        raise InputError("Cannot read table", [Problem(problem, file=file)])
    try:
        if path.suffix == ".parquet":
            table = pd.read_parquet(path)
        else:
            header = pd.read_csv(path, compression="infer", nrows=0).columns
            name = _read_id_name(header, id_column)
            table = pd.read_csv(
                path, compression="infer", dtype=None if name is None else {name: str}
            )
            if name is not None:  # the same cells again, without missing-value markers
                table[name] = pd.read_csv(
                    path, compression="infer", usecols=[name], dtype=str, keep_default_na=False
                )[name].to_numpy()
    except Exception as error:  # parser errors differ by format; all mean the same to users
        raise InputError("Cannot read table", [Problem(str(error), file=file)]) from error
    name = _read_id_name(table.columns, id_column)
    if name is not None:
        table[name] = patient_ids(table[name], name, file)
    return table


def _read_id_name(columns: pd.Index, id_column: str | None) -> str | None:
    """The column read as patient ids: ``id_column`` or the first candidate present."""
    candidates = [id_column, *ID_CANDIDATES] if id_column else list(ID_CANDIDATES)
    return next((c for c in candidates if c in columns), None)


def patient_ids(values: pd.Series, column: str, file: str) -> pd.Series:
    """Patient ids as text, exactly as the user wrote them.

    Text stays as it is; integers become their decimal text. Floating-point, boolean or empty
    ids are refused: their text cannot be recovered (``7.0`` may have been ``007``); so are
    ids holding control characters (a carriage return splits the row of a CSV).

    Raises
    ------
    InputError
        Naming the file, the column and the rows (1-based) of every bad id.
    """
    if pd.api.types.is_integer_dtype(values) and not values.isna().any():
        return values.astype(str).astype(object)
    problems = []
    text = []
    for row, value in enumerate(values, start=1):
        if isinstance(value, str) and control_characters(value):
            problems.append(
                Problem(
                    f"patient id {value!r} in column {column!r} holds control characters "
                    f"({control_characters(value)}): a CSV it is written to would split it",
                    row=row,
                    file=file,
                )
            )
            text.append(None)
        elif isinstance(value, str) and value.strip():
            text.append(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
            text.append(str(value))
        else:
            empty = isinstance(value, str) or (pd.api.types.is_scalar(value) and pd.isna(value))
            what = "is empty" if empty else f"is {value!r} ({type(value).__name__}), not text"
            problems.append(Problem(f"patient id in column {column!r} {what}", row=row, file=file))
            text.append(None)
    if problems:
        raise InputError(
            "Patient ids must be text (write them as strings, e.g. '007', not numbers, without "
            "control characters)",
            problems[:20],
        )
    return pd.Series(text, index=values.index, name=values.name, dtype=object)


def resolve_id(table: pd.DataFrame, id_column: str | None, file: str) -> str:
    """The id column of ``table``: ``id_column``, else the first of :data:`ID_CANDIDATES`."""
    candidates = [id_column] if id_column else list(ID_CANDIDATES)
    name = next((c for c in candidates if c in table.columns), None)
    if name is not None:
        return name
    wanted = id_column or " or ".join(ID_CANDIDATES)
    raise InputError(
        "No patient identifier column",
        [Problem(f"expected column {wanted}; use --id COLUMN to name it", file=file)],
    )


def index_by_id(table: pd.DataFrame, id_column: str, file: str) -> pd.DataFrame:
    """``table`` indexed by its (unique, text) patient ids, without the id column.

    Ids given twice, or written two ways that differ only by case or spaces (``P1`` /
    ``"P1 "``), are an error listing them.
    """
    ids = patient_ids(table[id_column], id_column, file)
    dupes = sorted(set(ids[ids.duplicated()]))
    problems = [Problem("appears more than once", patient_id=p, file=file) for p in dupes]
    problems += spelling_problems(
        zip(ids, range(1, len(ids) + 1), [None] * len(ids), strict=True),
        f"patient ids (column {id_column!r})",
        file,
        "separate patients",
    )
    if problems:
        raise InputError("Duplicated patient identifiers", problems)
    return table.drop(columns=id_column).set_index(pd.Index(ids, name=id_column, dtype=object))


def join_biomarkers(
    table: pd.DataFrame, bio: pd.DataFrame, *, file: str, bio_file: str
) -> pd.DataFrame:
    """Left-join the biomarker table onto the feature table by patient id.

    Both are indexed by patient id. Patients in only one table are reported (count and first
    ids) with an :class:`UnmatchedPatientsWarning`; the feature table's patients are kept
    (their biomarkers missing, imputed inside the models).

    Raises
    ------
    InputError
        Shared columns; ids that differ between the tables only by case or spaces
        (``P001`` / ``"P001 "``); no patient in common.
    """
    shared = sorted(set(bio.columns) & set(table.columns))
    if shared:
        raise InputError(
            "The feature and biomarker tables share columns",
            [Problem(f"column {c!r} is in both", file=bio_file) for c in shared],
        )
    _check_spellings(table.index, bio.index, file, bio_file)
    common = table.index.intersection(bio.index)
    if len(common) == 0:
        raise InputError(
            "No patient id of the biomarker table is in the feature table",
            [
                Problem(f"{len(bio)} patient(s) here, e.g. {_first(bio.index)}", file=bio_file),
                Problem(f"{len(table)} patient(s) here, e.g. {_first(table.index)}", file=file),
            ],
        )
    for unmatched, where, other in (
        (
            bio.index.difference(table.index),
            bio_file,
            "no row in the feature table and are left out",
        ),
        (
            table.index.difference(bio.index),
            file,
            "no row in the biomarker table; their biomarkers are missing",
        ),
    ):
        if len(unmatched):
            warnings.warn(
                f"{len(unmatched)} patient(s) of {where} have {other}: {_first(unmatched)}",
                UnmatchedPatientsWarning,
                stacklevel=3,
            )
    return table.join(bio.rename_axis(table.index.name), how="left")


def _check_spellings(features: pd.Index, bio: pd.Index, file: str, bio_file: str) -> None:
    """Refuse patients of the two tables whose ids differ only by case or spaces (``P001`` /
    ``"P001 "``): they are the same patient written two ways, not patients missing from one."""
    unmatched: dict[str, list[str]] = {}
    for pid in features.difference(bio):
        unmatched.setdefault(spelling_key(str(pid)), []).append(str(pid))
    pairs = [
        (str(pid), unmatched[spelling_key(str(pid))][0])
        for pid in bio.difference(features)
        if spelling_key(str(pid)) in unmatched
    ]
    if pairs:
        raise InputError(
            "Patient ids are written differently in the feature and biomarker tables",
            [
                Problem(
                    f"patient id {ours!r} is {theirs!r} in {file}: ids that differ only by case "
                    "or spaces are not matched; write them one way",
                    patient_id=ours,
                    file=bio_file,
                )
                for ours, theirs in pairs[:SHOWN_IDS]
            ]
            + (
                [Problem(f"and {len(pairs) - SHOWN_IDS} more", file=bio_file)]
                if len(pairs) > SHOWN_IDS
                else []
            ),
        )


def _first(ids: pd.Index) -> str:
    shown = ", ".join(map(str, sorted(ids)[:SHOWN_IDS]))
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")
