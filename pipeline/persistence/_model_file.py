"""A saved model: one ``.skops`` file, rebuilt only from types radfusion makes.

A saved model is a zip archive written by :func:`skops.io.dump` holding the fitted fusion
estimator, plus one JSON member, ``radfusion.json``, with what is checked before the estimator
is rebuilt: the input columns, the groups, the outcome and its classes, the estimator's
parameters and the library versions. The JSON is read first, so version problems are reported
before any object is rebuilt.

Safety. skops rebuilds objects from a JSON schema instead of unpickling, and only types it is
told to trust. :func:`load_model` trusts exactly the types a radfusion model is made of
(:data:`TRUSTED_TYPES`, plus radfusion's own estimator classes) and refuses a file naming any
other type, before rebuilding anything. XGBoost models go through skops's generic object
route: ``XGBClassifier.__getstate__`` holds a ``Booster``, whose ``__getstate__`` turns the
native model into a ``bytearray`` (XGBoost's own binary serialisation, not a pickle), stored
as a raw ``.bin`` member and handed back to XGBoost's parser by ``Booster.__setstate__``.

Versions: a different radfusion, scikit-learn, XGBoost, numpy or skops version than the one
that trained the model gives a :class:`ModelVersionWarning`; a different *major* version of
scikit-learn or XGBoost is an :class:`~radfusion.features.errors.InputError` (their fitted
internals, and XGBoost's in-memory snapshot, are not portable across major versions; retrain).
"""

from __future__ import annotations

import importlib
import json
import platform
import warnings
import zipfile
import zlib
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
from radfusion.features.files import settle, write_set
from radfusion.features.naming import SITE_COLUMN

from ..targets import Task, get_task
from ._card import card_markdown, card_paths, external_summary, model_card, read_card_externals

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "METADATA_MEMBER",
    "TRUSTED_TYPES",
    "ModelVersionWarning",
    "TrainedModel",
    "check_versions",
    "is_trusted_type",
    "library_versions",
    "load_model",
    "append_external",
    "save_model",
    "write_card",
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
        next to the external cohort's; ``cross_validation``: what the model card keeps of
        the cv report a model was trained from (``train --from-report``;
        :func:`radfusion.pipeline.persistence.cross_validation_summary`).
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


# --------------------------------------------------------------------------- save / load
def save_model(trained: TrainedModel, path: str | Path) -> Path:
    """Write the model and its metadata to one ``.skops`` file, and its model card beside it.

    The estimator is dumped with :func:`skops.io.dump` (deflate-compressed) and the metadata
    added as the ``radfusion.json`` member. The card (:func:`radfusion.pipeline.persistence.
    model_card`) is written as ``<path>.card.json`` and ``<path>.card.md``. The three files
    are one set (:func:`radfusion.features.files.write_set`): an interrupted save leaves the
    previous three or the new three.
    """
    text = json.dumps(trained.metadata(), indent=2, ensure_ascii=False, allow_nan=False)

    def write(temporary: Path) -> None:
        sio.dump(trained.estimator, temporary, compression=zipfile.ZIP_DEFLATED)
        with zipfile.ZipFile(temporary, "a", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, text)

    path = Path(path)
    write_card(path, model_card(trained), model=write)
    return path


def write_card(path: str | Path, card: dict[str, Any], *, model=None) -> None:
    """Write a model's card (JSON and Markdown) beside the model file ``path``, with the
    model itself when ``model`` (a function writing it to a temporary path) is given, as one
    set of files."""
    card_json, card_md = card_paths(path)
    members: dict[Path, Any] = {
        card_json: json.dumps(card, indent=2, ensure_ascii=False, allow_nan=False) + "\n",
        card_md: card_markdown(card),
    }
    if model is not None:
        members[Path(path)] = model
    write_set(_journal(path), members)


def append_external(
    path: str | Path, trained: TrainedModel, report: dict[str, Any], *, source: str
) -> None:
    """Add an external validation report (``validate``'s) to the card beside the model file
    ``path``: the card is rebuilt from the model with the validations it held and this one
    (a validation of the same input files, by their SHA-256, replaces the earlier one). A
    card that cannot be read or written is a warning: the validation report is written."""
    card_json, _ = card_paths(path)
    new = external_summary(report, source)
    try:
        externals = [e for e in read_card_externals(card_json) if e.get("inputs") != new["inputs"]]
        write_card(path, model_card(trained, [*externals, new]))
    except (OSError, ValueError, KeyError, TypeError, InputError) as error:
        warnings.warn(f"the model card beside {path} was not updated: {error}", stacklevel=2)


def _journal(path: str | Path) -> Path:
    """The journal of a model file's set (the model and its card)."""
    path = Path(path)
    return path.with_name(f".{path.name}.journal")


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
    settle(_journal(path))
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
