"""Feature table (+ biomarker table) → the model matrix ``X``, the labels ``y`` and the groups.

This is the only place where the pipeline reads user tables. It never opens an image.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import SITE_COLUMN
from radfusion.features.spelling import near_duplicates, spelling_problems

from .columns import infer_groups
from .preprocessing import level_sets
from .pyradiomics_table import is_pyradiomics_table, widen_pyradiomics_table
from .survival import survival_target_from_table
from .tables import ID_CANDIDATES, index_by_id, join_biomarkers, read_table, resolve_id
from .targets import TASKS, BinaryTask, SurvivalTask, Task, resolve_task

__all__ = [
    "ID_CANDIDATES",
    "MAX_CATEGORY_LEVELS",
    "NUMERIC_SHARE",
    "Dataset",
    "check_finite",
    "check_label_spellings",
    "group_sizes",
    "load_dataset",
    "read_biomarkers",
    "read_features",
    "read_table",
]

#: Non-numeric columns with at most this many levels are one-hot encoded; others are refused.
MAX_CATEGORY_LEVELS = 10
#: A text column whose non-empty cells are numbers in at least this share is a numeric column
#: with typos: its other cells are an error (naming them), never one-hot encoded.
NUMERIC_SHARE = 0.9
#: Patients named per problem (the count is always given).
SHOWN = 10


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
    task: Task = field(default_factory=BinaryTask)
    #: The biomarker table's id column (None without one).
    biomarkers_id_column: str | None = None
    #: A pyradiomics output table's diagnostics, one row per case (modality, mask,
    #: diagnostics_*); None for other tables.
    diagnostics: pd.DataFrame | None = None
    #: The same patients and columns before one-hot encoding (text columns as text, the site
    #: column kept when asked): what a fusion estimator takes, encoding inside its folds.
    table: pd.DataFrame | None = None

    @property
    def categories(self) -> dict[str, list[str]]:
        """Level set of every encoded text column (the whole cohort's: no label is read)."""
        if self.table is None:
            return {}
        return level_sets(self.table, self.encoded)

    @property
    def ids(self) -> np.ndarray:
        return self.X.index.to_numpy()

    def with_categories(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Fusion estimator parameters with ``categories`` defaulting to the level set of the
        table's text columns (:attr:`categories`: a rare level absent from a training fold is
        still encoded as in the others)."""
        levels = self.categories
        return {
            "categories": {k: list(v) for k, v in levels.items()} if levels else "auto",
            **params,
        }


def check_label_spellings(values: pd.Series, label: str, file: str) -> None:
    """Refuse text labels that differ only by case or spaces (``"Yes"``/``"yes "``; see
    :func:`radfusion.features.spelling.near_duplicates`).

    Merging them silently would guess; keeping them apart makes extra classes. The error names
    every spelling with its count.
    """
    text = values.dropna()
    text = text[text.map(lambda v: isinstance(v, str))]
    counts = text.value_counts()
    clashes = near_duplicates(counts.index)
    if clashes:
        raise InputError(
            f"Outcome {label!r} has values that differ only by case or spaces",
            [
                Problem(
                    "spellings "
                    + ", ".join(f"{n!r} ({counts[n]} patient(s))" for n in names)
                    + ": write them one way",
                    file=file,
                )
                for names in clashes
            ],
        )


def _encode_target(
    values: pd.Series, label: str, file: str, task: str | Task
) -> tuple[np.ndarray, dict[str, int], Task]:
    """The target coded for ``task`` ("auto": :func:`radfusion.pipeline.targets.infer_task`), its
    mapping and the task object (:func:`radfusion.pipeline.targets.resolve_task`)."""
    missing = values.index[values.isna()]
    if len(missing):
        raise InputError(
            f"Outcome {label!r} is missing",
            [Problem("no outcome value", patient_id=str(p), file=file) for p in missing],
        )
    if not isinstance(task, Task) and task not in ("auto", *TASKS):
        raise InputError("Unknown task", [Problem(f"{task!r} is not 'auto' or one of {TASKS}")])
    check_label_spellings(values, label, file)
    task = resolve_task(task, values)
    mapping = task.check_values(values, label, file)
    return task.codes(values, mapping), mapping, task


def _encode_categoricals(
    X: pd.DataFrame, sources: Mapping[str, str]
) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """One-hot encode text columns (first level dropped). Only the level set is looked at.

    Levels that differ only by case or spaces (``M``, ``"M "``, ``m``) are an error listing
    them with their patients (:func:`radfusion.features.spelling.spelling_problems`): they
    would become separate levels.

    A text column whose non-empty cells parse as numbers in at least :data:`NUMERIC_SHARE` of
    cases is a numeric column with typos: its other cells are reported. ``sources`` maps a
    column to the file it came from, for the messages.
    """
    encoded: dict[str, list[str]] = {}
    problems = []
    for name in X.columns:
        column = X[name]
        file = sources.get(name)
        if pd.api.types.is_bool_dtype(column):
            X[name] = column.astype(float)
        elif not pd.api.types.is_numeric_dtype(column):
            typos = _numeric_typos(column)
            if typos is not None:
                problems.append(
                    Problem(
                        f"column {name!r} is numeric ({typos[0]} of {typos[1]} values are numbers) "
                        f"but {len(typos[2])} value(s) are not: "
                        + ", ".join(f"patient {p} {v!r}" for p, v in typos[2][:SHOWN].items()),
                        file=file,
                    )
                )
                continue
            levels = sorted(column.dropna().astype(str).unique())
            spelled = _spellings(column, name, file, "separate levels")
            if spelled:
                problems += spelled
                continue
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


def _numeric_typos(column: pd.Series) -> tuple[int, int, pd.Series] | None:
    """(numbers, non-empty cells, the other cells) of a mostly numeric text column, else None."""
    cells = column.dropna()
    cells = cells[cells.astype(str).str.strip() != ""]
    numbers = pd.to_numeric(cells, errors="coerce")
    bad = numbers.isna()
    parsed = int((~bad).sum())
    if not bad.any() or parsed < NUMERIC_SHARE * len(cells):
        return None
    return parsed, len(cells), cells[bad]


def check_finite(X: pd.DataFrame, sources: Mapping[str, str] | None = None) -> None:
    """Refuse +inf/-inf in a numeric model matrix, naming each column, its patients and file.

    Parameters
    ----------
    X : DataFrame
        Numeric columns, indexed by patient id.
    sources : mapping of str to str, optional
        Column → the file it came from.
    """
    sources = sources or {}
    numeric = X.select_dtypes("number")
    infinite = np.isinf(numeric.to_numpy(dtype=np.float64))
    problems = []
    for j in np.flatnonzero(infinite.any(axis=0)):
        rows = np.flatnonzero(infinite[:, j])
        values = numeric.iloc[rows, j]
        shown = ", ".join(f"{p} ({v})" for p, v in list(values.items())[:SHOWN])
        more = f" and {len(rows) - SHOWN} more" if len(rows) > SHOWN else ""
        problems.append(
            Problem(
                f"column {numeric.columns[j]!r} is infinite for {len(rows)} patient(s): "
                f"{shown}{more}",
                file=sources.get(numeric.columns[j]),
            )
        )
    if problems:
        raise InputError(
            "Infinite values (inf, -inf) cannot be used; fix or blank them "
            "(blank values are imputed)",
            problems,
        )


def read_features(
    features: str | Path, id_column: str | None = None, keep: Sequence[str] = ()
) -> tuple[pd.DataFrame, str, pd.DataFrame | None]:
    """The feature table indexed by patient id, its id column, and pyradiomics diagnostics.

    A table written by the ``pyradiomics`` command line is widened first (one row per
    patient, :func:`radfusion.pipeline.pyradiomics_table.widen_pyradiomics_table`; ``keep``
    names the patient-level text columns it may hold, such as the outcome); its diagnostics
    are returned, else None.
    """
    file = str(features)
    table = read_table(features, id_column)
    id_name = resolve_id(table, id_column, file)
    diagnostics = None
    if is_pyradiomics_table(table.columns):
        table, diagnostics = widen_pyradiomics_table(table, id_name, file=file, keep=keep)
    return index_by_id(table, id_name, file), id_name, diagnostics


def read_biomarkers(
    biomarkers: str | Path, id_column: str | None, features_id: str
) -> tuple[pd.DataFrame, str]:
    """The biomarker table indexed by patient id, and its id column.

    The id column is ``id_column`` when given, else the feature table's (``features_id``)
    when the biomarker table has it, else ``patient_id`` or ``ID``: so ``ID`` in a
    pyradiomics table and ``patient_id`` in the biomarkers join without options.
    """
    file = str(biomarkers)
    bio = read_table(biomarkers, id_column or features_id)
    if id_column is None and features_id in bio.columns:
        id_column = features_id
    name = resolve_id(bio, id_column, file)
    return index_by_id(bio, name, file), name


def load_dataset(
    features: str | Path,
    *,
    label: str | None = None,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    group_pattern: str | None = None,
    harmonize: str | None = None,
    task: str | Task = "binary",
    biomarkers_id: str | None = None,
    time: str | None = None,
    event: str | None = None,
    horizons: Sequence[float] | None = None,
) -> Dataset:
    """Read the feature table (and biomarkers), join them by patient and split off the label.

    The label may sit in either table. Patient ids are text
    (:func:`radfusion.pipeline.tables.read_table`). Patients in the biomarker table but not in the
    feature table are dropped, and patients without biomarkers keep missing values, which the models
    impute inside the training folds; both are reported
    (:func:`radfusion.pipeline.tables.join_biomarkers`), and tables without a patient in common are
    an error. Infinite values, outcome spellings that differ only by case or spaces, and text cells
    in a mostly numeric column (:data:`NUMERIC_SHARE`) are errors naming the file, column and
    patients. A ``site`` column is kept aside, not used as a feature. Text columns with few levels
    are one-hot encoded (first level dropped).

    ``harmonize`` names the column the models harmonise by (their ``harmonize`` parameter,
    e.g. ``"site"``): it is then kept in ``X`` as its last column (text, not encoded, not in any
    group), and a missing or absent value is an error.

    ``task`` is the target's kind: "binary" (default, exactly two values), "multiclass",
    "regression", or "auto" (guessed by :func:`radfusion.pipeline.targets.infer_task`).

    A table written by the ``pyradiomics`` command line is read as one row per patient
    (:mod:`radfusion.pipeline.pyradiomics_table`): its provenance columns are never
    features, and its diagnostics are kept in ``Dataset.diagnostics``. ``id_column`` names the
    feature table's id column and ``biomarkers_id`` the biomarker table's (default: the
    same name when the biomarker table has it, else ``patient_id`` or ``ID``).
    """
    survival = isinstance(task, SurvivalTask) or task == "survival"
    if survival and (time is None or event is None):
        raise InputError(
            "A survival target is two columns",
            [Problem("name the time and the event columns (--time and --event)")],
        )
    if not survival and label is None:
        raise InputError("No outcome column", [Problem("pass the outcome column (--label)")])
    outcome = [time, event] if survival else [label]
    feature_file = str(features)
    kept = tuple(dict.fromkeys((*outcome, SITE_COLUMN, *([harmonize] if harmonize else []))))
    table, id_name, diagnostics = read_features(features, id_column, keep=kept)
    sources = dict.fromkeys(table.columns, feature_file)
    label_file = feature_file
    bio_id = None
    if biomarkers is not None:
        bio_file = str(biomarkers)
        bio, bio_id = read_biomarkers(biomarkers, biomarkers_id, id_name)
        table = join_biomarkers(table, bio, file=feature_file, bio_file=bio_file)
        sources.update(dict.fromkeys(bio.columns, bio_file))
        if outcome[0] in bio.columns:
            label_file = bio_file
    absent = [name for name in outcome if name not in table.columns]
    if absent:
        files = " or ".join(dict.fromkeys(sources.values())) or feature_file
        raise InputError(
            "Outcome column not found",
            [
                Problem(f"no column {name!r} in the feature or biomarker table", file=files)
                for name in absent
            ],
        )
    if survival:  # the evaluation times are resolved here, once, from the whole table
        files = {sources.get(name, feature_file) for name in outcome}
        y = survival_target_from_table(table, time, event, file=" and ".join(sorted(files)))
        task = SurvivalTask.for_target(y, horizons)
        label, mapping = time, {}
    else:
        y, mapping, task = _encode_target(table[label], label, label_file, task)
    if harmonize:
        _check_site(table, harmonize, sources.get(harmonize, feature_file))
    for column in dict.fromkeys(c for c in (SITE_COLUMN, harmonize) if c in table.columns):
        _check_site_spellings(table[column], column, sources.get(column, feature_file))
    site = table[SITE_COLUMN].astype(str) if SITE_COLUMN in table.columns else None
    batch = table[harmonize].astype(str) if harmonize else None
    X = table.drop(columns=[c for c in kept if c in table.columns])
    raw = X.copy()
    X, encoded = _encode_categoricals(X, sources)
    check_finite(X, sources)
    X = X.astype(float)
    X = X.sort_index()
    order = X.index
    y = y[table.index.get_indexer(order)]
    if site is not None:
        site = site.loc[order]
    groups = infer_groups(list(X.columns), pattern=group_pattern)
    raw = raw.loc[order]
    raw[[c for c in raw.columns if c not in encoded]] = X[
        [c for c in raw.columns if c not in encoded]
    ]
    raw = raw.copy()  # one block per dtype, not one per assigned column (fast row subsets)
    if harmonize:
        X[harmonize] = raw[harmonize] = batch.loc[order]
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
        biomarkers_id_column=bio_id,
        diagnostics=diagnostics,
        table=raw,
    )


def _check_site(table: pd.DataFrame, column: str, file: str) -> None:
    if column not in table.columns:
        raise InputError(
            "No site column to harmonise by",
            [
                Problem(
                    f"expected a column {column!r} in the feature or biomarker table",
                    file=file,
                )
            ],
        )
    missing = table.index[table[column].isna()]
    if len(missing):
        raise InputError(
            "Site is missing",
            [Problem("no site value", patient_id=str(p), file=file) for p in missing],
        )


def _check_site_spellings(values: pd.Series, column: str, file: str) -> None:
    """Refuse site names written two ways (``A`` / ``"a "``): each would be a site of its own
    for harmonisation and for leave-one-site-out folds."""
    problems = _spellings(values, column, file, "separate sites")
    if problems:
        raise InputError(f"Site column {column!r} names a site two ways", problems)


def _spellings(values: pd.Series, column: str, file: str | None, consequence: str) -> list:
    """The problems of a text column (indexed by patient) that writes a name several ways."""
    return spelling_problems(
        ((v, None, str(p)) for p, v in values.dropna().astype(str).items()),
        f"column {column!r}",
        file,
        consequence,
    )


def group_sizes(groups: dict[str, Sequence[str]]) -> dict[str, int]:
    """Number of columns per group, for summaries."""
    return {name: len(columns) for name, columns in groups.items()}
