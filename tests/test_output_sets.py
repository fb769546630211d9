"""Outputs (issue 14): locations checked before any work; output sets land as one set.

The kill proof: a writer that overwrites an existing set runs in a forked child, which
SIGKILLs itself just before its k-th file-system step (every rename, removal and finished
temporary), for k = 1, 2, ... until a run completes. After each kill the readers we ship
settle the set, and the folder's visible bytes must equal the complete old set or the
complete new set.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from radfusion.features.files import write_set
from radfusion.features.runner import ExtractionResult
from radfusion.features.synthetic import make_cohort
from radfusion.features.table import FeatureRecord, extraction_journal, to_wide, write_extraction
from radfusion.pipeline.cli import EXIT_BAD_INPUT, app
from radfusion.pipeline.report import (
    REPORT_FILES,
    build_cv_report,
    settle_report,
    write_report,
)
from radfusion.pipeline.report._figures import (
    FIGURES,
)
from radfusion.pipeline.report._files import (
    REPORT_JOURNAL,
    report_members,
)
from radfusion.pipeline.validation import cross_validate_models, summarize

runner = CliRunner()
#: The steps a kill is injected before: every rename or removal, and every finished temporary
#: (files.py chmods each temporary once it is complete).
STEPS = ("replace", "rename", "unlink", "remove", "chmod")


# --------------------------------------------------------------------------------------------
# Output locations are checked before any work
# --------------------------------------------------------------------------------------------
#: command line (OUT: the output) → the function that would start the work.
COMMANDS = {
    "extract": (
        ["extract", "manifest.csv", "--out", "OUT"],
        "radfusion.features.runner.extract_cohort",
    ),
    "check": (["check", "manifest.csv", "--out", "OUT"], "radfusion.features.check.check_cohort"),
    "robustness": (
        ["robustness", "manifest.csv", "--out", "OUT"],
        "radfusion.features.robustness.robustness_icc",
    ),
    "cv": (
        ["cv", "f.parquet", "--label", "y", "--out", "OUT"],
        "radfusion.pipeline.experiment.run_cv",
    ),
    "train": (
        ["train", "f.parquet", "--label", "y", "--out", "OUT"],
        "radfusion.pipeline.persistence.train_model",
    ),
    "predict": (
        ["predict", "m.skops", "f.parquet", "--out", "OUT"],
        "radfusion.pipeline.persistence.load_model",
    ),
    "validate": (
        ["validate", "m.skops", "f.parquet", "--out", "OUT"],
        "radfusion.pipeline.external.validate_model",
    ),
    "synth": (["synth", "--out", "OUT"], "radfusion.features.synthetic.make_cohort"),
    "demo": (["demo", "--out", "OUT"], "radfusion.features.synthetic.make_cohort"),
}
FOLDER_OUTPUTS = {"cv", "validate", "synth", "demo"}


def _refused(args, tmp_path, monkeypatch, work, out):
    def no_work(*args, **kwargs):
        raise AssertionError("work started before the output was checked")

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(work, no_work)
    result = runner.invoke(app, [str(out) if a == "OUT" else a for a in args])
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith(f"error: Cannot write {out}: "), errors
    return errors[0]


@pytest.mark.parametrize("command", COMMANDS)
def test_output_under_a_regular_file_is_refused_before_any_work(command, tmp_path, monkeypatch):
    args, work = COMMANDS[command]
    (tmp_path / "a_file").write_text("x")
    name = "report" if command in FOLDER_OUTPUTS else "out.csv"
    line = _refused(args, tmp_path, monkeypatch, work, Path("a_file") / name)
    assert line.endswith("a_file is not a folder")


@pytest.mark.parametrize("command", COMMANDS)
def test_read_only_output_folder_is_refused_before_any_work(command, tmp_path, monkeypatch):
    # We run as root, who may write anywhere: os.access is made to deny the folder instead.
    args, work = COMMANDS[command]
    locked, real_access = tmp_path / "locked", os.access
    locked.mkdir()
    monkeypatch.setattr(
        os,
        "access",
        lambda p, mode, **kw: Path(p).resolve() != locked.resolve() and real_access(p, mode),
    )
    name = "report" if command in FOLDER_OUTPUTS else "out.csv"
    line = _refused(args, tmp_path, monkeypatch, work, Path("locked") / name)
    assert line.endswith("folder locked is not writable")


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - FOLDER_OUTPUTS - {"train"}))
def test_unsupported_table_extension_is_refused_before_any_work(command, tmp_path, monkeypatch):
    args, work = COMMANDS[command]
    line = _refused(args, tmp_path, monkeypatch, work, Path("features.xlsx"))
    assert line.endswith("unsupported file type (use .parquet, .csv.gz, .csv)")


def test_extract_to_xlsx_computes_no_case(tmp_path):
    """The reported bug, unpatched: a real cohort, a cache, and nothing extracted."""
    cohort = make_cohort(tmp_path / "cohort", n_patients=2, seed=0)
    result = runner.invoke(
        app,
        [
            "extract",
            str(cohort.manifest),
            "--out",
            str(tmp_path / "features.xlsx"),
            "--cache",
            str(tmp_path / "cache"),
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == EXIT_BAD_INPUT, result.output
    assert f"error: Cannot write {tmp_path / 'features.xlsx'}: unsupported" in result.output
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.json"))


# --------------------------------------------------------------------------------------------
# Kill at every step
# --------------------------------------------------------------------------------------------
def _run_killed_at(k: int, action) -> bool:
    """Run ``action`` in a forked child that SIGKILLs itself before its k-th step.

    Returns True when the child was killed, False when ``action`` finished first.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            count = [0]
            for name in STEPS:
                real = getattr(os, name)

                def step(*args, _real=real, **kwargs):
                    count[0] += 1
                    if count[0] == k:
                        os.kill(os.getpid(), signal.SIGKILL)
                    return _real(*args, **kwargs)

                setattr(os, name, step)
            action()
        except BaseException:
            os._exit(3)
        os._exit(0)
    deadline = time.monotonic() + 60
    while (done := os.waitpid(pid, os.WNOHANG))[0] == 0:
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the writer hung (kill point {k})")
        time.sleep(0.005)
    status = done[1]
    if os.WIFSIGNALED(status):
        assert os.WTERMSIG(status) == signal.SIGKILL
        return True
    assert os.WEXITSTATUS(status) == 0, f"the writer failed without being killed (k={k})"
    return False


def _visible(folder: Path) -> dict[str, bytes]:
    """What a reader sees: every non-hidden file below ``folder``, name → bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def _prove(folder: Path, write_old, write_new, read) -> int:
    """Kill ``write_new`` over the old set at every step; return the number of kill points."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "user notes.txt").write_text("the user's own file")
    write_old()
    old = _visible(folder)
    write_new()
    new = _visible(folder)
    assert old != new and old["user notes.txt"] == new["user notes.txt"]
    k = 0
    while True:
        k += 1
        for entry in folder.iterdir():  # the old set, freshly written each time
            if entry.name != "user notes.txt":
                shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
        write_old()
        assert _visible(folder) == old
        killed = _run_killed_at(k, write_new)
        read()  # the reader we ship settles the set first
        seen = _visible(folder)
        assert seen in (old, new), f"kill before step {k}: a mixed set"
        assert not [p for p in folder.rglob("*.journal")], f"kill before step {k}: journal left"
        if not killed:
            assert seen == new
            break
        if [p for p in folder.rglob(".*")]:  # temporaries of a kill before the journal existed
            assert seen == old
            write_new()  # the next run completes and leaves nothing hidden behind
            assert _visible(folder) == new
            assert not [p for p in folder.rglob(".*")], f"kill before step {k}: leftovers"
        assert k < 500
    return k - 1


def _extraction(n_patients: int, seed: int, failed: bool) -> ExtractionResult:
    rng = np.random.default_rng(seed)
    ids = [f"{i:03d}" for i in range(1, n_patients + 1)]
    records = [
        FeatureRecord(pid, "CT", "tumor", {"original_firstorder_Mean": float(v)})
        for pid, v in zip(ids, rng.normal(size=n_patients), strict=True)
    ]
    diagnostics = pd.DataFrame(
        {
            "patient_id": ids,
            "modality": "CT",
            "mask": "tumor",
            "diagnostics_Versions_PyRadiomics": f"v{seed}",
        }
    )
    failures = pd.DataFrame(
        {
            "patient_id": ["099"] if failed else [],
            "modality": "CT",
            "mask": "tumor",
            "file": "m.nii.gz",
            "error": "bad mask",
        }
    )
    return ExtractionResult(to_wide(records), diagnostics, failures)


@pytest.mark.parametrize(
    ("name", "old_failed", "new_failed"),
    [
        ("features.parquet", True, False),  # the new run removes the old failures.csv
        ("features.csv.gz", False, True),  # the new run adds one
    ],
)
def test_killed_extraction_leaves_the_old_or_the_new_set(tmp_path, name, old_failed, new_failed):
    from radfusion.pipeline.dataset import read_table
    from radfusion.pipeline.report import read_extraction

    folder = tmp_path / "out"
    table = folder / name
    old, new = _extraction(3, 0, old_failed), _extraction(4, 1, new_failed)
    counter = [0]  # alternate the two readers of the set

    def read():
        counter[0] += 1
        read_table(table) if counter[0] % 2 else read_extraction(table)

    kills = _prove(
        folder, lambda: write_extraction(old, table), lambda: write_extraction(new, table), read
    )
    # 2 or 3 finished temporaries + journal (temporary, rename) + 3 renames/removals + journal
    assert kills >= 8
    assert not extraction_journal(table).exists()


def _report(task: str):
    """A small real CV result and its report, for a binary or multiclass target."""
    rng = np.random.default_rng(5)
    X = pd.DataFrame(
        rng.normal(size=(36, 2)),
        columns=["CT__tumor__a", "age"],
        index=[f"{i:03d}" for i in range(36)],
    )
    signal_ = X["CT__tumor__a"].to_numpy() + 0.5 * rng.normal(size=36)
    y = (signal_ > 0).astype(int) if task == "binary" else np.digitize(signal_, [-0.5, 0.5])
    models = {"lr": LogisticRegression(), "weak": LogisticRegression(C=0.01)}
    result = cross_validate_models(models, X, y, folds=3, repeats=1, seed=0, task=task)
    predictions = result.predictions
    summary = summarize(predictions, task=task, n_bootstrap=50, seed=0)
    groups = {"CT__tumor": ["CT__tumor__a"], "clinical": ["age"]}
    inputs = {"features": __file__}
    config = {"folds": 3, "repeats": 1, "learner": "lr", "task": task}
    report = build_cv_report(
        result, summary, config=config, seed=0, inputs=inputs, groups=groups, n_bootstrap=50
    )
    return report, predictions


@pytest.fixture(scope="module")
def reports():
    return {task: _report(task) for task in ("multiclass", "binary")}


def test_write_report_over_another_report_leaves_exactly_the_new_set(reports, tmp_path):
    (multi, multi_predictions), (binary, predictions) = reports["multiclass"], reports["binary"]
    write_report(multi, multi_predictions, tmp_path, durations=lambda: {"cv_seconds": 1.0})
    old_figures = {p.name for p in (tmp_path / "figures").iterdir()}
    assert (tmp_path / "run.json").is_file()
    write_report(binary, predictions, tmp_path)  # no durations: the old run.json goes too
    expected = {f"figures/{name}.{kind}" for name in FIGURES for kind in ("svg", "png")}
    assert set(_visible(tmp_path)) == expected | set(REPORT_FILES.values())
    assert old_figures - {p.name for p in (tmp_path / "figures").iterdir()}  # stale ones gone


def test_write_report_leaves_other_files_alone(reports, tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "my_plot.png").write_bytes(b"the user's")
    (tmp_path / "notes.txt").write_text("the user's")
    members = report_members(*reports["binary"], tmp_path)
    assert tmp_path / "figures" / "my_plot.png" not in members
    write_set(tmp_path / REPORT_JOURNAL, members)
    assert (tmp_path / "figures" / "my_plot.png").read_bytes() == b"the user's"
    assert (tmp_path / "notes.txt").read_text() == "the user's"


def test_killed_report_leaves_the_old_or_the_new_set(reports, tmp_path):
    folder = tmp_path / "report"
    (multi, multi_predictions), (binary, predictions) = reports["multiclass"], reports["binary"]
    folder.mkdir()
    (folder / "figures").mkdir()
    # Rendered once (that is the slow part; every kill point comes after it); the members are
    # exactly what write_report commits, stale multiclass figures and run.json included.
    old = report_members(multi, multi_predictions, folder, durations=lambda: {"cv_seconds": 1.0})
    write_set(folder / REPORT_JOURNAL, old)
    new = report_members(binary, predictions, folder, durations=lambda: {"cv_seconds": 2.0})
    assert any(content is None for content in new.values())  # old figures to remove

    def write(members):
        def run():
            (folder / "figures").mkdir(parents=True, exist_ok=True)
            write_set(folder / REPORT_JOURNAL, members)

        return run

    kills = _prove(folder, write(old), write(new), lambda: settle_report(folder))
    assert kills >= 2 * sum(content is not None for content in new.values()) + 3
