"""The quick-start notebook runs end to end (nbclient, small cohort) and writes the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.test_import_identity import plant_decoys

nbformat = pytest.importorskip("nbformat", reason="nbformat is in the dev extra")
nbclient = pytest.importorskip("nbclient", reason="nbclient is in the dev extra")
pytest.importorskip("ipykernel", reason="ipykernel is in the dev extra")

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
SMALL = """# Parameters (overridden by tests/test_notebook.py)
N_PATIENTS = 24
FOLDS = 3
REPEATS = 1
SEED = 0
STACKING_LEARNERS = ("lr",)
N_BOOTSTRAP = 100
N_JOBS = 2
WORKDIR = "work"
"""


def test_notebook_is_stored_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code)
    assert sum("parameters" in cell.metadata.get("tags", []) for cell in code) == 1


def test_quickstart_notebook_runs(tmp_path):
    # The kernel runs in a folder that also holds the user's own pipeline.py and features/.
    plant_decoys(tmp_path)
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    names = {
        line.split("=")[0].strip()
        for line in parameters.source.splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert names == {
        line.split("=")[0].strip()
        for line in SMALL.splitlines()
        if "=" in line and not line.startswith("#")
    }
    parameters.source = SMALL
    client = nbclient.NotebookClient(
        notebook,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert not errors
    report_dir = tmp_path / "work" / "report"
    report = json.loads((report_dir / "report.json").read_text(encoding="utf-8"))
    assert list(report["models"]) == [
        "CT__peritumoral",
        "CT__tumor",
        "MR__peritumoral",
        "MR__tumor",
        "clinical",
        "volume",
        "early",
        "late",
        "pooled",
        "shared",
    ]
    assert report["config"]["folds"] == 3 and report["config"]["repeats"] == 1
    assert report["primary"]["model"] == "pooled" and report["config"]["strategies"] == [
        "single",
        "early",
        "late",
        "pooled",
        "shared",
    ]
    assert report["methods"]["extraction"]["source"] == "features.diagnostics.csv"
    assert (report_dir / "report.html").is_file()
    images = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if "image/png" in o.get("data", {})
    ]
    assert images, "the ROC plot was not drawn"
    assert str((report_dir / "report.html").resolve()) in "".join(
        o.get("text", "") for o in notebook.cells[-1].outputs
    )
    shutil.rmtree(tmp_path / "work" / "cohort")  # keep the temporary folder small
