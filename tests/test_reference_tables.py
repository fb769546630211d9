"""`radfusion cv` on real tables: scikit-learn's breast-cancer data and a radMLBench table."""

import json

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from typer.testing import CliRunner

from radfusion.pipeline.cli import app
from radfusion.pipeline.fusion import STRATEGIES
from tests.conftest import shared_data

pytestmark = pytest.mark.slow

runner = CliRunner()


SMALL_RUN = ("--folds", "3", "--repeats", "1", "--jobs", "2")


def _cv_report(path, out, *options: str) -> dict:
    """``radfusion cv`` of a table at :data:`SMALL_RUN`'s size; its report."""
    result = runner.invoke(app, ["cv", str(path), "--out", str(out), *SMALL_RUN, *options])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def test_breast_cancer_single_group_stacking(tmp_path):
    data = load_breast_cancer(as_frame=True)
    table = data.data.copy()
    table.columns = [c.replace(" ", "_") for c in table.columns]
    table.insert(0, "patient_id", [f"B{i:03d}" for i in range(len(table))])
    table["malignant"] = 1 - data.target  # 0 = malignant in scikit-learn's coding
    path = tmp_path / "breast_cancer.csv"
    table.to_csv(path, index=False)
    report = _cv_report(path, tmp_path / "r", "--label", "malignant", "--strategy", "stacking")
    assert report["data"]["groups"] == {"all": 30}
    assert report["models"]["stacking"]["metrics"]["roc_auc"]["mean"] >= 0.97


def test_radmlbench_groups_inferred_and_all_strategies_run(tmp_path):
    path = shared_data("radmlbench", "datasets", "Head-Neck-PET-CT.gz")
    every = [option for name in STRATEGIES for option in ("--strategy", name)]
    report = _cv_report(path, tmp_path / "r", "--label", "Target", "--learners", "lr", *every)
    assert set(report["data"]["groups"]) == {"CT", "PET"}
    # volume: the ROI-volume baseline (the tables carry pyradiomics shape volumes)
    assert set(report["models"]) == {
        "CT", "PET", "volume", "early", "late", "stacking", "pooled", "shared"
    }  # fmt: skip
    n = len(pd.read_csv(path, usecols=["ID"]))
    assert report["data"]["n_patients"] == n
