"""The report's figures, drawn from ``report.json`` content alone, as deterministic SVG and PNG.

Every function takes the report dict (see :mod:`radfusion.pipeline.report`) and returns a matplotlib
:class:`~matplotlib.figure.Figure` built without pyplot (no global state, no GUI backend).
:func:`svg_text` and :func:`png_bytes` serialise a figure reproducibly: the same report gives
the same bytes (fixed hash salt, no dates, no software tags).
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any

import matplotlib
import numpy as np
from matplotlib.figure import Figure

__all__ = [
    "FIGURES",
    "calibration_figure",
    "confusion_figure",
    "decision_curve_figure",
    "forest_figure",
    "group_contributions_figure",
    "importance_figure",
    "shap_figure",
    "inline_svg",
    "png_bytes",
    "pr_figure",
    "roc_bands_figure",
    "roc_figure",
    "svg_text",
]

PNG_DPI = 200
_GRID = np.linspace(0.0, 1.0, 101)
_PANEL_COLUMNS = 4
_CHANCE = {"linestyle": "--", "color": "#9aa1ad", "linewidth": 1}


def labelled_panels(fig: Figure, xlabel: str, ylabel: str, fontsize: float = 9) -> Figure:
    """A figure of panels with its shared axis labels, laid out."""
    fig.supxlabel(xlabel, fontsize=fontsize)
    fig.supylabel(ylabel, fontsize=fontsize)
    fig.tight_layout()
    return fig


def finished_plot(fig: Figure, ax: Any, legend: str, fontsize: float = 7) -> Figure:
    """A one-plot figure with its grid and its legend at ``legend``, laid out."""
    ax.grid(True, linewidth=0.4, alpha=0.6)
    ax.legend(loc=legend, fontsize=fontsize, frameon=False)
    fig.tight_layout()
    return fig


def style_panel(
    ax: Any, title: str, xlim: tuple[float, float] = (0, 1), ylim: tuple[float, float] = (0, 1.01)
) -> None:
    """One model's square panel: its title, the axis limits, small ticks and a light grid."""
    ax.set_title(title, fontsize=8)
    ax.set(xlim=xlim, ylim=ylim, aspect="equal")
    ax.tick_params(labelsize=7)
    ax.grid(True, linewidth=0.3, alpha=0.6)


def model_colors(models: list[str]) -> dict[str, Any]:
    """One colour per model, the same in every figure (tab10, tab20 beyond ten models)."""
    cmap = matplotlib.colormaps["tab10" if len(models) <= 10 else "tab20"]
    return {name: cmap(i % cmap.N) for i, name in enumerate(models)}


def model_label(name: str) -> str:
    return name.replace("$", r"\$")  # no mathtext in model names


def fmt_value(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def floats(values: Any) -> np.ndarray:
    """A JSON list of numbers (null: NaN, not drawn) as a float array."""
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def subplot_panels(n: int, panel_size: float = 2.7) -> tuple[Figure, list[Any]]:
    columns = min(_PANEL_COLUMNS, n)
    rows = math.ceil(n / columns)
    fig = Figure(figsize=(panel_size * columns + 0.4, panel_size * rows + 0.3))
    axes = [fig.add_subplot(rows, columns, i + 1) for i in range(n)]
    return fig, axes


def model_panels(report: Mapping[str, Any]) -> tuple[Figure, list[tuple[Any, str, Any, Any]]]:
    """One panel per model of ``report``: the figure and, per model, its axes, name, report
    entry and colour."""
    models = report["models"]
    colors = model_colors(list(models))
    fig, axes = subplot_panels(len(models))
    panels = [
        (ax, name, model, colors[name])
        for ax, (name, model) in zip(axes, models.items(), strict=True)
    ]
    return fig, panels


def split_models(report: Mapping[str, Any]) -> list[tuple[str, list[str]]]:
    """``[("Single groups", names), ("Fused models", names)]`` of a report's models (its
    ``fused`` list says which fuse groups), empty kinds left out."""
    models, fused = report["models"], set(report.get("fused") or ())
    single = [name for name in models if name not in fused]
    fused = [name for name in models if name in fused]
    return [
        (title, names)
        for title, names in (("Single groups", single), ("Fused models", fused))
        if names
    ]


def auc_text(auc: Mapping[str, float | None]) -> str:
    return f"{fmt_value(auc['mean'])} [{fmt_value(auc['ci_low'])}, {fmt_value(auc['ci_high'])}]"


def roc_figure(report: Mapping[str, Any]) -> Figure:
    """Mean ROC curves in small panels (single groups, fused models), square axes, each
    panel's legend below it with AUC [95 % CI]."""
    models = report["models"]
    colors = model_colors(list(models))
    kinds = split_models(report)
    entries = max(len(names) for _, names in kinds) + 2  # + title and chance
    legend_height = 0.19 * entries + 0.1
    fig = Figure(figsize=(3.7 * len(kinds) + 0.3, 3.9 + legend_height), layout="constrained")
    grid = fig.add_gridspec(2, len(kinds), height_ratios=[3.6, legend_height])
    for i, (title, names) in enumerate(kinds):
        ax = fig.add_subplot(grid[0, i])
        ax.plot([0, 1], [0, 1], label="chance", **_CHANCE)
        for name in names:
            model = models[name]
            ax.plot(
                _GRID,
                model["curves"]["roc"]["tpr"],
                color=colors[name],
                linewidth=1.6,
                label=f"{model_label(name)}  {auc_text(model['metrics']['roc_auc'])}",
            )
        ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal", title=title)
        ax.set_xlabel("1 - specificity", fontsize=9)
        ax.set_ylabel("Sensitivity", fontsize=9)
        ax.title.set_fontsize(10)
        ax.tick_params(labelsize=8)
        ax.grid(True, linewidth=0.4, alpha=0.6)
        # The legend sits in its own (hidden) axes below the panel, so the layout sizes it.
        holder = fig.add_subplot(grid[1, i])
        holder.axis("off")
        handles, labels = ax.get_legend_handles_labels()
        holder.legend(
            handles,
            labels,
            loc="upper left",
            fontsize=8.5,
            frameon=False,
            title="AUC [95 % CI]",
            title_fontsize=8.5,
            alignment="left",
            borderaxespad=0.0,
        )
    return fig


def forest_figure(report: Mapping[str, Any]) -> Figure:
    """Every model's ROC AUC with its 95 % CI (forest plot): single groups, then fused models."""
    models = report["models"]
    colors = model_colors(list(models))
    order = [name for _, names in split_models(report) for name in names]
    fused = set(report.get("fused") or ())
    fig = Figure(figsize=(6.4, 0.34 * len(order) + 1.3), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(len(order))
    for i, name in enumerate(order):
        auc = models[name]["metrics"]["roc_auc"]
        if auc["mean"] is None:
            continue
        if auc["ci_low"] is not None and auc["ci_high"] is not None:
            ax.hlines(i, auc["ci_low"], auc["ci_high"], color=colors[name], linewidth=1.6)
        ax.plot(
            auc["mean"],
            i,
            marker="D" if name in fused else "o",
            markersize=5.5,
            color=colors[name],
            linestyle="none",
        )
    ax.axvline(0.5, **_CHANCE)
    ax.set_yticks(y, [model_label(name) for name in order], fontsize=8.5)
    ax.set_ylim(len(order) - 0.5, -0.5)
    n_single = sum(name not in fused for name in order)
    if 0 < n_single < len(order):
        ax.axhline(n_single - 0.5, color="#d7dbe3", linewidth=0.8)
    low = min([0.5] + [m["metrics"]["roc_auc"]["ci_low"] or 0.5 for m in models.values()])
    ax.set_xlim(max(0.0, math.floor(low * 10) / 10 - 0.02), 1.0)
    ax.set_xlabel("ROC AUC, mean over repeats [95 % bootstrap CI]", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(True, axis="x", linewidth=0.4, alpha=0.6)
    right = ax.secondary_yaxis("right")
    right.set_yticks(y, [auc_text(models[name]["metrics"]["roc_auc"]) for name in order])
    right.tick_params(labelsize=8, length=0)
    return fig


def roc_bands_figure(report: Mapping[str, Any]) -> Figure:
    """One panel per model: mean ROC curve with its pointwise 95 % bootstrap band."""
    fig, panels = model_panels(report)
    for ax, name, model, color in panels:
        roc = model["curves"]["roc"]
        low, high = floats(roc["tpr_ci_low"]), floats(roc["tpr_ci_high"])
        ax.plot([0, 1], [0, 1], **_CHANCE)
        ax.fill_between(_GRID, low, high, color=color, alpha=0.22, linewidth=0)
        ax.plot(_GRID, roc["tpr"], color=color, linewidth=1.4)
        style_panel(ax, f"{model_label(name)}\nAUC {auc_text(model['metrics']['roc_auc'])}")
    return labelled_panels(fig, "1 - specificity", "Sensitivity")


def pr_figure(report: Mapping[str, Any]) -> Figure:
    """Mean interpolated precision-recall curve of every model, prevalence as baseline."""
    models = report["models"]
    colors = model_colors(list(models))
    data = report["data"]
    prevalence = data["n_positive"] / data["n_patients"]
    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot()
    ax.axhline(prevalence, label=f"prevalence ({prevalence:.2f})", **_CHANCE)
    for name, model in models.items():
        ap = model["metrics"]["average_precision"]["mean"]
        ax.plot(
            _GRID,
            model["curves"]["pr"]["precision"],
            color=colors[name],
            linewidth=1.6,
            label=f"{model_label(name)} (AP {fmt_value(ap)})",
        )
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        aspect="equal",
        xlabel="Recall (sensitivity)",
        ylabel="Precision (positive predictive value)",
    )
    return finished_plot(fig, ax, "lower left")


def calibration_figure(report: Mapping[str, Any]) -> Figure:
    """One panel per model: observed against predicted risk by decile, slope and intercept,
    and below it the histogram of predicted risk by true class (class 1 up, class 0 down)."""
    models = report["models"]
    colors = model_colors(list(models))
    bins = np.asarray(report["curves"].get("risk_bins") or np.linspace(0, 1, 21), dtype=float)
    columns = min(_PANEL_COLUMNS, len(models))
    rows = math.ceil(len(models) / columns)
    fig = Figure(figsize=(2.55 * columns + 0.6, 3.45 * rows + 0.5), layout="constrained")
    grid = fig.add_gridspec(2 * rows, columns, height_ratios=[1.0, 0.32] * rows)
    for i, (name, model) in enumerate(models.items()):
        row, column = divmod(i, columns)
        ax = fig.add_subplot(grid[2 * row, column])
        hist = fig.add_subplot(grid[2 * row + 1, column], sharex=ax)
        points = model["curves"]["calibration"]
        metrics = model["metrics"]
        ax.plot([0, 1], [0, 1], **_CHANCE)
        ax.plot(
            points["predicted"],
            points["observed"],
            marker="o",
            markersize=3,
            color=colors[name],
            linewidth=1.2,
        )
        ax.set_title(model_label(name), fontsize=8.5)
        ax.text(
            0.04,
            0.96,
            f"slope {fmt_value(metrics['calibration_slope']['mean'], 2)}\n"
            f"intercept {fmt_value(metrics['calibration_intercept']['mean'], 2)}",
            transform=ax.transAxes,
            fontsize=7.5,
            va="top",
        )
        ax.set(xlim=(0, 1), ylim=(0, 1))
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.grid(True, linewidth=0.3, alpha=0.6)
        histogram = model["curves"].get("risk_histogram")
        if histogram:
            up, down = floats(histogram["class1"]), floats(histogram["class0"])
            widths = np.diff(bins)
            hist.bar(bins[:-1], up, width=widths, align="edge", color=colors[name], linewidth=0)
            hist.bar(bins[:-1], -down, width=widths, align="edge", color="#9aa1ad", linewidth=0)
            top = max(up.max(initial=0), down.max(initial=0), 1.0)
            hist.set_ylim(-top * 1.1, top * 1.1)
        hist.axhline(0, color="#1d2330", linewidth=0.5)
        hist.set_yticks([])
        hist.tick_params(labelsize=7)
        hist.set_xlim(0, 1)
    fig.supxlabel(
        "Predicted probability (points: decile means; bars: patients per 0.05, "
        "class 1 up, class 0 down)",
        fontsize=8.5,
    )
    fig.supylabel("Observed fraction of class 1", fontsize=9)
    return fig


def confusion_figure(report: Mapping[str, Any]) -> Figure:
    """One panel per model: the confusion matrix at the report's threshold (mean counts)."""
    models = report["models"]
    threshold = report["threshold"]
    fig, axes = subplot_panels(len(models), panel_size=2.3)
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        cm = model["confusion_matrix"]
        matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]], dtype=float)
        edges = np.array([-0.5, 0.5, 1.5])  # vector cells (imshow would embed a raster)
        ax.pcolormesh(edges, edges, matrix, cmap="Blues", vmin=0, vmax=max(matrix.max(), 1.0))
        ax.set(xlim=(-0.5, 1.5), ylim=(1.5, -0.5), aspect="equal")
        for (i, j), value in np.ndenumerate(matrix):
            dark = value > matrix.max() / 2
            ax.text(
                j,
                i,
                f"{value:.1f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "#1d2330",
            )
        ax.set_xticks([0, 1], ["pred. 0", "pred. 1"], fontsize=7)
        ax.set_yticks([0, 1], ["true 0", "true 1"], fontsize=7)
        ax.set_title(model_label(name), fontsize=8)
    fig.suptitle(
        f"Threshold {threshold}: predicted 1 when probability >= {threshold} "
        "(mean counts over repeats)",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def decision_curve_figure(report: Mapping[str, Any]) -> Figure:
    """Net benefit of every model against treat-all and treat-none (decision curve), over
    the threshold range where the curves rest on enough patients (``curves.decision_range``),
    in two panels (single groups, fused models) sharing their axes."""
    models = report["models"]
    colors = model_colors(list(models))
    curves = report["curves"]
    thresholds = np.asarray(curves["thresholds"], dtype=float)
    treat_all = np.asarray(curves["treat_all"], dtype=float)
    prevalence = report["data"]["n_positive"] / report["data"]["n_patients"]
    span = curves.get("decision_range") or {}
    low, high = span.get("low", thresholds[0]), span.get("high", thresholds[-1])
    if high <= low:
        high = thresholds[-1]
    limits = span.get("models", {})
    kinds = split_models(report)
    fig = Figure(figsize=(3.9 * len(kinds) + 0.4, 4.6), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False, sharey=True)[0]
    for ax, (title, names) in zip(axes, kinds, strict=True):
        shown = thresholds <= high + 1e-9
        ax.axhline(0.0, color="#1d2330", linewidth=1, label="treat none")
        ax.plot(
            thresholds[shown],
            treat_all[shown],
            color="#9aa1ad",
            linewidth=1.2,
            linestyle="--",
            label="treat all",
        )
        for name in names:
            keep = thresholds <= limits.get(name, high) + 1e-9
            benefit = floats(models[name]["curves"]["net_benefit"])
            ax.plot(
                thresholds[keep],
                benefit[keep],
                color=colors[name],
                linewidth=1.5,
                label=model_label(name),
            )
        ax.set(
            xlim=(0, high),
            ylim=(-0.05, max(prevalence, 0.01) * 1.15),
            title=title,
        )
        ax.title.set_fontsize(10)
        ax.set_xlabel("Threshold probability", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, linewidth=0.4, alpha=0.6)
        ax.legend(loc="upper right", fontsize=8, frameon=False)
    axes[0].set_ylabel("Net benefit", fontsize=9)
    return fig


def group_contributions_figure(report: Mapping[str, Any]) -> Figure:
    """Per group: stacking meta-learner weight and late-fusion AUC drop (mean, min-max)."""
    explanations = report.get("explanations") or {}
    panels = [
        (explanations.get("meta_weights"), "Meta-learner weight (stacking)", lambda g: g),
        (
            explanations.get("group_drop"),
            "AUC drop without the group (late fusion)",
            lambda g: g["drop"],
        ),
    ]
    panels = [(data, title, get) for data, title, get in panels if data]
    if not panels:
        fig = Figure(figsize=(6.4, 1.2))
        fig.text(
            0.5,
            0.5,
            "No modality contributions in this report (needs stacking or "
            "late fusion over two or more groups).",
            ha="center",
            va="center",
            fontsize=9,
        )
        return fig
    n_groups = max(len(data["groups"]) for data, _, _ in panels)
    fig = Figure(figsize=(4.2 * len(panels) + 0.6, 0.45 * n_groups + 1.4))
    for i, (data, title, get) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        names = [model_label(g["group"]) for g in data["groups"]]
        values = [get(g) for g in data["groups"]]
        mean = np.array([np.nan if v["mean"] is None else v["mean"] for v in values])
        low = np.array([np.nan if v["min"] is None else v["min"] for v in values])
        high = np.array([np.nan if v["max"] is None else v["max"] for v in values])
        y = np.arange(len(names))
        ax.barh(y, mean, color="#4c78a8", height=0.6)
        ax.hlines(y, low, high, color="#1d2330", linewidth=1.2)
        ax.axvline(0.0, color="#9aa1ad", linewidth=0.8)
        ax.set_yticks(y, names, fontsize=7)
        ax.invert_yaxis()
        ax.tick_params(axis="x", labelsize=7)
        ax.set_title(title, fontsize=8)
        ax.grid(True, axis="x", linewidth=0.3, alpha=0.6)
    fig.tight_layout()
    return fig


def importance_figure(report: Mapping[str, Any]) -> Figure:
    """Held-out permutation importance per group: the top features' mean AUC drop (bars)
    with the SD across folds (lines), one panel per group."""
    importance = (report.get("explanations") or {}).get("importance")
    if not importance or not importance.get("groups"):
        return _message_figure(
            "No permutation importance in this report (needs a single-group model and "
            "explanations).",
            fontsize=9,
        )
    panels = [
        (
            model_label(group),
            [model_label(f["feature"].removeprefix(f"{group}__")) for f in features],
            np.array([np.nan if f["mean"] is None else f["mean"] for f in features]),
            np.array([np.nan if f["sd"] is None else f["sd"] for f in features]),
        )
        for group, features in importance["groups"].items()
    ]
    return _bar_panels(
        panels,
        "Drop in held-out ROC AUC when the feature is shuffled (mean, SD over folds)",
        rows_at_least=0,
        margin=1.0,
        title_size=9,
    )


def shap_figure(report: Mapping[str, Any]) -> Figure:
    """Mean |SHAP| of the top features of each branch of the headline model on held-out rows
    (a summary plot), one panel per branch."""
    shap = (report.get("explanations") or {}).get("shap")
    branches = shap.get("branches") if isinstance(shap, Mapping) else None
    if not branches:
        reason = "; ".join(shap["skipped"].values()) if isinstance(shap, Mapping) else ""
        return _message_figure(
            textwrap.fill(f"No SHAP values in this report. {reason}", 90), fontsize=8
        )
    panels = [
        (
            f"{branch} ({entry['output']})",
            [model_label(f["feature"]) for f in entry["top"]],
            [f["mean_abs"] for f in entry["top"]],
            None,
        )
        for branch, entry in branches.items()
    ]
    return _bar_panels(
        panels,
        f"Mean |SHAP| over held-out rows, branches of the headline model ({shap['model']})",
        rows_at_least=5,
        margin=1.1,
        title_size=8.5,
    )


def _message_figure(text: str, *, fontsize: float) -> Figure:
    """A one-line figure saying why there is nothing to draw."""
    fig = Figure(figsize=(6.4, 1.2))
    fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=fontsize)
    return fig


def _bar_panels(
    panels: list[tuple[str, list[str], Any, Any]],
    xlabel: str,
    *,
    rows_at_least: int,
    margin: float,
    title_size: float,
) -> Figure:
    """Horizontal bars of ranked features, one panel per ``(title, names, values, sd)``
    (``sd`` None: no error lines), two panels a row; each panel is as tall as the longest
    list (at least ``rows_at_least`` bars) plus ``margin`` inches."""
    columns = min(2, len(panels))
    rows = math.ceil(len(panels) / columns)
    longest = max(rows_at_least, *(len(names) for _, names, _, _ in panels))
    fig = Figure(
        figsize=(5.2 * columns + 0.4, (0.26 * longest + margin) * rows), layout="constrained"
    )
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for ax, (title, names, values, sd) in zip(axes, panels, strict=False):
        y = np.arange(len(names))
        ax.barh(y, values, color="#4c78a8", height=0.6)
        if sd is not None:
            ax.errorbar(values, y, xerr=sd, fmt="none", ecolor="#1d2330", elinewidth=0.9, capsize=2)
            ax.axvline(0.0, color="#9aa1ad", linewidth=0.8)
        ax.set_yticks(y, names, fontsize=7.5)
        ax.set_ylim(len(names) - 0.5, -0.5)
        ax.tick_params(axis="x", labelsize=7.5)
        ax.set_title(title, fontsize=title_size)
        ax.grid(True, axis="x", linewidth=0.3, alpha=0.6)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.supxlabel(xlabel, fontsize=8.5)
    return fig


FIGURES: dict[str, tuple[Callable[[Mapping[str, Any]], Figure], str]] = {
    "auc_forest": (forest_figure, "ROC AUC of every model (forest plot)"),
    "roc": (roc_figure, "ROC curves"),
    "roc_bands": (roc_bands_figure, "ROC curves with 95 % confidence bands"),
    "precision_recall": (pr_figure, "Precision-recall curves"),
    "calibration": (calibration_figure, "Calibration"),
    "confusion_matrix": (confusion_figure, "Confusion matrices"),
    "decision_curve": (decision_curve_figure, "Decision curves (net benefit)"),
    "group_contributions": (group_contributions_figure, "Contribution of each modality"),
    "importance": (importance_figure, "Permutation importance per group"),
    "shap": (shap_figure, "SHAP values of the headline model's branches"),
}
"""Figure name (file stem and HTML anchor) -> (drawing function, caption title)."""


def svg_text(fig: Figure, name: str) -> str:
    """The figure as a standalone SVG document, byte-identical for the same figure.

    Element ids are prefixed with ``name`` so several figures can share one HTML page.
    """
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"radfusion-{name}", "svg.fonttype": "none"}):
        fig.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = buffer.getvalue()
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{name}-\1"', svg)
    return svg


def inline_svg(svg: str) -> str:
    """An SVG document for inlining in HTML: no XML prolog or DOCTYPE (a DTD URL), and no
    namespace declarations (implicit in HTML)."""
    svg = svg[svg.index("<svg") :]
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)


def png_bytes(fig: Figure, dpi: int = PNG_DPI) -> bytes:
    """The figure as PNG bytes at ``dpi`` (200: print quality for a column-wide figure),
    without a software tag (reproducible)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    return buffer.getvalue()
