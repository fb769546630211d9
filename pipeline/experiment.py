"""One cross-validation experiment: table → models → out-of-fold predictions → report files."""

from __future__ import annotations

import dataclasses
import time as clock
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import CLINICAL_GROUP, SITE_COLUMN

from .dataset import Dataset, load_dataset
from .fusion import (
    FUSED,
    STRATEGIES,
    build_estimators,
    check_fusion_params,
    unavailable_strategies,
)
from .grouping import split_off_groups
from .report import (
    build_cv_report,
    jsonable,
    primary_model,
    read_extraction,
    summarize_diagnostics,
    write_report,
)
from .statistics import describe_cohort
from .tables import index_by_id, read_table, resolve_id
from .validation import (
    FoldExplainer,
    cross_validate_models,
    fused_models,
    single_group_models,
    summarize,
    summarize_explanations,
)


class SkippedModelWarning(UserWarning):
    """A model could not be fitted on this cohort (too few patients); the others report."""


def select_models(models: dict, strategies: Sequence[str]) -> dict:
    """Keep the models of the requested strategies (``single`` = every single-group model)."""
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise InputError(
            "Unknown strategy",
            [Problem(f"{name!r} is not one of {', '.join(STRATEGIES)}") for name in unknown],
        )
    return {
        name: model
        for name, model in models.items()
        if (name in FUSED and name in strategies) or (name not in FUSED and "single" in strategies)
    }


def estimator_params(model) -> dict[str, Any]:
    """A fusion estimator's ``get_params()`` as JSON data (what ``config.models`` records)."""
    return jsonable(model.get_params(deep=False))


def cohort_variables(
    data: Dataset, biomarkers: str | Path | None, id_column: str | None = None
) -> pd.DataFrame | None:
    """Patient characteristics for Table 1, one row per patient of ``data`` (same order).

    The biomarker table as read (text columns unencoded), without the id, label and site
    columns; without one, the clinical group's columns of the model matrix. ``id_column`` is
    the biomarker table's id column (default: the one ``data`` was joined by).
    """
    if biomarkers is not None:
        file = str(biomarkers)
        name = id_column or data.biomarkers_id_column or data.id_column
        table = read_table(biomarkers, name)
        table = index_by_id(table, resolve_id(table, name, file), file)
        drop = [c for c in (data.label, SITE_COLUMN) if c in table.columns]
        return table.drop(columns=drop).reindex(data.X.index)
    columns = data.groups.get(CLINICAL_GROUP)
    return data.X[columns] if columns else None


def describe(
    data: Dataset, biomarkers: str | Path | None = None, id_column: str | None = None
) -> dict:
    """Table 1 of a dataset (:func:`radfusion.pipeline.statistics.describe_cohort`)."""
    classes = [label for label, _ in sorted(data.label_mapping.items(), key=lambda kv: kv[1])]
    missing = pd.DataFrame(
        {group: data.X[columns].isna().all(axis=1) for group, columns in data.groups.items()}
    )
    return describe_cohort(
        data.y,
        classes,
        variables=cohort_variables(data, biomarkers, id_column),
        site=data.site,
        missing_groups=missing,
        group_sizes={group: len(columns) for group, columns in data.groups.items()},
    )


@contextmanager
def _backend(scheduler: Any) -> Iterator[None]:
    """joblib on a Dask cluster when a scheduler (address or client) is given."""
    if scheduler is None:
        yield
        return
    from joblib import parallel_config

    from radfusion.features.distributed import dask_client

    with dask_client(scheduler), parallel_config(backend="dask"):
        yield


def run_cv(
    features: str | Path,
    *,
    label: str | None = None,
    out: str | Path,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    params: Mapping[str, Any] | None = None,
    strategies: Sequence[str] | None = None,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    n_bootstrap: int = 1000,
    command: str | None = None,
    explain: bool = True,
    scheduler: Any = None,
    task: str = "auto",
    biomarkers_id: str | None = None,
    group_by: str | None = None,
    primary: str | None = None,
    progress: Callable[[int, int], Any] | None = None,
    time: str | None = None,
    event: str | None = None,
    horizons: Sequence[float] | None = None,
) -> dict:
    """Cross-validate every single group and the fused models; write the report to ``out``.

    Returns the report (the content of ``report.json``). Every model is a fusion estimator
    (:func:`radfusion.pipeline.fusion.build_estimators`) with the parameters ``params`` (those
    of :class:`~radfusion.pipeline.fusion.FusionClassifier` but ``strategy`` and
    ``use_groups``, which the comparison sets; checked before any table is read;
    ``random_state`` defaults to ``seed`` and ``categories`` to the table's text levels); the
    report records each model's ``get_params()`` in ``config["models"]``, which
    :func:`radfusion.pipeline.persistence.train_from_report` fits again. Every step that learns,
    the encoding of text columns included, is inside the estimators, so it is refitted on the
    training rows of each fold only: with ``harmonize`` (e.g. ``"site"``) that column is kept
    and every branch harmonises its imaging features with ComBat; the ICC, correlation and
    top-k filters run in every branch. With ``explain`` (default) the report gets its
    ``explanations`` (:mod:`radfusion.pipeline.validation`), computed from the fitted fold
    models inside the CV workers: meta-learner weights, AUC drop per group of the late model,
    held-out permutation importance of the single-group models and, when a selector ran,
    selection frequencies. With ``tune`` every branch gets a randomised search over
    inner folds of each outer training set (nested CV); the settings chosen in every outer fold
    are recorded in ``config["tuning"]``. With ``scheduler`` (a Dask scheduler address or a
    ``distributed.Client``) the (model, repeat, fold) tasks run on that cluster through
    joblib's Dask backend; the results are those of a local run.

    ``task`` is the target's kind ("auto": guessed, see
    :func:`radfusion.pipeline.targets.infer_task`). Multiclass and regression targets get the
    same models and CV (stratified by class; plain K-fold for regression) and a report with
    their own metrics (:mod:`radfusion.pipeline.report`); explanations are computed for binary
    targets only.

    ``task="survival"`` takes the ``time`` and ``event`` columns instead of ``label`` (and
    optional ``horizons``: default the 25/50/75 % quantiles of the observed event times,
    resolved once from the whole table): the models are
    :class:`~radfusion.pipeline.fusion.FusionSurvival` (no shared space: recorded in
    ``config["skipped_models"]``), the folds are stratified by event, and the report is the
    survival report (per-group Harrell's C instead of the AUC with ``group_by``).

    A table written by the ``pyradiomics`` command line is accepted as it is
    (:func:`radfusion.pipeline.dataset.load_dataset`); the settings its diagnostics record go
    into the methods text. ``biomarkers_id`` names the biomarker table's id column when it
    differs from ``id_column``.

    With ``group_by`` (a column of either table, e.g. ``"site"``) the folds are
    leave-one-group-out over its values instead (``folds`` and ``repeats`` are ignored: one
    fold per value, one repeat); the column is not a predictor, and the report gets
    ``groups``: per held-out group and model, patients, events and ROC AUC with a bootstrap
    CI (:func:`radfusion.pipeline.validation.group_metrics`). With ``harmonize`` the
    held-out site is unseen by ComBat, whose ``harmonize_unseen`` policy then applies; the
    report says so.

    ``strategies`` chooses the models compared (``"single"``: every single group; default: the
    task's :attr:`~radfusion.pipeline.targets.Task.default_strategies`, every strategy but
    ``stacking``, all six for survival).

    ``primary`` names the model the report leads with, declared before the run (default: the
    task's default strategy when it ran, ``pooled``, ``stacking`` for survival; see
    :func:`radfusion.pipeline.report.primary_model`).
    ``progress(done, total)`` follows the fits (:mod:`radfusion.pipeline.progress`).
    """
    params = check_fusion_params(params, random_state=seed)
    started = clock.perf_counter()
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
    held_out = None
    if group_by is not None:
        data, held_out = split_off_groups(data, group_by, str(features))
        held_out = held_out.reindex(data.table.index).to_numpy()
        task = data.task.for_held_out_groups(data.y, held_out, column=group_by, horizons=horizons)
        data = dataclasses.replace(data, task=task)
    explain = explain and data.task.explains
    if strategies is None:
        strategies = data.task.default_strategies
    models = select_models(
        build_estimators(
            list(data.groups),
            task=data.task,
            columns=list(data.table.columns),
            **data.with_categories(params),
        ),
        strategies,
    )
    unavailable = {
        name: why for name, why in unavailable_strategies(data.task).items() if name in strategies
    }
    if not models:
        raise InputError(
            "No model to run",
            [Problem(f"strategy {name!r}: {why}") for name, why in unavailable.items()]
            or [Problem(f"strategies {list(strategies)} select no model")],
        )
    if primary is not None and primary not in models:
        raise InputError(
            "Unknown primary model",
            [Problem(f"--primary {primary!r} is not one of the models run: {', '.join(models)}")],
        )
    loaded = clock.perf_counter()
    selection = (
        params.get("select_k") is not None or params.get("correlation_threshold") is not None
    )
    tune = bool(params.get("tune"))
    fused = fused_models(models)
    single = single_group_models(list(models), data.groups, fused)
    # the headline model, declared before the run, is the one whose branches get SHAP values
    headline = primary_model(
        list(models),
        {"primary": primary} if primary is not None else {},
        fused,
        data.task.default_strategy,
    )
    shap = headline["model"] if headline and data.task.explains else None
    if explain:
        hook = FoldExplainer(
            groups=data.groups,
            single=single,
            seed=seed,
            selection=selection,
            tuned=tune,
            shap=shap,
        )
    elif tune:
        hook = FoldExplainer(groups=data.groups, single={}, late=None, stacking=None, tuned=True)
    else:
        hook = None
    with _backend(scheduler):
        result = cross_validate_models(
            models,
            data.table,
            data.y,
            ids=data.ids,
            folds=folds,
            repeats=repeats,
            seed=seed,
            n_jobs=-1 if scheduler is not None else n_jobs,
            fold_hook=hook,
            task=data.task,
            skip_failing=True,
            groups=held_out,
            progress=progress,
        )
    skipped = result.skipped
    for name, reason in skipped.items():
        warnings.warn(f"model {name!r} skipped: {reason}", SkippedModelWarning, stacklevel=2)
    models = {name: model for name, model in models.items() if name not in skipped}
    single = {name: group for name, group in single.items() if name not in skipped}
    records = result.records
    explanations = (
        summarize_explanations(
            records,
            groups=data.groups,
            single=single,
            selection=selection,
            shap=shap,
        )
        if explain
        else None
    )
    validated = clock.perf_counter()
    summary = summarize(result.predictions, task=result.task, n_bootstrap=n_bootstrap, seed=seed)
    config = {
        **data.task.target_config(label=label, time=time, event=event, horizons=horizons),
        "task": data.task.name,
        "id_column": data.id_column,
        "biomarkers_id_column": data.biomarkers_id_column,
        "strategies": list(strategies),
        "folds": folds,
        "repeats": repeats,
        "n_bootstrap": n_bootstrap,
        "tuning": {
            "chosen": [
                {
                    "model": r["model"],
                    "repeat": r["repeat"],
                    "fold": r["fold"],
                    "branches": r["record"]["hyperparameters"],
                }
                for r in records or ()
                if r["record"] and r["record"].get("hyperparameters")
            ],
        }
        if tune
        else None,
        "models": {name: estimator_params(model) for name, model in models.items()},
        "encoded_columns": data.encoded,
        "label_mapping": data.label_mapping,
        "command": command,
    }
    if skipped or unavailable:  # absent otherwise, so a complete run's report is unchanged
        config["skipped_models"] = {**skipped, **unavailable}
    if primary is not None:  # declared before the run; absent: the default strategy
        config["primary"] = primary
    if group_by is not None:  # absent otherwise, so a K-fold run's report is unchanged
        names = result.held_out_groups
        config.update(folds=len(names), repeats=1, group_by=group_by, held_out_groups=names)
    inputs = {"features": features}
    if biomarkers is not None:
        inputs["biomarkers"] = biomarkers
    if params.get("icc_table") is not None:
        inputs["icc_table"] = params["icc_table"]
    report = build_cv_report(
        result,
        summary,
        config=config,
        seed=seed,
        inputs=inputs,
        groups=data.groups,
        cohort=describe(data, biomarkers) if data.task.describes_cohort else None,
        n_bootstrap=n_bootstrap,
        extraction=(
            summarize_diagnostics(data.diagnostics, Path(features).name)
            if data.diagnostics is not None
            else read_extraction(features)
        ),
        explanations=explanations,
    )
    # run.json is part of the report set: its durations are taken just before the commit.
    write_report(
        report,
        result.predictions,
        out,
        durations=lambda: {
            "load_seconds": loaded - started,
            "cross_validation_seconds": validated - loaded,
            "report_seconds": clock.perf_counter() - validated,
        },
    )
    return report
