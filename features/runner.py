"""Extract features for a whole cohort, in parallel, recording failures instead of raising."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import joblib
import pandas as pd
import SimpleITK as sitk
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from features.extract import extract_case
from features.io import ImageReadError, read_image
from features.manifest import DEFAULT_LABEL, LABEL_COLUMN, validate_cohort
from features.naming import ID_COLUMN, SITE_COLUMN
from features.params import load_params
from features.table import FeatureRecord, to_wide

__all__ = ["CASE_COLUMNS", "FAILURE_COLUMNS", "ExtractionResult", "extract_cohort"]

CASE_COLUMNS = (ID_COLUMN, "modality", "mask", "image", "mask_path", LABEL_COLUMN)
FAILURE_COLUMNS = (ID_COLUMN, "modality", "mask", "file", "error")


@dataclass
class ExtractionResult:
    """What :func:`extract_cohort` produced.

    Attributes
    ----------
    features : pandas.DataFrame
        The wide table (see :func:`features.table.to_wide`); patients with no extracted case
        are absent.
    diagnostics : pandas.DataFrame
        One row per extracted case: ``patient_id, modality, mask, image, mask_path, label``
        and pyradiomics' ``diagnostics_*`` values as strings.
    failures : pandas.DataFrame
        One row per failed case: ``patient_id, modality, mask, file, error``; empty when none.
    """

    features: pd.DataFrame
    diagnostics: pd.DataFrame
    failures: pd.DataFrame


def _run_case(case: dict, params: dict, single_thread: bool) -> tuple[dict, dict]:
    """Extract one case; return ``(case, outcome)`` where outcome holds results or an error."""
    if single_thread:  # one worker per core: no thread oversubscription inside a worker
        sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
        with threadpool_limits(limits=1):
            return case, _extract(case, params)
    return case, _extract(case, params)


def _extract(case: dict, params: dict) -> dict:
    file = case["image"]
    try:
        image = read_image(file)
        file = case["mask_path"]
        mask = read_image(file)
        file = case["image"]
        features, diagnostics = extract_case(image, mask, params, label=case[LABEL_COLUMN])
    except Exception as error:  # a failing case is recorded; the others go on
        reason = error.reason if isinstance(error, ImageReadError) else (
            f"{type(error).__name__}: {' '.join(str(error).split())}")
        message = (f"patient {case[ID_COLUMN]}, modality {case['modality']}, "
                   f"mask {case['mask']}, file {file}: {reason}")
        return {"file": file, "error": message}
    return {"features": features, "diagnostics": diagnostics}


def _cases(manifest: pd.DataFrame) -> list[dict]:
    if LABEL_COLUMN not in manifest.columns:
        manifest = manifest.assign(**{LABEL_COLUMN: DEFAULT_LABEL})
    columns = list(CASE_COLUMNS) + ([SITE_COLUMN] if SITE_COLUMN in manifest.columns else [])
    cases = manifest[columns].astype(object).where(manifest[columns].notna(), None)
    cases = cases.to_dict("records")
    for case in cases:
        case[ID_COLUMN] = str(case[ID_COLUMN])
        case[LABEL_COLUMN] = int(case[LABEL_COLUMN])
    return sorted(cases, key=lambda c: (c[ID_COLUMN], c["modality"], c["mask"]))


def extract_cohort(
    manifest: pd.DataFrame | str | Path,
    params: str | Path | Mapping[str, dict] | None = None,
    n_jobs: int = -1,
    progress: bool = True,
) -> ExtractionResult:
    """Extract pyradiomics features for every case of a manifest.

    Parameters
    ----------
    manifest : pandas.DataFrame, str or Path
        A manifest as returned by :func:`features.manifest.read_manifest`, or its CSV path
        (then validated first with :func:`features.manifest.validate_cohort`).
    params : str, Path, mapping or None, default=None
        Passed to :func:`features.params.load_params`, or an already-loaded
        ``{modality: pyradiomics parameter dict}``.
    n_jobs : int, default=-1
        Worker processes (joblib, loky backend); -1 uses every core. With more than one
        worker, each worker limits SimpleITK and BLAS to one thread.
    progress : bool, default=True
        Show a progress bar over cases.

    Returns
    -------
    ExtractionResult
        Deterministic whatever the completion order: rows sorted by patient (then modality,
        mask), feature columns by (modality, mask, feature).
    """
    if not isinstance(manifest, pd.DataFrame):
        manifest, _ = validate_cohort(manifest)
    cases = _cases(manifest)
    modalities = {c["modality"] for c in cases}
    if isinstance(params, Mapping):
        missing = sorted(modalities - set(params))
        if missing:
            raise ValueError(f"no parameters for modality(ies) {missing}")
        per_modality = dict(params)
    else:
        per_modality = load_params(params, modalities)

    workers = min(joblib.effective_n_jobs(n_jobs), max(len(cases), 1))
    tasks = (
        joblib.delayed(_run_case)(case, per_modality[case["modality"]], workers > 1)
        for case in cases
    )
    if workers > 1:
        outputs = joblib.Parallel(n_jobs=workers, backend="loky",
                                  return_as="generator_unordered")(tasks)
    else:
        outputs = (function(*args, **kwargs) for function, args, kwargs in tasks)
    done = list(tqdm(outputs, total=len(cases), disable=not progress, unit="case",
                     desc="radiomics"))
    return _collect(done)


def _collect(done: list[tuple[dict, dict]]) -> ExtractionResult:
    done = sorted(done, key=lambda d: (d[0][ID_COLUMN], d[0]["modality"], d[0]["mask"]))
    records, diagnostics, failures = [], [], []
    for case, outcome in done:
        if "error" in outcome:
            failures.append({ID_COLUMN: case[ID_COLUMN], "modality": case["modality"],
                             "mask": case["mask"], "file": outcome["file"],
                             "error": outcome["error"]})
            continue
        records.append(FeatureRecord(case[ID_COLUMN], case["modality"], case["mask"],
                                     outcome["features"], case.get(SITE_COLUMN)))
        diagnostics.append({**{c: case[c] for c in CASE_COLUMNS},
                            **{k: str(v) for k, v in outcome["diagnostics"].items()}})
    return ExtractionResult(
        features=to_wide(records),
        diagnostics=pd.DataFrame(diagnostics, columns=_union_columns(diagnostics)),
        failures=pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)),
    )


def _union_columns(rows: list[dict]) -> list[str]:
    columns = list(CASE_COLUMNS)
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns
