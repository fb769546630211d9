"""The cross-validation report: report.json and a self-contained report.html, with the methods
text, reporting checklists, figures and per-task sections.
"""

from ._checklists import (
    STATUSES,
    SURVIVAL_ITEMS,
)
from ._config import (
    model_record,
)
from ._dispatch import (
    build_cv_report,
)
from ._document import (
    SCHEMA_VERSION,
    build_report,
    render_html,
)
from ._external import (
    build_external_report,
    write_external_report,
)
from ._files import (
    REPORT_FILES,
    settle_report,
    write_report,
)
from ._fusion_benefit import (
    fusion_benefit,
)
from ._headline import (
    cohort_evaluability,
    primary_model,
)
from ._html import (
    FIGURE_DIR,
    jsonable,
)
from ._methods import (
    feature_classes,
    read_extraction,
    summarize_diagnostics,
)
from ._survival import (
    survival_cohort,
    survival_curves,
)
from ._tasks import (
    CLASSES,
)

__all__ = [
    "CLASSES",
    "model_record",
    "FIGURE_DIR",
    "REPORT_FILES",
    "SCHEMA_VERSION",
    "STATUSES",
    "SURVIVAL_ITEMS",
    "survival_cohort",
    "survival_curves",
    "build_external_report",
    "cohort_evaluability",
    "build_cv_report",
    "build_report",
    "feature_classes",
    "fusion_benefit",
    "jsonable",
    "primary_model",
    "read_extraction",
    "render_html",
    "settle_report",
    "summarize_diagnostics",
    "write_external_report",
    "write_report",
]
