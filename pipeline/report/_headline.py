"""The report's headline: the model declared before the run (:func:`primary_model`), the
opening answer (its score, whether fusion helped) and what a cohort of this size can tell at
all (``report["evaluability"]``, :func:`evaluability`).

The counts part reads the class counts (events for survival) and nothing the models did, so
it says the same before and after the run; the optimism part sets the best of the models
against the headline model declared before the run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..evaluability import best_of_optimism, chance_thresholds, corrected_resampled_interval
from ..targets import Task
from ..validation import CVResult, fold_scores, output_cube
from ._html import escape, finite_number

__all__ = [
    "ADEQUATE_AUC",
    "POWER",
    "cohort_evaluability",
    "evaluability",
    "evaluability_html",
    "primary_model",
]

LEVEL = 0.95
POWER = 0.8
"""The power at which :func:`evaluability` states the smallest detectable AUC."""
ADEQUATE_AUC = 0.75
"""A cohort that cannot detect a true AUC this high (80 % power) is called too small: about
the middle of the honest nested-CV AUCs of the radMLBench tables (median of the better of
logistic regression and random forest over the 12 shared tables: 0.756)."""
N_DRAWS = 4000
"""Random scorings of the outcomes that give the chance distribution of the metric."""
SHORT_NAMES = {
    "roc_auc": "AUC",
    "roc_auc_ovr": "one-vs-rest AUC",
    "harrell_c": "C-index",
    "r2": "R²",
}
ARTICLES = {"AUC": "an", "R²": "an"}
"""The article before a metric's short name ("a" otherwise)."""

CHANCE_METHOD = (
    "What the cohort can tell comes from its outcomes alone: the metric of 4,000 random "
    "scorings of them (at least 200 for Harrell's C on large cohorts) is what chance gives "
    "at this size and balance; "
    "an estimate below its 97.5th percentile cannot be told from chance (two-sided 5 %), and "
    "a true value 0.84 null standard deviations above that percentile is detected with 80 % "
    "power. "
)
OPTIMISM_METHOD = (
    "The optimism of reporting the best of N models is the expected maximum of N "
    "independent estimates with the null spread, on average (models scored on the same "
    "patients are correlated, so the real excess is usually smaller); the run's own excess "
    "is the best model's estimate minus the headline model's. "
)
INTERVAL_METHOD = (
    "The report's CIs resample patients with each fold's fitted model held fixed: they "
    "describe the uncertainty from which patients were sampled, not from the training sets "
    "the folds share; the corrected resampled-t interval (Nadeau and Bengio) of the headline "
    "model's per-fold scores counts both and is given beside them (around the mean of the "
    "folds' scores, which differs from the pooled estimate)."
)


def primary_model(
    names: Sequence[str],
    config: Mapping[str, Any],
    fused: Sequence[str] = (),
    default_strategy: str = Task.default_strategy,
) -> dict[str, str] | None:
    """The headline model of a report, from the configuration only (never from the results).

    ``config["primary"]`` when given (``--primary``); else ``default_strategy`` (the task's,
    :attr:`radfusion.pipeline.targets.Task.default_strategy`: that of ``train`` and of the
    task's fusion estimator) when it ran; else the first of the ``fused`` models, else the
    first model. A declared model that could not be fitted (``config["skipped_models"]``)
    falls back to that choice, and ``declared`` says so.
    """
    names = list(names)
    declared = config.get("primary")
    skipped = config.get("skipped_models") or {}
    if declared is not None and declared not in skipped:
        if declared not in names:
            raise ValueError(f"primary model {declared!r} is not one of the models: {names}")
        return {"model": str(declared), "declared": "--primary"}
    why = f"--primary {declared} could not be fitted; " if declared is not None else ""
    if not names:
        return None
    if default_strategy in names:
        return {"model": default_strategy, "declared": why + "the default strategy"}
    fused = [name for name in names if name in fused]
    return {
        "model": (fused or names)[0],
        "declared": why + ("the first fused model run" if fused else "the first model run"),
    }


def cohort_evaluability(task: Task, y: Any, *, seed: int = 0) -> dict[str, Any]:
    """What a cohort of these outcomes can tell, from the outcomes alone (see the module
    docstring): the ``evaluability`` section of an external-validation report, and the
    chance part of a cross-validation report's."""
    metric = task.primary_metric
    short = SHORT_NAMES.get(metric, metric)
    out: dict[str, Any] = {
        "metric": metric,
        "counts": None,
        "level": LEVEL,
        "power": POWER,
        "adequate_value": ADEQUATE_AUC,
        "min_significant": None,
        "min_detectable": None,
        "null_sd": None,
        "too_small": None,
        "warning": None,
        "sentences": [],
        "method": "",
    }
    chance = task.chance_scores(y, N_DRAWS, seed)
    if chance is None:
        return out
    draws, counts, words = chance
    thresholds = chance_thresholds(draws, level=LEVEL, power=POWER)
    significant, detectable = thresholds["min_significant"], thresholds["min_detectable"]
    out.update(
        counts=counts,
        **thresholds,
        too_small=detectable is None or detectable > ADEQUATE_AUC,
        method=CHANCE_METHOD,
    )
    article = ARTICLES.get(short, "a")
    if significant is None:
        out["sentences"].append(f"With {words}, no {short} can be told from chance.")
    else:
        out["sentences"].append(
            f"With {words}, {article} {short} below {significant:.2f} cannot be told from "
            "chance, and "
            + (
                f"a model needs a true {short} of {detectable:.2f} to be detected with 80 % power."
                if detectable is not None
                else f"no true {short} is detected with 80 % power."
            )
        )
    if out["too_small"]:
        out["warning"] = (
            f"This cohort is too small for the question: it cannot reliably tell a typical "
            f"radiomics signal (a true {short} of {ADEQUATE_AUC:.2f}) from chance, so "
            "treat every result here as exploratory."
        )
    return out


def evaluability(
    result: CVResult, report: Mapping[str, Any], config: Mapping[str, Any]
) -> dict[str, Any]:
    """The ``evaluability`` section of a cross-validation report (see the module docstring):
    :func:`cohort_evaluability`, the headline model's estimates and the best-of-N optimism."""
    task = result.task
    names = list(report["models"])
    metric = task.primary_metric
    _, _, _, y = output_cube(result.predictions, task, names[:1])
    out = cohort_evaluability(task, y, seed=int(report.get("seed") or 0))
    headline = primary_model(names, config, result.fused, task.default_strategy)
    scores = {name: report["models"][name]["metrics"].get(metric) or {} for name in names}
    value = scores[headline["model"]]
    best = report.get("best")
    bound = None
    if out["null_sd"] is not None:
        bound = best_of_optimism(len(names), out["null_sd"])
    observed = None
    if best is not None and finite_number(value.get("mean")) is not None:
        observed = scores[best]["mean"] - value["mean"]
    out.update(
        headline={
            **headline,
            **{k: finite_number(value.get(k)) for k in ("mean", "ci_low", "ci_high")},
            "fold_interval": corrected_resampled_interval(
                *fold_scores(result.predictions, headline["model"], task), level=LEVEL
            ),
        },
        optimism={
            "n_models": len(names),
            "best": best,
            "expected": bound,
            "observed": observed,
        },
        method=out["method"] + (OPTIMISM_METHOD if bound is not None else "") + INTERVAL_METHOD,
    )
    if observed is not None and len(names) > 1:
        if best == headline["model"]:
            out["sentences"].append(f"The headline model is also the best of the {len(names)}.")
        else:
            out["sentences"].append(
                f"Reporting the best of {len(names)} models instead of the declared one "
                + (
                    f"adds about {bound:.3f} on average by chance alone; "
                    if bound is not None
                    else "is optimistic; "
                )
                + f"here the best ({best}) is {observed:+.3f} above the headline model."
            )
    return out


def _estimate(value: Mapping[str, Any], interval: str) -> str:
    """``0.812 [95 % CI 0.700, 0.900]``, without the brackets when there is no interval."""
    text = f"{value['mean']:.3f}"
    if value.get("ci_low") is not None and value.get("ci_high") is not None:
        text += f" [{interval} {value['ci_low']:.3f}, {value['ci_high']:.3f}]"
    return escape(text)


def evaluability_html(report: Mapping[str, Any], fusion: Sequence[str] | None = None) -> str:
    """The report's opening answer: the headline model, whether fusion helped (``fusion``:
    the report kind's sentences; default: the binary report's ``fusion_benefit``), and the
    evaluability sentences; empty for a report without the section."""
    section = report.get("evaluability")
    if not section or not (section.get("headline") or section["sentences"]):
        return ""
    headline = section.get("headline") or {}
    short = SHORT_NAMES.get(section["metric"], section["metric"])
    parts = ['<section class="answer" id="answer">', "<h2>The answer</h2>"]
    if headline.get("mean") is not None:
        interval = headline.get("fold_interval")
        parts.append(
            f"<p><strong>Headline model: {escape(headline['model'])}</strong> (declared before "
            f"the run: {escape(headline['declared'])}), {escape(short)} "
            + _estimate(headline, "95 % CI")
            + (
                f"; over its {interval['n_scores']} folds "
                + _estimate(interval, "corrected resampled-t")
                if interval
                else ""
            )
            + ".</p>"
        )
    if fusion is None:
        fusion = (report.get("fusion_benefit") or {}).get("sentences", ())
    parts += [f"<p>{escape(sentence)}</p>" for sentence in fusion]
    if section.get("warning"):
        parts.append(f'<p class="warning"><strong>{escape(section["warning"])}</strong></p>')
    parts += [f"<p>{escape(sentence)}</p>" for sentence in section["sentences"]]
    if section["method"]:
        parts.append(f'<p class="muted">{escape(section["method"])}</p>')
    parts.append("</section>")
    return "\n".join(parts)
