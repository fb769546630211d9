"""Per-modality pyradiomics parameters.

Parameter files are PyRadiomics' own YAML format (``imageType`` / ``featureClass`` /
``setting``), accepted unchanged. radfusion ships one default per modality *kind* (``ct``,
``mr``, ``pet``, ``default``) in ``features/params/``; the kind is chosen from the modality
name.

A file may hold a ``radfusion:`` block of preprocessing options (see
:mod:`radfusion.features.preprocess`). PyRadiomics' schema rejects unknown top-level keys, so the
block is validated by radfusion and left out when the extractor is built; it stays in the loaded
dict, so that it is part of the modality's cache key.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Iterable
from pathlib import Path

import yaml

from .errors import InputError, Problem
from .extract import make_extractor
from .naming import MODALITY_PREFIXES, modality_kind
from .preprocess import BLOCK, split_params

__all__ = [
    "SHIPPED_DIR",
    "check_params",
    "fallback_notes",
    "load_params",
    "params_files",
    "read_params",
    "validate_params",
]

SHIPPED_DIR = Path(__file__).with_name("params")
_SUFFIXES = (".yaml", ".yml")


def read_params(path: str | Path, *, validate: bool = True) -> dict:
    """Read and validate one PyRadiomics parameter file.

    Validation is PyRadiomics' own: its pykwalify schema (setting names, types and ranges;
    image types; feature classes and feature names), applied when a
    ``RadiomicsFeatureExtractor`` is built from the dictionary.

    Parameters
    ----------
    path : str or Path
        A YAML (or JSON) file in PyRadiomics' format.
    validate : bool, default=True
        Apply PyRadiomics' schema (:func:`check_params`); False reads the YAML only (the
        runner validates the parameters of the cases it computes, not of those it reads from
        the cache, which these very parameters produced).

    Returns
    -------
    dict
        The parameters, as PyRadiomics reads them.

    Raises
    ------
    InputError
        Naming the file, when it is absent, not YAML, or not valid PyRadiomics parameters.
    """
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise _error(path, f"cannot read it: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise _error(path, "not valid YAML: " + " ".join(str(error).split())) from None
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _error(path, "expected a mapping with imageType / featureClass / setting keys")
    if validate:
        check_params(params, path)
    return params


def check_params(params: dict, path: str | Path) -> None:
    """Raise the :class:`InputError` naming ``path`` when ``params`` (read from it) is not a
    valid parameter dictionary (:func:`validate_params`)."""
    problem = validate_params(params)
    if problem:
        raise _error(Path(path), problem)


def validate_params(params: dict) -> str | None:
    """Why ``params`` is not a valid parameter dictionary, or None when it is.

    PyRadiomics' schema checks everything but the ``radfusion`` block, which
    :func:`radfusion.features.preprocess.split_params` checks (including that it does not resample
    when ``setting.resampledPixelSpacing`` is set).
    """
    if "voxelSetting" in params:  # pyradiomics' voxel-based mode: one feature map per feature
        return (
            "a voxel-based parameter file (it has a 'voxelSetting' block): radfusion extracts "
            "one value per feature and ROI (segment-based) and writes no feature maps; remove "
            "the voxelSetting block to extract segment-based features, or run "
            "`pyradiomics --mode voxel` for feature maps"
        )
    if BLOCK in params:
        try:
            split_params(params)
        except ValueError as error:
            return f"invalid {BLOCK} block: {error}"
    pykwalify_log = logging.getLogger("pykwalify")
    level = pykwalify_log.level
    pykwalify_log.setLevel(logging.CRITICAL)  # its schema errors are reported below instead
    try:
        make_extractor(params)
    except Exception as error:  # pykwalify's SchemaError and the schema functions' errors
        return f"not valid PyRadiomics parameters: {_schema_message(error)}"
    finally:
        pykwalify_log.setLevel(level)
    return None


def _schema_message(error: Exception) -> str:
    message = getattr(error, "msg", None) or str(error)
    return " ".join(str(message).split())


def _error(path: Path, message: str) -> InputError:
    return InputError("invalid pyradiomics parameter file", [Problem(message, file=str(path))])


def _find_own_file(folder: Path, modality: str) -> Path | None:
    """``<modality>.yaml`` / ``.yml`` in ``folder`` (exact name first, then any case)."""
    files = {p.name: p for p in folder.iterdir() if p.is_file()}
    for suffix in _SUFFIXES:
        if f"{modality}{suffix}" in files:
            return files[f"{modality}{suffix}"]
    matches = sorted(
        p
        for p in files.values()
        if p.suffix.lower() in _SUFFIXES and p.stem.lower() == modality.lower()
    )
    if len(matches) > 1:
        raise InputError(
            "ambiguous pyradiomics parameter files",
            [
                Problem(
                    f"{len(matches)} files match modality {modality!r}: "
                    f"{', '.join(p.name for p in matches)}",
                    file=str(folder),
                )
            ],
        )
    return matches[0] if matches else None


def params_files(params: str | Path | None, modalities: Iterable[str]) -> dict[str, Path]:
    """The parameter file each modality uses (see :func:`load_params`); files are not read.

    Raises
    ------
    InputError
        When ``params`` does not exist, or two files of a folder match one modality.
    """
    modalities = sorted(set(modalities))

    def shipped(modality: str) -> Path:
        return SHIPPED_DIR / f"{modality_kind(modality)}.yaml"

    if params is None:
        return {m: shipped(m) for m in modalities}
    path = Path(params)
    if path.is_dir():
        return {m: _find_own_file(path, m) or shipped(m) for m in modalities}
    if path.is_file():
        return dict.fromkeys(modalities, path)
    raise _error(path, "no such file or folder")


def fallback_notes(params: str | Path | None, modalities: Iterable[str]) -> list[str]:
    """One sentence per parameter choice the user did not make explicitly.

    A modality of no known kind given the shipped ``default.yaml``; with a folder, a modality
    without its own file given its kind's shipped file, and a YAML file matching no modality
    (ignored).
    """
    modalities = sorted(set(modalities))
    files = params_files(params, modalities)
    notes = []
    folder = Path(params) if params is not None and Path(params).is_dir() else None
    for modality, path in files.items():
        if path.parent != SHIPPED_DIR or (params is not None and folder is None):
            continue
        kind = modality_kind(modality)
        why = f"no {modality}.yaml in {folder}" if folder is not None else "no parameters given"
        if kind == "default":
            mr = ", ".join(MODALITY_PREFIXES["mr"])
            why += f"; the name matches no known kind (CT; {mr}; PET)"
        elif folder is None:
            continue  # the documented default of a known kind
        notes.append(f"modality {modality}: {why}: using the shipped {path.name} parameters")
    if folder is not None:
        used = set(files.values())
        for path in sorted(folder.iterdir()):
            if path.is_file() and path.suffix.lower() in _SUFFIXES and path not in used:
                notes.append(
                    f"parameter file {path} matches no modality of the manifest "
                    f"({', '.join(modalities)}): ignored"
                )
    return notes


def load_params(
    params: str | Path | None, modalities: Iterable[str], *, validate: bool = True
) -> dict[str, dict]:
    """The PyRadiomics parameters of each modality.

    Parameters
    ----------
    params : str, Path or None
        ``None``: the shipped default of each modality's kind (see :func:`modality_kind`).
        A file: that file for every modality. A folder: ``<modality>.yaml`` (or ``.yml``) for
        each modality that has one, the shipped default of its kind otherwise.
    modalities : iterable of str
        Modality names, as in the manifest.
    validate : bool, default=True
        Apply PyRadiomics' schema to each file (see :func:`read_params`).

    Returns
    -------
    dict
        ``{modality: pyradiomics parameter dict}``, one independent copy per modality.

    Raises
    ------
    InputError
        Naming the file when a path is absent or a parameter file is invalid.

    Warns
    -----
    UserWarning
        One per fallback (see :func:`fallback_notes`): a modality of no known kind, a
        modality without its own file in the folder, a file of the folder matching no
        modality.
    """
    files = params_files(params, modalities)
    for note in fallback_notes(params, modalities):
        warnings.warn(note, UserWarning, stacklevel=2)
    cache: dict[Path, dict] = {}
    for path in files.values():
        if path not in cache:
            cache[path] = read_params(path, validate=validate)
    return {m: copy.deepcopy(cache[path]) for m, path in files.items()}
