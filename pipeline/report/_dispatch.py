"""Which report a task's cross-validation gets: chosen once, here, by the task's name.

Each task has one :class:`ReportKind`: how ``report.json`` is built from a
:class:`~radfusion.pipeline.validation.CVResult`, which figures it draws and how its HTML is
rendered. :func:`build_cv_report` and the report writer ask :func:`report_kind`; nothing else
branches on the task to draw a report (skrub registers its dispatch once in the same way).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from ..targets import Task, get_task
from ..validation import CVResult, group_metrics
from ._config import model_record, preprocessing_settings
from ._document import build_report, render_figures, render_html
from ._figures import FIGURES
from ._groups import groups_method
from ._headline import evaluability
from ._html import jsonable
from ._survival import (
    SURVIVAL_FIGURES,
    build_survival_report,
    render_survival_html,
    survival_figures,
)
from ._tasks import (
    CLASSES,
    TASK_FIGURES,
    VALUES,
    build_task_report,
    render_task_html,
    task_figures,
)

__all__ = ["REPORT_KINDS", "ReportKind", "build_cv_report", "report_kind"]


@dataclass(frozen=True)
class ReportKind:
    """One task's report: its builder, figures and HTML renderer."""

    build: Callable[..., dict[str, Any]]
    """``build(result, summary, *, config, seed, inputs, groups, cohort, n_bootstrap,
    extraction, explanations)`` → ``report.json`` content."""
    figures: Callable[[Mapping[str, Any]], dict[str, Figure]]
    """The report's figures, drawn from ``report.json`` alone."""
    render: Callable[..., str]
    """``render(report, svgs=...)`` → the self-contained ``report.html``."""
    figure_names: tuple[str, ...]
    """Every figure name it may draw (an earlier report's other figures are removed)."""


def _with_groups(report: dict[str, Any], result: CVResult, config, n_bootstrap, seed) -> dict:
    """A leave-one-group-out result's per-group section (AUC per held-out group)."""
    if result.held_out_groups:
        report["groups"] = jsonable(
            {
                "column": config["group_by"],
                "method": groups_method(
                    config["group_by"],
                    result.held_out_groups,
                    preprocessing_settings(model_record(config))["harmonize_unseen"],
                    n_bootstrap,
                ),
                "models": group_metrics(result, n_bootstrap=n_bootstrap, seed=seed),
            }
        )
    return report


def _binary(result, summary, *, config, seed, n_bootstrap, **context) -> dict[str, Any]:
    report = build_report(
        result, summary, config=config, seed=seed, n_bootstrap=n_bootstrap, **context
    )
    return _with_groups(report, result, config, n_bootstrap, seed)


def _classes_or_values(part):
    def build(
        result, summary, *, config, seed, n_bootstrap, explanations, extraction, **context
    ) -> dict[str, Any]:
        if explanations is not None:
            raise ValueError(
                f"explanations are computed for binary targets, not {result.task.name}"
            )
        report = build_task_report(result, summary, config=config, seed=seed, part=part, **context)
        return _with_groups(report, result, config, n_bootstrap, seed)

    return build


def _task_kind(part) -> ReportKind:
    return ReportKind(
        _classes_or_values(part),
        task_figures,
        lambda report, svgs=None: render_task_html(report, svgs, part=part),
        tuple(sorted(set().union(*TASK_FIGURES.values()))),
    )


def _survival(result, summary, *, cohort, explanations, **context) -> dict[str, Any]:
    return build_survival_report(result, summary, **context)


REPORT_KINDS: dict[str, ReportKind] = {
    "binary": ReportKind(
        _binary,
        render_figures,
        lambda report, svgs=None: render_html(report, svgs=svgs),
        tuple(FIGURES),
    ),
    "multiclass": _task_kind(CLASSES),
    "regression": _task_kind(VALUES),
    "survival": ReportKind(
        _survival, survival_figures, render_survival_html, tuple(SURVIVAL_FIGURES)
    ),
}
"""The report of each task, by task name."""


def report_kind(task: str | Task) -> ReportKind:
    """The :class:`ReportKind` of a task (object or name)."""
    return REPORT_KINDS[get_task(task).name]


def build_cv_report(
    result: CVResult,
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    config: Mapping[str, Any],
    seed: int,
    inputs: Mapping[str, str | Path],
    groups: Mapping[str, Sequence[str]],
    cohort: Mapping[str, Any] | None = None,
    n_bootstrap: int = 1000,
    extraction: Mapping[str, Any] | None = None,
    explanations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report of a cross-validation result, in the sections of its task.

    A binary result gets :func:`radfusion.pipeline.report.build_report` (curves, DeLong
    comparisons, checklists, explanations, the extraction settings); a multiclass or regression
    result :func:`radfusion.pipeline.report._tasks.build_task_report` (its task's metrics and
    figures;
    ``cohort`` is its Table 1); a survival result
    :func:`radfusion.pipeline.report._survival.build_survival_report`. A leave-one-group-out
    result
    (``result.held_out_groups``, ``config["group_by"]``) also gets the ``groups`` section.
    Every report says its ``task`` and opens with its ``evaluability`` (the headline model,
    what a cohort of this size can tell, the optimism of the best of N:
    :func:`radfusion.pipeline.report._headline.evaluability`).
    """
    report = report_kind(result.task).build(
        result,
        summary,
        config=config,
        seed=seed,
        inputs=inputs,
        groups=groups,
        cohort=cohort,
        n_bootstrap=n_bootstrap,
        extraction=extraction,
        explanations=explanations,
    )
    report["evaluability"] = jsonable(evaluability(result, report, config))
    return report
