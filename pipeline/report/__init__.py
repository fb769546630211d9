"""The cross-validation report: report.json and a self-contained report.html, with the methods
text, reporting checklists, figures and per-task sections.
"""

from ._checklists import (
    ANSWERED,
    ITEMS,
    PARTLY,
    STATUSES,
    USER,
    build_checklists,
)
from ._document import (
    REPORT_FILES,
    REPORT_JOURNAL,
    SCHEMA_VERSION,
    build_report,
    package_versions,
    render_html,
    report_json_text,
    report_members,
    settle_report,
    write_report,
    write_run_info,
)
from ._figures import (
    FIGURES,
    calibration_figure,
    confusion_figure,
    decision_curve_figure,
    group_contributions_figure,
    inline_svg,
    png_bytes,
    pr_figure,
    roc_bands_figure,
    roc_figure,
    svg_text,
)
from ._html import (
    FIGURE_DIR,
    format_metric,
)
from ._methods import (
    LEARNER_KEYS,
    build_methods,
    feature_classes,
    learner_parameters,
    read_extraction,
)
from ._reproduce import pinned_requirements, project_source, reproduce_steps
from ._tasks import (
    TASK_FIGURES,
    TASK_METRIC_LABELS,
    build_task_report,
    render_task_html,
    task_figures,
)

__all__ = [
    "ANSWERED",
    "FIGURES",
    "FIGURE_DIR",
    "ITEMS",
    "LEARNER_KEYS",
    "PARTLY",
    "REPORT_FILES",
    "REPORT_JOURNAL",
    "SCHEMA_VERSION",
    "STATUSES",
    "TASK_FIGURES",
    "TASK_METRIC_LABELS",
    "USER",
    "build_checklists",
    "build_methods",
    "build_report",
    "build_task_report",
    "calibration_figure",
    "confusion_figure",
    "decision_curve_figure",
    "feature_classes",
    "format_metric",
    "group_contributions_figure",
    "inline_svg",
    "learner_parameters",
    "package_versions",
    "pinned_requirements",
    "png_bytes",
    "pr_figure",
    "project_source",
    "read_extraction",
    "render_html",
    "render_task_html",
    "report_json_text",
    "report_members",
    "reproduce_steps",
    "roc_bands_figure",
    "roc_figure",
    "settle_report",
    "svg_text",
    "task_figures",
    "write_report",
    "write_run_info",
]
