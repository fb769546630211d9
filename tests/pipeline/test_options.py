"""One options object for cv and train: the same options, the same defaults, from the CLI
and from Python."""

from __future__ import annotations

import inspect
from dataclasses import fields

import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline import cli
from radfusion.pipeline.experiment import run_cv
from radfusion.pipeline.fusion import FusionClassifier
from radfusion.pipeline.learners import LEARNERS
from radfusion.pipeline.options import ModelOptions
from radfusion.pipeline.persistence import train_model
from tests.pipeline.conftest import multimodal_table

#: ModelOptions field -> its command-line parameter, where the names differ.
CLI_NAMES = {"learners": "stack_learner"}


def _cli_defaults(command) -> dict:
    return {
        name: parameter.default for name, parameter in inspect.signature(command).parameters.items()
    }


@pytest.mark.parametrize("command", [cli.cv, cli.train], ids=["cv", "train"])
def test_every_model_option_is_a_cli_option_with_the_same_default(command):
    defaults = _cli_defaults(command)
    for field in fields(ModelOptions):
        name = CLI_NAMES.get(field.name, field.name)
        assert name in defaults, f"{command.__name__} has no option for {field.name}"
        expected = None if field.name == "learners" else field.default  # None: every learner
        assert defaults[name] == expected, field.name
    assert ModelOptions().learners == LEARNERS


def test_cv_and_train_take_the_options_object_not_loose_model_options():
    for function in (run_cv, train_model):
        parameters = inspect.signature(function).parameters
        assert parameters["options"].default is None
        assert not {f.name for f in fields(ModelOptions)} & set(parameters)


def test_the_estimator_has_every_option_with_the_same_default():
    estimator = FusionClassifier().get_params()
    params = ModelOptions().params(random_state=0)
    assert set(params) <= set(estimator)
    for name, value in params.items():
        assert estimator[name] == value or (name == "learners" and tuple(estimator[name]) == value)


def test_options_round_trip_through_json_data():
    options = ModelOptions(learners=["lr", "rf"], harmonize=True, select_k=5, icc_table="icc.csv")
    assert ModelOptions.from_dict(options.as_dict()) == options
    with pytest.raises(ValueError, match="unknown model options: colour"):
        ModelOptions.from_dict({"colour": "red"})


def test_bad_values_are_refused_all_at_once():
    with pytest.raises(InputError) as raised:
        ModelOptions(learner="knn", select_k=0, select_method="lasso", correlation_threshold=2.0)
    message = str(raised.value)
    for part in ("'knn'", "select_k 0", "select_method 'lasso'", "correlation_threshold 2.0"):
        assert part in message


def test_calibration_and_the_declared_primary_model_reach_the_report(tmp_path):
    X, y, _ = multimodal_table(n=90, seed=4, missing_mr=0.0, p=4, k=2)
    path = tmp_path / "features.csv"
    X.assign(outcome=y).rename_axis("patient_id").reset_index().to_csv(path, index=False)
    report = run_cv(
        path,
        label="outcome",
        out=tmp_path / "report",
        options=ModelOptions(learners=("lr",), calibration="sigmoid", combiner="logistic"),
        strategies=("late", "stacking"),
        folds=3,
        repeats=1,
        n_bootstrap=20,
        primary="late",
    )
    assert report["config"]["primary"] == "late" and report["primary"]["model"] == "late"
    assert report["config"]["models"]["stacking"]["calibration"] == "sigmoid"
    # explanations look below the calibrator: the stacking weights are still found
    assert report["explanations"]["meta_weights"]["model"] == "stacking"
    with pytest.raises(InputError, match="--primary 'early' is not one of the models run"):
        run_cv(
            path,
            label="outcome",
            out=tmp_path / "other",
            options=ModelOptions(learners=("lr",)),
            strategies=("late",),
            primary="early",
        )
