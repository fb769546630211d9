"""Extract pyradiomics features from one (image, mask) pair.

:func:`extract_case` is radfusion's single extraction path: the cohort runner and the
reference-baseline test both go through it. It runs under :func:`single_threaded`, so a
feature has the same bytes in any process, on any machine, whatever the number of workers.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from threadpoolctl import threadpool_limits

from .io import GRID_TOLERANCE, nonfinite_voxels, read_image
from .preprocess import BLOCK, parse_config, preprocess
from .rules import fill_nonfinite, nonfinite_problems
from .suv import to_suv

__all__ = [
    "DIAGNOSTICS_PREFIX",
    "extract_case",
    "lesion_mask",
    "lesion_sizes",
    "lesions",
    "make_extractor",
    "quiet_radiomics",
    "single_threaded",
]

DIAGNOSTICS_PREFIX = "diagnostics_"

_pin_lock = threading.Lock()
_pin_depth = 0
_pin_saved: tuple[int, threadpool_limits] | None = None


@contextmanager
def single_threaded() -> Iterator[None]:
    """Run the block with SimpleITK, BLAS and OpenMP on one thread; restore them after.

    ITK's multi-threaded reductions sum in an order that depends on the thread count: the
    image statistics behind pyradiomics' ``normalize`` (radfusion's MR default) change in the
    last digits (~1e-13 relative) between one thread and two. One thread everywhere (in this
    process, in joblib workers, on Dask workers) gives the same bytes whatever the number of
    workers or cores. Parallelism is over cases, one worker process per core.

    Re-entrant and thread-safe: nested or concurrent blocks share one setting, and the
    caller's settings come back when the last block exits.
    """
    global _pin_depth, _pin_saved
    with _pin_lock:
        if _pin_depth == 0:
            threads = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
            _pin_saved = threads, threadpool_limits(limits=1)
            sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(1)
        _pin_depth += 1
    try:
        yield
    finally:
        with _pin_lock:
            _pin_depth -= 1
            if _pin_depth == 0:
                threads, blas = _pin_saved
                _pin_saved = None
                blas.restore_original_limits()
                sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(threads)


def quiet_radiomics(level: int = logging.WARNING) -> None:
    """Keep pyradiomics' log at ``level`` and above (its INFO messages are per-case noise)."""
    import radiomics

    radiomics.setVerbosity(level)
    logging.getLogger("radiomics").setLevel(level)


def make_extractor(params: dict):
    """A ``RadiomicsFeatureExtractor`` built from a parameter dict (validated by pyradiomics).

    Unless ``params['setting']`` sets ``geometryTolerance``, it is set to
    :data:`radfusion.features.io.GRID_TOLERANCE`, the tolerance manifest validation accepts, so that
    a mask validation passed is not rejected by pyradiomics for a sub-micron origin difference.
    radfusion's own ``radfusion`` block (see :mod:`radfusion.features.preprocess`) is left out: it
    is not PyRadiomics' and its schema would reject it.
    """
    from radiomics import featureextractor

    quiet_radiomics()
    params = copy.deepcopy({k: v for k, v in params.items() if k != BLOCK})
    setting = params.setdefault("setting", None) or {}
    if isinstance(setting, dict):  # otherwise pyradiomics' schema reports it
        setting.setdefault("geometryTolerance", GRID_TOLERANCE)
        params["setting"] = setting
    return featureextractor.RadiomicsFeatureExtractor(params)


@functools.lru_cache(maxsize=16)
def _cached_extractor(params_json: str):
    return make_extractor(json.loads(params_json))


def _extractor(params: dict):
    """The extractor of ``params``, built once per process (building one costs ~30 ms).

    ``RadiomicsFeatureExtractor.execute`` does not modify the extractor, so one can serve
    every case with the same parameters.
    """
    params = {k: v for k, v in params.items() if k != BLOCK}
    try:
        key = json.dumps(params)  # order kept: it orders pyradiomics outputs
    except (TypeError, ValueError):  # not JSON-able (e.g. sets): build it every time
        return make_extractor(params)
    return _cached_extractor(key)


def lesions(mask: sitk.Image, label: int = 1) -> sitk.Image:
    """The connected components of a ROI, numbered by decreasing size (1 = the largest).

    Components are 26-connected (faces, edges and corners touch). Equal sizes keep ITK's
    scan order, so the numbering is deterministic.

    Parameters
    ----------
    mask : SimpleITK.Image
        The label mask.
    label : int, default=1
        The ROI's value.

    Returns
    -------
    SimpleITK.Image
        ``UInt32`` image: 0 outside the ROI, k inside its k-th largest component.
    """
    roi = sitk.Cast(mask == int(label), sitk.sitkUInt8)
    components = sitk.ConnectedComponent(roi, True)
    return sitk.RelabelComponent(components, 0, True)


def lesion_sizes(mask: sitk.Image, label: int = 1) -> list[int]:
    """Voxel counts of a ROI's connected components, largest first (see :func:`lesions`)."""
    counts = np.bincount(sitk.GetArrayFromImage(lesions(mask, label)).ravel())
    return [int(c) for c in counts[1:]]


def lesion_mask(mask: sitk.Image, label: int, lesion: int) -> sitk.Image:
    """A mask holding only the ``lesion``-th largest component of a ROI, with value ``label``.

    An absent component gives an empty mask (pyradiomics then rejects it). The grid is the
    input mask's.
    """
    selected = sitk.Cast(lesions(mask, label) == int(lesion), sitk.sitkUInt32) * int(label)
    selected = sitk.Cast(selected, mask.GetPixelID())
    selected.CopyInformation(mask)
    return selected


def _as_image(image: str | Path | sitk.Image) -> sitk.Image:
    return image if isinstance(image, sitk.Image) else read_image(image)


def _finite(
    image: sitk.Image, source: str | Path | None, mask: sitk.Image, label: int, fill: float | None
) -> sitk.Image:
    """The image, refused or filled by the non-finite rule (:mod:`radfusion.features.rules`)."""
    if source is not None:  # a file: NIfTI voxels as stored (ITK reads NaN as 0)
        nonfinite = nonfinite_voxels(source, image)
    else:
        voxels = sitk.GetArrayViewFromImage(image)
        finite = np.isfinite(voxels) if voxels.dtype.kind == "f" else None
        nonfinite = None if finite is None or finite.all() else ~finite
    if nonfinite is None:
        return image
    roi = sitk.GetArrayViewFromImage(mask) == label
    problems = nonfinite_problems(nonfinite, roi, fill, None if source is None else str(source))
    if problems:
        raise ValueError("; ".join(problems))
    return fill_nonfinite(image, nonfinite, fill)


def _plain(value: object) -> object:
    """Numpy scalars and 0-d arrays as Python scalars; other values unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0 or isinstance(value, np.generic):
        return value.item()
    return value


def extract_case(
    image: str | Path | sitk.Image,
    mask: str | Path | sitk.Image,
    params: dict,
    label: int = 1,
    *,
    modality: str | None = None,
) -> tuple[dict[str, float], dict[str, object]]:
    """Extract the features of one region of interest with pyradiomics.

    SimpleITK and BLAS run on one thread meanwhile (see :func:`single_threaded`), so the
    values are the same bytes in every process and on every machine.

    Parameters
    ----------
    image, mask : str, Path or SimpleITK.Image
        The image and its label mask: files, DICOM series folders (see
        :func:`radfusion.features.io.read_image`) or images already read.
    params : dict
        PyRadiomics parameters (``imageType`` / ``featureClass`` / ``setting``), e.g. one value
        of :func:`radfusion.features.params.load_params`, optionally with a ``radfusion`` block: the
        image and mask are then preprocessed first (see
        :func:`radfusion.features.preprocess.preprocess`).
    label : int, default=1
        The mask value of the region of interest; overrides ``setting.label``.
    modality : str, optional
        The modality name; only IBSI resampling uses it (CT intensities are rounded).

    Returns
    -------
    features : dict of str to float
        ``{"original_glcm_Contrast": 1.23, ...}`` in pyradiomics' order.
    diagnostics : dict of str to object
        pyradiomics' ``diagnostics_*`` entries (versions, settings, image and mask summaries).

    Raises
    ------
    radfusion.features.io.ImageReadError
        When a file cannot be read.
    ValueError
        When pyradiomics rejects the mask (e.g. label absent, geometry mismatch, ROI too small),
        when the ``radfusion`` block is invalid or the mask beyond its alignment tolerance, or
        when the image has NaN or infinite voxels (see :mod:`radfusion.features.rules`; inside the
        ROI always, outside it unless the block sets ``fill_non_finite``).
    """
    extractor = _extractor(params)
    source = None if isinstance(image, sitk.Image) else image
    with single_threaded():
        image, mask = _as_image(image), _as_image(mask)
        config = parse_config(params.get(BLOCK))
        if config.suv is not None:  # from the PET series' headers: only a folder has them
            if source is None:
                raise ValueError("suv: give the image as its DICOM PET series folder")
            image = to_suv(image, source, config.suv)
        image = _finite(image, source, mask, int(label), config.fill_non_finite)
        if not config.is_noop:
            image, mask = preprocess(image, mask, int(label), config, modality=modality)
        result = extractor.execute(image, mask, label=int(label))
    features: dict[str, float] = {}
    diagnostics: dict[str, object] = {}
    for name, value in result.items():
        if name.startswith(DIAGNOSTICS_PREFIX):
            diagnostics[name] = _plain(value)
        else:
            features[name] = float(value)
    return features, diagnostics
