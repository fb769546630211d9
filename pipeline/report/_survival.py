"""The CV report of a survival target: ``report.json``, HTML and figures.

Built from a :class:`~radfusion.pipeline.validation.CVResult` of a
:class:`~radfusion.pipeline.targets.SurvivalTask` and its summary; it never calls the CV
engine. Every statistic is scikit-survival's (Kaplan–Meier, log-rank, concordance,
cumulative/dynamic AUC). report.json fields that differ from the other tasks::

    task          "survival"
    data          n_patients, events, censored, median_follow_up (reverse Kaplan–Meier),
                  median_survival (Kaplan–Meier; null when not reached), horizons, ibs_grid
                  {start, stop, n}, groups {group: number of columns}
    models[m]     metrics {metric: {mean, ci_low, ci_high}} in the task's order (harrell_c,
                  uno_c, auc@<h>…, mean_auc, ibs); risk_groups {high, low: {n, events, time,
                  survival}, chi2, p_value} (first repeat; a patient is "high" when its risk
                  exceeds the median risk its fold's model gives its own training rows);
                  td_auc [AUC(t) at curves.times, mean over repeats]; calibration {horizon,
                  predicted, observed, n} (by risk decile at the middle horizon)
    comparisons   {"method", "best_single", "tests": [{fused, single, delta, ci_low, ci_high,
                  p_value, n_boot_used}]}: paired bootstrap ΔHarrell's C of every fused model
                  minus every single-group model
    curves        {"times": the td-AUC times (the integrated-Brier-score grid)}
    methods       {"text": [paragraph], "extraction", "feature_classes", "learners"}: the
                  binary report's feature-extraction paragraphs
                  (:func:`~radfusion.pipeline.report._methods.extraction_paragraphs`), then the
                  survival
                  paragraphs; ``learners`` {name: {estimator, params}} of the survival learners
    checklists    as the binary report's, from :data:`~radfusion.pipeline.report.SURVIVAL_ITEMS`
    groups        (``--group-by`` only) {"column", "method", "models": {model: [{group, n,
                  events, harrell_c {mean, ci_low, ci_high, n_boot_used} | null, note}]}}

``predictions.csv`` holds ``patient_id, model, repeat, fold, event, time, risk,
train_median_risk, survival_at_<t>…``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from ..learners import SURVIVAL_LEARNERS, make_survival_learner
from ..survival import EVENT_FIELD, TIME_FIELD
from ..targets import SurvivalTask, survival_output_column
from ..validation import CI_LEVEL, CVResult, group_metrics, output_cube
from ._checklists import SURVIVAL_ITEMS, build_checklists, checklists_html
from ._config import model_record, preprocessing_settings
from ._figures import (
    inline_svg,
    labelled_panels,
    model_colors,
    model_label,
    model_panels,
    style_panel,
    subplot_panels,
    svg_text,
)
from ._groups import groups_html
from ._headline import evaluability_html
from ._html import (
    REPORT_CSS,
    escape,
    figure_html,
    fmt,
    format_metric,
    html_table,
    inputs_html,
    jsonable,
    num_cell,
    reproduce_html,
    run_fields,
    versions_html,
)
from ._methods import (
    counted,
    extraction_paragraphs,
    feature_classes,
    join_list,
    recorded_learner,
    recorded_learners,
    software_paragraph,
)
from ._reproduce import reproduce_steps

__all__ = [
    "SURVIVAL_FIGURES",
    "SURVIVAL_LEARNER_KEYS",
    "build_survival_report",
    "render_survival_html",
    "survival_cohort",
    "survival_figures",
    "survival_learner_parameters",
    "survival_metric_label",
    "survival_curves",
]

CI_METHOD = (
    f"Point estimates are the mean over CV repeats of each metric computed on that repeat's "
    f"pooled out-of-fold predictions; {CI_LEVEL:.0%} confidence intervals are percentile "
    "bootstrap intervals over patients (resampled with replacement within the patients with "
    "an event and within the censored, the same resamples for every model, the "
    "repeat-averaged metric recomputed per replicate). Uno's C, the time-dependent AUC and "
    "the Brier score weight patients by the Kaplan–Meier estimate of the censoring "
    "distribution of the scored rows."
)

_LABELS = {
    "harrell_c": "Harrell's C",
    "uno_c": "Uno's C",
    "mean_auc": "Mean td-AUC",
    "ibs": "Integrated Brier score",
}


def survival_metric_label(metric: str) -> str:
    """Display name of a survival metric (``auc@24`` → ``td-AUC at 24``)."""
    if metric.startswith("auc@"):
        return f"td-AUC at {metric[4:]}"
    return _LABELS.get(metric, metric)


def _p_text(p: float | None) -> str:
    """A p-value for display: ``< 0.0001`` below that, else four decimals."""
    return "n/a" if p is None else "< 0.0001" if p < 1e-4 else f"{p:.4f}"


def _step_at(times: np.ndarray, values: np.ndarray, t: float) -> float:
    """A right-continuous step function (1 before its first time) at ``t``."""
    k = np.searchsorted(times, t, side="right") - 1
    return 1.0 if k < 0 else float(values[k])


def _median_time(times: np.ndarray, values: np.ndarray) -> float | None:
    below = np.flatnonzero(values <= 0.5)
    return float(times[below[0]]) if len(below) else None


def survival_cohort(y: np.ndarray) -> dict[str, Any]:
    """Patients, events, censored, median follow-up (reverse Kaplan–Meier: the censoring
    indicator's Kaplan–Meier curve) and median survival (Kaplan–Meier; None if not reached)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    event, time = y[EVENT_FIELD], y[TIME_FIELD]
    follow_times, follow = kaplan_meier_estimator(~event, time)
    km_times, km = kaplan_meier_estimator(event, time)
    return {
        "n_patients": len(y),
        "events": int(event.sum()),
        "censored": int((~event).sum()),
        "median_follow_up": _median_time(follow_times, follow),
        "median_survival": _median_time(km_times, km),
        "time_range": [float(time.min()), float(time.max())],
    }


def _risk_groups(y: np.ndarray, risk: np.ndarray, cut: np.ndarray) -> dict[str, Any]:
    """Kaplan–Meier curves of the patients above / not above their fold's training-median
    risk, and the log-rank test between them."""
    from sksurv.compare import compare_survival
    from sksurv.nonparametric import kaplan_meier_estimator

    high = risk > cut
    out: dict[str, Any] = {}
    for name, rows in (("low", ~high), ("high", high)):
        entry: dict[str, Any] = {"n": int(rows.sum()), "events": int(y[EVENT_FIELD][rows].sum())}
        if rows.any():
            times, values = kaplan_meier_estimator(y[EVENT_FIELD][rows], y[TIME_FIELD][rows])
            entry.update(time=[0.0, *times], survival=[1.0, *values])
        else:
            entry.update(time=[], survival=[])
        out[name] = entry
    out["chi2"] = out["p_value"] = None
    if high.any() and (~high).any():
        chi2, p_value = compare_survival(y, high.astype(int))
        out.update(chi2=float(chi2), p_value=float(p_value))
    return out


def _td_auc(y: np.ndarray, risks: np.ndarray, times: np.ndarray) -> list[float | None]:
    """Cumulative/dynamic AUC at ``times``, mean over repeats (None where undefined)."""
    from sksurv.metrics import cumulative_dynamic_auc

    curves = []
    for risk in risks:
        row = []
        for t in times:
            try:
                row.append(float(cumulative_dynamic_auc(y, y, risk, [t])[0][0]))
            except ValueError:
                row.append(np.nan)
        curves.append(row)
    mean = np.nanmean(np.asarray(curves, dtype=float), axis=0) if curves else []
    return [None if not np.isfinite(v) else float(v) for v in mean]


def _calibration(y: np.ndarray, surv: np.ndarray, horizon: float) -> dict[str, Any]:
    """Predicted S(horizon) (mean over repeats) against the Kaplan–Meier estimate at the
    horizon, by decile of predicted risk (fifths under 100 patients)."""
    from sksurv.nonparametric import kaplan_meier_estimator

    bins = 10 if len(y) >= 100 else 5
    order = np.argsort(-surv, kind="stable")  # lowest risk first
    predicted, observed, counts = [], [], []
    for rows in np.array_split(order, bins):
        if not len(rows):
            continue
        times, values = kaplan_meier_estimator(y[EVENT_FIELD][rows], y[TIME_FIELD][rows])
        predicted.append(float(surv[rows].mean()))
        observed.append(_step_at(times, values, horizon))
        counts.append(len(rows))
    return {"horizon": horizon, "predicted": predicted, "observed": observed, "n": counts}


def survival_curves(y: np.ndarray, values: np.ndarray, task: SurvivalTask) -> dict[str, Any]:
    """One model's risk groups (first repeat, split at each patient's training-median risk),
    time-dependent AUC on the task's grid (mean over repeats) and calibration at the middle
    horizon, from its outputs ``values`` (repeats, patients, the task's output columns)."""
    columns = task.output_columns(values.shape[-1])
    horizon = task.horizons[len(task.horizons) // 2]
    at_horizon = columns.index(survival_output_column(horizon))
    return {
        "risk_groups": _risk_groups(y, values[0, :, 0], values[0, :, 1]),
        "td_auc": _td_auc(y, values[..., 0], np.asarray(task.grid)),
        "calibration": _calibration(y, values[:, :, at_horizon].mean(axis=0), horizon),
    }


def _harrell_draws(
    task: SurvivalTask, y: np.ndarray, risk: np.ndarray, n_bootstrap: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Harrell's C per model (mean over repeats) on all patients and in each replicate of the
    summary's bootstrap (:meth:`SurvivalTask.bootstrap_weights`, same seed: same patients)."""
    from sksurv.metrics import concordance_index_censored

    n_models, n_repeats, n = risk.shape

    def c_of(rows: np.ndarray) -> np.ndarray:
        out = np.full(n_models, np.nan)
        for m in range(n_models):
            try:
                out[m] = np.mean(
                    [
                        concordance_index_censored(
                            y[EVENT_FIELD][rows], y[TIME_FIELD][rows], risk[m, r, rows]
                        )[0]
                        for r in range(n_repeats)
                    ]
                )
            except (ValueError, ZeroDivisionError):
                pass
        return out

    weights = task.bootstrap_weights(y, n_bootstrap, seed) if n_bootstrap else np.zeros((0, n))
    draws = np.array([c_of(np.repeat(np.arange(n), w.astype(np.int64))) for w in weights]).reshape(
        len(weights), n_models
    )
    return c_of(np.arange(n)), draws


def _delta(point: float, draws: np.ndarray) -> dict[str, Any]:
    finite = draws[np.isfinite(draws)]
    alpha = (1 - CI_LEVEL) / 2
    low, high = np.quantile(finite, [alpha, 1 - alpha]) if len(finite) else (None, None)
    share = min((finite <= 0).mean(), (finite >= 0).mean()) if len(finite) else None
    return {
        "delta": float(point),
        "ci_low": None if low is None else float(low),
        "ci_high": None if high is None else float(high),
        "p_value": None if share is None else float(min(1.0, max(2 * share, 1 / len(finite)))),
        "n_boot_used": int(len(finite)),
    }


def _single_group_models(models: Sequence[str], fused: Sequence[str], groups) -> list[str]:
    return [
        name
        for name in models
        if name not in fused and (name in groups or name.removeprefix("single:") in groups)
    ]


SURVIVAL_LEARNER_KEYS: dict[str, tuple[str, ...]] = {
    "coxnet": ("l1_ratio", "n_alphas", "alpha_min_ratio", "fit_baseline_model"),
    "rsf": ("n_estimators", "max_features", "min_samples_leaf"),
    "gbsa": ("loss", "n_estimators", "learning_rate", "max_depth", "subsample", "max_features"),
}
"""The hyperparameters the survival methods text states per learner (from ``get_params()``)."""

_SURVIVAL_LEARNER_NAMES = {
    "coxnet": "elastic-net penalised Cox regression (predicting at the last of its path of "
    "penalties, from the smallest penalty that zeroes every coefficient down to alpha_min_ratio "
    "times it; Breslow baseline hazard)",
    "rsf": "a random survival forest",
    "gbsa": "gradient-boosted Cox regression",
}


def survival_learner_parameters(
    names: Sequence[str], random_state: int | None = 0
) -> dict[str, Any]:
    """Key hyperparameters of the named survival learners, as
    :func:`radfusion.pipeline.learners.make_survival_learner` builds them.

    Returns ``{name: {"estimator": class name, "params": {parameter: value}}}`` with the
    parameters of :data:`SURVIVAL_LEARNER_KEYS`; names that are not survival learners are left
    out.
    """
    out = {}
    for name in dict.fromkeys(n for n in names if isinstance(n, str)):
        if name not in SURVIVAL_LEARNERS:
            continue
        estimator = make_survival_learner(name, random_state)
        params = estimator.get_params()
        chosen = {key: params[key] for key in SURVIVAL_LEARNER_KEYS[name] if key in params}
        out[name] = {"estimator": type(estimator).__name__, "params": chosen}
    return out


def survival_groups_method(
    column: str, names: Sequence[str], n_bootstrap: int, harmonize_unseen: str | None = None
) -> str:
    """The sentence the survival report gives for a leave-one-group-out CV by ``column``."""
    unseen = (
        ""
        if harmonize_unseen is None
        else " ComBat harmonisation is fitted on the training groups only, so the held-out "
        f"site is always unseen and ComBat's unseen-site policy {harmonize_unseen!r} applies "
        "to it."
    )
    return (
        f"Leave-one-group-out cross-validation by {column!r}: {len(names)} folds, each holding "
        f"out every patient of one value ({', '.join(map(str, names))}) and fitting every step "
        f"on the others; one repeat (the folds are fixed by the groups). The column {column!r} "
        "is not a predictor. The cohort's metrics pool the held-out predictions of all groups; "
        "per-group Harrell's C 95 % CIs resample the group's patients within the patients "
        f"with an event and within the censored ({n_bootstrap} replicates); the C-index is not "
        "defined for a held-out group without an event." + unseen
    )


def build_survival_report(
    result: CVResult,
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    config: Mapping[str, Any],
    seed: int,
    inputs: Mapping[str, str | Path],
    groups: Mapping[str, Sequence[str]],
    n_bootstrap: int = 1000,
    extraction: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble ``report.json`` of a survival run (module docstring: schema).

    The risk groups, the time-dependent AUC curve and the calibration are computed from the
    out-of-fold predictions alone; the ΔC-index comparisons reuse the summary's bootstrap
    replicates (same seed, same resampled patients). A leave-one-group-out result
    (``result.held_out_groups``; ``config["group_by"]`` names the column) also gets the
    ``groups`` section (:func:`radfusion.pipeline.validation.group_metrics`). ``extraction`` is
    :func:`radfusion.pipeline.report.read_extraction` of the feature table (the PyRadiomics
    settings the methods text states), or None.
    """
    task = result.task
    config = dict(config or {})
    models = list(summary)
    _, _, values, y = output_cube(result.predictions, task, models)
    risk = values[..., 0]
    grid = np.asarray(task.grid)
    data = survival_cohort(y)
    data.update(
        horizons=list(task.horizons),
        ibs_grid={"start": float(grid[0]), "stop": float(grid[-1]), "n": len(grid)},
        groups={name: len(cols) for name, cols in groups.items()},
    )
    report_models = {}
    for m, name in enumerate(models):
        report_models[name] = {
            "metrics": {k: dict(summary[name][k]) for k in task.metrics if k in summary[name]},
            **survival_curves(y, values[m], task),
        }
    point, draws = _harrell_draws(task, y, risk, n_bootstrap, seed)
    fused = [name for name in models if name in result.fused]
    single = _single_group_models(models, fused, groups)
    index = {name: m for m, name in enumerate(models)}
    tests = [
        {
            "fused": f,
            "single": g,
            **_delta(point[index[f]] - point[index[g]], draws[:, index[f]] - draws[:, index[g]]),
        }
        for f in fused
        for g in single
    ]
    primary = task.primary_metric
    scores = {
        n: summary[n][primary]["mean"] for n in models if math.isfinite(summary[n][primary]["mean"])
    }
    best = max(scores, key=scores.__getitem__) if scores else None
    single_scores = {g: scores[g] for g in single if g in scores}
    report = {
        **run_fields(task.name, config, seed, data, inputs),
        "ci_method": CI_METHOD,
        "models": report_models,
        "best": best,
        "threshold": None,
        "cohort": None,
        "comparisons": {
            "method": (
                "Paired bootstrap difference of Harrell's C (fused minus single group, mean "
                "over repeats), on the same resampled patients as the confidence intervals; "
                "two-sided p-value: twice the smaller share of replicates on either side of 0."
            ),
            "best_single": max(single_scores, key=single_scores.__getitem__)
            if single_scores
            else None,
            "tests": tests,
        },
        "curves": {"times": grid},
        "reproduce": reproduce_steps(config, inputs),
    }
    if result.held_out_groups:
        preprocessing = preprocessing_settings(model_record(config))
        report["groups"] = {
            "column": config.get("group_by"),
            "method": survival_groups_method(
                str(config.get("group_by")),
                result.held_out_groups,
                n_bootstrap,
                preprocessing["harmonize_unseen"],
            ),
            "models": group_metrics(result, n_bootstrap=n_bootstrap, seed=seed),
        }
    report = jsonable(report)
    classes = feature_classes(groups)
    params = model_record(config)
    chosen = [recorded_learner(params["learner"])] if params.get("learner") else []
    if "stacking" in report_models:
        chosen += recorded_learners(params.get("learners"))
    learners = survival_learner_parameters([v for _, v in chosen], random_state=seed)
    report["methods"] = jsonable(
        {
            "text": _methods_text(report, n_bootstrap, extraction, classes, learners),
            "extraction": extraction,
            "feature_classes": classes,
            "learners": learners,
        }
    )
    report["checklists"] = jsonable(build_checklists(report, SURVIVAL_ITEMS))
    report["explanations"] = None
    return report


def _param_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _evaluated_before(config: Mapping[str, Any]) -> str:
    """The end of the methods sentence on the evaluation times: why they lie before
    ``config["evaluated_before"]`` when the run recorded one."""
    limit = config.get("evaluated_before")
    if limit is None:
        return ". "
    if config.get("group_by"):
        return (
            f", before {limit:g}, the longest follow-up every leave-one-group-out training set "
            "reaches (a model predicts no survival beyond its training follow-up). "
        )
    return (
        f", before the last follow-up ({limit:g}), on which rounded times tie many patients "
        "(an evaluation time must lie inside the follow-up). "
    )


def _methods_text(
    report: Mapping[str, Any],
    n_bootstrap: int,
    extraction: Mapping[str, Any] | None,
    classes: Mapping[str, Mapping[str, int]],
    learners: Mapping[str, Any],
) -> list[str]:
    """The survival methods paragraphs: the feature extraction (the binary report's own
    paragraphs, :func:`~radfusion.pipeline.report._methods.extraction_paragraphs`), cohort,
    validation,
    models, metrics, risk groups and software, each from what the run recorded."""
    config, data = report["config"], report["data"]
    follow = data["median_follow_up"]
    horizons = ", ".join(f"{h:g}" for h in data["horizons"])
    given = (
        "given by the user"
        if config.get("horizons_given")
        else ("the 25th, 50th and 75th percentiles of the observed event times")
    )
    params = model_record(config)
    preprocessing = preprocessing_settings(params)
    steps = ["median imputation", "removal of constant features"]
    if preprocessing.get("harmonize"):
        steps.append("ComBat harmonisation by site")
    if preprocessing.get("icc_table"):
        steps.append(f"an ICC filter (ICC >= {preprocessing['icc_threshold']})")
    if preprocessing.get("correlation_threshold") is not None:
        steps.append(f"a correlation filter (|r| > {preprocessing['correlation_threshold']})")
    if preprocessing.get("select_k") is not None:
        steps.append(f"the {preprocessing['select_k']} features with the largest Cox score")
    steps.append("standardisation")
    models = list(report["models"])
    learner = recorded_learner(params["learner"])[0] if params.get("learner") else None
    stack = (
        [label for label, _ in recorded_learners(params.get("learners"))]
        if "stacking" in models
        else []
    )
    described = [
        f"{name}: {_SURVIVAL_LEARNER_NAMES[name]} ({_param_text(learners[name]['params'])})"
        for name in dict.fromkeys([learner, *stack])
        if name in learners
    ]
    fusion = []
    if "early" in models:
        fusion.append("early fusion fitted one branch on the concatenated columns of all groups")
    if "late" in models:
        fusion.append(
            "late fusion averaged the branch risk scores, each standardised on its training "
            "rows, over the groups a patient has"
        )
    if "stacking" in models:
        fusion.append(
            f"stacking combined the inner out-of-fold risk scores of one branch per group and "
            f"learner ({join_list(stack)}) with a non-negative penalised Cox model"
        )
    group_by = config.get("group_by")
    if group_by:
        scheme = (
            f"leave-one-group-out cross-validation by {group_by!r} ({config.get('folds')} folds, "
            "one per value, one repetition; the column is not a predictor)"
        )
    else:
        repeats = config.get("repeats")
        scheme = (
            f"{config.get('folds')}-fold cross-validation stratified by the event indicator, "
            + (f"repeated {repeats} times" if repeats != 1 else "a single repetition")
        )
    return [
        *extraction_paragraphs(report, extraction, classes),
        f"The outcome was the time in column {config.get('time')!r} with the event indicator "
        f"in column {config.get('event')!r}. The cohort comprised "
        f"{counted(data['n_patients'], 'patient')} with {counted(data['events'], 'event')} "
        f"({data['censored']} censored); the median follow-up (reverse Kaplan–Meier) was "
        + (f"{follow:g}" if follow is not None else "not reached")
        + ".",
        f"Models were evaluated by {scheme}; every model was evaluated on the same splits. "
        "Within each training fold every branch (one per feature group) applied "
        f"{join_list(steps)} before a {learner} survival learner (scikit-survival)"
        + (f"; {join_list(fusion)}" if fusion else "")
        + f". Models: {join_list(models)}. Learners: {'; '.join(described)}. "
        "Hyperparameters were fixed in advance (radfusion defaults), not tuned on the data.",
        "Discrimination was measured by Harrell's and Uno's concordance indices and the "
        f"cumulative/dynamic time-dependent AUC at {horizons} ({given}); overall accuracy by "
        f"the integrated Brier score from {data['ibs_grid']['start']:g} to "
        f"{data['ibs_grid']['stop']:g} (10th to 90th percentile of follow-up). The horizons "
        "and the grid were fixed once from the whole cohort's times, reading no prediction"
        + _evaluated_before(config)
        + f"{CI_METHOD} ({n_bootstrap} replicates.)",
        "Risk groups split each held-out patient at the median risk the fold's model gave its "
        "own training patients (a cut-off chosen on training data only); their Kaplan–Meier "
        "curves (first repeat) were compared by the log-rank test. Calibration at the middle "
        "horizon compares the mean predicted survival with the Kaplan–Meier estimate within "
        "deciles of predicted risk (fifths under 100 patients).",
        software_paragraph(report),
    ]


# --------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------
def km_figure(report: Mapping[str, Any]) -> Figure:
    """One panel per model: Kaplan–Meier curves of the low and high risk groups, log-rank p."""
    models = report["models"]
    fig, axes = subplot_panels(len(models))
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        groups = model["risk_groups"]
        for key, color in (("low", "#1f77b4"), ("high", "#d62728")):
            entry = groups[key]
            if entry["time"]:
                ax.step(
                    entry["time"],
                    entry["survival"],
                    where="post",
                    color=color,
                    linewidth=1.2,
                    label=f"{key} risk (n={entry['n']})",
                )
        p = groups.get("p_value")
        ax.set_title(f"{model_label(name)}\nlog-rank p {_p_text(p)}", fontsize=8)
        ax.set_ylim(0, 1.02)
        ax.tick_params(labelsize=7)
        ax.grid(True, linewidth=0.3, alpha=0.6)
        ax.legend(fontsize=6, loc="lower left")
    return labelled_panels(fig, "Time", "Survival (Kaplan–Meier)")


def td_auc_figure(report: Mapping[str, Any]) -> Figure:
    """Time-dependent AUC over time, one line per model."""
    models = report["models"]
    colors = model_colors(list(models))
    times = np.asarray(report["curves"]["times"], dtype=float)
    fig = Figure(figsize=(6.0, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for name, model in models.items():
        auc = np.array([np.nan if v is None else v for v in model["td_auc"]], dtype=float)
        ax.plot(times, auc, color=colors[name], linewidth=1.2, label=model_label(name))
    ax.axhline(0.5, linestyle="--", color="#9aa1ad", linewidth=1)
    ax.set(xlabel="Time", ylabel="Cumulative/dynamic AUC(t)", ylim=(0.3, 1.0))
    ax.grid(True, linewidth=0.3, alpha=0.6)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig


def calibration_figure(report: Mapping[str, Any]) -> Figure:
    """One panel per model: predicted against Kaplan–Meier observed survival at the horizon."""
    fig, panels = model_panels(report)
    for ax, name, model, color in panels:
        cal = model["calibration"]
        ax.plot((0, 1), (0, 1), linestyle="--", color="#9aa1ad", linewidth=1)
        ax.plot(cal["predicted"], cal["observed"], "o-", color=color, markersize=3)
        style_panel(ax, f"{model_label(name)}\nat t = {cal['horizon']:g}", ylim=(0, 1))
    return labelled_panels(
        fig, "Predicted survival (mean in risk decile)", "Observed (Kaplan–Meier)"
    )


SURVIVAL_FIGURES = {
    "survival_km": (
        km_figure,
        "Kaplan–Meier curves of the risk groups (cut-off: the training-fold median risk), "
        "first repeat, with the log-rank p-value.",
    ),
    "survival_td_auc": (td_auc_figure, "Time-dependent AUC over time (mean over repeats)."),
    "survival_calibration": (
        calibration_figure,
        "Calibration at the middle horizon: mean predicted survival against the Kaplan–Meier "
        "estimate, by decile of predicted risk.",
    ),
}
"""The survival report's figures: name → (draw(report), caption)."""


def survival_figures(report: Mapping[str, Any]) -> dict[str, Figure]:
    """Every figure of :data:`SURVIVAL_FIGURES`, drawn from the report."""
    return {name: draw(report) for name, (draw, _) in SURVIVAL_FIGURES.items()}


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------
def _cohort_html(report: Mapping[str, Any]) -> str:
    d = report["data"]
    rows = [
        ("Patients", d["n_patients"]),
        ("Events / censored", f"{d['events']} / {d['censored']}"),
        ("Median follow-up (reverse Kaplan–Meier)", fmt(d["median_follow_up"], 2)),
        ("Median survival (Kaplan–Meier)", fmt(d["median_survival"], 2)),
        ("Follow-up range", " – ".join(f"{t:g}" for t in d["time_range"])),
        ("Horizons", ", ".join(f"{h:g}" for h in d["horizons"])),
        ("Groups", ", ".join(f"{g} ({n})" for g, n in d["groups"].items())),
    ]
    return html_table(None, [[f"<th>{escape(k)}</th>", f"<td>{escape(v)}</td>"] for k, v in rows])


def _performance_html(report: Mapping[str, Any]) -> str:
    best = report.get("best")
    names = list(report["models"])
    metrics = list(report["models"][names[0]]["metrics"]) if names else []
    rows = []
    for name in names:
        model = report["models"][name]
        p = model["risk_groups"].get("p_value")
        rows.append(
            [f"<td>{escape(name)}{' (best C)' if name == best else ''}</td>"]
            + [
                f'<td class="num wrap">{escape(format_metric(model["metrics"][m]))}</td>'
                for m in metrics
            ]
            + [num_cell(_p_text(p))]
        )
    return html_table(
        ["Model"]
        + [escape(survival_metric_label(m)) for m in metrics]
        + ["Log-rank p (risk groups)"],
        rows,
        classes=["best" if name == best else "" for name in names],
    )


def fusion_sentences(report: Mapping[str, Any]) -> list[str]:
    """Whether fusion helped, in words: the fused models against the best single group
    (ΔHarrell's C whose 95 % interval lies above 0 counts as better); none without tests."""
    comparisons = report["comparisons"]
    best = comparisons.get("best_single")
    tests = [t for t in comparisons["tests"] if t["single"] == best]
    if best is None or not tests:
        return []
    c_index = (report["models"][best]["metrics"].get("harrell_c") or {}).get("mean")
    what = f"the best single group ({best}, Harrell's C {fmt(c_index)})"
    better = [t for t in tests if t["ci_low"] is not None and t["ci_low"] > 0]
    if not better:
        return [
            f"Fusion does not help over {what}: no fused model's C-index is clearly higher "
            "(every 95 % interval of the difference includes 0 or lies below it)."
        ]
    gains = "; ".join(
        f"{t['fused']} {t['delta']:+.3f} (95 % CI {fmt(t['ci_low'])} to {fmt(t['ci_high'])})"
        for t in better
    )
    return [f"Fusion does better than {what}: ΔC-index {gains}."]


def _comparisons_html(report: Mapping[str, Any]) -> str:
    comparisons = report["comparisons"]
    best_single = comparisons.get("best_single")
    rows = [
        [
            f"<td>{escape(t['fused'])}</td>",
            f"<td>{escape(t['single'])}{' (best single)' if t['single'] == best_single else ''}"
            "</td>",
            num_cell(f"{fmt(t['delta'])} [{fmt(t['ci_low'])}, {fmt(t['ci_high'])}]"),
            num_cell(_p_text(t["p_value"])),
        ]
        for t in comparisons["tests"]
    ]
    if not rows:
        return "<p>No fused and single-group models to compare.</p>"
    return html_table(["Fused", "Single group", "ΔHarrell's C [95 % CI]", "p"], rows)


_SECTIONS = (
    ("cohort", "Cohort"),
    ("methods", "Methods"),
    ("performance", "Performance"),
    ("comparisons", "Fused vs single"),
    ("figures", "Figures"),
    ("checklists", "Checklists"),
    ("reproduce", "Re-run"),
    ("provenance", "Provenance"),
)


def render_survival_html(report: Mapping[str, Any], svgs: Mapping[str, str] | None = None) -> str:
    """The self-contained HTML report of a survival run (no network access)."""
    e = escape
    if svgs is None:
        svgs = {name: svg_text(fig, name) for name, fig in survival_figures(report).items()}
    figures = [
        figure_html(name, inline_svg(svgs[name]), e(caption))
        for name, (_, caption) in SURVIVAL_FIGURES.items()
        if name in svgs
    ]
    anchors = {a for a, _ in _SECTIONS} | {f"figure-{name}" for name in svgs}
    if report.get("groups"):
        anchors.add("groups")
    nav = " ".join(f'<a href="#{a}">{e(t)}</a>' for a, t in _SECTIONS)
    config = report.get("config") or {}
    skipped = config.get("skipped_models") or {}
    title = "radfusion cross-validation report (survival)"
    body = [
        f"<h1>{e(title)}</h1>",
        f'<p class="muted">radfusion {e(report.get("radfusion_version"))} &middot; report '
        f"schema {e(report.get('schema_version'))} &middot; task survival &middot; seed "
        f"{e(report.get('seed'))}</p>",
        f"<nav>{nav}</nav>",
        evaluability_html(report, fusion=fusion_sentences(report)),
        '<h2 id="cohort">Cohort</h2>',
        _cohort_html(report),
        '<h2 id="methods">Methods</h2>',
        '<div class="methods">'
        + "".join(f"<p>{e(p)}</p>" for p in report["methods"]["text"])
        + "</div>",
        '<h2 id="performance">Cross-validated performance</h2>',
        f'<p class="muted">Mean [95 % CI]. {e(report.get("ci_method"))}</p>',
        f'<div class="scroll">{_performance_html(report)}</div>',
        "".join(f'<p class="muted">Not run: {e(k)}: {e(v)}.</p>' for k, v in skipped.items()),
        groups_html(report.get("groups"), metric="harrell_c", title="Harrell's C"),
        '<h2 id="comparisons">Fused models against single groups</h2>',
        f'<p class="muted">{e(report["comparisons"]["method"])}</p>',
        f'<div class="scroll">{_comparisons_html(report)}</div>',
        '<h2 id="figures">Figures</h2>',
        *figures,
        '<h2 id="checklists">Reporting checklists</h2>',
        checklists_html(report["checklists"], anchors)
        if report.get("checklists")
        else "<p>No checklist mapping in this report.</p>",
        '<h2 id="reproduce">How to re-run</h2>',
        reproduce_html(report["reproduce"]),
        '<h2 id="provenance">Provenance</h2>',
        "<h3>Configuration</h3>"
        f"<pre>{e(json.dumps(config, indent=2, ensure_ascii=False))}</pre>"
        f'<h3>Inputs</h3><div class="scroll">{inputs_html(report["inputs"])}</div>'
        f"<h3>Software versions</h3>{versions_html(report['versions'])}",
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)}</title>\n<style>{REPORT_CSS}</style>\n"
        "</head>\n<body>\n" + "\n".join(part for part in body if part) + "\n</body>\n</html>\n"
    )
