"""``radfusion cv --mlflow``: parameters, metrics and the report folder in a local MLflow store."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from radfusion.pipeline.cli import EXIT_BAD_INPUT, app
from radfusion.pipeline.tracking import check_mlflow, report_metrics, report_params

runner = CliRunner()


def small_table(path: Path, n: int = 40, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    pd.DataFrame(
        {
            "patient_id": [f"P{i:03d}" for i in range(n)],
            "CT__tumor__a": y + rng.normal(size=n),
            "CT__tumor__b": rng.normal(size=n),
            "MR__tumor__c": y + rng.normal(size=n),
            "outcome": np.where(y == 1, "yes", "no"),
        }
    ).to_csv(path, index=False)
    return path


CV = ["--label", "outcome", "--strategy", "single", "--strategy", "late", "--folds", "2"]
CV += ["--repeats", "1", "--no-explain", "-j", "1"]


def test_missing_mlflow_stops_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # find_spec gives None: as if absent
    with pytest.raises(ImportError, match="pip install 'mlflow-skinny"):
        check_mlflow()
    table = small_table(tmp_path / "t.csv")
    result = runner.invoke(app, ["cv", str(table), *CV, "--out", str(tmp_path / "r"), "--mlflow"])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "mlflow-skinny" in result.output
    assert not (tmp_path / "r" / "report.json").exists()  # no CV ran


def test_cv_logs_params_metrics_and_report_to_a_local_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="the mlflow extra is not installed")
    from mlflow.tracking import MlflowClient

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.chdir(tmp_path)  # the default store is ./mlruns
    table = small_table(tmp_path / "t.csv")
    out = tmp_path / "report"
    result = runner.invoke(app, ["cv", str(table), *CV, "--out", str(out), "--mlflow"])
    assert result.exit_code == 0, result.output
    store = (tmp_path / "mlruns").as_uri()
    assert f"in {store}" in result.output
    run_id = result.output.split("mlflow: run ")[1].split()[0]
    assert "MLFLOW_ALLOW_FILE_STORE" not in os.environ  # set for the call only

    client = MlflowClient(tracking_uri=store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # reading back needs it too
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert run.data.params == report_params(report)
    assert run.data.params["config.folds"] == "2"
    assert run.data.params["inputs.features.sha256"] == report["inputs"]["features"]["sha256"]
    metrics = report_metrics(report)
    assert run.data.metrics == pytest.approx(metrics)
    for name, model in report["models"].items():
        assert metrics[f"{name}.roc_auc.mean"] == model["metrics"]["roc_auc"]["mean"]
    files = {f.path for f in client.list_artifacts(run_id, "report")}
    assert {"report/report.json", "report/report.html", "report/predictions.csv"} <= files
    copy = Path(client.download_artifacts(run_id, "report/report.json", str(tmp_path / "dl")))
    assert copy.read_bytes() == (out / "report.json").read_bytes()
