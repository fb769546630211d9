"""The external-validation report (``radfusion validate``): report.json and report.html.

``report.json`` (``kind`` "external_validation", its ``task`` (schema 1.1), ``schema_version``
:data:`EXTERNAL_SCHEMA`; 1.2 adds ``evaluability``):

- ``model``: the validated model (path, SHA-256, strategy name, label, classes, estimator
  parameters, training patients and class counts, the versions that trained it);
- ``data``: the external cohort's ``task``, ``label``, ``n_patients`` and ``n_positive``,
  ``n_negative`` (binary), ``class_counts`` (multiclass) or ``outcome_mean`` (regression);
  ``harmonisation`` when the model harmonises by site (``column``, ``policy``,
  ``training_sites``, ``external_sites``, ``unseen_sites``);
- ``metrics``: ``{metric: {mean, ci_low, ci_high}}`` as in the cv report (threshold 0.5),
  calibration slope and intercept (calibration in the large) included; a multiclass or
  regression model gets its task's metrics;
- ``curves``: ``roc`` (tpr on the 101-point fpr grid, with a bootstrap band), ``calibration``
  (ten risk groups), ``recalibration`` (``intercept`` a, ``slope`` b and the curve
  ``expit(a + b logit(p))`` on ``grid``), ``decision`` (``thresholds``, ``model``,
  ``treat_all``); null for a multiclass or regression model;
- ``cohorts``: ``training`` (Table 1 stored in the model; null for a model saved before it
  was stored) and ``external``; both null for a multiclass or regression model;
- ``case_mix``: the membership model (``computed`` true: ``auc``, ``method``,
  ``differences``…; false: ``reason``);
- ``inputs`` ({name: {path, sha256}}), ``config``, ``seed``, ``versions``, ``ci_method``;
- ``evaluability`` (1.2): what an external cohort of these counts can tell, from the counts
  alone (:func:`radfusion.pipeline.report.cohort_evaluability`), shown first in the HTML.

The same inputs and seed give the same bytes; the files land as one set, like the cv report
(:func:`radfusion.pipeline.report.settle_report` finishes an interrupted write).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from radfusion.features.files import Content, file_digest, write_set

from ._document import METRIC_LABELS
from ._figures import finished_plot, inline_svg, png_bytes, svg_text
from ._files import REPORT_FILES, REPORT_JOURNAL, report_json_text, settle_report
from ._headline import evaluability_html
from ._html import (
    FIGURE_DIR,
    REPORT_CSS,
    cohort_html,
    escape,
    figure_html,
    fmt,
    format_metric,
    html_table,
    inputs_html,
    installed_version,
    jsonable,
    num_cell,
    package_versions,
    versions_html,
)
from ._survival import SURVIVAL_FIGURES, survival_metric_label
from ._tasks import TASK_METRIC_LABELS

__all__ = [
    "EXTERNAL_FIGURES",
    "EXTERNAL_SCHEMA",
    "build_external_report",
    "external_figures",
    "render_external_html",
    "write_external_report",
]

EXTERNAL_SCHEMA = "1.2"
_CI = (
    "The saved model predicts every external patient once (nothing is refitted); 95 % "
    "confidence intervals are percentile bootstrap intervals over the external patients "
    "({{n}} replicates, resampled with replacement{within})"
)
EXTERNAL_CI_METHOD = {
    "binary": _CI.format(within=" within each class")
    + "; thresholded metrics call a patient positive when the predicted probability is "
    ">= 0.5; the calibration slope is b of logit P(y=1) = a + b logit(p) and the intercept "
    "(calibration in the large) is a with the logit as offset (replicates where they do not "
    "converge are skipped).",
    "multiclass": _CI.format(within=" within each class")
    + "; the predicted class is the most probable one.",
    "regression": _CI.format(within="") + ".",
    "survival": _CI.format(within=" within the patients with an event and within the censored")
    + "; Harrell's and Uno's C, the time-dependent AUC at the model's horizons inside this "
    "cohort's follow-up and the integrated Brier score (scikit-survival); the risk groups are "
    "split at the training cohort's median risk, stored in the model.",
}
"""How the CIs of an external-validation report were computed, per task."""
NOT_COMPUTED = (
    "Calibration curves, the decision curve and Table 1 by outcome are computed for binary "
    "models only (survival models: risk groups, time-dependent AUC and calibration at a "
    "horizon)."
)
_GRID = np.linspace(0.0, 1.0, 101)
_CHANCE = {"linestyle": "--", "color": "#9aa1ad", "linewidth": 1}
_COLOR = "#1f77b4"


def build_external_report(
    *,
    model: Mapping[str, Any],
    metrics: Mapping[str, Any],
    curves: Mapping[str, Any],
    data: Mapping[str, Any],
    cohorts: Mapping[str, Any],
    case_mix: Mapping[str, Any],
    inputs: Mapping[str, Any],
    config: Mapping[str, Any],
    seed: int,
    evaluability: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The content of an external-validation ``report.json`` (see the module docstring)."""
    return jsonable(
        {
            "kind": "external_validation",
            "task": data["task"],
            "schema_version": EXTERNAL_SCHEMA,
            "radfusion_version": installed_version("radfusion") or "unknown",
            "model": model,
            "data": data,
            "metrics": metrics,
            "curves": curves,
            "cohorts": cohorts,
            "case_mix": case_mix,
            "inputs": {
                name: {"path": str(path), "sha256": file_digest(path)}
                for name, path in inputs.items()
            },
            "config": config,
            "seed": seed,
            "ci_method": EXTERNAL_CI_METHOD[data["task"]].format(n=config.get("n_bootstrap")),
            "versions": package_versions(),
            "evaluability": evaluability,
        }
    )


# ------------------------------------------------------------------------------------ figures
def _roc_figure(report: Mapping[str, Any]) -> Figure:
    roc = report["curves"]["roc"]
    auc = report["metrics"]["roc_auc"]
    fig = Figure(figsize=(4.8, 4.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], **_CHANCE)
    low, high = roc.get("tpr_ci_low"), roc.get("tpr_ci_high")
    if low is not None and high is not None and None not in low and None not in high:
        ax.fill_between(_GRID, low, high, color=_COLOR, alpha=0.2, linewidth=0, label="95 % band")
    ax.plot(_GRID, roc["tpr"], color=_COLOR, linewidth=1.6, label=f"AUC {format_metric(auc)}")
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="1 - specificity")
    ax.set_ylabel("Sensitivity")
    return finished_plot(fig, ax, "lower right", fontsize=8)


def _calibration_figure(report: Mapping[str, Any]) -> Figure:
    curves = report["curves"]
    bins, recal = curves["calibration"], curves["recalibration"]
    metrics = report["metrics"]
    fig = Figure(figsize=(4.8, 4.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], label="ideal", **_CHANCE)
    ax.plot(
        bins["predicted"],
        bins["observed"],
        marker="o",
        markersize=4,
        color=_COLOR,
        linewidth=1.2,
        label="observed (risk tenths)",
    )
    if recal.get("proba") is not None:
        ax.plot(
            recal["grid"],
            recal["proba"],
            color="#d62728",
            linewidth=1.4,
            label=f"logistic recalibration (a {fmt(recal['intercept'], 2)}, "
            f"b {fmt(recal['slope'], 2)})",
        )
    ax.text(
        0.04,
        0.96,
        f"slope {format_metric(metrics['calibration_slope'])}\n"
        f"intercept {format_metric(metrics['calibration_intercept'])}",
        transform=ax.transAxes,
        fontsize=7,
        va="top",
    )
    ax.set(xlim=(0, 1), ylim=(0, 1), aspect="equal", xlabel="Predicted probability")
    ax.set_ylabel("Observed fraction of class 1")
    return finished_plot(fig, ax, "lower right")


def _decision_figure(report: Mapping[str, Any]) -> Figure:
    decision = report["curves"]["decision"]
    prevalence = report["data"]["n_positive"] / report["data"]["n_patients"]
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.add_subplot()
    ax.axhline(0.0, color="#1d2330", linewidth=1, label="treat none")
    ax.plot(
        decision["thresholds"],
        decision["treat_all"],
        color="#9aa1ad",
        linewidth=1.2,
        linestyle="--",
        label="treat all",
    )
    ax.plot(
        decision["thresholds"],
        decision["model"],
        color=_COLOR,
        linewidth=1.4,
        label=report["model"]["name"],
    )
    ax.set(
        xlim=(0, 1),
        ylim=(-0.05, max(prevalence, 0.01) * 1.15),
        xlabel="Threshold probability",
        ylabel="Net benefit",
    )
    return finished_plot(fig, ax, "upper right")


def _survival_view(report: Mapping[str, Any]) -> dict[str, Any]:
    """The external report in the shape the cv survival figures draw (one model)."""
    name = report["model"]["name"]
    return {
        "models": {name: {"metrics": report["metrics"], **report["curves"]}},
        "curves": {"times": report["data"]["times"]},
    }


EXTERNAL_FIGURES: dict[str, dict[str, tuple[Callable[[Mapping[str, Any]], Figure], str]]] = {
    "binary": {
        "external_roc": (_roc_figure, "ROC curve on the external cohort"),
        "external_calibration": (_calibration_figure, "Calibration and logistic recalibration"),
        "external_decision_curve": (_decision_figure, "Decision curve (net benefit)"),
    },
    "multiclass": {},
    "regression": {},
    "survival": {
        f"external_{name}": (lambda report, draw=draw: draw(_survival_view(report)), caption)
        for name, (draw, caption) in SURVIVAL_FIGURES.items()
    },
}
"""Per task: figure name (file stem) -> (drawing function, caption)."""


def external_figures(report: Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure of the report's task (:data:`EXTERNAL_FIGURES`), drawn from the report."""
    figures = EXTERNAL_FIGURES[report["data"]["task"]]
    return {name: draw(report) for name, (draw, _) in figures.items()}


# --------------------------------------------------------------------------------------- html
def _metrics_table(metrics: Mapping[str, Any]) -> str:
    labels = {**TASK_METRIC_LABELS, **METRIC_LABELS}
    rows = [
        [
            f"<td>{escape(labels.get(name) or survival_metric_label(name))}</td>",
            num_cell(format_metric(value)),
        ]
        for name, value in metrics.items()
    ]
    return html_table(["Metric", "External cohort: estimate [95 % CI]"], rows)


def _harmonisation_text(data: Mapping[str, Any]) -> str:
    h = data["harmonisation"]
    text = f"ComBat by {h['column']!r}; training sites: " + (
        ", ".join(h["training_sites"]) if h["training_sites"] is not None else "not recorded"
    )
    if h["unseen_sites"]:
        text += (
            f"; external site(s) {', '.join(h['unseen_sites'])} unseen in training: "
            f"policy {h['policy']!r} applied (no site adjustment, pooled mean and variance)"
        )
    return escape(text)


def _cohorts_html(cohorts: Mapping[str, Any]) -> str:
    parts = []
    for key, title in (("training", "Training cohort"), ("external", "External cohort")):
        parts.append(f'<div class="cohort"><h4>{title}</h4>')
        if cohorts.get(key):
            parts.append(f'<div class="scroll">{cohort_html(cohorts[key])}</div>')
        else:
            parts.append(
                '<p class="muted">Not stored in this model (saved before radfusion kept the '
                "training cohort's Table 1); retrain it to compare.</p>"
            )
        parts.append("</div>")
    return '<div class="side-by-side">' + "".join(parts) + "</div>"


def _case_mix_html(mix: Mapping[str, Any]) -> str:
    if not mix.get("computed"):
        return f"<p><strong>Not computed:</strong> {escape(mix.get('reason'))}.</p>"
    auc = mix["auc"]
    mean = auc.get("mean")
    verdict = (
        "the cohorts are hard to tell apart"
        if mean is not None and mean < 0.6
        else "the case mix differs moderately"
        if mean is not None and mean < 0.75
        else "the case mix differs substantially"
    )
    parts = [
        f"<p>Membership model AUC (external vs training): <strong>{format_metric(auc)}</strong>"
        f" &mdash; {verdict}. {escape(mix['n_training'])} training and "
        f"{escape(mix['n_external'])} external patients.</p>",
        f'<p class="muted">{escape(mix["method"])}</p>',
    ]
    if mix.get("n_shared_ids"):
        parts.append(
            f"<p><strong>Warning:</strong> {escape(mix['n_shared_ids'])} patient id(s) appear in "
            f"both cohorts (first: {escape(', '.join(mix['shared_ids']))}); an external cohort "
            "should not share patients with the training one.</p>"
        )
    if mix.get("differences"):
        rows = [
            [
                f"<td>{escape(d['column'])}</td>",
                num_cell(fmt(d["training_mean"], 2)),
                num_cell(fmt(d["external_mean"], 2)),
                num_cell(fmt(d["smd"], 2)),
            ]
            for d in mix["differences"]
        ]
        parts.append("<h4>Largest standardised mean differences</h4>")
        parts.append(
            '<div class="scroll">'
            + html_table(["Column", "Training mean", "External mean", "SMD"], rows)
            + "</div>"
        )
    return "".join(parts)


_EXTRA_CSS = (
    ".side-by-side{display:flex;gap:1.5rem;flex-wrap:wrap}"
    ".side-by-side .cohort{flex:1 1 420px;min-width:0}"
)


def _binary_outcome(model, data) -> tuple[str, str, str]:
    outcome = f"{escape(data['label'])}: {escape(model['classes'][1])} is positive"
    counts = (
        f"{escape(data['n_patients'])} ({escape(data['n_positive'])} / "
        f"{escape(data['n_negative'])})"
    )
    return outcome, "External patients (positive / negative)", counts


def _multiclass_outcome(model, data) -> tuple[str, str, str]:
    counts = f"{escape(data['n_patients'])} ({escape(json.dumps(data['class_counts']))})"
    return f"{escape(data['label'])} (multiclass)", "External patients (per class)", counts


def _regression_outcome(model, data) -> tuple[str, str, str]:
    counts = f"{escape(data['n_patients'])} (mean outcome {fmt(data['outcome_mean'], 2)})"
    return f"{escape(data['label'])} (regression)", "External patients", counts


def _survival_outcome(model, data) -> tuple[str, str, str]:
    follow = data.get("median_follow_up")
    counts = (
        f"{escape(data['n_patients'])} ({escape(data['events'])} events; median follow-up "
        f"{fmt(follow, 1) if follow is not None else 'not reached'})"
    )
    horizons = ", ".join(f"{h:g}" for h in data["horizons"])
    return (
        f"time {escape(data['label'])} (survival; horizons {escape(horizons)})",
        "External patients (events)",
        counts,
    )


_OUTCOME = {
    "binary": _binary_outcome,
    "multiclass": _multiclass_outcome,
    "regression": _regression_outcome,
    "survival": _survival_outcome,
}


def _binary_performance(report, svgs, captions) -> tuple[list[str], list[tuple[str, str]]]:
    metrics = report["metrics"]
    discrimination = {k: v for k, v in metrics.items() if not k.startswith("calibration")}
    calibration = {k: v for k, v in metrics.items() if k.startswith("calibration") or k == "brier"}
    body = [
        "<h3>Table 1: training and external cohorts</h3>",
        _cohorts_html(report["cohorts"]),
        '<h2 id="performance">Performance on the external cohort</h2>',
        f'<p class="muted">{escape(report.get("ci_method"))}</p>',
        f'<div class="scroll">{_metrics_table(discrimination)}</div>',
        figure_html("external_roc", svgs["external_roc"], captions["external_roc"], single=True),
        '<h2 id="calibration">Calibration</h2>',
        f'<div class="scroll">{_metrics_table(calibration)}</div>',
        figure_html(
            "external_calibration",
            svgs["external_calibration"],
            captions["external_calibration"],
            single=True,
        ),
        '<h2 id="decision-curve">Decision curve</h2>',
        figure_html(
            "external_decision_curve",
            svgs["external_decision_curve"],
            captions["external_decision_curve"],
            single=True,
        ),
    ]
    return body, [("calibration", "Calibration"), ("decision-curve", "Decision curve")]


def _metrics_performance(report, svgs, captions) -> tuple[list[str], list[tuple[str, str]]]:
    body = [
        '<h2 id="performance">Performance on the external cohort</h2>',
        f'<p class="muted">{escape(report.get("ci_method"))}</p>',
        f'<div class="scroll">{_metrics_table(report["metrics"])}</div>',
    ]
    figures = EXTERNAL_FIGURES[report["data"]["task"]]
    body += [
        figure_html(name, svgs[name], escape(caption), single=True)
        for name, (_, caption) in figures.items()
    ]
    if not figures:
        body.append(f"<p>{escape(NOT_COMPUTED)}</p>")
    return body, []


_PERFORMANCE = {
    "binary": _binary_performance,
    "multiclass": _metrics_performance,
    "regression": _metrics_performance,
    "survival": _metrics_performance,
}


def render_external_html(
    report: Mapping[str, Any], *, svgs: Mapping[str, str] | None = None
) -> str:
    """The self-contained external-validation HTML page (inline SVG, no network)."""
    if svgs is None:
        svgs = {name: svg_text(fig, name) for name, fig in external_figures(report).items()}
    svgs = {name: inline_svg(svg) for name, svg in svgs.items()}
    model, data = report["model"], report["data"]
    task = data["task"]
    training = model.get("training") or {}
    outcome, count_title, counts = _OUTCOME[task](model, data)
    summary = html_table(
        None,
        [
            ["<th>Model</th>", f"<td>{escape(model['name'])} ({escape(model['path'])})</td>"],
            ["<th>Model SHA-256</th>", f"<td><code>{escape(model['sha256'])}</code></td>"],
            ["<th>Outcome</th>", f"<td>{outcome}</td>"],
            [f"<th>{count_title}</th>", f"<td>{counts}</td>"],
            *(
                [["<th>Harmonisation</th>", f"<td>{_harmonisation_text(data)}</td>"]]
                if data.get("harmonisation")
                else []
            ),
            [
                "<th>Training patients</th>",
                f"<td>{escape(training.get('n_patients'))} "
                f"({escape(json.dumps(training.get('class_counts')))})</td>",
            ],
        ],
    )
    captions = {
        "external_roc": "ROC curve of the saved model on the external cohort; band: pointwise "
        "95 % bootstrap (patients resampled within class).",
        "external_calibration": "Observed fraction of class 1 against the mean predicted "
        "probability in ten equal-size risk groups, and the logistic recalibration curve "
        "expit(a + b logit(p)); calibration slope b and intercept (calibration in the large, "
        "logit as offset) with 95 % CIs.",
        "external_decision_curve": "Net benefit TP/N - FP/N x t/(1 - t) against the threshold "
        "probability t, against treating everyone or no one.",
    }
    performance, extra_sections = _PERFORMANCE[task](report, svgs, captions)
    sections = [("cohort", "Cohorts"), ("performance", "Performance"), *extra_sections]
    sections += [("case-mix", "Case mix"), ("provenance", "Provenance")]
    nav = " ".join(f'<a href="#{a}">{t}</a>' for a, t in sections)
    body = [
        "<h1>radfusion external validation report</h1>",
        f'<p class="muted">radfusion {escape(report.get("radfusion_version"))} &middot; '
        f"external-validation schema {escape(report['schema_version'])} &middot; task "
        f"{escape(task)} &middot; seed {escape(report['seed'])}</p>",
        f"<nav>{nav}</nav>",
        evaluability_html(report),
        '<h2 id="cohort">Cohorts</h2>',
        summary,
        *performance,
    ]
    body += [
        '<h2 id="case-mix">Case mix: how different are the cohorts?</h2>',
        _case_mix_html(report["case_mix"]),
        '<h2 id="provenance">Provenance</h2>',
        "<h3>Configuration</h3>",
        f"<pre>{escape(json.dumps(report['config'], indent=2, ensure_ascii=False))}</pre>",
        "<h3>Model parameters</h3>",
        f"<pre>{escape(json.dumps(model.get('params'), indent=2, ensure_ascii=False))}</pre>",
        "<h3>Inputs</h3>",
        f'<div class="scroll">{inputs_html(report["inputs"])}</div>',
        "<h3>Software versions</h3>",
        versions_html(report["versions"]),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        "<title>radfusion external validation report</title>\n"
        f"<style>{REPORT_CSS}{_EXTRA_CSS}</style>\n"
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


def write_external_report(
    report: Mapping[str, Any], predictions: pd.DataFrame, out_dir: str | Path
) -> dict[str, Path]:
    """Write ``report.json``, ``predictions.csv``, ``report.html`` and ``figures/`` as one set
    (:func:`radfusion.features.files.write_set`, with the cv report's journal name)."""
    out_dir = Path(out_dir)
    (out_dir / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    settle_report(out_dir)
    members: dict[Path, Content] = {}
    svgs = {}
    for name, fig in external_figures(report).items():
        svgs[name] = svg_text(fig, name)
        members[out_dir / FIGURE_DIR / f"{name}.svg"] = svgs[name]
        members[out_dir / FIGURE_DIR / f"{name}.png"] = png_bytes(fig)
    members[out_dir / REPORT_FILES["json"]] = report_json_text(report)
    members[out_dir / REPORT_FILES["csv"]] = predictions.to_csv(index=False, lineterminator="\n")
    members[out_dir / REPORT_FILES["html"]] = render_external_html(report, svgs=svgs)
    write_set(out_dir / REPORT_JOURNAL, members)
    return {
        **{key: out_dir / name for key, name in REPORT_FILES.items()},
        "figures": out_dir / FIGURE_DIR,
    }
