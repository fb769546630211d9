"""A model card with every saved model: what the model is for, its data, its performance with
confidence intervals, its caveats and the versions that made it.

The card follows the Model Card Toolkit's JSON schema, version 0.0.2 (``model_card.schema.json``
of ``tensorflow/model-card-toolkit``; the sections of Mitchell et al., "Model Cards for Model
Reporting", FAT* 2019): ``model_details``, ``model_parameters``, ``quantitative_analysis`` and
``considerations``. Each performance metric also carries the toolkit's later
``confidence_interval`` (``lower_bound``, ``upper_bound``), which the schema's open metric
objects allow. :func:`model_card` builds it from the model file alone: its configuration, its
training cohort and, for a model trained from a cross-validation report (``train
--from-report``), that report's summary (``training["cross_validation"]``, written by
:func:`cross_validation_summary`); :func:`external_summary` adds an external validation
(``validate``). No number is typed here: every one is read from those records. The card is
written as ``<model>.card.json`` and a Markdown rendering, ``<model>.card.md``, beside the
model (:func:`card_paths`), in the same set of files as the model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..learners import strategy_learners
from ..targets import get_task

__all__ = [
    "CARD_SCHEMA_VERSION",
    "card_markdown",
    "card_paths",
    "cross_validation_summary",
    "external_summary",
    "model_card",
    "read_card_externals",
]

CARD_SCHEMA_VERSION = "0.0.2"
"""The Model Card Toolkit schema version the card follows."""

_USERS = (
    "Imaging researchers and clinician-scientists studying whether radiomics features and "
    "clinical variables predict this outcome; not clinicians deciding for an individual patient."
)
_USE_CASE = (
    "Research on cohorts like the training cohort: the same modalities and masks, features "
    "extracted with the same pyradiomics parameter files, the same clinical columns and "
    "coding. Prospective or clinical use needs an external validation and regulatory review."
)
_INTERNAL = (
    "Cross-validation estimates how well the modelling procedure does on patients it was not "
    "fitted on, drawn from the training population; it says nothing of other scanners, "
    "protocols, sites or populations until an external validation does."
)
_NO_CV = (
    "This model was trained without a cross-validation report (radfusion train --label): the "
    "card has no performance estimate. Run radfusion cv, then radfusion train --from-report, "
    "for a card with cross-validated performance."
)
_PRIVACY = {
    "name": "Patient data in the model file",
    "mitigation_strategy": "The model file holds the fitted model, the column names and "
    "aggregates of the training cohort (counts and Table 1), never a patient's row.",
}


def card_paths(model_path: str | Path) -> tuple[Path, Path]:
    """``<model>.card.json`` and ``<model>.card.md`` beside a model file."""
    path = Path(model_path)
    return path.with_name(path.name + ".card.json"), path.with_name(path.name + ".card.md")


def cross_validation_summary(report: Mapping[str, Any], strategy: str, digest: str | None) -> dict:
    """What a model card keeps of the cv report a model was trained from (``train
    --from-report``): the report file's SHA-256 (``digest``; None for a report given in
    memory), its design, the trained strategy's
    metrics with their CIs, the headline model, the evaluability sentences, the validity
    warnings and the held-out groups' metrics when the CV left groups out."""
    config = report.get("config") or {}
    evaluability = report.get("evaluability") or {}
    groups = ((report.get("groups") or {}).get("models") or {}).get(strategy)
    return {
        "report_sha256": digest,
        "strategy": strategy,
        "headline": report.get("primary"),
        "folds": config.get("folds"),
        "repeats": config.get("repeats"),
        "group_by": config.get("group_by"),
        "seed": report.get("seed"),
        "n_models": len(report.get("models") or {}),
        "metrics": (report.get("models") or {}).get(strategy, {}).get("metrics") or {},
        "groups": groups,
        "evaluability": {
            key: evaluability.get(key) for key in ("sentences", "warning", "too_small")
        },
        "warnings": list(report.get("warnings") or []),
    }


def external_summary(report: Mapping[str, Any], source: str) -> dict:
    """What a model card keeps of an external validation report (``validate``): the cohort
    (``source``, its size and input digests), the metrics with their CIs and the
    evaluability sentences."""
    data = report.get("data") or {}
    evaluability = report.get("evaluability") or {}
    return {
        "source": source,
        "n_patients": data.get("n_patients"),
        "inputs": {
            name: (value or {}).get("sha256")
            for name, value in (report.get("inputs") or {}).items()
        },
        "metrics": report.get("metrics") or {},
        "evaluability": {key: evaluability.get(key) for key in ("sentences", "warning")},
    }


def model_card(trained: Any, externals: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The model card of a :class:`~radfusion.pipeline.persistence.TrainedModel` (and of the
    external validations ``externals``, :func:`external_summary`), as Model Card Toolkit
    JSON (schema 0.0.2)."""
    settings, training = trained.settings, trained.training
    task = settings.get("task", "binary")
    strategy = settings.get("strategy")
    params = settings.get("params") or {}
    cv = training.get("cross_validation")
    versions = trained.versions or {}
    groups = {group: len(columns) for group, columns in trained.groups.items()}
    name = f"radfusion {strategy} model of {trained.label}"
    overview = (
        f"A {task} model of {trained.label!r} from {len(groups)} feature group"
        f"{'s' if len(groups) != 1 else ''} ({', '.join(groups)}), fusion strategy "
        f"{strategy}, trained by radfusion {versions.get('radfusion')} on "
        f"{training.get('n_patients')} patients."
    )
    metrics = []
    if cv:
        scheme = (
            f"leave one {cv['group_by']} out"
            if cv.get("group_by")
            else f"{cv.get('folds')} folds x {cv.get('repeats')} repeats"
        )
        metrics += _metrics(cv["metrics"], f"cross-validation ({scheme})")
        for row in cv.get("groups") or ():
            metrics += _metrics(
                {k: v for k, v in row.items() if isinstance(v, Mapping)},
                f"held-out {cv.get('group_by') or 'group'} {row['group']} (n = {row['n']})",
            )
    data = [
        {
            "name": "training cohort",
            "description": _training_description(trained),
        }
    ]
    for external in externals:
        slice_name = f"external: {external['source']}"
        metrics += _metrics(external["metrics"], slice_name)
        data.append(
            {
                "name": slice_name,
                "description": f"{external.get('n_patients')} patients; inputs (SHA-256): "
                + ", ".join(f"{k} {v}" for k, v in (external.get("inputs") or {}).items()),
                "radfusion_external": dict(external),
            }
        )
    limitations = [{"description": _NO_CV if not cv else _INTERNAL}]
    tradeoffs = []
    if cv:
        evaluability = cv.get("evaluability") or {}
        if evaluability.get("warning"):
            limitations.append({"description": evaluability["warning"]})
        limitations += [{"description": text} for text in evaluability.get("sentences") or ()]
        limitations += [{"description": text} for text in cv.get("warnings") or ()]
        headline = cv.get("headline") or {}
        tradeoffs.append(
            {
                "description": f"The cv report compared {cv.get('n_models')} models; its "
                f"headline model, declared before the run ({headline.get('declared')}), was "
                f"{headline.get('model')}; this model is {strategy}."
            }
        )
    for external in externals:
        ext = external.get("evaluability") or {}
        if ext.get("warning"):
            limitations.append({"description": f"{external['source']}: {ext['warning']}"})
    return {
        "schema_version": CARD_SCHEMA_VERSION,
        "model_details": {
            "name": name,
            "overview": overview,
            "documentation": _documentation(trained, cv),
            "version": {"name": f"radfusion {versions.get('radfusion')}"},
        },
        "model_parameters": {
            "model_architecture": _architecture(strategy, params, task),
            "data": data,
            "input_format": (
                f"One row per patient, identified by {trained.id_column!r} (text); "
                f"{len(trained.columns)} columns: "
                + ", ".join(f"{group} ({n})" for group, n in groups.items())
                + "."
            ),
            "output_format": get_task(task).output_description(trained.label, trained.classes),
        },
        "quantitative_analysis": {"performance_metrics": metrics},
        "considerations": {
            "users": [{"description": _USERS}],
            "use_cases": [{"description": _USE_CASE}],
            "limitations": limitations,
            "tradeoffs": tradeoffs,
            "ethical_considerations": [_PRIVACY],
        },
    }


def read_card_externals(path: str | Path) -> list[dict[str, Any]]:
    """The external validations a card already holds (none when there is no card)."""
    path = Path(path)
    if not path.exists():
        return []
    card = json.loads(path.read_text(encoding="utf-8"))
    data = (card.get("model_parameters") or {}).get("data") or []
    return [dict(d["radfusion_external"]) for d in data if "radfusion_external" in d]


def card_markdown(card: Mapping[str, Any]) -> str:
    """The card as Markdown: its sections in the schema's order, metrics as a table."""
    details, parameters = card["model_details"], card["model_parameters"]
    considerations = card["considerations"]
    lines = [
        f"# Model card: {details['name']}",
        "",
        details["overview"],
        "",
        f"Model Card Toolkit schema {card['schema_version']}; {details['version']['name']}.",
        "",
        "## Model details",
        "",
        details["documentation"],
        "",
        "## Model parameters",
        "",
        f"**Architecture.** {parameters['model_architecture']}",
        "",
        f"**Input.** {parameters['input_format']}",
        "",
        f"**Output.** {parameters['output_format']}",
        "",
        "**Data.**",
        "",
        *[f"- {d['name']}: {d['description']}" for d in parameters["data"]],
        "",
        "## Quantitative analysis",
        "",
    ]
    rows = card["quantitative_analysis"]["performance_metrics"]
    if rows:
        lines += ["| slice | metric | value | 95 % CI |", "| --- | --- | --- | --- |"]
        for row in rows:
            interval = row.get("confidence_interval")
            ci = (
                f"[{_number(interval['lower_bound'])}, {_number(interval['upper_bound'])}]"
                if interval
                else ""
            )
            lines.append(f"| {row['slice']} | {row['type']} | {_number(row['value'])} | {ci} |")
    else:
        lines.append("No performance estimate (see the limitations).")
    lines += ["", "## Considerations", ""]
    for title, key in (
        ("Intended users", "users"),
        ("Use cases", "use_cases"),
        ("Limitations", "limitations"),
        ("Trade-offs", "tradeoffs"),
    ):
        items = considerations.get(key) or []
        if items:
            lines += [f"**{title}.**", "", *[f"- {i['description']}" for i in items], ""]
    lines += ["**Ethical considerations.**", ""]
    lines += [
        f"- {risk['name']}: {risk['mitigation_strategy']}"
        for risk in considerations["ethical_considerations"]
    ]
    return "\n".join(lines) + "\n"


def _metrics(metrics: Mapping[str, Any], slice_name: str) -> list[dict[str, Any]]:
    """Model Card Toolkit performance metrics of ``{metric: {mean, ci_low, ci_high}}``; a
    metric that is not defined (null) is left out."""
    out = []
    for metric, value in metrics.items():
        if not isinstance(value, Mapping) or value.get("mean") is None:
            continue
        row: dict[str, Any] = {"type": metric, "value": value["mean"], "slice": slice_name}
        if value.get("ci_low") is not None and value.get("ci_high") is not None:
            row["confidence_interval"] = {
                "lower_bound": value["ci_low"],
                "upper_bound": value["ci_high"],
            }
        out.append(row)
    return out


def _training_description(trained: Any) -> str:
    training = trained.training
    counts = training.get("class_counts") or {}
    text = f"{training.get('n_patients')} patients, outcome {trained.label!r}"
    if counts:
        text += " (" + ", ".join(f"{k}: {v}" for k, v in counts.items()) + ")"
    if trained.settings.get("events") is not None:
        text += f", {trained.settings['events']} events"
    if (training.get("cohort") or {}).get("variables"):
        text += "; Table 1 of the training cohort is in the model file"
    return text + "."


def _architecture(strategy: str, params: Mapping[str, Any], task: str) -> str:
    learners = strategy_learners(strategy, params.get("learners"))
    combiner = params.get("combiner") or get_task(task).default_combiner
    combined = (
        "averaged with equal weights (nothing fitted on top)"
        if combiner == "mean"
        else f"combined by the {combiner} combiner fitted on inner out-of-fold outputs"
    )
    names = ", ".join(
        str(item[0]) if isinstance(item, (list, tuple)) else str(item) for item in learners
    )
    described = {
        "single": f"one branch on one group, learner {params.get('learner')}",
        "early": f"one branch on all groups' columns, learner {params.get('learner')}",
        "late": f"one branch per group (learner {params.get('learner')}), their outputs averaged",
        "stacking": f"one branch per group and learner ({names}), {combined}",
        "pooled": f"one branch per learner ({names}) on all groups' columns together, {combined}",
        "shared": "every group mapped into one latent space, a classifier on it",
    }.get(strategy, strategy)
    options = {
        key: value
        for key, value in params.items()
        if key in ("harmonize", "correlation_threshold", "select_k", "resample", "calibration")
        and value not in (None, False)
    }
    text = (
        f"radfusion {strategy} fusion ({task}): {described}. Each branch imputes (median), "
        "drops constant features and standardises inside the training rows."
    )
    if options:
        text += " Options: " + ", ".join(f"{k}={v}" for k, v in options.items()) + "."
    return text


def _documentation(trained: Any, cv: Mapping[str, Any] | None) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in (trained.versions or {}).items())
    text = f"Trained with {versions}. "
    if cv:
        source = (
            f"SHA-256 {cv['report_sha256']}"
            if cv.get("report_sha256")
            else "given in memory, no file digest"
        )
        text += (
            f"Trained from a cv report ({source}, seed {cv.get('seed')}) with the parameters "
            "it recorded for this strategy; the performance below is that report's."
        )
    else:
        text += _NO_CV
    return text


def _number(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else str(value)
