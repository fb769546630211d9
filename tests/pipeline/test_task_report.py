"""Tests of radfusion.pipeline.report: the multiclass and regression CV report."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline.report import (
    CLASSES,
    REPORT_FILES,
    SCHEMA_VERSION,
    build_cv_report,
    write_report,
)
from radfusion.pipeline.report._dispatch import (
    report_kind,
)
from radfusion.pipeline.report._files import (
    report_json_text,
)
from radfusion.pipeline.report._html import (
    format_metric,
)
from radfusion.pipeline.report._tasks import (
    TASK_FIGURES,
    VALUES,
    build_task_report,
    task_figures,
)
from radfusion.pipeline.targets import PRIMARY_METRIC, task_metrics
from radfusion.pipeline.validation import cross_validate_models, summarize
from tests.report_keys import TOP_LEVEL_KEYS as BINARY_KEYS

TASKS = ("multiclass", "regression")
BINARY_ONLY = ("primary", "best_note", "warnings", "fusion_benefit")
TOP_LEVEL_KEYS = [
    *(key for key in BINARY_KEYS if key not in BINARY_ONLY),
    "evaluability",  # schema 2.1: added by build_cv_report to every task's report
]
# A model name that must be escaped in HTML.
TRICKY = "ridge <A> & 'b'"
N = 45


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    features = root / "features.csv"
    features.write_bytes(b"patient_id,CT__tumor__a\nP1,0.5\n")
    return {"features": features}


def _data(task):
    rng = np.random.default_rng(3)
    X = pd.DataFrame(
        rng.normal(size=(N, 3)),
        columns=["CT__tumor__a", "CT__tumor__b", "age"],
        index=[f"P{i:03d}" for i in range(N)],
    )
    signal = X["CT__tumor__a"].to_numpy() + 0.5 * rng.normal(size=N)
    if task == "multiclass":
        y = np.array(["high", "low", "mid"])[np.digitize(signal, [-0.5, 0.5])]
        models = {
            "lr": make_pipeline(StandardScaler(), LogisticRegression()),
            TRICKY: RandomForestClassifier(15, random_state=0),
        }
    else:
        y = 10.0 * signal + 50.0
        models = {"lr": Ridge(), TRICKY: RandomForestRegressor(15, random_state=0)}
    return X, y, models


def _build(task, inputs, result=None, summary=None):
    X, y, models = _data(task)
    if result is None:
        result = cross_validate_models(models, X, y, task=task, folds=3, repeats=2, seed=1)
        summary = summarize(result.predictions, task=task, n_bootstrap=100, seed=1)
    config = {
        "folds": 3,
        "repeats": 2,
        "learner": "lr",
        "task": task,
        "command": ["radfusion", "cv", "--task", task],
    }
    groups = {"CT__tumor": ["CT__tumor__a", "CT__tumor__b"], "clinical": ["age"]}
    report = build_cv_report(result, summary, config=config, seed=1, inputs=inputs, groups=groups)
    return report, result, summary


@pytest.fixture(scope="module", params=TASKS)
def built(request, inputs):
    return _build(request.param, inputs)


def test_keys_and_metric_names(built):
    report, result, summary = built
    predictions = result.predictions
    task = report["task"]
    assert list(report) == TOP_LEVEL_KEYS
    assert report["schema_version"] == SCHEMA_VERSION
    assert report["threshold"] is None and report["checklists"] is None
    assert report["explanations"] is None and report["comparisons"]["tests"] == []
    assert "not computed" in report["comparisons"]["method"]
    assert list(report["models"]) == list(summary) == ["lr", TRICKY]
    assert report["data"]["n_patients"] == N
    assert report["data"]["groups"] == {"CT__tumor": 2, "clinical": 1}
    assert report["methods"]["text"] and all(isinstance(p, str) for p in report["methods"]["text"])
    assert report["inputs"]["features"]["sha256"]
    for model in report["models"].values():
        assert list(model) == ["metrics", "confusion_matrix", "curves"]
        assert list(model["metrics"]) == list(task_metrics(task))
        for values in model["metrics"].values():
            assert list(values) == ["mean", "ci_low", "ci_high"]
    if task == "multiclass":
        assert report["data"]["label_mapping"] == {"high": 0, "low": 1, "mid": 2}
        assert report["data"]["classes"] == ["high", "low", "mid"]
        assert sum(report["data"]["class_counts"].values()) == N
        assert [c["label"] for c in report["cohort"]["columns"]] == ["All", "high", "low", "mid"]
        assert len(report["curves"]["fpr"]) == 101
        for model in report["models"].values():
            roc = model["curves"]["roc_ovr"]
            assert list(roc) == ["high", "low", "mid"]
            assert all(len(c["tpr"]) == 101 for c in roc.values())
    else:
        target = report["data"]["target"]
        assert list(target) == ["mean", "sd", "min", "max"]
        assert target["min"] <= target["mean"] <= target["max"] and target["sd"] > 0
        assert report["curves"] is None
        for name, model in report["models"].items():
            assert model["confusion_matrix"] is None
            curves = model["curves"]
            assert len(curves["observed"]) == len(curves["predicted"]) == N
            expected = (
                predictions[predictions["model"] == name]
                .groupby("patient_id")["prediction"]
                .mean()
                .sort_index()
            )
            np.testing.assert_allclose(curves["predicted"], expected.to_numpy(), atol=1e-6)


def test_best_is_top_primary_metric(built):
    report, _, summary = built
    primary = PRIMARY_METRIC[report["task"]]
    means = {name: values[primary]["mean"] for name, values in summary.items()}
    assert report["best"] == max(means, key=means.__getitem__)


def test_best_follows_the_summary(inputs, built):
    """Swap the primary metric's means: best follows."""
    report, result, summary = built
    primary = PRIMARY_METRIC[report["task"]]
    swapped = json.loads(json.dumps(summary))
    a, b = list(swapped)
    swapped[a][primary]["mean"], swapped[b][primary]["mean"] = (
        summary[b][primary]["mean"],
        summary[a][primary]["mean"],
    )
    again, _, _ = _build(report["task"], inputs, result, swapped)
    assert again["best"] != report["best"]


def test_json_byte_identical(inputs, built):
    report, result, summary = built
    shuffled = result.predictions.sample(frac=1.0, random_state=0)
    again, _, _ = _build(report["task"], inputs, replace(result, predictions=shuffled), summary)
    assert report_json_text(again) == report_json_text(report)
    assert json.loads(report_json_text(report)) == report


def test_the_task_report_is_chosen_by_the_task(inputs, built):
    report, result, summary = built
    via_task = build_cv_report(result, summary, config={}, seed=1, inputs={}, groups={})
    part = CLASSES if report["task"] == "multiclass" else VALUES
    direct = build_task_report(result, summary, config={}, seed=1, inputs={}, groups={}, part=part)
    # build_cv_report adds the one section every task shares (schema 2.1)
    assert "evaluability" in via_task
    del via_task["evaluability"]
    assert report_json_text(via_task) == report_json_text(direct)
    assert report_kind(report["task"]).figure_names == tuple(
        sorted(set().union(*TASK_FIGURES.values()))
    )


def test_confusion_matrix_sums_to_patients(built):
    report, _, _ = built
    if report["task"] == "regression":
        assert all(m["confusion_matrix"] is None for m in report["models"].values())
        return
    counts = list(report["data"]["class_counts"].values())
    for model in report["models"].values():
        matrix = np.array(model["confusion_matrix"])
        assert matrix.shape == (3, 3)
        assert matrix.sum() == pytest.approx(N, abs=1e-5)
        np.testing.assert_allclose(matrix.sum(axis=1), counts, atol=1e-5)


def test_html_numbers_equal_json(built):
    report, _, _ = built
    page = report_kind(report["task"]).render(report)
    text = html.unescape(page)
    assert "http://" not in page.replace("http://www.w3.org", "")
    assert "<script" not in page and "https://" not in page
    assert html.escape(TRICKY) in page and TRICKY not in page
    for model in report["models"].values():
        for values in model["metrics"].values():
            assert format_metric(values) in text
    assert f"{report['best']} (best" in text
    assert "not computed" in text and "DeLong" in text
    for paragraph in report["methods"]["text"]:
        assert paragraph in text
    for name in TASK_FIGURES[report["task"]]:
        assert f'id="figure-{name}"' in page
    if report["task"] == "multiclass":
        first = report["models"]["lr"]["confusion_matrix"][0]
        assert "".join(f'<td class="num">{v:.1f}</td>' for v in first) in page
    else:
        assert "Target mean (SD)" in text


def test_figures_deterministic(built):
    from radfusion.pipeline.report._figures import (
        svg_text,
    )

    report, _, _ = built
    first = {name: svg_text(fig, name) for name, fig in task_figures(report).items()}
    second = {name: svg_text(fig, name) for name, fig in task_figures(report).items()}
    assert first == second and set(first) == set(TASK_FIGURES[report["task"]])


def test_write_task_report(built, tmp_path):
    report, result, _ = built
    predictions = result.predictions
    paths = write_report(report, predictions, tmp_path)
    assert set(paths) == {"json", "csv", "html", "figures"}
    for key, name in REPORT_FILES.items():
        assert paths[key] == tmp_path / name and paths[key].is_file()
    assert paths["json"].read_text(encoding="utf-8") == report_json_text(report)
    csv = pd.read_csv(paths["csv"])
    assert list(csv.columns) == list(predictions.columns) and len(csv) == len(predictions)
    for name in TASK_FIGURES[report["task"]]:
        assert (paths["figures"] / f"{name}.svg").stat().st_size > 0
        assert (paths["figures"] / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("<svg") == len(TASK_FIGURES[report["task"]])
    assert not re.search(r"\.tmp$", " ".join(p.name for p in tmp_path.iterdir()))


@pytest.mark.parametrize(("combiner", "words"), [(None, "by the mean"), ("convex", "convex")])
def test_methods_text_names_the_stacking_combiner(inputs, combiner, words):
    X, y, _ = _data("regression")
    result = cross_validate_models(
        {"stacking": Ridge()}, X, y, task="regression", folds=3, repeats=1, fused=["stacking"]
    )
    summary = summarize(result.predictions, task="regression", n_bootstrap=0)
    config = {"folds": 3, "repeats": 1, "models": {"stacking": {"combiner": combiner}}}
    report = build_cv_report(result, summary, config=config, seed=0, inputs={}, groups={})
    assert "Stacking combined" in report["methods"]["text"][0]
    assert words in report["methods"]["text"][0]
