"""DICOM segmentations as masks: RTSTRUCT contours and SEG segments, on the image's grid.

A manifest's ``mask_path`` may be a DICOM RTSTRUCT file (radiotherapy contours) or a DICOM
SEG file (3D Slicer, TotalSegmentator, AI tools); its ``roi`` column names the structure or
segment. The ROI is rasterised on the grid of the manifest's ``image``, which must be the
DICOM series folder that the RTSTRUCT or SEG references (its SeriesInstanceUID is checked),
and comes back as a label image (``label`` inside, 0 outside) that the rest of extraction
treats like any other mask.

- **RTSTRUCT**: read with pydicom. Each closed planar contour is put on its slice (the nearest
  slice, within a quarter of the slice spacing) and filled at voxel centres: a voxel is in
  the ROI when its centre is strictly inside the polygon by the even-odd rule (several
  contours on one slice combine, so an inner contour is a hole); a centre on an edge (within
  1e-3 voxel) is outside, as IBSI draws masks from contours (MIRP). A contour traced along
  voxel edges thus gives exactly those voxels; one traced through the centres of the boundary
  voxels (what OpenCV-based writers such as rt-utils produce) leaves those voxels out.
  Parts of a contour outside the image's rows and columns are cut at its border; a contour
  on no slice of the image is an error, and so is a damaged point list (empty, not x, y, z
  triples, not numbers, fewer points than ``NumberOfContourPoints``) or an unknown contour
  type: never a contour dropped silently with its slice.
- **SEG**: read with highdicom, frame by frame onto the referenced series' instances
  (``get_pixels_by_source_instance``); a FRACTIONAL segment is inside where its value is at
  least 0.5.

``roi`` selects by exact name first, else by a case-insensitive regular expression matching
the whole name (``gtv.*`` matches ``GTV_primary``); no match, or several, is an error listing
the names present. An empty ``roi`` selects the only structure of a file that has one; a name
that several structures carry is an error (which one is meant cannot be known).

Only the ROI names and geometry are read: nothing from the patient-identifying tags (name,
IDs, birth date, addresses) is copied into a mask, a message or an output.

pydicom and highdicom are the optional extra ``radfusion[dicom]``; without them a DICOM mask
is a clear error saying so, and everything else works as before.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .io import ImageHeader, ImageReadError, read_header, read_image, series_files, series_uid

__all__ = [
    "DICOM_KINDS",
    "ROI_COLUMN",
    "DicomMaskError",
    "dicom_kind",
    "rasterise_contours",
    "read_dicom_mask",
    "read_mask",
    "roi_names",
    "select_roi",
]

#: Manifest column naming the structure (RTSTRUCT) or segment (SEG) of a DICOM mask.
ROI_COLUMN = "roi"
#: SOP Class UIDs of the DICOM objects accepted as masks.
DICOM_KINDS = {
    "1.2.840.10008.5.1.4.1.1.481.3": "RTSTRUCT",
    "1.2.840.10008.5.1.4.1.1.66.4": "SEG",
}
#: Largest distance of a contour from its slice, in slices.
SLICE_TOLERANCE = 0.25
#: A voxel centre closer than this to a contour edge (in voxels) is on it, hence outside.
EDGE_TOLERANCE = 1e-3
_EXTRA = "pip install 'radfusion[dicom]'"
#: Suffixes of files read as DICOM even without the preamble.
_BARE_SUFFIXES = (".dcm", ".dicom", "")


class DicomMaskError(ImageReadError):
    """A DICOM RTSTRUCT or SEG that cannot give the manifest's ROI; the message says why."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(path, reason)
        self.args = (f"cannot use DICOM mask {self.path}: {reason}",)

    def __str__(self) -> str:
        return self.args[0]


def _pydicom(path: str | Path):
    try:
        import pydicom
    except ImportError:
        raise DicomMaskError(
            path, f"a DICOM file as mask needs pydicom and highdicom: {_EXTRA}"
        ) from None
    return pydicom


def _is_dicom_file(path: Path) -> bool:
    """A file with the DICOM preamble ("DICM" at byte 128)."""
    try:
        with path.open("rb") as handle:
            return handle.read(132)[128:] == b"DICM"
    except OSError:
        return False


def dicom_kind(path: str | Path) -> str | None:
    """``"RTSTRUCT"`` or ``"SEG"`` for such a DICOM file, None for anything else.

    Files with the DICOM preamble are opened (their header, not their pixels), and so are
    ``.dcm`` files or files without a suffix that lack it (older DICOM files). Raises
    :class:`DicomMaskError` for a file with the preamble when pydicom is not installed.
    """
    path = Path(path)
    if not path.is_file():
        return None
    preamble = _is_dicom_file(path)
    if not preamble and path.suffix.lower() not in _BARE_SUFFIXES:
        return None
    if not preamble:
        try:
            import pydicom
        except ImportError:
            return None
    else:
        pydicom = _pydicom(path)
    try:
        meta = pydicom.dcmread(
            path, stop_before_pixels=True, specific_tags=["SOPClassUID"], force=not preamble
        )
    except Exception as error:  # pydicom raises many types for damaged files
        if not preamble:
            return None
        raise DicomMaskError(path, f"unreadable DICOM file: {error}") from None
    return DICOM_KINDS.get(str(meta.get("SOPClassUID", "")))


def _read(path: Path, kind: str):
    """The dataset (RTSTRUCT, without pixels) or the highdicom Segmentation (SEG)."""
    pydicom = _pydicom(path)
    try:
        if kind == "SEG":
            try:
                import highdicom
            except ImportError:
                raise DicomMaskError(path, f"a DICOM SEG needs highdicom: {_EXTRA}") from None
            return highdicom.seg.segread(path)
        return pydicom.dcmread(path, stop_before_pixels=True, force=not _is_dicom_file(path))
    except DicomMaskError:
        raise
    except Exception as error:
        raise DicomMaskError(path, f"unreadable DICOM {kind}: {error}") from None


def _names(dataset, kind: str) -> list[tuple[str, int]]:
    """(ROI name, ROI number (RTSTRUCT) or segment number (SEG)), in the file's order; a name
    given to several structures appears once per structure."""
    if kind == "SEG":
        items = dataset.get("SegmentSequence", [])
        return [(str(s.get("SegmentLabel", "")), int(s.SegmentNumber)) for s in items]
    items = dataset.get("StructureSetROISequence", [])
    return [(str(s.get("ROIName", "")), int(s.ROINumber)) for s in items]


def roi_names(path: str | Path) -> list[str]:
    """The structure names of an RTSTRUCT or the segment labels of a SEG, in file order.

    Raises
    ------
    DicomMaskError
        When ``path`` is neither, or cannot be read.
    """
    path = Path(path)
    kind = dicom_kind(path)
    if kind is None:
        raise DicomMaskError(path, "not a DICOM RTSTRUCT or SEG file")
    return [name for name, _ in _names(_read(path, kind), kind)]


def select_roi(names: list[str], roi: str | None, path: str | Path) -> str:
    """The one name of ``names`` that ``roi`` selects (see the module's rules).

    Raises
    ------
    DicomMaskError
        When ``roi`` selects no name or several, listing the names present; when it is not a
        valid regular expression; when the name it selects is given to several structures
        (which one is meant cannot be known).
    """
    present = ", ".join(repr(n) for n in names) or "none"
    if not roi:
        if len(names) == 1:
            return names[0]
        raise DicomMaskError(
            path, f"the file holds {len(names)} ROIs: set the roi column (ROIs present: {present})"
        )
    if roi in names:
        return _unique(names, roi, path)
    try:
        pattern = re.compile(roi, re.IGNORECASE)
    except re.error as error:
        raise DicomMaskError(
            path, f"roi {roi!r} is no exact ROI name and not a valid pattern ({error})"
        ) from None
    found = list(dict.fromkeys(n for n in names if pattern.fullmatch(n)))
    if len(found) == 1:
        return _unique(names, found[0], path)
    what = "matches no ROI" if not found else f"matches {len(found)} ROIs ({', '.join(found)})"
    raise DicomMaskError(path, f"roi {roi!r} {what}; ROIs present: {present}")


def _unique(names: list[str], name: str, path: str | Path) -> str:
    """``name``, refused when several structures of the file carry it."""
    positions = [str(i) for i, n in enumerate(names, start=1) if n == name]
    if len(positions) > 1:
        raise DicomMaskError(
            path,
            f"{len(positions)} ROIs are named {name!r} (numbers {', '.join(positions)} of the "
            f"file's {len(names)}, in its order): which one is meant is unknown; rename or "
            f"remove the others (ROIs present: {', '.join(repr(n) for n in names)})",
        )
    return name


def _referenced_series(dataset, kind: str) -> list[str]:
    if kind == "SEG":
        return [str(s.SeriesInstanceUID) for s in dataset.get("ReferencedSeriesSequence", [])]
    uids = []
    for frame in dataset.get("ReferencedFrameOfReferenceSequence", []):
        for study in frame.get("RTReferencedStudySequence", []):
            for series in study.get("RTReferencedSeriesSequence", []):
                uids.append(str(series.SeriesInstanceUID))
    return uids


def _check_series(dataset, kind: str, path: Path, image_path: str | Path) -> str:
    """The image's SeriesInstanceUID, checked against the ones the DICOM mask references."""
    image = series_uid(image_path)
    if image is None:
        raise DicomMaskError(
            path,
            f"a DICOM {kind} mask needs the image to be the DICOM series folder it references; "
            f"image {image_path} is a file",
        )
    referenced = _referenced_series(dataset, kind)
    if not referenced:
        raise DicomMaskError(path, f"the {kind} names no referenced image series")
    if image not in referenced:
        raise DicomMaskError(
            path,
            f"the {kind} references series {', '.join(referenced)}, but image {image_path} is "
            f"series {image}",
        )
    return image


def _scanline_fill(polygons: list[np.ndarray], rows: int, columns: int) -> np.ndarray:
    """Pixel centres (integer (column, row) positions) strictly inside polygons by the
    even-odd rule: a centre on an edge (within :data:`EDGE_TOLERANCE`) is outside."""
    inside = np.zeros((rows, columns), dtype=bool)
    starts = np.concatenate(polygons)
    ends = np.concatenate([np.roll(p, -1, axis=0) for p in polygons])
    keep = starts[:, 1] != ends[:, 1]  # horizontal edges cross no scanline
    x0, y0, x1, y1 = starts[keep, 0], starts[keep, 1], ends[keep, 0], ends[keep, 1]
    if not len(x0):
        return inside
    low, high = np.minimum(y0, y1), np.maximum(y0, y1)
    for row in range(max(math.ceil(low.min()), 0), min(math.floor(high.max()), rows - 1) + 1):
        active = (low <= row) & (row < high)  # half-open: a vertex on the line counts once
        crossings = np.sort(
            x0[active] + (row - y0[active]) * (x1[active] - x0[active]) / (y1[active] - y0[active])
        )
        for left, right in zip(crossings[0::2], crossings[1::2], strict=True):
            start, stop = max(math.floor(left) + 1, 0), min(math.ceil(right), columns)
            if start < stop:
                inside[row, start:stop] = True
    inside[_on_edges(starts, ends, rows, columns)] = False
    return inside


def _on_edges(starts: np.ndarray, ends: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """The pixel centres within :data:`EDGE_TOLERANCE` of a polygon edge (a contour through
    voxel centres, as OpenCV-based writers trace a label image, passes through them)."""
    on = np.zeros((rows, columns), dtype=bool)
    tolerance = EDGE_TOLERANCE
    for start, end in zip(starts, ends, strict=True):
        low = np.maximum(np.ceil(np.minimum(start, end) - tolerance), 0).astype(int)
        high = np.minimum(np.floor(np.maximum(start, end) + tolerance), [columns - 1, rows - 1])
        high = high.astype(int)
        if (low > high).any():
            continue
        x, y = np.meshgrid(np.arange(low[0], high[0] + 1), np.arange(low[1], high[1] + 1))
        points = np.column_stack([x.ravel(), y.ravel()]).astype(float)
        direction = end - start
        length = float(direction @ direction)
        t = np.clip((points - start) @ direction / length, 0, 1) if length else 0.0
        distance = np.hypot(*(start + np.outer(t, direction) - points).T)
        near = distance < tolerance
        on[y.ravel()[near], x.ravel()[near]] = True
    return on


def rasterise_contours(
    contours: list[np.ndarray], header: ImageHeader, where: str = "contour"
) -> np.ndarray:
    """Closed planar contours (each an (n, 3) array of patient coordinates in mm) filled on a
    3-D grid with the module's rules; a boolean array in (z, y, x) order.

    Raises
    ------
    ValueError
        When a contour is not on one slice of the grid (``where`` names it in the message).
    """
    if len(header.size) != 3:
        raise ValueError(f"the image is {len(header.size)}-D; contours need a 3-D grid")
    columns, rows, slices = header.size
    matrix, origin = header.index_to_mm()
    inverse = np.linalg.inv(matrix)
    by_slice: dict[int, list[np.ndarray]] = {}
    for number, points in enumerate(contours, start=1):
        index = (np.asarray(points, dtype=float) - origin) @ inverse.T  # (n, 3): x, y, z
        z = index[:, 2]
        k = int(np.rint(z.mean()))
        if np.abs(z - k).max() > SLICE_TOLERANCE or not 0 <= k < slices:
            raise ValueError(
                f"{where} {number} lies at slice position {z.mean():.3f} (index), not on a "
                f"slice of the image's {slices} (tolerance {SLICE_TOLERANCE} slice)"
            )
        by_slice.setdefault(k, []).append(index[:, :2])
    mask = np.zeros((slices, rows, columns), dtype=bool)
    for k, polygons in by_slice.items():
        mask[k] = _scanline_fill(polygons, rows, columns)
    return mask


#: Contour types filled (``CLOSEDPLANAR_XOR``: closed contours combined by exclusive or,
#: which the even-odd fill is) and types that enclose no area, ignored.
_CLOSED = ("CLOSED_PLANAR", "CLOSEDPLANAR_XOR")
_IGNORED = ("POINT", "OPEN_PLANAR", "OPEN_NONPLANAR")


def _rtstruct_mask(dataset, number: int, name: str, header: ImageHeader) -> np.ndarray:
    contours = []
    for roi in dataset.get("ROIContourSequence", []):
        if int(roi.ReferencedROINumber) != number:
            continue
        for index, contour in enumerate(roi.get("ContourSequence", []), start=1):
            kind = str(contour.get("ContourGeometricType", "")).strip().upper()
            if kind in _IGNORED:
                continue
            points = _contour_points(contour, index, header)
            if kind not in _CLOSED:
                raise ValueError(
                    f"contour {index} ({_where(points, header)}) has "
                    f"ContourGeometricType (3006,0042) {kind or 'missing'!r}, not one of "
                    f"{', '.join(_CLOSED + _IGNORED)}"
                )
            contours.append(points)
    if not contours:
        raise ValueError(f"ROI {name!r} has no closed planar contour")
    return rasterise_contours(contours, header, f"ROI {name!r}, contour")


def _contour_points(contour, index: int, header: ImageHeader) -> np.ndarray:
    """A contour's (n, 3) points; a damaged point list (values missing or not numbers, or
    fewer points than ``NumberOfContourPoints`` says) is an error naming the contour and its
    slice (the caller adds the ROI and the file), never a contour dropped with its slice."""
    raw = contour.get("ContourData")
    values = [] if raw is None else [raw] if isinstance(raw, str | float | int) else list(raw)
    numbers = []
    for value in values:
        try:
            numbers.append(float(value))
        except (TypeError, ValueError):
            numbers.append(math.nan)
    data = np.asarray(numbers, dtype=float)
    whole = data[: len(data) // 3 * 3].reshape(-1, 3)
    declared = contour.get("NumberOfContourPoints")
    damage = None
    if not len(data):
        damage = "ContourData (3006,0050) is empty"
    elif len(data) % 3:
        damage = f"ContourData (3006,0050) holds {len(data)} values, not x, y, z per point"
    elif not np.isfinite(data).all():
        bad = [str(v) for v, x in zip(values, data, strict=True) if not math.isfinite(x)]
        damage = f"ContourData (3006,0050) holds values that are not numbers ({', '.join(bad[:3])})"
    elif declared not in (None, "") and int(declared) != len(whole):
        damage = (
            f"NumberOfContourPoints (3006,0046) is {int(declared)} but ContourData (3006,0050) "
            f"holds {len(whole)} points"
        )
    if damage:
        finite = whole[np.isfinite(whole).all(axis=1)]
        raise ValueError(
            f"contour {index} ({_where(finite, header)}) has a damaged point list: {damage}"
        )
    return whole


def _where(points: np.ndarray, header: ImageHeader) -> str:
    """Which slice a contour's points lie on, in words."""
    if not len(points):
        return "slice unknown: no complete point"
    matrix, origin = header.index_to_mm()
    index = (points - origin) @ np.linalg.inv(matrix).T
    return (
        f"image slice {round(float(index[:, 2].mean()))} counting from 0, z = "
        f"{float(points[:, 2].mean()):.6g} mm"
    )


def _instance_uids(files: list[str]) -> list[str]:
    pydicom = _pydicom(files[0])
    return [
        str(
            pydicom.dcmread(f, stop_before_pixels=True, specific_tags=["SOPInstanceUID"])[
                "SOPInstanceUID"
            ].value
        )
        for f in files
    ]


def _seg_mask(segmentation, number: int, image_path: str | Path, header: ImageHeader):
    columns, rows, _ = header.size
    if (int(segmentation.Rows), int(segmentation.Columns)) != (rows, columns):
        raise ValueError(
            f"the SEG frames are {segmentation.Rows}x{segmentation.Columns} pixels, the image's "
            f"slices {rows}x{columns}"
        )
    pixels = segmentation.get_pixels_by_source_instance(
        _instance_uids(series_files(image_path)),
        segment_numbers=[number],
        assert_missing_frames_are_empty=True,
        rescale_fractional=True,
    )[..., 0]
    if str(segmentation.SegmentationType).upper() == "FRACTIONAL":
        return pixels >= 0.5
    return pixels > 0


def read_dicom_mask(
    path: str | Path, image_path: str | Path, roi: str | None = None, label: int = 1
) -> sitk.Image:
    """One ROI of a DICOM RTSTRUCT or SEG as a label image on the image series' grid.

    Parameters
    ----------
    path : str or Path
        The RTSTRUCT or SEG file.
    image_path : str or Path
        The folder of the DICOM series the file references (the manifest's ``image``).
    roi : str, optional
        Structure / segment name or pattern (see :func:`select_roi`).
    label : int, default=1
        The value of the ROI's voxels (0 elsewhere).

    Returns
    -------
    SimpleITK.Image
        8-bit (16-bit for a label above 255) label image with the image's size, spacing,
        origin and direction.

    Raises
    ------
    DicomMaskError
        The message says why: not such a file, unreadable, missing libraries, ``roi``
        matching no ROI or several (listing the ROIs present), another series referenced, a
        contour off the image's slices, an empty ROI.
    """
    path = Path(path)
    kind = dicom_kind(path)
    if kind is None:
        raise DicomMaskError(path, "not a DICOM RTSTRUCT or SEG file")
    dataset = _read(path, kind)
    names = _names(dataset, kind)
    name = select_roi([n for n, _ in names], roi, path)
    number = next(number for n, number in names if n == name)
    _check_series(dataset, kind, path, image_path)
    header = read_header(image_path)
    try:
        if kind == "SEG":
            inside = _seg_mask(dataset, number, image_path, header)
        else:
            inside = _rtstruct_mask(dataset, number, name, header)
    except ImageReadError:
        raise
    except Exception as error:  # highdicom and pydicom raise many types
        raise DicomMaskError(path, f"cannot rasterise {kind} ROI {name!r}: {error}") from None
    if not inside.any():
        raise DicomMaskError(path, f"{kind} ROI {name!r} covers no voxel centre of the image")
    dtype = np.uint8 if label <= 255 else np.uint16
    mask = sitk.GetImageFromArray(inside.astype(dtype) * dtype(label))
    mask.SetSpacing(header.spacing)
    mask.SetOrigin(header.origin)
    mask.SetDirection(header.direction)
    return mask


def read_mask(
    path: str | Path,
    image_path: str | Path | None = None,
    roi: str | None = None,
    label: int = 1,
) -> sitk.Image:
    """A mask from any source: a label image (file or DICOM folder), or one ROI of a DICOM
    RTSTRUCT / SEG rasterised on ``image_path``'s grid (:func:`read_dicom_mask`).

    Raises
    ------
    ImageReadError
        When the mask cannot be read; :class:`DicomMaskError` (a subclass) when a DICOM mask
        cannot give the ROI, or ``roi`` is set for a mask that is not a DICOM RTSTRUCT / SEG.
    """
    if dicom_kind(path) is None:
        if roi:
            raise DicomMaskError(
                path, f"roi {roi!r} is set but the mask is not a DICOM RTSTRUCT or SEG file"
            )
        return read_image(path)
    if image_path is None:
        raise DicomMaskError(path, "a DICOM RTSTRUCT / SEG mask needs its image series")
    return read_dicom_mask(path, image_path, roi, label)
