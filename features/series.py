"""A folder holding one DICOM series: its slice files, checked before ITK stacks them.

ITK's ``ImageSeriesReader`` stacks the files of a series at the *average* distance between
its first and last slice, and says so only in a raw warning: a series with one slice file
missing, or one slice exported twice, is read on a wrong spacing (2.33 or 1.75 mm instead of
2 mm) and every volume and texture computed from it is off. Slices whose rescale slopes
differ are read in the pixel type of the first one, so a slice with slope 1 first makes the
others integers (their fractional values truncated). :func:`series_slices` reads every
slice's header (no voxels) and refuses a series whose geometry ITK would get wrong, naming
the folder, the files and the slice positions; :func:`needs_float` says when the voxels must
be read in floating point.

Rules (a :class:`SeriesError` names the folder; the runner adds patient, modality and mask):

- every slice has ``ImagePositionPatient`` (0020,0032), ``ImageOrientationPatient``
  (0020,0037) and ``PixelSpacing`` (0028,0030), the same orientation (direction cosines
  within 1e-3), the same pixel spacing (1e-3 relative) and the same number of rows and
  columns;
- pixel spacing and the distance between slices lie in :data:`SPACING_RANGE_MM`;
- no two slices at the same position (within :data:`DUPLICATE_MM`): "duplicate slice";
- no gap between neighbouring slices longer than 1.5 times the series' median gap:
  "missing slice";
- every slice within :data:`UNIFORM_TOLERANCE` of a slice spacing of the position ITK gives
  it (first position + index × average spacing): "non-uniform slice spacing";
- positions that do not drift within the slice plane by more than :data:`TILT_PIXELS` pixels
  from the first slice to the last (a gantry tilt, which ITK would stack straight at the
  slices' Euclidean distance).

A series of one slice gets its ``SliceThickness`` as spacing along the slice axis (ITK gives
it 1 mm); without a plausible thickness it is refused.

Slice positions are distances in mm along the slice axis (the normal of the slices'
orientation), as DICOM's ``ImagePositionPatient`` projects onto it. Only geometry and rescale
tags are read: nothing that identifies the patient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from .errors import ImageReadError

__all__ = [
    "DUPLICATE_MM",
    "SPACING_RANGE_MM",
    "TILT_PIXELS",
    "UNIFORM_TOLERANCE",
    "SeriesError",
    "SliceHeader",
    "needs_float",
    "series_files",
    "series_slices",
    "slice_thickness",
]

#: Two slices closer than this (mm along the slice axis) are the same slice exported twice.
DUPLICATE_MM = 1e-2
#: A slice farther than this share of a slice spacing from where ITK stacks it is refused.
#: Positions written with 0.1 mm precision stay well within it at 0.6 mm slices.
UNIFORM_TOLERANCE = 0.1
#: Slices whose positions drift within their plane by more than this many pixels from the
#: first slice to the last are refused (a gantry tilt; rounding stays far below it).
TILT_PIXELS = 0.5
#: Plausible pixel spacing and distance between slices, in mm.
SPACING_RANGE_MM = (0.01, 30.0)
#: Direction cosines and relative pixel spacings of two slices agree within this.
_AGREEMENT = 1e-3
_TAGS = {
    "position": ("ImagePositionPatient", "0020|0032"),
    "orientation": ("ImageOrientationPatient", "0020|0037"),
    "spacing": ("PixelSpacing", "0028|0030"),
    "slope": ("RescaleSlope", "0028|1053"),
    "intercept": ("RescaleIntercept", "0028|1052"),
    "rows": ("Rows", "0028|0010"),
    "columns": ("Columns", "0028|0011"),
    "thickness": ("SliceThickness", "0018|0050"),
}


class SeriesError(ImageReadError):
    """A DICOM series whose slices ITK would stack wrongly; the message names the folder."""

    problem = "unusable DICOM series"


def _tag(name: str) -> str:
    keyword, key = _TAGS[name]
    return f"{keyword} ({key.replace('|', ',')})"


@dataclass(frozen=True)
class SliceHeader:
    """The geometry and rescale tags of one slice file, as written (None: tag absent)."""

    file: str
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    spacing: tuple[float, ...] | None
    slope: float
    intercept: float
    size: tuple[int, int] | None
    thickness: float | None = None

    @classmethod
    def read(cls, file: str) -> SliceHeader:
        """The header of ``file`` (SimpleITK's reader, no voxels).

        Raises :class:`SeriesError` for a tag that is not numbers, ``ImageReadError`` for an
        unreadable file.
        """
        reader = sitk.ImageFileReader()
        reader.SetFileName(file)
        try:
            reader.ReadImageInformation()
        except RuntimeError as error:
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise ImageReadError(file, lines[-1] if lines else "unreadable") from None

        def numbers(name: str) -> tuple[float, ...] | None:
            key = _TAGS[name][1]
            if not reader.HasMetaDataKey(key) or not reader.GetMetaData(key).strip():
                return None
            text = reader.GetMetaData(key)
            try:
                values = tuple(float(v) for v in text.strip().split("\\"))
            except ValueError:
                values = ()
            if not values or not all(math.isfinite(v) for v in values):
                raise SeriesError(
                    Path(file).parent,
                    f"{_tag(name)} of {Path(file).name} is '{text.strip()}', not numbers",
                )
            return values

        slope, intercept = numbers("slope"), numbers("intercept")
        rows, columns, thickness = numbers("rows"), numbers("columns"), numbers("thickness")
        return cls(
            file=file,
            position=numbers("position"),
            orientation=numbers("orientation"),
            spacing=numbers("spacing"),
            slope=1.0 if slope is None else slope[0],
            intercept=0.0 if intercept is None else intercept[0],
            size=None if rows is None or columns is None else (int(rows[0]), int(columns[0])),
            thickness=None if thickness is None else thickness[0],
        )


def series_files(folder: str | Path) -> list[str]:
    """File names of the single DICOM series in ``folder``, in the order GDCM sorts them.

    Raises :class:`ImageReadError` when the folder holds no series or several.
    """
    folder = Path(folder)
    reader = sitk.ImageSeriesReader()
    series = reader.GetGDCMSeriesIDs(str(folder))
    if not series:
        raise ImageReadError(folder, "the folder holds no DICOM series")
    if len(series) > 1:
        raise ImageReadError(
            folder,
            f"the folder holds {len(series)} DICOM series ({', '.join(series)}); "
            "point to a folder with exactly one",
        )
    return list(reader.GetGDCMSeriesFileNames(str(folder), series[0]))


def series_slices(folder: str | Path) -> list[SliceHeader]:
    """The slice headers of the DICOM series in ``folder``, checked (see the module's rules).

    Returns
    -------
    list of SliceHeader
        In the order ITK stacks them (:func:`series_files`).

    Raises
    ------
    SeriesError
        A slice missing or given twice, non-uniform spacing, slices that disagree on
        orientation, pixel spacing or size, a geometry tag absent or implausible; the
        message names the folder, the files and the positions.
    ImageReadError
        No single series in the folder, or an unreadable slice file.
    """
    folder = Path(folder)
    slices = [SliceHeader.read(file) for file in series_files(folder)]
    problem = _geometry_problem(slices)
    if problem:
        unread = sorted(
            p.name
            for p in folder.iterdir()
            if p.is_file() and str(p) not in {s.file for s in slices}
        )
        if unread and problem.startswith("missing slice"):  # one may be the missing slice
            shown = ", ".join(unread[:5]) + (", ..." if len(unread) > 5 else "")
            problem += f" (files of the folder not read as slices of the series: {shown})"
        raise SeriesError(folder, problem)
    return slices


def slice_thickness(slices: list[SliceHeader]) -> float:
    """The spacing to give the one slice of a single-slice series: its ``SliceThickness``
    (ITK gives it 1 mm, which makes every volume wrong by the thickness).

    Raises
    ------
    SeriesError
        When the slice has no plausible ``SliceThickness`` (0018,0050).
    """
    (single,) = slices
    low, high = SPACING_RANGE_MM
    if single.thickness is None or not low <= single.thickness <= high:
        value = "missing" if single.thickness is None else f"{single.thickness:g} mm"
        raise SeriesError(
            Path(single.file).parent,
            f"a series of one slice, whose {_tag('thickness')} is {value}: its voxel size "
            "along the slice axis is unknown (ITK would take 1 mm)",
        )
    return single.thickness


def needs_float(slices: list[SliceHeader]) -> bool:
    """Whether the slices' rescale slopes or intercepts differ, so that ITK, which reads a
    series in the pixel type of its first slice, would truncate the others' values."""
    return len({(s.slope, s.intercept) for s in slices}) > 1


def _name(path: str) -> str:
    return Path(path).name


def _mm(value: float) -> str:
    return f"{value:.6g} mm"


def _first_three(indexes: np.ndarray, describe, what: str) -> str:
    """The first three of ``indexes`` described, ``; ``-separated, and how many more."""
    text = "; ".join(describe(i) for i in indexes[:3])
    return text + (f" (and {len(indexes) - 3} more {what})" if len(indexes) > 3 else "")


def _missing(ratio: float) -> str:
    count = max(round(ratio) - 1, 1)
    return "1 slice is missing" if count == 1 else f"{count} slices are missing"


def _geometry_problem(slices: list[SliceHeader]) -> str | None:
    """What makes ITK stack these slices wrongly, as one message; None when nothing does."""
    first = slices[0]
    for name in ("spacing", "orientation", "position"):
        absent = [s.file for s in slices if getattr(s, name) is None]
        if name != "position" or len(slices) > 1:
            if absent:
                return (
                    f"{_tag(name)} is missing in {len(absent)} of {len(slices)} slice file(s) "
                    f"({', '.join(map(_name, absent[:3]))}): the voxel geometry is unknown"
                )
    low, high = SPACING_RANGE_MM
    if len(first.spacing) != 2 or not all(low <= v <= high for v in first.spacing):
        return (
            f"{_tag('spacing')} of {_name(first.file)} is {first.spacing} mm, outside the "
            f"plausible {low:g}-{high:g} mm"
        )
    if len(first.orientation) != 6:
        return f"{_tag('orientation')} of {_name(first.file)} is not six numbers"
    for s in slices[1:]:
        if s.size != first.size:
            return (
                f"slices of different sizes (rows, columns): {_name(first.file)} {first.size}, "
                f"{_name(s.file)} {s.size}"
            )
        if (
            max(abs(a - b) for a, b in zip(s.orientation, first.orientation, strict=False))
            > _AGREEMENT
        ):
            return (
                f"slices of different orientations ({_tag('orientation')}): "
                f"{_name(first.file)} {first.orientation}, {_name(s.file)} {s.orientation}"
            )
        if (
            len(s.spacing) != 2
            or max(abs(a - b) / b for a, b in zip(s.spacing, first.spacing, strict=True))
            > _AGREEMENT
        ):
            return (
                f"slices of different pixel spacings ({_tag('spacing')}): "
                f"{_name(first.file)} {first.spacing}, {_name(s.file)} {s.spacing}"
            )
    if len(slices) == 1:
        return None
    if any(len(s.position) != 3 for s in slices):
        return f"{_tag('position')} is not three numbers in every slice file"
    return _spacing_problem(slices) or _tilt_problem(slices)


def _tilt_problem(slices: list[SliceHeader]) -> str | None:
    """Slices that move within their plane from one to the next (a CT gantry tilt): ITK
    stacks them straight, along the normal, at their Euclidean distance."""
    cosines = np.asarray(slices[0].orientation, dtype=float)
    normal = np.cross(cosines[:3], cosines[3:])
    positions = np.array([s.position for s in slices], dtype=float)
    order = np.argsort(positions @ normal, kind="stable")
    drift = positions[order[-1]] - positions[order[0]]
    in_plane = drift - (drift @ normal) * normal
    shift = float(np.linalg.norm(in_plane))
    if shift > TILT_PIXELS * min(slices[0].spacing):
        angle = math.degrees(math.atan2(shift, abs(float(drift @ normal))))
        return (
            f"the slices shift {_mm(shift)} within their plane from "
            f"{_name(slices[order[0]].file)} to {_name(slices[order[-1]].file)} (a gantry tilt "
            f"of {angle:.3g} degrees?): ITK would stack them straight, at a wrong spacing. "
            "Resample the series onto a straight grid first"
        )
    return None


def _spacing_problem(slices: list[SliceHeader]) -> str | None:
    """Duplicate, missing or unevenly spaced slices along the slice axis."""
    cosines = np.asarray(slices[0].orientation, dtype=float)
    normal = np.cross(cosines[:3], cosines[3:])
    distance = np.array([np.dot(s.position, normal) for s in slices])
    order = np.argsort(distance, kind="stable")
    distance, files = distance[order], [slices[i].file for i in order]
    gaps = np.diff(distance)
    count = len(slices)
    average = (distance[-1] - distance[0]) / (count - 1)
    stacked = f"read as is, its {count} slices would be stacked {_mm(average)} apart"
    twice = np.flatnonzero(gaps < DUPLICATE_MM)
    distinct = gaps[gaps >= DUPLICATE_MM]
    step = float(np.median(distinct)) if len(distinct) else 0.0
    volumes = f" (volumes {average / step - 1:+.0%})" if step else ""
    if len(twice):
        pairs = _first_three(
            twice,
            lambda i: f"{_name(files[i])} and {_name(files[i + 1])} are both at {_mm(distance[i])}",
            "pairs",
        )
        return (
            f"duplicate slice: {pairs} along the slice axis (a slice exported twice); "
            f"{stacked}{volumes}. Remove the copies"
        )
    low, high = SPACING_RANGE_MM
    if not low <= step <= high:
        return (
            f"the slices are {_mm(step)} apart ({_tag('position')}), outside the plausible "
            f"{low:g}-{high:g} mm"
        )
    long = np.flatnonzero(gaps > 1.5 * step)
    if len(long):
        holes = _first_three(
            long,
            lambda i: (
                f"{_missing(gaps[i] / step)} between {_name(files[i])} at "
                f"{_mm(distance[i])} and {_name(files[i + 1])} at {_mm(distance[i + 1])}"
            ),
            "gaps",
        )
        return (
            f"missing slice: the slices are {_mm(step)} apart along the slice axis, but "
            f"{holes}; {stacked}{volumes}. Export the complete series again"
        )
    expected = distance[0] + average * np.arange(count)
    worst = int(np.argmax(np.abs(distance - expected)))
    if abs(distance[worst] - expected[worst]) > UNIFORM_TOLERANCE * average:
        return (
            f"non-uniform slice spacing: gaps from {_mm(gaps.min())} to {_mm(gaps.max())} along "
            f"the slice axis ({_name(files[worst])} is at {_mm(distance[worst])}, ITK would put "
            f"it at {_mm(expected[worst])}); {stacked}. Resample the series to one spacing first"
        )
    return None
