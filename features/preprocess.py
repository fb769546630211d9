"""Preprocessing before pyradiomics: mask alignment, resampling, normalisation, derived ROIs.

Configured per modality by a ``radfusion:`` block inside the modality's PyRadiomics parameter
file (PyRadiomics' schema rejects unknown keys, so :func:`split_params` takes the block out
before an extractor is built; the whole parameter dict, block included, is the cache key)::

    radfusion:
      align_mask: true            # or {tolerance_mm: 0.25, spacing_tolerance: 0.001}
      resample: {spacing: [1, 1, 1], interpolator: bspline}   # bspline | linear | nearest
      # resample: {spacing: [1, 1, 1], mode: ibsi}            # IBSI-conformant
      normalize: zscore           # or {clip_percentiles: [1, 99]} or {window: [-1000, 400]}
      fill_non_finite: 0          # NaN / ±inf voxels outside the ROI become 0 (see below)
      ibsi: true                  # IBSI bin origin and excess kurtosis (see features.ibsi)
      suv: bw                     # DICOM PET series -> body-weight SUV (features/suv.py)

Every option is off when absent: without the block (or with an empty one) the image and mask
reach pyradiomics unchanged. Order applied by :func:`preprocess`: mask aligned onto the image
grid, image and mask resampled, image intensities normalised.

NaN and ±inf voxels fail a case (see :mod:`radfusion.features.rules`); ``fill_non_finite: <value>``
opts in to replacing those outside the ROI by ``value`` before anything else (the runner
does it, and records how many in the diagnostics); inside the ROI they still fail it.

Derived ROIs (a peritumoral ring, one ROI per label) are manifest options, like ``lesions``;
:func:`ring_mask` builds the ring.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from .interpolation import pyradiomics_interpolates
from .io import GRID_TOLERANCE, ImageHeader, compare_grids
from .naming import modality_kind
from .suv import SUV_KINDS

__all__ = [
    "BLOCK",
    "AlignMask",
    "CaseSpec",
    "Normalize",
    "Preprocessing",
    "Resample",
    "align_mask",
    "filter_margin",
    "ibsi_grid",
    "misalignment",
    "normalize",
    "parse_config",
    "preprocess",
    "resample",
    "ring_mask",
    "split_params",
]

#: Top-level key of radfusion's own options in a parameter file.
BLOCK = "radfusion"
INTERPOLATORS = {
    "bspline": sitk.sitkBSpline,
    "linear": sitk.sitkLinear,
    "nearest": sitk.sitkNearestNeighbor,
}
RESAMPLE_MODES = ("standard", "ibsi")
#: IBSI keeps a resampled ROI voxel where the interpolated 0/1 mask is >= 0.5; values within
#: this of 0.5 are ties (a new centre halfway between old ones) that rounding must not decide.
ROI_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class AlignMask:
    """Tolerances within which a mask's grid is resampled onto its image's grid.

    ``tolerance_mm``: largest origin distance (None: half the image's smallest spacing);
    ``spacing_tolerance``: largest relative spacing difference. Sizes must be equal and
    direction cosines within 1e-3.
    """

    tolerance_mm: float | None = None
    spacing_tolerance: float = GRID_TOLERANCE


@dataclass(frozen=True)
class Resample:
    """Target spacing (mm, x y z), image interpolator, mode (``standard`` or ``ibsi``),
    and whether to round intensities (None: auto, CT; see :attr:`CaseSpec.round_intensities`)."""

    spacing: tuple[float, ...]
    interpolator: str = "bspline"
    mode: str = "standard"
    round: bool | None = None


@dataclass(frozen=True)
class Normalize:
    """``method``: ``zscore``, ``clip_percentiles`` or ``window``; ``bounds`` for the last two."""

    method: str
    bounds: tuple[float, float] | None = None


@dataclass(frozen=True)
class Preprocessing:
    """The parsed ``radfusion`` block; every field None means: do nothing.

    ``fill_non_finite`` is applied by the runner before preprocessing (see
    :mod:`radfusion.features.rules`); ``ibsi`` (IBSI bin origin and excess kurtosis, see
    :mod:`radfusion.features.ibsi`) by extraction. :attr:`is_noop` is about the three
    preprocessing steps.
    """

    align_mask: AlignMask | None = None
    resample: Resample | None = None
    normalize: Normalize | None = None
    fill_non_finite: float | None = None
    ibsi: bool = False
    #: ``bw``: the image is converted to body-weight SUV by the runner, before anything else
    #: (see :mod:`radfusion.features.suv`); None: left as read.
    suv: str | None = None

    @property
    def is_noop(self) -> bool:
        return self.align_mask is None and self.resample is None and self.normalize is None


@dataclass(frozen=True)
class CaseSpec:
    """What one case runs, its modality's parameter dict parsed once.

    Built by :meth:`from_params` (or by the cohort runner, which parses each modality's
    block once and builds one spec per case); :func:`preprocess` and
    :func:`radfusion.features.extract.extract_case` receive it, so nothing parses the
    ``radfusion`` block again.

    Attributes
    ----------
    pyradiomics : dict
        PyRadiomics' parameters, the ``radfusion`` block left out, in their given order.
        Treat as read-only.
    preprocessing : Preprocessing
        The parsed ``radfusion`` block.
    label : int
        The ROI's value in the mask.
    modality : str or None
        The modality name (interpolated CT intensities are rounded).
    """

    pyradiomics: dict
    preprocessing: Preprocessing = Preprocessing()
    label: int = 1
    modality: str | None = None

    @classmethod
    def from_params(cls, params: Mapping, label: int = 1, modality: str | None = None) -> CaseSpec:
        """The spec of one case from a parameter dict (validated by :func:`split_params`)."""
        pyradiomics, preprocessing = split_params(params)
        return cls(pyradiomics, preprocessing, int(label), modality)

    @property
    def round_intensities(self) -> bool:
        """Whether intensities are rounded to integers after interpolation.

        ``resample.round`` when set; otherwise True for a CT modality (see
        :func:`radfusion.features.naming.modality_kind`) whose image is interpolated: by
        radfusion's ``resample`` (either mode), or by pyradiomics'
        ``resampledPixelSpacing`` unless pyradiomics normalises it first (a z-score is no
        HU). See :mod:`radfusion.features.interpolation`.
        """
        resample = self.preprocessing.resample
        if resample is not None and resample.round is not None:
            return resample.round
        if self.modality is None or modality_kind(self.modality) != "ct":
            return False
        if resample is not None:
            return True
        setting = self.pyradiomics.get("setting") or {}
        return (
            isinstance(setting, Mapping)
            and pyradiomics_interpolates(setting)
            and not setting.get("normalize")
        )


def _pair(value: object, what: str) -> tuple[float, float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    ):
        raise ValueError(f"{what} must be a list of two numbers, got {value!r}")
    low, high = float(value[0]), float(value[1])
    if not low < high:
        raise ValueError(f"{what} must be increasing, got {value!r}")
    return low, high


def _keys(block: Mapping, allowed: set[str], what: str) -> None:
    unknown = sorted(set(block) - allowed)
    if unknown:
        raise ValueError(f"unknown {what} option(s) {unknown}; expected {sorted(allowed)}")


def parse_config(block: object) -> Preprocessing:
    """Parse (and validate) a ``radfusion`` block; None or ``{}`` gives the no-op config.

    Raises
    ------
    ValueError
        Saying what is wrong.
    """
    if block is None:
        return Preprocessing()
    if not isinstance(block, Mapping):
        raise ValueError(f"{BLOCK} must be a mapping, got {block!r}")
    _keys(block, {"align_mask", "resample", "normalize", "fill_non_finite", "ibsi", "suv"}, BLOCK)
    suv = block.get("suv")
    if suv is not None and suv not in SUV_KINDS:
        raise ValueError(f"suv must be one of {', '.join(SUV_KINDS)}, got {suv!r}")
    fill = block.get("fill_non_finite")
    if fill is not None and (
        not isinstance(fill, int | float) or isinstance(fill, bool) or not math.isfinite(fill)
    ):
        raise ValueError(f"fill_non_finite must be a finite number, got {fill!r}")
    resample = _parse_resample(block.get("resample"))
    ibsi = block.get("ibsi")
    if ibsi is not None and not isinstance(ibsi, bool):
        raise ValueError(f"ibsi must be true or false, got {ibsi!r}")
    if ibsi is None:  # IBSI resampling is IBSI mode unless ibsi: false says otherwise
        ibsi = resample is not None and resample.mode == "ibsi"
    return Preprocessing(
        _parse_align(block.get("align_mask")),
        resample,
        _parse_normalize(block.get("normalize")),
        None if fill is None else float(fill),
        ibsi,
        suv=suv,
    )


def _parse_align(value: object) -> AlignMask | None:
    if value is None or value is False:
        return None
    if value is True:
        return AlignMask()
    if not isinstance(value, Mapping):
        raise ValueError(f"align_mask must be true or a mapping, got {value!r}")
    _keys(value, {"tolerance_mm", "spacing_tolerance"}, "align_mask")
    tolerance = value.get("tolerance_mm")
    spacing = value.get("spacing_tolerance", GRID_TOLERANCE)
    for name, v in (("tolerance_mm", tolerance), ("spacing_tolerance", spacing)):
        if v is not None and (not isinstance(v, int | float) or isinstance(v, bool) or v < 0):
            raise ValueError(f"align_mask.{name} must be a non-negative number, got {v!r}")
    return AlignMask(None if tolerance is None else float(tolerance), float(spacing))


def _parse_resample(value: object) -> Resample | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"resample must be a mapping with a spacing, got {value!r}")
    _keys(value, {"spacing", "interpolator", "mode", "round"}, "resample")
    spacing = value.get("spacing")
    if (
        not isinstance(spacing, list | tuple)
        or not spacing
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in spacing
        )
    ):
        raise ValueError(f"resample.spacing must be a list of positive numbers, got {spacing!r}")
    mode = str(value.get("mode", "standard")).lower()
    if mode not in RESAMPLE_MODES:
        raise ValueError(
            f"resample.mode must be one of {', '.join(RESAMPLE_MODES)}, got {value.get('mode')!r}"
        )
    default = "linear" if mode == "ibsi" else "bspline"
    interpolator = str(value.get("interpolator", default)).lower()
    if interpolator not in INTERPOLATORS:
        raise ValueError(
            f"resample.interpolator must be one of {', '.join(INTERPOLATORS)}, "
            f"got {value.get('interpolator')!r}"
        )
    if mode == "ibsi" and interpolator != "linear":
        raise ValueError(
            "resample.mode ibsi interpolates trilinearly: leave out interpolator "
            f"(got {interpolator!r})"
        )
    rounding = value.get("round")
    if rounding is not None and not isinstance(rounding, bool):
        raise ValueError(f"resample.round must be true or false, got {rounding!r}")
    return Resample(tuple(float(v) for v in spacing), interpolator, mode, rounding)


def _parse_normalize(value: object) -> Normalize | None:
    if value is None:
        return None
    if value == "zscore":
        return Normalize("zscore")
    if isinstance(value, Mapping) and len(value) == 1:
        ((method, bounds),) = value.items()
        if method == "clip_percentiles":
            low, high = _pair(bounds, "normalize.clip_percentiles")
            if low < 0 or high > 100:
                raise ValueError(f"normalize.clip_percentiles must lie in [0, 100], got {bounds}")
            return Normalize(method, (low, high))
        if method == "window":
            return Normalize(method, _pair(bounds, "normalize.window"))
    raise ValueError(
        "normalize must be zscore, {clip_percentiles: [low, high]} or "
        f"{{window: [low, high]}}, got {value!r}"
    )


def split_params(params: Mapping) -> tuple[dict, Preprocessing]:
    """``(pyradiomics parameters without the radfusion block, parsed block)``.

    Raises ``ValueError`` when the block is invalid, when it resamples and
    ``setting.resampledPixelSpacing`` is also set (the image would be resampled twice), or
    when IBSI mode meets a ``resegmentRange`` whose ``resegmentMode`` is not ``absolute``
    (IBSI bins from the range's lower bound, an intensity).
    """
    pyradiomics = {k: v for k, v in params.items() if k != BLOCK}
    config = parse_config(params.get(BLOCK))
    setting = pyradiomics.get("setting") or {}
    if (
        config.resample is not None
        and isinstance(setting, Mapping)
        and setting.get("resampledPixelSpacing")
    ):
        raise ValueError(
            f"{BLOCK}.resample and setting.resampledPixelSpacing are both set: "
            "remove resampledPixelSpacing (pyradiomics must not resample again)"
        )
    if (
        config.ibsi
        and isinstance(setting, Mapping)
        and setting.get("resegmentRange")
        and setting.get("resegmentMode", "absolute") != "absolute"
    ):
        raise ValueError(
            f"{BLOCK}.ibsi bins from the re-segmentation lower bound, an intensity: "
            f"setting.resegmentMode must be absolute, got {setting.get('resegmentMode')!r}"
        )
    return pyradiomics, config


# --- mask alignment -------------------------------------------------------------------


def _origin_tolerance(image: ImageHeader, config: AlignMask) -> float:
    if config.tolerance_mm is not None:
        return config.tolerance_mm
    return min(image.spacing) / 2


def misalignment(image: ImageHeader, mask: ImageHeader, config: AlignMask) -> list[str]:
    """How a mask's grid differs from its image's *beyond* the alignment tolerance.

    Empty: :func:`align_mask` can put the mask on the image grid. The comparison is
    :func:`radfusion.features.io.compare_grids` with ``config``'s tolerances.
    """
    return compare_grids(
        image,
        mask,
        origin_mm=_origin_tolerance(image, config),
        spacing=config.spacing_tolerance,
        setting="align_mask",
    )


def align_mask(image: sitk.Image, mask: sitk.Image) -> sitk.Image:
    """The mask resampled onto the image's grid (nearest neighbour); unchanged when the grids
    already match within :data:`radfusion.features.io.GRID_TOLERANCE`."""
    if not compare_grids(ImageHeader.of(image), ImageHeader.of(mask)):
        return mask
    return sitk.Resample(
        mask, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0, mask.GetPixelID()
    )


# --- resampling ---------------------------------------------------------------------------


def ibsi_grid(
    image: sitk.Image, spacing: tuple[float, ...]
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """``(size, origin)`` of the resampled grid, IBSI-aligned on the image centre.

    ``size = ceil(extent / spacing)`` per axis (extent = size × spacing of the original), and
    the origin puts the centre of the new grid on the centre of the original grid (same
    direction cosines).
    """
    dimension = image.GetDimension()
    if len(spacing) != dimension:
        raise ValueError(f"resample.spacing has {len(spacing)} values for a {dimension}-D image")
    old_size = np.array(image.GetSize(), dtype=float)
    old_spacing = np.array(image.GetSpacing())
    new_spacing = np.array(spacing, dtype=float)
    # a tiny slack so that e.g. 3 x 0.7 / 0.7 stays 3 despite rounding errors
    size = np.ceil(old_size * old_spacing / new_spacing - 1e-9).astype(int)
    direction = np.array(image.GetDirection()).reshape(dimension, dimension)
    centre = np.array(image.GetOrigin()) + direction @ (old_spacing * (old_size - 1) / 2)
    origin = centre - direction @ (new_spacing * (size - 1) / 2)
    return tuple(int(s) for s in size), tuple(float(o) for o in origin)


def _box_corners(low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The 2^d corners of an index box, as rows."""
    return (
        np.array(np.meshgrid(*zip(low, high, strict=True), indexing="ij"))
        .reshape(len(low), -1)
        .T.astype(float)
    )


def _index_range(image: ImageHeader, points_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest index box of ``image`` holding the continuous indices of the points."""
    matrix, origin = image.index_to_mm()
    index = (points_mm - origin) @ np.linalg.inv(matrix).T
    return np.floor(index.min(axis=0)), np.ceil(index.max(axis=0))


def _roi_window(
    image: sitk.Image, mask: sitk.Image, label: int, grid: ImageHeader, margin: int
) -> tuple[np.ndarray, np.ndarray] | None:
    """Index box of ``grid`` around the ROI: every new voxel the resampled ROI can reach (its
    bounding box on the old grid widened by one old voxel, the reach of trilinear
    interpolation), plus ``margin`` voxels; None for an empty ROI."""
    roi = sitk.GetArrayViewFromImage(mask) == int(label)
    if not roi.any():
        return None
    axes = range(roi.ndim)
    bounds = [np.flatnonzero(roi.any(axis=tuple(a for a in axes if a != k))) for k in axes]
    low = np.array([b[0] for b in bounds][::-1]) - 1  # (x, y, z)
    high = np.array([b[-1] for b in bounds][::-1]) + 1
    matrix, origin = ImageHeader.of(image).index_to_mm()
    corners = origin + _box_corners(low, high) @ matrix.T
    first, last = _index_range(grid, corners)
    size = np.array(grid.size)
    return (
        np.clip(first - margin, 0, size - 1).astype(int),
        np.clip(last + margin, 0, size - 1).astype(int),
    )


def _input_window(image: sitk.Image, grid: ImageHeader) -> tuple[list[int], list[int]]:
    """(index, size) of the input region an output grid reads with linear or nearest
    interpolation: the grid's extent plus two input voxels, so that no output point falls
    where a smaller buffer would change the interpolation (its last half voxel)."""
    matrix, origin = grid.index_to_mm()
    corners = origin + _box_corners(np.zeros(len(grid.size)), np.array(grid.size) - 1) @ matrix.T
    first, last = _index_range(ImageHeader.of(image), corners)
    size = np.array(image.GetSize())
    low = np.clip(first - 2, 0, size - 1).astype(int)
    high = np.clip(last + 2, 0, size - 1).astype(int)
    return [int(v) for v in low], [int(v) for v in high - low + 1]


def _resampler(grid: ImageHeader, interpolator: int, pixel_type: int) -> sitk.ResampleImageFilter:
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize([int(v) for v in grid.size])
    resampler.SetOutputOrigin(grid.origin)
    resampler.SetOutputSpacing(grid.spacing)
    resampler.SetOutputDirection(grid.direction)
    resampler.SetInterpolator(interpolator)
    resampler.SetOutputPixelType(pixel_type)
    resampler.SetDefaultPixelValue(0)
    resampler.SetUseNearestNeighborExtrapolator(True)  # edge voxels outside the old centres
    return resampler


def resample(
    image: sitk.Image,
    mask: sitk.Image,
    label: int,
    config: Resample,
    *,
    round_intensities: bool = False,
    margin: int | None = None,
) -> tuple[sitk.Image, sitk.Image]:
    """Image and mask resampled to ``config.spacing`` on the centre-aligned grid.

    ``standard``: the image with ``config.interpolator``, the mask with nearest neighbour,
    then re-binarised (``label`` inside, 0 outside). ``ibsi``: the image trilinearly; the
    ROI (``mask == label``) trilinearly as a 0/1 image, kept where ≥ 0.5 (within
    :data:`ROI_TIE_TOLERANCE`: a tie is kept). With
    ``round_intensities`` the resampled intensities are rounded to integers. The image comes
    back as 32-bit float, the mask with its own pixel type.

    With ``margin`` (voxels of the new grid) in ``ibsi`` mode, only the part of the grid
    around the ROI is computed: its bounding box plus ``margin`` voxels (see
    :func:`filter_margin`), from the input region it reads, so memory follows the ROI, not
    the scan. Every voxel computed has the value it has on the whole grid (the same centres,
    interpolated trilinearly from the same input voxels; ROI ties at 0.5 are kept). The
    ``standard`` mode ignores it and computes the whole grid: its nearest-neighbour ROI
    breaks ties between two old voxels by the last bit of the voxel position, which a cut
    grid computes differently (B-spline coefficients also depend on the whole image).
    """
    spacing = tuple(float(s) for s in config.spacing)
    size, origin = ibsi_grid(image, spacing)
    grid = ImageHeader(size, spacing, origin, image.GetDirection())
    cut = margin is not None and config.mode == "ibsi"
    window = _roi_window(image, mask, label, grid, margin) if cut else None
    if window is not None:
        grid = grid.window(*window)
        index, extent = _input_window(image, grid)
        image = sitk.RegionOfInterest(image, extent, index)
        mask = sitk.RegionOfInterest(mask, extent, index)
    interpolator = INTERPOLATORS[config.interpolator]
    out = _resampler(grid, interpolator, sitk.sitkFloat32).Execute(
        sitk.Cast(image, sitk.sitkFloat32)
    )
    if round_intensities:
        out = sitk.Round(out)
    roi = sitk.Cast(mask == int(label), sitk.sitkFloat32)
    if config.mode == "ibsi":  # ties at 0.5 kept whatever the floating-point path to them
        share = _resampler(grid, sitk.sitkLinear, sitk.sitkFloat64).Execute(roi)
        kept = share >= 0.5 - ROI_TIE_TOLERANCE
    else:
        kept = _resampler(grid, sitk.sitkNearestNeighbor, sitk.sitkFloat32).Execute(roi) > 0.5
    new_mask = sitk.Cast(kept, mask.GetPixelID()) * int(label)
    return out, new_mask


def filter_margin(params: Mapping, spacing: tuple[float, ...]) -> int:
    """Voxels of the new grid kept around the ROI when resampling (see :func:`resample`).

    PyRadiomics' ``padDistance`` (default 5, what it keeps when it resamples itself), widened
    for the filters that read farther: 16 sigma for LoG (ITK's recursive Gaussian has long
    tails; measured on a textured ROI, LoG features of the cut grid differ from the whole
    grid's by up to 0.14 at 5 voxels and 1e-6 at 8 sigma, and equal them from 12 sigma on)
    and the wavelet's support (filter length times 2^level; the stationary transform is
    shift-invariant: equal at 5 voxels already).
    """
    setting = params.get("setting") or {}
    image_types = params.get("imageType") or {}
    margin = int(setting.get("padDistance", 5))
    step = min(spacing)
    if "LoG" in image_types:
        sigmas = (image_types.get("LoG") or {}).get("sigma") or setting.get("sigma") or []
        if sigmas:
            margin = max(margin, math.ceil(16 * max(sigmas) / step))
    if "Wavelet" in image_types:
        import pywt

        options = {**setting, **(image_types.get("Wavelet") or {})}
        length = pywt.Wavelet(options.get("wavelet", "coif1")).dec_len
        levels = int(options.get("start_level", 0)) + int(options.get("level", 1))
        margin = max(margin, length * 2**levels)
    return margin


# --- intensity normalisation --------------------------------------------------------------


def normalize(image: sitk.Image, config: Normalize) -> sitk.Image:
    """The image's intensities normalised over the whole image (32-bit float).

    ``zscore``: (x − mean) / standard deviation (a constant image gives zeros);
    ``clip_percentiles``: clipped to the image's ``[p_low, p_high]`` percentiles;
    ``window``: clipped to ``[low, high]`` (e.g. HU).
    """
    voxels = sitk.GetArrayFromImage(image).astype(np.float64)
    if config.method == "zscore":
        std = voxels.std()
        voxels = (voxels - voxels.mean()) / std if std > 0 else np.zeros_like(voxels)
    elif config.method == "clip_percentiles":
        low, high = np.percentile(voxels, config.bounds)
        voxels = np.clip(voxels, low, high)
    else:
        voxels = np.clip(voxels, *config.bounds)
    out = sitk.GetImageFromArray(voxels.astype(np.float32))
    out.CopyInformation(image)
    return out


# --- derived ROIs -------------------------------------------------------------------------


def ring_mask(mask: sitk.Image, label: int, ring_mm: float) -> sitk.Image:
    """A peritumoral ring: voxels outside the ROI within ``ring_mm`` mm of it.

    Distances are Euclidean, in physical units (voxel spacing applied), between voxel
    centres: the ROI dilated by ``ring_mm`` mm minus the ROI itself. The ring has value
    ``label``, on the mask's grid (cut at the grid's border).
    """
    roi = sitk.Cast(mask == int(label), sitk.sitkUInt8)
    distance = sitk.SignedMaurerDistanceMap(
        roi, insideIsPositive=False, squaredDistance=False, useImageSpacing=True
    )
    ring = (distance > 0) & (distance <= float(ring_mm) + 1e-6)
    ring = sitk.Cast(ring, mask.GetPixelID()) * int(label)
    ring.CopyInformation(mask)
    return ring


# --- all together -------------------------------------------------------------------------


def preprocess(
    image: sitk.Image, mask: sitk.Image, spec: CaseSpec
) -> tuple[sitk.Image, sitk.Image]:
    """Apply a case's ``radfusion`` block to its (image, mask): align, resample, normalise.

    Parameters
    ----------
    image, mask : SimpleITK.Image
    spec : CaseSpec
        The case: its parsed block (``spec.preprocessing``, see :func:`parse_config`), ROI
        label and modality (resampling with ``round`` unset rounds CT intensities, see
        :attr:`CaseSpec.round_intensities`). A no-op block returns the inputs unchanged.

    Raises
    ------
    ValueError
        When alignment is on and the mask's grid differs beyond its tolerance.
    """
    config = spec.preprocessing
    if config.is_noop:
        return image, mask
    if config.align_mask is not None:
        problems = misalignment(ImageHeader.of(image), ImageHeader.of(mask), config.align_mask)
        if problems:
            raise ValueError("mask and image are on different grids: " + "; ".join(problems))
        mask = align_mask(image, mask)
    if config.resample is not None:
        setting = spec.pyradiomics.get("setting") or {}
        whole_image = (config.normalize is not None and config.normalize.method != "window") or (
            isinstance(setting, Mapping) and setting.get("normalize")
        )  # statistics over the whole image: do not cut it
        margin = None if whole_image else filter_margin(spec.pyradiomics, config.resample.spacing)
        image, mask = resample(
            image,
            mask,
            spec.label,
            config.resample,
            round_intensities=spec.round_intensities,
            margin=margin,
        )
    if config.normalize is not None:
        image = normalize(image, config.normalize)
    return image, mask
