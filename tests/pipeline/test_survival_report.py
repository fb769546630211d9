"""The survival report's methods text, checklist mapping and leave-one-group-out section, on
real survival cross-validation runs (small tables with a known hazard)."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from .conftest import MULTIMODAL_GROUPS
from .test_survival import survival_table

pytest.importorskip("sksurv", reason="survival models need scikit-survival")

from sksurv.metrics import concordance_index_censored  # noqa: E402

from radfusion.pipeline.experiment import run_cv  # noqa: E402
from radfusion.pipeline.fusion import FusionSurvival  # noqa: E402
from radfusion.pipeline.report import (
    STATUSES,
    SURVIVAL_ITEMS,
)
from radfusion.pipeline.report._checklists import (
    ANSWERED,
    PARTLY,
    USER,
)
from radfusion.pipeline.report._methods import (
    extraction_paragraphs,
)
from radfusion.pipeline.targets import SurvivalTask  # noqa: E402
from radfusion.pipeline.validation import cross_validate_models, group_metrics  # noqa: E402

SETTINGS = (
    "{'normalize': False, 'resampledPixelSpacing': [1, 1, 1], 'interpolator': 'sitkBSpline', "
    "'binWidth': 25, 'force2D': False, 'distances': [1], 'label': 1}"
)
RUN = dict(
    task="survival",
    time="time",
    event="event",
    folds=3,
    repeats=1,
    n_bootstrap=20,
    strategies=("single", "early", "late"),
)


def write_cohort(folder, n=90):
    """A survival table with a clinical column and a centre column, and the PyRadiomics
    diagnostics sidecar ``radfusion extract`` writes beside a feature table."""
    X, y = survival_table(n=n)
    table = X.copy()
    rng = np.random.default_rng(1)
    table["age"] = np.round(60 + 10 * rng.normal(size=n), 1)
    table["centre"] = np.array(["A", "B", "C"])[np.arange(n) % 3]
    table["time"] = y["time"]
    table["event"] = y["event"].astype(int)
    table.index.name = "patient_id"
    path = folder / "features.csv"
    table.to_csv(path)
    pd.DataFrame(
        [
            {
                "patient_id": patient,
                "modality": group.split("__")[0],
                "mask": "tumor",
                "diagnostics_Versions_PyRadiomics": "v3.1.4",
                "diagnostics_Configuration_Settings": SETTINGS,
                "diagnostics_Configuration_EnabledImageTypes": "{'Original': {}}",
            }
            for patient in table.index
            for group in MULTIMODAL_GROUPS
        ]
    ).to_csv(folder / "features.diagnostics.csv", index=False)
    return path, table


@pytest.fixture(scope="module")
def kfold(tmp_path_factory):
    folder = tmp_path_factory.mktemp("survival_report")
    path, table = write_cohort(folder)
    report = run_cv(path, out=folder / "kfold", **RUN)
    return report, table, folder / "kfold"


@pytest.fixture(scope="module")
def by_centre(tmp_path_factory):
    folder = tmp_path_factory.mktemp("survival_logo")
    path, table = write_cohort(folder)
    report = run_cv(path, out=folder / "logo", group_by="centre", **RUN)
    return report, table, folder / "logo"


def _items(report):
    return {(i["checklist"], i["item"]): i for i in report["checklists"]["items"]}


def test_checklists_follow_the_survival_report(kfold):
    report, table, _ = kfold
    checklists = report["checklists"]
    assert [(i["checklist"], i["item"], i["where"]) for i in checklists["items"]] == [
        (c, item, "-" if where == "groups" else where) for c, item, where, _ in SURVIVAL_ITEMS
    ]  # no leave-one-group-out section in a K-fold run: nothing to point to
    assert {i["status"] for i in checklists["items"]} <= set(STATUSES)
    for name, counts in checklists["counts"].items():
        assert sum(counts.values()) == sum(1 for c, *_ in SURVIVAL_ITEMS if c == name)
    notes = " ".join(i["note"] for i in checklists["items"])
    assert "DeLong" not in notes and "decision curve" not in notes and "class" not in notes
    items = _items(report)
    events = int(table["event"].sum())
    size = items["TRIPOD+AI", "10 Sample size"]
    assert size["status"] == USER and f"{events} events" in size["note"]
    assert items["TRIPOD+AI", "21 Model development: participants and events"]["status"] == (
        ANSWERED
    )
    assert "stratified by the event" in items["CLEAR", "Data partitioning"]["note"]
    # the sidecar beside the table was read: the extraction items are answered
    assert items["CLEAR", "Feature extraction: software, version and settings"]["status"] == (
        ANSWERED
    )
    calibration = items["CLEAR", "Calibration"]
    horizons = report["data"]["horizons"]
    assert calibration["status"] == PARTLY
    assert f"t = {horizons[len(horizons) // 2]:g}" in calibration["note"]
    # clinical-only and imaging groups are compared with the fused models (ΔC tests)
    assert items["METRICS", "24 Comparison with a non-radiomic approach"]["status"] == ANSWERED
    assert items["METRICS", "25 Comparison with simple or classical statistical models"][
        "status"
    ] == (ANSWERED)
    # what the run does not hold stays with the user
    assert items["TRIPOD+AI", "12 Analytical methods: heterogeneity across clusters"]["status"] == (
        USER
    )
    assert items["CLEAR", "Model interpretability / explainability"]["status"] == USER
    assert items["CLEAR", "Harmonization"]["status"] == USER


def test_html_shows_the_checklists_with_working_links(kfold):
    _, _, out = kfold
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="checklists"' in html and "Reporting checklists" in html
    targets = set(re.findall(r'<a href="#([^"]+)">', html))
    ids = set(re.findall(r'id="([^"]+)"', html))
    assert {"figure-survival_km", "figure-survival_calibration", "performance"} <= targets
    assert targets <= ids  # every link lands on a section of this report
    assert 'href="#groups"' not in html  # no leave-one-group-out section in a K-fold run


def test_methods_state_the_extraction_the_binary_way(kfold):
    report, _, _ = kfold
    methods = report["methods"]
    assert methods["extraction"]["modalities"]["CT"]["pyradiomics"] == "v3.1.4"
    expected = extraction_paragraphs(report, methods["extraction"], methods["feature_classes"])
    assert methods["text"][: len(expected)] == expected  # the binary report's own paragraphs
    text = "\n".join(methods["text"])
    assert "PyRadiomics v3.1.4" in text and "fixed bin width of 25" in text
    assert "resampled to 1 x 1 x 1 mm" in text and "features.diagnostics.csv" in text
    assert "3-fold cross-validation stratified by the event indicator" in text
    assert "a single repetition" in text and "stacking" not in text  # stacking did not run
    assert methods["learners"]["coxnet"]["params"]["l1_ratio"] == 0.5
    assert list(methods["learners"]) == ["coxnet"]


def test_leave_one_group_out_reports_each_centre(by_centre):
    report, table, out = by_centre
    assert report["config"]["group_by"] == "centre"
    assert report["config"]["held_out_groups"] == ["A", "B", "C"]
    assert report["config"]["folds"] == 3 and report["config"]["repeats"] == 1
    assert report["data"]["groups"]["clinical"] == 1  # age only: the centre is no predictor
    groups = report["groups"]
    assert groups["column"] == "centre" and "Leave-one-group-out" in groups["method"]
    predictions = pd.read_csv(out / "predictions.csv", dtype={"patient_id": str})
    for model, rows in groups["models"].items():
        assert [r["group"] for r in rows] == ["A", "B", "C"]
        for k, row in enumerate(rows):
            members = table.index[table["centre"] == row["group"]]
            assert row["n"] == len(members)
            assert row["events"] == int(table.loc[members, "event"].sum())
            part = predictions[(predictions["model"] == model) & (predictions["fold"] == k)]
            assert set(part["patient_id"]) == set(members)
            c = concordance_index_censored(
                part["event"].to_numpy(bool), part["time"].to_numpy(), part["risk"].to_numpy()
            )[0]
            assert row["harrell_c"]["mean"] == pytest.approx(c)
            assert row["harrell_c"]["ci_low"] <= c <= row["harrell_c"]["ci_high"]
    items = _items(report)
    assert items["METRICS", "4 Multi-center"]["status"] == PARTLY
    assert items["METRICS", "4 Multi-center"]["where"] == "groups"
    assert "Leave-one-group-out" in items["CLEAR", "Data partitioning"]["note"]
    assert any(
        "leave-one-group-out cross-validation by 'centre'" in p for p in report["methods"]["text"]
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert 'id="groups"' in html and "per held-out centre" in html


def test_a_held_out_group_without_events_has_no_c_index():
    X, y = survival_table(n=60)
    censored = np.flatnonzero(~y["event"])[:8]
    groups = np.where(np.isin(np.arange(len(y)), censored), "quiet", "rest")
    groups[np.flatnonzero(y["event"])[::2]] = "other"
    task = SurvivalTask.for_target(y)
    result = cross_validate_models(
        {"early": FusionSurvival("early")}, X, y, task=task, groups=groups
    )
    rows = {r["group"]: r for r in group_metrics(result, n_bootstrap=10)["early"]}
    assert rows["quiet"]["events"] == 0 and rows["quiet"]["harrell_c"] is None
    assert "no event" in rows["quiet"]["note"]
    assert rows["rest"]["harrell_c"] is not None and rows["rest"]["note"] is None


def test_predict_ignores_the_outcome_and_validate_scores_an_external_cohort(kfold, tmp_path):
    import json

    from radfusion.pipeline.external import validate_model
    from radfusion.pipeline.persistence import (
        ExtraColumnsWarning,
        predict_table,
        save_model,
        train_model,
    )

    _, table, out = kfold
    features = out.parent / "features.csv"
    half = len(table) // 2
    training, external = tmp_path / "training.csv", tmp_path / "external.csv"
    table.iloc[:half].to_csv(training)
    table.iloc[half:].to_csv(external)
    trained = train_model(training, task="survival", time="time", event="event", strategy="early")
    assert trained.settings["event"] == "event"
    with warnings.catch_warnings():  # time and event are the outcome, not unused inputs
        warnings.simplefilter("error", ExtraColumnsWarning)
        predicted = predict_table(trained, features)
    assert len(predicted) == len(table)
    model = tmp_path / "model.skops"
    save_model(trained, model)
    report = validate_model(model, external, out=tmp_path / "ext", n_bootstrap=20)
    assert report["task"] == report["data"]["task"] == "survival"  # every report says its task
    assert report["data"]["n_patients"] == len(table) - half
    assert report["data"]["events"] == int(table["event"].iloc[half:].sum())
    # the model's own risk on unseen patients: Harrell's C well above chance, with a CI
    c = report["metrics"]["harrell_c"]
    assert c["mean"] > 0.6 and c["ci_low"] <= c["mean"] <= c["ci_high"]
    # the risk groups are split at the training cohort's median risk, stored in the model
    risk = predict_table(trained, external)["risk"].to_numpy()
    groups = report["curves"]["risk_groups"]
    high = int((risk > trained.settings["train_median_risk"]).sum())
    assert groups["high"]["n"] == high and groups["low"]["n"] == len(risk) - high
    written = json.loads((tmp_path / "ext" / "report.json").read_text(encoding="utf-8"))
    assert written == json.loads(json.dumps(report))
    html = (tmp_path / "ext" / "report.html").read_text(encoding="utf-8")
    assert "Harrell" in html and "task survival" in html
    assert sorted(p.stem for p in (tmp_path / "ext" / "figures").glob("*.svg")) == [
        "external_survival_calibration",
        "external_survival_km",
        "external_survival_td_auc",
    ]


def test_dask_run_equals_the_local_run(tmp_path):
    distributed = pytest.importorskip("distributed")
    path, _ = write_cohort(tmp_path, n=60)
    options = dict(RUN, strategies=("single", "late"), n_bootstrap=0)
    local = run_cv(path, out=tmp_path / "local", **options)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        remote = run_cv(path, out=tmp_path / "dask", scheduler=cluster.scheduler_address, **options)
    assert remote["models"] == local["models"]
    assert (tmp_path / "dask" / "predictions.csv").read_bytes() == (
        tmp_path / "local" / "predictions.csv"
    ).read_bytes()
