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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from threadpoolctl import threadpool_limits

from .interpolation import DIAGNOSTIC as INTERPOLATION
from .interpolation import as_float, pyradiomics_interpolates
from .interpolation import describe as describe_interpolation
from .io import GRID_TOLERANCE, nonfinite_voxels, read_image
from .preprocess import BLOCK, CaseSpec, preprocess
from .rules import fill_nonfinite, nonfinite_problems
from .suv import to_suv

__all__ = [
    "DIAGNOSTICS_PREFIX",
    "extract_case",
    "feature_value",
    "lesion_extents",
    "lesion_mask",
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


def make_extractor(
    params: dict,
    *,
    ibsi: bool = False,
    negative_control: bool = False,
    round_intensities: bool = False,
):
    """A ``RadiomicsFeatureExtractor`` built from a parameter dict (validated by pyradiomics).

    With ``ibsi``, the :class:`radfusion.features.ibsi.IBSIFeatureExtractor` (IBSI bin origin
    and excess kurtosis; the ``radfusion`` block's ``ibsi`` option). With
    ``round_intensities``, intensities are rounded to integers after pyradiomics' resampling
    (:class:`radfusion.features.interpolation.RoundedResampling`: CT, as IBSI recommends).
    With ``negative_control``, the ROI's voxels are permuted after loading (see
    :mod:`radfusion.features.control`).

    Unless ``params['setting']`` sets ``geometryTolerance``, it is set to
    :data:`radfusion.features.io.GRID_TOLERANCE`, the tolerance manifest validation accepts, so that
    a mask validation passed is not rejected by pyradiomics for a sub-micron origin difference.
    radfusion's own ``radfusion`` block (see :mod:`radfusion.features.preprocess`) is left out: it
    is not PyRadiomics' and its schema would reject it.
    """
    from radiomics import featureextractor

    from .control import PermutedROI
    from .ibsi import IBSIFeatureExtractor
    from .interpolation import RoundedResampling

    quiet_radiomics()
    params = copy.deepcopy({k: v for k, v in params.items() if k != BLOCK})
    setting = params.setdefault("setting", None) or {}
    if isinstance(setting, dict):  # otherwise pyradiomics' schema reports it
        setting.setdefault("geometryTolerance", GRID_TOLERANCE)
        params["setting"] = setting
    base = IBSIFeatureExtractor if ibsi else featureextractor.RadiomicsFeatureExtractor
    # outermost first: the permutation sees the rounded image
    mixins = (PermutedROI,) * negative_control + (RoundedResampling,) * round_intensities
    return _extractor_class(mixins, base)(params)


@functools.cache
def _extractor_class(mixins: tuple[type, ...], base: type) -> type:
    """``base`` with ``mixins`` overriding its ``loadImage`` (one class per combination)."""
    if not mixins:
        return base
    name = "".join(m.__name__ for m in mixins) + base.__name__
    return type(name, (*mixins, base), {})


@functools.lru_cache(maxsize=16)
def _cached_extractor(params_json: str, options: tuple[bool, bool, bool]):
    ibsi, negative_control, round_intensities = options
    return make_extractor(
        json.loads(params_json),
        ibsi=ibsi,
        negative_control=negative_control,
        round_intensities=round_intensities,
    )


def _extractor(params: dict, options: tuple[bool, bool, bool]):
    """The extractor of ``params`` and the options of :func:`make_extractor` (``ibsi``,
    ``negative_control``, ``round_intensities``), built once per process (building one costs
    ~30 ms).

    ``RadiomicsFeatureExtractor.execute`` does not modify the extractor, so one can serve
    every case with the same parameters.
    """
    params = {k: v for k, v in params.items() if k != BLOCK}
    try:
        key = json.dumps(params)  # order kept: it orders pyradiomics outputs
    except (TypeError, ValueError):  # not JSON-able (e.g. sets): build it every time
        ibsi, negative_control, round_intensities = options
        return make_extractor(
            params,
            ibsi=ibsi,
            negative_control=negative_control,
            round_intensities=round_intensities,
        )
    return _cached_extractor(key, options)


def lesions(mask: sitk.Image, label: int = 1) -> sitk.Image:
    """The connected components of a ROI, numbered by decreasing size (1 = the largest).

    radfusion's only connected-component labelling: ``lesions`` modes of extraction and
    ``radfusion check`` both use it. Components are 26-connected (faces, edges and corners
    touch). Equal sizes keep ITK's scan order (x fastest, then y, then z, by each
    component's first voxel), so the numbering is deterministic.

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


def lesion_extents(mask: sitk.Image, label: int = 1) -> list[tuple[int, tuple[int, ...]]]:
    """``(voxel count, bounding-box size per axis in x, y, z order)`` of each connected
    component of a ROI, numbered as :func:`lesions` numbers them (largest first)."""
    from scipy import ndimage  # here: a fully cached run never imports it

    labelled = sitk.GetArrayFromImage(lesions(mask, label))
    counts = np.bincount(labelled.ravel())
    return [
        (int(counts[k]), tuple(s.stop - s.start for s in reversed(box)))
        for k, box in enumerate(ndimage.find_objects(labelled), start=1)
    ]


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


def feature_value(name: str, value: object) -> float:
    """A pyradiomics feature value as a float.

    Shape features come out of an eigen-decomposition and can be complex with a zero
    imaginary part (numpy 2 on Python 3.13); that part is dropped. A non-zero imaginary part
    would be a wrong value: it is an error, never silently discarded.

    >>> feature_value("original_shape_Flatness", np.complex128(0.5 + 0j))
    0.5
    """
    number = np.asarray(value)
    if np.iscomplexobj(number):
        real = np.real_if_close(number)
        if np.iscomplexobj(real):
            raise ValueError(f"feature {name} is complex ({value}); pyradiomics gave no real value")
        number = real
    return float(number)


def extract_case(
    image: str | Path | sitk.Image,
    mask: str | Path | sitk.Image,
    params: Mapping | CaseSpec,
    label: int | None = None,
    *,
    modality: str | None = None,
    negative_control: bool = False,
) -> tuple[dict[str, float], dict[str, object]]:
    """Extract the features of one region of interest with pyradiomics.

    SimpleITK and BLAS run on one thread meanwhile (see :func:`single_threaded`), so the
    values are the same bytes in every process and on every machine.

    Parameters
    ----------
    image, mask : str, Path or SimpleITK.Image
        The image and its label mask: files, DICOM series folders (see
        :func:`radfusion.features.io.read_image`) or images already read.
    params : dict or CaseSpec
        PyRadiomics parameters (``imageType`` / ``featureClass`` / ``setting``), e.g. one value
        of :func:`radfusion.features.params.load_params`, optionally with a ``radfusion`` block: the
        image and mask are then preprocessed first (see
        :func:`radfusion.features.preprocess.preprocess`). Or the case's
        :class:`~radfusion.features.preprocess.CaseSpec`, already parsed (label and modality
        are then the spec's, and must not be given).
    label : int, default=1
        The mask value of the region of interest; overrides ``setting.label``.
    modality : str, optional
        The modality name; interpolated CT intensities are rounded to integers (see
        :mod:`radfusion.features.interpolation`).
    negative_control : bool, default=False
        Extract from the image with its ROI voxels randomly permuted after pyradiomics'
        normalisation and resampling (same histogram, no texture; deterministic, see
        :mod:`radfusion.features.control`); the diagnostics say so.

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
    TypeError
        When ``params`` is a spec and ``label`` or ``modality`` is given too.
    """
    if isinstance(params, CaseSpec):
        if label is not None or modality is not None:
            raise TypeError("label and modality are the CaseSpec's: do not give them as well")
        spec = params
    else:
        spec = CaseSpec.from_params(params, 1 if label is None else int(label), modality)
    setting = spec.pyradiomics.get("setting") or {}
    interpolates = isinstance(setting, Mapping) and pyradiomics_interpolates(setting)
    rounds = interpolates and spec.round_intensities
    extractor = _extractor(spec.pyradiomics, (spec.preprocessing.ibsi, negative_control, rounds))
    source = None if isinstance(image, sitk.Image) else image
    with single_threaded():
        image, mask = _as_image(image), _as_image(mask)
        if spec.preprocessing.suv is not None:  # from the PET series' headers: a folder
            if source is None:
                raise ValueError("suv: give the image as its DICOM PET series folder")
            image = to_suv(image, source, spec.preprocessing.suv)
        image = _finite(image, source, mask, spec.label, spec.preprocessing.fill_non_finite)
        image, mask = preprocess(image, mask, spec)
        if interpolates:  # pyradiomics keeps the pixel type: interpolate in floating point
            image = as_float(image)
        result = extractor.execute(image, mask, label=spec.label)
    features: dict[str, float] = {}
    diagnostics: dict[str, object] = {}
    for name, value in result.items():
        if name.startswith(DIAGNOSTICS_PREFIX):
            diagnostics[name] = _plain(value)
        else:
            features[name] = feature_value(name, value)
    if interpolates or spec.preprocessing.resample is not None:
        diagnostics[INTERPOLATION] = describe_interpolation(spec.round_intensities)
    if spec.preprocessing.ibsi:
        from .ibsi import DIAGNOSTIC, describe

        diagnostics[DIAGNOSTIC] = describe(spec.pyradiomics.get("setting") or {})
    if negative_control:
        from .control import DIAGNOSTIC as CONTROL_DIAGNOSTIC
        from .control import describe as describe_control

        diagnostics[CONTROL_DIAGNOSTIC] = describe_control()
    return features, diagnostics
