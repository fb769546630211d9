"""Fit a fusion model on a whole cohort: the one a cv run validated, or from options."""

from __future__ import annotations

import dataclasses
import importlib
import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from radfusion.features.errors import InputError, Problem
from radfusion.features.files import file_digest
from radfusion.features.naming import SITE_COLUMN, is_control_column

from ..cohorts import clinical_columns, model_cohort
from ..columns import CONTROL_GROUP
from ..dataset import load_dataset
from ..fusion import FUSED, STRATEGIES, check_fusion_params, make_estimator
from ..report import jsonable
from ..tables import UnmatchedPatientsWarning, read_table
from ..targets import get_task
from ._card import cross_validation_summary
from ._model_file import TrainedModel, is_trusted_type, library_versions
from ._predict import read_inputs

__all__ = ["TrainingDataWarning", "train_from_report", "train_model"]


class TrainingDataWarning(UserWarning):
    """``train --from-report`` on tables other than those the report cross-validated."""


# --------------------------------------------------------------------------- train
def train_model(
    features: str | Path,
    *,
    label: str | None = None,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    params: Mapping[str, Any] | None = None,
    strategy: str | None = None,
    seed: int = 0,
    task: str = "auto",
    biomarkers_id: str | None = None,
    time: str | None = None,
    event: str | None = None,
    horizons: Sequence[float] | None = None,
) -> TrainedModel:
    """Fit one fusion strategy on every patient of the table.

    The estimator is the one :func:`radfusion.pipeline.experiment.run_cv` cross-validates for
    the same ``params``, ``strategy`` and ``seed`` (see :func:`train_from_report`).

    Parameters
    ----------
    features, label, biomarkers, id_column, biomarkers_id
        As in :func:`radfusion.pipeline.dataset.load_dataset` (a pyradiomics output table
        too).
    params : mapping, optional
        The fusion estimator's parameters (:class:`~radfusion.pipeline.fusion.FusionClassifier`'s
        but ``strategy`` and ``use_groups``; default: its defaults). With ``harmonize`` a
        prediction table must have that column.
    strategy : {"early", "late", "stacking", "pooled", "shared"}, optional
        Fusion strategy, see :func:`radfusion.pipeline.fusion.build_model`; None: the task's
        default (:attr:`radfusion.pipeline.targets.Task.default_strategy`: ``"pooled"``,
        ``"stacking"`` for survival).
    seed : int, default=0
        The estimator's ``random_state``.
    task : {"auto", "binary", "multiclass", "regression", "survival"}, default="auto"
        The target's kind (see :func:`radfusion.pipeline.dataset.load_dataset`).
    time, event, horizons
        A survival target's columns and the horizons at which ``predict`` gives the survival
        probability (default: the quartiles of the training table's event times); the model
        is a :class:`~radfusion.pipeline.fusion.FusionSurvival` (``params`` it does not take,
        such as ``tune``, are refused with the reason).

    Returns
    -------
    TrainedModel

    Raises
    ------
    InputError
        Unreadable tables, bad label, unknown strategy or learner.
    """
    params = check_fusion_params(params, random_state=seed)
    data = load_dataset(
        features,
        label=label,
        biomarkers=biomarkers,
        id_column=id_column,
        group_pattern=params.get("group_pattern"),
        harmonize=params.get("harmonize"),
        task=task,
        biomarkers_id=biomarkers_id,
        time=time,
        event=event,
        horizons=horizons,
    )
    params = data.with_categories(params)
    strategy = data.task.default_strategy if strategy is None else strategy
    return _fit(data, features, biomarkers, id_column, biomarkers_id, strategy, params, event)


def _fit(
    data, features, biomarkers, id_column, biomarkers_id, strategy: str, params: dict, event=None
) -> TrainedModel:
    """Fit ``make_estimator(strategy, **params)`` on a dataset and describe it."""
    if strategy not in STRATEGIES:
        raise InputError(
            "Unknown fusion strategy",
            [Problem(f"{strategy!r} is not one of {', '.join(map(repr, STRATEGIES))}")],
        )
    table = data.table
    if CONTROL_GROUP not in (params.get("use_groups") or ()):
        # Negative-control columns are never fused: a model that does not use them must not
        # ask for them at predict (a new cohort is extracted without --negative-control).
        table = table.drop(columns=[c for c in table.columns if is_control_column(str(c))])
    estimator = make_estimator(strategy, task=data.task, **params).fit(table, data.y)
    with warnings.catch_warnings():  # load_dataset reported the join already
        warnings.simplefilter("ignore", UnmatchedPatientsWarning)
        raw, _ = read_inputs(
            features,
            biomarkers,
            id_column,
            biomarkers_id=biomarkers_id,
            keep=(data.label, SITE_COLUMN),
        )
    classes = [None] * len(data.label_mapping)
    for value in raw[data.label].dropna().unique() if classes else ():
        classes[data.label_mapping[str(value)]] = _plain(value)
    counts = {str(c): int(np.sum(data.y == k)) for k, c in enumerate(classes)} if classes else {}
    cohort = None  # Table 1 (aggregates only) for `radfusion validate`, by class
    if data.task.describes_cohort:
        cohort = model_cohort(
            table,
            data.y,
            classes,
            columns=clinical_columns(list(table.columns), estimator.groups_, estimator.harmonize),
            groups=estimator.groups_,
            site=data.site,
        )
    return TrainedModel(
        estimator=estimator,
        label=data.label,
        classes=classes,
        id_column=data.id_column,
        columns=[str(c) for c in table.columns],
        groups=estimator.groups_,
        settings={
            "strategy": strategy,
            "task": data.task.name,
            "params": jsonable(estimator.get_params(deep=False)),
            **data.task.model_settings(data.y, estimator, table, label=data.label, event=event),
        },
        training={
            "n_patients": len(data.y),
            "class_counts": counts,
            "biomarker_columns": _biomarker_columns(
                biomarkers, biomarkers_id, data.biomarkers_id_column
            ),
            "cohort": jsonable(cohort),
        },
        versions=library_versions(),
    )


def train_from_report(
    report: str | Path | Mapping[str, Any],
    features: str | Path,
    *,
    biomarkers: str | Path | None = None,
    strategy: str | None = None,
) -> TrainedModel:
    """Train exactly the model a cross-validation report validated, on every patient.

    The estimator is rebuilt from the parameters the report recorded for it
    (``config.models[strategy]``, its ``get_params()``), and the table is read as cv read it
    (label, task, id column, site column); only the strategy is chosen, among the fused
    models the report compared (default: its only one, else its headline model,
    ``report["primary"]``, else the task's default strategy, else ``"stacking"``, when the
    report compared them). A feature or biomarker table whose SHA-256 differs from the one
    the report records gives a :class:`TrainingDataWarning`.

    Raises
    ------
    InputError
        A report that is not a radfusion cv report (or one from before radfusion 0.2, which did
        not record its estimators), a strategy the report did not validate, or a model record
        that does not name exactly the estimator's parameters (hand-edited, or written before a
        parameter existed).
    """
    path = None if isinstance(report, Mapping) else Path(report)
    digest = None
    if path is not None:
        try:
            digest = file_digest(path)
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise InputError(
                "Cannot read the report", [Problem(str(error), file=str(path))]
            ) from error
    where = str(path) if path is not None else "report"
    config = report.get("config") if isinstance(report, Mapping) else None
    if not isinstance(config, Mapping) or "label" not in config:
        raise InputError(
            "Not a radfusion cv report",
            [
                Problem(
                    "expected the report.json written by radfusion cv (with a 'config')", file=where
                )
            ],
        )
    models = config.get("models")
    if not isinstance(models, Mapping):
        raise InputError(
            "The report does not record its models",
            [
                Problem(
                    "a report written before radfusion 0.2 has no 'config.models': re-run "
                    "radfusion cv, or train with the same options and radfusion train --label",
                    file=where,
                )
            ],
        )
    fused = [s for s in config.get("strategies", ()) if s in FUSED and s in models]
    if strategy is None:
        # its only fused model, else its headline, else the task's default, else stacking
        headline = (report.get("primary") or {}).get("model")
        default = get_task(_recorded_task(config)).default_strategy
        preferred = [s for s in (headline, default, "stacking") if s in fused]
        strategy = fused[0] if len(fused) == 1 else (preferred or [None])[0]
        if strategy is None:
            raise InputError(
                "Which fused model to train?",
                [
                    Problem(
                        f"the report compared {', '.join(fused) or 'no fused model'} and none "
                        "is its headline: choose one with --strategy",
                        file=where,
                    )
                ],
            )
    if strategy not in fused:
        raise InputError(
            "The report did not validate this strategy",
            [
                Problem(
                    f"{strategy!r} is not among its fused models: {', '.join(fused) or 'none'}",
                    file=where,
                )
            ],
        )
    for name, given in (("features", features), ("biomarkers", biomarkers)):
        recorded = (report.get("inputs") or {}).get(name) or {}
        if given is not None and recorded.get("sha256") not in (None, file_digest(given)):
            warnings.warn(
                f"{given} is not the {name} table the report cross-validated "
                f"(SHA-256 differs from {recorded.get('path')})",
                TrainingDataWarning,
                stacklevel=2,
            )
    params = _rebuilt(_recorded_params(config, strategy, where), where)
    params.pop("strategy", None)
    data = load_dataset(
        features,
        label=config["label"],
        biomarkers=biomarkers,
        id_column=config.get("id_column"),
        group_pattern=params.get("group_pattern"),
        harmonize=params.get("harmonize"),
        task=_recorded_task(config),
        biomarkers_id=config.get("biomarkers_id_column"),
        time=config.get("time"),
        event=config.get("event"),
        horizons=config.get("horizons"),
    )
    trained = _fit(
        data,
        features,
        biomarkers,
        config.get("id_column"),
        config.get("biomarkers_id_column"),
        strategy,
        params,
        config.get("event"),
    )
    summary = jsonable(cross_validation_summary(report, strategy, digest))
    return dataclasses.replace(trained, training={**trained.training, "cross_validation": summary})


def _recorded_task(config: Mapping[str, Any]) -> str:
    """The report's task (every report that records its models names it; binary otherwise)."""
    return config.get("task", "binary")


def _recorded_params(config: Mapping[str, Any], strategy: str, file: str) -> dict[str, Any]:
    """The parameters ``config.models[strategy]`` records, checked to name every parameter of
    the task's fusion estimator and nothing else: a hand-edited report that drops one would
    silently train with today's default, and a misspelt one is not a setting. A report written
    by a radfusion before a parameter existed is refused the same way: the default it ran with
    may not be today's (stacking's combiner changed), so the model would not be the one it
    validated."""
    record = config["models"][strategy]
    where = f"config.models.{strategy}"
    if not isinstance(record, Mapping):
        raise InputError(
            "The report's model record is damaged",
            [Problem(f"{where} is not a mapping of parameters", file=file)],
        )
    try:
        expected = set(make_estimator(strategy, task=_recorded_task(config)).get_params(deep=False))
    except (InputError, ValueError) as error:
        raise InputError(
            "The report's model record is damaged",
            [Problem(f"config.task {_recorded_task(config)!r}: {error}", file=file)],
        ) from error
    unknown = sorted(set(record) - expected)
    missing = sorted(expected - set(record))
    if unknown or missing:
        raise InputError(
            "The report's model record does not match the estimator",
            [
                Problem(f"{where}.{name}: not a parameter of the estimator", file=file)
                for name in unknown
            ]
            + [
                Problem(
                    f"{where}.{name} is missing: a cv report records every parameter, and "
                    "one from an older radfusion ran with that version's default; re-run "
                    "radfusion cv (or restore the value)",
                    file=file,
                )
                for name in missing
            ],
        )
    return dict(record)


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


def _biomarker_columns(biomarkers, id_column, id_name) -> list[str]:
    if biomarkers is None:
        return []
    columns = read_table(biomarkers).columns
    return [str(c) for c in columns if c not in {id_column, id_name}]


def _rebuilt(params: Mapping[str, Any], file: str) -> dict[str, Any]:
    """Recorded parameters with each recorded estimator (a learner given as one:
    ``{"estimator": class path, "params": ...}``) rebuilt, trusting only the estimator classes a
    model file may hold (:func:`~radfusion.pipeline.persistence.is_trusted_type`, or a public
    scikit-learn, XGBoost or scikit-survival estimator)."""

    def build(value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) == {"estimator", "params"}:
            path = str(value["estimator"])
            module, _, name = path.rpartition(".")
            kind = getattr(importlib.import_module(module), name, None) if _known(path) else None
            if not (isinstance(kind, type) and issubclass(kind, BaseEstimator)):
                raise InputError(
                    "The report records an estimator radfusion does not rebuild",
                    [Problem(f"{path}: refit it with train_model and the estimator", file=file)],
                )
            return kind(**{k: build(v) for k, v in value["params"].items()})
        if isinstance(value, list):
            return [build(item) for item in value]
        return value

    return {key: build(value) for key, value in params.items()}


def _known(path: str) -> bool:
    """A class radfusion saves in model files, or a public class of a trusted library (its
    class may live in a private module, as scikit-learn's do)."""
    package, name = path.split(".")[0], path.rpartition(".")[2]
    return is_trusted_type(path) or (package in _LIBRARIES and not name.startswith("_"))


#: Libraries whose public estimators a report may record as learners.
_LIBRARIES = ("sklearn", "xgboost", "sksurv")
