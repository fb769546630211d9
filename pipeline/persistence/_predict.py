"""Apply a saved model to new patients: the table it takes, checked, and its predictions.

Policies where the model and the new table disagree:

- Columns: every column the model uses must be present (else an ``InputError`` naming each
  missing one); other columns are ignored with an :class:`ExtraColumnsWarning`; the outcome
  and ``site`` columns are dropped silently; column order does not matter. Missing *values*
  are fine (imputed inside the model, as in training).
- Categories: text columns are encoded by the estimator with the training levels. A level never
  seen in training is an ``InputError`` (column, level, patients): mapping it to the reference
  level would silently change the prediction. Blank it to have the model impute it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import SITE_COLUMN

from ..dataset import check_finite
from ..pyradiomics_table import is_pyradiomics_table, widen_pyradiomics_table
from ..tables import index_by_id, join_biomarkers, read_table, resolve_id
from ._model_file import TrainedModel

__all__ = ["ExtraColumnsWarning", "model_inputs", "model_matrix", "predict_table", "read_inputs"]


class ExtraColumnsWarning(UserWarning):
    """The prediction table has columns the model does not use (they are ignored)."""


def predict_table(
    trained: TrainedModel,
    features: str | Path | pd.DataFrame,
    *,
    biomarkers: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> pd.DataFrame:
    """Score every patient of a feature table (joined with biomarkers) with a trained model.

    Parameters
    ----------
    trained : TrainedModel
    features : path or DataFrame
        Feature table with the patient id column (a pyradiomics output table too); the label
        column may be absent.
    biomarkers : path or DataFrame, optional
        Biomarker table, joined by patient id as in training.
    id_column : str, optional
        Patient id column (default: the training one, else ``patient_id`` or ``ID``).
    biomarkers_id : str, optional
        The biomarker table's id column (default: the feature table's when present, else
        ``patient_id`` or ``ID``).

    Returns
    -------
    DataFrame
        One row per patient in table order: the id column, ``probability`` (of the positive
        class ``trained.classes[1]``) and ``predicted`` (original label value; positive when
        ``probability >= 0.5``, as in the cross-validation report). Multiclass:
        ``probability_<class>`` per class and ``predicted``, the most probable class.
        Regression: ``predicted``, the predicted value. Survival: ``risk`` (higher: earlier
        event) and ``survival_at_<h>``, the survival probability at each horizon of training.

    Raises
    ------
    InputError
        Missing columns (each named), unseen categories, non-numeric values, duplicate ids.

    Warns
    -----
    ExtraColumnsWarning
        Columns the model does not use; they are ignored.
    """
    X = model_matrix(
        trained, features, biomarkers=biomarkers, id_column=id_column, biomarkers_id=biomarkers_id
    )
    columns = trained.task.predict_columns(trained.estimator, X, trained.classes, trained.settings)
    return pd.DataFrame({X.index.name: X.index.to_numpy(), **columns})


def model_matrix(
    trained: TrainedModel,
    features: str | Path | pd.DataFrame,
    *,
    biomarkers: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> pd.DataFrame:
    """The table the estimator takes: its columns, checked, in ``trained.columns`` order.

    Numbers are parsed (text in a numeric column is an error naming it); text columns stay
    text (the estimator encodes them; an unseen level is an error naming column, level and
    patients). Rows keep the table order and are indexed by patient id. See
    :func:`predict_table`.
    """
    table, sources = model_inputs(
        trained, features, biomarkers=biomarkers, id_column=id_column, biomarkers_id=biomarkers_id
    )
    file = "features" if isinstance(features, pd.DataFrame) else str(features)
    site = trained.site_column
    if site is not None:
        site_values = _site_column(table, site, file)
        _check_sites(trained, site_values, file)
    outcome = (trained.label, trained.settings.get("event"), SITE_COLUMN)
    table = table.drop(columns=[c for c in outcome if c is not None and c in table.columns])
    _check_columns(trained, table, file, with_biomarkers=biomarkers is not None)
    levels = trained.estimator.encoder_.levels_
    problems: list[Problem] = []
    X = pd.DataFrame(index=table.index)
    for name in trained.columns:
        if name == site:
            X[name] = site_values
        elif name in levels:
            X[name] = _check_levels(table[name], name, levels[name], sources[name], problems)
        else:
            X[name] = _numeric(table[name], name, sources[name], problems)
    if problems:
        raise InputError("Some values do not fit the model", problems)
    check_finite(X.drop(columns=[c for c in [site, *levels] if c in X.columns]), sources)
    return X


def model_inputs(
    trained: TrainedModel,
    features: str | Path | pd.DataFrame,
    *,
    biomarkers: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The feature table joined with the biomarkers as read (label and site kept), indexed
    by patient id in table order, and the file each column came from; the tables
    :func:`model_matrix` reads, for a caller that also needs the label (``validate``)."""
    return read_inputs(
        features,
        biomarkers,
        id_column,
        trained.id_column,
        biomarkers_id=biomarkers_id,
        keep=(trained.label, SITE_COLUMN),
    )


def _check_sites(trained: TrainedModel, sites: pd.Series, file: str) -> None:
    """A site the model never saw is an error (naming the patients) when the model was
    trained with ``harmonize_unseen="error"``; with "pooled" ComBat leaves its rows as they
    are (and warns)."""
    training = trained.training_sites
    if training is None or trained.settings.get("params", {}).get("harmonize_unseen") != "error":
        return
    unseen = sites[~sites.astype(str).isin(training)]
    if len(unseen):
        raise InputError(
            "The model cannot harmonise these sites",
            [
                Problem(
                    f"site {value!r} was not in training (training sites: "
                    f"{', '.join(training)}) and the model was trained with "
                    "harmonize_unseen='error'; retrain with --harmonize-unseen pooled",
                    patient_id=str(patient),
                    file=file,
                )
                for patient, value in unseen.head(20).items()
            ],
        )


def _site_column(table: pd.DataFrame, site: str, file: str) -> pd.Series:
    """The site of every patient, as text: a model harmonised by site needs it."""
    if site not in table.columns:
        raise InputError(
            "The model harmonises by site",
            [Problem(f"the table has no {site!r} column", file=file)],
        )
    missing = table.index[table[site].isna()]
    if len(missing):
        raise InputError(
            "The model harmonises by site",
            [Problem(f"no {site!r} value", patient_id=str(p), file=file) for p in missing[:20]],
        )
    return table[site].astype(str)


def read_inputs(
    features, biomarkers, id_column, preferred_id=None, *, biomarkers_id=None, keep=(SITE_COLUMN,)
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Feature table left-joined with the biomarkers, indexed by patient id (table order), and
    the file each column came from. A pyradiomics output table is widened first (``keep``: its
    patient-level text columns)."""
    file = "features" if isinstance(features, pd.DataFrame) else str(features)
    table = _read(features, id_column or preferred_id)
    if id_column is None and preferred_id in table.columns:
        id_column = preferred_id
    id_name = resolve_id(table, id_column, file)
    if is_pyradiomics_table(table.columns):
        table, _ = widen_pyradiomics_table(table, id_name, file=file, keep=keep)
    table = index_by_id(table, id_name, file)
    sources = dict.fromkeys(table.columns, file)
    if biomarkers is None:
        return table, sources
    bio_file = "biomarkers" if isinstance(biomarkers, pd.DataFrame) else str(biomarkers)
    bio = _read(biomarkers, biomarkers_id or id_name)
    bio_name = biomarkers_id or (id_name if id_name in bio else None)
    bio = index_by_id(bio, resolve_id(bio, bio_name, bio_file), bio_file)
    sources.update(dict.fromkeys(bio.columns, bio_file))
    return join_biomarkers(table, bio, file=file, bio_file=bio_file), sources


def _read(source: str | Path | pd.DataFrame, id_column: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    return read_table(source, id_column)


def _check_columns(
    trained: TrainedModel, table: pd.DataFrame, file: str, with_biomarkers: bool
) -> None:
    expected = [c for c in trained.columns if c != trained.site_column]
    missing = [c for c in expected if c not in table.columns]
    if missing:
        from_bio = set(trained.training.get("biomarker_columns", ()))
        hint = "" if with_biomarkers else " (a biomarker column: pass the biomarker table)"
        raise InputError(
            f"The table lacks {len(missing)} column(s) the model needs",
            [
                Problem(f"missing column {c!r}" + (hint if c in from_bio else ""), file=file)
                for c in missing
            ],
        )
    extra = [str(c) for c in table.columns if c not in set(expected)]
    if extra:
        shown = ", ".join(extra[:20]) + (f" and {len(extra) - 20} more" if len(extra) > 20 else "")
        warnings.warn(
            f"{file}: {len(extra)} column(s) not used by the model are ignored: {shown}",
            ExtraColumnsWarning,
            stacklevel=4,
        )


def _check_levels(
    column: pd.Series, name: str, levels: list[str], file: str, problems: list[Problem]
) -> pd.Series:
    """The text column as it is; each level unseen in training is a problem naming patients."""
    values = column.astype("string")
    unseen = values.notna() & ~values.isin(levels)
    for level in sorted(set(values[unseen])):
        patients = ", ".join(map(str, values.index[values == level][:10]))
        problems.append(
            Problem(
                f"column {name!r} has level {level!r}, unseen in training (known: "
                f"{', '.join(levels)}); patients: {patients}. Recode it or leave it blank "
                "(imputed)",
                file=file,
            )
        )
    return column


def _numeric(column: pd.Series, name: str, file: str, problems: list[Problem]) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():
        examples = ", ".join(f"{p}={v!r}" for p, v in column[bad].head(5).items())
        problems.append(
            Problem(
                f"column {name!r} is numeric in training but has text values ({examples})",
                file=file,
            )
        )
    return numbers.astype(float)
