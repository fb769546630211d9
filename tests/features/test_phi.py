"""No PHI in outputs: fake patient-identifying DICOM values, and the dates and times of service,
never reach the feature table, its sidecars, the cache, the check table, the report or the
printed and logged messages."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from radfusion.pipeline.cli import app
from tests.features.conftest import write_manifest
from tests.features.dicom_data import (
    PHI,
    ct_volume,
    tumour,
    write_rtstruct,
    write_seg,
    write_series,
)

FIRST_ORDER = """\
imageType: {Original: {}}
featureClass: {firstorder: [Mean, Maximum, Median, Energy, Variance]}
setting: {binWidth: %s}
"""


#: The date and times of service of every synthetic object (distinctive, so that a grep finds
#: nothing by chance): the scan at 14:15:23.25 and the injection one hour before.
DATE, TIME, INJECTION, LATE = "19970813", "141523.25", "131523", "161523"


def _needles() -> list[bytes]:
    """Every fake value, each part of the person name, the birth date in ISO form too, and
    the date and times of service as DICOM writes them and as Python prints them."""
    values = set(PHI.values()) | set(PHI["PatientName"].split("^"))
    values |= set(PHI["ReferringPhysicianName"].split("^"))
    for date in (PHI["PatientBirthDate"], DATE):
        values |= {date, f"{date[:4]}-{date[4:6]}-{date[6:]}"}
    for time in (TIME[:6], INJECTION, LATE):
        values |= {time, f"{time[:2]}:{time[2:4]}:{time[4:6]}"}
    return sorted(v.encode() for v in values)


def _hits(data: bytes) -> list[str]:
    lowered = data.lower()
    return [n.decode() for n in _needles() if n.lower() in lowered]


def _cohort(folder: Path, patients: int = 8) -> Path:
    """CT with an RTSTRUCT and a SEG, PET (SUV) with an RTSTRUCT, per patient; every DICOM
    object carries the fake PHI and the dates of service. The last patient's PET has no
    weight, the one before's scan starts before its injection: two failed cases, whose
    messages must state the interval, not the dates."""
    rows = []
    rng = np.random.default_rng(0)
    for index in range(patients):
        patient = f"P{index:02d}"
        phi = {**PHI, "PatientID": f"{PHI['PatientID']}{index}"}
        when = {"date": DATE, "time": TIME}
        ct = write_series(folder / patient / "ct", ct_volume(seed=index), phi=phi, **when)
        inside = tumour()
        write_rtstruct(folder / patient / "rs.dcm", ct, {"GTV": inside, "Body": ~inside})
        write_seg(folder / patient / "seg.dcm", ct, {"Tumour": inside})
        weight = None if index == patients - 1 else "70"
        drug = {"RadiopharmaceuticalStartDateTime": f"{DATE}{INJECTION}"}
        if index == patients - 2:  # injected 2 h after the scan: a wrong date or time
            drug = {"RadiopharmaceuticalStartDateTime": f"{DATE}{LATE}"}
        activity = rng.integers(1000, 9000, (8, 16, 16)) + 4000.0 * inside * (index % 2)
        pet = write_series(
            folder / patient / "pet",
            activity,
            modality="PT",
            phi=phi,
            pet={"PatientWeight": weight, "radiopharmaceutical": drug},
            **when,
        )
        write_rtstruct(folder / patient / "pet_rs.dcm", pet, {"GTV": inside})
        base = {"patient_id": patient, "modality": "CT", "image": f"{patient}/ct"}
        rows += [
            {**base, "mask": "rt", "mask_path": f"{patient}/rs.dcm", "roi": "gtv"},
            {**base, "mask": "seg", "mask_path": f"{patient}/seg.dcm", "roi": "Tumour"},
            {
                **base,
                "modality": "PET",
                "image": f"{patient}/pet",
                "mask": "rt",
                "mask_path": f"{patient}/pet_rs.dcm",
                "roi": "GTV",
            },
        ]
    (folder / "biomarkers.csv").write_text(
        "patient_id,outcome,age\n"
        + "".join(f"P{i:02d},{i % 2},{50 + i}\n" for i in range(patients)),
        encoding="utf-8",
    )
    params = folder / "params"
    params.mkdir()
    (params / "CT.yaml").write_text(FIRST_ORDER % 10, encoding="utf-8")
    (params / "PET.yaml").write_text(
        FIRST_ORDER % 0.25 + "radfusion: {suv: bw}\n", encoding="utf-8"
    )
    return write_manifest(folder / "manifest.csv", rows)


def test_fake_phi_reaches_no_output_nor_message(tmp_path, caplog):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    manifest = _cohort(inputs)
    dicom_files = [p for p in inputs.rglob("*.dcm")]
    assert all(_hits(p.read_bytes()) for p in dicom_files)  # the grep does find PHI
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    printed = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        commands = [
            (["check", str(manifest), "--jobs", "1", "--out", str(out / "check.csv")], 0),
            (
                ["extract", str(manifest), "--out", str(out / "features.parquet"),
                 "--params", str(inputs / "params"), "--cache", str(out / "cache"),
                 "--jobs", "1"],
                1,
            ),
            (
                ["cv", str(out / "features.parquet"), "--biomarkers",
                 str(inputs / "biomarkers.csv"), "--label", "outcome", "--out",
                 str(out / "report"), "--strategy", "early", "--folds", "2", "--repeats", "1",
                 "--jobs", "1"],
                0,
            ),
        ]  # fmt: skip
        for args, code in commands:
            result = runner.invoke(app, args)
            printed.append(result.output)
            assert result.exit_code == code, result.output
    assert "rt" in printed[0] and "GTV; Body" in printed[0]  # check lists the ROI names
    assert "missing tag PatientWeight (0010,1030)" in printed[1]  # the failed PET cases
    assert "the scan starts 2 h 00 min before the injection" in printed[1]
    outputs = sorted(p for p in out.rglob("*") if p.is_file())
    names = {p.name for p in outputs}
    assert {"features.parquet", "check.csv", "report.json", "report.html"} <= names
    assert len([p for p in outputs if p.suffix == ".json" and "cache" in p.parts]) == 3 * 8 - 2
    hits = {str(p.relative_to(out)): _hits(p.read_bytes()) for p in outputs}
    hits["printed"] = _hits("\n".join(printed).encode())
    hits["logs"] = _hits(caplog.text.encode())
    hits["warnings"] = _hits("\n".join(str(w.message) for w in caught).encode())
    assert {where: found for where, found in hits.items() if found} == {}
