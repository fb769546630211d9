"""Feature table (+ biomarker table) → the model matrix ``X``, the labels ``y`` and the groups.

This is the only place where the pipeline reads user tables. It never opens an image.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import ID_COLUMN, SITE_COLUMN
from radfusion.features.table import settle_extraction

from .columns import infer_groups
from .targets import MAX_CLASSES, TASKS, infer_task

log = logging.getLogger(__name__)

#: Identifier columns recognised without ``--id``: ours, then radMLBench's.
ID_CANDIDATES = (ID_COLUMN, "ID")
#: Non-numeric columns with at most this many levels are one-hot encoded; others are refused.
MAX_CATEGORY_LEVELS = 10


@dataclass(frozen=True)
class Dataset:
    """One row per patient: features ``X`` (indexed by patient id), the target ``y``.

    ``y`` is coded 0/1 (binary), 0 .. K-1 (multiclass; ``label_mapping`` gives the codes) or
    holds the values (regression; ``label_mapping`` is empty). ``task`` says which.
    """

    X: pd.DataFrame
    y: np.ndarray
    label: str
    id_column: str
    groups: dict[str, list[str]]
    label_mapping: dict[str, int]
    encoded: dict[str, list[str]] = field(default_factory=dict)  # source column -> dummies
    site: pd.Series | None = None
    task: str = "binary"

    @property
    def ids(self) -> np.ndarray:
        return self.X.index.to_numpy()


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a Parquet or CSV table (``.csv.gz`` and other compressed CSVs too)."""
    path = Path(path)
    settle_extraction(path)  # an interrupted write of the extraction set: finish it first
    if not path.is_file():
        raise InputError("Cannot read table", [Problem("file not found", file=str(path))])
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, compression="infer")
    except Exception as error:  # parser errors differ by format; all mean the same to users
        raise InputError("Cannot read table", [Problem(str(error), file=str(path))]) from error


def _resolve_id(table: pd.DataFrame, id_column: str | None, file: str) -> str:
    candidates = [id_column] if id_column else list(ID_CANDIDATES)
    for name in candidates:
        if name in table.columns:
            return name
    wanted = id_column or " or ".join(ID_CANDIDATES)
    raise InputError(
        "No patient identifier column",
        [Problem(f"expected column {wanted}; use --id COLUMN to name it", file=file)],
    )


def _index_by_id(table: pd.DataFrame, id_column: str, file: str) -> pd.DataFrame:
    ids = table[id_column].astype(str)
    dupes = sorted(set(ids[ids.duplicated()]))
    if dupes:
        raise InputError(
            "Duplicated patient identifiers",
            [Problem("appears more than once", patient_id=p, file=file) for p in dupes],
        )
    return table.drop(columns=id_column).set_index(ids.rename(id_column))


def _encode_target(values: pd.Series, label: str, file: str, task: str
                   ) -> tuple[np.ndarray, dict[str, int], str]:
    """The target coded for ``task`` ("auto": :func:`radfusion.pipeline.targets.infer_task`), its
    mapping and the task."""
    missing = values.index[values.isna()]
    if len(missing):
        raise InputError(
            f"Outcome {label!r} is missing",
            [Problem("no outcome value", patient_id=str(p), file=file) for p in missing],
        )
    if task not in ("auto", *TASKS):
        raise InputError("Unknown task", [Problem(f"{task!r} is not 'auto' or one of {TASKS}")])
    if task == "auto":
        task = infer_task(values)
    if task == "regression":
        numeric = pd.to_numeric(values, errors="coerce")
        bad = values.index[numeric.isna() | ~np.isfinite(numeric.astype(float))]
        if len(bad):
            raise InputError(
                f"Outcome {label!r} must be numeric for regression",
                [Problem(f"value {values[p]!r} is not a number", patient_id=str(p), file=file)
                 for p in bad[:20]],
            )
        return numeric.to_numpy(dtype=np.float64), {}, task
    levels = sorted(values.unique(), key=lambda v: (str(type(v)), v))
    wanted = "exactly 2" if task == "binary" else f"3 to {MAX_CLASSES}"
    if (len(levels) != 2) if task == "binary" else not 3 <= len(levels) <= MAX_CLASSES:
        raise InputError(
            f"Outcome {label!r} must have {wanted} classes for a {task} target",
            [Problem(f"found {len(levels)} distinct values: {levels[:10]}", file=file)],
        )
    mapping = {str(level): code for code, level in enumerate(levels)}
    return values.map(lambda v: mapping[str(v)]).to_numpy(dtype=int), mapping, task


def _encode_categoricals(X: pd.DataFrame, file: str) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One-hot encode text columns (first level dropped). Only the level set is looked at."""
    encoded: dict[str, list[str]] = {}
    problems = []
    for name in X.columns:
        column = X[name]
        if pd.api.types.is_bool_dtype(column):
            X[name] = column.astype(float)
        elif not pd.api.types.is_numeric_dtype(column):
            levels = sorted(column.dropna().astype(str).unique())
            if len(levels) > MAX_CATEGORY_LEVELS:
                problems.append(
                    Problem(
                        f"column {name!r} is text with {len(levels)} levels; "
                        f"encode it or drop it (at most {MAX_CATEGORY_LEVELS} levels)",
                        file=file,
                    )
                )
                continue
            dummies = pd.get_dummies(
                pd.Categorical(column.astype("string"), categories=levels),
                prefix=name,
                drop_first=True,
                dtype=float,
            )
            dummies.index = X.index
            dummies[column.isna().to_numpy()] = np.nan
            encoded[name] = list(dummies.columns)
            X = pd.concat([X.drop(columns=name), dummies], axis=1)
    if problems:
        raise InputError("Cannot use some columns as features", problems)
    return X, encoded


def load_dataset(
    features: str | Path,
    *,
    label: str,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    group_pattern: str | None = None,
    keep_site: bool = False,
    task: str = "binary",
) -> Dataset:
    """Read the feature table (and biomarkers), join them by patient and split off the label.

    The label may sit in either table. Patients in the biomarker table but not in the feature
    table are dropped (logged); patients without biomarkers keep missing values, which the
    models impute inside the training folds. A ``site`` column is kept aside, not used as a
    feature. Text columns with few levels are one-hot encoded (first level dropped).

    With ``keep_site=True`` the ``site`` column is also kept in ``X`` as its last column (text,
    not encoded, not in any group), for models that harmonise by site inside the folds
    (``build_models(..., harmonize="site")``); a missing or absent site is then an error.

    ``task`` is the target's kind: "binary" (default, exactly two values), "multiclass",
    "regression", or "auto" (guessed by :func:`radfusion.pipeline.targets.infer_task`).
    """
    feature_file = str(features)
    table = read_table(features)
    id_name = _resolve_id(table, id_column, feature_file)
    table = _index_by_id(table, id_name, feature_file)
    label_file = feature_file
    if biomarkers is not None:
        bio_file = str(biomarkers)
        bio = read_table(biomarkers)
        bio = _index_by_id(bio, _resolve_id(bio, id_column or id_name, bio_file), bio_file)
        bio.index = bio.index.rename(id_name)
        both = sorted(set(bio.columns) & set(table.columns))
        if both:
            raise InputError(
                "The feature and biomarker tables share columns",
                [Problem(f"column {c!r} is in both", file=bio_file) for c in both],
            )
        extra = sorted(set(bio.index) - set(table.index))
        if extra:
            log.warning(
                "%d biomarker patient(s) have no features and are left out: %s",
                len(extra),
                ", ".join(extra[:10]),
            )
        if label in bio.columns:
            label_file = bio_file
        table = table.join(bio, how="left")
    if label not in table.columns:
        raise InputError(
            "Outcome column not found",
            [Problem(f"no column {label!r} in the feature or biomarker table", file=feature_file)],
        )
    y, mapping, task = _encode_target(table[label], label, label_file, task)
    if keep_site:
        _check_site(table, feature_file)
    site = table[SITE_COLUMN].astype(str) if SITE_COLUMN in table.columns else None
    X = table.drop(columns=[c for c in (label, SITE_COLUMN) if c in table.columns])
    X, encoded = _encode_categoricals(X, feature_file)
    X = X.astype(float)
    X = X.sort_index()
    order = X.index
    y = pd.Series(y, index=table.index).loc[order].to_numpy()
    if site is not None:
        site = site.loc[order]
    groups = infer_groups(list(X.columns), pattern=group_pattern)
    if keep_site:
        X[SITE_COLUMN] = site
    return Dataset(
        X=X,
        y=y,
        label=label,
        id_column=id_name,
        groups=groups,
        label_mapping=mapping,
        encoded=encoded,
        site=site,
        task=task,
    )


def _check_site(table: pd.DataFrame, file: str) -> None:
    if SITE_COLUMN not in table.columns:
        raise InputError(
            "No site column to harmonise by",
            [
                Problem(
                    f"expected a column {SITE_COLUMN!r} in the feature or biomarker table",
                    file=file,
                )
            ],
        )
    missing = table.index[table[SITE_COLUMN].isna()]
    if len(missing):
        raise InputError(
            "Site is missing",
            [Problem("no site value", patient_id=str(p), file=file) for p in missing],
        )


def group_sizes(groups: dict[str, Sequence[str]]) -> dict[str, int]:
    """Number of columns per group, for summaries."""
    return {name: len(columns) for name, columns in groups.items()}
