"""The CV report: ``report.json``, a self-contained ``report.html`` and ``predictions.csv``.

``report.json`` depends only on the inputs, the configuration and the seed: no timestamps or
durations (those go to ``run.json``, see :func:`write_run_info`), floats rounded to 6
decimals, fixed key order, so the same inputs and seed give a byte-identical file.

report.json schema (``schema_version`` "1.0")::

    schema_version     "1.0"
    radfusion_version  installed radfusion version, or "unknown"
    config             the run configuration as given (strategies, folds, repeats, learners,
                       label and id columns, command line, ...)
    seed               int, the seed of the splits and of the bootstrap
    data               n_patients, n_positive, n_negative (int);
                       label_mapping {original label (as str): 0 | 1};
                       groups {group name: number of columns}
    inputs             {name: {"path": path as given, "sha256": hex digest of the file}}
    versions           {python, platform, numpy, scipy, pandas, scikit-learn, xgboost,
                        radiomics, SimpleITK, joblib, matplotlib: version string | null}
    ci_method          one sentence on how the confidence intervals were computed
    models             {model: {"metrics": {metric: {"mean", "ci_low", "ci_high"}}}}, in the
                       order the models were given; metrics are roc_auc, accuracy,
                       balanced_accuracy, sensitivity, specificity, precision, f1, brier
                       (threshold 0.5); an undefined value is null
    best               the model with the highest mean roc_auc (first one on a tie)

``predictions.csv`` holds the out-of-fold predictions: ``patient_id, model, repeat, fold,
y_true, proba`` (``repeat``/``fold`` 0-based, ``y_true`` coded as in ``label_mapping``,
``proba`` the probability of class 1).
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import math
import os
import platform
import re
import shlex
import tempfile
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.validation import CI_LEVEL, METRICS, THRESHOLD, roc_curve_points

__all__ = [
    "SCHEMA_VERSION",
    "build_report",
    "file_sha256",
    "package_versions",
    "write_report",
    "write_run_info",
]

SCHEMA_VERSION = "1.0"
DECIMALS = 6
REPORT_FILES = {"json": "report.json", "csv": "predictions.csv", "html": "report.html"}

# Report key -> distribution names to try (the first one installed wins).
_PACKAGES: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "scipy": ("scipy",),
    "pandas": ("pandas",),
    "scikit-learn": ("scikit-learn",),
    "xgboost": ("xgboost", "xgboost-cpu"),
    "radiomics": ("pyradiomics", "pyradiomics-bhklab"),
    "SimpleITK": ("SimpleITK", "simpleitk"),
    "joblib": ("joblib",),
    "matplotlib": ("matplotlib",),
}

METRIC_LABELS = {
    "roc_auc": "ROC AUC",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "precision": "Precision",
    "f1": "F1",
    "brier": "Brier score",
}

CI_METHOD = (
    f"Point estimates are the mean over CV repeats of each metric computed on that repeat's "
    f"pooled out-of-fold predictions; {CI_LEVEL:.0%} confidence intervals are percentile "
    f"bootstrap intervals over patients (resampled with replacement within each class, the "
    f"same resamples for every model, the repeat-averaged metric recomputed per replicate); "
    f"thresholded metrics call a patient positive when the predicted probability is "
    f">= {THRESHOLD}."
)


# --------------------------------------------------------------------------------------------
# report.json
# --------------------------------------------------------------------------------------------
def _version(*distributions: str) -> str | None:
    for name in distributions:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def package_versions() -> dict[str, str | None]:
    """Python, platform and the versions of the packages a result depends on (None: absent)."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    versions.update({key: _version(*names) for key, names in _PACKAGES.items()})
    return versions


def file_sha256(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _jsonable(value: Any) -> Any:
    """Plain JSON values: str keys, lists, Python scalars, floats rounded, NaN/inf -> None."""
    if isinstance(value, Mapping):
        return {str(_jsonable(k)): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [_jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [_jsonable(v) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return round(value, DECIMALS) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def _label_mapping(predictions: pd.DataFrame, config: Mapping[str, Any]) -> dict[str, int]:
    """``{original label: code of y_true}``.

    ``predictions.attrs["label_mapping"]`` maps the labels given to the CV to 0/1 (identity
    when absent, e.g. predictions read back from CSV). When the caller encoded the labels
    itself, ``config["label_mapping"]`` maps the original labels to the labels given to the
    CV; the two are composed.
    """
    mapping = predictions.attrs.get("label_mapping") or {0: 0, 1: 1}
    given = config.get("label_mapping")
    if isinstance(given, Mapping):
        mapping = {label: mapping.get(_jsonable(code), code) for label, code in given.items()}
    return {str(k): int(v) for k, v in mapping.items()}


def build_report(
    predictions: pd.DataFrame,
    summary: Mapping[str, Mapping[str, Mapping[str, float]]],
    *,
    config: Mapping[str, Any],
    seed: int,
    inputs: Mapping[str, str | Path],
    groups: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """Assemble the ``report.json`` content (see the module docstring for the schema).

    Parameters
    ----------
    predictions : DataFrame
        Output of :func:`pipeline.validation.cross_validate_models`; its
        ``attrs["label_mapping"]`` gives the label mapping (identity when absent, composed
        with ``config["label_mapping"]`` when the caller encoded the labels itself).
    summary : dict
        Output of :func:`pipeline.validation.summarize`.
    config : mapping
        The run configuration, stored as given (made JSON-serialisable). A ``"command"``
        entry (str or list of str) is shown in the HTML as the way to re-run.
    seed : int
        The seed of the run.
    inputs : mapping of str to path
        Input files to fingerprint (SHA-256 of their bytes).
    groups : mapping of str to sequence of str
        Feature groups and their columns; the report stores the column counts.

    Returns
    -------
    dict
        JSON-serialisable, deterministic for the same arguments.
    """
    per_patient = predictions.drop_duplicates("patient_id")
    n_positive = int((per_patient["y_true"] == 1).sum())
    models = {
        name: {"metrics": {metric: dict(values[metric]) for metric in METRICS if metric in values}}
        for name, values in summary.items()
    }
    aucs = {
        name: values["roc_auc"]["mean"]
        for name, values in summary.items()
        if "roc_auc" in values and math.isfinite(values["roc_auc"]["mean"])
    }
    best = max(aucs, key=aucs.__getitem__) if aucs else None  # first of equals wins
    report = {
        "schema_version": SCHEMA_VERSION,
        "radfusion_version": _version("radfusion") or "unknown",
        "config": config,
        "seed": int(seed),
        "data": {
            "n_patients": len(per_patient),
            "n_positive": n_positive,
            "n_negative": len(per_patient) - n_positive,
            "label_mapping": _label_mapping(predictions, config),
            "groups": {name: len(columns) for name, columns in groups.items()},
        },
        "inputs": {
            name: {"path": os.fspath(path), "sha256": file_sha256(path)}
            for name, path in inputs.items()
        },
        "versions": package_versions(),
        "ci_method": CI_METHOD,
        "models": models,
        "best": best,
    }
    return _jsonable(report)


def report_json_text(report: Mapping[str, Any]) -> str:
    """The exact text of ``report.json`` (what makes it byte-identical across runs)."""
    return json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False) + "\n"


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------
def _atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory + os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_report(
    report: Mapping[str, Any], predictions: pd.DataFrame, out_dir: str | Path
) -> dict[str, Path]:
    """Write ``report.json``, ``predictions.csv`` and ``report.html`` atomically.

    Returns
    -------
    dict
        ``{"json": path, "csv": path, "html": path}``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {key: out_dir / name for key, name in REPORT_FILES.items()}
    _atomic_write(paths["json"], report_json_text(report))
    _atomic_write(paths["csv"], predictions.to_csv(index=False, lineterminator="\n"))
    _atomic_write(paths["html"], render_html(report, predictions))
    return paths


def write_run_info(out_dir: str | Path, durations: Mapping[str, float]) -> Path:
    """Write ``run.json``: wall-clock durations (seconds) and when the run finished (UTC).

    Kept apart from ``report.json`` so that file stays reproducible byte for byte.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "durations_seconds": _jsonable(dict(durations)),
    }
    path = out_dir / "run.json"
    _atomic_write(path, json.dumps(info, indent=2) + "\n")
    return path


# --------------------------------------------------------------------------------------------
# report.html
# --------------------------------------------------------------------------------------------
_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d7dbe3;padding-bottom:.2rem}
table{border-collapse:collapse;font-size:.88rem;margin:.5rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e4e7ee;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.best td{background:#eaf4ea}tr.best td:first-child{font-weight:600}
.scroll{overflow-x:auto}.muted{color:#5a6375;font-size:.88rem}
pre{background:#f5f6f8;padding:.7rem;overflow-x:auto;font-size:.82rem;white-space:pre-wrap;
word-break:break-all}code{font-size:.85em}
figure{margin:0;max-width:640px}figure svg{width:100%;height:auto}
@media print{body{max-width:none;padding:0;font-size:11pt}h2{break-after:avoid}
table,figure,pre{break-inside:avoid}.scroll{overflow:visible}}
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{css}</style>
</head>
<body>
<h1>{title}</h1>
<p class="muted">radfusion {version} &middot; report schema {schema} &middot; seed {seed}</p>
<h2>Data</h2>
{data}
<h2>Cross-validated performance</h2>
<p class="muted">{ci_method}</p>
<div class="scroll">{metrics}</div>
<h2>ROC curves</h2>
<p class="muted">Pooled out-of-fold ROC curve per model, averaged over CV repeats.</p>
<figure>{roc}</figure>
<h2>Re-run</h2>
{rerun}
<h2>Configuration</h2>
<pre>{config}</pre>
<h2>Inputs</h2>
<div class="scroll">{inputs}</div>
<h2>Software versions</h2>
{versions}
</body>
</html>
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(
    header: Sequence[str] | None,
    rows: Sequence[Sequence[str]],
    classes: Sequence[str] | None = None,
) -> str:
    """An HTML table; cells are pre-escaped HTML, ``classes`` are per-row class names."""
    head = "".join(f"<th>{h}</th>" for h in header or ())
    head = f"<thead><tr>{head}</tr></thead>" if header else ""
    body = []
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{cls}>" + "".join(row) + "</tr>")
    return f"<table>{head}<tbody>{''.join(body)}</tbody></table>"


def _format_metric(values: Mapping[str, float | None]) -> str:
    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    return f"{fmt(values.get('mean'))} [{fmt(values.get('ci_low'))}, {fmt(values.get('ci_high'))}]"


def _roc_svg(predictions: pd.DataFrame, models: Mapping[str, str]) -> str:
    """Inline SVG of the pooled mean ROC curves ``{model: legend label}``.

    Deterministic (fixed ``svg.hashsalt``, no date) and without external references.
    """
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global backend, no GUI

    fig = Figure(figsize=(6.4, 5.6))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], linestyle="--", color="#9aa1ad", linewidth=1, label="chance")
    for name, label in models.items():
        fpr, tpr = roc_curve_points(predictions, name)
        # Draw from the origin; the curve's value at fpr=0 is the tpr reached there.
        ax.plot(np.r_[0.0, fpr], np.r_[0.0, tpr], linewidth=1.6, label=label)
    ax.set(
        xlim=(0, 1),
        ylim=(0, 1.01),
        xlabel="1 - specificity (false positive rate)",
        ylabel="Sensitivity (true positive rate)",
        aspect="equal",
    )
    ax.grid(True, linewidth=0.4, alpha=0.6)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": "radfusion", "svg.fonttype": "none"}):
        fig.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and DOCTYPE (a DTD URL)
    # Namespace declarations are implicit for SVG inlined in HTML.
    return re.sub(r'\s+xmlns(:xlink)?="[^"]*"', "", svg, count=2)


def render_html(report: Mapping[str, Any], predictions: pd.DataFrame) -> str:
    """The self-contained HTML report: no network access, no external CSS or JavaScript."""
    data = report["data"]
    config = report.get("config") or {}
    models = list(report["models"])
    best = report.get("best")

    mapping = ", ".join(f"{_e(k)} &rarr; {_e(v)}" for k, v in data["label_mapping"].items())
    data_rows = [
        ("Patients", _e(data["n_patients"])),
        ("Positive (1) / negative (0)", f"{_e(data['n_positive'])} / {_e(data['n_negative'])}"),
        ("Label mapping", mapping),
    ]
    data_html = _table(None, [[f"<th>{k}</th>", f"<td>{v}</td>"] for k, v in data_rows]) + _table(
        ["Feature group", "Columns"],
        [[f"<td>{_e(g)}</td>", f'<td class="num">{_e(n)}</td>'] for g, n in data["groups"].items()],
    )

    metric_rows = []
    for name in models:
        metrics = report["models"][name]["metrics"]
        cells = [f"<td>{_e(name)}{' (best AUC)' if name == best else ''}</td>"]
        cells += [f'<td class="num">{_e(_format_metric(metrics[m]))}</td>' for m in METRICS]
        metric_rows.append(cells)
    metrics_html = _table(
        ["Model"] + [_e(METRIC_LABELS[m]) for m in METRICS],
        metric_rows,
        classes=["best" if name == best else "" for name in models],
    )

    legend = {}
    for name in models:
        auc = report["models"][name]["metrics"].get("roc_auc", {}).get("mean")
        label = name.replace("$", r"\$")  # no mathtext in model names
        legend[name] = label if auc is None else f"{label} (AUC {auc:.3f})"

    command = config.get("command") if isinstance(config, Mapping) else None
    if isinstance(command, (list, tuple)):
        command = shlex.join(str(part) for part in command)
    rerun = (
        f"<pre>{_e(command)}</pre>"
        if command
        else "<p>No command recorded; re-run with the configuration below and the same seed.</p>"
    )
    rerun += (
        '<p class="muted">Same inputs (check the SHA-256 below), configuration and seed give '
        "the same report.json.</p>"
    )

    inputs_html = _table(
        ["Input", "Path", "SHA-256"],
        [
            [
                f"<td>{_e(k)}</td>",
                f"<td>{_e(v['path'])}</td>",
                f"<td><code>{_e(v['sha256'])}</code></td>",
            ]
            for k, v in report["inputs"].items()
        ],
    )
    versions_html = _table(
        ["Software", "Version"],
        [
            [f"<td>{_e(k)}</td>", f"<td>{_e(v if v is not None else 'not installed')}</td>"]
            for k, v in report["versions"].items()
        ],
    )

    return _PAGE.format(
        title="radfusion cross-validation report",
        css=_CSS,
        version=_e(report.get("radfusion_version")),
        schema=_e(report.get("schema_version")),
        seed=_e(report.get("seed")),
        data=data_html,
        ci_method=_e(report.get("ci_method")),
        metrics=metrics_html,
        roc=_roc_svg(predictions, legend),
        rerun=rerun,
        config=_e(json.dumps(config, indent=2, ensure_ascii=False)),
        inputs=inputs_html,
        versions=versions_html,
    )
