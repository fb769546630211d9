"""Small synthetic DICOM written in the tests' tmp_path: a CT or PET series (pydicom), an
RTSTRUCT (pydicom, contours traced along voxel edges) and a SEG (highdicom).

Every object carries fake patient-identifying values (:data:`PHI`), so that tests can grep
every output for them. Nothing here is committed as binary data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom", reason="DICOM tests need radfusion[dicom] (pydicom)")
highdicom = pytest.importorskip("highdicom", reason="DICOM tests need radfusion[dicom] (highdicom)")

from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.sequence import Sequence  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
PET_STORAGE = "1.2.840.10008.5.1.4.1.1.128"
RTSTRUCT_STORAGE = "1.2.840.10008.5.1.4.1.1.481.3"

#: Fake patient-identifying values put in every synthetic DICOM object; none may reach an
#: output. Distinctive strings so that a grep finds nothing by chance.
PHI = {
    "PatientName": "Zyxwarbly^Quentinella",
    "PatientID": "PHIID7731948",
    "PatientBirthDate": "19020317",
    "PatientAddress": "42 Phiaddress Lane Xqzville",
    "OtherPatientIDs": "PHIOTHER5526",
    "AccessionNumber": "ACCPHI9931",
    "ReferringPhysicianName": "Drphi^Blorvax",
    "InstitutionName": "Phinstitute Qwervy",
}


def _meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta


def _patient(ds: Dataset, phi: dict[str, str]) -> None:
    for keyword, value in phi.items():
        setattr(ds, keyword, value)
    ds.PatientSex = "O"


def write_series(
    folder: Path,
    voxels: np.ndarray,
    *,
    spacing: tuple[float, float, float] = (0.8, 0.8, 2.0),
    origin: tuple[float, float, float] = (-6.4, -5.6, 10.0),
    modality: str = "CT",
    slopes: np.ndarray | None = None,
    pet: dict | None = None,
    phi: dict[str, str] | None = None,
    series_uid: str | None = None,
    frame_uid: str | None = None,
    orientation: tuple[float, ...] = (1, 0, 0, 0, 1, 0),
    date: str = "20260105",
    time: str = "100000",
) -> list[Dataset]:
    """Write a (z, y, x) volume as one single-frame DICOM file per slice; return the datasets.

    ``slopes``: per-slice RescaleSlope (stored values are ``round(voxels / slope)``);
    ``pet``: PET tags to set (modality PT): any of ``Units``, ``DecayCorrection``,
    ``CorrectedImage``, ``PatientWeight``, ``SeriesTime``, ``AcquisitionTime`` (per slice:
    a list), and ``radiopharmaceutical`` (a dict of the sequence item's tags; the injection
    defaults to one hour before ``time`` on ``date``); a value None leaves the tag out.
    ``date`` and ``time``: the study, series, acquisition and content date and time.
    """
    folder.mkdir(parents=True, exist_ok=True)
    slices, rows, columns = voxels.shape
    study = generate_uid()
    series, frame = series_uid or generate_uid(), frame_uid or generate_uid()
    storage = PET_STORAGE if modality == "PT" else CT_STORAGE
    datasets = []
    for k in range(slices):
        ds = Dataset()
        ds.SOPClassUID = storage
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta = _meta(storage, ds.SOPInstanceUID)
        _patient(ds, PHI if phi is None else phi)
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality = modality
        ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = date
        ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = time
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, k + 1
        ds.Manufacturer = "radfusion-tests"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.PositionReferenceIndicator = ""
        normal = np.cross(orientation[:3], orientation[3:])
        ds.ImagePositionPatient = [float(v) for v in np.add(origin, k * spacing[2] * normal)]
        ds.ImageOrientationPatient = list(orientation)
        ds.PixelSpacing = [spacing[1], spacing[0]]  # row spacing (y), column spacing (x)
        ds.SliceThickness = spacing[2]
        ds.Rows, ds.Columns = rows, columns
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        slope = 1.0 if slopes is None else float(slopes[k])
        ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.10g}", "0"
        stored = np.rint(voxels[k] / slope).astype(np.int16)
        ds.PixelData = stored.tobytes()
        if modality == "PT":
            injected = f"{date}{int(time[:2]) - 1:02d}{time[2:]}"
            _pet_tags(ds, dict(pet or {}), k, injected)
        pydicom.dcmwrite(folder / f"slice{k:03d}.dcm", ds, enforce_file_format=True)
        datasets.append(ds)
    return datasets


def _pet_tags(ds: Dataset, pet: dict, k: int, injected: str) -> None:
    defaults = {
        "Units": "BQML",
        "DecayCorrection": "START",
        "CorrectedImage": ["ATTN", "DECY"],
        "PatientWeight": "70",
    }
    for keyword, value in {**defaults, **pet}.items():
        if keyword == "radiopharmaceutical":
            continue
        if keyword == "AcquisitionTime" and isinstance(value, list):
            value = value[k]
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)
    item = Dataset()
    drug = {
        "RadionuclideTotalDose": "370000000",
        "RadionuclideHalfLife": "6586.2",
        "RadiopharmaceuticalStartDateTime": injected,
        **pet.get("radiopharmaceutical", {}),
    }
    for keyword, value in drug.items():
        if value is not None:
            setattr(item, keyword, value)
    ds.RadiopharmaceuticalInformationSequence = Sequence([item])


def _staircase(run_rows: dict[int, tuple[int, int]]) -> list[tuple[float, float]]:
    """Outline, along voxel edges, of a row-convex region given as {row: (first, last col)}."""
    rows = sorted(run_rows)
    right = []
    for r in rows:
        right += [(run_rows[r][1] + 0.5, r - 0.5), (run_rows[r][1] + 0.5, r + 0.5)]
    left = []
    for r in reversed(rows):
        left += [(run_rows[r][0] - 0.5, r + 0.5), (run_rows[r][0] - 0.5, r - 0.5)]
    return right + left


def _through_centres(run_rows: dict[int, tuple[int, int]]) -> list[tuple[float, float]]:
    """Outline through the centres of the boundary voxels of a row-convex region (OpenCV's
    findContours convention, which rt-utils writes)."""
    rows = sorted(run_rows)
    right = [(float(run_rows[r][1]), float(r)) for r in rows]
    left = [(float(run_rows[r][0]), float(r)) for r in reversed(rows)]
    return right + left


def edge_contours(
    mask: np.ndarray, through: str = "edges"
) -> list[tuple[int, list[tuple[float, float]]]]:
    """Per-slice polygons (column, row index units) tracing ``mask`` (z, y, x) along voxel
    edges. Each connected run of rows in which every row is one run of columns is one polygon;
    a row with several runs starts one polygon per run (rectangles), so any shape is exact.
    ``through="centres"``: the same polygons through the boundary voxels' centres."""
    outline = _staircase if through == "edges" else _through_centres
    polygons: list[tuple[int, list[tuple[float, float]]]] = []
    for k in range(mask.shape[0]):
        current: dict[int, tuple[int, int]] = {}
        for r in range(mask.shape[1]):
            columns = np.flatnonzero(mask[k, r])
            runs = (
                np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1) if len(columns) else []
            )
            if len(runs) == 1:
                current[r] = (int(runs[0][0]), int(runs[0][-1]))
                continue
            if current:
                polygons.append((k, outline(current)))
                current = {}
            for run in runs:
                polygons.append((k, outline({r: (int(run[0]), int(run[-1]))})))
        if current:
            polygons.append((k, outline(current)))
    return polygons


def write_rtstruct(
    path: Path,
    series: list[Dataset],
    rois: dict[str, np.ndarray],
    *,
    referenced_series: str | None = None,
    holes: dict[str, list[tuple[int, list[tuple[float, float]]]]] | None = None,
    through: str = "edges",
) -> Path:
    """An RTSTRUCT whose ROIs trace the given (z, y, x) masks along voxel edges.

    ``holes``: extra (slice, polygon in index units) contours per ROI (even-odd: holes).
    ``referenced_series``: another SeriesInstanceUID to reference (default: the series').
    ``through``: ``edges`` (along voxel edges) or ``centres`` (through the boundary voxels'
    centres, as OpenCV-based writers do).
    """
    first = series[0]
    row_step, column_step = (float(v) for v in first.PixelSpacing)
    cosines = np.array(first.ImageOrientationPatient, dtype=float)
    along_row, along_column = cosines[:3] * column_step, cosines[3:] * row_step
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = RTSTRUCT_STORAGE, generate_uid()
    ds.file_meta = _meta(RTSTRUCT_STORAGE, ds.SOPInstanceUID)
    for keyword in (*PHI, "PatientSex", "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID"):
        setattr(ds, keyword, getattr(first, keyword))
    ds.Modality, ds.SeriesInstanceUID, ds.SeriesNumber = "RTSTRUCT", generate_uid(), 9
    ds.StructureSetLabel, ds.StructureSetDate, ds.StructureSetTime = (
        "synthetic",
        "20260105",
        "100000",
    )
    contour_images = Sequence()
    for item in series:
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = (
            item.SOPClassUID,
            item.SOPInstanceUID,
        )
        contour_images.append(ref)
    rt_series = Dataset()
    rt_series.SeriesInstanceUID = referenced_series or first.SeriesInstanceUID
    rt_series.ContourImageSequence = contour_images
    rt_study = Dataset()
    rt_study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    rt_study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    rt_study.RTReferencedSeriesSequence = Sequence([rt_series])
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    frame.RTReferencedStudySequence = Sequence([rt_study])
    ds.ReferencedFrameOfReferenceSequence = Sequence([frame])
    ds.StructureSetROISequence, ds.ROIContourSequence = Sequence(), Sequence()
    ds.RTROIObservationsSequence = Sequence()
    for number, (name, mask) in enumerate(rois.items(), start=1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName, roi.ROIGenerationAlgorithm = number, name, "MANUAL"
        roi.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        ds.StructureSetROISequence.append(roi)
        contours = Sequence()
        for k, polygon in edge_contours(mask, through) + list((holes or {}).get(name, [])):
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR"
            corner = np.array(series[k].ImagePositionPatient, dtype=float)
            points = [
                v
                for column, row in polygon
                for v in corner + column * along_row + row * along_column
            ]
            contour.NumberOfContourPoints = len(polygon)
            contour.ContourData = [f"{v:.6g}" for v in points]
            image = Dataset()
            image.ReferencedSOPClassUID = series[k].SOPClassUID
            image.ReferencedSOPInstanceUID = series[k].SOPInstanceUID
            contour.ContourImageSequence = Sequence([image])
            contours.append(contour)
        item = Dataset()
        item.ReferencedROINumber, item.ROIDisplayColor = number, [255, 0, 0]
        item.ContourSequence = contours
        ds.ROIContourSequence.append(item)
        observation = Dataset()
        observation.ObservationNumber, observation.ReferencedROINumber = number, number
        observation.RTROIInterpretedType, observation.ROIInterpreter = "GTV", ""
        ds.RTROIObservationsSequence.append(observation)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def write_seg(path: Path, series: list[Dataset], segments: dict[str, np.ndarray]) -> Path:
    """A binary DICOM SEG (highdicom) of the given (z, y, x) masks, one segment each."""
    from pydicom.sr.codedict import codes

    descriptions = [
        highdicom.seg.SegmentDescription(
            segment_number=number,
            segment_label=name,
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Neoplasm,
            algorithm_type=highdicom.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for number, name in enumerate(segments, start=1)
    ]
    pixels = np.stack([m.astype(np.uint8) for m in segments.values()], axis=-1)
    seg = highdicom.seg.Segmentation(
        source_images=series,
        pixel_array=pixels,
        segmentation_type=highdicom.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=highdicom.UID(),
        series_number=10,
        sop_instance_uid=highdicom.UID(),
        instance_number=1,
        manufacturer="radfusion-tests",
        manufacturer_model_name="synthetic",
        software_versions="0",
        device_serial_number="0",
    )
    seg.save_as(path)
    return path


def ct_volume(seed: int = 0, shape: tuple[int, int, int] = (8, 16, 16)) -> np.ndarray:
    """A noisy CT-like volume with a brighter blob (HU-like integers)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    blob = ((x - 7.3) / 4.5) ** 2 + ((y - 8.1) / 4.0) ** 2 + ((z - 3.6) / 2.6) ** 2 <= 1
    return np.rint(rng.normal(20, 15, shape) + 60 * blob).astype(np.int16)


def tumour(shape: tuple[int, int, int] = (8, 16, 16)) -> np.ndarray:
    """An ellipsoid ROI with a notch (two column runs on some rows), (z, y, x) booleans."""
    z, y, x = np.indices(shape)
    inside = ((x - 7.3) / 5.0) ** 2 + ((y - 8.1) / 4.2) ** 2 + ((z - 3.6) / 2.8) ** 2 <= 1
    inside[3:5, 6:8, 7] = False  # a notch: rows with two runs of columns
    return inside
