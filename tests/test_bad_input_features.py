"""Bad-input corpus, features side: one broken case among good ones, through the CLI.

Each case runs ``radfusion check`` / ``extract`` / ``robustness`` on a tiny synthetic cohort
(two good patients, P001 and P002, and one broken one, P003) and asserts the exit code, that
the message names the patient, modality and file, that no traceback is printed, and that the
good patients' feature values equal those of a run without the broken patient.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import yaml
from typer.testing import CliRunner

from radfusion.features.params import SHIPPED_DIR
from radfusion.pipeline.cli import EXIT_BAD_INPUT, EXIT_CASES_FAILED, app

GOOD = ("P001", "P002")
BAD = "P003"
SIZE = 20


def _voxels(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A float32 20³ image with a brighter noisy ball and the ball's mask (z, y, x)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices((SIZE, SIZE, SIZE))
    inside = (x - 9.5) ** 2 + (y - 9.5) ** 2 + (z - 9.5) ** 2 <= 5.5**2
    image = rng.normal(100.0, 10.0, inside.shape) + 40.0 * inside
    return image.astype(np.float32), inside.astype(np.uint8)


def _write(array: np.ndarray, path: Path) -> None:
    if array.ndim == 4:  # a series of 3-D volumes (GetImageFromArray would make vectors)
        image = sitk.JoinSeries([sitk.GetImageFromArray(volume) for volume in array])
    else:
        image = sitk.GetImageFromArray(array)
    image.SetSpacing((1.0,) * array.ndim)
    sitk.WriteImage(image, str(path))


class Cohort:
    """A cohort folder: images, masks, manifest; the broken case is made by the test."""

    def __init__(self, folder: Path, modality: str = "MR") -> None:
        self.folder, self.modality = folder, modality
        folder.mkdir(parents=True, exist_ok=True)
        self.rows = []
        for seed, patient in enumerate((*GOOD, BAD)):
            image, mask = _voxels(seed)
            self.add(patient, image, mask)

    def add(
        self, patient: str, image: np.ndarray, mask: np.ndarray, suffix: str = ".nii.gz"
    ) -> None:
        self.rows = [r for r in self.rows if r["patient_id"] != patient]
        image_path = self.folder / f"{patient}_{self.modality}{suffix}"
        mask_path = self.folder / f"{patient}_{self.modality}_mask.nii.gz"
        for old in self.folder.glob(f"{patient}_{self.modality}.*"):
            old.unlink()
        _write(image, image_path)
        _write(mask, mask_path)
        self.rows.append(
            {
                "patient_id": patient,
                "modality": self.modality,
                "mask": "tumor",
                "image": image_path.name,
                "mask_path": mask_path.name,
                "label": 1,
            }
        )

    def image(self, patient: str) -> str:
        row = next(r for r in self.rows if r["patient_id"] == patient)
        return str(self.folder / row["image"])

    def manifest(self, rows: list[dict] | None = None, name: str = "manifest.csv") -> Path:
        rows = self.rows if rows is None else rows
        path = self.folder / name
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return path


runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    """Run the CLI; return (exit code, everything printed). A traceback fails the test."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{result.output}"
    )
    assert "Traceback" not in result.output
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Callable[[str], pd.DataFrame]:
    """The good patients' features, extracted without the broken one (per modality name)."""
    tables: dict[str, pd.DataFrame] = {}

    def get(modality: str = "MR") -> pd.DataFrame:
        if modality not in tables:
            cohort = Cohort(tmp_path_factory.mktemp(f"reference_{modality}"), modality)
            out = cohort.folder / "features.parquet"
            good = [r for r in cohort.rows if r["patient_id"] in GOOD]
            code, output = run("extract", cohort.manifest(good), "--out", out, "-j", "1")
            assert code == 0, output
            tables[modality] = pd.read_parquet(out).set_index("patient_id")
        return tables[modality]

    return get


def assert_good_unchanged(table: Path, expected: pd.DataFrame) -> None:
    got = pd.read_parquet(table).set_index("patient_id")
    assert set(GOOD) <= set(got.index)
    pd.testing.assert_frame_equal(
        got.loc[list(GOOD), expected.columns], expected.loc[list(GOOD)], check_exact=True
    )


def assert_names(output: str, *words: str) -> None:
    for word in words:
        assert word in output, f"{word!r} not in:\n{output}"


def _nan_inside(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    image = image.copy()
    image[np.nonzero(mask)[0][0], np.nonzero(mask)[1][0], np.nonzero(mask)[2][0]] = np.nan
    return image


def _inf_inside(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    image = image.copy()
    image[mask.astype(bool)] = np.where(
        np.arange(mask.sum()) % 7 == 0, np.inf, image[mask.astype(bool)]
    )
    return image


def _nan_background(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    image = image.copy()
    image[:, :, :2] = np.nan  # two slabs of the background, away from the ROI
    return image


NONFINITE = {
    "nan inside the ROI, NIfTI": (_nan_inside, ".nii.gz", "inside the ROI"),
    "nan inside the ROI, NRRD": (_nan_inside, ".nrrd", "inside the ROI"),
    "inf inside the ROI, NIfTI": (_inf_inside, ".nii.gz", "inside the ROI"),
    "inf inside the ROI, NRRD": (_inf_inside, ".nrrd", "inside the ROI"),
    "nan background, NIfTI": (_nan_background, ".nii.gz", "outside the ROI"),
    "nan background, NRRD": (_nan_background, ".nrrd", "outside the ROI"),
}


@pytest.mark.parametrize("name", list(NONFINITE))
def test_nonfinite_voxels_fail_the_case_naming_the_image(tmp_path, reference, name):
    damage, suffix, where = NONFINITE[name]
    cohort = Cohort(tmp_path)
    image, mask = _voxels(2)
    cohort.add(BAD, damage(image, mask), mask, suffix)
    manifest, out = cohort.manifest(), tmp_path / "features.parquet"

    code, output = run("check", manifest, "-j", "1")
    assert code == EXIT_CASES_FAILED
    (line,) = [line for line in output.splitlines() if line.strip().startswith(BAD)]
    assert_names(line, "would fail", "MR", cohort.image(BAD), where)
    assert all("ok" in line for line in output.splitlines() if line.strip().startswith(GOOD))

    code, output = run("extract", manifest, "--out", out, "-j", "1")
    assert code == EXIT_CASES_FAILED
    assert_names(output, f"patient {BAD}, modality MR, mask tumor, file {cohort.image(BAD)}", where)
    failures = pd.read_csv(tmp_path / "features.failures.csv", dtype=str)
    assert failures[["patient_id", "file"]].values.tolist() == [[BAD, cohort.image(BAD)]]
    assert_good_unchanged(out, reference())


@pytest.mark.parametrize("suffix", [".nii.gz", ".nrrd"])
def test_nan_background_opt_in_fills_it_and_records_how_many(tmp_path, reference, suffix):
    cohort = Cohort(tmp_path)
    image, mask = _voxels(2)
    cohort.add(BAD, _nan_background(image, mask), mask, suffix)
    params = tmp_path / "params"
    params.mkdir()
    shipped = yaml.safe_load((SHIPPED_DIR / "mr.yaml").read_text())
    (params / "MR.yaml").write_text(
        yaml.safe_dump({**shipped, "radfusion": {"fill_non_finite": 0}})
    )
    manifest, out = cohort.manifest(), tmp_path / "features.parquet"

    code, output = run("check", manifest, "-j", "1", "--params", params)
    assert code == 0, output
    code, output = run("extract", manifest, "--out", out, "-j", "1", "--params", params)
    assert code == 0, output
    assert_good_unchanged(out, reference())  # the block changes nothing for them
    diagnostics = pd.read_csv(tmp_path / "features.diagnostics.csv", dtype=str)
    filled = diagnostics.set_index("patient_id")["diagnostics_radfusion_non_finite_filled"]
    assert filled[BAD] == str(2 * SIZE * SIZE) and filled[list(GOOD)].isna().all()
    # still refused inside the ROI, even with the option
    cohort.add(BAD, _nan_inside(image, mask), mask, suffix)
    code, output = run("extract", cohort.manifest(), "--out", out, "-j", "1", "--params", params)
    assert code == EXIT_CASES_FAILED
    assert_names(output, f"patient {BAD}, modality MR", cohort.image(BAD), "inside the ROI")


@pytest.mark.parametrize("dimension", [2, 4])
def test_2d_and_4d_images_are_refused_by_check_and_extract(tmp_path, reference, dimension):
    cohort = Cohort(tmp_path)
    image, mask = _voxels(2)
    if dimension == 2:
        image, mask = image[10], mask[10]
    else:
        image = np.stack([image, image])
    cohort.add(BAD, image, mask)
    manifest, out = cohort.manifest(), tmp_path / "features.parquet"

    code, output = run("check", manifest, "-j", "1")
    assert code == EXIT_CASES_FAILED
    (line,) = [line for line in output.splitlines() if line.strip().startswith(BAD)]
    assert_names(line, "would fail", f"{dimension}-D")

    code, output = run("extract", manifest, "--out", out, "-j", "1")
    assert code == EXIT_CASES_FAILED
    assert_names(
        output,
        f"patient {BAD}, modality MR, mask tumor, file {cohort.image(BAD)}",
        f"is {dimension}-D",
    )
    assert_good_unchanged(out, reference())


@pytest.mark.parametrize("command", ["check", "extract"])
def test_duplicate_rows_are_refused_by_check_and_extract_alike(tmp_path, command):
    cohort = Cohort(tmp_path)
    rows = [*cohort.rows, dict(cohort.rows[2])]
    manifest = cohort.manifest(rows)
    args = ["--out", tmp_path / "f.parquet"] if command == "extract" else []
    code, output = run(command, manifest, *args, "-j", "1")
    assert code == EXIT_BAD_INPUT
    assert_names(
        output,
        f"row 4, patient {BAD}, file {manifest}: duplicated case (modality "
        "'MR', mask 'tumor'), first given on row 3",
    )
    assert not (tmp_path / "f.parquet").exists()


@pytest.mark.parametrize("damage", ["values missing", "features removed"])
def test_damaged_cache_entry_is_recomputed_with_a_note(tmp_path, reference, damage):
    cohort = Cohort(tmp_path)
    manifest, out, cache = cohort.manifest(), tmp_path / "features.parquet", tmp_path / "cache"
    code, output = run("extract", manifest, "--out", out, "-j", "1", "--cache", cache)
    assert code == 0, output
    first = pd.read_parquet(out)
    for entry in cache.glob("??/*.json"):  # damage every entry, the broken patient's too
        content = json.loads(entry.read_text(encoding="utf-8"))
        if damage == "values missing":
            del content["features"]
        else:
            content["features"] = dict(list(content["features"].items())[::2])
        entry.write_text(json.dumps(content), encoding="utf-8")

    code, output = run("extract", manifest, "--out", out, "-j", "1", "--cache", cache)
    assert code == 0, output
    for patient in (*GOOD, BAD):
        assert_names(output, f"(patient {patient}, modality MR, mask tumor) ignored")
    assert "0 from the cache" in output
    pd.testing.assert_frame_equal(pd.read_parquet(out), first, check_exact=True)
    assert_good_unchanged(out, reference())


def test_unknown_modality_gets_default_parameters_with_a_note(tmp_path, reference):
    cohort = Cohort(tmp_path, modality="US")
    out = tmp_path / "features.parquet"
    code, output = run("extract", cohort.manifest(), "--out", out, "-j", "1")
    assert code == 0, output
    assert_names(
        output,
        "warning: modality US: no parameters given; the name matches no known kind",
        "using the shipped default.yaml parameters",
    )
    diagnostics = pd.read_csv(tmp_path / "features.diagnostics.csv", dtype=str)
    assert set(diagnostics["params_file"]) == {str(SHIPPED_DIR / "default.yaml")}
    assert_good_unchanged(out, reference("US"))


def test_parameter_file_matching_no_modality_is_named(tmp_path, reference):
    cohort = Cohort(tmp_path)
    params = tmp_path / "params"
    params.mkdir()
    shutil.copy(SHIPPED_DIR / "mr.yaml", params / "MR.yaml")
    shutil.copy(SHIPPED_DIR / "mr.yaml", params / "T2W.yml")  # a typo'd modality name
    out = tmp_path / "features.parquet"
    code, output = run("extract", cohort.manifest(), "--out", out, "-j", "1", "--params", params)
    assert code == 0, output
    assert_names(
        output,
        f"warning: parameter file {params / 'T2W.yml'} matches no modality "
        "of the manifest (MR): ignored",
    )
    diagnostics = pd.read_csv(tmp_path / "features.diagnostics.csv", dtype=str)
    assert set(diagnostics["params_file"]) == {str(params / "MR.yaml")}
    assert_good_unchanged(out, reference())


def test_robustness_names_the_patient_it_leaves_out(tmp_path):
    cohort = Cohort(tmp_path)
    Path(cohort.image(BAD)).write_bytes(b"not an image")
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump({"featureClass": {"shape": ["VoxelVolume"], "firstorder": ["Mean"]}})
    )
    out = tmp_path / "icc.csv"
    code, output = run("robustness", cohort.manifest(), "--out", out, "-j", "1", "--params", params)
    assert code == 0, output
    for version in ("original", "erode", "dilate", "shift_x+1"):
        assert_names(
            output,
            f"robustness: patient {BAD} left out of the ICC of MR__tumor "
            f"features: its {version} version failed (modality MR, mask "
            f"tumor, file {cohort.image(BAD)}: ",
        )
    table = pd.read_csv(out)
    assert (table["n_patients"] == len(GOOD)).all()


@pytest.mark.parametrize("case", ["semicolons", "xlsx", "latin-1"])
@pytest.mark.parametrize("command", ["check", "extract", "robustness"])
def test_a_manifest_saved_as_no_csv_is_named_before_any_work(tmp_path, case, command):
    from tests.features.conftest import not_csv_files

    cohort = Cohort(tmp_path)
    rows = [[str(v) for v in row.values()] for row in cohort.rows]
    path, words = not_csv_files(tmp_path, list(cohort.rows[0]), rows)[case]
    out = tmp_path / "out.csv"
    args = ["--out", out] if command != "check" else []
    code, output = run(command, path, *args, "-j", "1")
    assert code == EXIT_BAD_INPUT
    assert_names(output, f"file {path}: ", words)
    assert not out.exists()


def _output_over_input(cohort: Cohort, case: str) -> tuple[Path, list, str, Path]:
    """(manifest, extra arguments, words of the refusal, the input that must stay as it was)."""
    folder = cohort.folder
    manifest = cohort.manifest()
    series = folder / "series"  # what a DICOM series folder is to the check: a folder
    series.mkdir(exist_ok=True)
    (series / "slice.dcm").write_bytes(b"not read: the run is refused first")
    rows = [{**r, "image": "series"} if r["patient_id"] == BAD else r for r in cohort.rows]
    if case == "manifest":
        return manifest, ["--out", manifest], "it would replace the manifest of this run", manifest
    if case == "params":
        params = folder / "p.csv"
        params.write_text((SHIPPED_DIR / "mr.yaml").read_text())
        return (
            manifest,
            ["--out", params, "--params", params],
            "it would replace the parameters (--params) of this run",
            params,
        )
    if case == "sidecar":  # features.csv writes features.diagnostics.csv beside it
        manifest = cohort.manifest(name="features.diagnostics.csv")
        return (
            manifest,
            ["--out", folder / "features.csv"],
            f"the run also writes {manifest}, which would replace the manifest of this run",
            manifest,
        )
    manifest = cohort.manifest(rows)
    if case == "cache in a series":
        return (
            manifest,
            ["--out", folder / "features.csv", "--cache", series],
            f"the run also writes {series}, which is the image of patient {BAD} (row 3)",
            series / "slice.dcm",
        )
    return (  # a table inside a DICOM series folder changes the series' hash
        manifest,
        ["--out", series / "features.csv"],
        f"it is inside the image of patient {BAD} (row 3) of this run, {series}",
        series / "slice.dcm",
    )


# (command, case): check writes no sidecar and has no cache; the ICC table has no sidecar
OVER_INPUTS = [
    (command, case)
    for command in ("check", "extract", "robustness")
    for case in ("manifest", "params", "sidecar", "cache in a series", "table in a series")
    if (command, case) not in {("check", "sidecar"), ("check", "cache in a series")}
    and (command, case) != ("robustness", "sidecar")
]


@pytest.mark.parametrize(("command", "case"), OVER_INPUTS)
def test_an_output_that_is_an_input_is_refused_before_any_work(tmp_path, case, command):
    """``extract manifest.csv --out manifest.csv`` replaced the manifest with the features."""
    manifest, extra, words, kept = _output_over_input(Cohort(tmp_path), case)
    before = kept.read_bytes()
    code, output = run(command, manifest, *extra, "-j", "1")
    assert code == EXIT_BAD_INPUT, output
    assert_names(output, "Cannot write", words, "; choose another path")
    assert kept.read_bytes() == before
    assert not list(tmp_path.rglob("*.parquet")) and not list(tmp_path.rglob("??/*.json"))


@pytest.mark.parametrize("command", ["extract", "robustness"])
def test_a_cache_that_is_a_file_is_refused_without_a_traceback(tmp_path, command):
    cohort = Cohort(tmp_path)
    manifest = cohort.manifest()
    code, output = run(command, manifest, "--out", tmp_path / "f.csv", "--cache", manifest)
    assert code == EXIT_BAD_INPUT
    assert_names(output, f"Cannot write {manifest}: it is a file, not a folder")


DICOM_PARAMS = """\
imageType: {Original: {}}
featureClass: {shape: [VoxelVolume, MeshVolume], firstorder: [Mean, Maximum], glcm: [Contrast]}
setting: {binWidth: 10}
"""


def _dicom_cohort(folder: Path, damage: str | None = None) -> tuple[Path, Path]:
    """Three patients, each a 16x16x8 CT series with an RTSTRUCT of its tumour; ``damage``
    breaks patient P003's. Returns the manifest and the parameter file."""
    from tests.features.dicom_data import ct_volume, tumour, write_rtstruct, write_series

    rows = []
    for seed, patient in enumerate((*GOOD, BAD)):
        series = write_series(folder / patient / "ct", ct_volume(seed=seed))
        rois = {"GTV": tumour(), "Body": np.ones_like(tumour())}
        write_rtstruct(folder / patient / "rs.dcm", series, rois)
        rows.append(
            {
                "patient_id": patient,
                "modality": "CT",
                "mask": "gtv",
                "image": f"{patient}/ct",
                "mask_path": f"{patient}/rs.dcm",
                "roi": "GTV",
            }
        )
    broken = folder / BAD
    if damage == "missing slice":
        (broken / "ct" / "slice004.dcm").unlink()
    elif damage == "duplicate slice":
        shutil.copy(broken / "ct" / "slice004.dcm", broken / "ct" / "slice004_copy.dcm")
    elif damage == "uneven spacing":
        import pydicom

        dataset = pydicom.dcmread(broken / "ct" / "slice004.dcm")
        dataset.ImagePositionPatient = [*list(dataset.ImagePositionPatient)[:2], 18.7]
        dataset.save_as(broken / "ct" / "slice004.dcm")
    elif damage is not None:
        import pydicom

        dataset = pydicom.dcmread(broken / "rs.dcm")
        if damage == "two ROIs named GTV":
            dataset.StructureSetROISequence[1].ROIName = "GTV"
        else:  # a damaged contour: its last point list value lost
            contour = dataset.ROIContourSequence[0].ContourSequence[3]
            contour.ContourData = list(contour.ContourData)[:-1]
        dataset.save_as(broken / "rs.dcm")
    (folder / "params.yaml").write_text(DICOM_PARAMS)
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, folder / "params.yaml"


DICOM_DAMAGE = {  # the words check and extract must print for patient P003
    "missing slice": (
        "ct",
        "missing slice: the slices are 2 mm apart along the slice axis, but 1 slice is missing "
        "between slice003.dcm at 16 mm and slice005.dcm at 20 mm; read as is, its 7 slices "
        "would be stacked 2.33333 mm apart (volumes +17%). Export the complete series again",
    ),
    "duplicate slice": (
        "ct",
        "duplicate slice: slice004.dcm and slice004_copy.dcm are both at 18 mm along the slice "
        "axis (a slice exported twice); read as is, its 9 slices would be stacked 1.75 mm apart "
        "(volumes -12%). Remove the copies",
    ),
    "uneven spacing": (
        "ct",
        "non-uniform slice spacing: gaps from 1.3 mm to 2.7 mm along the slice axis "
        "(slice004.dcm is at 18.7 mm, ITK would put it at 18 mm); read as is, its 8 slices "
        "would be stacked 2 mm apart. Resample the series to one spacing first",
    ),
    "two ROIs named GTV": ("rs.dcm", "2 ROIs are named 'GTV' (numbers 1, 2 of the file's 2"),
    "damaged contour": (
        "rs.dcm",
        "cannot rasterise RTSTRUCT ROI 'GTV': contour 4 (image slice 3 counting from 0, z = 16 "
        "mm) has a damaged point list: ContourData (3006,0050) holds",
    ),
}


@pytest.fixture(scope="module")
def dicom_reference(tmp_path_factory) -> pd.DataFrame:
    pytest.importorskip("pydicom", reason="DICOM cases need radfusion[dicom]")
    folder = tmp_path_factory.mktemp("dicom_reference")
    manifest, params = _dicom_cohort(folder)
    good = manifest.with_name("good.csv")
    pd.read_csv(manifest, dtype=str).iloc[:2].to_csv(good, index=False)
    out = folder / "features.parquet"
    code, output = run("extract", good, "--out", out, "--params", params, "-j", "1")
    assert code == 0, output
    return pd.read_parquet(out).set_index("patient_id")


@pytest.mark.parametrize("damage", list(DICOM_DAMAGE))
def test_a_broken_dicom_series_or_rtstruct_fails_its_case_naming_the_cause(
    tmp_path, dicom_reference, damage
):
    """Before: the missing and duplicate slice were extracted on ITK's averaged spacing
    (check ok, exit 0, volumes off), the shared name and the damaged contour silently gave
    another ROI."""
    manifest, params = _dicom_cohort(tmp_path, damage)
    where, words = DICOM_DAMAGE[damage]
    file = tmp_path / BAD / where
    code, output = run("check", manifest, "-j", "1", "--params", params)
    assert code == EXIT_CASES_FAILED
    (line,) = [line for line in output.splitlines() if line.strip().startswith(BAD)]
    assert "would fail" in line and words[:60] in line
    assert all(" ok " in f" {line} " for line in output.splitlines() if line.strip()[:4] in GOOD)
    out = tmp_path / "features.parquet"
    code, output = run("extract", manifest, "--out", out, "--params", params, "-j", "1")
    assert code == EXIT_CASES_FAILED
    assert_names(output, f"failed: patient {BAD}, modality CT, mask gtv, file {file}: {words}")
    assert "contour" not in output or "contour" in words  # a missing slice blames no contour
    failures = pd.read_csv(tmp_path / "features.failures.csv", dtype=str)
    assert failures[["patient_id", "file"]].values.tolist() == [[BAD, str(file)]]
    got = pd.read_parquet(out).set_index("patient_id")
    pd.testing.assert_frame_equal(
        got.loc[list(GOOD), dicom_reference.columns], dicom_reference, check_exact=True
    )
