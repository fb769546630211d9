"""The CV report of a multiclass or regression target: ``report.json``, HTML, figures.

The binary report (:mod:`radfusion.pipeline.report`) is built around one probability per patient:
ROC, precision-recall and decision curves, calibration, DeLong tests, explanations, checklists.
For a target with three or more classes, or a continuous one, this module writes a report
with the same top-level keys (so consumers can rely on them), the task's metrics
(:mod:`radfusion.pipeline.targets`) and the sections that make sense for it; the binary-only ones
are null or empty and the HTML says so.

report.json fields that differ from the binary schema::

    task               "multiclass" | "regression"
    data               n_patients; groups {group: number of columns}; multiclass:
                       label_mapping {original label: code 0..K-1}, classes [label of code
                       0, 1, ...], class_counts {label: n}; regression: target {mean, sd
                       (ddof 1), min, max}
    models[m]          metrics {metric: {mean, ci_low, ci_high}} in
                       :data:`radfusion.pipeline.targets.MULTICLASS_METRICS` or
                       :data:`~radfusion.pipeline.targets.REGRESSION_METRICS` order;
                       confusion_matrix: multiclass K x K mean counts over repeats (rows: true
                       class, columns: predicted = most probable class, both in code order),
                       regression null; curves: multiclass {"roc_ovr": {label: {"tpr"}}}
                       one-vs-rest ROC on curves.fpr, mean over repeats; regression
                       {"observed", "predicted"} per patient in sorted id order, the
                       prediction averaged over repeats
    best               the model with the highest mean of
                       :data:`radfusion.pipeline.targets.PRIMARY_METRIC` (first one on a tie)
    threshold          null
    cohort             as given, else {"columns": [{"label", "n"}: All (and each class)],
                       "variables": [], "groups": []} (the shape of
                       :func:`radfusion.pipeline.statistics.describe_cohort`, which is binary only)
    comparisons        {"method": why there are no tests, "tests": []}
    curves             multiclass {"fpr": grid}; regression null
    methods            {"text": [paragraph]}
    checklists         null
    explanations       null

``predictions.csv`` holds ``patient_id, model, repeat, fold, y_true, proba_0 .. proba_{K-1}``
(multiclass, ``y_true`` the class code) or ``... y_true, prediction`` (regression).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_curve

from ..targets import PRIMARY_METRIC, get_task, task_metrics
from ..validation import CI_LEVEL, CURVE_GRID, CVResult, interpolate_roc, output_cube
from ._config import model_record
from ._figures import (
    fmt_value,
    inline_svg,
    labelled_panels,
    model_colors,
    model_label,
    style_panel,
    subplot_panels,
    svg_text,
)
from ._groups import groups_html
from ._headline import evaluability_html
from ._html import (
    REPORT_CSS,
    cohort_html,
    escape,
    figure_html,
    fmt,
    format_metric,
    html_table,
    inputs_html,
    jsonable,
    num_cell,
    reproduce_html,
    resolve_label_mapping,
    run_fields,
    versions_html,
)
from ._methods import (
    counted,
    join_list,
    recorded_learner,
    software_paragraph,
    stacking_combiner,
)
from ._reproduce import reproduce_steps

__all__ = [
    "TASK_FIGURES",
    "TASK_METRIC_LABELS",
    "build_task_report",
    "render_task_html",
    "task_figures",
]

TASK_METRIC_LABELS = {
    "roc_auc_ovr": "ROC AUC (one-vs-rest, macro)",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "f1_macro": "F1 (macro)",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "log_loss": "Log loss",
    "brier": "Brier score (multiclass)",
    "r2": "R²",
    "mae": "MAE",
    "rmse": "RMSE",
    "pearson_r": "Pearson r",
}
"""Display names of the multiclass and regression metrics."""

_CI = f"{CI_LEVEL:.0%} confidence intervals are percentile bootstrap intervals over patients"
CI_METHODS = {
    "multiclass": (
        f"Point estimates are the mean over CV repeats of each metric computed on that "
        f"repeat's pooled out-of-fold predictions; {_CI} (resampled with replacement within "
        "each class, the same resamples for every model, the repeat-averaged metric "
        "recomputed per replicate). The predicted class is the most probable one; ROC AUC is "
        "the unweighted mean of the one-vs-rest AUCs; F1, precision and recall are macro "
        "averages over classes; the Brier score is the mean over patients of the squared "
        "distance between the probability vector and the one-hot outcome (0 to 2)."
    ),
    "regression": (
        f"Point estimates are the mean over CV repeats of each metric computed on that "
        f"repeat's pooled out-of-fold predictions; {_CI} (resampled with replacement, the "
        "same resamples for every model, the repeat-averaged metric recomputed per "
        "replicate). R² is 1 - mean squared error / variance of the observed values; MAE "
        "and RMSE are in the target's units; Pearson r correlates predicted and observed "
        "values."
    ),
}
"""The ``ci_method`` text of each task."""

COMPARISON_METHOD = (
    "DeLong tests compare the ROC AUCs of binary predictions; they are not computed for a "
    "{task} target."
)

NOT_COMPUTED = (
    "ROC, precision-recall and decision curves, calibration, DeLong comparisons, "
    "explanations and reporting checklists are defined for binary targets only and are not "
    "computed for this task."
)


# --------------------------------------------------------------------------------------------
# report.json
# --------------------------------------------------------------------------------------------
def _confusion(y: np.ndarray, proba: np.ndarray, k: int) -> np.ndarray:
    """Mean K x K counts over repeats, rows true class, columns most probable class."""
    counts = np.zeros((k, k))
    for repeat in proba:
        np.add.at(counts, (y, repeat.argmax(axis=1)), 1.0)
    return counts / len(proba)


def _ovr_curves(y: np.ndarray, proba: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """One-vs-rest ROC curve of each class, mean over repeats."""
    return {
        label: {
            "tpr": np.mean(
                [
                    interpolate_roc(*roc_curve(y == c, repeat[:, c], drop_intermediate=False)[:2])
                    for repeat in proba
                ],
                axis=0,
            )
        }
        for c, label in enumerate(classes)
    }


class _Classes:
    """What a multiclass report says of its outcome: class counts, confusion matrices and
    one-vs-rest ROC curves."""

    confusion = True

    def describe(self, y, values, mapping, models, n):
        """Data fields, per-model entries, the default Table 1 columns and shared curves."""
        k = values.shape[-1]
        y = y.astype(np.int64)
        inverse = {code: label for label, code in mapping.items()}
        classes = [inverse.get(c, str(c)) for c in range(k)]
        counts = np.bincount(y, minlength=k)
        data = {
            "label_mapping": mapping,
            "classes": classes,
            "class_counts": {label: int(counts[c]) for c, label in enumerate(classes)},
        }
        per_model = {
            name: {
                "confusion_matrix": _confusion(y, values[m], k),
                "curves": {"roc_ovr": _ovr_curves(y, values[m], classes)},
            }
            for m, name in enumerate(models)
        }
        cohort = [{"label": "All", "n": n}] + [
            {"label": label, "n": int(counts[c])} for c, label in enumerate(classes)
        ]
        return data, per_model, cohort, {"fpr": CURVE_GRID}

    def target(self, data) -> str:
        counts = ", ".join(f"{label} {n}" for label, n in data["class_counts"].items())
        return f"a {len(data['class_counts'])}-class outcome ({counts} patients)"

    def summary_rows(self, data) -> list[list[str]]:
        e = escape
        counts = ", ".join(f"{e(k)}: {e(v)}" for k, v in data["class_counts"].items())
        mapping = ", ".join(f"{e(k)} &rarr; {e(v)}" for k, v in data["label_mapping"].items())
        return [
            ["<th>Patients per class</th>", f"<td>{counts}</td>"],
            ["<th>Label mapping</th>", f"<td>{mapping}</td>"],
        ]


class _Values:
    """What a regression report says of its outcome: its distribution, and observed against
    predicted values."""

    confusion = False

    def describe(self, y, values, mapping, models, n):
        y = y.astype(np.float64)
        data = {
            "target": {
                "mean": float(y.mean()),
                "sd": float(y.std(ddof=1)) if n > 1 else math.nan,
                "min": float(y.min()),
                "max": float(y.max()),
            }
        }
        per_model = {
            name: {
                "confusion_matrix": None,
                "curves": {"observed": y, "predicted": values[m, ..., 0].mean(axis=0)},
            }
            for m, name in enumerate(models)
        }
        return data, per_model, [{"label": "All", "n": n}], None

    def target(self, data) -> str:
        t = data["target"]
        return (
            f"a continuous outcome (mean {fmt_value(t['mean'])}, SD {fmt_value(t['sd'])}, range "
            f"{fmt_value(t['min'])} to {fmt_value(t['max'])})"
        )

    def summary_rows(self, data) -> list[list[str]]:
        t, f = data["target"], fmt
        return [
            [
                "<th>Target mean (SD) [min, max]</th>",
                f"<td>{f(t['mean'])} ({f(t['sd'])}) [{f(t['min'])}, {f(t['max'])}]</td>",
            ]
        ]


CLASSES = _Classes()
"""The outcome part of a multiclass report (:func:`build_task_report`, ``part=CLASSES``)."""
VALUES = _Values()
"""The outcome part of a regression report (``part=VALUES``)."""


def _methods_text(report: Mapping[str, Any], part) -> list[str]:
    """A few paragraphs on the CV design, the models and the metrics, from the report."""
    config = report.get("config") or {}
    data = report["data"]
    task = get_task(report["task"])
    folds, repeats = config.get("folds"), config.get("repeats")
    splitter = type(task.splitter(2, 1, 0)).__name__
    kind = "stratified " if task.stratified else ""
    if folds and repeats:
        scheme = (
            f"{repeats} x repeated {kind}{folds}-fold cross-validation"
            if repeats > 1
            else f"{kind}{folds}-fold cross-validation (a single repetition)"
        )
    else:
        scheme = f"repeated {kind}k-fold cross-validation"
    target = part.target(data)
    groups = data.get("groups") or {}
    group_text = (
        f" in {len(groups)} feature group(s) ({join_list(list(groups))}, "
        f"{sum(groups.values())} columns)"
        if groups
        else ""
    )
    models = list(report["models"])
    fused = [m for m in models if m in set(report.get("fused") or ())]
    params = model_record(config)
    learner = recorded_learner(params["learner"])[0] if params.get("learner") else None
    design = (
        f"Performance was estimated by {scheme} (scikit-learn {splitter}, seed "
        f"{report['seed']}) on {data['n_patients']} patients{group_text} with {target}; every "
        f"model was evaluated on the same splits. Each patient is one row, so all of a "
        f"patient's data are in the same fold. {counted(len(models), 'model')} "
        f"{'was' if len(models) == 1 else 'were'} compared: "
        f"{join_list(models)}"
        + (f" (fusion strategies: {join_list(fused)})" if fused else "")
        + (f", with the {learner} learner" if learner else "")
        + ". Every data-dependent step was refitted inside each training fold; "
        "hyperparameters were fixed in advance, not tuned on the data."
    )
    combiner = stacking_combiner(params, task.name)
    for name, what in (
        ("stacking", "Stacking combined one base model per group and learner"),
        ("pooled", "Pooled stacking combined one base model per learner on all groups' columns"),
    ):
        if name in fused:
            design += (
                f" {what} by the mean of their outputs (equal weights, nothing fitted on top)."
                if combiner == "mean"
                else f" {what} with the {combiner} combiner, fitted on inner out-of-fold "
                "outputs of the training rows."
            )
    names = [_in_sentence(TASK_METRIC_LABELS.get(m, m)) for m in task.metrics]
    primary = TASK_METRIC_LABELS.get(task.primary_metric, task.primary_metric)
    metrics = (
        f"Models were scored by {join_list(names)}, and ranked by {primary}. {report['ci_method']}"
    )
    return [design, metrics, software_paragraph(report)]


def _in_sentence(label: str) -> str:
    """A metric label inside a sentence: "Balanced accuracy" -> "balanced accuracy"; acronyms
    and names ("ROC AUC", "F1", "Brier score") unchanged."""
    if label[1:2].islower() and not label.startswith(("Brier", "Pearson")):
        return label[0].lower() + label[1:]
    return label


def build_task_report(
    result: CVResult,
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    config: Mapping[str, Any],
    seed: int,
    inputs: Mapping[str, str | Path],
    groups: Mapping[str, Sequence[str]],
    cohort: Mapping[str, Any] | None = None,
    part: _Classes | _Values,
) -> dict[str, Any]:
    """Assemble ``report.json`` of a multiclass or regression run (module docstring: schema).

    Parameters
    ----------
    result : CVResult
        Output of :func:`radfusion.pipeline.validation.cross_validate_models` for a multiclass
        or regression target; its label mapping names the classes.
    summary : dict
        Output of :func:`radfusion.pipeline.validation.summarize`; its models, in order, are
        reported.
    config : mapping
        The run configuration, stored as given (``folds``, ``repeats``, ``learner`` and
        ``command`` are used by the methods text and the re-run instructions).
    seed : int
        The seed of the run.
    inputs : mapping of str to path
        Input files to fingerprint (SHA-256).
    groups : mapping of str to sequence of str
        Feature groups and their columns; the report stores the column counts.
    cohort : mapping, optional
        A Table 1 in the shape of :func:`radfusion.pipeline.statistics.describe_cohort`; by default
        the patient counts (overall and per class).
    part : CLASSES or VALUES
        What the report says of the outcome (classes, or a continuous value).

    Returns
    -------
    dict
        JSON-serialisable, the same for the same arguments (byte-identical JSON).
    """
    task = result.task.name
    metric_names = result.task.metrics
    config = dict(config or {})
    models = list(summary)
    _, _, values, y = output_cube(result.predictions, result.task, models)
    n = len(y)
    mapping = resolve_label_mapping(result.label_mapping, config, values.shape[-1])
    described, per_model, default_cohort, curves = part.describe(y, values, mapping, models, n)
    data: dict[str, Any] = {"n_patients": n, **described}
    data["groups"] = {name: len(columns) for name, columns in groups.items()}

    report_models = {
        name: {
            "metrics": {
                metric: dict(summary[name][metric])
                for metric in metric_names
                if metric in summary[name]
            },
            **per_model[name],
        }
        for name in models
    }
    primary = result.task.primary_metric
    scores = {
        name: summary[name][primary]["mean"]
        for name in models
        if primary in summary[name] and math.isfinite(summary[name][primary]["mean"])
    }
    best = max(scores, key=scores.__getitem__) if scores else None  # first of equals wins
    report = {
        **run_fields(task, config, seed, data, inputs),
        "ci_method": CI_METHODS[task],
        "models": report_models,
        "fused": [name for name in report_models if name in result.fused],
        "best": best,
        "threshold": None,
        "cohort": cohort
        if cohort is not None
        else {"columns": default_cohort, "variables": [], "groups": []},
        "comparisons": {"method": COMPARISON_METHOD.format(task=task), "tests": []},
        "curves": curves,
        "reproduce": reproduce_steps(config, inputs),
    }
    report = jsonable(report)
    report["methods"] = {"text": _methods_text(report, part)}
    report["checklists"] = None
    report["explanations"] = None
    return report


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def observed_predicted_figure(report: Mapping[str, Any]) -> Figure:
    """Regression: one panel per model, predicted against observed, identity line, R²."""
    models = report["models"]
    colors = model_colors(list(models))
    fig, axes = subplot_panels(len(models))
    points = [
        v
        for model in models.values()
        for key in ("observed", "predicted")
        for v in model["curves"][key]
        if v is not None
    ]
    low, high = (min(points), max(points)) if points else (0.0, 1.0)
    pad = 0.05 * (high - low) or 1.0
    limits = (low - pad, high + pad)
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        curves = model["curves"]
        observed = np.array(curves["observed"], dtype=float)
        predicted = np.array([np.nan if v is None else v for v in curves["predicted"]], dtype=float)
        ax.plot(limits, limits, linestyle="--", color="#9aa1ad", linewidth=1)
        ax.scatter(observed, predicted, s=8, color=colors[name], alpha=0.7, linewidths=0)
        r2 = model["metrics"].get("r2", {})
        style_panel(
            ax,
            f"{model_label(name)}\nR² {fmt_value(r2.get('mean'))} [{fmt_value(r2.get('ci_low'))}, "
            f"{fmt_value(r2.get('ci_high'))}]",
            xlim=limits,
            ylim=limits,
        )
    return labelled_panels(fig, "Observed", "Predicted (out-of-fold, mean over repeats)")


def _short(label: str, width: int = 12) -> str:
    label = model_label(str(label))
    return label if len(label) <= width else label[: width - 1] + "…"


def multiclass_confusion_figure(report: Mapping[str, Any]) -> Figure:
    """Multiclass: one heatmap per model, mean counts over repeats (rows: true class)."""
    models = report["models"]
    classes = [_short(c) for c in report["data"]["classes"]]
    k = len(classes)
    fig, axes = subplot_panels(len(models), panel_size=max(2.3, 0.55 * k + 1.0))
    edges = np.arange(k + 1) - 0.5  # vector cells (imshow would embed a raster)
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        matrix = np.array(model["confusion_matrix"], dtype=float)
        top = max(matrix.max(), 1.0)
        ax.pcolormesh(edges, edges, matrix, cmap="Blues", vmin=0, vmax=top)
        ax.set(xlim=(-0.5, k - 0.5), ylim=(k - 0.5, -0.5), aspect="equal")
        for (i, j), value in np.ndenumerate(matrix):
            ax.text(
                j,
                i,
                f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > top / 2 else "#1d2330",
            )
        ax.set_xticks(range(k), classes, fontsize=6, rotation=45, ha="right")
        ax.set_yticks(range(k), classes, fontsize=6)
        ax.set_title(model_label(name), fontsize=8)
    return labelled_panels(fig, "Predicted class (most probable)", "True class", fontsize=8)


def roc_ovr_figure(report: Mapping[str, Any]) -> Figure:
    """Multiclass: one panel per model, the one-vs-rest ROC curve of every class."""
    models = report["models"]
    classes = report["data"]["classes"]
    colors = model_colors(list(classes))
    grid = np.asarray(report["curves"]["fpr"], dtype=float)
    fig, axes = subplot_panels(len(models))
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa1ad", linewidth=1)
        for label, curve in model["curves"]["roc_ovr"].items():
            ax.plot(grid, curve["tpr"], color=colors[label], linewidth=1.2, label=_short(label))
        auc = model["metrics"].get("roc_auc_ovr", {})
        style_panel(
            ax,
            f"{model_label(name)}\nAUC (OvR) {fmt_value(auc.get('mean'))} "
            f"[{fmt_value(auc.get('ci_low'))}, {fmt_value(auc.get('ci_high'))}]",
        )
        ax.legend(loc="lower right", fontsize=6, frameon=False)
    return labelled_panels(fig, "False positive rate (class vs rest)", "True positive rate")


TASK_FIGURES: dict[str, dict[str, tuple[Callable[[Mapping[str, Any]], Figure], str]]] = {
    "multiclass": {
        "confusion_matrix": (
            multiclass_confusion_figure,
            "Mean counts over repeats; rows are the true class, columns the "
            "most probable predicted class.",
        ),
        "roc_ovr": (
            roc_ovr_figure,
            "One-vs-rest ROC curve of each class (pooled out-of-fold probabilities, "
            "mean over repeats); macro AUC with 95 % bootstrap CI.",
        ),
    },
    "regression": {
        "observed_predicted": (
            observed_predicted_figure,
            "Out-of-fold prediction (mean over repeats) against the "
            "observed value per patient; dashed: identity line; R² with "
            "95 % bootstrap CI.",
        ),
    },
}
"""Task -> figure name (file stem and HTML anchor) -> (drawing function, caption)."""


def task_figures(report: Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure of the report's task (:data:`TASK_FIGURES`), drawn from the report."""
    return {name: draw(report) for name, (draw, _) in TASK_FIGURES[report["task"]].items()}


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------
_SECTIONS = (
    ("cohort", "Cohort"),
    ("methods", "Methods"),
    ("performance", "Performance"),
    ("confusion", "Confusion matrices"),
    ("figures", "Figures"),
    ("not-computed", "Not computed"),
    ("reproduce", "Re-run"),
    ("provenance", "Provenance"),
)


def _summary_html(report: Mapping[str, Any], part) -> str:
    e = escape
    data = report["data"]
    rows = [
        ["<th>Task</th>", f"<td>{e(report['task'])}</td>"],
        ["<th>Patients</th>", f"<td>{e(data['n_patients'])}</td>"],
    ]
    return html_table(None, rows + part.summary_rows(data))


def _performance_html(report: Mapping[str, Any]) -> str:
    best = report.get("best")
    primary = TASK_METRIC_LABELS[PRIMARY_METRIC[report["task"]]]
    names = list(report["models"])
    metrics = [
        m
        for m in task_metrics(report["task"])
        if all(m in report["models"][n]["metrics"] for n in names)
    ]
    rows = []
    for name in names:
        values = report["models"][name]["metrics"]
        rows.append(
            [f"<td>{escape(name)}{f' (best {escape(primary)})' if name == best else ''}</td>"]
            + [f'<td class="num wrap">{escape(format_metric(values[m]))}</td>' for m in metrics]
        )
    return html_table(
        ["Model"] + [escape(TASK_METRIC_LABELS.get(m, m)) for m in metrics],
        rows,
        classes=["best" if name == best else "" for name in names],
    )


def _confusion_tables_html(report: Mapping[str, Any]) -> str:
    classes = report["data"]["classes"]
    parts = []
    for name, model in report["models"].items():
        rows = [
            [f"<th>{escape(label)}</th>"] + [num_cell(fmt(v, 1)) for v in row]
            for label, row in zip(classes, model["confusion_matrix"], strict=True)
        ]
        parts.append(f"<h3>{escape(name)}</h3>")
        parts.append(html_table(["True \\ predicted"] + [escape(c) for c in classes], rows))
    return "".join(parts)


def _provenance_html(report: Mapping[str, Any]) -> str:
    e = escape
    inputs = inputs_html(report["inputs"])
    versions = versions_html(report["versions"])
    config = json.dumps(report.get("config") or {}, indent=2, ensure_ascii=False)
    return (
        "<h3>Configuration</h3>"
        f"<pre>{e(config)}</pre>"
        f'<h3>Inputs</h3><div class="scroll">{inputs}</div>'
        f"<h3>Software versions</h3>{versions}"
    )


def render_task_html(
    report: Mapping[str, Any], svgs: Mapping[str, str] | None = None, *, part: _Classes | _Values
) -> str:
    """The self-contained HTML report of a multiclass or regression run (no network access).

    Drawn from ``report`` alone; ``svgs`` are the figures as standalone SVG text
    (:func:`radfusion.pipeline.report._figures.svg_text`), drawn here when None.
    """
    e = escape
    task = report["task"]
    classes = part.confusion
    if svgs is None:
        svgs = {name: svg_text(fig, name) for name, fig in task_figures(report).items()}
    figures = [
        figure_html(name, inline_svg(svgs[name]), e(caption))
        for name, (_, caption) in TASK_FIGURES[task].items()
        if name in svgs
    ]
    nav = " ".join(
        f'<a href="#{anchor}">{e(title)}</a>'
        for anchor, title in _SECTIONS
        if anchor != "confusion" or classes
    )
    methods = report.get("methods") or {"text": []}
    title = f"radfusion cross-validation report ({task})"
    body = [
        f"<h1>{e(title)}</h1>",
        f'<p class="muted">radfusion {e(report.get("radfusion_version"))} &middot; report '
        f"schema {e(report.get('schema_version'))} &middot; task {e(task)} &middot; seed "
        f"{e(report.get('seed'))}</p>",
        f"<nav>{nav}</nav>",
        evaluability_html(report),
        '<h2 id="cohort">Cohort</h2>',
        _summary_html(report, part),
        f'<div class="scroll">{cohort_html(report["cohort"])}</div>'
        if report.get("cohort")
        else "",
        '<h2 id="methods">Methods</h2>',
        '<p class="muted">Generated from this report, accurate to the configuration that was '
        "run; edit freely for a paper.</p>",
        '<div class="methods">' + "".join(f"<p>{e(p)}</p>" for p in methods["text"]) + "</div>",
        '<h2 id="performance">Cross-validated performance</h2>',
        f'<p class="muted">Mean [95 % CI]. {e(report.get("ci_method"))}</p>',
        f'<div class="scroll">{_performance_html(report)}</div>',
        groups_html(report.get("groups")),
    ]
    if classes:
        body += [
            '<h2 id="confusion">Confusion matrices</h2>',
            '<p class="muted">Mean counts over the CV repeats; rows are the true class, '
            "columns the predicted (most probable) class.</p>",
            f'<div class="scroll">{_confusion_tables_html(report)}</div>',
        ]
    body += [
        '<h2 id="figures">Figures</h2>',
        *figures,
        '<h2 id="not-computed">Not computed for this task</h2>',
        f"<p>{e(NOT_COMPUTED)}</p>",
        f'<p class="muted">{e(report["comparisons"]["method"])}</p>',
        '<h2 id="reproduce">How to re-run</h2>',
        reproduce_html(report["reproduce"]),
        '<h2 id="provenance">Provenance</h2>',
        _provenance_html(report),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{REPORT_CSS}</style>\n"
        "</head>\n<body>\n" + "\n".join(part for part in body if part) + "\n</body>\n</html>\n"
    )
