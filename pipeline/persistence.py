"""Train a fusion model on a whole cohort, save it safely, apply it to new patients.

A saved model is one ``.skops`` file: a zip archive written by :func:`skops.io.dump` holding
the fitted fusion estimator (:class:`~radfusion.pipeline.fusion.FusionClassifier` or
:class:`~radfusion.pipeline.fusion.FusionRegressor`, which encodes text columns itself), plus one
JSON member, ``radfusion.json``, with what is checked before the estimator is rebuilt: the input
columns, the groups, the label and its classes, the estimator's parameters and the library
versions. The JSON is read first, so version problems are
reported before any object is rebuilt.

Safety. skops rebuilds objects from a JSON schema instead of unpickling, and only types it is
told to trust. :func:`load_model` trusts exactly the types a radfusion model is made of
(:data:`TRUSTED_TYPES`, plus radfusion's own estimator classes) and refuses a file naming any
other type, before rebuilding anything. XGBoost models go through skops's generic object
route: ``XGBClassifier.__getstate__`` holds a ``Booster``, whose ``__getstate__`` turns the
native model into a ``bytearray`` (XGBoost's own binary serialisation, not a pickle), stored
as a raw ``.bin`` member and handed back to XGBoost's parser by ``Booster.__setstate__``.

Policies where the file and the new table disagree:

- Versions: a different radfusion, scikit-learn, XGBoost, numpy or skops version than the one
  that trained the model gives a :class:`ModelVersionWarning`; a different *major* version of
  scikit-learn or XGBoost is an :class:`~radfusion.features.errors.InputError` (their fitted
  internals, and XGBoost's in-memory snapshot, are not portable across major versions; retrain).
- Columns: every column the model uses must be present (else an ``InputError`` naming each
  missing one); other columns are ignored with an :class:`ExtraColumnsWarning`; the label and
  ``site`` columns are dropped silently; column order does not matter. Missing *values* are
  fine (imputed inside the model, as in training).
- Categories: text columns are encoded by the estimator with the training levels. A level never
  seen in training is an ``InputError`` (column, level, patients): mapping it to the reference
  level would silently change the prediction. Blank it to have the model impute it.
"""

from __future__ import annotations

import importlib
import json
import platform
import warnings
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn
import skops
import skops.io as sio
import xgboost
from sklearn.base import BaseEstimator

from radfusion.features.errors import InputError, Problem
from radfusion.features.files import atomic_write, file_digest
from radfusion.features.naming import SITE_COLUMN, is_control_column

from .cohorts import clinical_columns, model_cohort
from .columns import CONTROL_GROUP
from .dataset import check_finite, load_dataset
from .fusion import FUSED, STRATEGIES, check_fusion_params, make_estimator
from .pyradiomics_table import is_pyradiomics_table, widen_pyradiomics_table
from .report import jsonable
from .tables import (
    UnmatchedPatientsWarning,
    index_by_id,
    join_biomarkers,
    read_table,
    resolve_id,
)
from .targets import (
    Task,
    get_task,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "TRUSTED_TYPES",
    "ExtraColumnsWarning",
    "ModelVersionWarning",
    "TrainedModel",
    "TrainingDataWarning",
    "check_versions",
    "is_trusted_type",
    "library_versions",
    "load_model",
    "model_inputs",
    "model_matrix",
    "predict_table",
    "save_model",
    "train_from_report",
    "train_model",
]

FORMAT = "radfusion-model"
#: Version of the ``radfusion.json`` layout; a newer one than this code knows is refused.
FORMAT_VERSION = 4  # 4: radfusion 0.3 (the fusion classes moved to one module per job)
METADATA_MEMBER = "radfusion.json"

TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "radfusion.pipeline.splits.AdaptiveStratifiedKFold",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.model_selection._split.KFold",
        "sklearn.model_selection._split.StratifiedKFold",
        "sklearn.tree._tree.Tree",
        "sklearn.utils._bunch.Bunch",
        # survival models (FusionSurvival's learners, baseline hazards, combiner)
        "radfusion.pipeline.fusion._survival.NonNegativeCox",
        "sksurv.ensemble.boosting.GradientBoostingSurvivalAnalysis",
        "sksurv.ensemble.forest.RandomSurvivalForest",
        "sksurv.ensemble.survival_loss.CoxPH",
        "sksurv.functions.StepFunction",
        "sksurv.linear_model.coxnet.CoxnetSurvivalAnalysis",
        "sksurv.linear_model.coxph.BreslowEstimator",
        "sksurv.tree.tree.SurvivalTree",
        "xgboost.core.Booster",
        "xgboost.sklearn.XGBClassifier",
        "xgboost.sklearn.XGBRegressor",
    }
)
"""Types beyond skops's defaults (which cover public scikit-learn estimators and plain data)
that a radfusion model contains. Estimator classes defined in radfusion's own packages are
trusted too (see :func:`is_trusted_type`). Add a type here only if radfusion builds it."""

_OWN_PACKAGE = "radfusion"
#: Libraries compared at load time → whether a different major version is an error.
_CHECKED = {
    "radfusion": False,
    "scikit-learn": True,
    "xgboost": True,
    "numpy": False,
    "skops": False,
}


class ModelVersionWarning(UserWarning):
    """The model was saved with other library versions than the installed ones."""


class TrainingDataWarning(UserWarning):
    """``train --from-report`` on tables other than those the report cross-validated."""


class ExtraColumnsWarning(UserWarning):
    """The prediction table has columns the model does not use (they are ignored)."""


@dataclass(frozen=True)
class TrainedModel:
    """A fitted fusion model with what it needs to score new tables.

    Attributes
    ----------
    estimator : BaseEstimator
        The fitted model; its ``predict_proba(X)[:, k]`` is the probability of ``classes[k]``
        (a regressor's ``predict`` for a continuous target).
    label : str
        Outcome column it was trained on.
    classes : list
        Original label values; ``classes[k]`` is encoded as ``k`` (``k = 1`` is positive for
        a binary target); empty for a continuous target.
    id_column : str
        Patient identifier column of the training table.
    columns : list of str
        The table columns the estimator takes (text columns unencoded; the site column when it
        harmonises), in training order.
    groups : dict of str to list of str
        Feature groups (fusion branches) over the encoded columns (``estimator.groups_``).
    settings : dict
        ``strategy``, ``task`` and ``params``, the estimator's ``get_params()`` as JSON.
    training : dict
        ``n_patients``, ``class_counts``, ``biomarker_columns`` (raw columns that came from
        the biomarker table, for error hints) and ``cohort``: Table 1 of the training cohort
        (:func:`radfusion.pipeline.cohorts.model_cohort`; aggregates only, no patient rows;
        binary targets; absent in models saved before it existed), which ``validate`` shows
        next to the external cohort's.
    versions : dict of str to str
        Library versions of the environment that fitted the model.
    """

    estimator: BaseEstimator
    label: str
    classes: list
    id_column: str
    columns: list[str]
    groups: dict[str, list[str]]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def task(self) -> Task:
        """The task object of the model's target (``settings["task"]``; binary by default)."""
        return get_task(self.settings["task"])

    training: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def label_mapping(self) -> dict[str, int]:
        """Label value (as text) → encoded class, as the training ``Dataset`` has it."""
        return {str(value): code for code, value in enumerate(self.classes)}

    @property
    def site_column(self) -> str | None:
        """The column the model harmonises by, if it does."""
        return self.settings.get("params", {}).get("harmonize")

    @property
    def training_sites(self) -> list[str] | None:
        """The sites of the training rows, as text (None: not harmonised, or a model saved
        without its Table 1)."""
        for row in (self.training.get("cohort") or {}).get("variables", []):
            if row["name"] == SITE_COLUMN:
                return sorted(row["values"][0]["levels"])
        return None

    def metadata(self) -> dict[str, Any]:
        """Everything but the estimator, as JSON-serialisable data."""
        meta = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "estimator"}
        return {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}


# --------------------------------------------------------------------------- train


def train_model(
    features: str | Path,
    *,
    label: str | None = None,
    biomarkers: str | Path | None = None,
    id_column: str | None = None,
    params: Mapping[str, Any] | None = None,
    strategy: str = "stacking",
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
    strategy : {"early", "late", "stacking", "shared"}, default="stacking"
        Fusion strategy, see :func:`radfusion.pipeline.fusion.build_model`.
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
        raw, _ = _read_inputs(
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
    models the report compared (default: its only one, else ``"stacking"`` when it was
    compared). A feature or biomarker table whose SHA-256 differs from the one the report
    records gives a :class:`TrainingDataWarning`.

    Raises
    ------
    InputError
        A report that is not a radfusion cv report (or one from before radfusion 0.2, which did
        not record its estimators), or a strategy the report did not validate.
    """
    path = None if isinstance(report, Mapping) else Path(report)
    if path is not None:
        try:
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
        strategy = fused[0] if len(fused) == 1 else "stacking"
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
    params = dict(models[strategy])
    params.pop("strategy", None)
    data = load_dataset(
        features,
        label=config["label"],
        biomarkers=biomarkers,
        id_column=config.get("id_column"),
        group_pattern=params.get("group_pattern"),
        harmonize=params.get("harmonize"),
        task=config["task"],
        biomarkers_id=config.get("biomarkers_id_column"),
        time=config.get("time"),
        event=config.get("event"),
        horizons=config.get("horizons"),
    )
    return _fit(
        data,
        features,
        biomarkers,
        config.get("id_column"),
        config.get("biomarkers_id_column"),
        strategy,
        params,
        config.get("event"),
    )


def library_versions() -> dict[str, str]:
    """Versions of radfusion, the libraries a fitted model is made of, and Python."""
    try:
        radfusion = metadata.version("radfusion")
    except metadata.PackageNotFoundError:
        radfusion = "unknown"
    return {
        "radfusion": radfusion,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "skops": skops.__version__,
        "python": platform.python_version(),
    }


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python scalar JSON can hold."""
    return value.item() if isinstance(value, np.generic) else value


def _biomarker_columns(biomarkers, id_column, id_name) -> list[str]:
    if biomarkers is None:
        return []
    columns = read_table(biomarkers).columns
    return [str(c) for c in columns if c not in {id_column, id_name}]


# --------------------------------------------------------------------------- save / load


def save_model(trained: TrainedModel, path: str | Path) -> Path:
    """Write the model and its metadata to one ``.skops`` file, atomically.

    The estimator is dumped with :func:`skops.io.dump` (deflate-compressed) and the metadata
    added as the ``radfusion.json`` member, in a temporary file of the target folder that then
    replaces ``path``; an interrupted save leaves any previous file intact.
    """
    text = json.dumps(trained.metadata(), indent=2, ensure_ascii=False, allow_nan=False)

    def write(temporary: Path) -> None:
        sio.dump(trained.estimator, temporary, compression=zipfile.ZIP_DEFLATED)
        with zipfile.ZipFile(temporary, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, text)

    return atomic_write(path, write)


def load_model(path: str | Path) -> TrainedModel:
    """Read a model written by :func:`save_model`, trusting only radfusion's own types.

    Raises
    ------
    InputError
        Not a radfusion model file, a newer file format, a major scikit-learn or XGBoost
        version mismatch, or types outside the allow-list (listed in the message).

    Warns
    -----
    ModelVersionWarning
        The model was saved with other library versions (see the module docstring).
    """
    path = Path(path)
    meta = _read_metadata(path)
    check_versions(meta["versions"], str(path))
    untrusted = _untrusted_types(path)
    refused = sorted(name for name in untrusted if not is_trusted_type(name))
    if refused:
        raise InputError(
            "Refusing to load the model: it contains types radfusion never saves",
            [Problem(f"untrusted type {name}", file=str(path)) for name in refused],
        )
    try:
        estimator = sio.load(path, trusted=untrusted)
    except Exception as error:  # skops/scikit-learn errors differ; all mean "cannot rebuild"
        raise InputError(
            "Cannot rebuild the saved model",
            [
                Problem(
                    f"{type(error).__name__}: {error} (saved with scikit-learn "
                    f"{meta['versions'].get('scikit-learn')}; installed {sklearn.__version__})",
                    file=str(path),
                )
            ],
        ) from error
    saved = {k: v for k, v in meta.items() if k not in ("format", "format_version")}
    return TrainedModel(estimator=estimator, **saved)


def _untrusted_types(path: Path) -> list[str]:
    """Types the skops schema names beyond skops's defaults (read without rebuilding any)."""
    try:
        return sio.get_untrusted_types(file=path)
    except Exception as error:  # a damaged schema fails in many ways
        raise InputError(
            "The model file is damaged",
            [
                Problem(
                    f"cannot read its skops schema: {type(error).__name__}: {error}", file=str(path)
                )
            ],
        ) from error


def is_trusted_type(name: str) -> bool:
    """Whether a type named by a skops file may be rebuilt.

    Trusted: :data:`TRUSTED_TYPES`, and classes derived from scikit-learn's ``BaseEstimator``
    that are *defined* in radfusion's own modules (``radfusion.*``), so new radfusion
    transformers need no list update. Functions and other classes are refused.
    """
    if name in TRUSTED_TYPES:
        return True
    module_name, _, attribute = name.rpartition(".")
    if module_name.split(".")[0] != _OWN_PACKAGE:
        return False
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return False
    obj = getattr(module, attribute, None)
    return (
        isinstance(obj, type) and issubclass(obj, BaseEstimator) and obj.__module__ == module_name
    )


def check_versions(saved: dict[str, str], file: str = "model") -> None:
    """Warn (minor) or raise (major scikit-learn/XGBoost) on version differences."""
    installed = library_versions()
    changed = [name for name in _CHECKED if saved.get(name) != installed[name]]
    major = [
        name
        for name in changed
        if _CHECKED[name] and _major(saved.get(name)) != _major(installed[name])
    ]
    if major:
        raise InputError(
            "The model was saved with an incompatible library version",
            [
                Problem(
                    f"saved with {name} {saved.get(name)}, installed {installed[name]}; "
                    f"retrain the model or install {name}=={saved.get(name)}",
                    file=file,
                )
                for name in major
            ],
        )
    if changed:
        differences = ", ".join(
            f"{name} {saved.get(name)} (installed {installed[name]})" for name in changed
        )
        warnings.warn(
            f"{file} was saved with {differences}; predictions may differ slightly. "
            "Retrain, or install the saved versions, to be sure.",
            ModelVersionWarning,
            stacklevel=3,
        )


def _major(version: str | None) -> str | None:
    return None if version is None else version.split(".")[0]


def _read_metadata(path: Path) -> dict[str, Any]:
    bad = InputError(
        "Not a radfusion model file",
        [
            Problem(
                f"expected a .skops file written by radfusion train (with {METADATA_MEMBER})",
                file=str(path),
            )
        ],
    )
    if not path.is_file():
        raise InputError("Cannot read the model", [Problem("file not found", file=str(path))])
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read(METADATA_MEMBER))
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, zlib.error) as error:
        if _looks_like_zip(path) and not isinstance(error, KeyError):
            raise InputError(
                "The model file is damaged or truncated",
                [
                    Problem(
                        f"it starts as a zip archive but cannot be read ({error}); copy it "
                        "again or retrain",
                        file=str(path),
                    )
                ],
            ) from error
        raise bad from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise bad
    if meta.get("format_version") == 1:
        raise InputError(
            "Model file from radfusion 0.1",
            [
                Problem(
                    "format version 1 names the packages 'pipeline' and 'features', which "
                    "radfusion now installs as 'radfusion.pipeline' and 'radfusion.features': "
                    "retrain the model with this radfusion (radfusion train)",
                    file=str(path),
                )
            ],
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise InputError(
            "Unsupported model file version",
            [
                Problem(
                    f"format version {meta.get('format_version')!r}; this radfusion reads "
                    f"{FORMAT_VERSION}: "
                    + (
                        "the file is older, retrain the model with this radfusion"
                        if isinstance(meta.get("format_version"), int)
                        and meta["format_version"] < FORMAT_VERSION
                        else "upgrade radfusion or retrain"
                    ),
                    file=str(path),
                )
            ],
        )
    expected = {f.name for f in fields(TrainedModel)} - {"estimator"}
    if set(meta) - {"format", "format_version"} != expected:
        raise bad
    return meta


def _looks_like_zip(path: Path) -> bool:
    """Whether the file starts with a zip archive's local-file signature."""
    with open(path, "rb") as file:
        return file.read(4) == b"PK\x03\x04"


def predict_table(
    trained: TrainedModel,
    features: str | Path | pd.DataFrame,
    *,
    biomarkers: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> pd.DataFrame:
    """Score every patient of a feature table (joined with biomarkers) with a trained model.

    Parameters
    ----------
    trained : TrainedModel
    features : path or DataFrame
        Feature table with the patient id column (a pyradiomics output table too); the label
        column may be absent.
    biomarkers : path or DataFrame, optional
        Biomarker table, joined by patient id as in training.
    id_column : str, optional
        Patient id column (default: the training one, else ``patient_id`` or ``ID``).
    biomarkers_id : str, optional
        The biomarker table's id column (default: the feature table's when present, else
        ``patient_id`` or ``ID``).

    Returns
    -------
    DataFrame
        One row per patient in table order: the id column, ``probability`` (of the positive
        class ``trained.classes[1]``) and ``predicted`` (original label value; positive when
        ``probability >= 0.5``, as in the cross-validation report). Multiclass:
        ``probability_<class>`` per class and ``predicted``, the most probable class.
        Regression: ``predicted``, the predicted value. Survival: ``risk`` (higher: earlier
        event) and ``survival_at_<h>``, the survival probability at each horizon of training.

    Raises
    ------
    InputError
        Missing columns (each named), unseen categories, non-numeric values, duplicate ids.

    Warns
    -----
    ExtraColumnsWarning
        Columns the model does not use; they are ignored.
    """
    X = model_matrix(
        trained, features, biomarkers=biomarkers, id_column=id_column, biomarkers_id=biomarkers_id
    )
    columns = trained.task.predict_columns(trained.estimator, X, trained.classes, trained.settings)
    return pd.DataFrame({X.index.name: X.index.to_numpy(), **columns})


def model_matrix(
    trained: TrainedModel,
    features: str | Path | pd.DataFrame,
    *,
    biomarkers: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> pd.DataFrame:
    """The table the estimator takes: its columns, checked, in ``trained.columns`` order.

    Numbers are parsed (text in a numeric column is an error naming it); text columns stay
    text (the estimator encodes them; an unseen level is an error naming column, level and
    patients). Rows keep the table order and are indexed by patient id. See
    :func:`predict_table`.
    """
    table, sources = _read_inputs(
        features,
        biomarkers,
        id_column,
        trained.id_column,
        biomarkers_id=biomarkers_id,
        keep=(trained.label, SITE_COLUMN),
    )
    file = "features" if isinstance(features, pd.DataFrame) else str(features)
    site = trained.site_column
    if site is not None:
        site_values = _site_column(table, site, file)
        _check_sites(trained, site_values, file)
    outcome = (trained.label, trained.settings.get("event"), SITE_COLUMN)
    table = table.drop(columns=[c for c in outcome if c is not None and c in table.columns])
    _check_columns(trained, table, file, with_biomarkers=biomarkers is not None)
    levels = trained.estimator.encoder_.levels_
    problems: list[Problem] = []
    X = pd.DataFrame(index=table.index)
    for name in trained.columns:
        if name == site:
            X[name] = site_values
        elif name in levels:
            X[name] = _check_levels(table[name], name, levels[name], sources[name], problems)
        else:
            X[name] = _numeric(table[name], name, sources[name], problems)
    if problems:
        raise InputError("Some values do not fit the model", problems)
    check_finite(X.drop(columns=[c for c in [site, *levels] if c in X.columns]), sources)
    return X


def model_inputs(
    trained: TrainedModel,
    features: str | Path | pd.DataFrame,
    *,
    biomarkers: str | Path | pd.DataFrame | None = None,
    id_column: str | None = None,
    biomarkers_id: str | None = None,
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The feature table joined with the biomarkers as read (label and site kept), indexed
    by patient id in table order, and the file each column came from; the tables
    :func:`model_matrix` reads, for a caller that also needs the label (``validate``)."""
    return _read_inputs(
        features,
        biomarkers,
        id_column,
        trained.id_column,
        biomarkers_id=biomarkers_id,
        keep=(trained.label, SITE_COLUMN),
    )


def _check_sites(trained: TrainedModel, sites: pd.Series, file: str) -> None:
    """A site the model never saw is an error (naming the patients) when the model was
    trained with ``harmonize_unseen="error"``; with "pooled" ComBat leaves its rows as they
    are (and warns)."""
    training = trained.training_sites
    if training is None or trained.settings.get("params", {}).get("harmonize_unseen") != "error":
        return
    unseen = sites[~sites.astype(str).isin(training)]
    if len(unseen):
        raise InputError(
            "The model cannot harmonise these sites",
            [
                Problem(
                    f"site {value!r} was not in training (training sites: "
                    f"{', '.join(training)}) and the model was trained with "
                    "harmonize_unseen='error'; retrain with --harmonize-unseen pooled",
                    patient_id=str(patient),
                    file=file,
                )
                for patient, value in unseen.head(20).items()
            ],
        )


def _site_column(table: pd.DataFrame, site: str, file: str) -> pd.Series:
    """The site of every patient, as text: a model harmonised by site needs it."""
    if site not in table.columns:
        raise InputError(
            "The model harmonises by site",
            [Problem(f"the table has no {site!r} column", file=file)],
        )
    missing = table.index[table[site].isna()]
    if len(missing):
        raise InputError(
            "The model harmonises by site",
            [Problem(f"no {site!r} value", patient_id=str(p), file=file) for p in missing[:20]],
        )
    return table[site].astype(str)


def _read_inputs(
    features, biomarkers, id_column, preferred_id=None, *, biomarkers_id=None, keep=(SITE_COLUMN,)
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Feature table left-joined with the biomarkers, indexed by patient id (table order), and
    the file each column came from. A pyradiomics output table is widened first (``keep``: its
    patient-level text columns)."""
    file = "features" if isinstance(features, pd.DataFrame) else str(features)
    table = _read(features, id_column or preferred_id)
    if id_column is None and preferred_id in table.columns:
        id_column = preferred_id
    id_name = resolve_id(table, id_column, file)
    if is_pyradiomics_table(table.columns):
        table, _ = widen_pyradiomics_table(table, id_name, file=file, keep=keep)
    table = index_by_id(table, id_name, file)
    sources = dict.fromkeys(table.columns, file)
    if biomarkers is None:
        return table, sources
    bio_file = "biomarkers" if isinstance(biomarkers, pd.DataFrame) else str(biomarkers)
    bio = _read(biomarkers, biomarkers_id or id_name)
    bio_name = biomarkers_id or (id_name if id_name in bio else None)
    bio = index_by_id(bio, resolve_id(bio, bio_name, bio_file), bio_file)
    sources.update(dict.fromkeys(bio.columns, bio_file))
    return join_biomarkers(table, bio, file=file, bio_file=bio_file), sources


def _read(source: str | Path | pd.DataFrame, id_column: str | None) -> pd.DataFrame:
    if isinstance(source, pd.DataFrame):
        return source.copy()
    return read_table(source, id_column)


def _check_columns(
    trained: TrainedModel, table: pd.DataFrame, file: str, with_biomarkers: bool
) -> None:
    expected = [c for c in trained.columns if c != trained.site_column]
    missing = [c for c in expected if c not in table.columns]
    if missing:
        from_bio = set(trained.training.get("biomarker_columns", ()))
        hint = "" if with_biomarkers else " (a biomarker column: pass the biomarker table)"
        raise InputError(
            f"The table lacks {len(missing)} column(s) the model needs",
            [
                Problem(f"missing column {c!r}" + (hint if c in from_bio else ""), file=file)
                for c in missing
            ],
        )
    extra = [str(c) for c in table.columns if c not in set(expected)]
    if extra:
        shown = ", ".join(extra[:20]) + (f" and {len(extra) - 20} more" if len(extra) > 20 else "")
        warnings.warn(
            f"{file}: {len(extra)} column(s) not used by the model are ignored: {shown}",
            ExtraColumnsWarning,
            stacklevel=4,
        )


def _check_levels(
    column: pd.Series, name: str, levels: list[str], file: str, problems: list[Problem]
) -> pd.Series:
    """The text column as it is; each level unseen in training is a problem naming patients."""
    values = column.astype("string")
    unseen = values.notna() & ~values.isin(levels)
    for level in sorted(set(values[unseen])):
        patients = ", ".join(map(str, values.index[values == level][:10]))
        problems.append(
            Problem(
                f"column {name!r} has level {level!r}, unseen in training (known: "
                f"{', '.join(levels)}); patients: {patients}. Recode it or leave it blank "
                "(imputed)",
                file=file,
            )
        )
    return column


def _numeric(column: pd.Series, name: str, file: str, problems: list[Problem]) -> pd.Series:
    if pd.api.types.is_bool_dtype(column) or pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    numbers = pd.to_numeric(column, errors="coerce")
    bad = numbers.isna() & column.notna()
    if bad.any():
        examples = ", ".join(f"{p}={v!r}" for p, v in column[bad].head(5).items())
        problems.append(
            Problem(
                f"column {name!r} is numeric in training but has text values ({examples})",
                file=file,
            )
        )
    return numbers.astype(float)
