"""The survival task wired through the CV engine, the run, the report and the model file."""

from __future__ import annotations

import numpy as np
import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline.targets import TASK_OBJECTS, SurvivalTask, get_task

from .test_survival import STRATEGIES, survival_table

pytest.importorskip("sksurv", reason="survival models need scikit-survival")

from sksurv.metrics import concordance_index_censored  # noqa: E402

from radfusion.pipeline.fusion import FusionSurvival  # noqa: E402
from radfusion.pipeline.validation import cross_validate_models, summarize  # noqa: E402


@pytest.fixture(scope="module")
def cohort():
    X, y = survival_table(n=120)
    return X, y, SurvivalTask.for_target(y)


@pytest.fixture(scope="module")
def result(cohort):
    X, y, task = cohort
    models = {s: FusionSurvival(s, **p) for s, p in STRATEGIES.items()}
    return cross_validate_models(models, X, y, folds=3, repeats=1, task=task)


def test_survival_task_is_registered_and_resolves_its_times_once(cohort):
    _, y, task = cohort
    assert get_task("survival") == task and "survival" in TASK_OBJECTS
    observed = y["time"][y["event"]]
    np.testing.assert_allclose(task.horizons, np.quantile(observed, [0.25, 0.5, 0.75]))
    assert task.primary_metric == task.metrics[0] == "harrell_c"
    assert task.metrics[-1] == "ibs" and len(task.metrics) == 3 + len(task.horizons) + 1
    with pytest.raises(InputError, match="horizon"):
        SurvivalTask.for_target(y, horizons=[y["time"].max() * 2])
    with pytest.raises(ValueError, match="evaluation times"):
        TASK_OBJECTS["survival"].metrics  # noqa: B018


def test_cv_outputs_risk_training_cut_off_and_survival(cohort, result):
    X, y, task = cohort
    frame = result.predictions
    assert list(frame.columns[:7]) == [
        "patient_id", "model", "repeat", "fold", "event", "time", "risk"
    ]  # fmt: skip
    assert [c for c in frame.columns if c.startswith("survival_at_")] == [
        f"survival_at_{t:g}" for t in task.times
    ]
    # the cut-off is one value per fold: the model's median risk on its training rows
    assert (frame.groupby(["model", "fold"])["train_median_risk"].nunique() == 1).all()
    surv = frame.filter(like="survival_at_").to_numpy()
    assert ((surv >= 0) & (surv <= 1)).all() and (np.diff(surv, axis=1) <= 1e-12).all()
    order = np.argsort(X.index.to_numpy())
    late = frame[frame["model"] == "late"]
    assert (late["time"].to_numpy() == y["time"][order]).all()


def test_summary_is_scikit_survivals_c_index_with_a_bootstrap_interval(cohort, result):
    _, y, task = cohort
    summary = summarize(result.predictions, task=task, n_bootstrap=20, seed=0)
    assert list(summary) == ["early", "late", "stacking"]
    frame = result.predictions[result.predictions["model"] == "early"]
    expected = concordance_index_censored(
        frame["event"].to_numpy(bool), frame["time"].to_numpy(), frame["risk"].to_numpy()
    )[0]
    c = summary["early"]["harrell_c"]
    assert c["mean"] == pytest.approx(expected)
    assert c["ci_low"] < c["mean"] < c["ci_high"] and c["mean"] > 0.6
    assert 0 < summary["early"]["ibs"]["mean"] < 0.25


def test_folds_need_events_and_censored_patients(cohort):
    X, y, task = cohort
    few = y.copy()
    few["event"][:] = False
    few["event"][:2] = True
    with pytest.raises(InputError, match="2 patient\\(s\\) with an event"):
        cross_validate_models({"early": FusionSurvival("early")}, X, few, folds=3, task=task)
