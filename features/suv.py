"""PET standardised uptake values from the DICOM headers of the PET series.

``radfusion: {suv: bw}`` in a PET modality's parameter file converts the image, a DICOM PET
series folder in Bq/ml, to body-weight SUV before anything else (mask alignment, resampling,
normalisation, pyradiomics)::

    SUV = C × weight / (dose × 2^(−Δt / T½))

with C the voxel's activity concentration (Bq/ml, each slice's RescaleSlope/Intercept applied
by the reader), weight the PatientWeight (kg, taken as 1000 g), dose the
RadionuclideTotalDose (Bq) and T½ the RadionuclideHalfLife (s) of the first item of
RadiopharmaceuticalInformationSequence, and Δt the time from injection to the time the
series is decay-corrected to. This follows the QIBA vendor-neutral pseudo-code:

- Units must be ``BQML``; CorrectedImage must hold ``ATTN`` and ``DECY``; DecayCorrection
  ``START`` (Δt as above) or ``ADMIN`` (already corrected to the injection: no decay term).
- injection: RadiopharmaceuticalStartDateTime, else SeriesDate + RadiopharmaceuticalStartTime;
- scan: SeriesDate + SeriesTime, unless it is later than the earliest AcquisitionDate +
  AcquisitionTime of the series' slices (a series re-created after the scan), then that.

A header that cannot support this (a tag missing or unreadable, other units, a scan before the
injection) is an error naming the tag and the file; the runner adds patient, modality and
mask. Patient-identifying tags are never read.
"""

from __future__ import annotations

import datetime
import math
from pathlib import Path

import SimpleITK as sitk

from .io import ImageReadError, series_files

__all__ = ["SUV_KINDS", "SuvError", "suv_factor", "to_suv"]

#: Kinds of SUV that ``radfusion: {suv: ...}`` accepts.
SUV_KINDS = ("bw",)
_SEQUENCE = "RadiopharmaceuticalInformationSequence"
_TAGS = {  # keyword -> (group,element), for messages
    "Modality": "0008,0060",
    "Units": "0054,1001",
    "CorrectedImage": "0028,0051",
    "DecayCorrection": "0054,1102",
    "PatientWeight": "0010,1030",
    "SeriesDate": "0008,0021",
    "SeriesTime": "0008,0031",
    "AcquisitionDate": "0008,0022",
    "AcquisitionTime": "0008,0032",
    _SEQUENCE: "0054,0016",
    "RadionuclideTotalDose": "0018,1074",
    "RadionuclideHalfLife": "0018,1075",
    "RadiopharmaceuticalStartDateTime": "0018,1078",
    "RadiopharmaceuticalStartTime": "0018,1072",
}
_READ = [k for k in _TAGS if k != "AcquisitionDate"] + ["AcquisitionDate"]


class SuvError(ImageReadError):
    """The PET headers cannot support the SUV; the message names the tag and the file."""

    def __init__(self, path: str | Path, reason: str):
        super().__init__(path, f"cannot compute SUV: {reason} (file {path})")
        self.args = (self.reason,)

    def __str__(self) -> str:
        return self.reason


def _tag(keyword: str) -> str:
    return f"{keyword} ({_TAGS[keyword]})"


def _value(dataset, keyword: str, file: str):
    value = dataset.get(keyword)
    if value is None or value == "":
        raise SuvError(file, f"missing tag {_tag(keyword)}")
    return value


def _number(dataset, keyword: str, file: str) -> float:
    value = _value(dataset, keyword, file)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SuvError(file, f"tag {_tag(keyword)} is not a number: {value!r}") from None
    if not (math.isfinite(number) and number > 0):
        raise SuvError(file, f"tag {_tag(keyword)} must be a positive number, got {value!r}")
    return number


def _datetime(date: str, time: str | None, what: str, file: str) -> datetime.datetime:
    """A DA + TM pair, or a DT value when ``time`` is None (time zone dropped)."""
    from pydicom.valuerep import DA, DT, TM

    try:
        if time is None:  # a DT value
            parsed = DT(date)
            return parsed.replace(tzinfo=None)
        return datetime.datetime.combine(DA(date), TM(time))
    except (TypeError, ValueError) as error:
        raise SuvError(file, f"{what} is not a valid DICOM date/time: {error}") from None


def _headers(folder: str | Path) -> list[tuple[str, object]]:
    try:
        import pydicom
    except ImportError:
        raise SuvError(folder, "suv needs pydicom: pip install 'radfusion[dicom]'") from None
    headers = []
    for file in series_files(folder):
        try:
            dataset = pydicom.dcmread(file, stop_before_pixels=True, specific_tags=_READ)
        except Exception as error:  # pydicom raises many types for damaged files
            raise SuvError(file, f"unreadable DICOM header: {error}") from None
        headers.append((file, dataset))
    return headers


def suv_factor(folder: str | Path, kind: str = "bw") -> float:
    """The factor turning a DICOM PET series' voxels (Bq/ml) into SUV (see the module).

    Parameters
    ----------
    folder : str or Path
        A folder holding one DICOM PET series.
    kind : str, default="bw"
        One of :data:`SUV_KINDS`.

    Returns
    -------
    float
        SUV per Bq/ml, in g/ml per Bq/ml.

    Raises
    ------
    SuvError
        When ``folder`` is not a DICOM series, or its headers cannot support the SUV; the
        message names the tag and the file.
    """
    if kind not in SUV_KINDS:
        raise ValueError(f"suv must be one of {', '.join(SUV_KINDS)}, got {kind!r}")
    if not Path(folder).is_dir():
        raise SuvError(folder, "suv needs the image to be a DICOM PET series folder")
    headers = _headers(folder)
    file, first = headers[0]
    modality = str(_value(first, "Modality", file))
    if modality != "PT":
        raise SuvError(file, f"tag {_tag('Modality')} is {modality!r}, not a PET series (PT)")
    units = str(_value(first, "Units", file)).upper()
    if units != "BQML":
        raise SuvError(file, f"tag {_tag('Units')} is {units!r}; only BQML (Bq/ml) is supported")
    corrected = _value(first, "CorrectedImage", file)
    corrected = {str(v).upper() for v in ([corrected] if isinstance(corrected, str) else corrected)}
    for needed in ("ATTN", "DECY"):
        if needed not in corrected:
            raise SuvError(
                file, f"tag {_tag('CorrectedImage')} lacks {needed} (values: {sorted(corrected)})"
            )
    decay = str(_value(first, "DecayCorrection", file)).upper()
    if decay not in ("START", "ADMIN"):
        raise SuvError(
            file, f"tag {_tag('DecayCorrection')} is {decay!r}; START or ADMIN is supported"
        )
    weight = _number(first, "PatientWeight", file)
    drug = _value(first, _SEQUENCE, file)
    if not len(drug):
        raise SuvError(file, f"tag {_tag(_SEQUENCE)} is empty")
    drug = drug[0]
    dose = _number(drug, "RadionuclideTotalDose", file)
    if decay == "ADMIN":
        return weight * 1000.0 / dose
    half_life = _number(drug, "RadionuclideHalfLife", file)
    series_date = str(_value(first, "SeriesDate", file))
    scan = _datetime(series_date, str(_value(first, "SeriesTime", file)), "series time", file)
    acquired = [
        _datetime(
            str(_value(d, "AcquisitionDate", f)),
            str(_value(d, "AcquisitionTime", f)),
            "acquisition time",
            f,
        )
        for f, d in headers
    ]
    scan = min(scan, min(acquired))  # QIBA: a series time after the scan is not the scan's
    if drug.get("RadiopharmaceuticalStartDateTime"):
        injected = _datetime(
            str(drug.RadiopharmaceuticalStartDateTime), None, "injection date/time", file
        )
    else:
        time = _value(drug, "RadiopharmaceuticalStartTime", file)
        injected = _datetime(series_date, str(time), "injection time", file)
    elapsed = (scan - injected).total_seconds()
    if elapsed < 0:
        raise SuvError(
            file,
            f"the scan ({scan.isoformat()}) is before the injection ({injected.isoformat()}): "
            f"check {_tag('RadiopharmaceuticalStartDateTime')} / "
            f"{_tag('RadiopharmaceuticalStartTime')} and {_tag('SeriesTime')}",
        )
    return weight * 1000.0 / (dose * 2.0 ** (-elapsed / half_life))


def to_suv(image: sitk.Image, folder: str | Path, kind: str = "bw") -> sitk.Image:
    """``image`` (read from the DICOM PET series ``folder``) in SUV, as 64-bit float.

    Raises :class:`SuvError` as :func:`suv_factor`.
    """
    factor = suv_factor(folder, kind)
    return sitk.Cast(image, sitk.sitkFloat64) * factor
