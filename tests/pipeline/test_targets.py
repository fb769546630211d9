"""Multiclass and continuous targets: task inference, metrics, every fusion strategy with a
missing modality, chance on a permuted target, and the CLI's cv / train / predict."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    mean_absolute_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from typer.testing import CliRunner

from radfusion.pipeline.cli import app
from radfusion.pipeline.fusion import FUSED, build_model
from radfusion.pipeline.learners import LEARNERS
from radfusion.pipeline.persistence import load_model, predict_table, train_model
from radfusion.pipeline.targets import (
    MULTICLASS_METRICS,
    REGRESSION_METRICS,
    infer_task,
    multiclass_metrics,
    regression_metrics,
)
from radfusion.pipeline.validation import cross_validate_models, summarize

GROUPS = ("CT__tumor", "MR__tumor")


def make_table(task, n=150, seed=0, missing_mr=0.3, permute=False):
    """Two groups, each carrying half of a continuous score; MR absent for ``missing_mr`` of
    the patients. Target: the score (regression) or its terciles (multiclass)."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, len(GROUPS)))
    X = pd.DataFrame(
        {
            f"{g}__f{j}": rng.normal(size=n) + (2 * latent[:, k] if j == 0 else 0.0)
            for k, g in enumerate(GROUPS)
            for j in range(5)
        },
        index=pd.Index([f"P{i:03d}" for i in range(n)], name="patient_id"),
    )
    groups = {g: [c for c in X if c.startswith(g)] for g in GROUPS}
    X.loc[X.index[rng.permutation(n)[: round(missing_mr * n)]], groups["MR__tumor"]] = np.nan
    score = latent.sum(axis=1) + 0.3 * rng.normal(size=n)
    y = (
        score * 10 + 50
        if task == "regression"
        else np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    )
    return X, (rng.permutation(y) if permute else y), groups


@pytest.mark.parametrize(
    ("values", "task"),
    [
        ([0, 1, 1, 0], "binary"),
        (["yes", "no", "no"], "binary"),
        (["G1", "G2", "G3", "G1"], "multiclass"),
        ([1, 2, 3, 2, 1], "multiclass"),
        ([1.0, 2.0, 3.0, 2.0], "multiclass"),
        (np.linspace(0, 1, 20), "regression"),
        (list(range(30)), "regression"),
        ([0.5, None, 1.5, 2.5], "regression"),
    ],
)
def test_infer_task(values, task):
    assert infer_task(values) == task


def test_multiclass_metrics_equal_scikit_learn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 80)
    proba = rng.dirichlet(np.ones(4), 80)
    got = dict(
        zip(
            MULTICLASS_METRICS,
            multiclass_metrics(np.ones((1, 80)), y, proba[None])[0, 0],
            strict=True,
        )
    )
    predicted = proba.argmax(axis=1)
    expected = {
        "roc_auc_ovr": roc_auc_score(y, proba, multi_class="ovr"),
        "accuracy": accuracy_score(y, predicted),
        "balanced_accuracy": balanced_accuracy_score(y, predicted),
        "f1_macro": f1_score(y, predicted, average="macro"),
        "precision_macro": precision_score(y, predicted, average="macro", zero_division=0),
        "recall_macro": recall_score(y, predicted, average="macro"),
        "log_loss": log_loss(y, proba),
        "brier": np.mean(((proba - np.eye(4)[y]) ** 2).sum(axis=1)),
    }
    assert got == pytest.approx(expected, rel=1e-9)


def test_regression_metrics_equal_scikit_learn_and_weights_are_multiplicities():
    rng = np.random.default_rng(4)
    y = rng.normal(size=60)
    prediction = y + rng.normal(size=60)
    got = dict(
        zip(
            REGRESSION_METRICS,
            regression_metrics(np.ones((1, 60)), y, prediction[None])[0, 0],
            strict=True,
        )
    )
    assert got == pytest.approx(
        {
            "r2": r2_score(y, prediction),
            "mae": mean_absolute_error(y, prediction),
            "rmse": np.sqrt(np.mean((y - prediction) ** 2)),
            "pearson_r": np.corrcoef(y, prediction)[0, 1],
        },
        rel=1e-9,
    )
    weights = rng.integers(0, 3, 60)
    rows = np.repeat(np.arange(60), weights)
    weighted = regression_metrics(weights[None], y, prediction[None])[0, 0]
    assert weighted[0] == pytest.approx(r2_score(y[rows], prediction[rows]), rel=1e-9)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("strategy", ["single", *FUSED])
def test_every_strategy_scores_every_patient_and_learns(task, strategy):
    X, y, groups = make_table(task)
    chosen = {"CT__tumor": groups["CT__tumor"]} if strategy == "single" else groups
    model = build_model(chosen, strategy, learners=["lr", "xgb"], task=task)
    predictions = cross_validate_models(
        {strategy: model}, X, y, folds=3, repeats=1, task=task
    ).predictions
    values = (
        predictions.filter(like="proba_") if task == "multiclass" else predictions[["prediction"]]
    )
    assert len(predictions) == len(X) and np.isfinite(values.to_numpy()).all()
    metrics = summarize(predictions, task=task, n_bootstrap=50)[strategy]
    if task == "multiclass":
        assert np.allclose(values.sum(axis=1), 1.0)
        assert metrics["roc_auc_ovr"]["mean"] > 0.7
    else:
        assert metrics["r2"]["mean"] > 0.3
    assert (
        metrics[MULTICLASS_METRICS[0] if task == "multiclass" else "r2"]["ci_low"]
        < metrics[MULTICLASS_METRICS[0] if task == "multiclass" else "r2"]["mean"]
    )


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("learner", LEARNERS)
def test_each_learner_learns_the_task(task, learner):
    X, y, groups = make_table(task, missing_mr=0.0)
    model = build_model(groups, "early", learner=learner, task=task)
    predictions = cross_validate_models(
        {learner: model}, X, y, folds=3, repeats=1, task=task
    ).predictions
    metrics = summarize(predictions, task=task, n_bootstrap=0)[learner]
    assert (
        metrics["roc_auc_ovr"]["mean"] > 0.7
        if task == "multiclass"
        else metrics["r2"]["mean"] > 0.3
    ), metrics


@pytest.mark.parametrize("task", ["multiclass", "regression"])
@pytest.mark.parametrize("strategy", ["early", "stacking", "shared"])
def test_permuted_target_gives_chance(task, strategy):
    """Selection-free but supervised steps (stacking's meta-learner, the shared PLS space) are
    refitted in each training fold, so a permuted target scores at chance."""
    X, y, groups = make_table(task, n=120, seed=5, permute=True)
    model = build_model(groups, strategy, learners=["lr"], task=task)
    predictions = cross_validate_models(
        {strategy: model}, X, y, folds=3, repeats=2, task=task
    ).predictions
    metrics = summarize(predictions, task=task, n_bootstrap=0)[strategy]
    if task == "multiclass":
        assert abs(metrics["roc_auc_ovr"]["mean"] - 0.5) < 0.1
    else:
        assert metrics["r2"]["mean"] < 0.05


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_cli_cv_train_and_predict(task, tmp_path):
    X, y, _ = make_table(task, n=90)
    labels = {0: "low", 1: "mid", 2: "high"}
    table = X.assign(outcome=[labels[v] for v in y] if task == "multiclass" else y)
    path = tmp_path / "table.csv"
    table.to_csv(path)
    runner = CliRunner()
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        [
            "cv",
            str(path),
            "--label",
            "outcome",
            "--out",
            str(out),
            "--folds",
            "3",
            "--repeats",
            "1",
            "--learners",
            "lr",
            "--jobs",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["task"] == task and report["config"]["task"] == task
    primary = "roc_auc_ovr" if task == "multiclass" else "r2"
    assert report["best"] == max(
        report["models"], key=lambda m: report["models"][m]["metrics"][primary]["mean"]
    )
    assert (out / "report.html").exists()

    model = tmp_path / "model.skops"
    result = runner.invoke(
        app,
        ["train", str(path), "--label", "outcome", "--out", str(model), "--learners", "lr"],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["predict", str(model), str(path), "--out", str(tmp_path / "p.csv")]
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(tmp_path / "p.csv")
    in_memory = train_model(path, label="outcome", params=dict(learners=["lr"]))
    expected = predict_table(in_memory, path)
    assert predict_table(load_model(model), path).equals(expected)
    if task == "multiclass":
        assert sorted(c for c in written if c.startswith("probability_")) == [
            "probability_high",
            "probability_low",
            "probability_mid",
        ]
        assert set(written["predicted"]) <= set(labels.values())
        assert np.allclose(
            written.filter(like="probability_").to_numpy(),
            expected.filter(like="probability_").to_numpy(),
        )
    else:
        assert np.allclose(written["predicted"], expected["predicted"])
