"""Extract features for a whole cohort: in parallel, cached, resumable, failures recorded.

Cases run in worker processes with joblib on one machine, or on a Dask cluster (see
:mod:`radfusion.features.distributed`). Workers receive paths, not voxels, and return small dicts,
so memory is bounded by the largest case, not by the cohort. With a cache folder (see
:mod:`radfusion.features.cache`) each finished case is stored at once, a re-run computes only what
is not stored yet, and an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import SimpleITK as sitk
from tqdm.auto import tqdm

from .cache import FeatureCache
from .dicom import ROI_COLUMN, read_mask
from .extract import extract_case, lesion_extents, lesion_mask, single_threaded
from .files import file_digest
from .io import ImageHeader, ImageReadError, nonfinite_voxels, read_image, series_uid
from .lifeline import exit_with_parent
from .manifest import (
    DEFAULT_LABEL,
    LABEL_COLUMN,
    LABELS_COLUMN,
    LESION_MODES,
    LESIONS_COLUMN,
    RING_COLUMN,
    mask_values,
    roi_problems,
    validate_cohort,
)
from .naming import ID_COLUMN, SITE_COLUMN, control_mask
from .params import check_params, load_params, params_files
from .preprocess import CaseSpec, Preprocessing, misalignment, ring_mask, split_params
from .rules import (
    FILLED_DIAGNOSTIC,
    dimension_problems,
    fill_nonfinite,
    nonfinite_problems,
)
from .suv import to_suv
from .table import FeatureRecord, to_wide

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CASE_COLUMNS",
    "FAILURE_COLUMNS",
    "PROVENANCE_COLUMNS",
    "CaseFailedError",
    "ExtractionResult",
    "expand_control",
    "expand_labels",
    "expand_lesions",
    "expand_ring",
    "extract_cohort",
]

CASE_COLUMNS = (ID_COLUMN, "modality", "mask", "image", "mask_path", LABEL_COLUMN)
#: Provenance kept in the diagnostics sidecar after :data:`CASE_COLUMNS`: the connected
#: component extracted (empty: the whole ROI), the SHA-256 of the image and mask files (see
#: :func:`radfusion.features.cache.file_digest`), for a DICOM folder its SeriesInstanceUID, and the
#: parameter file used (empty when parameters were given as a mapping).
PROVENANCE_COLUMNS = ("lesion", "image_sha256", "mask_sha256", "series_uid", "params_file")
LESION = "lesion"
#: Case key of a derived peritumoral ring (its width in mm; None: the ROI itself).
RING = "ring_mm"
#: Case key of a negative-control case (the ROI's voxels permuted; see features/control.py).
CONTROL = "negative_control"
FAILURE_COLUMNS = (ID_COLUMN, "modality", "mask", "file", "error")


@dataclass
class ExtractionResult:
    """What :func:`extract_cohort` produced.

    Attributes
    ----------
    features : pandas.DataFrame
        The wide table (see :func:`radfusion.features.table.to_wide`); patients with no extracted
        case are absent.
    diagnostics : pandas.DataFrame
        One row per extracted case: ``patient_id, modality, mask, image, mask_path, label``,
        the provenance (:data:`PROVENANCE_COLUMNS`) and pyradiomics' ``diagnostics_*``
        values as strings.
    failures : pandas.DataFrame
        One row per failed case: ``patient_id, modality, mask, file, error``; empty when none.
    n_cached : int
        How many of the extracted cases were read from the cache instead of computed.
    """

    features: pd.DataFrame
    diagnostics: pd.DataFrame
    failures: pd.DataFrame
    n_cached: int = 0

    def summary(self) -> str:
        """One line: cases extracted (of which cached) and failed."""
        done, failed = len(self.diagnostics), len(self.failures)
        return (
            f"{done + failed} case(s): {done} extracted ({self.n_cached} from the cache), "
            f"{failed} failed"
        )


class CaseFailedError(RuntimeError):
    """A case failed and ``strict=True``: the run stopped there.

    ``failure`` is the case's row of the failures table (``patient_id, modality, mask, file,
    error``); the message is its ``error``. Cases finished before it are in the cache (when
    one is used), so the run resumes after the input is fixed.
    """

    def __init__(self, failure: dict):
        self.failure = failure
        super().__init__(failure["error"])


def _run_case(
    index: int, case: dict, spec: CaseSpec, parent: int | None = None
) -> tuple[int, dict]:
    """Extract one case; return ``(index, outcome)``, outcome holding results or an error.

    The same thread settings on every path (in this process, joblib and Dask workers): one
    SimpleITK and BLAS thread (see :func:`radfusion.features.extract.single_threaded`), so the
    bytes do not depend on ``n_jobs``, and one worker per core is not oversubscribed.
    ``parent``: the pid of the local process that submitted the case; the worker then exits
    when that process dies (see :mod:`radfusion.features.lifeline`).
    """
    if parent is not None:
        exit_with_parent(parent)
    with single_threaded():
        return index, _extract(case, spec)


class _RoiError(ValueError):
    """The mask does not define an extractable ROI on the image's grid."""


def _extract(case: dict, spec: CaseSpec) -> dict:
    file, label = case["image"], spec.label
    filled = None
    try:
        image = read_image(file)
        _refuse(dimension_problems(ImageHeader.of(image), "image"))
        nonfinite = nonfinite_voxels(file, image)
        suv = spec.preprocessing.suv
        if suv is not None:  # PET activity concentration -> SUV, from the series' headers
            image = to_suv(image, file, suv)
            # converted here: extract_case must not convert again
            spec = replace(spec, preprocessing=replace(spec.preprocessing, suv=None))
        file = case["mask_path"]  # from here on, problems are the ROI's: named by its mask
        mask = read_mask(file, case["image"], case.get(ROI_COLUMN), label)
        _refuse(dimension_problems(ImageHeader.of(mask), "mask"))
        grids = roi_problems(
            ImageHeader.of(image), ImageHeader.of(mask), None, label, case["image"]
        )
        align = spec.preprocessing.align_mask
        if grids and align is not None:  # within its tolerance, preprocessing aligns the mask
            grids = [
                f"mask and image are on different grids: {difference} (image {case['image']})"
                for difference in misalignment(ImageHeader.of(image), ImageHeader.of(mask), align)
            ]
        if grids:
            raise _RoiError("; ".join(grids))
        if case.get(LESION) is not None:  # one connected component of the ROI
            mask = lesion_mask(mask, label, case[LESION])
        if case.get(RING) is not None:  # the peritumoral ring around the ROI
            mask = ring_mask(mask, label, case[RING])
        if nonfinite is not None:  # NaN / inf voxels: the image's problem, named by it
            file, fill = case["image"], spec.preprocessing.fill_non_finite
            _refuse(nonfinite_problems(nonfinite, sitk.GetArrayViewFromImage(mask) == label, fill))
            image, filled = fill_nonfinite(image, nonfinite, fill), int(nonfinite.sum())
            file = case["mask_path"]
        try:
            features, diagnostics = extract_case(
                image, mask, spec, negative_control=bool(case.get(CONTROL))
            )
        except ValueError:
            # pyradiomics rejected the ROI; say why in validation's words when we can (the
            # label check reads every mask voxel, so it runs only for failed cases)
            empty = roi_problems(None, ImageHeader.of(mask), mask_values(mask), label)
            if empty:
                raise _RoiError("; ".join(empty)) from None
            raise
    except Exception as error:  # a failing case is recorded; the others go on
        return _failure(case, file, error)
    if filled is not None:
        diagnostics[FILLED_DIAGNOSTIC] = filled
    outcome = {"features": features, "diagnostics": {k: str(v) for k, v in diagnostics.items()}}
    if "image_sha256" not in case:  # no cache computed them: hash here, in parallel
        outcome["provenance"] = {
            "image_sha256": file_digest(case["image"]),
            "mask_sha256": file_digest(case["mask_path"]),
        }
    return outcome


def _refuse(problems: list[str]) -> None:
    if problems:
        raise _RoiError("; ".join(problems))


def _failure(case: dict, file: str, error: BaseException) -> dict:
    if isinstance(error, ImageReadError | _RoiError):
        reason = error.reason if isinstance(error, ImageReadError) else str(error)
    else:
        reason = f"{type(error).__name__}: {' '.join(str(error).split())}"
    return {
        "file": file,
        "error": f"patient {case[ID_COLUMN]}, modality {case['modality']}, "
        f"mask {case['mask']}, file {file}: {reason}",
    }


def _cases(manifest: pd.DataFrame, negative_control: bool = False) -> list[dict]:
    if LABEL_COLUMN not in manifest.columns:
        manifest = manifest.assign(**{LABEL_COLUMN: DEFAULT_LABEL})
    columns = list(CASE_COLUMNS) + [
        c
        for c in (SITE_COLUMN, LESIONS_COLUMN, LABELS_COLUMN, RING_COLUMN, ROI_COLUMN)
        if c in manifest.columns
    ]
    cases = manifest[columns].astype(object).where(manifest[columns].notna(), None)
    cases = cases.to_dict("records")
    for case in cases:
        case[ID_COLUMN] = str(case[ID_COLUMN])
        case[LABEL_COLUMN] = int(case[LABEL_COLUMN])
    cases = [
        r
        for case in cases
        for c in expand_labels(case)
        for lesion in expand_lesions(c)
        for ring in expand_ring(lesion)
        for r in (expand_control(ring) if negative_control else [ring])
    ]
    return sorted(cases, key=lambda c: (c[ID_COLUMN], c["modality"], c["mask"]))


def expand_labels(case: dict) -> list[dict]:
    """The cases of one manifest row under its ``labels`` mode.

    ``one`` (or no mode): the row itself. ``each``: one case per non-zero value ``v`` of the
    mask file, named ``<mask>_label<v>``, with ``label = v``; this reads the mask. A mask
    that cannot be read, or holds no non-zero value, gives the row itself (with its
    ``label``), which extraction then records as failed.
    """
    case = dict(case)
    mode = (case.pop(LABELS_COLUMN, None) or "one").lower()
    if mode == "one":
        return [case]
    try:
        mask = read_mask(case["mask_path"], case["image"], case.get(ROI_COLUMN))
        values = [int(v) for v in mask_values(mask) if v != 0]
    except (ImageReadError, RuntimeError):
        values = []
    if not values:
        return [case]
    return [{**case, "mask": f"{case['mask']}_label{v}", LABEL_COLUMN: v} for v in values]


def expand_ring(case: dict) -> list[dict]:
    """The case itself and, when it has a ``ring_mm`` R, its peritumoral ring as a second
    case named ``<mask>_ring<R>mm`` (see :func:`radfusion.features.preprocess.ring_mask`)."""
    case = dict(case)
    ring = case.pop(RING_COLUMN, None)
    cases = [{**case, RING: None}]
    if ring is not None and not (isinstance(ring, float) and ring != ring):  # NaN: none
        ring = float(ring)
        cases.append({**case, "mask": f"{case['mask']}_ring{ring:g}mm", RING: ring})
    return cases


def expand_control(case: dict) -> list[dict]:
    """The case itself and its negative control: the same ROI of an image whose voxels inside
    it are randomly permuted, named ``<mask>~permuted`` (see
    :func:`radfusion.features.naming.control_mask` and :mod:`radfusion.features.control`)."""
    return [case, {**case, "mask": control_mask(case["mask"]), CONTROL: True}]


def expand_lesions(case: dict) -> list[dict]:
    """The cases of one manifest row under its ``lesions`` mode.

    ``merge`` (or no mode): the row itself. ``largest``: the row, restricted to its largest
    connected component (``case["lesion"] = 1``). ``each``: one case per component, largest
    first, named ``<mask>_lesion<k>``; this reads the mask. A mask that cannot be read, or
    an empty ROI, gives one case ``<mask>_lesion1`` that extraction then records as failed.
    """
    case = dict(case)
    mode = (case.pop(LESIONS_COLUMN, None) or LESION_MODES[0]).lower()
    if mode == "merge":
        return [{**case, LESION: None}]
    if mode == "largest":
        return [{**case, LESION: 1}]
    try:
        mask = read_mask(case["mask_path"], case["image"], case.get(ROI_COLUMN), case[LABEL_COLUMN])
        count = len(lesion_extents(mask, case[LABEL_COLUMN]))
    except (ImageReadError, RuntimeError):
        count = 0
    return [
        {**case, "mask": f"{case['mask']}_lesion{k}", LESION: k}
        for k in range(1, max(count, 1) + 1)
    ]


def extract_cohort(
    manifest: pd.DataFrame | str | Path,
    params: str | Path | Mapping[str, dict] | None = None,
    n_jobs: int = -1,
    progress: bool = True,
    *,
    cache_dir: str | Path | None = None,
    strict: bool = False,
    client: Client | str | None = None,
    negative_control: bool = False,
) -> ExtractionResult:
    """Extract pyradiomics features for every case of a manifest.

    A case that cannot be extracted (unreadable or truncated file, empty mask, label absent
    from the mask, mask and image on different grids, ROI too small for pyradiomics...) is
    recorded in ``failures`` and the other cases go on, unless ``strict``.

    Parameters
    ----------
    manifest : pandas.DataFrame, str or Path
        A manifest as returned by :func:`radfusion.features.manifest.read_manifest`, or its CSV path
        (then validated first with :func:`radfusion.features.manifest.validate_cohort`, leaving the
        image checks to extraction: ``check_images=False``).
    params : str, Path, mapping or None, default=None
        Passed to :func:`radfusion.features.params.load_params`, or an already-loaded
        ``{modality: pyradiomics parameter dict}``.
    n_jobs : int, default=-1
        Worker processes (joblib, loky backend); -1 uses every core. Every case runs with
        SimpleITK and BLAS on one thread, whatever ``n_jobs`` (and on Dask), so the table has
        the same bytes for any number of workers. Ignored with ``client``.
    progress : bool, default=True
        Show a progress bar over cases.
    cache_dir : str or Path, optional
        Folder of the per-case cache (see :mod:`radfusion.features.cache`). Cases stored there are
        read, not computed; each computed case is stored as soon as it finishes, so a run
        interrupted at any moment resumes where it stopped. Failed cases are not stored.
    strict : bool, default=False
        Stop at the first failed case, raising :class:`CaseFailedError`, instead of
        recording it and going on.
    client : distributed.Client or str, optional
        Run the cases on this Dask cluster (or on the one whose scheduler is at this
        address, e.g. ``"tcp://10.0.0.1:8786"``) instead of local processes; see
        :mod:`radfusion.features.distributed`. Workers read the files themselves.
    negative_control : bool, default=False
        Also extract every case from its image with the ROI's voxels randomly permuted (same
        histogram, no texture; :mod:`radfusion.features.control`), as mask
        ``<mask>~permuted``: columns ``modality__mask~permuted__feature``, which the pipeline
        keeps out of the fused groups. Cached under their own keys.

    Returns
    -------
    ExtractionResult
        Deterministic whatever the completion order, the number of workers and what came
        from the cache: rows sorted by patient (then modality, mask), feature columns by
        (modality, mask, feature).

    Raises
    ------
    InputError
        When the manifest (given as a path) or the parameters are invalid.
    CaseFailedError
        With ``strict=True``, at the first failed case.
    """
    if not isinstance(manifest, pd.DataFrame):
        manifest, _ = validate_cohort(manifest, check_images=False)
    cases = _cases(manifest, negative_control)
    modalities = {c["modality"] for c in cases}
    if isinstance(params, Mapping):
        missing = sorted(modalities - set(params))
        if missing:
            raise ValueError(f"no parameters for modality(ies) {missing}")
        per_modality = dict(params)
    else:
        # With a cache, a modality's parameters are validated (PyRadiomics' schema, ~0.2 s)
        # only when one of its cases is computed: cached entries were computed with these very
        # parameters by these versions, which accepted them.
        per_modality = load_params(params, modalities, validate=cache_dir is None)
        files = params_files(params, modalities)
        for case in cases:  # recorded in the diagnostics
            case["params_file"] = str(files[case["modality"]])

    parsed = {m: _split(m, p) for m, p in per_modality.items() if m in modalities}

    cache = FeatureCache(cache_dir) if cache_dir is not None else None
    outcomes: dict[int, dict] = {}
    keys: dict[int, str] = {}
    if cache is not None:
        for index, case in enumerate(cases):
            params_key = per_modality[case["modality"]]
            ibsi = parsed[case["modality"]][1].ibsi
            if case[LESION] is not None or case.get(RING) is not None or ibsi:
                # one component, a ring, IBSI definitions: another result, another key
                params_key = {"params": params_key, LESION: case[LESION]}
                if case.get(RING) is not None:
                    params_key[RING] = case[RING]
                if ibsi:  # entries of IBSI resampling with pyradiomics binning: not reused
                    params_key["ibsi_definitions"] = 1
            if case.get(ROI_COLUMN):  # one ROI of a DICOM RTSTRUCT / SEG: keyed by its name
                params_key = {"params": params_key, ROI_COLUMN: case[ROI_COLUMN]}
            if case.get(CONTROL):  # the permuted image's features: another result
                params_key = {"params": params_key, CONTROL: 1}
            try:
                keys[index] = cache.key(
                    case["image"], case["mask_path"], case[LABEL_COLUMN], params_key
                )
            except OSError:  # unreadable file: extraction will record why
                continue
            case["image_sha256"] = cache.digest(case["image"])
            case["mask_sha256"] = cache.digest(case["mask_path"])
            stored, why = cache.lookup(keys[index])
            if stored is not None:
                outcomes[index] = stored
            elif why is not None:
                warnings.warn(
                    f"cache entry {cache.path(keys[index])} (patient "
                    f"{case[ID_COLUMN]}, modality {case['modality']}, mask "
                    f"{case['mask']}) ignored: {why}; the case is recomputed",
                    UserWarning,
                    stacklevel=2,
                )
    n_cached = len(outcomes)
    todo = sorted(
        (i for i in range(len(cases)) if i not in outcomes),
        key=lambda i: _cost(cases[i]),
        reverse=True,
    )  # longest first: short tail
    if cache is not None and not isinstance(params, Mapping):
        for modality in sorted({cases[i]["modality"] for i in todo}):
            check_params(per_modality[modality], files[modality])
    tasks = [(i, cases[i], _spec(cases[i], parsed)) for i in todo]

    done = _run(tasks, n_jobs, client)
    try:
        with tqdm(
            total=len(cases), initial=n_cached, disable=not progress, unit="case", desc="radiomics"
        ) as bar:
            for index, outcome in done:
                if "error" in outcome:
                    if strict:
                        raise CaseFailedError(_failure_row(cases[index], outcome))
                elif index in keys:
                    cache.put(keys[index], outcome)
                outcomes[index] = outcome
                bar.update()
    finally:
        done.close()  # on an early stop, cancels the cases not started
    return _collect([(cases[i], outcomes[i]) for i in sorted(outcomes)], n_cached)


def _split(modality: str, params: dict) -> tuple[dict, Preprocessing]:
    """A modality's parameters, parsed once for all its cases (see :func:`split_params`)."""
    try:
        return split_params(params)
    except ValueError as error:
        raise ValueError(f"invalid radfusion block of modality {modality}: {error}") from None


def _spec(case: dict, parsed: dict[str, tuple[dict, Preprocessing]]) -> CaseSpec:
    """One case's spec, from its modality's parsed parameters."""
    return CaseSpec(*parsed[case["modality"]], case[LABEL_COLUMN], case["modality"])


def _cost(case: dict) -> int:
    """A cheap proxy of a case's extraction time: its files' sizes in bytes."""
    try:
        return os.path.getsize(case["mask_path"]) + os.path.getsize(case["image"])
    except OSError:
        return 0


def _run(
    tasks: list[tuple[int, dict, CaseSpec]], n_jobs: int, client: Client | str | None
) -> Iterator[tuple[int, dict]]:
    """``_run_case`` over ``tasks`` on local processes or Dask, in completion order."""
    if not tasks:
        return  # a fully cached run: nothing imports joblib
    if client is not None:
        yield from _run_dask(tasks, client)
        return
    import joblib

    workers = min(joblib.effective_n_jobs(n_jobs), max(len(tasks), 1))
    if workers <= 1:
        for index, case, spec in tasks:
            yield _run_case(index, case, spec)
        return
    parallel = joblib.Parallel(
        n_jobs=workers, backend="loky", batch_size=1, return_as="generator_unordered"
    )
    outputs = parallel(
        joblib.delayed(_run_case)(index, case, spec, os.getpid()) for index, case, spec in tasks
    )
    try:
        yield from outputs
    finally:
        with warnings.catch_warnings():  # on an early stop: "tasks executed but not used"
            warnings.simplefilter("ignore", UserWarning)
            outputs.close()


def _run_dask(
    tasks: list[tuple[int, dict, CaseSpec]], client: Client | str
) -> Iterator[tuple[int, dict]]:
    from .distributed import dask_client, map_unordered

    def lost(args: tuple, error: BaseException) -> tuple[int, dict]:
        index, case, _ = args
        return index, _failure(case, case["image"], error)

    with dask_client(client) as connected:
        yield from map_unordered(connected, _run_case, tasks, on_error=lost)


def _failure_row(case: dict, outcome: dict) -> dict:
    return {
        ID_COLUMN: case[ID_COLUMN],
        "modality": case["modality"],
        "mask": case["mask"],
        "file": outcome["file"],
        "error": outcome["error"],
    }


def _collect(done: list[tuple[dict, dict]], n_cached: int = 0) -> ExtractionResult:
    done = sorted(done, key=lambda d: (d[0][ID_COLUMN], d[0]["modality"], d[0]["mask"]))
    records, diagnostics, failures = [], [], []
    for case, outcome in done:
        if "error" in outcome:
            failures.append(_failure_row(case, outcome))
            continue
        records.append(
            FeatureRecord(
                case[ID_COLUMN],
                case["modality"],
                case["mask"],
                outcome["features"],
                case.get(SITE_COLUMN),
            )
        )
        diagnostics.append(
            {
                **{c: case[c] for c in CASE_COLUMNS},
                **_provenance(case, outcome),
                **({ROI_COLUMN: case[ROI_COLUMN]} if case.get(ROI_COLUMN) else {}),
                **outcome["diagnostics"],
            }
        )
    return ExtractionResult(
        features=to_wide(records),
        diagnostics=pd.DataFrame(diagnostics, columns=_union_columns(diagnostics)),
        failures=pd.DataFrame(failures, columns=list(FAILURE_COLUMNS)),
        n_cached=n_cached,
    )


def _provenance(case: dict, outcome: dict) -> dict:
    """The provenance columns of an extracted case (hashes from the cache or the worker)."""
    hashes = outcome.get("provenance") or case
    try:
        uid = series_uid(case["image"])
    except ImageReadError:  # it was read for extraction; a race at worst: leave it empty
        uid = None
    return {
        LESION: case.get(LESION),
        "image_sha256": hashes.get("image_sha256"),
        "mask_sha256": hashes.get("mask_sha256"),
        "series_uid": uid,
        "params_file": case.get("params_file"),
    }


def _union_columns(rows: list[dict]) -> list[str]:
    columns = list(CASE_COLUMNS) + list(PROVENANCE_COLUMNS)
    for row in rows:
        columns += [c for c in row if c not in columns]
    return columns
