"""``radfusion``: a thin command line over the public functions of features/ and pipeline/."""

from __future__ import annotations

import functools
import inspect
import logging
import re
import shlex
import sys
import time
import warnings
from collections.abc import Sequence
from inspect import Parameter
from pathlib import Path
from typing import Annotated, get_args, get_origin, get_type_hints

import typer

from radfusion.features.errors import InputError, Problem
from radfusion.features.files import check_output_path

#: The settings of the command-line app (and of its features-only form, see :func:`main`).
APP_SETTINGS = dict(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Multimodal radiomics: images + biomarkers → cross-validated fusion model and report.",
)
app = typer.Typer(**APP_SETTINGS)

#: The commands that read images, not tables: they never need the estimators, so running
#: one of them never imports scikit-learn (:func:`main`).
FEATURE_COMMANDS = ("synth", "extract", "check", "robustness")

#: Exit code for bad input (manifest, tables, parameters): a message, never a traceback.
EXIT_BAD_INPUT = 2
#: Exit code when extraction finished but some cases failed (recorded in failures.csv).
EXIT_CASES_FAILED = 1


def _user_errors(command):
    """Turn InputError into a readable message and exit code 2; warnings into one line each."""

    # not __annotations__: typer reads the signature through __wrapped__, and copying the
    # annotations of a model command would build its options (import the estimators) at once
    @functools.wraps(command, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")
            try:
                return command(*args, **kwargs)
            except InputError as error:
                typer.echo(f"error: {error}", err=True)
                raise typer.Exit(EXIT_BAD_INPUT) from None
            finally:
                for warning in caught:
                    if issubclass(warning.category, UserWarning):
                        typer.echo(f"warning: {warning.message}", err=True)

    return wrapper


def _command_line() -> str:
    return shlex.join(["radfusion", *sys.argv[1:]])


def _nonzero_jobs(value: int) -> int:
    """joblib's n_jobs: a positive count, or negative for 'all cores but |n|-1'; never 0."""
    if value == 0:
        raise typer.BadParameter("0 workers: use a positive number, or -1 for all cores.")
    return value


Jobs = Annotated[
    int,
    typer.Option("--jobs", "-j", help="Parallel workers (-1: all cores).", callback=_nonzero_jobs),
]
Quiet = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="No progress bar (none is drawn off a terminal or in CI)."),
]
BatchModality = Annotated[
    str | None,
    typer.Option(help="Modality of a pyradiomics batch CSV's images (or a Modality column)."),
]
Seed = Annotated[
    int,
    typer.Option(min=0, max=2**32 - 1, help="Random seed (cohort, folds, models, bootstrap)."),
]
Folds = Annotated[int, typer.Option(min=2, help="Folds per repeat.")]
Repeats = Annotated[int, typer.Option(min=1, help="Repeats of stratified K-fold.")]
Features = Annotated[
    Path,
    typer.Argument(help="Feature table: Parquet or CSV (.gz too), or a pyradiomics output CSV."),
]
Label = Annotated[str, typer.Option(help="Outcome column (feature or biomarker table).")]
Biomarkers = Annotated[Path | None, typer.Option(help="Biomarker CSV to join.")]
IdColumn = Annotated[
    str | None, typer.Option("--id", help="Patient id column (default patient_id or ID).")
]
BiomarkersId = Annotated[
    str | None,
    typer.Option(
        "--biomarkers-id",
        help="Biomarker table's id column (default: the --id column if present, else "
        "patient_id or ID).",
    ),
]
Task = Annotated[
    str,
    typer.Option(
        help="Target kind: auto (guess), binary, multiclass, regression or survival "
        "(with --time and --event)."
    ),
]
Time = Annotated[str | None, typer.Option(help="Survival: time-to-event or censoring column.")]
Event = Annotated[str | None, typer.Option(help="Survival: event column (1 event, 0 censored).")]
Horizons = Annotated[
    list[float] | None,
    typer.Option(help="Survival: time-dependent AUC horizons (repeat; default event quartiles)."),
]

#: Parameters of the fusion estimators that are not model options of cv and train: the
#: comparison sets ``strategy`` and ``use_groups`` per model (train: ``--strategy``),
#: ``--seed`` and ``--jobs`` set ``random_state`` and the parallelism, and ``groups`` and
#: ``categories`` describe the table rather than a modelling choice.
NOT_MODEL_OPTIONS = ("strategy", "use_groups", "groups", "categories", "random_state", "n_jobs")


def _first_sentences(docstring: str) -> dict[str, str]:
    """Parameter name → the first sentence (before a colon) of its description in a numpydoc
    docstring, without reStructuredText markup."""
    body = docstring.split("Parameters\n    ----------\n", 1)[-1].split("\n    Attributes", 1)[0]
    described: dict[str, list[str]] = {}
    name = None
    for line in body.splitlines():
        if line.startswith("    ") and not line.startswith("     ") and line.strip():
            name = line.split(":")[0].strip()
            described[name] = []
        elif name is not None and line.strip():
            described[name].append(line.strip())
    out = {}
    for key, text in described.items():
        sentence = re.split(r"\.\s|: ", " ".join(text) + " ", maxsplit=1)[0].strip(" .")
        out[key] = re.sub(r"``|:\w+:`~?|`", "", sentence)
    return out


def model_options() -> list[inspect.Parameter]:
    """The model options of cv and train: every parameter of the fusion estimators (the
    signature of :class:`~radfusion.pipeline.fusion.FusionClassifier`) but
    :data:`NOT_MODEL_OPTIONS`, with its docstring's first sentence, its choices and its default
    as help. Each defaults to None, "not given": the estimator's own default applies, and a run
    passes on only what the user chose (``config.models`` records every parameter)."""
    from .fusion import FUSION_CONSTRAINTS, FusionClassifier
    from .learners import strategy_learners

    hints = get_type_hints(FusionClassifier.__init__)
    helps = _first_sentences(FusionClassifier.__doc__ or "")
    options = []
    for name, parameter in inspect.signature(FusionClassifier).parameters.items():
        if name in NOT_MODEL_OPTIONS:
            continue
        kind = hints.get(name, str | None)
        if kind not in (bool, int, float, str):
            kind = next(a for a in get_args(kind) if a is not type(None))  # X | None -> X
        if get_origin(kind) is Sequence:  # a sequence of names: repeat the option
            kind = list[str]
        choices = [getattr(c, "options", None) for c in FUSION_CONSTRAINTS.get(name, ())]
        default = parameter.default
        if name == "learners" and default is None:
            default = (
                f"{', '.join(strategy_learners('pooled'))} for pooled, "
                f"{', '.join(strategy_learners('stacking'))} otherwise"
            )
        parts = [helps.get(name) or name.replace("_", " ").capitalize()]
        parts += [f"One of {', '.join(c)}" for c in choices if c and len(c) > 1]
        parts.append(
            "Default: " + (", ".join(default) if isinstance(default, tuple) else str(default))
        )
        annotation = Annotated[
            kind | None, typer.Option(help=". ".join(parts) + ".", show_default=False)
        ]
        options.append(
            inspect.Parameter(name, Parameter.KEYWORD_ONLY, default=None, annotation=annotation)
        )
    return options


def _as_option(message: str) -> str:
    """A parameter check's message in the command line's words (``--select-k ...``)."""
    return re.sub(
        r"The '(\w+)' parameter of the fusion models",
        lambda m: "--" + m.group(1).replace("_", "-"),
        message,
    )


class _with_model_options:  # noqa: N801 - used as a decorator
    """``command`` with the :func:`model_options` after its own options; it receives the ones
    the user gave as one mapping, ``params`` (the fusion estimators' parameters). The options
    are built when typer first reads the signature, so importing the command line (or running
    a features command) does not import the estimators."""

    def __init__(self, command) -> None:
        self.command = command
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(self, name, getattr(command, name))

    @functools.cached_property
    def options(self) -> list[inspect.Parameter]:
        return model_options()

    @functools.cached_property
    def __signature__(self) -> inspect.Signature:  # noqa: PLW3201 - read by inspect
        hints = get_type_hints(self.command, include_extras=True)
        own = [
            p.replace(annotation=hints.get(p.name, p.annotation))
            for p in inspect.signature(self.command).parameters.values()
            if p.name != "params"
        ]
        return inspect.Signature([*own, *self.options])

    def __call__(self, **arguments):
        from .fusion import check_fusion_params

        given = {option.name: arguments.pop(option.name) for option in self.options}
        params = {name: value for name, value in given.items() if value is not None}
        if "learners" in params:
            params["learners"] = tuple(params["learners"])
        try:  # before any work, in the words of the command line
            check_fusion_params(params)
        except InputError as error:
            raise InputError(
                "Bad model options",
                [Problem(_as_option(problem.message)) for problem in error.problems],
            ) from None
        return self.command(params=params, **arguments)


@app.command()
@_user_errors
def synth(
    out: Annotated[Path, typer.Option(help="Folder for the synthetic cohort.")],
    patients: Annotated[int, typer.Option(min=1, help="Number of patients.")] = 120,
    missing_mr: Annotated[
        float,
        typer.Option(min=0.0, max=1.0, help="Fraction of patients without an MR image (0-1)."),
    ] = 0.0,
    seed: Seed = 0,
    outcome: Annotated[
        str,
        typer.Option(
            help="binary (the 'outcome' column), or survival: 'time' (months) and "
            "'event' (0/1) columns in biomarkers.csv instead of 'outcome'."
        ),
    ] = "binary",
) -> None:
    """Write a deterministic synthetic CT + MR cohort (NIfTI, manifest, biomarkers)."""
    from radfusion.features.synthetic import OUTCOMES, make_cohort

    if outcome not in OUTCOMES:
        raise InputError("Unknown outcome", [Problem(f"{outcome!r} is not one of {OUTCOMES}")])
    check_output_path(out, folder=True)
    cohort = make_cohort(
        out, n_patients=patients, seed=seed, missing_mr=missing_mr, outcome=outcome
    )
    typer.echo(f"manifest:   {cohort.manifest}\nbiomarkers: {cohort.biomarkers}")


def _inputs(*named: tuple[Path | None, str]) -> dict[Path, str]:
    """The files a command reads, each with what it is, for an output-over-input refusal
    (see check_output_path); options not given (None) are left out."""
    return {path: what for path, what in named if path is not None}


def _report_files(out: Path) -> list[Path]:
    """What a report command writes into its folder ``out`` (an input there would be
    replaced)."""
    from .report import FIGURE_DIR, REPORT_FILES

    return [out / name for name in (*REPORT_FILES.values(), FIGURE_DIR)]


def _run_inputs(
    manifest: Path, params: Path | None, biomarkers: Path | None = None
) -> dict[Path, str]:
    """The files a features command reads, named for a refusal (see check_output_path)."""
    return _inputs(
        (manifest, "the manifest"),
        (params, "the parameters (--params)"),
        (biomarkers, "the biomarker table"),
    )


def _manifest_files(manifest) -> dict[str, str]:
    """The image and mask paths of a manifest (a path: read here, its notes left to the
    command's own reading, which prints them once)."""
    from radfusion.features.manifest import manifest_inputs, read_manifest

    if isinstance(manifest, Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            manifest = read_manifest(manifest)
    return manifest_inputs(manifest)


def _table_outputs(out: Path, cache: Path | None = None) -> list[Path | None]:
    """What a command writing the table ``out`` writes beside it: its sidecars and the cache
    (checked as outputs before any work; the cache must be a folder)."""
    from radfusion.features.table import SUFFIXES, sidecar_path

    if cache is not None:
        check_output_path(cache, folder=True)
    if not out.name.lower().endswith(SUFFIXES):
        return [cache]  # the table's own check names the suffix
    return [sidecar_path(out, kind) for kind in ("diagnostics", "failures")] + [cache]


def _extract(
    manifest: Path,
    out: Path,
    params: Path | None,
    jobs: int,
    *,
    cache: Path | None = None,
    strict: bool = False,
    scheduler: str | None = None,
    biomarkers: Path | None = None,
    outcome: str | None = None,
    modality: str | None = None,
    quiet: bool = False,
    negative_control: bool = False,
) -> int:
    """Validate, extract and write; return the number of failed cases."""
    from radfusion.features.console import show_progress
    from radfusion.features.manifest import validate_cohort
    from radfusion.features.runner import CaseFailedError, extract_cohort
    from radfusion.features.table import SUFFIXES, write_extraction

    written = _table_outputs(out, cache)
    inputs = _run_inputs(manifest, params, biomarkers)
    check_output_path(out, SUFFIXES, inputs=inputs, written=written)
    # Structural problems (columns, duplicates, missing files) stop here with exit 2; a bad
    # image or mask becomes a failed case so that the rest of the cohort still finishes.
    table, _ = validate_cohort(manifest, biomarkers, outcome, check_images=False, modality=modality)
    check_output_path(out, SUFFIXES, inputs=_manifest_files(table), written=written)
    try:
        result = extract_cohort(
            table,
            params=params,
            n_jobs=jobs,
            progress=show_progress(quiet),
            cache_dir=cache,
            strict=strict,
            client=scheduler,
            negative_control=negative_control,
        )
    except CaseFailedError as error:
        typer.echo(f"error (--strict): {error}", err=True)
        raise typer.Exit(EXIT_CASES_FAILED) from None
    write_extraction(result, out)
    typer.echo(f"features: {out} ({len(result.features)} patients); {result.summary()}")
    for row in result.failures.itertuples():
        typer.echo(f"  failed: {row.error}", err=True)
    return len(result.failures)


@app.command()
@_user_errors
def extract(
    manifest: Annotated[
        Path, typer.Argument(help="Cohort manifest CSV, or a pyradiomics batch CSV.")
    ],
    out: Annotated[Path, typer.Option(help="Feature table (.parquet, .csv or .csv.gz).")],
    params: Annotated[
        Path | None,
        typer.Option(help="pyradiomics YAML for every modality, or a folder of <MODALITY>.yaml."),
    ] = None,
    jobs: Jobs = -1,
    cache: Annotated[
        Path | None, typer.Option(help="Case cache: re-runs and resumes compute nothing twice.")
    ] = None,
    strict: Annotated[bool, typer.Option(help="Stop at the first failed case.")] = False,
    dask_scheduler: Annotated[
        str | None, typer.Option(help="Run on a Dask cluster (scheduler address).")
    ] = None,
    modality: BatchModality = None,
    quiet: Quiet = False,
    negative_control: Annotated[
        bool,
        typer.Option(
            help="Also extract every ROI with its voxels randomly permuted (same histogram, "
            "no texture) as mask <mask>~permuted; never fused."
        ),
    ] = False,
) -> None:
    """Validate the manifest, then extract pyradiomics features per modality and mask.

    A pyradiomics batch CSV (ID,Image,Mask[,Label]) is read as a manifest; the mapping
    applied is printed. Exit codes: 0 all cases extracted; 1 some cases failed (listed in
    <out>.failures.csv); 2 bad input (manifest, biomarkers, parameters).
    """
    if _extract(
        manifest,
        out,
        params,
        jobs,
        cache=cache,
        strict=strict,
        scheduler=dask_scheduler,
        modality=modality,
        quiet=quiet,
        negative_control=negative_control,
    ):
        raise typer.Exit(EXIT_CASES_FAILED)


@app.command()
@_user_errors
def check(
    manifest: Annotated[Path, typer.Argument(help="Cohort manifest CSV.")],
    out: Annotated[Path | None, typer.Option(help="Also write the table (.csv, .parquet).")] = None,
    jobs: Jobs = -1,
    params: Annotated[
        Path | None, typer.Option(help="pyradiomics YAML file or folder, as for extract.")
    ] = None,
    modality: BatchModality = None,
) -> None:
    """Pre-flight: read every header, mask and float image (no features); print one table.

    Exit codes: 0 nothing would fail (warnings allowed); 1 some case would fail; 2 bad
    manifest.
    """
    import pandas as pd

    from radfusion.features.check import check_cohort, cohort_ok
    from radfusion.features.manifest import read_manifest
    from radfusion.features.table import SUFFIXES, write_table

    inputs = _run_inputs(manifest, params)
    if out is not None:
        check_output_path(out, SUFFIXES, inputs=inputs)
    # A path keeps the manifest's file name in every message; --modality needs it read here.
    source = manifest if modality is None else read_manifest(manifest, modality)
    if out is not None:
        check_output_path(out, SUFFIXES, inputs=_manifest_files(source))
    table = check_cohort(source, n_jobs=jobs, params=params)
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        typer.echo(table.drop(columns=["image", "mask_path"]).to_string(index=False))
    if out is not None:
        write_table(table, out)
    if not cohort_ok(table):
        raise typer.Exit(EXIT_CASES_FAILED)


@app.command()
@_user_errors
def robustness(
    manifest: Annotated[Path, typer.Argument(help="Cohort manifest CSV.")],
    out: Annotated[Path, typer.Option(help="ICC table to write (feature, icc, n_patients).")],
    params: Annotated[
        Path | None, typer.Option(help="pyradiomics YAML file or folder, as for extract.")
    ] = None,
    jobs: Jobs = -1,
    cache: Annotated[Path | None, typer.Option(help="Case cache folder.")] = None,
    quiet: Quiet = False,
    modality: BatchModality = None,
) -> None:
    """ICC(3,1) of every feature under mask erosion, dilation and 1-voxel shifts."""
    from radfusion.features.console import show_progress
    from radfusion.features.manifest import read_manifest
    from radfusion.features.robustness import robustness_icc
    from radfusion.features.table import SUFFIXES

    written = _table_outputs(out, cache)[-1:]  # the ICC table has no sidecars
    check_output_path(out, SUFFIXES, inputs=_run_inputs(manifest, params), written=written)
    source = manifest if modality is None else read_manifest(manifest, modality)
    check_output_path(out, SUFFIXES, inputs=_manifest_files(source), written=written)
    table = robustness_icc(
        source,
        params=params,
        n_jobs=jobs,
        cache_dir=cache,
        out=out,
        progress=show_progress(quiet),
    )
    stable = int((table["icc"] >= 0.75).sum())
    typer.echo(f"icc: {out} ({stable} of {len(table)} features with ICC >= 0.75)")


@app.command()
@_user_errors
@_with_model_options
def cv(
    features: Features,
    out: Annotated[Path, typer.Option(help="Report folder.")],
    label: Annotated[
        str | None, typer.Option(help="Outcome column (feature or biomarker table).")
    ] = None,
    time: Time = None,
    event: Event = None,
    horizons: Horizons = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap replicates of the CIs.")] = 1000,
    biomarkers: Biomarkers = None,
    id_column: IdColumn = None,
    biomarkers_id: BiomarkersId = None,
    strategy: Annotated[
        list[str] | None,
        typer.Option(
            help="single, early, late, stacking, pooled, shared (repeatable; default all but"
            " stacking, which survival adds: it is survival's headline)."
        ),
    ] = None,
    folds: Folds = 5,
    repeats: Repeats = 3,
    explain: Annotated[
        bool, typer.Option(help="Explanations from held-out folds (weights, importance).")
    ] = True,
    seed: Seed = 0,
    jobs: Jobs = -1,
    dask_scheduler: Annotated[
        str | None, typer.Option(help="Run the folds on a Dask cluster (scheduler address).")
    ] = None,
    task: Task = "auto",
    mlflow: Annotated[
        bool,
        typer.Option(help="Also log parameters, metrics and the report folder to MLflow."),
    ] = False,
    mlflow_uri: Annotated[
        str | None,
        typer.Option(help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else ./mlruns)."),
    ] = None,
    group_by: Annotated[
        str | None,
        typer.Option(
            help="Leave-one-group-out CV over this column's values (e.g. site): one fold per "
            "value, one repeat; per-group metrics in the report. Not a predictor."
        ),
    ] = None,
    primary: Annotated[
        str | None,
        typer.Option(
            help="The model the report leads with, declared before the run (default pooled; "
            "stacking for survival)."
        ),
    ] = None,
    quiet: Quiet = False,
    params: dict | None = None,
) -> None:
    """Repeated stratified CV of every single group and the fused models; write the report.

    Every step that learns (imputation, harmonisation, filtering, selection, the learners and
    the stacking meta-learner) is refitted on the training rows of each fold only. The model
    options are the fusion estimators' parameters (FusionClassifier's).
    """
    from .experiment import run_cv
    from .progress import ProgressBar

    check_output_path(
        out,
        folder=True,
        inputs=_inputs((features, "the feature table"), (biomarkers, "the biomarker table")),
        written=_report_files(out),
    )
    if mlflow:
        from .tracking import check_mlflow

        try:
            check_mlflow()  # before any work, not after the CV
        except ImportError as error:
            raise typer.BadParameter(str(error), param_hint="--mlflow") from None
    with ProgressBar("cv", quiet=quiet) as progress:
        report = run_cv(
            features,
            label=label,
            out=out,
            biomarkers=biomarkers,
            id_column=id_column,
            params=params,
            strategies=strategy or None,
            folds=folds,
            repeats=repeats,
            seed=seed,
            explain=explain,
            scheduler=dask_scheduler,
            n_jobs=jobs,
            command=_command_line(),
            task=task,
            biomarkers_id=biomarkers_id,
            group_by=group_by,
            primary=primary,
            progress=progress,
            n_bootstrap=bootstrap,
            time=time,
            event=event,
            horizons=horizons,
        )
    _print_summary(report, out)
    if mlflow:
        from .tracking import default_tracking_uri, log_report

        uri = mlflow_uri or default_tracking_uri()
        run_id = log_report(report, out, tracking_uri=uri)
        typer.echo(f"mlflow: run {run_id} in {uri}")


@app.command()
@_user_errors
@_with_model_options
def train(
    features: Features,
    out: Annotated[Path, typer.Option(help="Model file to write (.skops).")],
    label: Annotated[
        str | None, typer.Option(help="Outcome column (taken from the report with --from-report).")
    ] = None,
    biomarkers: Biomarkers = None,
    from_report: Annotated[
        Path | None,
        typer.Option(help="report.json of a cv run: train exactly the model it validated."),
    ] = None,
    id_column: IdColumn = None,
    biomarkers_id: BiomarkersId = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="early, late, stacking, pooled or shared (default pooled; stacking for survival)."
        ),
    ] = None,
    seed: Seed = 0,
    task: Task = "auto",
    time: Time = None,
    event: Event = None,
    horizons: Horizons = None,
    jobs: Jobs = -1,
    quiet: Quiet = False,
    params: dict | None = None,
) -> None:
    """Fit one strategy on every patient and save it with skops (safe to load).

    With --from-report every model option (label, task, learners, harmonisation, filter,
    selection, tuning, seed) comes from the cv report, so the saved model is the one it
    validated; only --strategy is chosen here, among the report's fused models. --jobs
    reaches the estimator's own parallel fits (branches, stacking's inner folds) through
    joblib's parallel_config, so the saved parameters (n_jobs=None) and the model do not
    depend on it.
    """
    from joblib import parallel_config

    from .persistence import card_paths, save_model, train_from_report, train_model
    from .progress import step

    check_output_path(
        out,
        inputs=_inputs(
            (features, "the feature table"),
            (biomarkers, "the biomarker table"),
            (from_report, "the cv report (--from-report)"),
        ),
    )
    with parallel_config(n_jobs=jobs), step("train", quiet=quiet):
        if from_report is not None:
            trained = train_from_report(
                from_report, features, biomarkers=biomarkers, strategy=strategy
            )
        else:
            trained = train_model(
                features,
                label=label,
                biomarkers=biomarkers,
                id_column=id_column,
                params=params,
                strategy=strategy,
                seed=seed,
                task=task,
                biomarkers_id=biomarkers_id,
                time=time,
                event=event,
                horizons=horizons,
            )
    save_model(trained, out)
    typer.echo(
        f"model: {out} ({trained.settings['strategy']}, {len(trained.columns)} input columns); "
        f"card: {card_paths(out)[1]}"
    )


@app.command()
@_user_errors
def predict(
    model: Annotated[Path, typer.Argument(help="Model file from `radfusion train`.")],
    features: Annotated[Path, typer.Argument(help="Feature table of the new patients.")],
    out: Annotated[Path, typer.Option(help="Predictions (.csv, .csv.gz or .parquet).")],
    biomarkers: Biomarkers = None,
    id_column: IdColumn = None,
    biomarkers_id: BiomarkersId = None,
) -> None:
    """Per-patient probabilities from a saved model; columns and versions are checked."""
    from radfusion.features.table import SUFFIXES, write_table

    from .persistence import load_model, predict_table

    check_output_path(
        out,
        SUFFIXES,
        inputs=_inputs(
            (model, "the model file"),
            (features, "the feature table"),
            (biomarkers, "the biomarker table"),
        ),
    )
    predictions = predict_table(
        load_model(model),
        features,
        biomarkers=biomarkers,
        id_column=id_column,
        biomarkers_id=biomarkers_id,
    )
    write_table(predictions, out)
    typer.echo(f"predictions: {out} ({len(predictions)} patients)")


@app.command()
@_user_errors
def validate(
    model: Annotated[Path, typer.Argument(help="Model file from `radfusion train`.")],
    features: Annotated[Path, typer.Argument(help="Feature table of the external cohort.")],
    out: Annotated[Path, typer.Option(help="Report folder.")],
    label: Annotated[
        str | None, typer.Option(help="Outcome column (default: the model's).")
    ] = None,
    biomarkers: Biomarkers = None,
    id_column: IdColumn = None,
    biomarkers_id: BiomarkersId = None,
    training_features: Annotated[
        Path | None,
        typer.Option(help="The training cohort's feature table (for the case-mix model)."),
    ] = None,
    training_biomarkers: Annotated[
        Path | None, typer.Option(help="The training cohort's biomarker table.")
    ] = None,
    bootstrap: Annotated[int, typer.Option(min=0, help="Bootstrap replicates of the CIs.")] = 1000,
    seed: Seed = 0,
) -> None:
    """External validation of a saved model: discrimination, calibration, decision curve,
    Table 1 next to the training cohort's (binary), and the case mix; nothing is refitted."""
    from .external import validate_model

    check_output_path(
        out,
        folder=True,
        inputs=_inputs(
            (model, "the model file"),
            (features, "the feature table"),
            (biomarkers, "the biomarker table"),
            (training_features, "the training feature table"),
            (training_biomarkers, "the training biomarker table"),
        ),
        written=_report_files(out),
    )
    report = validate_model(
        model,
        features,
        label=label,
        out=out,
        biomarkers=biomarkers,
        id_column=id_column,
        biomarkers_id=biomarkers_id,
        training_features=training_features,
        training_biomarkers=training_biomarkers,
        n_bootstrap=bootstrap,
        seed=seed,
        command=_command_line(),
    )
    from .targets import get_task

    metrics = report["metrics"]
    for name in get_task(report["data"]["task"]).headline_metrics:
        value = metrics[name]
        typer.echo(
            f"{name:<24} {_fmt(value['mean'])}  [{_fmt(value['ci_low'])}, {_fmt(value['ci_high'])}]"
        )
    mix = report["case_mix"]
    if mix["computed"]:
        typer.echo(f"{'case-mix AUC':<24} {_fmt(mix['auc']['mean'])}")
    typer.echo(f"report: {(out / 'report.html').resolve()}")


def _fmt(value: float | None) -> str:
    return "    n/a" if value is None else f"{value:7.3f}"


def _print_summary(report: dict, out: Path) -> None:
    from .targets import PRIMARY_METRIC

    metric = PRIMARY_METRIC[report["task"]]
    title = {
        "roc_auc": "ROC AUC",
        "roc_auc_ovr": "AUC (OvR)",
        "r2": "R²",
        "harrell_c": "Harrell C",
    }[metric]
    typer.echo(f"{'model':<28} {title:>9}  95% CI")
    for name, model in report["models"].items():
        value = model["metrics"][metric]
        typer.echo(
            f"{name:<28} {value['mean']:9.3f}  [{value['ci_low']:.3f}, {value['ci_high']:.3f}]"
        )
    evaluability = report.get("evaluability") or {}
    for sentence in filter(None, [evaluability.get("warning"), *evaluability.get("sentences", [])]):
        typer.echo(sentence)
    typer.echo(f"report: {(out / 'report.html').resolve()}")


@app.command()
@_user_errors
def demo(
    out: Annotated[Path, typer.Option(help="Output folder.")] = Path("radfusion-out/demo"),
    patients: Annotated[int, typer.Option(min=1, help="Synthetic patients.")] = 120,
    folds: Folds = 5,
    repeats: Repeats = 3,
    seed: Seed = 0,
    jobs: Jobs = -1,
    quiet: Quiet = False,
) -> None:
    """Synthetic cohort → pyradiomics features → cross-validated fusion report, end to end."""
    from radfusion.features.synthetic import make_cohort

    from .experiment import run_cv
    from .progress import ProgressBar

    check_output_path(out, folder=True)
    started = time.perf_counter()
    typer.echo(f"1/3 synthesising {patients} patients in {out / 'cohort'}")
    cohort = make_cohort(out / "cohort", n_patients=patients, seed=seed)
    typer.echo("2/3 extracting pyradiomics features")
    features = out / "features.parquet"
    if _extract(
        cohort.manifest,
        features,
        None,
        jobs,
        cache=out / "cache",
        biomarkers=cohort.biomarkers,
        outcome=cohort.outcome,
        quiet=quiet,
    ):
        raise typer.Exit(EXIT_CASES_FAILED)
    typer.echo("3/3 cross-validating single groups and early, late, pooled, shared fusion")
    report_dir = out / "report"
    with ProgressBar("cv", quiet=quiet) as progress:
        report = run_cv(
            features,
            label=cohort.outcome,
            out=report_dir,
            biomarkers=cohort.biomarkers,
            folds=folds,
            repeats=repeats,
            seed=seed,
            n_jobs=jobs,
            command=_command_line(),
            progress=progress,
        )
    _print_summary(report, report_dir)
    typer.echo(f"done in {time.perf_counter() - started:.0f} s")


def main() -> None:
    """Console-script entry point."""
    from radfusion.features.console import quiet_warnings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    quiet_warnings()  # here, not on import: a library import keeps the caller's filters
    app_for(sys.argv[1:])()


def app_for(arguments: list[str]) -> typer.Typer:
    """The app that runs a command line: for one of the :data:`FEATURE_COMMANDS`, an app of
    those commands alone (typer builds every command's options when it starts, and the model
    options import the estimators: a cached re-run of ``extract`` would wait for them); else
    :data:`app` (also for anything before the command's name: ``radfusion --help extract``
    lists every command)."""
    name = next((a for a in arguments if not a.startswith("-")), None)
    if name not in FEATURE_COMMANDS or arguments[0] != name:
        return app
    light = typer.Typer(**APP_SETTINGS)
    light.registered_commands = [
        info for info in app.registered_commands if info.callback.__name__ in FEATURE_COMMANDS
    ]
    return light


if __name__ == "__main__":
    main()
