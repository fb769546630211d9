"""DICOM series folders: a slice missing or given twice, uneven spacing, disagreeing slices and
mixed rescale slopes are refused or read right, never stacked on ITK's averaged spacing."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from radfusion.features.io import ImageHeader, read_header, read_image
from radfusion.features.series import SeriesError, needs_float, series_slices
from tests.features.dicom_data import ct_volume, write_series

pydicom = pytest.importorskip("pydicom", reason="DICOM tests need radfusion[dicom] (pydicom)")


@pytest.fixture
def full(tmp_path: Path) -> Path:
    """An 8-slice CT series, 2 mm apart from 10 mm on."""
    write_series(tmp_path / "full", ct_volume())
    return tmp_path / "full"


def _copy(full: Path, name: str) -> Path:
    folder = full.parent / name
    shutil.copytree(full, folder)
    return folder


def _edit(path: Path, **tags) -> None:
    """Set (None: remove) tags of a slice file, invalid values too (as damaged exports hold)."""
    from pydicom import config

    ds = pydicom.dcmread(path)
    saved = config.settings.writing_validation_mode
    config.settings.writing_validation_mode = config.IGNORE
    try:
        for keyword, value in tags.items():
            if value is None:
                delattr(ds, keyword)
            elif isinstance(value, bytes):  # raw bytes, whatever the tag's VR allows
                tag = pydicom.datadict.tag_for_keyword(keyword)
                vr = pydicom.datadict.dictionary_VR(tag)
                ds[tag] = pydicom.dataelem.RawDataElement(
                    pydicom.tag.Tag(tag), vr, len(value), value, 0, False, True
                )
            else:
                setattr(ds, keyword, value)
        ds.save_as(path)
    finally:
        config.settings.writing_validation_mode = saved


def _refused(folder: Path) -> str:
    """The message of both readers (they must agree), which name the folder."""
    with pytest.raises(SeriesError) as image:
        read_image(folder)
    with pytest.raises(SeriesError) as header:
        read_header(folder)
    assert str(image.value) == str(header.value)
    assert image.value.path == str(folder)
    return image.value.reason


def test_a_complete_series_is_read_as_before(full):
    image = read_image(full)
    assert image.GetSize() == (16, 16, 8) and image.GetSpacing() == (0.8, 0.8, 2.0)
    assert image.GetPixelID() == sitk.sitkInt16
    assert read_header(full) == ImageHeader.of(image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), ct_volume())


def test_a_missing_slice_is_refused_naming_the_positions(full):
    folder = _copy(full, "missing")
    (folder / "slice004.dcm").unlink()
    assert _refused(folder) == (
        "missing slice: the slices are 2 mm apart along the slice axis, but 1 slice is missing "
        "between slice003.dcm at 16 mm and slice005.dcm at 20 mm; read as is, its 7 slices "
        "would be stacked 2.33333 mm apart (volumes +17%). Export the complete series again"
    )


def test_several_missing_slices_and_an_end_slice(full):
    folder = _copy(full, "missing")
    for k in (2, 3):
        (folder / f"slice00{k}.dcm").unlink()
    assert "2 slices are missing between slice001.dcm at 12 mm and slice004.dcm at 18 mm" in (
        _refused(folder)
    )
    (folder / "slice007.dcm").unlink()  # a missing end slice changes nothing ITK would see
    assert "2 slices are missing" in _refused(folder)


def test_a_slice_exported_twice_is_refused_naming_both_files(full):
    folder = _copy(full, "twice")
    shutil.copy(folder / "slice004.dcm", folder / "slice004_copy.dcm")
    assert _refused(folder) == (
        "duplicate slice: slice004.dcm and slice004_copy.dcm are both at 18 mm along the slice "
        "axis (a slice exported twice); read as is, its 9 slices would be stacked 1.75 mm apart "
        "(volumes -12%). Remove the copies"
    )
    # the copy re-exported with its own instance UID is the same slice
    _edit(folder / "slice004_copy.dcm", SOPInstanceUID=pydicom.uid.generate_uid())
    assert _refused(folder).startswith("duplicate slice: slice004")


def test_uneven_spacing_is_refused_but_rounded_positions_are_not(full, capfd):
    folder = _copy(full, "uneven")
    _edit(folder / "slice004.dcm", ImagePositionPatient=[-6.4, -5.6, 18.7])
    reason = _refused(folder)
    assert reason.startswith("non-uniform slice spacing: gaps from 1.3 mm to 2.7 mm")
    assert "slice004.dcm is at 18.7 mm, ITK would put it at 18 mm" in reason
    # positions written to 0.1 mm (a 0.05 mm error) stay within a tenth of a slice
    _edit(folder / "slice004.dcm", ImagePositionPatient=[-6.4, -5.6, 18.1])
    capfd.readouterr()
    assert read_image(folder).GetSpacing() == (0.8, 0.8, 2.0)
    assert "Non uniform sampling" not in capfd.readouterr().err  # ITK's raw note, checked


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"PixelSpacing": None}, "PixelSpacing (0028,0030) is missing in 1 of 8 slice file(s)"),
        ({"ImagePositionPatient": None}, "ImagePositionPatient (0020,0032) is missing in 1 of 8"),
        ({"PixelSpacing": [0.8, 0.9]}, "slices of different pixel spacings"),
        ({"ImageOrientationPatient": [1, 0, 0, 0, 0.98, 0.199]}, "different orientations"),
        (
            {"PixelSpacing": b"0.8\\abc"},
            "PixelSpacing (0028,0030) of slice003.dcm is '0.8\\abc', not numbers",
        ),
    ],
)
def test_slices_that_disagree_or_lack_geometry_are_refused(full, tags, expected):
    folder = _copy(full, "edited")
    _edit(folder / "slice003.dcm", **tags)
    assert expected in _refused(folder)


def test_an_implausible_pixel_spacing_is_refused(full):
    folder = _copy(full, "metres")
    for path in sorted(folder.glob("*.dcm")):
        _edit(path, PixelSpacing=[0.0008, 0.0008])  # metres in the millimetre tag
    assert "PixelSpacing (0028,0030) of slice000.dcm is (0.0008, 0.0008) mm, outside the " in (
        _refused(folder)
    )


def test_slices_with_different_rescale_slopes_are_read_in_floating_point(tmp_path):
    rng = np.random.default_rng(0)
    slopes = np.array([1.0] + [0.37] * 7)  # the first slice's slope 1 made ITK read int16
    activity = rng.integers(0, 30, (8, 12, 12)) * slopes[:, None, None]
    write_series(tmp_path / "pet", activity, modality="PT", slopes=slopes)
    assert needs_float(series_slices(tmp_path / "pet"))
    image = read_image(tmp_path / "pet")
    assert image.GetPixelID() == sitk.sitkFloat64
    np.testing.assert_allclose(sitk.GetArrayFromImage(image), activity, rtol=0, atol=1e-9)
    write_series(tmp_path / "same", activity[:1].repeat(8, 0), modality="PT")
    assert not needs_float(series_slices(tmp_path / "same"))  # one rescale: ITK's own type


def test_a_gantry_tilt_is_refused(tmp_path):
    """Each slice 0.54 mm further along y (15 degrees): ITK stacked them straight, 2.07 mm
    apart, a sheared volume 3.5 % too long."""
    series = write_series(tmp_path / "ct", ct_volume())
    for k, dataset in enumerate(series):
        position = [float(v) for v in dataset.ImagePositionPatient]
        _edit(
            tmp_path / "ct" / f"slice{k:03d}.dcm",
            ImagePositionPatient=[position[0], position[1] + k * 2 * 0.2679, position[2]],
        )
    reason = _refused(tmp_path / "ct")
    assert reason.startswith("the slices shift 3.7506 mm within their plane from slice000.dcm")
    assert "(a gantry tilt of 15 degrees?)" in reason


def test_a_one_slice_series_is_one_slice_thick(tmp_path):
    """ITK gave the slice 1 mm along the slice axis: a 2 mm slice's volumes were halved."""
    write_series(tmp_path / "one", ct_volume()[:1])
    image = read_image(tmp_path / "one")
    assert image.GetSize() == (16, 16, 1) and image.GetSpacing() == (0.8, 0.8, 2.0)
    assert read_header(tmp_path / "one") == ImageHeader.of(image)
    _edit(tmp_path / "one" / "slice000.dcm", SliceThickness=None)
    assert _refused(tmp_path / "one") == (
        "a series of one slice, whose SliceThickness (0018,0050) is missing: its voxel size "
        "along the slice axis is unknown (ITK would take 1 mm)"
    )


def test_a_missing_slice_names_the_files_not_read_as_slices(full):
    folder = _copy(full, "damaged")
    path = folder / "slice004.dcm"
    path.write_bytes(path.read_bytes()[:-300])  # truncated: GDCM leaves it out of the series
    (folder / "notes.txt").write_text("not DICOM")
    assert _refused(folder).endswith(
        "Export the complete series again (files of the folder not read as slices of the "
        "series: notes.txt, slice004.dcm)"
    )
