"""The pieces every cross-validation report is built from, whatever the task.

Values made JSON-ready (:func:`jsonable`), library versions (:func:`package_versions`), the
fields every ``report.json`` opens with (:func:`run_fields`), the label mapping, the re-run
recipe's HTML (the recipe is built in ``_reproduce``) and the HTML primitives
(:func:`escape`, :func:`html_table`, :func:`figure_html`, the cohort table, the style sheet).
:mod:`radfusion.pipeline.report` (binary targets) and :mod:`radfusion.pipeline.report`
(multiclass and regression) both use them, so neither imports the other's internals.
"""

from __future__ import annotations

import html
import math
import os
import platform
from collections.abc import Mapping, Sequence
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from radfusion.features.files import file_digest

SCHEMA_VERSION = "2.2"
DECIMALS = 6
FIGURE_DIR = "figures"


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


def _installed(*distributions: str) -> tuple[str, str] | None:
    """(distribution name, version) of the first installed of ``distributions``."""
    for name in distributions:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def installed_version(*distributions: str) -> str | None:
    found = _installed(*distributions)
    return found[1] if found else None


def package_versions() -> dict[str, str | None]:
    """Python, platform and the versions of the packages a result depends on (None: absent)."""
    versions: dict[str, str | None] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    versions.update({key: installed_version(*names) for key, names in _PACKAGES.items()})
    return versions


def run_fields(
    task: str,
    config: Mapping[str, Any],
    seed: int,
    data: Mapping[str, Any],
    inputs: Mapping[str, str | os.PathLike[str]],
) -> dict[str, Any]:
    """The first fields of a cross-validation ``report.json``, whatever the task: schema and
    radfusion versions, the task, the run's ``config``, ``seed`` and ``data``, each input's
    path and SHA-256, and the package versions."""
    return {
        "schema_version": SCHEMA_VERSION,
        "radfusion_version": installed_version("radfusion") or "unknown",
        "task": task,
        "config": config,
        "seed": int(seed),
        "data": data,
        "inputs": {
            name: {"path": os.fspath(path), "sha256": file_digest(path)}
            for name, path in inputs.items()
        },
        "versions": package_versions(),
    }


class Significant(float):
    """A float stored with 6 significant digits instead of 6 decimals (p-values)."""


def jsonable(value: Any) -> Any:
    """Plain JSON values: str keys, lists, Python scalars, floats rounded, NaN/inf -> None; an
    estimator (a learner given as one) as ``{"estimator": class path, "params": {...}}``."""
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, (set, frozenset)):
        return [jsonable(v) for v in sorted(value, key=str)]
    if isinstance(value, (list, tuple, np.ndarray, pd.Index, pd.Series)):
        return [jsonable(v) for v in list(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, Significant):
        return float(f"{value:.{DECIMALS}g}") if math.isfinite(value) else None
    if isinstance(value, float):
        return round(value, DECIMALS) if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, BaseEstimator):  # a learner given as an estimator: class and params
        kind = type(value)
        return {
            "estimator": f"{kind.__module__}.{kind.__qualname__}",
            "params": jsonable(value.get_params(deep=False)),
        }
    return str(value)


def resolve_label_mapping(
    cv_mapping: Mapping[Any, int], config: Mapping[str, Any], n_classes: int = 2
) -> dict[str, int]:
    """``{original label: code of y_true}``.

    ``cv_mapping`` (``CVResult.label_mapping``) maps the labels given to the CV to the codes
    0 .. ``n_classes - 1`` (identity when empty). When the caller encoded the labels itself,
    ``config["label_mapping"]`` maps the original labels to the labels given to the CV; the
    two are composed.
    """
    mapping = dict(cv_mapping) or {k: k for k in range(n_classes)}
    given = config.get("label_mapping")
    if isinstance(given, Mapping):
        mapping = {label: mapping.get(jsonable(code), code) for label, code in given.items()}
    return {str(k): int(v) for k, v in mapping.items()}


REPORT_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;
max-width:1100px;margin:0 auto;padding:1.5rem}
h1{font-size:1.6rem;margin:.2rem 0 1rem}h2{font-size:1.2rem;margin-top:2rem;
border-bottom:1px solid #d7dbe3;padding-bottom:.2rem}h3{font-size:1rem;margin-top:1.4rem}
table{border-collapse:collapse;font-size:.88rem;margin:.5rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e4e7ee;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.wrap{white-space:normal;min-width:6.2em}
tr.best td,tr.primary td{background:#eaf4ea}
tr.best td:first-child,tr.primary td:first-child{font-weight:600}
tr.sub td:first-child{padding-left:1.4rem}
td.answered{color:#1d6b2a}td.partly{color:#8a5a00}td.user{color:#a3262a;font-weight:600}
.methods p{max-width:50rem}
.scroll{overflow-x:auto}.muted{color:#5a6375;font-size:.88rem}
.warning{border-left:4px solid #b45309;background:#fff7ed;padding:.4rem .7rem}
.answer{border:1px solid #c9d3e6;background:#f6f8fc;padding:.2rem 1rem .4rem;margin:1rem 0}
.answer h2{margin-top:.6rem;border:0}.answer p{max-width:52rem}
nav{font-size:.88rem;margin:.5rem 0 1rem}nav a{margin-right:.8rem;color:#2b5bb5}
pre{background:#f5f6f8;padding:.7rem;overflow-x:auto;font-size:.82rem;white-space:pre-wrap;
word-break:break-all}code{font-size:.85em}
figure{margin:.5rem 0 1rem;max-width:100%}figure svg{width:100%;height:auto;max-height:90vh}
figure.single{max-width:640px}figcaption{font-size:.85rem;color:#5a6375}
@media print{body{max-width:none;padding:0;font-size:10pt}nav{display:none}
h2{break-after:avoid}table,figure,pre{break-inside:avoid}.scroll{overflow:visible}
figure svg{max-height:none}}
"""


def escape(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def html_table(
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


def num_cell(value: Any) -> str:
    return f'<td class="num">{escape(value)}</td>'


def finite_number(value: Any) -> float | None:
    """``value`` as a float, or None when it is missing or not finite (a report's null)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def fmt(x: float | None, digits: int = 3) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def format_metric(values: Mapping[str, float | None]) -> str:
    return f"{fmt(values.get('mean'))} [{fmt(values.get('ci_low'))}, {fmt(values.get('ci_high'))}]"


def cohort_html(cohort: Mapping[str, Any]) -> str:
    columns = cohort["columns"]
    header = ["Characteristic"] + [f"{escape(c['label'])} (n = {escape(c['n'])})" for c in columns]
    with_smd = any("smd" in variable for variable in cohort["variables"])
    if with_smd:
        header.append("SMD")

    def smd(variable: Mapping[str, Any] | None) -> list[str]:
        if not with_smd:
            return []
        return [num_cell("" if variable is None else fmt(variable.get("smd"), 2))]

    rows, classes = [], []
    for variable in cohort["variables"]:
        name = escape(variable["name"])
        values = variable["values"]
        if variable["kind"] == "numeric":
            rows.append(
                [f"<td>{name}, mean (SD)</td>"]
                + [num_cell(f"{fmt(v['mean'], 1)} ({fmt(v['sd'], 1)})") for v in values]
                + smd(variable)
            )
            rows.append(
                [f"<td>{name}, median [Q1, Q3]</td>"]
                + [
                    num_cell(f"{fmt(v['median'], 1)} [{fmt(v['q1'], 1)}, {fmt(v['q3'], 1)}]")
                    for v in values
                ]
                + smd(None)
            )
            classes += ["", ""]
        else:
            rows.append([f"<td>{name}, n (%)</td>"] + ["<td></td>"] * len(values) + smd(variable))
            classes.append("")
            for level in values[0]["levels"]:
                cells = [f"<td>{escape(level)}</td>"]
                for v in values:
                    entry = v["levels"][level]
                    cells.append(num_cell(f"{entry['n']} ({fmt(entry['percent'], 1)} %)"))
                rows.append(cells + smd(None))
                classes.append("sub")
        if any(v["missing"] for v in values):
            rows.append(["<td>missing</td>"] + [num_cell(v["missing"]) for v in values] + smd(None))
            classes.append("sub")
    parts = []
    if rows:
        parts.append(html_table(header, rows, classes))
        if with_smd:
            parts.append(
                '<p class="muted">SMD: absolute standardised mean difference between the two '
                "outcome classes (numeric: difference of means over the average SD; "
                "categorical: the multinomial form of Yang &amp; Dalton 2012); above 0.1 is "
                "commonly read as a meaningful imbalance.</p>"
            )
    else:
        parts.append(html_table(header[1:], [[num_cell(c["n"]) for c in columns]]))
        parts.append(
            '<p class="muted">No patient characteristics were given (pass a biomarker table).</p>'
        )
    if cohort["groups"]:
        group_rows = [
            [
                f"<td>{escape(g['name'])}</td>",
                num_cell("" if g["columns"] is None else g["columns"]),
            ]
            + [num_cell(f"{m['n']} ({fmt(m['percent'], 1)} %)") for m in g["missing"]]
            for g in cohort["groups"]
        ]
        parts.append("<h3>Feature groups and missing modalities</h3>")
        parts.append(
            '<p class="muted">Patients without any value in a feature group (a '
            "missing modality or mask), n (%).</p>"
        )
        parts.append(
            html_table(
                ["Feature group", "Columns"] + [escape(c["label"]) for c in columns], group_rows
            )
        )
    return "".join(parts)


def figure_html(name: str, svg: str, caption: str, single: bool = False) -> str:
    cls = ' class="single"' if single else ""
    return (
        f'<figure id="figure-{name}"{cls}>{svg}<figcaption>{caption} Also saved as '
        f"<code>{FIGURE_DIR}/{name}.svg</code> and <code>{FIGURE_DIR}/{name}.png</code>."
        "</figcaption></figure>"
    )


def reproduce_html(reproduce: Mapping[str, Any]) -> str:
    """The re-run recipe: the steps, the install commands and the command that was run."""
    parts = ["<ol>" + "".join(f"<li>{escape(step)}</li>" for step in reproduce["steps"]) + "</ol>"]
    install = reproduce.get("install")
    if install is None:  # reports before the recipe named its source
        install = [f"pip install {' '.join(reproduce['requirements'])}"]
    parts.append("<h3>Install</h3>")
    parts.append(f"<pre>{escape(chr(10).join(install))}</pre>")
    if reproduce.get("command"):
        parts.append("<h3>Run</h3>")
        parts.append(f"<pre>{escape(reproduce['command'])}</pre>")
    return "".join(parts)


def inputs_html(inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """The provenance table of the input files: name, path and SHA-256."""
    rows = [
        [
            f"<td>{escape(k)}</td>",
            f"<td>{escape(v['path'])}</td>",
            f"<td><code>{escape(v['sha256'])}</code></td>",
        ]
        for k, v in inputs.items()
    ]
    return html_table(["Input", "Path", "SHA-256"], rows)


def versions_html(versions: Mapping[str, str | None]) -> str:
    """The provenance table of the software versions (None: not installed)."""
    rows = [
        [f"<td>{escape(k)}</td>", f"<td>{escape(v if v is not None else 'not installed')}</td>"]
        for k, v in versions.items()
    ]
    return html_table(["Software", "Version"], rows)
