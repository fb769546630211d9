"""Extract pyradiomics features from one (image, mask) pair.

:func:`extract_case` is radfusion's single extraction path: the cohort runner and the
reference-baseline test both go through it.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .io import GRID_TOLERANCE, read_image
from .preprocess import BLOCK, parse_config, preprocess

__all__ = ["DIAGNOSTICS_PREFIX", "extract_case", "lesion_mask", "lesion_sizes", "lesions",
           "make_extractor", "quiet_radiomics"]

DIAGNOSTICS_PREFIX = "diagnostics_"


def quiet_radiomics(level: int = logging.WARNING) -> None:
    """Keep pyradiomics' log at ``level`` and above (its INFO messages are per-case noise)."""
    import radiomics

    radiomics.setVerbosity(level)
    logging.getLogger("radiomics").setLevel(level)


def make_extractor(params: dict):
    """A ``RadiomicsFeatureExtractor`` built from a parameter dict (validated by pyradiomics).

    Unless ``params['setting']`` sets ``geometryTolerance``, it is set to
    :data:`radfusion.features.io.GRID_TOLERANCE`, the tolerance manifest validation accepts, so that a
    mask validation passed is not rejected by pyradiomics for a sub-micron origin difference.
    radfusion's own ``radfusion`` block (see :mod:`radfusion.features.preprocess`) is left out: it is
    not PyRadiomics' and its schema would reject it.
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

    Parameters
    ----------
    image, mask : str, Path or SimpleITK.Image
        The image and its label mask: files, DICOM series folders (see
        :func:`radfusion.features.io.read_image`) or images already read.
    params : dict
        PyRadiomics parameters (``imageType`` / ``featureClass`` / ``setting``), e.g. one value
        of :func:`radfusion.features.params.load_params`, optionally with a ``radfusion`` block: the
        image and mask are then preprocessed first (see :func:`radfusion.features.preprocess.preprocess`).
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
        or when the ``radfusion`` block is invalid or the mask beyond its alignment tolerance.
    """
    extractor = _extractor(params)
    image, mask = _as_image(image), _as_image(mask)
    config = parse_config(params.get(BLOCK))
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
