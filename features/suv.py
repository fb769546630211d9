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

- an injection time without a date that is later in the day than the scan is taken as the
  day before (an injection before midnight, a scan after it: QIBA's "consider spanning
  midnight"); the interval is then under a day.

Plausibility (each an error naming the tag, the value and the file): PatientWeight in
:data:`PLAUSIBLE` kg (70000 is grams in the kilogram tag), RadionuclideTotalDose in Bq (370 is
MBq in the becquerel tag), RadionuclideHalfLife in s, RescaleSlope and RescaleIntercept of
every slice, and the time from injection to scan between 0 and :data:`MAX_HALF_LIVES`
half-lives (a wrong date or time). Voxel spacing is the series reader's
(:mod:`radfusion.features.series`). Every slice must agree on the patient's weight, the units,
the corrections and the radiopharmaceutical: slices that disagree are an error naming the tag.

A header that cannot support this (a tag missing or unreadable, other units, a scan before the
injection) is an error naming the tag and the file; the runner adds patient, modality and
mask. Patient-identifying tags are never read, and no message carries a date or a time of
day: dates of service identify patients (HIPAA, DICOM PS3.15), so a message states the
interval between injection and scan, never the dates.
"""

from __future__ import annotations

import datetime
import math
import re
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
    "RescaleSlope": "0028,1053",
    "RescaleIntercept": "0028,1052",
}
_READ = [k for k in _TAGS if k != "AcquisitionDate"] + ["AcquisitionDate"]
#: Plausible ranges (inclusive) of the values converted, in the tags' own units.
PLAUSIBLE = {
    "PatientWeight": (1.0, 400.0, "kg"),
    "RadionuclideTotalDose": (1e6, 2e10, "Bq"),  # 1 MBq to 20 GBq
    "RadionuclideHalfLife": (60.0, 1e6, "s"),  # Rb-82 (76 s) to I-124 (4.2 days)
    "RescaleSlope": (1e-6, 1e4, "Bq/ml per stored value"),
    "RescaleIntercept": (-1e4, 1e4, "Bq/ml"),
}
#: The scan may follow the injection by at most this many half-lives (F-18: 18 h).
MAX_HALF_LIVES = 10
#: Tags every slice must agree on (values that are dates or times are never shown).
_SHARED = (
    "Units",
    "CorrectedImage",
    "DecayCorrection",
    "PatientWeight",
    "SeriesDate",
    "SeriesTime",
)
_SHARED_DRUG = (
    "RadionuclideTotalDose",
    "RadionuclideHalfLife",
    "RadiopharmaceuticalStartDateTime",
    "RadiopharmaceuticalStartTime",
)
_WHEN = ("SeriesDate", "SeriesTime", "AcquisitionDate", "AcquisitionTime")
_WHEN += ("RadiopharmaceuticalStartDateTime", "RadiopharmaceuticalStartTime")


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


def _number(dataset, keyword: str, file: str, default: float | None = None) -> float:
    """A tag's number, checked against :data:`PLAUSIBLE` when it has a range (else > 0)."""
    if default is not None and dataset.get(keyword) in (None, ""):
        return default
    value = _value(dataset, keyword, file)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SuvError(file, f"tag {_tag(keyword)} is not a number: {value!r}") from None
    if keyword in PLAUSIBLE:
        low, high, unit = PLAUSIBLE[keyword]
        if not low <= number <= high:
            raise SuvError(
                file,
                f"tag {_tag(keyword)} is {number:g} {unit}, outside the plausible "
                f"{low:g}-{high:g} {unit}{_hint(keyword, number)}",
            )
    elif not (math.isfinite(number) and number > 0):
        raise SuvError(file, f"tag {_tag(keyword)} must be a positive number, got {value!r}")
    return number


def _hint(keyword: str, number: float) -> str:
    """The usual unit mistake behind an implausible value, when it explains it."""
    low, high, _ = PLAUSIBLE[keyword]
    if keyword == "PatientWeight" and low <= number / 1000 <= high:
        return " (grams in the kilogram tag?)"
    if keyword == "RadionuclideTotalDose" and low <= number * 1e6 <= high:
        return " (MBq in the becquerel tag?)"
    if keyword == "RadionuclideTotalDose" and low <= number * 1e3 <= high:
        return " (kBq in the becquerel tag?)"
    if keyword == "RadionuclideHalfLife" and low <= number * 60 <= high:
        return " (minutes in the seconds tag?)"
    return ""


#: Dates and times precise enough for a decay correction (DICOM DA, TM to the minute at
#: least, DT to the minute at least, optional UTC offset; ACR-NEMA's ``HH:MM:SS`` too).
_DA = re.compile(r"\d{8}")
_TM = re.compile(r"\d{4}(\d{2}(\.\d{1,6})?)?|\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?")
_DT = re.compile(r"\d{12}(\d{2}(\.\d{1,6})?)?([+-]\d{4})?")


def _pair(date: str, time: str) -> str:
    return f"{_tag(date)} + {_tag(time)}"


def _datetime(date: str, time: str | None, what: str, file: str) -> datetime.datetime:
    """A DA + TM pair, or a DT value when ``time`` is None (time zone dropped), to the minute
    at least: a value truncated to the day or the hour is refused (midnight or the full hour
    would be taken silently). An invalid value is an error naming the tags, never showing
    the value (a date of service)."""
    from pydicom.valuerep import DA, DT, TM

    date = date.strip()
    try:
        if time is None:  # a DT value
            if not _DT.fullmatch(date):
                raise ValueError
            return DT(date).replace(tzinfo=None)
        time = time.strip()
        if not (_DA.fullmatch(date) and _TM.fullmatch(time)):
            raise ValueError
        return datetime.datetime.combine(DA(date), TM(time))
    except (TypeError, ValueError):
        raise SuvError(
            file,
            f"{what} is not a valid DICOM date/time to the minute (value not shown: dates "
            "identify patients)",
        ) from None


def _duration(seconds: float) -> str:
    """An interval in words (``1 h 05 min``), never a date."""
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(round(seconds), 3600)
    if hours >= 48:
        return f"{sign}{seconds / 86400:.1f} days"
    return f"{sign}{hours} h {rest // 60:02d} min" if hours else f"{sign}{rest / 60:.1f} min"


def _agreement(headers: list[tuple[str, object]], keyword: str, drug: bool = False) -> None:
    """Every slice has the same value of ``keyword`` (in the first radiopharmaceutical item
    when ``drug``), else an error naming the tag and the files (dates and times not shown)."""
    values: dict[str, list[str]] = {}
    for file, dataset in headers:
        holder = dataset
        if drug:
            items = dataset.get(_SEQUENCE) or []
            holder = items[0] if len(items) else {}
        value = holder.get(keyword)
        text = "" if value is None else str(value).strip()
        values.setdefault(text, []).append(Path(file).name)
    if len(values) > 1:
        shown = [
            (v if keyword not in _WHEN else f"value {i}") or "absent"
            for i, v in enumerate(values, start=1)
        ]
        listing = "; ".join(
            f"{value} in {len(files)} slice(s) ({', '.join(files[:2])}"
            + (", ...)" if len(files) > 2 else ")")
            for value, files in zip(shown, values.values(), strict=True)
        )
        hidden = " (dates and times not shown)" if keyword in _WHEN else ""
        raise SuvError(
            headers[0][0],
            f"the slices disagree on {_tag(keyword)}{hidden}: {listing}; one series must have "
            "one value",
        )


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
    for keyword in _SHARED:
        _agreement(headers, keyword)
    for keyword in _SHARED_DRUG:
        _agreement(headers, keyword, drug=True)
    for slice_file, dataset in headers:  # the reader applies every slice's own rescale
        _number(dataset, "RescaleSlope", slice_file, default=1.0)
        _number(dataset, "RescaleIntercept", slice_file, default=0.0)
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
    scan = _datetime(
        series_date, str(_value(first, "SeriesTime", file)), _pair("SeriesDate", "SeriesTime"), file
    )
    acquired = [
        _datetime(
            str(_value(d, "AcquisitionDate", f)),
            str(_value(d, "AcquisitionTime", f)),
            _pair("AcquisitionDate", "AcquisitionTime"),
            f,
        )
        for f, d in headers
    ]
    scan = min(scan, min(acquired))  # QIBA: a series time after the scan is not the scan's
    if drug.get("RadiopharmaceuticalStartDateTime"):
        injected = _datetime(
            str(drug.RadiopharmaceuticalStartDateTime),
            None,
            _tag("RadiopharmaceuticalStartDateTime"),
            file,
        )
    else:
        time = _value(drug, "RadiopharmaceuticalStartTime", file)
        injected = _datetime(
            series_date, str(time), _pair("SeriesDate", "RadiopharmaceuticalStartTime"), file
        )
        if injected > scan:  # injected before midnight, scanned after it (no date given)
            injected -= datetime.timedelta(days=1)
    elapsed = (scan - injected).total_seconds()
    times = (
        f"check {_tag('RadiopharmaceuticalStartDateTime')} / "
        f"{_tag('RadiopharmaceuticalStartTime')} and {_tag('SeriesTime')} / "
        f"{_tag('AcquisitionTime')}"
    )
    if elapsed < 0:
        raise SuvError(file, f"the scan starts {_duration(-elapsed)} before the injection: {times}")
    if elapsed > MAX_HALF_LIVES * half_life:
        raise SuvError(
            file,
            f"the scan starts {_duration(elapsed)} after the injection, more than "
            f"{MAX_HALF_LIVES} half-lives ({_tag('RadionuclideHalfLife')} {half_life:g} s) "
            f"later: {times}",
        )
    return weight * 1000.0 / (dose * 2.0 ** (-elapsed / half_life))


def to_suv(image: sitk.Image, folder: str | Path, kind: str = "bw") -> sitk.Image:
    """``image`` (read from the DICOM PET series ``folder``) in SUV, as 64-bit float.

    Raises :class:`SuvError` as :func:`suv_factor`.
    """
    factor = suv_factor(folder, kind)
    return sitk.Cast(image, sitk.sitkFloat64) * factor
