"""Negative-control extraction: the ROI's voxels randomly permuted (same histogram, no texture).

``radfusion extract --negative-control`` extracts every ROI a second time from an image whose
voxels inside the ROI were shuffled (Welch et al., Radiother Oncol 2019: a signature that does
no better than features of intensity-randomised images only re-encodes the intensity
distribution and the volume). Its columns carry the reserved mask suffix
:data:`radfusion.features.naming.CONTROL_SUFFIX` (``CT__tumor~permuted__original_glcm_Contrast``).

The permutation is applied to the image pyradiomics computes features on, i.e. after its own
normalisation and resampling (``normalize``, ``resampledPixelSpacing``) and after radfusion's
``radfusion:`` preprocessing, by overriding pyradiomics' ``loadImage`` hook: so the ROI's
intensity histogram is exactly the original one (first-order features equal, up to the order
of floating-point sums), shape features are unchanged (the mask is untouched), and only the
spatial arrangement of intensities (texture, and every filtered image type) differs. Voxels
outside the ROI are unchanged.

The permutation is seeded by the ROI's content (its voxel positions and values, see
:func:`roi_seed`), not by patient or file names: the same image and mask give the same bytes on
every run, in any process, and the cache key of a case needs no name.
"""

from __future__ import annotations

import hashlib

import numpy as np
import SimpleITK as sitk
from radiomics import imageoperations

__all__ = [
    "DIAGNOSTIC",
    "PermutedROI",
    "describe",
    "permute_roi",
    "roi_seed",
]

#: Diagnostics column recording that a case is a negative control (see :func:`describe`).
DIAGNOSTIC = "diagnostics_radfusion_negative_control"
_SALT = b"radfusion negative control 1"


def roi_seed(voxels: np.ndarray, roi: np.ndarray) -> int:
    """A 64-bit seed from a ROI's content: its shape, voxel positions and values.

    Parameters
    ----------
    voxels : numpy.ndarray
        The image's voxels.
    roi : numpy.ndarray of bool
        The ROI, same shape.

    Returns
    -------
    int
    """
    digest = hashlib.sha256(_SALT)
    digest.update(np.asarray(roi.shape, dtype=np.int64).tobytes())
    digest.update(np.flatnonzero(roi).astype(np.int64).tobytes())
    values = np.ascontiguousarray(voxels[roi])
    digest.update(values.dtype.str.encode())
    digest.update(values.tobytes())
    return int.from_bytes(digest.digest()[:8], "little")


def permute_roi(
    image: sitk.Image, mask: sitk.Image, label: int = 1, seed: int | None = None
) -> sitk.Image:
    """The image with its voxels inside the ROI randomly permuted; the rest unchanged.

    Parameters
    ----------
    image : SimpleITK.Image
        A scalar image.
    mask : SimpleITK.Image
        Its label mask, on the same grid.
    label : int, default=1
        The ROI's value in ``mask``.
    seed : int, optional
        Seed of the permutation; None: :func:`roi_seed` of the ROI (the same input always
        gives the same output).

    Returns
    -------
    SimpleITK.Image
        Same grid, pixel type and metadata as ``image``.
    """
    voxels = sitk.GetArrayFromImage(image)
    roi = sitk.GetArrayViewFromImage(mask) == int(label)
    if roi.shape != voxels.shape:
        raise ValueError(f"mask grid {roi.shape} differs from the image grid {voxels.shape}")
    values = voxels[roi]
    rng = np.random.default_rng(roi_seed(voxels, roi) if seed is None else seed)
    voxels[roi] = values[rng.permutation(values.size)]
    permuted = sitk.GetImageFromArray(voxels)
    permuted.CopyInformation(image)
    return permuted


def describe() -> str:
    """The sentence recorded in a negative-control case's diagnostics."""
    return (
        "negative control: voxels inside the ROI randomly permuted after pyradiomics' "
        "normalisation and resampling (seeded by the ROI's content); voxels outside unchanged"
    )


class PermutedROI:
    """Mixin over a pyradiomics extractor: the loaded image's ROI voxels are permuted.

    ``loadImage`` is where pyradiomics normalises and resamples; the permutation follows, on
    the mask pyradiomics will use (corrected onto the image grid by ``checkMask`` when the
    grids differ within ``geometryTolerance``), so every image type (original and filtered)
    and every feature class sees the permuted image.
    """

    def loadImage(self, ImageFilePath, MaskFilePath, generalInfo=None, **kwargs):  # noqa: N802, N803
        image, mask = super().loadImage(ImageFilePath, MaskFilePath, generalInfo, **kwargs)
        _, corrected = imageoperations.checkMask(image, mask, **kwargs)
        roi = mask if corrected is None else corrected
        return permute_roi(image, roi, kwargs.get("label", 1)), mask
