"""One cross-validation experiment: table → models → out-of-fold predictions → report files."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import CLINICAL_GROUP, SITE_COLUMN

from .dataset import Dataset, load_dataset
from .fusion import FUSED, STRATEGIES, build_models
from .learners import LEARNERS
from .report import (
    build_report,
    build_task_report,
    read_extraction,
    summarize_diagnostics,
    write_report,
)
from .statistics import describe_cohort
from .tables import index_by_id, read_table, resolve_id
from .validation import (
    FoldExplainer,
    cross_validate_models,
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


def comparison_pairs(models: Sequence[str]) -> list[tuple[str, str]]:
    """Each fused model against each single-group model (the clinical-only one included)."""
    return [(f, s) for f in models if f in FUSED for s in models if s not in FUSED]


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
    label: str,
    out: str | Path,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    group_pattern: str | None = None,
    strategies: Sequence[str] = STRATEGIES,
    learner: str = "lr",
    learners: Sequence[str] = LEARNERS,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    n_bootstrap: int = 1000,
    command: str | None = None,
    harmonize: bool = False,
    harmonize_unseen: str = "pooled",
    correlation_threshold: float | None = None,
    select_k: int | None = None,
    select_method: str = "anova",
    explain: bool = True,
    tune: bool = False,
    n_iter: int = 20,
    scheduler: Any = None,
    task: str = "auto",
    biomarkers_id: str | None = None,
) -> dict:
    """Cross-validate every single group and the fused models; write the report to ``out``.

    Returns the report (the content of ``report.json``). Every step that learns is inside
    the estimators, so it is refitted on the training rows of each fold only: with
    ``harmonize=True`` the table's ``site`` column is kept in ``X`` and every branch
    harmonises its imaging features with ComBat (``harmonize_unseen`` for sites absent from a
    training fold); ``correlation_threshold``, ``select_k`` and ``select_method`` add a
    correlation filter and a top-k selector to every branch (see
    :func:`radfusion.pipeline.fusion.build_model`). With ``explain`` (default) the report gets its
    ``explanations`` (:mod:`radfusion.pipeline.validation`), computed from the fitted fold models
    inside the CV workers: meta-learner weights, AUC drop per group of the late model, held-out
    permutation importance of the single-group models and, when a selector ran, selection
    frequencies. With ``tune`` every branch gets a randomised search of ``n_iter`` settings
    over inner folds of each outer training set (nested CV); the settings chosen in every
    outer fold are recorded in ``config["tuning"]``. With ``scheduler`` (a Dask scheduler
    address or a ``distributed.Client``) the (model, repeat, fold) tasks run on that cluster
    through joblib's Dask backend; the results are those of a local run.

    ``task`` is the target's kind ("auto": guessed, see
    :func:`radfusion.pipeline.targets.infer_task`). Multiclass and regression targets get the same
    models and CV (stratified by class; plain K-fold for regression) and a report with their own
    metrics (:mod:`radfusion.pipeline.report`); explanations are computed for binary targets
    only.

    A table written by the ``pyradiomics`` command line is accepted as it is
    (:func:`radfusion.pipeline.dataset.load_dataset`); the settings its diagnostics record go
    into the methods text. ``biomarkers_id`` names the biomarker table's id column when it
    differs from ``id_column``.
    """
    started = time.perf_counter()
    data = load_dataset(
        features,
        label=label,
        biomarkers=biomarkers,
        id_column=id_column,
        group_pattern=group_pattern,
        keep_site=harmonize,
        task=task,
        biomarkers_id=biomarkers_id,
    )
    explain = explain and data.task == "binary"
    models = select_models(
        build_models(
            data.groups,
            learner=learner,
            learners=learners,
            random_state=seed,
            harmonize=SITE_COLUMN if harmonize else None,
            harmonize_unseen=harmonize_unseen,
            correlation_threshold=correlation_threshold,
            select_k=select_k,
            select_method=select_method,
            tune=tune,
            n_iter=n_iter,
            task=data.task,
        ),
        strategies,
    )
    loaded = time.perf_counter()
    selection = select_k is not None or correlation_threshold is not None
    single = single_group_models(list(models), data.groups)
    if explain:
        hook = FoldExplainer(
            groups=data.groups, single=single, seed=seed, selection=selection, tuned=tune
        )
    elif tune:
        hook = FoldExplainer(groups=data.groups, single={}, late=None, stacking=None, tuned=True)
    else:
        hook = None
    with _backend(scheduler):
        result = cross_validate_models(
            models,
            data.X,
            data.y,
            ids=data.ids,
            folds=folds,
            repeats=repeats,
            seed=seed,
            n_jobs=-1 if scheduler is not None else n_jobs,
            fold_hook=hook,
            task=data.task,
            skip_failing=True,
        )
    predictions, records = result if hook is not None else (result, None)
    skipped = predictions.attrs.get("skipped", {})
    for name, reason in skipped.items():
        warnings.warn(f"model {name!r} skipped: {reason}", SkippedModelWarning, stacklevel=2)
    models = {name: model for name, model in models.items() if name not in skipped}
    single = {name: group for name, group in single.items() if name not in skipped}
    explanations = (
        summarize_explanations(
            records,
            groups=data.groups,
            single=single,
            selection=selection,
        )
        if explain
        else None
    )
    validated = time.perf_counter()
    summary = summarize(predictions, n_bootstrap=n_bootstrap, seed=seed)
    config = {
        "label": label,
        "task": data.task,
        "id_column": data.id_column,
        "biomarkers_id_column": data.biomarkers_id_column,
        "group_pattern": group_pattern,
        "strategies": list(strategies),
        "learner": learner,
        "stacking_learners": list(learners),
        "folds": folds,
        "repeats": repeats,
        "n_bootstrap": n_bootstrap,
        "preprocessing": {
            "harmonize": SITE_COLUMN if harmonize else None,
            "harmonize_unseen": harmonize_unseen if harmonize else None,
            "correlation_threshold": correlation_threshold,
            "select_k": select_k,
            "select_method": select_method if select_k is not None else None,
        },
        "tuning": {
            "n_iter": n_iter,
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
        "encoded_columns": data.encoded,
        "label_mapping": data.label_mapping,
        "command": command,
    }
    if skipped:  # absent otherwise, so a complete run's report is unchanged
        config["skipped_models"] = dict(skipped)
    inputs = {"features": features}
    if biomarkers is not None:
        inputs["biomarkers"] = biomarkers
    if data.task == "binary":
        report = build_report(
            predictions,
            summary,
            config=config,
            seed=seed,
            inputs=inputs,
            groups=data.groups,
            cohort=describe(data, biomarkers),
            comparisons=comparison_pairs(list(models)),
            n_bootstrap=n_bootstrap,
            extraction=(
                summarize_diagnostics(data.diagnostics, Path(features).name)
                if data.diagnostics is not None
                else read_extraction(features)
            ),
            explanations=explanations,
        )
    else:
        report = build_task_report(
            predictions,
            summary,
            task=data.task,
            config=config,
            seed=seed,
            inputs=inputs,
            groups=data.groups,
        )
    # run.json is part of the report set: its durations are taken just before the commit.
    write_report(
        report,
        predictions,
        out,
        durations=lambda: {
            "load_seconds": loaded - started,
            "cross_validation_seconds": validated - loaded,
            "report_seconds": time.perf_counter() - validated,
        },
    )
    return report
