"""Cross-validation: repeated patient-level CV of several models on the same folds, metrics
with bootstrap CIs, curves, paired comparisons and fold-wise explanations.
"""

from ._cv import (
    CI_LEVEL,
    CURVE_GRID,
    DCA_THRESHOLDS,
    METRICS,
    THRESHOLD,
    CVResult,
    calibration_curves,
    compare_models,
    confusion_matrices,
    cross_validate_models,
    decision_curves,
    fold_scores,
    fused_models,
    interpolate_roc,
    output_cube,
    pr_curves,
    roc_curves,
    summarize,
)
from ._explain import (
    FoldExplainer,
    meta_weights,
    single_group_models,
    summarize_explanations,
)
from ._groups import (
    group_metrics,
)

__all__ = [
    "CI_LEVEL",
    "CURVE_GRID",
    "CVResult",
    "DCA_THRESHOLDS",
    "FoldExplainer",
    "METRICS",
    "THRESHOLD",
    "calibration_curves",
    "compare_models",
    "confusion_matrices",
    "cross_validate_models",
    "decision_curves",
    "fold_scores",
    "fused_models",
    "group_metrics",
    "interpolate_roc",
    "meta_weights",
    "output_cube",
    "pr_curves",
    "roc_curves",
    "single_group_models",
    "summarize",
    "summarize_explanations",
]
