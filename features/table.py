"""Feature records → the wide feature table; atomic Parquet / CSV writing and reading.

The wide table has one row per patient: ``patient_id``, then ``site`` when the cohort has
sites, then one float column per feature named ``modality__mask__feature`` (see
:mod:`radfusion.features.naming`). Rows are sorted by ``patient_id``, feature columns by
(modality, mask, feature).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .files import atomic_write
from .naming import ID_COLUMN, SITE_COLUMN, feature_column

__all__ = [
    "SUFFIXES",
    "FeatureRecord",
    "read_table",
    "sidecar_path",
    "to_wide",
    "write_extraction",
    "write_table",
]

SUFFIXES = (".parquet", ".csv.gz", ".csv")


@dataclass(frozen=True)
class FeatureRecord:
    """The features of one case: one (patient, modality, mask)."""

    patient_id: str
    modality: str
    mask: str
    features: dict[str, float]
    site: str | None = None


def to_wide(records: Iterable[FeatureRecord]) -> pd.DataFrame:
    """Pivot feature records into the wide table (one row per patient).

    Parameters
    ----------
    records : iterable of FeatureRecord
        At most one record per (patient, modality, mask).

    Returns
    -------
    pandas.DataFrame
        ``patient_id`` (string), ``site`` when any record has one, then float feature
        columns ``modality__mask__feature``; a case without a record gives NaN.

    Raises
    ------
    ValueError
        On a duplicated (patient, modality, mask), a patient with two sites, or an invalid
        modality / mask name.
    """
    records = list(records)
    rows: dict[str, dict[str, float]] = {}
    sites: dict[str, str] = {}
    seen: set[tuple[str, str, str]] = set()
    keys: dict[str, tuple[str, str, str]] = {}
    for record in records:
        case = (str(record.patient_id), record.modality, record.mask)
        if case in seen:
            raise ValueError(f"duplicated case (patient, modality, mask) = {case}")
        seen.add(case)
        pid = case[0]
        row = rows.setdefault(pid, {})
        for name, value in record.features.items():
            column = feature_column(record.modality, record.mask, name)
            keys[column] = (record.modality, record.mask, name)
            row[column] = value
        if record.site is not None and not pd.isna(record.site):
            if sites.setdefault(pid, str(record.site)) != str(record.site):
                raise ValueError(f"patient {pid} has two sites: {sites[pid]}, {record.site}")
    patients = sorted(rows)
    columns = sorted(keys, key=keys.__getitem__)
    values = np.full((len(patients), len(columns)), np.nan)
    position = {c: j for j, c in enumerate(columns)}
    for i, pid in enumerate(patients):
        for column, value in rows[pid].items():
            values[i, position[column]] = value
    table = pd.DataFrame(values, columns=pd.Index(columns, dtype=object))
    front = {ID_COLUMN: pd.Series(patients, dtype=str)}
    if any(r.site is not None and not pd.isna(r.site) for r in records):
        front[SITE_COLUMN] = pd.Series([sites.get(p) for p in patients], dtype=str)
    return pd.concat([pd.DataFrame(front), table], axis=1)


def _format(path: Path) -> str:
    name = path.name.lower()
    for suffix in SUFFIXES:
        if name.endswith(suffix):
            return suffix
    raise ValueError(f"unsupported table file {path}: use one of {', '.join(SUFFIXES)}")


def write_table(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table atomically; the format follows the suffix.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (its index is not written).
    path : str or Path
        ``.parquet``, ``.csv`` or ``.csv.gz``. The file appears complete or not at all: it is
        written to a temporary file in the same folder, then renamed with ``os.replace``.

    Returns
    -------
    Path
        ``path``.
    """
    path = Path(path)
    kind = _format(path)

    def write(temporary: Path) -> None:
        if kind == ".parquet":
            df.to_parquet(temporary, index=False)
        else:
            compression = "gzip" if kind == ".csv.gz" else None
            df.to_csv(temporary, index=False, compression=compression)

    return atomic_write(path, write)


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a table written by :func:`write_table` (``patient_id`` and ``site`` as strings)."""
    path = Path(path)
    if _format(path) == ".parquet":
        df = pd.read_parquet(path)
    else:
        df = pd.read_csv(path, dtype={ID_COLUMN: str, SITE_COLUMN: str})
    if ID_COLUMN in df.columns:
        df[ID_COLUMN] = df[ID_COLUMN].astype(str)
    return df


def sidecar_path(table_path: str | Path, kind: str) -> Path:
    """``<stem>.<kind>.csv`` beside a table, e.g. ``features.diagnostics.csv``."""
    table_path = Path(table_path)
    stem = table_path.name[: -len(_format(table_path))]
    return table_path.with_name(f"{stem}.{kind}.csv")


def write_extraction(result, out_path: str | Path) -> dict[str, Path | None]:
    """Write an extraction: the feature table and its sidecar CSV files, each atomically.

    Parameters
    ----------
    result : radfusion.features.runner.ExtractionResult
        What :func:`radfusion.features.runner.extract_cohort` returned.
    out_path : str or Path
        The feature table (``.parquet``, ``.csv`` or ``.csv.gz``). Beside it go
        ``<stem>.diagnostics.csv`` (one row per extracted case) and, when cases failed,
        ``<stem>.failures.csv``; a failures file left by an earlier run is removed otherwise.

    Returns
    -------
    dict
        ``{"features": path, "diagnostics": path, "failures": path or None}``.
    """
    out_path = Path(out_path)
    written: dict[str, Path | None] = {"features": write_table(result.features, out_path)}
    diagnostics = sidecar_path(out_path, "diagnostics")
    written["diagnostics"] = write_table(result.diagnostics, diagnostics)
    failures = sidecar_path(out_path, "failures")
    if len(result.failures):
        written["failures"] = write_table(result.failures, failures)
    else:
        failures.unlink(missing_ok=True)
        written["failures"] = None
    return written
