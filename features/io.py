"""Read medical images with SimpleITK and compare their grids.

NIfTI, NRRD, MHA (any single file SimpleITK reads) and DICOM series (a folder holding one
series) are read as one volume. :func:`read_header` reads the geometry only, without the
voxels, so a cohort can be checked quickly before extraction. :func:`nonfinite_voxels` finds
NaN and ±inf voxels as stored in the file (ITK's NIfTI reader turns them into 0).
"""

from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import ImageReadError
from .series import needs_float, series_files, series_slices, slice_thickness

__all__ = [
    "GRID_TOLERANCE",
    "ImageHeader",
    "ImageReadError",
    "compare_grids",
    "nonfinite_voxels",
    "read_header",
    "read_image",
    "series_files",
    "series_uid",
]

#: DICOM tag of the SeriesInstanceUID.
SERIES_UID_TAG = "0020|000e"

#: Grid tolerance: relative for spacing, millimetres for origin, absolute for direction cosines.
GRID_TOLERANCE = 1e-3


@dataclass(frozen=True)
class ImageHeader:
    """The geometry of an image: voxel counts, spacing (mm), origin (mm), direction cosines."""

    size: tuple[int, ...]
    spacing: tuple[float, ...]
    origin: tuple[float, ...]
    direction: tuple[float, ...]

    @property
    def dimension(self) -> int:
        """Number of image axes."""
        return len(self.size)

    def index_to_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """``(matrix, origin)``: a continuous index (x, y, z) maps to ``origin + matrix @ i``
        millimetres (direction cosines times spacing)."""
        direction = np.array(self.direction, dtype=float).reshape(self.dimension, -1)
        return direction @ np.diag(self.spacing), np.array(self.origin, dtype=float)

    def window(self, low: np.ndarray, high: np.ndarray) -> ImageHeader:
        """The part of the grid from index ``low`` to ``high`` (inclusive): the same voxel
        centres, fewer of them."""
        matrix, origin = self.index_to_mm()
        return ImageHeader(
            tuple(int(v) for v in np.asarray(high) - low + 1),
            self.spacing,
            tuple(float(v) for v in origin + matrix @ low),
            self.direction,
        )

    @classmethod
    def of(cls, image: sitk.Image | sitk.ImageFileReader) -> ImageHeader:
        """The header of an image or of a reader whose image information was read."""
        return cls(
            size=tuple(int(v) for v in image.GetSize()),
            spacing=tuple(float(v) for v in image.GetSpacing()),
            origin=tuple(float(v) for v in image.GetOrigin()),
            direction=tuple(float(v) for v in image.GetDirection()),
        )


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise ImageReadError(path, "no such file or folder")
    if path.name.lower().endswith((".nii", ".nii.gz")):
        _check_nifti_complete(path)


#: NIfTI datatype codes of real floating-point voxels, and their numpy types.
_NIFTI_FLOATS = {16: "f4", 64: "f8"}


@dataclass(frozen=True)
class _NiftiLayout:
    endian: str
    dims: tuple[int, ...]
    datatype: int
    bitpix: int
    offset: int

    @property
    def end(self) -> int:
        return self.offset + math.prod(self.dims) * self.bitpix // 8


def _nifti_layout(header: bytes) -> _NiftiLayout | None:
    """Byte order, dimensions, datatype and voxel offset of a NIfTI-1/2 header (None: not one)."""
    for endian in "<>":
        if len(header) >= 348 and struct.unpack(endian + "i", header[:4])[0] == 348:
            dims = struct.unpack(endian + "8h", header[40:56])
            datatype, bitpix = struct.unpack(endian + "2h", header[70:74])
            offset = int(struct.unpack(endian + "f", header[108:112])[0])
        elif len(header) >= 540 and struct.unpack(endian + "i", header[:4])[0] == 540:
            datatype, bitpix = struct.unpack(endian + "2h", header[12:16])
            dims = struct.unpack(endian + "8q", header[16:80])
            offset = struct.unpack(endian + "q", header[168:176])[0]
        else:
            continue
        if not 1 <= dims[0] <= 7:
            return None
        return _NiftiLayout(
            endian, tuple(int(d) for d in dims[1 : dims[0] + 1]), datatype, bitpix, offset
        )
    return None


def _nifti_end(header: bytes) -> int | None:
    """Byte offset where a NIfTI-1/2 file's voxel data ends (None if not a NIfTI header)."""
    layout = _nifti_layout(header)
    return None if layout is None else layout.end


def _check_nifti_complete(path: Path) -> None:
    """Raise if a NIfTI file holds fewer voxel bytes than its header announces.

    ITK's NIfTI reader silently accepts truncated files (the missing voxels come back as
    garbage), so the size is checked here: from the file size for ``.nii``; for ``.nii.gz``
    from the gzip trailer, falling back to decompressing the stream when the trailer
    disagrees (a truncated file, or a multi-member gzip file).
    """
    compressed = path.name.lower().endswith(".gz")
    try:
        with gzip.open(path) if compressed else path.open("rb") as handle:
            header = handle.read(540)
    except EOFError:  # the gzip stream stops inside the header
        header = b""
    except OSError:
        return  # not gzip at all: let SimpleITK report what is wrong
    if len(header) < 348:
        raise ImageReadError(path, "truncated NIfTI file: it ends inside its header")
    end = _nifti_end(header)
    if end is None:
        return
    if not compressed:
        size = os.path.getsize(path)
    else:
        with path.open("rb") as raw:
            raw.seek(-4, os.SEEK_END)
            trailer = struct.unpack("<I", raw.read(4))[0]
        if trailer == end % 2**32:
            return
        size = _gzip_length(path)
    if size < end:
        raise ImageReadError(
            path, f"truncated NIfTI file: the header announces {end} bytes, the file holds {size}"
        )


def _gzip_length(path: Path) -> int:
    """Uncompressed length of a (multi-member) gzip file, up to where it is truncated."""
    size = 0
    stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
    with path.open("rb") as raw:
        try:
            while chunk := raw.read(1 << 20):
                while chunk:
                    size += len(stream.decompress(chunk))
                    chunk = b""
                    if stream.eof:  # next gzip member, if any
                        chunk = stream.unused_data
                        stream = zlib.decompressobj(16 + zlib.MAX_WBITS)
        except zlib.error:
            pass
    return size


def read_image(path: str | Path) -> sitk.Image:
    """Read an image file, or a folder holding one DICOM series, as one volume.

    Parameters
    ----------
    path : str or Path
        A file SimpleITK can read (``.nii``, ``.nii.gz``, ``.nrrd``, ``.mha``, ...) or a folder
        holding exactly one DICOM series.

    Returns
    -------
    SimpleITK.Image
        A DICOM series whose slices have different rescale slopes or intercepts is read as
        64-bit float (ITK would read it in its first slice's pixel type).

    Raises
    ------
    ImageReadError
        When the path is absent or unreadable; the message names the path.
        :class:`~radfusion.features.series.SeriesError` (a subclass) for a DICOM series with
        a slice missing or given twice, or that ITK would otherwise stack on a wrong spacing
        (see :mod:`radfusion.features.series`).
    """
    path = Path(path)
    _check_exists(path)
    try:
        if path.is_dir():
            slices = series_slices(path)
            reader = sitk.ImageSeriesReader()
            reader.SetFileNames([s.file for s in slices])
            if needs_float(slices):
                reader.SetOutputPixelType(sitk.sitkFloat64)
            # series_slices has checked the spacing (a missing, doubled or uneven slice is an
            # error); ITK's own raw note on positions rounded to 0.1 mm would only alarm
            shown = sitk.ProcessObject.GetGlobalWarningDisplay()
            sitk.ProcessObject.SetGlobalWarningDisplay(False)
            try:
                image = reader.Execute()
            finally:
                sitk.ProcessObject.SetGlobalWarningDisplay(shown)
            if image.GetDimension() == 3 and image.GetSize()[2] == 1:  # one slice
                image.SetSpacing((*image.GetSpacing()[:2], slice_thickness(slices)))
            return image
        return sitk.ReadImage(str(path))
    except ImageReadError:
        raise
    except RuntimeError as error:
        raise ImageReadError(path, _itk_reason(error)) from None


def _is_nifti(path: Path) -> bool:
    return path.name.lower().endswith((".nii", ".nii.gz"))


def _open(path: Path):
    return gzip.open(path) if path.name.lower().endswith(".gz") else path.open("rb")


def nonfinite_voxels(path: str | Path, image: sitk.Image | None = None) -> np.ndarray | None:
    """Where an image file holds NaN or ±inf voxels, as stored in the file.

    ITK's NIfTI reader silently turns non-finite voxels into 0, so NIfTI voxels are read
    from the file's bytes; other files are read with SimpleITK (or ``image``, when already
    read). Only floating-point images can hold such values: integer files (and DICOM
    folders) are not read.

    Parameters
    ----------
    path : str or Path
        The image file (or DICOM folder).
    image : SimpleITK.Image, optional
        The image already read from ``path`` (saves reading a non-NIfTI file again).

    Returns
    -------
    numpy.ndarray of bool or None
        True where a voxel is non-finite, in :func:`SimpleITK.GetArrayFromImage`'s order
        (z, y, x); None when every voxel is finite.

    Raises
    ------
    ImageReadError
        When the file cannot be read.
    """
    path = Path(path)
    if path.is_dir():
        return None
    _check_exists(path)
    if _is_nifti(path):
        try:
            with _open(path) as handle:
                layout = _nifti_layout(handle.read(540))
                if layout is None or layout.datatype not in _NIFTI_FLOATS:
                    return None
                handle.seek(layout.offset)
                count = math.prod(layout.dims)
                dtype = np.dtype(layout.endian + _NIFTI_FLOATS[layout.datatype])
                data = handle.read(count * dtype.itemsize)
        except (OSError, EOFError, zlib.error) as error:
            raise ImageReadError(path, f"cannot read its voxels: {error}") from None
        if len(data) < count * dtype.itemsize:
            raise ImageReadError(path, "truncated NIfTI file: fewer voxels than its header says")
        voxels = np.frombuffer(data, dtype=dtype, count=count).reshape(layout.dims[::-1])
    else:
        if image is None:
            try:
                pixel = _information(path).GetPixelID()
            except RuntimeError as error:
                raise ImageReadError(path, _itk_reason(error)) from None
            if pixel not in (sitk.sitkFloat32, sitk.sitkFloat64):
                return None
            image = read_image(path)
        voxels = sitk.GetArrayViewFromImage(image)
        if voxels.dtype.kind != "f":
            return None
    bad = ~np.isfinite(voxels)
    return bad if bad.any() else None


def read_header(path: str | Path) -> ImageHeader:
    """Read the geometry of an image without reading its voxels.

    For a DICOM folder every slice's header is read and checked
    (:func:`radfusion.features.series.series_slices`: a slice missing or given twice is an
    error); the header is built from the first and last slice of the series (the slice
    spacing is their distance divided by the number of gaps), as ``ImageSeriesReader`` does.

    Parameters
    ----------
    path : str or Path
        An image file or a folder holding one DICOM series.

    Returns
    -------
    ImageHeader

    Raises
    ------
    ImageReadError
        When the path is absent or its header unreadable; the message names the path.
    """
    path = Path(path)
    _check_exists(path)
    try:
        if not path.is_dir():
            return ImageHeader.of(_information(path))
        slices = series_slices(path)
        files = [s.file for s in slices]
        first = ImageHeader.of(_information(Path(files[0])))
        if len(files) == 1:
            if first.dimension != 3 or first.size[2] != 1:
                return first  # a multi-frame file: its frames are its slices
            spacing = (*first.spacing[:2], slice_thickness(slices))
            return ImageHeader(first.size, spacing, first.origin, first.direction)
        last = ImageHeader.of(_information(Path(files[-1])))
        gap = math.dist(first.origin, last.origin) / (len(files) - 1)
        return ImageHeader(
            size=(*first.size[:2], len(files)),
            spacing=(*first.spacing[:2], gap),
            origin=first.origin,
            direction=first.direction,
        )
    except ImageReadError:
        raise
    except RuntimeError as error:
        raise ImageReadError(path, _itk_reason(error)) from None


def series_uid(path: str | Path) -> str | None:
    """The SeriesInstanceUID (tag 0020|000e) of a DICOM series folder; None for a file.

    Read from the first slice's header (no voxels). Raises :class:`ImageReadError` when the
    folder holds no single readable series.
    """
    path = Path(path)
    if not path.is_dir():
        return None
    first = Path(series_files(path)[0])
    try:
        reader = _information(first)
    except RuntimeError as error:
        raise ImageReadError(first, _itk_reason(error)) from None
    return (
        reader.GetMetaData(SERIES_UID_TAG).strip()
        if reader.HasMetaDataKey(SERIES_UID_TAG)
        else None
    )


def _information(path: Path) -> sitk.ImageFileReader:
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    return reader


def _itk_reason(error: RuntimeError) -> str:
    """The informative line of an ITK exception (its last non-empty line)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


def compare_grids(
    image: ImageHeader,
    mask: ImageHeader,
    tolerance: float = GRID_TOLERANCE,
    *,
    origin_mm: float | None = None,
    spacing: float | None = None,
    setting: str | None = None,
) -> list[str]:
    """Describe how a mask's grid differs from its image's grid.

    radfusion's only grid comparison: manifest validation, ``radfusion check``, extraction
    and mask alignment (:func:`radfusion.features.preprocess.misalignment`) all call it.
    Sizes must be equal. Spacings may differ by ``spacing`` relative, origins by
    ``origin_mm`` (Euclidean distance) and direction cosines by ``tolerance``.

    Parameters
    ----------
    image, mask : ImageHeader
        The headers to compare.
    tolerance : float, default=1e-3
        Largest direction cosine difference, and the default of the two below.
    origin_mm : float, optional
        Largest origin distance in mm (default: ``tolerance``).
    spacing : float, optional
        Largest relative spacing difference (default: ``tolerance``).
    setting : str, optional
        The option whose tolerances these are (e.g. ``"align_mask"``): spacing and origin
        messages then name it and the tolerance, instead of both grids' values.

    Returns
    -------
    list of str
        One sentence per differing property; empty when the grids match.
    """
    if image.size != mask.size:
        return [f"size differs: image {image.size}, mask {mask.size}"]
    origin_mm = tolerance if origin_mm is None else origin_mm
    spacing_limit = tolerance if spacing is None else spacing
    differences = []
    relative = max(
        abs(a - b) / max(abs(a), abs(b), 1e-12)
        for a, b in zip(image.spacing, mask.spacing, strict=True)
    )
    if relative > spacing_limit:
        differences.append(
            f"spacing differs by {relative:.3g} relative"
            + (
                f", beyond the {setting} tolerance {spacing_limit:g}"
                if setting
                else f": image {_fmt(image.spacing)}, mask {_fmt(mask.spacing)}"
            )
        )
    origin = math.dist(image.origin, mask.origin)
    if origin > origin_mm:
        differences.append(
            f"origin differs by {origin:.3g} mm"
            + (
                f", beyond the {setting} tolerance {origin_mm:.3g} mm"
                if setting
                else f": image {_fmt(image.origin)}, mask {_fmt(mask.origin)}"
            )
        )
    direction = max(abs(a - b) for a, b in zip(image.direction, mask.direction, strict=True))
    if direction > tolerance:
        differences.append(
            f"direction differs by {direction:.3g} (largest cosine difference)"
            + ("" if setting else f": image {_fmt(image.direction)}, mask {_fmt(mask.direction)}")
        )
    return differences


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
