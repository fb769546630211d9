"""Optional MLflow tracking of a cross-validation report (``radfusion cv --mlflow``).

One MLflow run per report: the run configuration, seed, data counts and input hashes as
parameters; every model's metric mean and 95 % CI bounds as metrics
(``<model>.<metric>.mean|ci_low|ci_high``); the whole report folder (``report.json``,
``report.html``, ``predictions.csv``, ``figures/``) as artifacts under ``report/``. Needs the
``mlflow`` extra (``pip install -e '.[mlflow]'`` in a checkout, or ``pip install
mlflow-skinny``: MLflow's client without its server).

The default tracking URI is a local file store, ``./mlruns`` (the layout AutoRadiomics and
MLflow's own examples use). MLflow >= 3.7 keeps that backend in maintenance mode and refuses
it unless ``MLFLOW_ALLOW_FILE_STORE`` is set; for a ``file:`` URI this module sets it for the
duration of the call only. Any other URI (``sqlite:///mlflow.db``, ``http://server:5000``)
goes to MLflow unchanged.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_EXPERIMENT",
    "check_mlflow",
    "default_tracking_uri",
    "log_report",
    "report_metrics",
    "report_params",
]

DEFAULT_EXPERIMENT = "radfusion"
_INSTALL = (
    "MLflow tracking needs the mlflow extra: pip install 'mlflow-skinny>=2.10' (or, in a "
    "radfusion checkout, pip install -e '.[mlflow]')"
)
#: Characters MLflow accepts in metric and parameter names; anything else becomes "_".
_NAME = re.compile(r"[^A-Za-z0-9_\-. /:]")
#: Config entries left out of the parameters (long lists; they are in report.json).
_SKIP = {"tuning.chosen", "skipped_models"}


def check_mlflow() -> None:
    """Raise ImportError with the install command when mlflow is not installed."""
    if importlib.util.find_spec("mlflow") is None:
        raise ImportError(_INSTALL)


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else the file store ``./mlruns`` (absolute URI)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or Path("mlruns").resolve().as_uri()


def _flatten(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if prefix in _SKIP:
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, (list, tuple)):
        yield prefix, ",".join(str(v) for v in value)
    else:
        yield prefix, value


def report_params(report: Mapping[str, Any]) -> dict[str, str]:
    """The run's parameters: configuration, seed, task, data counts, versions, input hashes."""
    params: dict[str, Any] = {
        "seed": report.get("seed"),
        "task": report["task"],
        "schema_version": report.get("schema_version"),
        "radfusion_version": report.get("radfusion_version"),
    }
    params.update(_flatten(report.get("config") or {}, "config"))
    data = report.get("data") or {}
    params.update({f"data.{k}": v for k, v in data.items() if isinstance(v, (int, float, str))})
    for name, info in (report.get("inputs") or {}).items():
        params[f"inputs.{name}.sha256"] = info.get("sha256")
    return {_NAME.sub("_", key): str(value) for key, value in params.items() if value is not None}


def report_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """``{"<model>.<metric>.<mean|ci_low|ci_high>": value}`` of every model (nulls left out)."""
    metrics = {}
    for model, content in (report.get("models") or {}).items():
        for metric, values in (content.get("metrics") or {}).items():
            if not isinstance(values, Mapping):
                continue
            for stat in ("mean", "ci_low", "ci_high"):
                value = values.get(stat)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    metrics[_NAME.sub("_", f"{model}.{metric}.{stat}")] = float(value)
    return metrics


@contextmanager
def _file_store_allowed(uri: str) -> Iterator[None]:
    key = "MLFLOW_ALLOW_FILE_STORE"
    before = os.environ.get(key)
    if uri.startswith("file:") or "://" not in uri:
        os.environ[key] = "true"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def log_report(
    report: Mapping[str, Any],
    out_dir: str | Path,
    *,
    tracking_uri: str | None = None,
    experiment: str = DEFAULT_EXPERIMENT,
    run_name: str | None = None,
) -> str:
    """Log a written report to MLflow as one run; return the run id.

    Parameters
    ----------
    report : mapping
        The report (content of ``report.json``).
    out_dir : path
        The report folder, logged whole as artifacts under ``report/``.
    tracking_uri : str, optional
        Where to log; by default :func:`default_tracking_uri`.
    experiment : str, default="radfusion"
        MLflow experiment name (created when absent).
    run_name : str, optional
        Run name; by default the report folder's name.
    """
    check_mlflow()
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    uri = tracking_uri or default_tracking_uri()
    out_dir = Path(out_dir)
    with _file_store_allowed(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(
            experiment_id,
            run_name=run_name or out_dir.resolve().name,
            tags={"radfusion.report": str(out_dir.resolve())},
        )
        run_id = run.info.run_id
        try:
            now = int(time.time() * 1000)
            params = [Param(k, v) for k, v in report_params(report).items()]
            metrics = [Metric(k, v, now, 0) for k, v in report_metrics(report).items()]
            for start in range(0, len(params), 100):  # MLflow's batch limits
                client.log_batch(run_id, params=params[start : start + 100])
            for start in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[start : start + 1000])
            client.log_artifacts(run_id, str(out_dir), artifact_path="report")
        except BaseException:
            client.set_terminated(run_id, status="FAILED")
            raise
        client.set_terminated(run_id, status="FINISHED")
    return run_id
