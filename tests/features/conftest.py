"""Tiny synthetic images, masks and manifests written with SimpleITK for the features tests."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

SIZE = 24
SPACING = (1.0, 1.0, 1.0)


def sphere_case(
    seed: int, radius: float = 6.0, contrast: float = 40.0
) -> tuple[sitk.Image, sitk.Image]:
    """A noisy 24³ image with a brighter, textured sphere, and the sphere's mask (label 1)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((SIZE, SIZE, SIZE))
    centre = SIZE / 2 - 0.5 + rng.uniform(-2, 2, size=3)
    inside = (x - centre[0]) ** 2 + (y - centre[1]) ** 2 + (z - centre[2]) ** 2 <= radius**2
    voxels = rng.normal(0.0, 10.0, (SIZE, SIZE, SIZE)) + contrast * inside
    image = sitk.GetImageFromArray(voxels.round().astype(np.int16))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    for item in (image, mask):
        item.SetSpacing(SPACING)
        item.SetOrigin((-12.0, -12.0, -12.0))
    return image, mask


Row = dict[str, object]


@pytest.fixture
def write_cohort(tmp_path: Path) -> Callable[..., Path]:
    """Write images, masks and a manifest CSV under ``tmp_path``; return the manifest path.

    Call it with a list of ``(patient_id, modality, seed)``; ``sites`` (patient → site) adds
    a site column. Paths in the manifest are relative to its folder.
    """

    def write(
        cases: list[tuple[str, str, int]],
        sites: dict[str, str] | None = None,
        name: str = "manifest.csv",
    ) -> Path:
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "masks").mkdir(exist_ok=True)
        rows = []
        for patient, modality, seed in cases:
            image, mask = sphere_case(seed)
            image_file = f"images/{patient}_{modality}.nii.gz"
            mask_file = f"masks/{patient}_{modality}_tumor.nii.gz"
            sitk.WriteImage(image, str(tmp_path / image_file))
            sitk.WriteImage(mask, str(tmp_path / mask_file))
            row = {
                "patient_id": patient,
                "modality": modality,
                "mask": "tumor",
                "image": image_file,
                "mask_path": mask_file,
                "label": 1,
            }
            if sites is not None:
                row["site"] = sites[patient]
            rows.append(row)
        return write_manifest(tmp_path / name, rows)

    return write


def write_manifest(path: Path, rows: list[Row]) -> Path:
    """Write manifest rows (dicts) as CSV, columns in first-seen order."""
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_case(
    folder: Path,
    image: sitk.Image,
    mask: sitk.Image,
    *rows: Row,
    image_file: str = "i.nii.gz",
    mask_file: str = "m.nii.gz",
    manifest: str = "manifest.csv",
) -> Path:
    """Write ``image`` and ``mask`` into ``folder`` and a manifest of them; return its path.

    Each of ``rows`` updates a CT ``tumor`` row of patient P1 on the two files (one such row
    when no ``rows`` are given).
    """
    sitk.WriteImage(image, str(folder / image_file))
    sitk.WriteImage(mask, str(folder / mask_file))
    case = {
        "patient_id": "P1",
        "modality": "CT",
        "mask": "tumor",
        "image": image_file,
        "mask_path": mask_file,
    }
    return write_manifest(folder / manifest, [{**case, **row} for row in rows or ({},)])


def read_rows(path: Path) -> list[Row]:
    """The manifest's rows as dicts of strings."""
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def not_csv_files(folder: Path, header: list[str], rows: list[list[str]]) -> dict[str, tuple]:
    """The same table saved the ways spreadsheets and scripts get wrong, each with the words
    the refusal must say: ``{case: (path, words)}``."""
    import gzip
    import zipfile

    def lines(delimiter: str) -> str:
        return "".join(delimiter.join(cells) + "\n" for cells in [header, *rows])

    files: dict[str, tuple[Path, str]] = {}

    def add(case: str, name: str, data: bytes, words: str) -> None:
        path = folder / name
        path.write_bytes(data)
        files[case] = (path, words)

    add("semicolons", "semicolons.csv", lines(";").encode(), "delimited by semicolons, not commas")
    add("tabs", "tabs.csv", lines("\t").encode(), "delimited by tabs, not commas")
    add("utf-16", "unicode.csv", lines(",").encode("utf-16"), "UTF-16 text")
    add("latin-1", "latin.csv", (lines(",") + "Zoë,é\n").encode("latin-1"), "not UTF-8 text")
    add("parquet named csv", "table.csv", b"PAR1" + bytes(16), "a Parquet file, not a CSV")
    add("gzip named csv", "packed.csv", gzip.compress(lines(",").encode()), "name it .csv.gz")
    with zipfile.ZipFile(folder / "book.xlsx", "w") as book:  # what an .xlsx is: a zip
        book.writestr("[Content_Types].xml", "<Types/>")
        book.writestr("xl/workbook.xml", "<workbook/>")
    files["xlsx"] = (folder / "book.xlsx", "an Excel workbook (.xlsx)")
    add("xls", "old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "Excel 97-2003")
    twice = lines(",").replace(header[-1], header[1], 1).encode()  # a column named twice
    add("a column twice", "twice.csv", twice, f"the header names a column twice ({header[1]!r}")
    return files
