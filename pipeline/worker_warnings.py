"""Warnings raised inside CV tasks, gathered and shown once by the main process.

A warning raised while fitting (ComBat's confounded-site warning, a site unseen by a fold, a
convergence warning) used to be printed by every joblib worker for every branch and split,
dozens of times, and a process-based worker's warnings never reached the caller's filters or
``pytest.warns``. A task runs under :func:`gathering_warnings`, returns what it caught, and
the caller passes every task's list to :func:`warn_once`, which re-emits each distinct
(category, message) once, in the main process, where the user's filters apply.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

__all__ = ["gathering_warnings", "warn_once"]

Caught = list[tuple[type[Warning], str]]


@contextmanager
def gathering_warnings() -> Iterator[Caught]:
    """Catch every warning raised in the block; yields the list of (category, message)
    pairs it fills, in order (duplicates kept)."""
    caught: Caught = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            yield caught
        finally:
            caught.extend((record.category, str(record.message)) for record in records)


def warn_once(per_task: Iterable[Caught], stacklevel: int = 3) -> None:
    """Re-emit each distinct (category, message) of the tasks' lists once, in first-seen
    order."""
    seen = dict.fromkeys(pair for caught in per_task for pair in caught)
    for category, message in seen:
        warnings.warn(message, category, stacklevel=stacklevel)
