"""Which items of TRIPOD+AI, CLEAR and METRICS a report answers, and which the user must supply.

:data:`ITEMS` (binary reports) and :data:`SURVIVAL_ITEMS` (survival reports) are static
mapping data: (checklist, item, report section, rule). Item numbers
are given where we are sure of them (TRIPOD+AI: Collins et al., BMJ 2024; CLEAR: Kocak et al.,
Insights Imaging 2023; METRICS: Kocak et al., Insights Imaging 2024); otherwise the item's
name only. The *status* of each row is computed from what the run actually contains by
:func:`build_checklists` (e.g. harmonisation is "answered" only when ComBat was run), so the
table never claims more than the report holds. It is a reporting aid, not a substitute for
completing the checklists themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from ..statistics import STRONG_ASSOCIATION
from ._config import model_record, preprocessing_settings
from ._html import escape, html_table

__all__ = [
    "ANSWERED",
    "ITEMS",
    "PARTLY",
    "STATUSES",
    "SURVIVAL_ITEMS",
    "USER",
    "build_checklists",
    "checklists_html",
]

ANSWERED, PARTLY, USER = "answered", "partly", "user must supply"
STATUSES = (ANSWERED, PARTLY, USER)

Rule = Callable[[Mapping[str, Any]], tuple[str, str]]


def _pre(report: Mapping[str, Any]) -> Mapping[str, Any]:
    return preprocessing_settings(model_record(report.get("config")))


def _fixed(status: str, note: str) -> Rule:
    return lambda report: (status, note)


def _extraction(report: Mapping[str, Any]) -> tuple[str, str]:
    if ((report.get("methods") or {}).get("extraction") or {}).get("modalities"):
        return ANSWERED, (
            "PyRadiomics version and settings per modality, read from the extraction diagnostics."
        )
    return USER, (
        "Features were given as a table without extraction diagnostics: report the "
        "software and its settings."
    )


def _preprocessing_images(report: Mapping[str, Any]) -> tuple[str, str]:
    if ((report.get("methods") or {}).get("extraction") or {}).get("modalities"):
        return PARTLY, (
            "Resampling, normalisation and discretisation as applied by "
            "PyRadiomics; any preprocessing before extraction must be added."
        )
    return USER, "Image preprocessing was done outside radfusion: describe it."


def _harmonisation(report: Mapping[str, Any]) -> tuple[str, str]:
    association = (report.get("cohort") or {}).get("site_outcome_association")
    if association is not None and association >= STRONG_ASSOCIATION:
        return USER, (
            f"Site and outcome are strongly associated (Cramér's V = {association:.2f}): "
            "harmonisation cannot separate a confounded site from the outcome"
            + (
                " (ComBat by site was run and removes both)"
                if _pre(report).get("harmonize")
                else ""
            )
            + ". Describe the confounding and validate on an external site."
        )
    if _pre(report).get("harmonize"):
        return ANSWERED, "ComBat by site, fitted within each training fold."
    return USER, (
        "No harmonisation was run: state why (e.g. single site) or re-run with --harmonize site."
    )


def _redundancy(report: Mapping[str, Any]) -> tuple[str, str]:
    pre = _pre(report)
    done = [
        s
        for s, on in (
            ("correlation filter", pre.get("correlation_threshold") is not None),
            ("top-k selection", pre.get("select_k") is not None),
        )
        if on
    ]
    if done:
        return ANSWERED, f"Constant-feature filter and {' and '.join(done)}, within folds."
    return PARTLY, (
        "Only constant features were removed; no correlation filter or selection was run."
    )


def _class_note(report: Mapping[str, Any]) -> str:
    data = report["data"]
    return (
        f"{data['n_patients']} patients ({min(data['n_positive'], data['n_negative'])} in "
        f"the smaller class) for {sum(data['groups'].values())} columns"
    )


def _dimensionality_rule(note: Rule, kept: str, unlimited: str) -> Rule:
    """Dimensionality against data size: ``note(report)`` (the patients and columns), then
    ``kept`` (formatted with ``k``) when top-k selection ran, else ``unlimited``."""

    def rule(report: Mapping[str, Any]) -> tuple[str, str]:
        k = _pre(report).get("select_k")
        if k is not None:
            return ANSWERED, note(report) + kept.format(k=k)
        return PARTLY, note(report) + unlimited

    return rule


_dimensionality = _dimensionality_rule(
    _class_note,
    "; {k} features kept per branch.",
    "; no selection limited the number of features per model.",
)


def _robustness(report: Mapping[str, Any]) -> tuple[str, str]:
    if _pre(report).get("icc_table") or _pre(report).get("robustness"):
        return ANSWERED, "Features filtered by test-retest / multi-reader ICC."
    return USER, (
        "No robustness (ICC) filtering in this run: report a test-retest or "
        "multi-reader analysis, or its absence."
    )


def _single_group_models(report: Mapping[str, Any]) -> list[str]:
    """The models of the run that fuse nothing (every model but ``report["fused"]``)."""
    fused = set(report.get("fused") or ())
    return [m for m in report["models"] if m not in fused]


def _baselines(report: Mapping[str, Any]) -> tuple[str, str]:
    singles = _single_group_models(report)
    if "clinical" in singles and len(singles) > 1:
        return ANSWERED, "Each single modality and the clinical-only model, with DeLong tests."
    if singles:
        return PARTLY, "Single-group models are compared, but there is no clinical-only model."
    return USER, "No single-group model in this run: compare with a non-radiomic baseline."


def _single_modality(report: Mapping[str, Any]) -> tuple[str, str]:
    singles = [m for m in _single_group_models(report) if m != "clinical"]
    if singles:
        return ANSWERED, "Each imaging group alone is a model of the comparison."
    return USER, "No single imaging group was evaluated alone."


def _learner_rule(learner: str, ran: str, absent: str) -> Rule:
    """Comparison with a simple model: answered with ``ran`` when ``learner`` is among the
    run's learners, else partly, with ``absent``."""

    def rule(report: Mapping[str, Any]) -> tuple[str, str]:
        learners = (report.get("methods") or {}).get("learners") or {}
        return (ANSWERED, ran) if learner in learners else (PARTLY, absent)

    return rule


_simple_models = _learner_rule(
    "lr",
    "Logistic regression models are part of the comparison.",
    "No logistic regression in this run.",
)


_missing = _fixed(
    PARTLY,
    "Missing values and modalities per group are counted (Table 1) and "
    "median-imputed within folds; the reasons they are missing must be added.",
)


def _partitioning_rule(by_group: str, by_folds: str) -> Rule:
    """Data partitioning, always answered: ``by_group`` (formatted with ``group_by`` and
    ``folds``) for a leave-one-group-out CV, else ``by_folds`` (``repeats`` and ``folds``)."""

    def rule(report: Mapping[str, Any]) -> tuple[str, str]:
        config = report.get("config") or {}
        if config.get("group_by"):
            return ANSWERED, by_group.format(group_by=config["group_by"], folds=config.get("folds"))
        return ANSWERED, by_folds.format(repeats=config.get("repeats"), folds=config.get("folds"))

    return rule


_partitioning = _partitioning_rule(
    "Leave-one-group-out CV by {group_by!r} ({folds} folds, one per value), patient-level, "
    "every step refitted in the training folds.",
    "{repeats} x stratified {folds}-fold CV, patient-level, every step refitted in the "
    "training folds.",
)


def _site_heterogeneity(report: Mapping[str, Any]) -> tuple[str, str]:
    levels = [
        v
        for v in (report.get("cohort") or {}).get("variables", [])
        if str(v.get("name")).lower() == "site"
    ]
    if levels:
        return PARTLY, ("Site distribution in Table 1; performance per site is not reported.")
    return USER, "No site information: describe centres and heterogeneity across them."


def _explanations(report: Mapping[str, Any]) -> tuple[str, str]:
    explanations = report.get("explanations")
    if not explanations:
        return USER, "No explanations were computed: describe what drives the model."
    found = [
        label
        for key, label in (
            ("meta_weights", "meta-learner weights"),
            ("group_drop", "AUC drop per group"),
            ("importance", "held-out permutation importance"),
        )
        if explanations.get(key)
    ]
    if not found:
        return PARTLY, "Explanations need several groups or single-group models."
    return ANSWERED, ", ".join(found).capitalize() + "; SHAP not computed."


#: (checklist, item, where in the report (section anchor), rule giving status and note).
ITEMS: tuple[tuple[str, str, str, Rule], ...] = (
    # ---- TRIPOD+AI (2024)
    ("TRIPOD+AI", "5 Data sources", "-", _fixed(USER, "Study design, data sources and dates.")),
    (
        "TRIPOD+AI",
        "6 Participants: setting and eligibility criteria",
        "cohort",
        _fixed(
            PARTLY,
            "Table 1 describes the analysed patients; eligibility criteria and "
            "recruitment must be added.",
        ),
    ),
    ("TRIPOD+AI", "7 Data preparation", "methods", _preprocessing_images),
    (
        "TRIPOD+AI",
        "8 Outcome definition",
        "cohort",
        _fixed(
            PARTLY,
            "Outcome column and label mapping are given; its clinical definition and "
            "assessment must be added.",
        ),
    ),
    ("TRIPOD+AI", "9 Predictors", "methods", _extraction),
    (
        "TRIPOD+AI",
        "10 Sample size",
        "-",
        _fixed(USER, "Justify the sample size (e.g. Riley et al. criteria)."),
    ),
    ("TRIPOD+AI", "11 Missing data", "cohort", _missing),
    ("TRIPOD+AI", "12 Analytical methods: data partitioning", "methods", _partitioning),
    (
        "TRIPOD+AI",
        "12 Analytical methods: predictor handling and model type",
        "methods",
        _fixed(ANSWERED, "Imputation, filtering, scaling, learners and hyperparameters."),
    ),
    (
        "TRIPOD+AI",
        "12 Analytical methods: heterogeneity across clusters",
        "cohort",
        _site_heterogeneity,
    ),
    (
        "TRIPOD+AI",
        "12 Analytical methods: performance measures and model comparison",
        "performance",
        _fixed(ANSWERED, "Discrimination, calibration, decision curves, DeLong tests."),
    ),
    (
        "TRIPOD+AI",
        "13 Class imbalance",
        "methods",
        _fixed(
            PARTLY,
            "Class counts and stratified folds; class-weighted learners. No "
            "resampling was applied.",
        ),
    ),
    (
        "TRIPOD+AI",
        "14 Fairness",
        "-",
        _fixed(USER, "Performance across subgroups (sex, age, site...) is not reported."),
    ),
    ("TRIPOD+AI", "17 Ethical approval", "-", _fixed(USER, "Ethics approval and consent.")),
    (
        "TRIPOD+AI",
        "18 Open science: code and software",
        "reproduce",
        _fixed(ANSWERED, "Software versions, pinned requirements and the re-run command."),
    ),
    (
        "TRIPOD+AI",
        "18 Open science: protocol, registration, data sharing",
        "-",
        _fixed(USER, "Protocol, registration and data availability statements."),
    ),
    (
        "TRIPOD+AI",
        "20 Participants: characteristics",
        "cohort",
        _fixed(ANSWERED, "Table 1 by outcome class."),
    ),
    (
        "TRIPOD+AI",
        "21 Model development: participants and events",
        "cohort",
        _fixed(ANSWERED, "Patients and events in the analysis."),
    ),
    (
        "TRIPOD+AI",
        "23 Model performance with confidence intervals",
        "performance",
        _fixed(ANSWERED, "Every metric with a 95 % bootstrap CI; calibration slope and intercept."),
    ),
    (
        "TRIPOD+AI",
        "External validation (evaluation in new data)",
        "-",
        _fixed(
            USER,
            "Only internal (cross-) validation was run: external or prospective "
            "validation must be reported separately.",
        ),
    ),
    # ---- CLEAR (2023)
    ("CLEAR", "8 Ethical details", "-", _fixed(USER, "Approval, consent, data protection.")),
    ("CLEAR", "9 Sample size calculation", "-", _fixed(USER, "How the sample size was set.")),
    ("CLEAR", "10 Study nature", "-", _fixed(USER, "Retrospective / prospective, design.")),
    ("CLEAR", "11 Eligibility criteria", "-", _fixed(USER, "Inclusion / exclusion criteria.")),
    (
        "CLEAR",
        "Imaging protocol (acquisition)",
        "-",
        _fixed(USER, "Scanners and acquisition parameters."),
    ),
    (
        "CLEAR",
        "Segmentation: method and readers",
        "-",
        _fixed(USER, "Who segmented, how, and inter-reader variability."),
    ),
    ("CLEAR", "Image preprocessing", "methods", _preprocessing_images),
    ("CLEAR", "Feature extraction: software, version and settings", "methods", _extraction),
    ("CLEAR", "Harmonization", "methods", _harmonisation),
    ("CLEAR", "Feature robustness analysis", "methods", _robustness),
    ("CLEAR", "Feature selection / dimensionality reduction", "methods", _redundancy),
    ("CLEAR", "Data partitioning", "methods", _partitioning),
    (
        "CLEAR",
        "Handling of class imbalance",
        "methods",
        _fixed(PARTLY, "Stratified folds and class-weighted learners; no resampling."),
    ),
    (
        "CLEAR",
        "Modelling: algorithms and hyperparameters",
        "methods",
        _fixed(ANSWERED, "Learners with their hyperparameters; fusion strategies."),
    ),
    (
        "CLEAR",
        "Performance metrics with uncertainty",
        "performance",
        _fixed(ANSWERED, "Mean and 95 % CI of each metric."),
    ),
    (
        "CLEAR",
        "Calibration",
        "calibration",
        _fixed(ANSWERED, "Calibration curves, slope and intercept, Brier score."),
    ),
    ("CLEAR", "Comparison with a non-radiomic / clinical model", "comparisons", _baselines),
    ("CLEAR", "Model interpretability / explainability", "explanations", _explanations),
    (
        "CLEAR",
        "Software and versions",
        "provenance",
        _fixed(ANSWERED, "Every package version and the platform."),
    ),
    ("CLEAR", "External testing", "-", _fixed(USER, "No external test set in a CV report.")),
    (
        "CLEAR",
        "Data, code and model availability",
        "reproduce",
        _fixed(
            PARTLY,
            "Re-run command, hashes and pinned requirements; sharing of data, code "
            "and model must be stated.",
        ),
    ),
    # ---- METRICS (2024)
    ("METRICS", "2 Eligibility criteria", "-", _fixed(USER, "Describe eligibility.")),
    ("METRICS", "4 Multi-center", "cohort", _site_heterogeneity),
    (
        "METRICS",
        "8 Segmentation methodology",
        "-",
        _fixed(USER, "Segmentation method, readers and their agreement."),
    ),
    ("METRICS", "11 Image preprocessing", "methods", _preprocessing_images),
    ("METRICS", "12 Standardized feature extraction software", "methods", _extraction),
    ("METRICS", "13 Feature extraction parameters", "methods", _extraction),
    ("METRICS", "14 Removal of non-robust features", "methods", _robustness),
    ("METRICS", "15 Removal of redundant features", "methods", _redundancy),
    ("METRICS", "16 Dimensionality compared to data size", "cohort", _dimensionality),
    ("METRICS", "18 Proper data partitioning", "methods", _partitioning),
    ("METRICS", "19 Handling of confounding factors", "methods", _harmonisation),
    (
        "METRICS",
        "20 Appropriate performance metrics",
        "performance",
        _fixed(
            ANSWERED, "AUC, AP, balanced accuracy, sensitivity, specificity, Brier, net benefit."
        ),
    ),
    (
        "METRICS",
        "21 Consideration of uncertainty",
        "performance",
        _fixed(ANSWERED, "95 % bootstrap CIs; ROC bands."),
    ),
    (
        "METRICS",
        "22 Calibration assessment",
        "calibration",
        _fixed(ANSWERED, "Calibration plot, slope and intercept."),
    ),
    (
        "METRICS",
        "23 Uni-parametric imaging or proof of its inferiority",
        "comparisons",
        _single_modality,
    ),
    ("METRICS", "24 Comparison with a non-radiomic approach", "comparisons", _baselines),
    (
        "METRICS",
        "25 Comparison with simple or classical statistical models",
        "performance",
        _simple_models,
    ),
    (
        "METRICS",
        "26 Internal testing",
        "performance",
        _fixed(PARTLY, "Repeated cross-validation; no held-out internal test set."),
    ),
    ("METRICS", "27 External testing", "-", _fixed(USER, "No external test set.")),
    (
        "METRICS",
        "29 Code availability",
        "reproduce",
        _fixed(
            PARTLY,
            "radfusion is open source and the run is re-runnable; state where the "
            "analysis code is shared.",
        ),
    ),
)


# ---- survival reports: rules read what the survival report holds (module
# radfusion.pipeline.report._survival: events and follow-up, C-indices, td-AUC, IBS, KM risk
# groups, calibration at a horizon, bootstrap ΔC), never the binary fields.
def _events_note(report: Mapping[str, Any]) -> str:
    data = report["data"]
    return (
        f"{data['n_patients']} patients, {data['events']} events ({data['censored']} censored) "
        f"for {sum(data['groups'].values())} candidate columns"
    )


def _s_sample_size(report: Mapping[str, Any]) -> tuple[str, str]:
    return USER, (
        _events_note(report) + ": justify the sample size for a time-to-event model "
        "(e.g. Riley et al. criteria, events per candidate parameter)."
    )


_s_dimensionality = _dimensionality_rule(
    _events_note,
    "; {k} features kept per branch (Cox score).",
    "; no selection limited the features per model.",
)


_s_missing = _fixed(
    PARTLY,
    "Missing values and modalities are median-imputed within the training folds; the "
    "survival report does not count them per group: give the counts and the reasons.",
)


_s_partitioning = _partitioning_rule(
    "Leave-one-group-out CV by {group_by!r} ({folds} groups), patient-level, every step "
    "refitted in the training folds.",
    "{repeats} x {folds}-fold CV stratified by the event indicator, patient-level, every step "
    "refitted in the training folds.",
)


def _s_site_heterogeneity(report: Mapping[str, Any]) -> tuple[str, str]:
    groups = report.get("groups")
    if groups:
        return PARTLY, (
            f"Harrell's C with a 95 % CI per held-out {groups['column']!r} (leave-one-group-"
            "out); describe the centres and their case mix."
        )
    return USER, (
        "No per-site analysis in this run (radfusion cv --group-by site gives one): describe "
        "centres and heterogeneity across them."
    )


def _s_harmonisation(report: Mapping[str, Any]) -> tuple[str, str]:
    if _pre(report).get("harmonize"):
        return ANSWERED, (
            "ComBat by site, fitted within each training fold; the site-outcome association is "
            "not measured for survival: describe any confounding."
        )
    return USER, (
        "No harmonisation was run: state why (e.g. single site) or re-run with --harmonize site."
    )


def _s_groups_compared(report: Mapping[str, Any]) -> list[str]:
    return sorted({t["single"] for t in (report.get("comparisons") or {}).get("tests", [])})


def _s_baselines(report: Mapping[str, Any]) -> tuple[str, str]:
    singles = _s_groups_compared(report)
    groups = report["data"]["groups"]
    clinical = [s for s in singles if s.removeprefix("single:") == "clinical"]
    if clinical and len(singles) > 1:
        return ANSWERED, (
            "Each single group and the clinical-only model, with bootstrap ΔHarrell's C of "
            "every fused model against each."
        )
    if singles:
        return PARTLY, "Single-group models are compared, but there is no clinical-only model."
    if "clinical" in groups:
        return PARTLY, "A clinical group was used, but no fused model is compared with it alone."
    return USER, "No single-group model in this run: compare with a non-radiomic baseline."


def _s_single_modality(report: Mapping[str, Any]) -> tuple[str, str]:
    imaging = [s for s in _s_groups_compared(report) if s.removeprefix("single:") != "clinical"]
    if imaging:
        return ANSWERED, (
            "Each imaging group alone is a model of the comparison (bootstrap ΔHarrell's C)."
        )
    return USER, "No single imaging group was evaluated alone against a fused model."


_s_simple_models = _learner_rule(
    "coxnet",
    "Penalised Cox regression (CoxNet) models are part of the comparison.",
    "No Cox regression learner in this run (--learner coxnet).",
)


def _s_calibration(report: Mapping[str, Any]) -> tuple[str, str]:
    horizons = (report.get("data") or {}).get("horizons") or []
    at = f" at t = {horizons[len(horizons) // 2]:g}" if horizons else ""
    return PARTLY, (
        f"Predicted survival against the Kaplan–Meier estimate by risk decile{at} and the "
        "integrated Brier score; no calibration slope, and one horizon only."
    )


_s_risk_groups = _fixed(
    ANSWERED,
    "High / low risk split at the median risk of each fold's training patients (a "
    "training-fold cut-off); Kaplan–Meier curves and log-rank p (first repeat).",
)


_S_PERFORMANCE = _fixed(
    ANSWERED,
    "Harrell's and Uno's C, time-dependent AUC at the horizons and the integrated Brier score, "
    "each with a 95 % bootstrap CI (stratified by event); calibration at a horizon; bootstrap "
    "ΔHarrell's C of each fused model against each single group.",
)
_S_IMBALANCE = _fixed(
    PARTLY,
    "Events and censored patients counted; folds and bootstrap stratified by the event "
    "indicator. No reweighting or resampling.",
)
_S_OUTCOME = _fixed(
    PARTLY,
    "Time and event columns, events, censoring and median follow-up (reverse Kaplan–Meier) are "
    "given; the event's clinical definition, the time origin and the censoring rules must be "
    "added.",
)
_S_MODELLING = _fixed(
    ANSWERED,
    "Imputation, filtering, scaling, the scikit-survival learners with their hyperparameters "
    "and the fusion strategies.",
)

#: The survival report's own rules: the items of :data:`ITEMS` whose binary rule reads
#: binary fields (class counts, DeLong, decision curves…), replaced by survival ones, and
#: the items only a survival report has (inserted after the item before them here).
_SURVIVAL_RULES: tuple[tuple[str, str, str, Rule], ...] = (
    # ---- TRIPOD+AI (2024)
    (
        "TRIPOD+AI",
        "6 Participants: setting and eligibility criteria",
        "cohort",
        _fixed(
            PARTLY,
            "The cohort table gives patients, events and follow-up; eligibility criteria and "
            "recruitment must be added.",
        ),
    ),
    ("TRIPOD+AI", "8 Outcome definition", "cohort", _S_OUTCOME),
    ("TRIPOD+AI", "10 Sample size", "cohort", _s_sample_size),
    ("TRIPOD+AI", "11 Missing data", "methods", _s_missing),
    ("TRIPOD+AI", "12 Analytical methods: data partitioning", "methods", _s_partitioning),
    (
        "TRIPOD+AI",
        "12 Analytical methods: predictor handling and model type",
        "methods",
        _S_MODELLING,
    ),
    (
        "TRIPOD+AI",
        "12 Analytical methods: heterogeneity across clusters",
        "groups",
        _s_site_heterogeneity,
    ),
    (
        "TRIPOD+AI",
        "12 Analytical methods: performance measures and model comparison",
        "performance",
        _S_PERFORMANCE,
    ),
    ("TRIPOD+AI", "Risk groups", "figure-survival_km", _s_risk_groups),
    ("TRIPOD+AI", "13 Class imbalance", "methods", _S_IMBALANCE),
    (
        "TRIPOD+AI",
        "20 Participants: characteristics",
        "cohort",
        _fixed(
            PARTLY,
            "Events, censoring and follow-up only: the survival report has no table of patient "
            "characteristics (age, sex, stage...); add one.",
        ),
    ),
    (
        "TRIPOD+AI",
        "21 Model development: participants and events",
        "cohort",
        _fixed(ANSWERED, "Patients, events, censored patients and median follow-up."),
    ),
    (
        "TRIPOD+AI",
        "23 Model performance with confidence intervals",
        "performance",
        _fixed(ANSWERED, "Every metric with a 95 % bootstrap CI; log-rank p of the risk groups."),
    ),
    # ---- CLEAR (2023)
    ("CLEAR", "9 Sample size calculation", "cohort", _s_sample_size),
    ("CLEAR", "Harmonization", "methods", _s_harmonisation),
    ("CLEAR", "Data partitioning", "methods", _s_partitioning),
    ("CLEAR", "Handling of class imbalance", "methods", _S_IMBALANCE),
    ("CLEAR", "Modelling: algorithms and hyperparameters", "methods", _S_MODELLING),
    ("CLEAR", "Performance metrics with uncertainty", "performance", _S_PERFORMANCE),
    ("CLEAR", "Calibration", "figure-survival_calibration", _s_calibration),
    ("CLEAR", "Comparison with a non-radiomic / clinical model", "comparisons", _s_baselines),
    (
        "CLEAR",
        "Model interpretability / explainability",
        "-",
        _fixed(
            USER,
            "No explanations are computed for survival models: describe what drives the model.",
        ),
    ),
    # ---- METRICS (2024)
    ("METRICS", "4 Multi-center", "groups", _s_site_heterogeneity),
    ("METRICS", "16 Dimensionality compared to data size", "cohort", _s_dimensionality),
    ("METRICS", "18 Proper data partitioning", "methods", _s_partitioning),
    ("METRICS", "19 Handling of confounding factors", "methods", _s_harmonisation),
    (
        "METRICS",
        "20 Appropriate performance metrics",
        "performance",
        _fixed(
            ANSWERED,
            "Censoring-aware metrics: Harrell's and Uno's C, time-dependent AUC, integrated "
            "Brier score.",
        ),
    ),
    (
        "METRICS",
        "21 Consideration of uncertainty",
        "performance",
        _fixed(ANSWERED, "95 % bootstrap CIs stratified by event; CIs of the ΔC-indices."),
    ),
    ("METRICS", "22 Calibration assessment", "figure-survival_calibration", _s_calibration),
    (
        "METRICS",
        "23 Uni-parametric imaging or proof of its inferiority",
        "comparisons",
        _s_single_modality,
    ),
    ("METRICS", "24 Comparison with a non-radiomic approach", "comparisons", _s_baselines),
    (
        "METRICS",
        "25 Comparison with simple or classical statistical models",
        "performance",
        _s_simple_models,
    ),
    (
        "METRICS",
        "26 Internal testing",
        "performance",
        _fixed(PARTLY, "Cross-validation; no held-out internal test set."),
    ),
)


def _with_rules(
    items: tuple[tuple[str, str, str, Rule], ...], rules: tuple[tuple[str, str, str, Rule], ...]
) -> tuple[tuple[str, str, str, Rule], ...]:
    """``items`` with each item that ``rules`` names replaced by its rule there; an item of
    ``rules`` that ``items`` lacks follows the item before it in ``rules``."""
    named = {rule[:2]: rule for rule in rules}
    extra: dict[tuple[str, str], list] = {}
    for before, rule in zip(rules, rules[1:], strict=False):
        if rule[:2] not in {item[:2] for item in items}:
            extra.setdefault(before[:2], []).append(rule)
    out = []
    for item in items:
        out.append(named.get(item[:2], item))
        out += extra.get(item[:2], [])
    return tuple(out)


#: The survival report's items: (checklist, item, where, rule), as :data:`ITEMS`.
SURVIVAL_ITEMS = _with_rules(ITEMS, _SURVIVAL_RULES)


def build_checklists(
    report: Mapping[str, Any], items: Sequence[tuple[str, str, str, Rule]] = ITEMS
) -> dict[str, Any]:
    """The ``checklists`` field of ``report.json``.

    Parameters
    ----------
    report : mapping
        The report content (with ``methods``); read: ``config``, ``data``, ``models``,
        ``cohort``, ``methods`` (a survival report: ``comparisons`` and ``groups`` instead
        of ``cohort``).
    items : sequence, default=ITEMS
        The checklist items and their rules: :data:`ITEMS`, or :data:`SURVIVAL_ITEMS` for a
        survival report.

    Returns
    -------
    dict
        ``{"note": text, "items": [{"checklist", "item", "where", "status", "note"}],
        "counts": {checklist: {status: n}}}``; ``where`` is the report section's anchor,
        or ``"-"`` when the report has nothing on it.
    """
    rows = []
    for checklist, item, where, rule in items:
        status, note = rule(report)
        if where == "groups" and not report.get("groups"):  # no leave-one-group-out section
            where = "-"
        rows.append(
            {"checklist": checklist, "item": item, "where": where, "status": status, "note": note}
        )
    counts = {
        name: {
            status: sum(1 for i in rows if i["checklist"] == name and i["status"] == status)
            for status in STATUSES
        }
        for name in dict.fromkeys(i["checklist"] for i in rows)
    }
    return {
        "note": (
            "Items of TRIPOD+AI (2024), CLEAR (2023) and METRICS (2024) this report "
            "answers, with a status computed from the run; item numbers are given where "
            "certain, otherwise the item's name. Items marked 'user must supply' are not "
            "in the report and must be written by the authors. Not a substitute for "
            "completing the checklists themselves."
        ),
        "items": rows,
        "counts": counts,
    }


_STATUS_CLASS = {ANSWERED: "answered", PARTLY: "partly", USER: "user"}


def checklists_html(checklists: Mapping[str, Any], anchors: Collection[str]) -> str:
    """The checklist table of report.html; ``where`` links to the section when it is one of
    ``anchors`` (the report's section ids)."""
    rows = []
    for item in checklists["items"]:
        where = item["where"]
        where_html = (
            f'<a href="#{escape(where)}">{escape(where)}</a>' if where in anchors else escape(where)
        )
        rows.append(
            [
                f"<td>{escape(item['checklist'])}</td>",
                f"<td>{escape(item['item'])}</td>",
                f"<td>{where_html}</td>",
                f'<td class="{_STATUS_CLASS.get(item["status"], "")}">'
                f"{escape(item['status'])}</td>",
                f"<td>{escape(item['note'])}</td>",
            ]
        )
    counts = "; ".join(
        f"{escape(name)}: " + ", ".join(f"{n} {escape(status)}" for status, n in c.items())
        for name, c in checklists["counts"].items()
    )
    return (
        f'<p class="muted">{escape(checklists["note"])}</p><p>{counts}</p>'
        + '<div class="scroll">'
        + html_table(["Checklist", "Item", "Where", "Status", "Note"], rows)
        + "</div>"
    )
