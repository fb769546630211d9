"""Per-case rules shared by the pre-flight check and extraction.

:func:`radfusion.features.check.check_cohort` and the extraction runner call these same functions,
so ``radfusion check`` says "would fail" for exactly the images ``radfusion extract`` refuses,
with the same words:

- :func:`dimension_problems`: images and masks must be 3-D (a 2-D slice or a 4-D series is
  refused, naming the file).
- :func:`nonfinite_problems`: NaN or ±inf voxels. Inside the ROI they always fail the case.
  Outside it they fail it too by default, because resampling, normalisation and pyradiomics'
  filters (LoG, wavelet) read voxels around the ROI; the ``radfusion:`` block's
  ``fill_non_finite: <value>`` opts in to replacing those outside the ROI by that value
  (:func:`fill_nonfinite`), and the count replaced is recorded in the case's diagnostics.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from .io import ImageHeader

__all__ = ["FILLED_DIAGNOSTIC", "dimension_problems", "fill_nonfinite", "nonfinite_problems"]

#: Diagnostics column: how many non-finite voxels outside the ROI ``fill_non_finite`` replaced.
FILLED_DIAGNOSTIC = "diagnostics_radfusion_non_finite_filled"


def dimension_problems(header: ImageHeader, what: str, path: str | None = None) -> list[str]:
    """Why an image (or mask) of this geometry cannot be extracted: it is not 3-D.

    Parameters
    ----------
    header : ImageHeader
        The file's geometry.
    what : str
        ``"image"`` or ``"mask"``, the word the message starts with.
    path : str, optional
        Named in the message.

    Returns
    -------
    list of str
        One sentence, or empty for a 3-D file.
    """
    if header.dimension == 3:
        return []
    named = f"{what} {path}" if path else what
    size = "x".join(map(str, header.size))
    hint = (
        "store the slice as a 3-D image one slice thick"
        if header.dimension == 2
        else "give one 3-D volume per modality"
    )
    return [f"{named} is {header.dimension}-D (size {size}): radfusion extracts 3-D ROIs; {hint}"]


def nonfinite_problems(
    nonfinite: np.ndarray | None,
    roi: np.ndarray | None,
    fill: float | None = None,
    path: str | None = None,
) -> list[str]:
    """Why non-finite image voxels make a case untrustworthy.

    Parameters
    ----------
    nonfinite : numpy.ndarray of bool or None
        Where the image is NaN or ±inf (see :func:`radfusion.features.io.nonfinite_voxels`); None:
        nowhere.
    roi : numpy.ndarray of bool or None
        The ROI on the same grid (None, or another size: the ROI is unknown and every
        non-finite voxel counts as possibly inside it).
    fill : float, optional
        The ``fill_non_finite`` value of the modality's ``radfusion:`` block: when set,
        non-finite voxels outside the ROI are allowed (they will be replaced).
    path : str, optional
        The image file, named in the message.

    Returns
    -------
    list of str
        One sentence, or empty when extraction can go on.
    """
    if nonfinite is None:
        return []
    total = int(nonfinite.sum())
    if total == 0:
        return []
    named = f"image {path}" if path else "the image"
    known = roi is not None and roi.size == nonfinite.size
    inside = int(np.count_nonzero(nonfinite.ravel() & roi.ravel())) if known else total
    if inside:
        where = "inside the ROI" if known else "(the ROI could not be located)"
        return [
            f"{named} has {inside} NaN or infinite voxel(s) {where}; its features "
            "cannot be trusted: fix or re-export the image"
        ]
    if fill is None:
        return [
            f"{named} has {total} NaN or infinite voxel(s) outside the ROI; they would "
            "change resampling, normalisation and filtered features: fix the image, or "
            "set fill_non_finite: <value> in the modality's radfusion: parameter block "
            "to replace them"
        ]
    return []


def fill_nonfinite(image: sitk.Image, nonfinite: np.ndarray, value: float) -> sitk.Image:
    """The image with its non-finite voxels set to ``value`` (same grid and pixel type).

    Use after :func:`nonfinite_problems` found none inside the ROI. For NIfTI, ITK already
    read them as 0; they are set to ``value`` all the same.
    """
    voxels = sitk.GetArrayFromImage(image)
    voxels[nonfinite.reshape(voxels.shape)] = value
    out = sitk.GetImageFromArray(voxels, isVector=image.GetNumberOfComponentsPerPixel() > 1)
    out.CopyInformation(image)
    return out
