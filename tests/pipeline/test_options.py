"""The model options of cv and train are the fusion estimators' parameters: derived from the
estimator's signature (nothing kept beside it), checked once by its constraints, recorded once in
``config.models``."""

from __future__ import annotations

import inspect

import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline import cli
from radfusion.pipeline.experiment import run_cv
from radfusion.pipeline.fusion import FusionClassifier, check_fusion_params
from radfusion.pipeline.persistence import train_model
from radfusion.pipeline.report import model_record
from tests.pipeline.conftest import multimodal_table


@pytest.mark.parametrize("command", [cli.cv, cli.train], ids=["cv", "train"])
def test_the_model_options_are_the_estimators_parameters(command):
    options = {
        name: parameter
        for name, parameter in inspect.signature(command).parameters.items()
        if name in inspect.signature(FusionClassifier).parameters and name != "strategy"
    }  # the command's own --strategy picks the models, not a parameter they share
    expected = set(inspect.signature(FusionClassifier).parameters) - set(cli.NOT_MODEL_OPTIONS)
    assert set(options) == expected
    # "not given" on the command line: the estimator's own default applies
    assert all(parameter.default is None for parameter in options.values())
    assert "params" not in inspect.signature(command).parameters


def test_a_new_estimator_parameter_becomes_an_option_with_its_docstring(monkeypatch):
    helps = {p.name: p.annotation.__metadata__[0].help for p in cli.model_options()}
    assert helps["select_k"].startswith("Per branch, keep the select_k best features")
    assert (
        "One of anova, mrmr" in helps["select_method"]
        and "Default: anova" in helps["select_method"]
    )
    assert "Default: lr, rf30 for pooled, lr, svm, rf, xgb otherwise" in helps["learners"]


def test_run_cv_and_train_take_the_estimators_parameters():
    for function in (run_cv, train_model):
        parameters = inspect.signature(function).parameters
        assert parameters["params"].default is None
        shared = set(inspect.signature(FusionClassifier).parameters) & set(parameters)
        assert shared <= {
            "strategy",
            "n_jobs",
        }  # train fits one strategy; cv runs folds in parallel


def test_bad_values_and_names_are_refused_all_at_once_before_any_work():
    with pytest.raises(InputError) as raised:
        check_fusion_params(
            {"learner": "knn", "select_k": 0, "select_method": "lasso", "colour": "red"}
        )
    message = str(raised.value)
    for part in ("'learner'", "'select_k'", "'select_method'", "'colour' is not a parameter"):
        assert part in message
    with pytest.raises(InputError, match="'strategy' is set per model by the comparison"):
        check_fusion_params({"strategy": "late"})
    assert check_fusion_params({}, random_state=3) == {"random_state": 3}


def test_calibration_and_the_declared_primary_model_reach_the_report(tmp_path):
    X, y, _ = multimodal_table(n=90, seed=4, missing_mr=0.0, p=4, k=2)
    path = tmp_path / "features.csv"
    X.assign(outcome=y).rename_axis("patient_id").reset_index().to_csv(path, index=False)
    report = run_cv(
        path,
        label="outcome",
        out=tmp_path / "report",
        params={"learners": ("lr",), "calibration": "sigmoid", "combiner": "logistic"},
        strategies=("late", "stacking"),
        folds=3,
        repeats=1,
        n_bootstrap=20,
        primary="late",
    )
    assert report["config"]["primary"] == "late" and report["primary"]["model"] == "late"
    assert report["config"]["models"]["stacking"]["calibration"] == "sigmoid"
    assert model_record(report["config"])["combiner"] == "logistic"
    assert {"options", "preprocessing", "learner", "stacking_learners"}.isdisjoint(report["config"])
    # explanations look below the calibrator: the stacking weights are still found
    assert report["explanations"]["meta_weights"]["model"] == "stacking"
    with pytest.raises(InputError, match="--primary 'early' is not one of the models run"):
        run_cv(
            path,
            label="outcome",
            out=tmp_path / "other",
            params={"learners": ("lr",)},
            strategies=("late",),
            primary="early",
        )
