"""The column a leave-one-group-out CV holds out by (``radfusion cv --group-by COL``).

The group column is never a predictor: it is taken out of the dataset's features (with its
indicator columns when it is text) before any model sees the table.
"""

from __future__ import annotations

import dataclasses

import pandas as pd

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import SITE_COLUMN

from .dataset import Dataset

__all__ = ["split_off_groups"]


def split_off_groups(data: Dataset, column: str, file: str) -> tuple[Dataset, pd.Series]:
    """The dataset without ``column`` among its features, and each patient's group (text).

    ``site`` is read from ``data.site`` (kept aside by
    :func:`radfusion.pipeline.dataset.load_dataset`; with harmonisation it also stays in the
    table, which ComBat reads but no learner). Any other column is removed from ``X``,
    ``table``, ``groups`` and ``encoded``.

    Raises
    ------
    InputError
        The column is absent, or a patient has no value in it (each named), or it has
        fewer than two distinct values.
    """
    if column == SITE_COLUMN and data.site is not None:
        values = data.site.reindex(data.X.index)
    elif data.table is not None and column in data.table.columns and column != SITE_COLUMN:
        values = data.table[column]
        dropped = set(data.encoded.get(column, [column]))
        groups = {
            name: [c for c in columns if c not in dropped] for name, columns in data.groups.items()
        }
        data = dataclasses.replace(
            data,
            X=data.X.drop(columns=[c for c in data.X.columns if c in dropped]),
            table=data.table.drop(columns=[column]),
            groups={name: columns for name, columns in groups.items() if columns},
            encoded={k: v for k, v in data.encoded.items() if k != column},
        )
    else:
        raise InputError(
            "Cannot group the folds",
            [Problem(f"no column {column!r} in the feature or biomarker table", file=file)],
        )
    missing = values.index[values.isna() | values.isin(["nan", "<NA>", "None"])]
    if len(missing):
        raise InputError(
            "Cannot group the folds",
            [
                Problem(f"no value in the group column {column!r}", patient_id=str(p), file=file)
                for p in missing[:20]
            ],
        )
    values = values.astype(str)
    if values.nunique() < 2:
        raise InputError(
            "Cannot group the folds",
            [
                Problem(
                    f"column {column!r} has one value only ({values.iloc[0]!r}); "
                    "leave-one-group-out needs at least two groups",
                    file=file,
                )
            ],
        )
    return data, values
