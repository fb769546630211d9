"""Table 1 of a model's cohort, computed the same way at train time and at validation.

A saved model carries the Table 1 of its training cohort (aggregates only: counts, means,
SDs, quartiles; never a patient's row), so ``radfusion validate`` can set the external
cohort's Table 1 next to it without the training table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from radfusion.features.naming import CLINICAL_GROUP

from .statistics import describe_cohort

__all__ = ["clinical_columns", "model_cohort"]


def clinical_columns(
    columns: Sequence[str], groups: Mapping[str, Sequence[str]], site: str | None = None
) -> list[str]:
    """The model's input columns that are not imaging features nor the site column.

    Imaging columns are those of every group but ``clinical``; text columns (encoded inside
    the estimator under other names) are clinical.
    """
    imaging = {c for name, cols in groups.items() if name != CLINICAL_GROUP for c in cols}
    return [c for c in columns if c not in imaging and c != site]


def model_cohort(
    table: pd.DataFrame,
    y: Any,
    classes: Sequence[Any],
    *,
    columns: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    site: pd.Series | None = None,
) -> dict[str, Any]:
    """Table 1 (:func:`radfusion.pipeline.statistics.describe_cohort`) over the model's
    clinical input columns, the site and the missing feature groups, rows aligned with ``y``
    (0/1 codes of ``classes``).
    """
    present = [c for c in columns if c in table.columns]
    missing = pd.DataFrame(
        {
            name: table[[c for c in cols if c in table.columns]].isna().all(axis=1)
            for name, cols in groups.items()
            if name != CLINICAL_GROUP and any(c in table.columns for c in cols)
        },
        index=table.index,
    )
    return describe_cohort(
        np.asarray(y),
        [str(c) for c in classes],
        variables=table[present] if present else None,
        site=site,
        missing_groups=missing if len(missing.columns) else None,
        group_sizes={name: len(cols) for name, cols in groups.items()},
    )
