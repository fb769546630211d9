"""Names spelled two ways: ``CT`` / ``ct``, ``M`` / ``M `` / ``m``, ``tumor`` / ``Tumor``.

A modality, mask, site or category level written two ways in one table would silently become
two groups, two sites or two levels, each with half the patients. Merging them would guess
which spelling is meant, so both are refused: :func:`near_duplicates` finds the spellings
that differ only by letter case, surrounding or repeated whitespace (non-breaking spaces
included) or Unicode compatibility forms (NFKC: full-width letters, ``ﬁ``); other
differences (``T1`` / ``T1c``, ``N+`` / ``N-``, ``MR_T2`` / ``MR-T2``) are different names.
:func:`spelling_problems` turns them into one problem per name, listing every spelling with
its rows and patients.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

from .errors import Problem

__all__ = ["near_duplicates", "spelling_key", "spelling_problems"]

#: Rows (or patients) shown per spelling; the count is always given.
SHOWN = 3


def spelling_key(name: str) -> str:
    """What two spellings of one name share: NFKC form, whitespace runs as one space, no
    surrounding whitespace, case folded.

    >>> spelling_key(" M ") == spelling_key("m") == spelling_key("M")
    True
    >>> spelling_key("T1") == spelling_key("T1c")
    False
    """
    return " ".join(unicodedata.normalize("NFKC", name).split()).casefold()


def near_duplicates(names: Iterable[str]) -> list[list[str]]:
    """The groups of distinct names that are spellings of one name (see the module).

    Returns
    -------
    list of list of str
        One sorted list per group of two or more spellings, groups in order of their first
        spelling; empty when every name is spelled one way.
    """
    groups: dict[str, set[str]] = {}
    for name in names:
        groups.setdefault(spelling_key(name), set()).add(name)
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def spelling_problems(
    cells: Iterable[tuple[str, int | None, str | None]],
    what: str,
    file: str | None,
    consequence: str,
) -> list[Problem]:
    """One problem per name spelled several ways among ``cells``.

    Parameters
    ----------
    cells : iterable of (name, row, patient)
        Every cell with its 1-based data row and patient id (None when unknown). Empty names
        are skipped.
    what : str
        What the names are, e.g. ``"column 'modality'"``.
    file : str or None
        The file they come from.
    consequence : str
        What keeping the spellings apart would do, e.g. ``"two feature groups"``.

    Returns
    -------
    list of Problem
        Located at the first cell of the rarest spelling, e.g. ``column 'modality' writes
        one name 2 ways: 'CT' (2 rows: row 1 patient P1, row 2 patient P2), 'ct' (1 row: row
        3 patient P3); they would become two feature groups: write it one way``.
    """
    seen: dict[str, list[tuple[int | None, str | None]]] = {}
    for name, row, patient in cells:
        if isinstance(name, str) and name.strip():
            seen.setdefault(name, []).append((row, patient))
    first = {name: k for k, name in enumerate(seen)}
    problems = []
    for group in near_duplicates(seen):
        group = sorted(group, key=first.__getitem__)  # in order of appearance
        described = []
        for name in group:
            where = seen[name]
            shown = ", ".join(
                " ".join(p for p in (f"row {r}" if r is not None else "", _patient(i)) if p)
                for r, i in where[:SHOWN]
            )
            more = ", ..." if len(where) > SHOWN else ""
            described.append(f"{name!r} ({len(where)} {_cells(where)}: {shown}{more})")
        odd = min(group, key=lambda name: len(seen[name]))  # the rarest: likely the typo
        row, patient = seen[odd][0]
        problems.append(
            Problem(
                f"{what} writes one name {len(group)} ways, differing only by case or spaces: "
                f"{', '.join(described)}; they would become {consequence}: write it one way",
                row=row,
                patient_id=patient,
                file=file,
            )
        )
    return problems


def _patient(patient: str | None) -> str:
    return "" if patient is None else f"patient {patient}"


def _cells(where: list[tuple[int | None, str | None]]) -> str:
    unit = "row" if where[0][0] is not None else "patient"
    return unit if len(where) == 1 else f"{unit}s"
