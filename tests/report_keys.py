"""The top-level keys of a binary cross-validation report, in order (report schema)."""

TOP_LEVEL_KEYS = [
    "schema_version",
    "radfusion_version",
    "task",  # schema 2.0: every report says its task
    "config",
    "seed",
    "data",
    "inputs",
    "versions",
    "ci_method",
    "models",
    "fused",  # the models that combine groups (from the estimators, not their names)
    "best",
    # schema 1.1
    "threshold",
    "cohort",
    "comparisons",
    "curves",
    "reproduce",
    # schema 1.2
    "methods",
    "checklists",
    # schema 1.3
    "explanations",
    # schema 1.4
    "primary",
    "best_note",
    "warnings",
    "fusion_benefit",
]
