"""Time-to-event targets: a ``time`` and an ``event`` column → scikit-survival's target array.

scikit-survival's estimators and metrics take ``y`` as a structured array with a boolean field
(event observed) and a float field (time to event or censoring), in that order. This module
builds it from a patient table, with one :class:`~radfusion.features.errors.InputError` naming
every patient whose time or event cannot be trusted, and gives the splitter that survival
cross-validation uses (folds stratified by the event indicator).

Nothing here needs scikit-survival: the array is plain numpy, so a table can be checked
without the optional extra (``pip install 'radfusion[survival]'``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import BaseCrossValidator, RepeatedStratifiedKFold

from radfusion.features.errors import InputError, Problem

__all__ = [
    "EVENT_FIELD",
    "SURVIVAL_DTYPE",
    "TIME_FIELD",
    "EventStratifiedKFold",
    "check_survival_y",
    "event_and_time",
    "survival_target",
    "survival_target_from_table",
]

EVENT_FIELD = "event"
TIME_FIELD = "time"
SURVIVAL_DTYPE = np.dtype([(EVENT_FIELD, bool), (TIME_FIELD, np.float64)])
"""The target's dtype: ``event`` (bool, True = the event was observed) then ``time`` (float),
what ``sksurv.util.Surv.from_arrays`` builds."""

_TRUE = {"1", "1.0", "true", "yes"}
_FALSE = {"0", "0.0", "false", "no"}


def _ids(n: int, patient_ids: Sequence[Any] | None) -> list[str]:
    if patient_ids is None:
        return [f"row {i + 1}" for i in range(n)]
    ids = [str(p) for p in patient_ids]
    if len(ids) != n:
        raise ValueError(f"{len(ids)} patient ids for {n} rows")
    return ids


def _event_value(value: Any) -> bool | None:
    """The event as a bool, or None when it is not 0/1/boolean (or is missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer, float, np.floating)):
        return bool(value) if value in (0, 1) else None
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def survival_target(
    time: Sequence[Any],
    event: Sequence[Any],
    patient_ids: Sequence[Any] | None = None,
    *,
    time_column: str = TIME_FIELD,
    event_column: str = EVENT_FIELD,
    file: str | None = None,
) -> np.ndarray:
    """Check a time and an event column and return them as scikit-survival's target.

    Parameters
    ----------
    time : sequence
        Time to the event or to censoring; a number ``>= 0`` for every patient.
    event : sequence
        1 / True (event observed) or 0 / False (censored); the text ``"0"``, ``"1"``,
        ``"true"``, ``"false"``, ``"yes"``, ``"no"`` is read as such.
    patient_ids : sequence, optional
        The patients, named in the errors (default: ``row 1``, ``row 2``, …).
    time_column, event_column : str
        Column names used in the errors.
    file : str, optional
        The table the columns came from, named in the errors.

    Returns
    -------
    ndarray of dtype :data:`SURVIVAL_DTYPE`
        One ``(event, time)`` record per patient.

    Raises
    ------
    InputError
        Every missing, non-numeric, infinite or negative time and every event that is not
        0/1/boolean, each naming its patient; or a table with no event at all.

    Examples
    --------
    >>> y = survival_target([5.0, 3.5], [1, 0], ["P1", "P2"])
    >>> y["event"].tolist(), y["time"].tolist()
    ([True, False], [5.0, 3.5])
    """
    time = list(time)
    event = list(event)
    if len(time) != len(event):
        raise ValueError(f"{len(time)} times for {len(event)} events")
    ids = _ids(len(time), patient_ids)
    problems = []
    times = np.empty(len(time), dtype=np.float64)
    events = np.zeros(len(time), dtype=bool)
    for i, (pid, t, e) in enumerate(zip(ids, time, event, strict=True)):
        value = pd.to_numeric(pd.Series([t]), errors="coerce").iloc[0]
        if pd.isna(t) or (isinstance(t, str) and not t.strip()):
            problems.append(Problem(f"column {time_column!r}: time is missing", None, pid, file))
        elif pd.isna(value):
            problems.append(
                Problem(f"column {time_column!r}: time {t!r} is not a number", None, pid, file)
            )
        elif not np.isfinite(value):
            problems.append(
                Problem(f"column {time_column!r}: time {t!r} is infinite", None, pid, file)
            )
        elif value < 0:
            problems.append(
                Problem(f"column {time_column!r}: time {t!r} is negative", None, pid, file)
            )
        times[i] = value if pd.notna(value) else np.nan
        flag = _event_value(e)
        if flag is None:
            what = "missing" if pd.isna(e) else f"{e!r}, not 0/1 or a boolean"
            problems.append(Problem(f"column {event_column!r}: event is {what}", None, pid, file))
        else:
            events[i] = flag
    if problems:
        raise InputError("Survival outcome cannot be used", problems)
    if len(events) and not events.any():
        raise InputError(
            "Survival outcome has no events",
            [
                Problem(
                    f"column {event_column!r}: all {len(events)} patients are censored (0); "
                    "a survival model needs at least one observed event",
                    file=file,
                )
            ],
        )
    y = np.empty(len(times), dtype=SURVIVAL_DTYPE)
    y[EVENT_FIELD] = events
    y[TIME_FIELD] = times
    return y


def survival_target_from_table(
    table: pd.DataFrame,
    time: str = TIME_FIELD,
    event: str = EVENT_FIELD,
    *,
    id_column: str | None = None,
    file: str | None = None,
) -> np.ndarray:
    """:func:`survival_target` of two columns of a patient table.

    Patients are named by ``id_column`` when given, else by the table's index.

    Raises
    ------
    InputError
        A missing column, or any problem :func:`survival_target` reports.
    """
    missing = [c for c in (time, event) if c not in table.columns]
    if missing:
        raise InputError(
            "Survival columns not found",
            [
                Problem(
                    f"column {c!r} is not in the table ({', '.join(map(str, table.columns))})",
                    file=file,
                )
                for c in missing
            ],
        )
    ids = table[id_column] if id_column is not None else table.index
    return survival_target(
        table[time].tolist(),
        table[event].tolist(),
        list(ids),
        time_column=time,
        event_column=event,
        file=file,
    )


def event_and_time(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """The event indicator (bool) and time (float) of a survival target.

    ``y`` is a structured array with a boolean field then a numeric field (scikit-survival's
    convention, any field names), or a DataFrame with ``event`` and ``time`` columns.
    Anything else (e.g. a plain 1-D outcome) is a ``ValueError`` saying what is expected.
    """
    if isinstance(y, pd.DataFrame):
        if {EVENT_FIELD, TIME_FIELD} <= set(y.columns):
            checked = survival_target(y[TIME_FIELD], y[EVENT_FIELD], y.index)
            return checked[EVENT_FIELD], checked[TIME_FIELD]
        raise ValueError("a survival DataFrame target needs 'event' and 'time' columns")
    y = np.asarray(y)
    names = y.dtype.names
    if names is None or len(names) != 2 or y.ndim != 1:
        raise ValueError(
            "a survival target is a structured array of (event, time) records, e.g. "
            "radfusion.pipeline.survival.survival_target(time, event) or "
            f"sksurv.util.Surv.from_arrays(event, time); got an array of dtype {y.dtype} and "
            f"shape {y.shape}"
        )
    event, time = y[names[0]], y[names[1]]
    if event.dtype != bool:
        raise ValueError(f"the first field of a survival target ({names[0]!r}) must be boolean")
    time = np.asarray(time, dtype=np.float64)
    return event.astype(bool), time


def check_survival_y(y: Any, patient_ids: Sequence[Any] | None = None) -> np.ndarray:
    """``y`` as a :data:`SURVIVAL_DTYPE` array, checked like :func:`survival_target`."""
    if isinstance(y, np.ndarray) and y.dtype == SURVIVAL_DTYPE and patient_ids is None:
        event, time = y[EVENT_FIELD], y[TIME_FIELD]
        if y.ndim == 1 and event.any() and np.isfinite(time).all() and (time >= 0).all():
            return y  # already checked: the metrics' bootstrap calls this per replicate
    else:
        event, time = event_and_time(y)
    return survival_target(time, event, patient_ids)


class EventStratifiedKFold(BaseCrossValidator):
    """Repeated K-fold stratified by the event indicator of a survival target.

    Each fold holds about the same share of events as the whole table. The number of folds
    is ``min(folds, events, censored)``, at least 2, so that every training set has events.

    Parameters
    ----------
    folds : int, default=5
    repeats : int, default=1
    random_state : int or None, default=None
        Seed of the shuffling (folds are always shuffled).
    """

    def __init__(self, folds: int = 5, *, repeats: int = 1, random_state: Any = None):
        self.folds = folds
        self.repeats = repeats
        self.random_state = random_state

    def _splitter(self, y):
        event, _ = event_and_time(y)
        counts = np.bincount(event.astype(int), minlength=2)
        k = max(2, min(int(self.folds), int(counts.min())))
        splitter = RepeatedStratifiedKFold(
            n_splits=k, n_repeats=int(self.repeats), random_state=self.random_state
        )
        return splitter, event

    def split(self, X, y, groups=None):
        """Yield (train, test) row positions, stratified by ``y``'s event indicator."""
        splitter, event = self._splitter(y)
        yield from splitter.split(np.zeros((len(event), 1)), event)

    def get_n_splits(self, X=None, y=None, groups=None):
        """Folds × repeats (the folds actually used when ``y`` is given)."""
        if y is None:
            return int(self.folds) * int(self.repeats)
        splitter, _ = self._splitter(y)
        return splitter.get_n_splits()
