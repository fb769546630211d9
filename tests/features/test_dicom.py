"""DICOM RTSTRUCT and SEG masks: rasterised on the referenced series' grid, selected by the
manifest's roi column, extracted like the equivalent label image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from radfusion.features.check import check_cohort
from radfusion.features.dicom import (
    DicomMaskError,
    dicom_kind,
    rasterise_contours,
    read_mask,
    roi_names,
)
from radfusion.features.errors import InputError
from radfusion.features.io import ImageHeader, read_image
from radfusion.features.manifest import validate_cohort
from radfusion.features.runner import extract_cohort
from tests.features.conftest import write_manifest
from tests.features.dicom_data import (
    ct_volume,
    edge_contours,
    tumour,
    write_rtstruct,
    write_seg,
    write_series,
)

PARAMS = {
    "imageType": {"Original": {}},
    "featureClass": {"firstorder": [], "shape": [], "glcm": [], "glszm": []},
    "setting": {"binWidth": 10, "force2D": False},
}


@pytest.fixture
def dicom_case(tmp_path: Path) -> dict:
    """One patient: a 16x16x8 CT series, its tumour as a NIfTI label image, an RTSTRUCT and a
    SEG of the same tumour (plus a second structure)."""
    series = write_series(tmp_path / "ct", ct_volume())
    inside = tumour()
    image = read_image(tmp_path / "ct")
    label = sitk.GetImageFromArray(inside.astype(np.uint8))
    label.CopyInformation(image)
    sitk.WriteImage(label, str(tmp_path / "tumour.nii.gz"))
    body = np.zeros_like(inside)
    body[1:7, 2:14, 1:15] = True
    write_rtstruct(tmp_path / "rs.dcm", series, {"GTV_primary": inside, "Body": body})
    write_seg(tmp_path / "seg.dcm", series, {"Tumour": inside, "Body": body})
    return {"dir": tmp_path, "series": series, "inside": inside, "body": body}


def _row(mask: str, mask_path: str, roi: str = "", patient: str = "P1") -> dict:
    return {
        "patient_id": patient,
        "modality": "CT",
        "mask": mask,
        "image": "ct",
        "mask_path": mask_path,
        "roi": roi,
    }


def test_rtstruct_and_seg_masks_equal_the_label_image_voxel_for_voxel(dicom_case):
    folder = dicom_case["dir"]
    label = sitk.ReadImage(str(folder / "tumour.nii.gz"))
    for path, roi in (("rs.dcm", "gtv.*"), ("seg.dcm", "Tumour")):
        mask = read_mask(folder / path, folder / "ct", roi)
        assert ImageHeader.of(mask) == ImageHeader.of(read_image(folder / "ct"))
        assert np.array_equal(sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(label))
    body = read_mask(folder / "rs.dcm", folder / "ct", "body", label=3)
    assert np.array_equal(sitk.GetArrayFromImage(body), 3 * dicom_case["body"])


def test_contours_through_boundary_voxel_centres_leave_those_voxels_out(dicom_case):
    """OpenCV-based writers (rt-utils) trace a label image through the centres of its boundary
    voxels: those centres are on the contour, not strictly inside it, so they are left out (the
    IBSI rule, as MIRP draws masks); a one-point or one-line contour encloses no centre."""
    folder = dicom_case["dir"]
    inside = dicom_case["inside"].copy()
    inside[2, 14, 14] = True  # a lone voxel: a one-point contour
    inside[5, 1, 4:9] = True  # a one-voxel-thick row: a line
    write_rtstruct(folder / "centres.dcm", dicom_case["series"], {"GTV": inside}, through="centres")
    mask = sitk.GetArrayFromImage(read_mask(folder / "centres.dcm", folder / "ct", "GTV"))
    polygons = edge_contours(inside, "centres")
    expected = np.zeros_like(inside)
    for k in range(inside.shape[0]):
        on_slice = [np.array(p, dtype=float) for z, p in polygons if z == k]
        if on_slice:
            expected[k] = strictly_inside(on_slice, inside.shape[1:])
    assert np.array_equal(mask, expected)
    assert 0 < mask.sum() < inside.sum()
    assert not mask[2, 14, 14] and not mask[5, 1].any()


def test_extraction_from_rtstruct_and_seg_equals_the_label_image(dicom_case):
    folder = dicom_case["dir"]
    manifest = write_manifest(
        folder / "manifest.csv",
        [
            _row("label", "tumour.nii.gz"),
            _row("rt", "rs.dcm", "GTV_primary"),
            _row("seg", "seg.dcm", "tumour"),
        ],
    )
    result = extract_cohort(manifest, {"CT": PARAMS}, n_jobs=1, progress=False)
    assert result.failures.empty, result.failures["error"].tolist()
    features = result.features.set_index("patient_id")
    reference = features.filter(like="CT__label__")
    assert reference.shape[1] > 50
    for name in ("rt", "seg"):
        other = features[[c.replace("__label__", f"__{name}__") for c in reference.columns]]
        np.testing.assert_allclose(other.to_numpy(), reference.to_numpy(), rtol=0, atol=1e-6)
    assert list(result.diagnostics["roi"].fillna("")) == ["", "GTV_primary", "tumour"]


def test_the_cache_keys_each_roi_of_one_file(dicom_case, tmp_path):
    folder = dicom_case["dir"]
    manifest = write_manifest(
        folder / "manifest.csv",
        [_row("gtv", "rs.dcm", "GTV_primary"), _row("body", "rs.dcm", "Body")],
    )
    params = {"CT": {**PARAMS, "featureClass": {"firstorder": []}}}
    cold = extract_cohort(manifest, params, n_jobs=1, progress=False, cache_dir=tmp_path / "c")
    warm = extract_cohort(manifest, params, n_jobs=1, progress=False, cache_dir=tmp_path / "c")
    assert warm.n_cached == 2
    pd.testing.assert_frame_equal(warm.features, cold.features)
    row = cold.features.iloc[0]
    assert row["CT__gtv__original_firstorder_Mean"] != row["CT__body__original_firstorder_Mean"]


@pytest.mark.parametrize(
    ("roi", "expected"),
    [
        ("", "holds 2 ROIs: set the roi column (ROIs present: 'GTV_primary', 'Body')"),
        ("liver", "roi 'liver' matches no ROI; ROIs present: 'GTV_primary', 'Body'"),
        (".*", "roi '.*' matches 2 ROIs (GTV_primary, Body); ROIs present"),
        ("gtv[", "roi 'gtv[' is no exact ROI name and not a valid pattern"),
    ],
)
def test_a_roi_matching_none_or_several_is_an_error_listing_the_names(dicom_case, roi, expected):
    folder = dicom_case["dir"]
    manifest = write_manifest(folder / "manifest.csv", [_row("rt", "rs.dcm", roi, "007")])
    with pytest.raises(InputError) as error:
        validate_cohort(manifest)
    (problem,) = error.value.problems
    assert problem.patient_id == "007" and problem.row == 1
    assert problem.file == str(folder / "rs.dcm")
    assert expected in problem.message


def test_a_mask_of_another_series_is_refused_naming_both_series(dicom_case):
    folder = dicom_case["dir"]
    other = write_series(folder / "other_ct", ct_volume(seed=1))
    write_rtstruct(folder / "other.dcm", other, {"GTV": dicom_case["inside"]})
    write_seg(folder / "other_seg.dcm", other, {"GTV": dicom_case["inside"]})
    rows = [_row("rt", "other.dcm", "GTV"), _row("seg", "other_seg.dcm", "GTV")]
    with pytest.raises(InputError) as error:
        validate_cohort(write_manifest(folder / "manifest.csv", rows))
    messages = [p.message for p in error.value.problems]
    assert len(messages) == 2
    for kind, message in zip(("RTSTRUCT", "SEG"), messages, strict=True):
        assert f"the {kind} references series {other[0].SeriesInstanceUID}" in message
        assert f"is series {dicom_case['series'][0].SeriesInstanceUID}" in message
    extracted = extract_cohort(
        write_manifest(folder / "manifest.csv", rows), {"CT": PARAMS}, n_jobs=1, progress=False
    )
    assert len(extracted.failures) == 2
    assert extracted.failures["error"].str.contains("patient P1, modality CT").all()


def test_a_roi_on_a_label_image_and_a_dicom_mask_of_a_nifti_image_are_refused(dicom_case):
    folder = dicom_case["dir"]
    sitk.WriteImage(read_image(folder / "ct"), str(folder / "ct.nii.gz"))
    rows = [
        _row("label", "tumour.nii.gz", "GTV"),
        {**_row("rt", "rs.dcm", "GTV_primary"), "image": "ct.nii.gz"},
    ]
    with pytest.raises(InputError) as error:
        validate_cohort(write_manifest(folder / "manifest.csv", rows))
    first, second = (p.message for p in error.value.problems)
    assert "roi 'GTV' is set but the mask is not a DICOM RTSTRUCT or SEG file" in first
    assert "needs the image to be the DICOM series folder it references" in second


def test_check_lists_the_roi_names_it_found(dicom_case):
    folder = dicom_case["dir"]
    rows = [
        _row("rt", "rs.dcm", "gtv_primary"),
        _row("seg", "seg.dcm", "body"),
        _row("label", "tumour.nii.gz"),
        _row("bad", "rs.dcm", "liver"),
    ]
    table = check_cohort(write_manifest(folder / "manifest.csv", rows), n_jobs=1)
    table = table.set_index("mask")
    assert table.loc["rt", "rois_found"] == "GTV_primary; Body"
    assert table.loc["seg", "rois_found"] == "Tumour; Body"
    assert table.loc["label", "rois_found"] == ""
    assert table.loc["rt", "voxels"] == dicom_case["inside"].sum()
    assert table.loc["seg", "voxels"] == dicom_case["body"].sum()
    assert list(table["status"]) == ["ok", "ok", "ok", "would fail"]
    assert "roi 'liver' matches no ROI" in table.loc["bad", "problem"]


def test_contours_fill_voxel_centres_with_holes_by_even_odd():
    header = ImageHeader((10, 8, 2), (1.0, 1.0, 1.0), (0.0, 0.0, 0.0), (1, 0, 0, 0, 1, 0, 0, 0, 1))
    outer = np.array([[0.5, 0.5, 0], [8.5, 0.5, 0], [8.5, 6.5, 0], [0.5, 6.5, 0]])
    hole = np.array([[2.5, 2.5, 0], [5.5, 2.5, 0], [5.5, 4.5, 0], [2.5, 4.5, 0]])
    mask = rasterise_contours([outer, hole], header)
    expected = np.zeros((2, 8, 10), dtype=bool)
    expected[0, 1:7, 1:9] = True
    expected[0, 3:5, 3:6] = False
    assert np.array_equal(mask, expected)
    with pytest.raises(ValueError, match="contour 1 lies at slice position 0.500"):
        rasterise_contours([outer + [0, 0, 0.5]], header)


def _fill(polygons: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    identity = (1, 0, 0, 0, 1, 0, 0, 0, 1)
    header = ImageHeader((shape[1], shape[0], 1), (1.0,) * 3, (0.0,) * 3, identity)
    return rasterise_contours([np.column_stack([p, np.zeros(len(p))]) for p in polygons], header)[0]


def test_the_fill_is_an_independent_rasteriser_strictly_inside():
    """Non-convex polygons with integer vertices (many voxel centres on edges and vertices),
    generic ones, holed contours and contours through voxel centres, against matplotlib's
    point-in-polygon test (dicompyler-core's) with the boundary taken out."""
    rng = np.random.default_rng(3)
    shape = (30, 40)
    cases = []
    for _ in range(15):  # random star-shaped (simple, non-convex) polygons
        angles = np.sort(rng.uniform(0, 2 * np.pi, 12))
        xy = np.column_stack([np.cos(angles), np.sin(angles)]) * rng.uniform(3, 13, (12, 1))
        cases.append([xy + [19.3, 14.7]])
        cases.append([np.rint(xy + [19, 14])])  # vertices on voxel centres
    for _ in range(10):  # a hole (even-odd), both with integer vertices
        outer = np.array([[3, 3], [35, 4], [33, 26], [20, 20], [5, 25]], dtype=float)
        cases.append([outer, np.array([[9, 8], [18, 7], [17, 16], [12, 12]]) + rng.integers(-2, 3)])
    z, y, x = np.indices((1, *shape))
    for _ in range(10):  # rt-utils style: through the centres of a blob's boundary voxels
        centre, radii = rng.uniform([12, 10], [28, 20]), rng.uniform(4, 9, 2)
        blob = ((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2 <= 1
        cases.append([np.array(p, dtype=float) for _, p in edge_contours(blob, "centres")])
    on_edges = 0
    for polygons in cases:
        expected = strictly_inside(polygons, shape)
        assert np.array_equal(_fill(polygons, shape), expected)
        loose = np.logical_xor.reduce([_contains(p, shape) for p in polygons])
        on_edges += int((loose != expected).sum())
    assert on_edges > 100  # the boundary rule was exercised


def _contains(polygon: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    from matplotlib.path import Path as Polygon

    centres = np.stack(np.meshgrid(np.arange(shape[1]), np.arange(shape[0])), axis=-1)
    return Polygon(polygon).contains_points(centres.reshape(-1, 2)).reshape(shape)


def strictly_inside(polygons: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """Voxel centres inside the polygons by the even-odd rule and farther than the edge
    tolerance from every edge: matplotlib's point-in-polygon test (which leaves points on an
    edge to chance) plus an explicit distance to the edges."""
    from radfusion.features.dicom import EDGE_TOLERANCE

    inside = np.logical_xor.reduce([_contains(p, shape) for p in polygons])
    rows, columns = np.nonzero(inside)
    for row, column in zip(rows, columns, strict=True):
        point = np.array([column, row], dtype=float)
        if min(_edge_distance(point, p) for p in polygons) < EDGE_TOLERANCE:
            inside[row, column] = False
    return inside


def _edge_distance(point: np.ndarray, polygon: np.ndarray) -> float:
    """Distance from a point to the nearest edge of a closed polygon (a point: its distance)."""
    starts, ends = polygon, np.roll(polygon, -1, axis=0)
    direction = ends - starts
    length = np.maximum((direction**2).sum(1), 1e-300)
    t = np.clip(((point - starts) * direction).sum(1) / length, 0, 1)
    return float(np.min(np.hypot(*(starts + t[:, None] * direction - point).T)))


def test_pydicoms_shipped_rtstruct_is_rasterised_on_a_series_it_references(tmp_path):
    """pydicom's test RTSTRUCT (no preamble, a 400 x 300 mm box on three slices) on a CT
    series given the series and frame UIDs it references."""
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file("rtstruct.dcm"))
    assert dicom_kind(path) == "RTSTRUCT"
    assert roi_names(path) == ["patient", "Isocenter 1", "Isocenter 2"]
    write_series(
        tmp_path / "ct",
        np.zeros((5, 16, 16)),
        spacing=(30.0, 30.0, 10.0),
        origin=(-235.0, -232.0, -200.0),
        series_uid="1.2.826.0.1.3680043.8.498.2010020400001.2.1.1",
        frame_uid="1.2.826.0.1.3680043.8.498.2010020400001.2",
    )
    mask = sitk.GetArrayFromImage(read_mask(path, tmp_path / "ct", "PATIENT"))
    x = -235.0 + 30 * np.arange(16)
    y = -232.0 + 30 * np.arange(16)
    box = (np.abs(y)[:, None] <= 150) & (np.abs(x)[None, :] <= 200)
    assert np.array_equal(mask[:3], np.broadcast_to(box, (3, 16, 16)))
    assert not mask[3:].any()
    with pytest.raises(Exception, match="Isocenter 1' has no closed planar contour"):
        read_mask(path, tmp_path / "ct", "isocenter 1")


def test_an_oblique_sagittal_series_is_rasterised_in_its_own_index_space(tmp_path):
    """Rows along -z, columns along +y, slices stacked along -x, as SimpleITK reads them."""
    inside = tumour()
    series = write_series(
        tmp_path / "ct", ct_volume(), orientation=(0, 1, 0, 0, 0, -1), origin=(30.0, -5.0, 12.0)
    )
    image = read_image(tmp_path / "ct")
    assert image.GetDirection() == (0, 0, -1, 1, 0, 0, 0, -1, 0)
    write_rtstruct(tmp_path / "rs.dcm", series, {"GTV": inside})
    write_seg(tmp_path / "seg.dcm", series, {"GTV": inside})
    for name in ("rs.dcm", "seg.dcm"):
        mask = read_mask(tmp_path / name, tmp_path / "ct", "GTV")
        assert ImageHeader.of(mask) == ImageHeader.of(image)
        assert np.array_equal(sitk.GetArrayFromImage(mask), inside)


def test_without_the_dicom_extra_a_dicom_mask_says_what_to_install(dicom_case, monkeypatch):
    import sys

    from radfusion.features.dicom import DicomMaskError

    folder = dicom_case["dir"]
    monkeypatch.setitem(sys.modules, "pydicom", None)  # as if not installed
    with pytest.raises(DicomMaskError, match=r"pip install 'radfusion\[dicom\]'"):
        read_mask(folder / "rs.dcm", folder / "ct", "GTV_primary")
    label = read_mask(folder / "tumour.nii.gz")  # label images need nothing more
    assert sitk.GetArrayFromImage(label).sum() == dicom_case["inside"].sum()


def test_robustness_perturbs_the_rasterised_roi_like_the_label_image(dicom_case):
    from radfusion.features.robustness import perturbed_tables

    folder = dicom_case["dir"]
    rows = [
        _row("label", "tumour.nii.gz"),
        _row("rt", "rs.dcm", "GTV_primary"),
        _row("seg", "seg.dcm", "Tumour"),
    ]
    params = {"CT": {**PARAMS, "featureClass": {"shape": ["VoxelVolume"], "firstorder": []}}}
    tables = perturbed_tables(
        write_manifest(folder / "manifest.csv", rows), params, ("dilate",), n_jobs=1
    )
    for version in ("original", "dilate"):
        table = tables[version]
        reference = table.filter(like="CT__label__")
        for name in ("rt", "seg"):
            other = table[[c.replace("__label__", f"__{name}__") for c in reference.columns]]
            np.testing.assert_allclose(other.to_numpy(), reference.to_numpy(), rtol=0, atol=1e-6)
    volume = "CT__rt__original_shape_VoxelVolume"
    assert tables["dilate"][volume].iloc[0] > tables["original"][volume].iloc[0]


def _edited(path: Path, out: Path, edit) -> Path:
    """A copy of a DICOM file with ``edit(dataset)`` applied (invalid values written as given,
    as damaged exports hold them)."""
    import pydicom
    from pydicom import config

    dataset = pydicom.dcmread(path)
    edit(dataset)
    saved = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        dataset.save_as(out)
    finally:
        config.settings.writing_validation_mode = saved
    return out


@pytest.mark.parametrize(("name", "roi"), [("rs.dcm", "GTV_primary"), ("seg.dcm", "Tumour")])
def test_two_structures_of_one_name_are_an_error_listing_them(dicom_case, name, roi):
    """The later one silently won before (a body instead of a tumour)."""
    folder = dicom_case["dir"]

    def rename(dataset):
        items = dataset.get("StructureSetROISequence") or dataset.SegmentSequence
        setattr(items[1], "ROIName" if "ROIName" in items[1] else "SegmentLabel", roi)

    path = _edited(folder / name, folder / f"dup_{name}", rename)
    for selection in (roi, roi.lower() + ".*"):
        with pytest.raises(DicomMaskError) as error:
            read_mask(path, folder / "ct", selection)
        assert str(error.value) == (
            f"cannot use DICOM mask {path}: 2 ROIs are named {roi!r} (numbers 1, 2 of the "
            f"file's 2, in its order): which one is meant is unknown; rename or remove the "
            f"others (ROIs present: {roi!r}, {roi!r})"
        )
    assert roi_names(path) == [roi, roi]
    rows = [_row("rt", f"dup_{name}", roi, "007"), _row("label", "tumour.nii.gz", "", "008")]
    table = check_cohort(write_manifest(folder / "manifest.csv", rows), n_jobs=1)
    assert list(table["status"]) == ["would fail", "ok"]
    assert f"2 ROIs are named {roi!r}" in table["problem"].iloc[0]


def _contour(index: int):
    """An edit of contour ``index`` (from 0) of the first ROI."""

    def edit(change):
        return lambda dataset: change(dataset.ROIContourSequence[0].ContourSequence[index])

    return edit


def _raw_contour_data(contour) -> None:
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag

    values = [f"{v:g}" for v in contour.ContourData]
    values[4] = "abc"
    raw = "\\".join(values).encode()
    contour[0x30060050] = RawDataElement(Tag(0x30060050), "DS", len(raw), raw, 0, False, True)


DAMAGED = {
    "a value missing": (
        lambda c: setattr(c, "ContourData", list(c.ContourData)[:-1]),
        "has a damaged point list: ContourData (3006,0050) holds 11 values, not x, y, z",
    ),
    "a point missing": (
        lambda c: setattr(c, "ContourData", list(c.ContourData)[:-3]),
        "NumberOfContourPoints (3006,0046) is 4 but ContourData (3006,0050) holds 3 points",
    ),
    "no point list": (
        lambda c: delattr(c, "ContourData"),
        "contour 4 (slice unknown: no complete point) has a damaged point list: ContourData "
        "(3006,0050) is empty",
    ),
    "a value not a number": (_raw_contour_data, "holds values that are not numbers (abc)"),
    "no geometric type": (
        lambda c: delattr(c, "ContourGeometricType"),
        "has ContourGeometricType (3006,0042) 'missing', not one of CLOSED_PLANAR",
    ),
}


@pytest.mark.parametrize("damage", list(DAMAGED))
def test_a_damaged_contour_is_an_error_naming_roi_slice_and_file(dicom_case, damage):
    """Such a contour was dropped silently before, and the ROI's slice with it."""
    folder = dicom_case["dir"]
    change, expected = DAMAGED[damage]
    path = _edited(folder / "rs.dcm", folder / "damaged.dcm", _contour(3)(change))
    with pytest.raises(DicomMaskError) as error:
        read_mask(path, folder / "ct", "GTV_primary")
    message = str(error.value)
    assert message.startswith(
        f"cannot use DICOM mask {path}: cannot rasterise RTSTRUCT ROI 'GTV_primary': contour 4 ("
    )
    assert expected in message
    if damage not in ("no point list",):
        assert "contour 4 (image slice 3 counting from 0, z = 16 mm)" in message
    body = read_mask(path, folder / "ct", "Body")  # the file's other ROI is intact
    assert np.array_equal(sitk.GetArrayFromImage(body), dicom_case["body"])


def test_contours_that_enclose_nothing_are_still_ignored(dicom_case):
    folder = dicom_case["dir"]
    path = _edited(
        folder / "rs.dcm",
        folder / "points.dcm",
        _contour(0)(lambda c: setattr(c, "ContourGeometricType", "POINT")),
    )
    mask = sitk.GetArrayFromImage(read_mask(path, folder / "ct", "GTV_primary"))
    assert mask.sum() < dicom_case["inside"].sum()  # documented: POINT items are not filled


@pytest.mark.parametrize("keep", [0.5, 0.95], ids=["half", "last-frame-cut"])
def test_a_truncated_seg_is_an_error_naming_the_file(dicom_case, keep):
    """A SEG cut short (an interrupted copy) is refused naming it, never read as a shorter
    or emptier mask."""
    folder = dicom_case["dir"]
    data = (folder / "seg.dcm").read_bytes()
    cut = folder / "cut_seg.dcm"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DicomMaskError) as error:
        read_mask(cut, folder / "ct", "Tumour")
    assert str(error.value).startswith(f"cannot use DICOM mask {cut}: ")
