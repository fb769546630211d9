"""The survival task wired through the CV engine, the run, the report and the model file."""

from __future__ import annotations

import numpy as np
import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline.targets import TASK_OBJECTS, SurvivalTask, get_task

from .conftest import MULTIMODAL_GROUPS
from .test_survival import STRATEGIES, survival_table

pytest.importorskip("sksurv", reason="survival models need scikit-survival")

from sksurv.metrics import concordance_index_censored  # noqa: E402

from radfusion.pipeline.fusion import (
    FusionSurvival,  # noqa: E402
)
from radfusion.pipeline.fusion._survival import (
    SURVIVAL_SKIPPED,  # noqa: E402
)
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


@pytest.mark.slow
def test_permuted_outcome_gives_chance_through_the_engine(cohort):
    """The permuted-outcome law through the CV engine and its summary: with (time, event)
    pairs shuffled over patients, each model's C-index averages 0.5 ± 0.05 over draws."""
    X, y, task = cohort
    models = {s: FusionSurvival(s, **p) for s, p in STRATEGIES.items()}
    rng = np.random.default_rng(0)
    scores = []
    for draw in range(4):
        shuffled = y[rng.permutation(len(y))]
        result = cross_validate_models(
            models, X, shuffled, folds=3, repeats=1, seed=draw, task=task
        )
        summary = summarize(result.predictions, task=task, n_bootstrap=0)
        scores.append([summary[m]["harrell_c"]["mean"] for m in models])
    mean = np.mean(scores, axis=0)
    assert (np.abs(mean - 0.5) < 0.05).all(), dict(zip(models, mean, strict=True))


def test_folds_need_events_and_censored_patients(cohort):
    X, y, task = cohort
    few = y.copy()
    few["event"][:] = False
    few["event"][:2] = True
    with pytest.raises(InputError, match="2 patient\\(s\\) with an event"):
        cross_validate_models({"early": FusionSurvival("early")}, X, few, folds=3, task=task)


# ----------------------------------------------------------------------------- cv: CLI, run, report


def write_table(path, n=90, seed=0):
    X, y = survival_table(n=n, seed=seed)
    table = X.copy()
    table["time"] = y["time"]
    table["event"] = y["event"].astype(int)
    table.index.name = "patient_id"
    table.to_csv(path)
    return table


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    from typer.testing import CliRunner

    from radfusion.pipeline.cli import app

    folder = tmp_path_factory.mktemp("survival_cv")
    table = write_table(folder / "table.csv")
    out = folder / "report"
    result = CliRunner().invoke(
        app,
        [
            "cv", str(folder / "table.csv"), "--out", str(out), "--task", "survival",
            "--time", "time", "--event", "event", "--folds", "3", "--repeats", "2",
            "--bootstrap", "20", "--learners", "coxnet", "--jobs", "1", "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return table, out, result.output


def test_cv_writes_a_survival_report(cli_run):
    import json

    import pandas as pd

    table, out, output = cli_run
    assert "Harrell C" in output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["task"] == "survival"
    assert report["config"]["skipped_models"] == SURVIVAL_SKIPPED  # pooled and shared
    assert report["config"]["models"]["early"]["learner"] == "coxnet"
    assert list(report["models"])[-3:] == ["early", "late", "stacking"]
    data = report["data"]
    assert data["events"] == int(table["event"].sum()) and data["n_patients"] == len(table)
    # reverse Kaplan–Meier median follow-up: within the observed times, beyond the median time
    assert np.median(table["time"]) <= data["median_follow_up"] <= table["time"].max()
    early = report["models"]["early"]
    assert early["metrics"]["harrell_c"]["mean"] > 0.6
    assert early["risk_groups"]["p_value"] < 0.05  # the signal separates the risk groups
    assert early["risk_groups"]["high"]["n"] + early["risk_groups"]["low"]["n"] == len(table)
    assert len(early["td_auc"]) == len(report["curves"]["times"])
    assert len(early["calibration"]["predicted"]) == 5
    tests = report["comparisons"]["tests"]
    assert {t["fused"] for t in tests} == {"early", "late", "stacking"}
    assert len(tests) == 3 * 3 and all(t["ci_low"] <= t["delta"] <= t["ci_high"] for t in tests)
    delta = next(t for t in tests if t["fused"] == "early" and t["single"] == "MR__tumor")
    c = {m: v["metrics"]["harrell_c"]["mean"] for m, v in report["models"].items()}
    assert delta["delta"] == pytest.approx(c["early"] - c["MR__tumor"], abs=1e-6)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Kaplan–Meier" in html and "<svg" in html and "http" not in html.split("<body>")[0]
    assert (out / "figures" / "survival_km.svg").is_file()
    predictions = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    assert {"event", "time", "risk", "train_median_risk"} <= set(predictions.columns)


def test_cv_errors_name_the_patients(tmp_path):
    from radfusion.pipeline.experiment import run_cv

    table = write_table(tmp_path / "table.csv", n=30)
    table.loc["P003", "time"] = -1.0
    table.loc["P005", "event"] = 2
    table.to_csv(tmp_path / "bad.csv")
    with pytest.raises(InputError) as error:
        run_cv(tmp_path / "bad.csv", task="survival", time="time", event="event", out=tmp_path)
    text = str(error.value)
    assert "P003" in text and "negative" in text and "P005" in text and "bad.csv" in text
    with pytest.raises(InputError, match="no column 'follow_up'"):
        run_cv(
            tmp_path / "table.csv", task="survival", time="follow_up", event="event", out=tmp_path
        )
    with pytest.raises(InputError, match="tuning has no survival search space"):
        run_cv(
            tmp_path / "table.csv", task="survival", time="time", event="event", out=tmp_path,
            params=dict(tune=True),
        )  # fmt: skip
    with pytest.raises(
        InputError, match="combiner. parameter of FusionSurvival must be a str among"
    ):
        run_cv(
            tmp_path / "table.csv", task="survival", time="time", event="event", out=tmp_path,
            params=dict(combiner="platt"),
        )  # fmt: skip


# ----------------------------------------------------------------------------- train / predict


def test_cv_train_predict_round_trip(cli_run, tmp_path):
    import json

    import pandas as pd
    from typer.testing import CliRunner

    from radfusion.pipeline.cli import app
    from radfusion.pipeline.persistence import load_model, predict_table

    table, out, _ = cli_run
    features = out.parent / "table.csv"
    model_file = tmp_path / "model.skops"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "train", str(features), "--out", str(model_file), "--from-report",
            str(out / "report.json"), "--strategy", "late", "--quiet",
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    trained = load_model(model_file)  # every type in the file is on the trust list
    assert isinstance(trained.estimator, FusionSurvival)
    assert list(trained.estimator.get_params()["learners"]) == ["coxnet"]
    assert trained.settings["horizons"] == pytest.approx(report["data"]["horizons"])
    predictions = tmp_path / "predictions.csv"
    result = runner.invoke(
        app, ["predict", str(model_file), str(features), "--out", str(predictions)]
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(predictions, dtype={"patient_id": str})
    horizons = report["data"]["horizons"]
    assert list(written.columns) == ["patient_id", "risk"] + [
        f"survival_at_{h:g}" for h in horizons
    ]
    # the saved model is the model fitted in memory on the same table
    X = table.drop(columns=["time", "event"])
    y = np.rec.fromarrays(
        [table["event"].to_numpy(bool), table["time"].to_numpy()], names=["event", "time"]
    )
    params = {k: v for k, v in report["config"]["models"]["late"].items() if k != "strategy"}
    fitted = FusionSurvival("late", **params).fit(X, y)
    np.testing.assert_allclose(written["risk"], fitted.predict(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        written.iloc[:, 2:], fitted.predict_survival(X, horizons), rtol=1e-6, atol=1e-9
    )
    again = predict_table(trained, X.reset_index())
    np.testing.assert_allclose(again["risk"], written["risk"], rtol=1e-6, atol=1e-9)


def test_volume_baseline_is_a_survival_model(cohort):
    """The ROI-volume baseline that build_estimators adds can be fitted."""
    from radfusion.pipeline.fusion import build_estimators

    X, y, _ = cohort
    X = X.rename(columns={"CT__tumor__f0": "CT__tumor__original_shape_MeshVolume"})
    models = build_estimators(list(MULTIMODAL_GROUPS), task="survival", columns=list(X.columns))
    assert "volume" in models
    model = models["volume"].fit(X, y)
    assert model.groups_ == {"volume": ["CT__tumor__original_shape_MeshVolume"]}
    assert model.score(X, y) > 0.55


# ----------------------------------------------------------------------------- edges of follow-up


def test_times_rounded_to_whole_months_keep_every_evaluation_time_inside_the_follow_up():
    """Rounding ties many patients at the last follow-up; the default horizons and the Brier
    grid are then taken among the times before it instead of refusing the run."""
    _, y = survival_table(n=90)
    months = y.copy()
    months["time"] = np.clip(np.maximum(1, np.round(y["time"] * 12)), None, 6)
    assert np.quantile(months["time"][months["event"]], 0.75) == 6  # the old refusal
    task = SurvivalTask.for_target(months)
    assert max(task.horizons) < 6 and max(task.grid) < 6
    # the report records the bound (config.evaluated_before) and the methods text says why
    assert task.before == 6 and task.target_config(label=None)["evaluated_before"] == 6
    before = months["time"][months["event"] & (months["time"] < 6)]
    np.testing.assert_allclose(task.horizons, np.unique(np.quantile(before, [0.25, 0.5, 0.75])))
    untouched = SurvivalTask.for_target(y)  # continuous times: the quantiles as before
    np.testing.assert_allclose(
        untouched.horizons, np.quantile(y["time"][y["event"]], [0.25, 0.5, 0.75])
    )
    assert untouched.before is None and "evaluated_before" not in untouched.target_config(
        label=None
    )


def test_a_table_too_small_for_survival_cv_is_a_clear_error(cohort):
    X, y, task = cohort
    one = y[y["event"]][:1]
    with pytest.raises(InputError, match=r"event times \(1\) are all at or after"):
        SurvivalTask.for_target(one)
    single = y.copy()
    single["event"][:] = False
    single["event"][0] = True
    with pytest.raises(InputError, match="cross-validation needs at least 2 of each"):
        cross_validate_models({"early": FusionSurvival("early")}, X, single, folds=2, task=task)


def test_a_held_out_site_with_the_longest_follow_ups_is_evaluated_within_the_others(tmp_path):
    """Leave-one-site-out where one site holds every long follow-up: the models of the other
    folds cannot predict survival beyond their training follow-up, so the evaluation times
    lie before it (recorded); horizons given beyond it are an error naming the site."""
    from radfusion.pipeline.experiment import run_cv

    table = write_table(tmp_path / "table.csv", n=90)
    rank = table["time"].rank(method="first")
    table["site"] = np.where(rank > 60, "C", np.where(rank > 30, "B", "A"))
    table.to_csv(tmp_path / "sites.csv")
    limit = float(table.loc[table["site"] != "C", "time"].max())
    kwargs = dict(task="survival", time="time", event="event", group_by="site")
    report = run_cv(
        tmp_path / "sites.csv", out=tmp_path / "out", strategies=("early",), n_bootstrap=10,
        params=dict(learners=("coxnet",)), **kwargs,
    )  # fmt: skip
    config = report["config"]
    assert config["evaluated_before"] == pytest.approx(limit, abs=1e-6)
    assert max(config["horizons"]) < limit and report["data"]["ibs_grid"]["stop"] < limit
    assert np.isfinite(report["models"]["early"]["metrics"]["harrell_c"]["mean"])
    assert "the longest follow-up every leave-one-group-out training set" in " ".join(
        report["methods"]["text"]
    )
    with pytest.raises(InputError, match="site 'C' is held out") as error:
        run_cv(tmp_path / "sites.csv", out=tmp_path / "o2", horizons=[limit * 1.5], **kwargs)
    assert f"{limit:g}" in str(error.value)


class _NoSurvival(FusionSurvival):
    """Fits, then cannot say the survival at the evaluation times."""

    def predict_survival(self, X, times):
        raise ValueError("x must be within [0; 0.5]")


def test_a_model_without_an_output_at_the_evaluation_times_is_skipped_with_why(cohort):
    X, y, task = cohort
    result = cross_validate_models(
        {"early": FusionSurvival("early"), "broken": _NoSurvival("early")},
        X, y, folds=3, repeats=1, task=task, skip_failing=True,
    )  # fmt: skip
    assert set(result.skipped) == {"broken"}
    assert "gives no output" in result.skipped["broken"]
    assert "x must be within" in result.skipped["broken"]
