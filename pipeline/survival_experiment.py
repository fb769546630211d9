"""One survival cross-validation: table → :class:`FusionSurvival` models → report files.

:func:`run_survival_cv` is what ``radfusion cv --task survival --time COL --event COL`` and
``run_cv(..., task="survival", time=..., event=...)`` run: the same folds engine, summary and
report writer as the other tasks, with the survival task object
(:class:`~radfusion.pipeline.targets.SurvivalTask`), the survival estimators and the survival
report (:mod:`radfusion.pipeline.report`).
"""

from __future__ import annotations

import time as clock
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from radfusion.features.errors import InputError, Problem

from .dataset import load_dataset
from .fusion import (
    SHARED_SKIPPED,
    STRATEGIES,
    SURVIVAL_STRATEGIES,
    build_survival_estimators,
    check_fusion_params,
)
from .grouping import split_off_groups
from .learners import LEARNERS, SURVIVAL_LEARNERS
from .report import (
    build_cv_report,
    jsonable,
    read_extraction,
    summarize_diagnostics,
    write_report,
)
from .validation import cross_validate_models, summarize

__all__ = ["DEFAULT_SURVIVAL_LEARNER", "run_survival_cv", "survival_params"]

DEFAULT_SURVIVAL_LEARNER = "coxnet"
"""What the options' default learner ``"lr"`` becomes for a survival target."""


class SkippedSurvivalModelWarning(UserWarning):
    """A survival model could not be fitted on this cohort; the others report."""


#: FusionClassifier parameters with no survival form: refused when set.
_NOT_SURVIVAL = {
    "tune": "tune has no survival search space yet; leave it out",
    "combiner": "combiner chooses the classification/regression stacking combiner; survival "
    "stacking is a non-negative Cox model on the branches' risks",
    "calibration": "calibration calibrates class probabilities; it does not apply to survival",
    "resample": "resample oversamples a class; a survival target has none",
}


def survival_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The :class:`~radfusion.pipeline.fusion.FusionSurvival` parameters of a run's fusion
    parameters: ``learner`` and ``learners`` default to the survival learners (the
    classification default ``"lr"`` reads as :data:`DEFAULT_SURVIVAL_LEARNER`), and the
    options with no survival form (tuning, calibration, a stacking combiner, resampling) are
    refused when set."""
    params = dict(params)
    learner = params.pop("learner", DEFAULT_SURVIVAL_LEARNER)
    learner = DEFAULT_SURVIVAL_LEARNER if learner == "lr" else learner
    learners = tuple(params.pop("learners", SURVIVAL_LEARNERS))
    learners = SURVIVAL_LEARNERS if learners == tuple(LEARNERS) else learners
    problems = [
        Problem(
            f"learner {name!r} is not a survival learner; use one of {', '.join(SURVIVAL_LEARNERS)}"
        )
        for name in dict.fromkeys([learner, *learners])
        if name not in SURVIVAL_LEARNERS
    ]
    problems += [
        Problem(why) for name, why in _NOT_SURVIVAL.items() if params.get(name) not in (None, False)
    ]
    if problems:
        raise InputError("Options that do not fit a survival target", problems)
    for name in (*_NOT_SURVIVAL, "n_iter", "inner_cv"):
        params.pop(name, None)
    return {"learner": learner, "learners": learners, **params}


def run_survival_cv(
    features: str | Path,
    *,
    time: str | None,
    event: str | None,
    out: str | Path,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    params: Mapping[str, Any] | None = None,
    strategies: Sequence[str] = STRATEGIES,
    folds: int = 5,
    repeats: int = 3,
    seed: int = 0,
    n_jobs: int = 1,
    n_bootstrap: int = 1000,
    command: str | None = None,
    biomarkers_id: str | None = None,
    horizons: Sequence[float] | None = None,
    primary: str | None = None,
    progress: Callable[[int, int], Any] | None = None,
    group_by: str | None = None,
) -> dict:
    """Cross-validate every single group and the fused survival models; write the report.

    The folds are repeated K-fold stratified by the event indicator; every model is a
    :class:`~radfusion.pipeline.fusion.FusionSurvival` whose every learning step is fitted on
    the training rows of each fold only. The evaluation times (``horizons``: default the
    25/50/75 % quantiles of the observed event times; the integrated-Brier-score grid) are
    resolved once from the whole table's times and events
    (:meth:`~radfusion.pipeline.targets.SurvivalTask.for_target`). The shared-space strategy
    has no survival form and is recorded in ``config["skipped_models"]``. Returns the report
    (the content of ``report.json``).

    The bootstrap of the survival metrics rescores scikit-survival's metrics per replicate,
    model and repeat; ``n_bootstrap`` of a few hundred keeps a run short.

    With ``group_by`` (a column of either table, e.g. ``"site"``) the folds are
    leave-one-group-out over its values instead (``folds`` and ``repeats`` are ignored: one
    fold per value, one repeat; the column is not a predictor), and the report gets
    ``groups``: per held-out group and model, patients, events and Harrell's C with a
    bootstrap CI (:func:`radfusion.pipeline.report.build_survival_report`). A Dask run goes
    through :func:`radfusion.pipeline.experiment.run_cv` (``scheduler``), which runs this
    function inside joblib's Dask backend.
    """
    params = check_fusion_params(params, random_state=seed)
    started = clock.perf_counter()
    unknown = sorted(set(strategies) - set(STRATEGIES))
    if unknown:
        raise InputError(
            "Unknown strategy",
            [Problem(f"{name!r} is not one of {', '.join(STRATEGIES)}") for name in unknown],
        )
    data = load_dataset(
        features,
        biomarkers=biomarkers,
        id_column=id_column,
        group_pattern=params.get("group_pattern"),
        harmonize=params.get("harmonize"),
        task="survival",
        biomarkers_id=biomarkers_id,
        time=time,
        event=event,
        horizons=horizons,
    )
    held_out = None
    if group_by is not None:
        data, held_out = split_off_groups(data, group_by, str(features))
        held_out = held_out.reindex(data.table.index).to_numpy()
    params = survival_params(data.with_categories(params))
    built = build_survival_estimators(list(data.groups), columns=list(data.table.columns), **params)
    models = {
        name: model
        for name, model in built.items()
        if (model.strategy in strategies and model.strategy != "single")
        or (model.strategy == "single" and "single" in strategies)
    }
    if not models:
        raise InputError(
            "No survival model to run",
            [Problem(f"strategies {list(strategies)}: survival has {SURVIVAL_STRATEGIES}")],
        )
    if primary is not None and primary not in models:
        raise InputError(
            "Unknown primary model",
            [Problem(f"--primary {primary!r} is not one of the models run: {', '.join(models)}")],
        )
    loaded = clock.perf_counter()
    result = cross_validate_models(
        models,
        data.table,
        data.y,
        ids=data.ids,
        folds=folds,
        repeats=repeats,
        seed=seed,
        n_jobs=n_jobs,
        task=data.task,
        skip_failing=True,
        groups=held_out,
        progress=progress,
    )
    for name, reason in result.skipped.items():
        warnings.warn(
            f"model {name!r} skipped: {reason}", SkippedSurvivalModelWarning, stacklevel=2
        )
    models = {name: model for name, model in models.items() if name not in result.skipped}
    validated = clock.perf_counter()
    summary = summarize(result.predictions, task=result.task, n_bootstrap=n_bootstrap, seed=seed)
    skipped = dict(result.skipped)
    if "shared" in strategies:
        skipped["shared"] = SHARED_SKIPPED
    config = {
        "label": None,
        "time": time,
        "event": event,
        "task": "survival",
        "horizons": list(data.task.horizons),
        "horizons_given": horizons is not None,
        "id_column": data.id_column,
        "biomarkers_id_column": data.biomarkers_id_column,
        "strategies": list(strategies),
        "folds": folds,
        "repeats": repeats,
        "n_bootstrap": n_bootstrap,
        "tuning": None,
        "models": {n: jsonable(m.get_params(deep=False)) for n, m in models.items()},
        "encoded_columns": data.encoded,
        "label_mapping": {},
        "command": command,
        "skipped_models": skipped,
    }
    if primary is not None:
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
        n_bootstrap=n_bootstrap,
        extraction=(
            summarize_diagnostics(data.diagnostics, Path(features).name)
            if data.diagnostics is not None
            else read_extraction(features)
        ),
    )
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
