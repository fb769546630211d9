"""The CV report: ``report.json``, a self-contained ``report.html`` and ``predictions.csv``.

The report folder is one output set (:func:`radfusion.features.files.write_set`): ``report.json``,
``report.html``, ``predictions.csv``, ``run.json`` and ``figures/*`` land together, so a run
killed at any moment leaves the old report or the new one once :func:`settle_report` ran.

``report.json`` depends only on the inputs, the configuration and the seed: no timestamps or
durations (those go to ``run.json``, see :func:`write_run_info`), floats rounded to 6
decimals, fixed key order, so the same inputs and seed give a byte-identical file.

report.json schema (``schema_version`` "2.2"; 1.1 to 1.5 only added fields to 1.0; 2.0 adds
``task`` and records each model once, in ``config.models``, dropping 1.x's ``config.options``,
``config.preprocessing``, ``config.learner``, ``config.stacking_learners``,
``config.group_pattern`` and ``config.tuning.n_iter``; 2.1 adds ``evaluability`` to the report
of every task; 2.2 turns ``explanations.shap`` from a sentence into the SHAP values of the
headline model's branches)::

    schema_version     "2.2"
    radfusion_version  installed radfusion version, or "unknown"
    task               (2.0) "binary" (the other tasks' reports: their own modules)
    config             the run configuration: label, task, id columns, strategies, folds,
                       repeats, bootstrap size, models {name: the estimator's get_params(),
                       the one record of each model, read through
                       ``radfusion.pipeline.report.model_record``}, tuning {chosen}, encoded
                       columns, label mapping, command line, ...
    seed               int, the seed of the splits and of the bootstrap
    data               n_patients, n_positive, n_negative (int);
                       label_mapping {original label (as str): 0 | 1};
                       groups {group name: number of columns}
    inputs             {name: {"path": path as given, "sha256": hex digest of the file}}
    versions           {python, platform, numpy, scipy, pandas, scikit-learn, xgboost,
                        radiomics, SimpleITK, joblib, matplotlib: version string | null}
    ci_method          one sentence on how the confidence intervals were computed
    models             {model: {...}}, in the order the models were given:
      metrics          {metric: {"mean", "ci_low", "ci_high"}}; metrics are roc_auc,
                       accuracy, balanced_accuracy, sensitivity, specificity, precision, f1,
                       brier (threshold 0.5) and, since 1.1, average_precision,
                       calibration_slope, calibration_intercept; an undefined value is null
      confusion_matrix (1.1) {"tn", "fp", "fn", "tp"}: mean counts over repeats at
                       ``threshold``
      curves           (1.1) "roc": {"tpr", "tpr_ci_low", "tpr_ci_high"} on curves.fpr;
                       "pr": {"precision"} on curves.recall (interpolated precision);
                       "calibration": {"predicted", "observed", "n"} per risk decile (all
                       repeats pooled; n per repeat); "net_benefit" on curves.thresholds;
                       (1.4) "risk_histogram": {"class0", "class1"}: patients per bin of
                       curves.risk_bins by true class, mean over repeats
    fused              (2.0) the models that combine groups, in model order (from each
                       estimator's ``fuses_groups``; ``CVResult.fused``)
    best               the model with the highest mean roc_auc (first one on a tie); chosen on
                       the predictions it is scored on, so its AUC is optimistic (see
                       ``primary`` and ``best_note``)
    threshold          (1.1) probability at or above which a patient is called class 1
    cohort             (1.1) "Table 1": "columns" [{"label", "n"}: All, class 0, class 1];
                       "variables" [{"name", "kind": "numeric" | "categorical", (1.4)
                       "smd": absolute standardised difference class 1 vs 0 | null, "values":
                       one per column: numeric {n, mean, sd, median, q1, q3, missing},
                       categorical {n, levels {level: {n, percent}}, missing}}];
                       "groups" [{"name", "columns", "missing": [{n, percent} per column]}]
                       (patients without any value of the group; last row "any group")
    comparisons        (1.1) {"method": text, "tests": [{model, reference, auc_model,
                       auc_reference, difference, ci_low, ci_high, z, p_value, p_holm}]}:
                       DeLong tests of each fused model against each single-group model
    curves             (1.1) {"fpr": grid, "recall": grid, "thresholds": grid of the decision
                       curve, "treat_all": net benefit of treating everyone; (1.4)
                       "risk_bins": histogram edges, "decision_range": {"low", "high",
                       "models": {model: highest threshold drawn}, "rule"}: where each
                       decision curve rests on enough patients called positive}
    reproduce          (1.1) {"command": str | null, "requirements": ["dist==version"] (1.4:
                       every run-time dependency, transitively), "steps": [text]; (1.4)
                       "source": {"kind": "git" | "archive" | "index" | "unknown", "spec":
                       pip requirement | null, "commit", "uncommitted"}, "install": [shell
                       commands]}: how to re-run this report
    methods            (1.2) {"text": [paragraph], "extraction": null | {"source": sidecar
                       file name, "modalities": {modality: {cases, masks {mask: {cases,
                       label}}, pyradiomics, image_types, settings, settings_vary,
                       spacing_mm {min, max} | null}}}, "feature_classes": {group: {"<image
                       type> <class>": n}}, "learners": {name: {estimator, params}}}: a
                       methods section built from this report and the extraction diagnostics
                       (see :mod:`radfusion.pipeline.report`)
    checklists         (1.2) {"note", "items": [{checklist, item, where, status, note}],
                       "counts": {checklist: {status: n}}}: TRIPOD+AI, CLEAR and METRICS
                       items, status "answered" | "partly" | "user must supply" computed from
                       the run (see :mod:`radfusion.pipeline.report`)
    explanations       (1.3) null (not computed) | {"meta_weights": null | {"model",
                       "n_fits", "branches": [{branch, group, mean, min, max}], "groups":
                       [{group, mean, min, max}]}: stacking meta-learner coef_ over outer
                       folds x repeats, a group's weight = sum of its learners' weights;
                       "group_drop": null | {"model": "late", "auc", "groups": [{group,
                       auc_without, "drop": {mean, min, max}}]}: out-of-fold AUC of late
                       fusion without each group (range over repeats); "importance": null |
                       {"n_repeats", "top_k", "groups": {group: [{feature, mean, sd,
                       selected}]}}: held-out permutation importance (AUC drop) of the
                       single-group models, mean and sd over folds, "selected" = selection
                       frequency over folds or null; "selection": {"ran", "note"}; "shap":
                       (2.2) {"model", "computed", "note", "branches": {branch: {kind,
                       output, n_rows, additivity_error, "top": [{feature, mean_abs}]}},
                       "skipped": {branch: why}}: exact SHAP values of the headline model's
                       branches on held-out rows; "methods": [text]} (see
                       :mod:`radfusion.pipeline.validation`)
    primary            (1.4) {"model", "declared"}: the headline model, declared before the run
                       (``config["primary"]``, else the task's default strategy, else the
                       first fused model, else the first model), never chosen on the results
    best_note          (1.4) why ``best`` is optimistic (it is the best of N on the same
                       out-of-fold predictions)
    warnings           (1.4) [text]: validity warnings of the run, e.g. a site strongly
                       associated with the outcome (``cohort.site_outcome_association``, from
                       1.4 when the table has a site column)
    fusion_benefit     (1.5) "Does fusion help?": each fused model against the best single
                       group, the clinical-only and the volume-only model as paired ΔAUC with
                       a 95 % CI, a verdict per pair and plain sentences
                       (:func:`radfusion.pipeline.report.fusion_benefit`)
    evaluability       (2.1, added by ``build_cv_report`` for every task) the report's
                       opening answer: "metric" (the task's primary metric), "counts"
                       ({positive, negative}; survival {events, censored}; multiclass
                       {smallest_class, others}; null for regression), "level", "power",
                       "min_significant" (the smallest value chance reaches in at most 2.5 %
                       of random scorings of the outcomes), "min_detectable" (the smallest
                       true value detected with 80 % power), "null_sd", "adequate_value"
                       (0.75), "too_small" (min_detectable above it or undefined), "warning"
                       (text | null), "headline" {model, declared, mean, ci_low, ci_high,
                       "fold_interval": {mean, ci_low, ci_high, sd, n_scores, test_to_train}
                       | null (the corrected resampled-t interval of the per-fold scores)},
                       "optimism" {n_models, best, expected (the average excess of the best
                       of N by chance), observed}, "sentences" [text], "method" text
                       (:func:`radfusion.pipeline.report._headline.evaluability`)

``predictions.csv`` holds the out-of-fold predictions: ``patient_id, model, repeat, fold,
y_true, proba`` (``repeat``/``fold`` 0-based, ``y_true`` coded as in ``label_mapping``,
``proba`` the probability of class 1). The figures are also written as ``figures/<name>.svg``
and ``figures/<name>.png`` (200 dpi) for papers; see
:data:`radfusion.pipeline.report._figures.FIGURES`.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from ..statistics import (
    CONFOUNDING_WARNING,
    STRONG_ASSOCIATION,
    ConfoundedSiteWarning,
    describe_cohort,
)
from ..validation import (
    CI_LEVEL,
    CURVE_GRID,
    DCA_THRESHOLDS,
    METRICS,
    THRESHOLD,
    CVResult,
    calibration_curves,
    compare_models,
    confusion_matrices,
    decision_curves,
    pr_curves,
    roc_curves,
)
from ._checklists import build_checklists, checklists_html
from ._config import model_record
from ._curves import RISK_BINS, decision_range, risk_histograms
from ._figures import FIGURES, inline_svg, svg_text
from ._fusion_benefit import FUSION_BENEFIT_SECTION, fusion_benefit, fusion_benefit_html
from ._groups import groups_html
from ._headline import evaluability_html, primary_model
from ._html import (
    REPORT_CSS,
    SCHEMA_VERSION,
    Significant,
    cohort_html,
    escape,
    figure_html,
    fmt,
    format_metric,
    html_table,
    inputs_html,
    jsonable,
    num_cell,
    package_versions,
    reproduce_html,
    resolve_label_mapping,
    run_fields,
    versions_html,
)
from ._methods import build_methods
from ._reproduce import reproduce_steps

__all__ = [
    "SCHEMA_VERSION",
    "build_report",
    "package_versions",
    "render_figures",
    "render_html",
]


METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "precision": "Precision",
    "f1": "F1",
    "brier": "Brier score",
    "average_precision": "Average precision",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept",
}
#: Metrics of the two performance tables of the HTML report.
DISCRIMINATION = (
    "roc_auc",
    "average_precision",
    "accuracy",
    "balanced_accuracy",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
)
CALIBRATION = ("brier", "calibration_slope", "calibration_intercept")

CI_METHOD = (
    f"Point estimates are the mean over CV repeats of each metric computed on that repeat's "
    f"pooled out-of-fold predictions; {CI_LEVEL:.0%} confidence intervals are percentile "
    f"bootstrap intervals over patients (resampled with replacement within each class, the "
    f"same resamples for every model, the repeat-averaged metric recomputed per replicate); "
    f"thresholded metrics call a patient positive when the predicted probability is "
    f">= {THRESHOLD}; the calibration slope and intercept come from logistic recalibration "
    f"(replicates where it does not converge are skipped); ROC bands are pointwise "
    f"percentile intervals of the same bootstrap."
)

COMPARISON_METHOD = (
    "DeLong test of correlated AUCs on the same patients (DeLong et al. 1988, fast algorithm "
    "of Sun & Xu 2014): each AUC is the mean over CV repeats and each patient's placement "
    "values are averaged over repeats before the variance is computed (the classical test "
    "for one repeat; the fold assignment is treated as fixed). Difference = model - "
    f"reference with a {CI_LEVEL:.0%} Wald interval; two-sided p-values, and Holm-adjusted "
    "over all the comparisons shown."
)


# --------------------------------------------------------------------------------------------
# report.json
# --------------------------------------------------------------------------------------------


BEST_NOTE = (
    "The best of {n} models by mean AUC, chosen on the same out-of-fold predictions it is "
    "scored on: its AUC is optimistic (a selection bias that grows with the number of models "
    "compared). Report the primary model, declared before the run."
)


def validity_warnings(cohort: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """Warnings a reader must see before the numbers (also issued as Python warnings)."""
    out = []
    association = cohort.get("site_outcome_association")
    if association is not None and association >= STRONG_ASSOCIATION:
        harmonised = model_record(config).get("harmonize") is not None
        out.append(
            f"Site and outcome are strongly associated (Cramér's V = {association:.2f}, see "
            "the site row of Table 1): "
            + (
                "harmonisation cannot separate a confounded site from the outcome (it removes "
                "both), so the harmonised models may have lost real signal."
                if harmonised
                else "a model may be reading the site rather than the disease; harmonisation "
                "would not separate them either. Validate on an external site."
            )
        )
    return out


def _classes(mapping: Mapping[str, int]) -> list[str]:
    """Original label names of class 0 and class 1."""
    inverse = {code: label for label, code in mapping.items()}
    return [str(inverse.get(0, "0")), str(inverse.get(1, "1"))]


def build_report(
    result: CVResult,
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    config: Mapping[str, Any],
    seed: int,
    inputs: Mapping[str, str | Path],
    groups: Mapping[str, Sequence[str]],
    cohort: Mapping[str, Any] | None = None,
    comparisons: Sequence[tuple[str, str]] | None = None,
    n_bootstrap: int = 1000,
    extraction: Mapping[str, Any] | None = None,
    explanations: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble the ``report.json`` content (see the module docstring for the schema).

    Parameters
    ----------
    result : CVResult
        Output of :func:`radfusion.pipeline.validation.cross_validate_models` for a binary
        target: its predictions, and its label mapping (composed with
        ``config["label_mapping"]`` when the caller encoded the labels itself).
    summary : dict
        Output of :func:`radfusion.pipeline.validation.summarize`.
    config : mapping
        The run configuration, stored as given (made JSON-serialisable). A ``"command"``
        entry (str or list of str) is shown in the HTML as the way to re-run.
    seed : int
        The seed of the run (and of the bootstrap of the ROC bands).
    inputs : mapping of str to path
        Input files to fingerprint (SHA-256 of their bytes).
    groups : mapping of str to sequence of str
        Feature groups and their columns; the report stores the column counts.
    cohort : mapping, default=None
        Table 1 (:func:`radfusion.pipeline.statistics.describe_cohort`); by default the class counts
        only.
    comparisons : sequence of (model, reference), default=None
        Pairs to compare by DeLong's test; by default every fused model of ``result`` against
        every other model it reports.
    n_bootstrap : int, default=1000
        Bootstrap replicates of the ROC confidence bands.
    extraction : mapping, optional
        :func:`radfusion.pipeline.report.read_extraction` of the feature table (the PyRadiomics
        settings actually used), for the methods section; None when unknown.
    explanations : mapping, optional
        :func:`radfusion.pipeline.validation.summarize_explanations` of the run; stored as null when
        None.

    Returns
    -------
    dict
        JSON-serialisable, deterministic for the same arguments.
    """
    predictions = result.predictions
    per_patient = predictions.drop_duplicates("patient_id")
    n_positive = int((per_patient["y_true"] == 1).sum())
    label_mapping = resolve_label_mapping(result.label_mapping, config)
    names = list(summary)
    rocs = roc_curves(predictions, n_bootstrap=n_bootstrap, seed=seed)
    prs = pr_curves(predictions)
    calibration = calibration_curves(predictions)
    net_benefit, treat_all = decision_curves(predictions)
    confusion = confusion_matrices(predictions)
    histograms = risk_histograms(predictions)
    models = {
        name: {
            "metrics": {metric: dict(values[metric]) for metric in METRICS if metric in values},
            "confusion_matrix": confusion.get(name),
            "curves": {
                "roc": rocs[name],
                "pr": {"precision": prs[name]},
                "calibration": calibration[name],
                "net_benefit": net_benefit[name],
                "risk_histogram": histograms[name],
            }
            if name in rocs
            else None,
        }
        for name, values in summary.items()
    }
    aucs = {
        name: values["roc_auc"]["mean"]
        for name, values in summary.items()
        if "roc_auc" in values and math.isfinite(values["roc_auc"]["mean"])
    }
    best = max(aucs, key=aucs.__getitem__) if aucs else None  # first of equals wins
    if cohort is None:
        cohort = describe_cohort(
            per_patient.sort_values("patient_id")["y_true"].to_numpy(), _classes(label_mapping)
        )
    if comparisons is None:
        fused = [name for name in names if name in result.fused]
        pairs = [(f, s) for f in fused for s in names if s not in result.fused]
    else:
        pairs = list(comparisons)
    notes = validity_warnings(cohort, config)
    if notes:
        warnings.warn(CONFOUNDING_WARNING, ConfoundedSiteWarning, stacklevel=2)
    report = {
        **run_fields(
            result.task.name,
            config,
            seed,
            {
                "n_patients": len(per_patient),
                "n_positive": n_positive,
                "n_negative": len(per_patient) - n_positive,
                "label_mapping": label_mapping,
                "groups": {name: len(columns) for name, columns in groups.items()},
            },
            inputs,
        ),
        "ci_method": CI_METHOD,
        "models": models,
        "fused": [name for name in models if name in result.fused],
        "best": best,
        "threshold": THRESHOLD,
        "cohort": cohort,
        "comparisons": {
            "method": COMPARISON_METHOD,
            "tests": [
                {
                    **test,
                    "p_value": Significant(test["p_value"]),
                    "p_holm": Significant(test["p_holm"]),
                }
                for test in (compare_models(predictions, pairs) if pairs else [])
            ],
        },
        "curves": {
            "fpr": CURVE_GRID,
            "recall": CURVE_GRID,
            "thresholds": DCA_THRESHOLDS,
            "treat_all": treat_all,
            "risk_bins": RISK_BINS,
            "decision_range": decision_range(predictions, DCA_THRESHOLDS, net_benefit),
        },
        "reproduce": reproduce_steps(config, inputs),
    }
    report = jsonable(report)
    report["methods"] = jsonable(build_methods(report, extraction=extraction, groups=groups))
    explanations = jsonable(explanations)
    report["checklists"] = jsonable(build_checklists({**report, "explanations": explanations}))
    report["explanations"] = explanations
    report["primary"] = primary_model(names, config, result.fused, result.task.default_strategy)
    report["best_note"] = BEST_NOTE.format(n=len(names))
    report["warnings"] = notes
    report["fusion_benefit"] = jsonable(
        fusion_benefit(
            report["comparisons"]["tests"],
            report["models"],
            fused=[name for name in names if name in result.fused],
        )
    )
    return report


def render_figures(report: Mapping[str, Any]) -> dict[str, Any]:
    """Every figure of :data:`radfusion.pipeline.report._figures.FIGURES`, drawn from the report."""
    return {name: draw(report) for name, (draw, _) in FIGURES.items()}


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------

_SECTIONS = (
    ("cohort", "Cohort"),
    ("methods", "Methods"),
    ("performance", "Performance"),
    ("roc", "ROC"),
    ("precision-recall", "Precision-recall"),
    ("calibration", "Calibration"),
    ("confusion", "Confusion matrices"),
    ("comparisons", "Comparisons"),
    FUSION_BENEFIT_SECTION,
    ("decision-curve", "Decision curve"),
    ("explanations", "Explanations"),
    ("checklists", "Checklists"),
    ("reproduce", "Re-run"),
    ("provenance", "Provenance"),
)


def _format_p(p: float | None) -> str:
    if p is None:
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _headline_html(report: Mapping[str, Any]) -> str:
    """The primary model's AUC first, the validity warnings, and the caution on ``best``."""
    parts = [
        f'<p class="warning"><strong>Warning:</strong> {escape(text)}</p>'
        for text in report.get("warnings") or ()
    ]
    primary = report.get("primary")
    if primary and primary["model"] in report["models"]:
        auc = report["models"][primary["model"]]["metrics"].get("roc_auc")
        parts.append(
            f"<p><strong>Primary model: {escape(primary['model'])}</strong> (declared before "
            f"the run: {escape(primary['declared'])})"
            + (f", ROC AUC {escape(format_metric(auc))}" if auc else "")
            + ".</p>"
        )
    if report.get("best_note") and report.get("best"):
        parts.append(
            f'<p class="muted">Best AUC: {escape(report["best"])}. '
            f"{escape(report['best_note'])}</p>"
        )
    return "\n".join(parts)


def _metrics_html(report: Mapping[str, Any], metrics: Sequence[str]) -> str:
    best = report.get("best")
    primary = (report.get("primary") or {}).get("model")
    names = list(report["models"])
    rows = []
    for name in names:
        values = report["models"][name]["metrics"]
        marks = [
            mark
            for mark, on in (
                ("primary", name == primary),
                ("best AUC, optimistic" if report.get("best_note") else "best AUC", name == best),
            )
            if on
        ]
        mark = f" ({escape(', '.join(marks))})" if marks else ""
        cells = [f"<td>{escape(name)}{mark}</td>"]
        cells += [
            f'<td class="num wrap">{escape(format_metric(values[m]))}</td>'
            for m in metrics
            if m in values
        ]
        rows.append(cells)
    present = [m for m in metrics if all(m in report["models"][n]["metrics"] for n in names)]
    return html_table(
        ["Model"] + [escape(METRIC_LABELS[m]) for m in present],
        rows,
        classes=["primary" if name == primary else "" for name in names],
    )


def _confusion_html(report: Mapping[str, Any]) -> str:
    rows = [
        [f"<td>{escape(name)}</td>"]
        + [num_cell(fmt(model["confusion_matrix"][k], 1)) for k in ("tp", "fn", "fp", "tn")]
        for name, model in report["models"].items()
    ]
    return html_table(["Model", "TP", "FN", "FP", "TN"], rows)


def _comparisons_html(report: Mapping[str, Any]) -> str:
    tests = report["comparisons"]["tests"]
    if not tests:
        return (
            "<p>No comparison: DeLong tests compare each fused model (early, late, "
            "stacking) with each single-group model, and this run has not both.</p>"
        )
    rows = [
        [
            f"<td>{escape(t['model'])}</td>",
            f"<td>{escape(t['reference'])}"
            f"{' (clinical-only)' if t['reference'] == 'clinical' else ''}</td>",
            num_cell(fmt(t["auc_model"])),
            num_cell(fmt(t["auc_reference"])),
            num_cell(f"{fmt(t['difference'])} [{fmt(t['ci_low'])}, {fmt(t['ci_high'])}]"),
            num_cell(fmt(t["z"], 2)),
            num_cell(_format_p(t["p_value"])),
            num_cell(_format_p(t["p_holm"])),
        ]
        for t in tests
    ]
    return html_table(
        [
            "Model",
            "Reference",
            "AUC model",
            "AUC reference",
            "Difference [95 % CI]",
            "z",
            "p",
            "p (Holm)",
        ],
        rows,
    )


def _methods_html(methods: Mapping[str, Any]) -> str:
    paragraphs = "".join(f"<p>{escape(text)}</p>" for text in methods["text"])
    rows = [
        [
            f"<td>{escape(name)}</td>",
            f"<td>{escape(info['estimator'])}</td>",
            f"<td>{escape(', '.join(f'{k}={v}' for k, v in info['params'].items()))}</td>",
        ]
        for name, info in methods["learners"].items()
    ]
    parts = [f'<div class="methods">{paragraphs}</div>']
    if rows:
        parts += [
            "<h3>Learners and hyperparameters</h3>",
            html_table(["Learner", "Estimator", "Hyperparameters"], rows),
        ]
    return "".join(parts)


def _checklists_html(checklists: Mapping[str, Any]) -> str:
    return checklists_html(checklists, {anchor for anchor, _ in _SECTIONS})


def _range(values: Mapping[str, float | None]) -> str:
    return f"{fmt(values.get('mean'))} [{fmt(values.get('min'))}, {fmt(values.get('max'))}]"


def _explanations_html(explanations: Mapping[str, Any] | None) -> str:
    if not explanations:
        return "<p>No explanations in this report (not computed, or schema before 1.3).</p>"
    parts = [
        '<div class="methods">'
        + "".join(f"<p>{escape(text)}</p>" for text in explanations["methods"])
        + "</div>"
    ]
    meta = explanations.get("meta_weights")
    drop = explanations.get("group_drop")
    weights = {g["group"]: g for g in meta["groups"]} if meta else {}
    drops = {g["group"]: g for g in drop["groups"]} if drop else {}
    names = list(dict.fromkeys([*weights, *drops]))
    parts.append("<h3>Contribution of each modality</h3>")
    if names:
        # The weight column only when the stacking model fitted weights (not a mean stack).
        rows = [
            [
                f"<td>{escape(g)}</td>",
                *([num_cell(_range(weights[g]) if g in weights else "n/a")] if weights else []),
                num_cell(fmt(drops[g]["auc_without"]) if g in drops else "n/a"),
                num_cell(_range(drops[g]["drop"]) if g in drops else "n/a"),
            ]
            for g in names
        ]
        full = f" (late AUC {fmt(drop['auc'])})" if drop else ""
        parts.append(
            html_table(
                [
                    "Group",
                    *(["Meta-learner weight mean [min, max]"] if weights else []),
                    f"Late AUC without group{full}",
                    "AUC drop mean [min, max]",
                ],
                rows,
            )
        )
    else:
        parts.append("<p>Needs the stacking or late fusion model over two or more groups.</p>")
    importance = explanations.get("importance")
    parts.append("<h3>Top features per group (held-out permutation importance)</h3>")
    if importance:
        for group, features in importance["groups"].items():
            # Selection frequency only where a selector ran (else it is n/a in every row).
            selected = any(f["selected"] is not None for f in features)
            rows = [
                [
                    num_cell(rank),
                    f"<td>{escape(f['feature'])}</td>",
                    num_cell(f"{fmt(f['mean'], 4)} ({fmt(f['sd'], 4)})"),
                ]
                + ([num_cell(fmt(f["selected"], 2))] if selected else [])
                for rank, f in enumerate(features, start=1)
            ]
            header = ["#", "Feature", "AUC drop mean (sd)"]
            parts.append(f"<p><strong>{escape(group)}</strong></p>")
            parts.append(html_table(header + ["Selection frequency"] * selected, rows))
    else:
        parts.append("<p>No single-group model in this run.</p>")
    parts.append(f'<p class="muted">{escape(explanations["selection"]["note"])}</p>')
    parts.append(_shap_html(explanations.get("shap")))
    return f'<div class="scroll">{"".join(parts)}</div>'


def _shap_html(shap: Mapping[str, Any] | str | None) -> str:
    """The SHAP subsection: per branch of the headline model, its top features by mean
    |SHAP| on held-out rows, with what the values explain (a report before 2.2 held a
    sentence only)."""
    head = "<h3>SHAP values of the headline model's branches (held-out rows)</h3>"
    if not isinstance(shap, Mapping):
        return head + (f'<p class="muted">{escape(shap)}</p>' if shap else "")
    parts = [head, f'<p class="muted">{escape(shap["note"])}</p>']
    for branch, entry in shap["branches"].items():
        rows = [
            [num_cell(rank), f"<td>{escape(f['feature'])}</td>", num_cell(fmt(f["mean_abs"], 4))]
            for rank, f in enumerate(entry["top"], start=1)
        ]
        parts.append(
            f"<p><strong>{escape(branch)}</strong> ({escape(entry['kind'])} learner; SHAP on "
            f"the {escape(entry['output'])}; {entry['n_rows']} held-out rows; additivity "
            f"error {entry['additivity_error']:.1e})</p>"
        )
        parts.append(html_table(["#", "Feature", "Mean |SHAP|"], rows))
    parts += [
        f'<p class="muted">{escape(branch)}: not computed, {escape(why)}</p>'
        for branch, why in shap["skipped"].items()
    ]
    return "".join(parts)


def render_html(
    report: Mapping[str, Any],
    predictions: pd.DataFrame | None = None,
    *,
    svgs: Mapping[str, str] | None = None,
) -> str:
    """The self-contained HTML report: no network access, no external CSS or JavaScript.

    Drawn from ``report`` alone (``predictions`` is accepted for compatibility and unused);
    ``svgs`` are the figures as standalone SVG text
    (:func:`radfusion.pipeline.report._figures.svg_text`),
    drawn here when None.
    """
    if svgs is None:
        svgs = {name: svg_text(fig, name) for name, fig in render_figures(report).items()}
    svgs = {name: inline_svg(svg) for name, svg in svgs.items()}
    data = report["data"]
    config = report.get("config") or {}
    threshold = report["threshold"]

    mapping = ", ".join(f"{escape(k)} &rarr; {escape(v)}" for k, v in data["label_mapping"].items())
    summary = html_table(
        None,
        [
            ["<th>Patients</th>", f"<td>{escape(data['n_patients'])}</td>"],
            [
                "<th>Positive (1) / negative (0)</th>",
                f"<td>{escape(data['n_positive'])} / {escape(data['n_negative'])}</td>",
            ],
            ["<th>Label mapping</th>", f"<td>{mapping}</td>"],
        ],
    )
    inputs_table = inputs_html(report["inputs"])
    versions_table = versions_html(report["versions"])
    span = (report.get("curves") or {}).get("decision_range")
    captions = {
        "auc_forest": "ROC AUC of every model (mean over CV repeats of the pooled out-of-fold "
        "AUC) with its 95 % bootstrap CI; circles: single groups, diamonds: fused models; "
        "dashed: chance (0.5).",
        "roc": "Pooled out-of-fold ROC curve per model, averaged over CV repeats, single "
        "groups and fused models in separate panels; AUC with 95 % bootstrap CI.",
        "roc_bands": "Each model's mean ROC curve with a pointwise 95 % percentile-bootstrap "
        "band (patients resampled within class).",
        "precision_recall": "Interpolated precision against recall, averaged over repeats; "
        "the dashed line is the prevalence (a random model).",
        "calibration": "Observed fraction of class 1 against the mean predicted probability "
        "in ten equal-size risk groups (all repeats pooled); calibration slope "
        "and intercept (ideal 1 and 0) in each panel. Below each panel, the distribution of "
        "predicted risk: patients per 0.05 bin (mean over repeats), class 1 upwards, class 0 "
        "downwards.",
        "confusion_matrix": f"Mean counts over repeats at threshold {threshold}.",
        "group_contributions": "Contribution of each modality: stacking meta-learner weight "
        "and drop in out-of-fold AUC of late fusion without the group "
        "(bars: mean; lines: min to max over folds or repeats).",
        "decision_curve": "Net benefit TP/N - FP/N x t/(1 - t) against the threshold "
        "probability t (Vickers &amp; Elkin 2006), mean over repeats. "
        + escape(span["rule"] if span else ""),
        "importance": "Held-out permutation importance of each single-group model's top "
        "features: drop in ROC AUC when the feature is shuffled among an outer fold's "
        "held-out patients (bars: mean over folds x repeats; lines: SD across folds). An SD "
        "larger than the mean means the ranking is not stable across folds.",
        "shap": "Mean |SHAP| of the top features of each branch of the headline model, on "
        "held-out rows: the exact SHAP values of the branch's own learner on its transformed "
        "inputs; they explain the branch's output (the scale is in each panel's title), not "
        "the fused probability.",
    }
    nav = " ".join(f'<a href="#{anchor}">{escape(title)}</a>' for anchor, title in _SECTIONS)
    body = [
        "<h1>radfusion cross-validation report</h1>",
        f'<p class="muted">radfusion {escape(report.get("radfusion_version"))} &middot; report '
        f"schema {escape(report.get('schema_version'))} &middot; "
        f"seed {escape(report.get('seed'))}</p>",
        f"<nav>{nav}</nav>",
        evaluability_html(report),
        '<h2 id="cohort">Cohort</h2>',
        summary,
        "<h3>Table 1: characteristics by outcome</h3>",
        f'<div class="scroll">{cohort_html(report["cohort"])}</div>',
        '<h2 id="methods">Methods</h2>',
        '<p class="muted">Generated from this report and the extraction diagnostics, '
        "accurate to the configuration that was run; edit freely for a paper.</p>",
        _methods_html(report["methods"])
        if report.get("methods")
        else "<p>Not in this report (report schema before 1.2).</p>",
        '<h2 id="performance">Cross-validated performance</h2>',
        _headline_html(report),
        f'<p class="muted">Mean [95 % CI]. {escape(report.get("ci_method"))}</p>',
        "<h3>Discrimination and classification</h3>",
        f'<div class="scroll">{_metrics_html(report, DISCRIMINATION)}</div>',
        "<h3>Calibration</h3>",
        f'<div class="scroll">{_metrics_html(report, CALIBRATION)}</div>',
        figure_html("auc_forest", svgs["auc_forest"], captions["auc_forest"], single=True),
        groups_html(report.get("groups")),
        '<h2 id="roc">ROC curves</h2>',
        figure_html("roc", svgs["roc"], captions["roc"]),
        figure_html("roc_bands", svgs["roc_bands"], captions["roc_bands"]),
        '<h2 id="precision-recall">Precision-recall curves</h2>',
        figure_html(
            "precision_recall", svgs["precision_recall"], captions["precision_recall"], single=True
        ),
        '<h2 id="calibration">Calibration</h2>',
        figure_html("calibration", svgs["calibration"], captions["calibration"]),
        f'<h2 id="confusion">Confusion matrices at threshold {escape(threshold)}</h2>',
        f'<p class="muted">A patient is predicted class 1 when its probability is &ge; '
        f"{escape(threshold)}; counts are means over the CV repeats.</p>",
        _confusion_html(report),
        figure_html("confusion_matrix", svgs["confusion_matrix"], captions["confusion_matrix"]),
        '<h2 id="comparisons">Fused models against single groups (DeLong)</h2>',
        f'<p class="muted">{escape(report["comparisons"]["method"])}</p>',
        f'<div class="scroll">{_comparisons_html(report)}</div>',
        fusion_benefit_html(report["fusion_benefit"]) if report.get("fusion_benefit") else "",
        '<h2 id="decision-curve">Decision curve analysis</h2>',
        figure_html("decision_curve", svgs["decision_curve"], captions["decision_curve"]),
        '<h2 id="explanations">Explanations</h2>',
        _explanations_html(report.get("explanations")),
        figure_html(
            "group_contributions", svgs["group_contributions"], captions["group_contributions"]
        ),
        figure_html("importance", svgs["importance"], captions["importance"]),
        figure_html("shap", svgs["shap"], captions["shap"]),
        '<h2 id="checklists">Reporting checklists</h2>',
        _checklists_html(report["checklists"])
        if report.get("checklists")
        else "<p>Not in this report (report schema before 1.2).</p>",
        '<h2 id="reproduce">How to re-run</h2>',
        reproduce_html(report["reproduce"]),
        '<h2 id="provenance">Provenance</h2>',
        "<h3>Configuration</h3>",
        f"<pre>{escape(json.dumps(config, indent=2, ensure_ascii=False))}</pre>",
        "<h3>Inputs</h3>",
        f'<div class="scroll">{inputs_table}</div>',
        "<h3>Software versions</h3>",
        versions_table,
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>radfusion cross-validation report</title>\n<style>{REPORT_CSS}</style>\n"
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )
