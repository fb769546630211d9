"""Input handling shared by the fusion estimators: the table as a frame, and its groups.

:class:`~radfusion.pipeline.fusion.FusionClassifier`, ``FusionRegressor`` and
:class:`~radfusion.pipeline.fusion.FusionSurvival` read their table and resolve their groups
the same way; these functions take the estimator (its ``harmonize``, ``groups``,
``group_pattern``, ``use_groups`` and fitted ``encoder_``) so the rules live in one place.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.utils.multiclass import check_classification_targets

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import ID_COLUMN

from ..columns import baseline_groups, infer_groups
from ..preprocessing import as_frame, check_table

__all__ = ["chosen_groups", "class_codes", "input_frame", "resolve_groups"]


def class_codes(y: Any, who: str) -> tuple[np.ndarray, np.ndarray]:
    """The classes of a classification target (sorted) and each row's code.

    Raises
    ------
    ValueError
        Fewer than two classes, naming ``who`` (the outcome, or the estimator) and the class.
    """
    check_classification_targets(y)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise ValueError(f"{who} needs at least two classes; got 1 class: {classes.tolist()[0]!r}")
    return classes, codes


def input_frame(estimator: Any, X: Any, *, fitting: bool) -> pd.DataFrame:
    """The table as a DataFrame with text column names; an array gets ``x0, x1, …``.

    When ``fitting``, records ``n_features_in_`` (and ``feature_names_in_`` for a frame) on
    the estimator; otherwise checks the width against them. The id column is dropped.
    """
    X = check_table(X, type(estimator).__name__)
    keep = (estimator.harmonize,) if estimator.harmonize else ()
    if isinstance(X, pd.DataFrame):
        if fitting:
            estimator.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
            estimator.n_features_in_ = X.shape[1]
        frame = as_frame(X)
        return frame.drop(columns=[ID_COLUMN]) if ID_COLUMN in frame.columns else frame
    if fitting:
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        estimator.n_features_in_ = X.shape[1]
        return as_frame(X, keep=keep)
    if X.shape[1] != estimator.n_features_in_:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} "
            f"is expecting {estimator.n_features_in_} features as input."
        )
    return as_frame(X, getattr(estimator, "feature_names_in_", None), keep=keep)


def resolve_groups(estimator: Any, columns: list[str]) -> dict[str, list[str]]:
    """The estimator's groups over the encoded ``columns``: inferred from the names when
    ``groups`` is None, else ``groups`` with each text column expanded to its indicators."""
    exclude = {ID_COLUMN, *([estimator.harmonize] if estimator.harmonize else [])}
    if estimator.groups is None:
        return infer_groups(columns, pattern=estimator.group_pattern, exclude=exclude)
    groups: dict[str, list[str]] = {}
    problems = []
    for group, names in estimator.groups.items():
        expanded = []
        for name in names:
            if name in columns:
                expanded.append(name)
            elif str(name) in estimator.encoder_.levels_:
                expanded += estimator.encoder_.encoded_columns(str(name))
            else:
                problems.append(Problem(f"group {group!r}: column {name!r} is not in the table"))
        groups[str(group)] = expanded
    if problems:
        raise InputError("Groups name columns the table does not have", problems)
    return groups


def chosen_groups(
    estimator: Any, groups: dict[str, list[str]], columns: list[str]
) -> dict[str, list[str]]:
    """The groups named by ``use_groups`` (all of ``groups`` when None); the baselines
    ("volume", "control") are chosen by name only, never fused by default."""
    if estimator.use_groups is None:
        return groups
    baselines = baseline_groups(columns, groups)
    groups = {**groups, **{g: c for g, c in baselines.items() if g not in groups}}
    names = [str(g) for g in estimator.use_groups]
    unknown = [g for g in names if g not in groups]
    if unknown or not names:
        raise InputError(
            "use_groups names groups the table does not have",
            [Problem(f"group {g!r} is not one of {', '.join(groups)}") for g in unknown]
            or [Problem("use_groups is empty")],
        )
    return {g: groups[g] for g in names}
