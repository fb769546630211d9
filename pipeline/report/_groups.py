"""The per-group section of a leave-one-group-out report (``radfusion cv --group-by COL``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._html import escape, format_metric, html_table, num_cell

__all__ = ["groups_html", "groups_method"]


def groups_method(
    column: str, names: list[str], harmonize_unseen: str | None, n_bootstrap: int = 1000
) -> str:
    """The sentence the report gives for a leave-one-group-out CV by ``column``."""
    text = (
        f"Leave-one-group-out cross-validation by {column!r}: {len(names)} folds, each holding "
        f"out every patient of one value ({', '.join(names)}) and fitting every step on the "
        f"others; one repeat (the folds are fixed by the groups). The column {column!r} is not "
        "a predictor. Per-group AUC 95 % CIs resample the group's patients within class "
        f"({n_bootstrap} replicates); the AUC is not defined when the held-out group has one "
        "class."
    )
    if harmonize_unseen is not None:
        text += (
            " ComBat harmonisation is fitted on the training groups only, so the held-out "
            f"site is always unseen and ComBat's unseen-site policy {harmonize_unseen!r} "
            "applies to it"
            + (
                " (its rows are standardised with the pooled mean and variance, with no "
                "site-specific adjustment)."
                if harmonize_unseen == "pooled"
                else "."
            )
        )
    return text


def groups_html(
    groups: Mapping[str, Any] | None, metric: str = "roc_auc", title: str = "ROC AUC"
) -> str:
    """One table: a row per model, a column per held-out group (``metric`` [95 % CI], headed
    ``title``, which is HTML); empty without groups."""
    if not groups:
        return ""
    models = groups["models"]
    first = next(iter(models.values()))
    header = ["Model"] + [
        f"{escape(row['group'])} (n = {escape(row['n'])}"
        + ("" if row["events"] is None else f", {escape(row['events'])} events")
        + ")"
        for row in first
    ]
    body = [
        [f"<td>{escape(model)}</td>"]
        + [num_cell(format_metric(row[metric]) if row[metric] else "not defined") for row in rows]
        for model, rows in models.items()
    ]
    notes = sorted(
        {f"{row['group']}: {row['note']}" for r in models.values() for row in r if row["note"]}
    )
    parts = [
        f'<h3 id="groups">{title} [95 % CI] per held-out {escape(groups["column"])}</h3>',
        f'<p class="muted">{escape(groups["method"])}</p>',
        f'<div class="scroll">{html_table(header, body)}</div>',
    ]
    if notes:
        parts.append("<ul>" + "".join(f"<li>{escape(n)}</li>" for n in notes) + "</ul>")
    return "".join(parts)
