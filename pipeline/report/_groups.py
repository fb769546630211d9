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


def groups_html(groups: Mapping[str, Any] | None) -> str:
    """Per-group table of every model (n, events, AUC [95 % CI]); empty without groups."""
    if not groups:
        return ""
    parts = [
        f'<h3 id="groups">Per {escape(groups["column"])} (held-out group)</h3>',
        f'<p class="muted">{escape(groups["method"])}</p>',
    ]
    for model, rows in groups["models"].items():
        body = [
            [
                f"<td>{escape(row['group'])}</td>",
                num_cell(row["n"]),
                num_cell("" if row["events"] is None else row["events"]),
                num_cell(format_metric(row["roc_auc"]) if row["roc_auc"] else "not defined"),
                f"<td>{escape(row['note'] or '')}</td>",
            ]
            for row in rows
        ]
        parts.append(f"<h4>{escape(model)}</h4>")
        parts.append(
            html_table(
                [escape(groups["column"]), "Patients", "Events", "ROC AUC [95 % CI]", "Note"], body
            )
        )
    return f'<div class="scroll">{"".join(parts)}</div>'
