"""IBSI conventions on top of pyradiomics, without patching it.

In IBSI mode (``ibsi: true`` in a modality's ``radfusion:`` block; on by default with
``resample: {mode: ibsi}``, see :mod:`radfusion.features.preprocess`) two definitions follow
the IBSI reference manual (Zwanenburg et al., arXiv:1612.07003) instead of pyradiomics:

- **Fixed-bin-size origin.** pyradiomics numbers bins from the multiple of the bin width at
  or below the ROI minimum, so the lowest occupied bin is always grey level 1. IBSI numbers
  them from the re-segmentation range's lower bound (the ROI minimum without one):
  ``level = floor((x - lower) / width) + 1`` (:func:`ibsi_levels`). A CT ROI whose minimum
  is -940 HU with a range from -1000 HU and bins of 25 HU starts at level 3, not 1, and
  every feature weighted by grey level (joint average, grey level emphases, ...) changes.
  Shifting the image cannot do this (pyradiomics would still call the lowest occupied bin
  1), so the feature classes that discretise are subclassed here and bin the IBSI way in
  ``_applyBinning``, the hook pyradiomics' base class provides for it. This applies to the
  original image; filtered images (LoG, wavelet, ...) keep pyradiomics' binning, which IBSI
  1 does not define. First-order statistics and shape features still read the original
  intensities; only first-order's histogram features (entropy, uniformity) see the bins.
  Fixed bin count (``binCount``) is the same in both and is left alone.
- **Kurtosis** is excess kurtosis (pyradiomics' kurtosis - 3), in every image type.

:class:`IBSIFeatureExtractor` is pyradiomics' ``RadiomicsFeatureExtractor`` with those
classes; :func:`describe` is the sentence recorded in each case's diagnostics.
"""

from __future__ import annotations

import collections
from collections.abc import Mapping

import numpy as np
from radiomics import (
    featureextractor,
    firstorder,
    getFeatureClasses,
    glcm,
    gldm,
    glrlm,
    glszm,
    ngtdm,
)

__all__ = [
    "CLASSES",
    "DIAGNOSTIC",
    "IBSIFeatureExtractor",
    "bin_origin",
    "describe",
    "ibsi_levels",
]

#: Diagnostics column recording what IBSI mode changed (see :func:`describe`).
DIAGNOSTIC = "diagnostics_radfusion_ibsi"
#: Setting passed to the feature classes of the original image: bin IBSI's way.
_ORIGIN = "radfusionIBSIBinning"


def bin_origin(settings: Mapping) -> float | None:
    """Where IBSI's fixed-bin-size levels start: the re-segmentation range's lower bound, or
    None (the ROI minimum) without a range."""
    bounds = settings.get("resegmentRange")
    return float(min(bounds)) if bounds else None


def ibsi_levels(values: np.ndarray, width: float, lower: float | None = None) -> np.ndarray:
    """IBSI fixed-bin-size grey levels: ``floor((x - lower) / width) + 1``.

    Parameters
    ----------
    values : numpy.ndarray
        The ROI's intensities.
    width : float
        The bin width (pyradiomics' ``binWidth``).
    lower : float, optional
        The re-segmentation range's lower bound; None: the smallest value.

    Returns
    -------
    numpy.ndarray of int
        Levels from 1, same shape as ``values``.

    Raises
    ------
    ValueError
        When a value lies below ``lower`` (it would get a level below 1).
    """
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return values.astype(int)
    low = float(values.min()) if lower is None else float(lower)
    if values.min() < low:
        raise ValueError(
            f"an ROI intensity ({values.min():g}) lies below the IBSI bin origin {low:g}"
        )
    return (np.floor((values - low) / width) + 1).astype(int)


def describe(settings: Mapping) -> str:
    """The sentence recorded in the diagnostics: what IBSI mode did with these settings."""
    if settings.get("binCount") is not None:
        binning = "fixed bin number, as IBSI defines it"
    else:
        lower = bin_origin(settings)
        start = (
            f"the re-segmentation lower bound ({lower:g})"
            if lower is not None
            else "the ROI's minimum intensity (no re-segmentation range)"
        )
        binning = (
            f"fixed bin size {settings.get('binWidth', 25):g} with grey levels of the original "
            f"image counted from {start}, as IBSI defines them (filtered images binned as "
            "pyradiomics does)"
        )
    return f"IBSI conventions: {binning}; kurtosis reported as excess kurtosis (kurtosis - 3)"


class _IBSIBinning:
    """Mixin: IBSI fixed-bin-size discretisation when the extractor asks for it."""

    def _applyBinning(self, matrix):  # pyradiomics' hook (RadiomicsFeaturesBase)
        if _ORIGIN not in self.settings or self.settings.get("binCount") is not None:
            return super()._applyBinning(matrix)
        binned = np.zeros(matrix.shape, dtype=int)
        binned[self.maskArray] = ibsi_levels(
            matrix[self.maskArray], self.settings.get("binWidth", 25), self.settings[_ORIGIN]
        )
        self.coefficients["grayLevels"] = np.unique(binned[self.maskArray])
        self.coefficients["Ng"] = int(np.max(self.coefficients["grayLevels"]))
        return binned


class IBSIFirstOrder(_IBSIBinning, firstorder.RadiomicsFirstOrder):
    """pyradiomics' first order, with IBSI bins and excess kurtosis."""

    def getKurtosisFeatureValue(self):
        """Excess kurtosis. Kurtosis is at least 1, so pyradiomics' 0 is its flat-ROI
        marker (0 / 0) and stays 0."""
        kurtosis = super().getKurtosisFeatureValue()
        return np.where(kurtosis == 0, 0.0, kurtosis - 3)


class IBSIGLCM(_IBSIBinning, glcm.RadiomicsGLCM):
    """pyradiomics' GLCM on IBSI bins."""


class IBSIGLRLM(_IBSIBinning, glrlm.RadiomicsGLRLM):
    """pyradiomics' GLRLM on IBSI bins."""


class IBSIGLSZM(_IBSIBinning, glszm.RadiomicsGLSZM):
    """pyradiomics' GLSZM on IBSI bins."""


class IBSIGLDM(_IBSIBinning, gldm.RadiomicsGLDM):
    """pyradiomics' GLDM (IBSI's NGLDM) on IBSI bins."""


class IBSINGTDM(_IBSIBinning, ngtdm.RadiomicsNGTDM):
    """pyradiomics' NGTDM on IBSI bins."""


CLASSES = {
    "firstorder": IBSIFirstOrder,
    "glcm": IBSIGLCM,
    "glrlm": IBSIGLRLM,
    "glszm": IBSIGLSZM,
    "gldm": IBSIGLDM,
    "ngtdm": IBSINGTDM,
}


class IBSIFeatureExtractor(featureextractor.RadiomicsFeatureExtractor):
    """pyradiomics' extractor with the feature classes of :data:`CLASSES` (IBSI bins on the
    original image, excess kurtosis); shape features and everything else are pyradiomics'."""

    def computeFeatures(self, image, mask, imageTypeName, **kwargs):
        """pyradiomics' ``computeFeatures`` (same names and order), with IBSI's classes."""
        if imageTypeName == "original":
            kwargs = {**kwargs, _ORIGIN: bin_origin(kwargs)}
        features = collections.OrderedDict()
        pyradiomics_classes = getFeatureClasses()
        for class_name, names in self.enabledFeatures.items():
            if class_name.startswith("shape") or class_name not in pyradiomics_classes:
                continue
            feature_class = CLASSES.get(class_name, pyradiomics_classes[class_name])(
                image, mask, **kwargs
            )
            for name in names or ():
                feature_class.enableFeatureByName(name)
            for name, value in feature_class.execute().items():
                features[f"{imageTypeName}_{class_name}_{name}"] = value
        return features
