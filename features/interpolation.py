"""Interpolated intensities do not depend on how the image was stored.

A DICOM CT series is read as 16-bit integers and pyradiomics' resampling
(``setting.resampledPixelSpacing``) keeps the input's pixel type, so B-spline-interpolated
Hounsfield units were truncated toward zero, while the same scan stored as a floating-point
NIfTI or NRRD kept them: 91 of the 106 features of the shipped CT parameters differed
(up to 12 % on a synthetic series). Following IBSI (Zwanenburg et al., arXiv:1612.07003,
"interpolation"), radfusion therefore:

- hands pyradiomics a 64-bit float image whenever pyradiomics will interpolate it
  (:func:`as_float`): every stored type (int16 DICOM, float32 NIfTI, float64 NRRD) gives the
  same bytes;
- rounds CT intensities to integer HU after interpolation (:class:`RoundedResampling`, and
  :func:`radfusion.features.preprocess.resample` for radfusion's own resampling), unless the
  image was normalised before (pyradiomics' ``normalize`` runs before its resampling, and a
  z-score is no HU). :attr:`radfusion.features.preprocess.CaseSpec.round_intensities` decides.
"""

from __future__ import annotations

from collections.abc import Mapping

import SimpleITK as sitk

__all__ = ["DIAGNOSTIC", "RoundedResampling", "as_float", "describe", "pyradiomics_interpolates"]

#: Diagnostics column recording how interpolated intensities were computed.
DIAGNOSTIC = "diagnostics_radfusion_interpolation"


def pyradiomics_interpolates(setting: Mapping | None) -> bool:
    """Whether pyradiomics resamples with these settings (``resampledPixelSpacing`` and an
    ``interpolator`` both set, as in its ``loadImage``)."""
    setting = setting or {}
    return bool(setting.get("resampledPixelSpacing")) and setting.get("interpolator") is not None


def as_float(image: sitk.Image) -> sitk.Image:
    """The image as 64-bit float (unchanged when it already is): integer and 32-bit inputs
    are represented exactly, so interpolation no longer depends on the stored type."""
    if image.GetPixelID() == sitk.sitkFloat64:
        return image
    return sitk.Cast(image, sitk.sitkFloat64)


def describe(rounded: bool) -> str:
    """The sentence recorded in the diagnostics of an interpolated case."""
    return "interpolated in floating point" + (
        "; intensities rounded to integers after interpolation (CT, as IBSI recommends)"
        if rounded
        else ""
    )


class RoundedResampling:
    """Mixin over a pyradiomics extractor: intensities rounded to integers after its
    resampling (``loadImage`` is where pyradiomics normalises, then resamples)."""

    def loadImage(self, ImageFilePath, MaskFilePath, generalInfo=None, **kwargs):  # noqa: N802, N803
        image, mask = super().loadImage(ImageFilePath, MaskFilePath, generalInfo, **kwargs)
        if pyradiomics_interpolates(kwargs):
            image = sitk.Round(image)
        return image, mask
