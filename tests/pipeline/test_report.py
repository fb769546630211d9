"""Tests of radfusion.pipeline.report: report.json schema and determinism, HTML, files,
provenance."""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
from dataclasses import replace
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline.report import (
    FIGURE_DIR,
    REPORT_FILES,
    SCHEMA_VERSION,
    build_report,
    render_html,
    write_report,
)
from radfusion.pipeline.report._files import (
    report_json_text,
    write_run_info,
)
from radfusion.pipeline.statistics import describe_cohort
from radfusion.pipeline.validation import METRICS, CVResult, cross_validate_models, summarize
from tests.report_keys import TOP_LEVEL_KEYS

MODEL_KEYS = ["metrics", "confusion_matrix", "curves"]
FIGURE_NAMES = [
    "auc_forest",
    "roc",
    "roc_bands",
    "precision_recall",
    "calibration",
    "confusion_matrix",
    "decision_curve",
    "group_contributions",
    "importance",
    "shap",
]
VERSION_KEYS = [
    "python",
    "platform",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "xgboost",
    "radiomics",
    "SimpleITK",
    "joblib",
    "matplotlib",
]
# A name that must be escaped in HTML; it is also a valid model name.
TRICKY = "LR <late> & 'fused'"


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    features = root / "features.csv"
    features.write_bytes(b"patient_id,CT__tumor__f0\nP1,0.5\n")
    biomarkers = root / "biomarkers.csv"
    biomarkers.write_bytes(bytes(range(256)))
    return {"features": features, "biomarkers": str(biomarkers)}


def run(inputs, out_dir=None, seed=0):
    """The whole table -> report path, as the CLI would run it."""
    rng = np.random.default_rng(42)
    n = 60
    X = pd.DataFrame(
        rng.normal(size=(n, 4)),
        index=[f"P{i:03d}" for i in range(n)],
        columns=["CT__tumor__a", "CT__tumor__b", "PET__tumor__c", "age"],
    )
    y = np.where(X["CT__tumor__a"] + rng.normal(size=n) > 0, "malignant", "benign")
    models = {
        "early": make_pipeline(StandardScaler(), LogisticRegression()),
        TRICKY: make_pipeline(StandardScaler(), LogisticRegression(C=0.01)),
        "ct_only": make_pipeline(StandardScaler(), LogisticRegression(C=0.1)),
    }
    result = cross_validate_models(models, X, y, folds=3, repeats=2, seed=seed)
    predictions = result.predictions
    summary = summarize(predictions, n_bootstrap=200, seed=seed)
    config = {
        "strategies": ["early", "late"],
        "folds": 3,
        "repeats": 2,
        "models": {"early": {"strategy": "early", "learner": "lr"}},
        "label_column": "outcome",
        "id_column": "patient_id",
        "command": ["radfusion", "cv", "--features", "features.csv", "--seed", str(seed)],
    }
    groups = {"CT__tumor": ["CT__tumor__a", "CT__tumor__b"], "PET__tumor": ["PET__tumor__c"]}
    cohort = describe_cohort(
        predictions.drop_duplicates("patient_id")["y_true"].to_numpy(),
        ["benign", "malignant"],
        variables=X[["age"]].assign(sex=np.where(X["age"] > 0, "F", "M")),
        missing_groups=X[["CT__tumor__a", "PET__tumor__c"]]
        .isna()
        .set_axis(["CT__tumor", "PET__tumor"], axis=1),
        group_sizes={"CT__tumor": 2, "PET__tumor": 1},
    )
    report = build_report(
        result,
        summary,
        config=config,
        seed=seed,
        inputs=inputs,
        groups=groups,
        cohort=cohort,
        comparisons=[("early", TRICKY), ("early", "ct_only")],
        n_bootstrap=200,
    )
    paths = write_report(report, predictions, out_dir) if out_dir is not None else None
    return report, predictions, paths


@pytest.fixture(scope="module")
def written(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    report, predictions, paths = run(inputs, out)
    return report, predictions, paths, out


def test_writes_the_files_and_figures(written):
    report, predictions, paths, out = written
    assert set(paths) == {*REPORT_FILES, "figures"}
    assert sorted(p.name for p in out.iterdir()) == sorted([*REPORT_FILES.values(), FIGURE_DIR])
    assert sorted(p.name for p in paths["figures"].iterdir()) == sorted(
        f"{name}.{ext}" for name in FIGURE_NAMES for ext in ("png", "svg")
    )
    for name in FIGURE_NAMES:
        svg = (paths["figures"] / f"{name}.svg").read_text(encoding="utf-8")
        assert svg.startswith("<?xml") and 'xmlns="http://www.w3.org/2000/svg"' in svg
        png = (paths["figures"] / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"Software" not in png
    assert json.loads(paths["json"].read_text(encoding="utf-8")) == report
    back = pd.read_csv(paths["csv"])
    assert list(back.columns) == list(predictions.columns)
    pd.testing.assert_frame_equal(back, predictions, check_dtype=False, check_exact=True)


def test_report_schema(written):
    report, predictions, _, _ = written
    assert list(report) == TOP_LEVEL_KEYS
    assert report["schema_version"] == SCHEMA_VERSION == "2.2"
    assert report["task"] == "binary"
    assert isinstance(report["radfusion_version"], str)
    assert report["seed"] == 0
    assert report["config"]["folds"] == 3 and report["config"]["command"][0] == "radfusion"
    assert report["data"] == {
        "n_patients": 60,
        "n_positive": int(predictions.drop_duplicates("patient_id")["y_true"].sum()),
        "n_negative": 60 - int(predictions.drop_duplicates("patient_id")["y_true"].sum()),
        "label_mapping": {"benign": 0, "malignant": 1},
        "groups": {"CT__tumor": 2, "PET__tumor": 1},
    }
    assert list(report["versions"]) == VERSION_KEYS
    assert report["versions"]["numpy"] == np.__version__
    assert isinstance(report["ci_method"], str) and "bootstrap" in report["ci_method"]
    assert list(report["models"]) == ["early", TRICKY, "ct_only"]  # order as given
    for model in report["models"].values():
        assert list(model) == MODEL_KEYS
        assert list(model["metrics"]) == list(METRICS)
        assert list(METRICS)[:8] == [  # the 1.0 metrics come first, unchanged
            "roc_auc",
            "accuracy",
            "balanced_accuracy",
            "sensitivity",
            "specificity",
            "precision",
            "f1",
            "brier",
        ]
        assert set(model["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
        assert sum(model["confusion_matrix"].values()) == pytest.approx(60)
        curves = model["curves"]
        assert len(curves["roc"]["tpr"]) == len(report["curves"]["fpr"]) == 101
        assert len(curves["pr"]["precision"]) == len(report["curves"]["recall"]) == 101
        assert len(curves["net_benefit"]) == len(report["curves"]["thresholds"]) == 99
        assert all(
            lo <= t + 1e-9
            for lo, t in zip(curves["roc"]["tpr_ci_low"], curves["roc"]["tpr"], strict=True)
        )
    assert report["threshold"] == 0.5
    assert [c["n"] for c in report["cohort"]["columns"]] == [
        60,
        report["data"]["n_negative"],
        report["data"]["n_positive"],
    ]
    tests = report["comparisons"]["tests"]
    assert [(t["model"], t["reference"]) for t in tests] == [
        ("early", TRICKY),
        ("early", "ct_only"),
    ]
    assert "DeLong" in report["comparisons"]["method"]
    reproduce = report["reproduce"]
    assert reproduce["command"] == "radfusion cv --features features.csv --seed 0"
    assert f"numpy=={np.__version__}" in reproduce["requirements"]
    for model in report["models"].values():
        for values in model["metrics"].values():
            assert list(values) == ["mean", "ci_low", "ci_high"]
    aucs = {name: m["metrics"]["roc_auc"]["mean"] for name, m in report["models"].items()}
    assert report["best"] == max(aucs, key=aucs.get)


def test_floats_are_rounded_and_json_strict(written):
    report = written[0]

    def floats(value):
        if isinstance(value, dict):
            for v in value.values():
                yield from floats(v)
        elif isinstance(value, list):
            for v in value:
                yield from floats(v)
        elif isinstance(value, float):
            yield value

    values = list(floats(report))
    assert values and all(math.isfinite(v) and round(v, 6) == v for v in values)
    report_json_text(report)  # allow_nan=False: raises on NaN


def test_report_json_is_byte_identical_across_runs(inputs, tmp_path):
    _, _, first = run(inputs, tmp_path / "a")
    _, _, second = run(inputs, tmp_path / "b")
    for key in REPORT_FILES:  # report.json, and the CSV and HTML too
        assert first[key].read_bytes() == second[key].read_bytes(), key
    for figure in sorted(first["figures"].iterdir()):  # SVG and PNG figures too
        assert figure.read_bytes() == (second["figures"] / figure.name).read_bytes(), figure
    text = first["json"].read_text(encoding="utf-8")
    assert not re.search(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", text)  # no timestamps
    assert not re.search(r"time|duration|elapsed", text, re.IGNORECASE)

    _, _, other_seed = run(inputs, tmp_path / "c", seed=1)
    assert other_seed["json"].read_bytes() != first["json"].read_bytes()


def test_input_hashes(written, inputs):
    report = written[0]
    assert list(report["inputs"]) == ["features", "biomarkers"]
    for name, path in inputs.items():
        entry = report["inputs"][name]
        assert entry["path"] == str(path)
        assert entry["sha256"] == hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_html_is_self_contained_and_matches_the_json(written):
    report, _, paths, _ = written
    page = paths["html"].read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page and "https://" not in page
    external = r"<script|<link|<img|<iframe|@import|url\((?!#)|src=|href=\"(?!#)"
    assert not re.search(external, page, re.IGNORECASE)  # url(#id): the SVG's own clip paths
    assert page.count("<svg") == len(FIGURE_NAMES)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # figures inlined side by side keep unique ids
    assert "radfusion cv --features features.csv --seed 0" in page  # how to re-run
    assert TRICKY not in page and "LR &lt;late&gt; &amp; &#x27;fused&#x27;" in page
    for name, model in report["models"].items():
        auc = model["metrics"]["roc_auc"]
        cell = f"{auc['mean']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]"
        assert cell in page, name
        if name != TRICKY:
            assert f"<td>{name}" in page
    primary_row = re.search(r'<tr class="primary"><td>([^<]*)</td>', page)
    assert primary_row and html.unescape(primary_row.group(1)).startswith(
        report["primary"]["model"]
    )
    assert "best AUC, optimistic" in page and "Primary model:" in page
    for entry in report["inputs"].values():
        assert entry["sha256"] in page
    assert report["versions"]["scikit-learn"] in page


def test_atomic_write_leaves_no_temporary_files(written, tmp_path, monkeypatch):
    report, predictions, _, _ = written
    write_report(report, predictions, tmp_path)
    write_report(report, predictions, tmp_path)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*REPORT_FILES.values(), FIGURE_DIR]
    )

    before = (tmp_path / "report.json").read_bytes()

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report({**report, "seed": 99}, predictions, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [*REPORT_FILES.values(), FIGURE_DIR]
    )
    assert not [p for p in (tmp_path / FIGURE_DIR).iterdir() if p.name.endswith(".tmp")]
    assert (tmp_path / "report.json").read_bytes() == before  # old file untouched


def test_run_info_holds_the_timings(tmp_path):
    path = write_run_info(tmp_path, {"cv": 1.23456789, "report": np.float64(0.5)})
    info = json.loads(path.read_text(encoding="utf-8"))
    assert path.name == "run.json"
    assert info["durations_seconds"] == {"cv": 1.234568, "report": 0.5}
    assert re.match(r"\d{4}-\d{2}-\d{2}T", info["finished_at"])


def test_missing_packages_are_reported_not_raised(written, inputs, monkeypatch):
    report, predictions, _, _ = written

    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    summary = {name: m["metrics"] for name, m in report["models"].items()}
    bare = build_report(
        CVResult.from_predictions(predictions), summary, config={}, seed=0, inputs={}, groups={}
    )
    assert bare["radfusion_version"] == "unknown"
    assert all(bare["versions"][k] is None for k in VERSION_KEYS[2:])
    assert bare["versions"]["python"]  # from the interpreter, not package metadata


def test_values_are_made_json_serialisable(written):
    _, predictions, _, _ = written
    plain = CVResult.from_predictions(predictions.copy())  # e.g. read back from predictions.csv
    summary = {"m": {"roc_auc": {"mean": np.float64(0.5), "ci_low": math.nan, "ci_high": 1.0}}}
    config = {"path": Path("x/y.csv"), "folds": np.int64(5), "pair": (1, 2.1234567891)}
    report = build_report(plain, summary, config=config, seed=np.int64(3), inputs={}, groups={})
    assert report["data"]["label_mapping"] == {"0": 0, "1": 1}
    # Labels encoded by the caller: config's mapping, composed with the CV's own.
    relabelled = replace(plain, label_mapping={1: 0, 2: 1})
    for result, mapping, expected in (
        (plain, {"no": 0, "yes": 1}, {"no": 0, "yes": 1}),
        (relabelled, {"low": 1, "high": 2}, {"low": 0, "high": 1}),
    ):
        caller = {"label_mapping": mapping}
        encoded = build_report(result, summary, config=caller, seed=0, inputs={}, groups={})
        assert encoded["data"]["label_mapping"] == expected
    assert report["config"] == {"path": "x/y.csv", "folds": 5, "pair": [1, 2.123457]}
    assert report["seed"] == 3
    assert report["models"]["m"]["metrics"]["roc_auc"] == {
        "mean": 0.5,
        "ci_low": None,
        "ci_high": 1.0,
    }
    assert report["best"] == "m"
    json.loads(report_json_text(report))


def test_html_numbers_equal_the_json(written):
    """Every number the HTML states comes from report.json, formatted as in the tables."""
    report, _, paths, _ = written
    page = html.unescape(paths["html"].read_text(encoding="utf-8"))

    def f(x, digits=3):
        return f"{x:.{digits}f}"

    for name, model in report["models"].items():
        for metric, values in model["metrics"].items():
            cell = f"{f(values['mean'])} [{f(values['ci_low'])}, {f(values['ci_high'])}]"
            assert cell in page, (name, metric)
        cm = model["confusion_matrix"]
        row = "".join(f'<td class="num">{f(cm[k], 1)}</td>' for k in ("tp", "fn", "fp", "tn"))
        assert f"<td>{name}</td>{row}" in page
    for test in report["comparisons"]["tests"]:
        assert f"{f(test['difference'])} [{f(test['ci_low'])}, {f(test['ci_high'])}]" in page
    age = report["cohort"]["variables"][0]
    assert age["name"] == "age"
    for values in age["values"]:
        assert f"{f(values['mean'], 1)} ({f(values['sd'], 1)})" in page
        assert f"{f(values['median'], 1)} [{f(values['q1'], 1)}, {f(values['q3'], 1)}]" in page
    for column in report["cohort"]["columns"]:
        assert f"{column['label']} (n = {column['n']})" in page
    for requirement in report["reproduce"]["requirements"]:
        assert requirement in page
    for section in (
        "Table 1",
        "Calibration",
        "Confusion matrices at threshold 0.5",
        "DeLong",
        "Decision curve analysis",
        "How to re-run",
        "Provenance",
    ):
        assert section in page


def test_html_is_a_function_of_the_json(written):
    """The page can be rebuilt from report.json alone (e.g. after editing nothing else)."""
    report, _, paths, _ = written
    reloaded = json.loads(paths["json"].read_text(encoding="utf-8"))
    assert render_html(reloaded) == paths["html"].read_text(encoding="utf-8")


def test_report_json_keeps_number_lists_on_one_line(written):
    text = report_json_text(written[0])
    assert re.search(r'"tpr": \[0(\.\d+)?, [^\n]*\]', text)
    assert json.loads(text) == written[0]
    assert text.count("\n") < 2500  # compact, still one key per line


def test_methods_and_checklists_in_json_and_html(written):
    """The methods text and the checklist table are in report.json and shown as they are."""
    report, _, paths, _ = written
    page = paths["html"].read_text(encoding="utf-8")
    methods = report["methods"]
    assert list(methods) == ["text", "extraction", "feature_classes", "learners"]
    assert methods["extraction"] is None  # build_report was given no extraction sidecar
    assert "precomputed table" in methods["text"][0]
    assert "2 x repeated stratified 3-fold" in " ".join(methods["text"])
    assert list(methods["learners"]) == ["lr"]
    for paragraph in methods["text"]:
        assert f"<p>{html.escape(paragraph)}</p>" in page
    checklists = report["checklists"]
    assert {"TRIPOD+AI", "CLEAR", "METRICS"} == set(checklists["counts"])
    for item in checklists["items"]:
        assert html.escape(item["item"]) in page and html.escape(item["note"]) in page
    harmonisation = [i for i in checklists["items"] if i["item"] == "Harmonization"]
    assert harmonisation[0]["status"] == "user must supply"  # no ComBat in this run
    assert '<h2 id="methods">Methods</h2>' in page and '<h2 id="checklists">' in page
