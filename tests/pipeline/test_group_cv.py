"""Leave-one-group-out CV (``radfusion cv --group-by COL``): folds, per-group metrics, report."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from radfusion.features.errors import InputError
from radfusion.pipeline.cli import app
from radfusion.pipeline.experiment import run_cv
from radfusion.pipeline.fusion import FusionClassifier
from radfusion.pipeline.report._groups import (
    groups_html,
)
from radfusion.pipeline.splits import leave_one_group_out
from radfusion.pipeline.validation import cross_validate_models, group_metrics

from .conftest import multimodal_table
from .two_site import write_two_site


def test_leave_one_group_out_folds_are_the_sorted_groups():
    names, codes = leave_one_group_out(["B", "A", "C", "A", 1])
    assert names == ["1", "A", "B", "C"]
    assert codes.tolist() == [2, 1, 3, 1, 0]
    with pytest.raises(ValueError, match="at least two groups"):
        leave_one_group_out(["A", "A"])
    with pytest.raises(ValueError, match="missing"):
        leave_one_group_out(["A", None, "B"])


def _cv_by_group(X, y, groups, **kwargs):
    models = {"lr": FusionClassifier("early", random_state=0)}
    return cross_validate_models(models, X, y, groups=groups, **kwargs)


def test_each_held_out_group_is_predicted_by_a_model_that_never_saw_it():
    X, y, _ = multimodal_table(n=90, missing_mr=0.0)
    groups = np.array(["s1", "s2", "s3"])[np.arange(90) % 3]
    seen = []

    def hook(estimator, X_test, y_test, **where):
        return {"test": list(X_test.index)}

    result = _cv_by_group(X, y, groups, fold_hook=hook, folds=7, repeats=4)
    predictions, records = result.predictions, result.records
    assert result.held_out_groups == ["s1", "s2", "s3"]
    assert set(predictions["repeat"]) == {0}  # one repeat, whatever `repeats` says
    fold_of = dict(zip(predictions["patient_id"], predictions["fold"], strict=True))
    for patient, group in zip(X.index, groups, strict=True):
        assert fold_of[patient] == int(group[1]) - 1
    for record in records:
        tested = record["record"]["test"]
        seen.extend(tested)
        assert {groups[X.index.get_loc(p)] for p in tested} == {f"s{record['fold'] + 1}"}
    assert sorted(seen) == sorted(X.index)


def test_group_cv_does_not_depend_on_row_order():
    X, y, _ = multimodal_table(n=90, missing_mr=0.0)
    groups = np.array(["s1", "s2", "s3"])[np.arange(90) % 3]
    first = _cv_by_group(X, y, groups)
    order = np.random.default_rng(1).permutation(90)
    second = _cv_by_group(X.iloc[order], y[order], groups[order])
    pd.testing.assert_frame_equal(first.predictions, second.predictions)


def test_a_held_out_group_with_one_class_has_no_auc_and_says_why():
    X, y, _ = multimodal_table(n=90, missing_mr=0.0)
    groups = np.array(["big", "other", "small"])[np.arange(90) // 30]
    y = y.copy()
    y[60:] = 1  # the small site has events only
    result = _cv_by_group(X, y, groups)
    predictions = result.predictions
    rows = {r["group"]: r for r in group_metrics(result, n_bootstrap=50)["lr"]}
    assert rows["small"]["roc_auc"] is None
    assert "one class" in rows["small"]["note"]
    assert rows["small"]["events"] == 30 and rows["small"]["n"] == 30
    big = rows["big"]["roc_auc"]
    assert big["ci_low"] <= big["mean"] <= big["ci_high"]
    assert big["mean"] > 0.7  # real signal, held-out site
    html = groups_html({"column": "site", "method": "m", "models": group_metrics(result)})
    assert "not defined" in html and "small: AUC not defined" in html
    part = predictions[predictions["fold"] == 0]
    assert big["mean"] == pytest.approx(roc_auc_score(part["y_true"], part["proba"]))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return write_two_site(tmp_path_factory.mktemp("two_site"), n_a=60, n_b=40)


def test_leave_one_site_out_report_with_harmonisation(cohort, tmp_path):
    kwargs = dict(
        label="outcome",
        biomarkers=cohort["biomarkers"],
        group_by="site",
        strategies=("single", "late"),
        n_bootstrap=50,
        explain=False,
        params=dict(harmonize="site"),
    )
    report = run_cv(cohort["features"], out=tmp_path / "a", **kwargs)
    config = report["config"]
    assert (config["group_by"], config["held_out_groups"], config["repeats"]) == (
        "site",
        ["A", "B"],
        1,
    )
    assert "'pooled' applies" in report["groups"]["method"]
    methods = " ".join(report["methods"]["text"])
    assert "leave-one-group-out cross-validation by 'site' (2 folds" in methods
    assert "unseen-site policy 'pooled' applied" in methods
    assert "RepeatedStratifiedKFold" not in methods
    notes = [i["note"] for i in report["checklists"]["items"] if "stratified" in i["note"]]
    assert not any("fold CV" in note for note in notes)  # the checklist names the real scheme
    assert any(
        i["note"].startswith("Leave-one-group-out CV by 'site'")
        for i in report["checklists"]["items"]
    )
    rows = report["groups"]["models"]["late"]
    assert [(r["group"], r["n"]) for r in rows] == [("A", 60), ("B", 40)]
    assert all(r["roc_auc"]["mean"] > 0.6 for r in rows)
    html = (tmp_path / "a" / "report.html").read_text(encoding="utf-8")
    assert "per held-out site" in html and "A (n = 60" in html and "unseen-site policy" in html
    again = run_cv(cohort["features"], out=tmp_path / "b", **kwargs)
    assert again == report
    assert (tmp_path / "a" / "report.json").read_bytes() == (
        tmp_path / "b" / "report.json"
    ).read_bytes()


def _single_models_by_hospital(cohort, bio, tmp_path, **options):
    """``run_cv`` of the single-group models, leave-one-out by the ``hospital`` of ``bio``."""
    path = tmp_path / "bio.csv"
    bio.to_csv(path, index=False)
    return run_cv(
        cohort["features"],
        label="outcome",
        biomarkers=path,
        out=tmp_path / "r",
        group_by="hospital",
        strategies=("single",),
        n_bootstrap=0,
        **options,
    )


def test_the_group_column_is_not_a_predictor(cohort, tmp_path):
    bio = pd.read_csv(cohort["biomarkers"], dtype={"patient_id": str})
    bio["hospital"] = np.where(bio["patient_id"].str.startswith("A"), "north", "south")
    report = _single_models_by_hospital(cohort, bio, tmp_path, explain=False)
    assert report["data"]["groups"]["clinical"] == 2  # age and sex; not hospital
    assert "hospital" not in json.dumps(report["config"]["encoded_columns"])
    assert [r["group"] for r in report["groups"]["models"]["clinical"]] == ["north", "south"]


def test_a_patient_without_a_group_is_an_error_naming_it(cohort, tmp_path):
    bio = pd.read_csv(cohort["biomarkers"], dtype={"patient_id": str})
    bio["hospital"] = "north"
    bio.loc[3, "hospital"] = None
    bio.loc[50:, "hospital"] = "south"
    with pytest.raises(InputError, match="Cannot group") as error:
        _single_models_by_hospital(cohort, bio, tmp_path)
    assert "A003" in str(error.value) and "hospital" in str(error.value)


def test_cli_group_by(cohort, tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "cv",
            str(cohort["features"]),
            "--biomarkers",
            str(cohort["biomarkers"]),
            "--label",
            "outcome",
            "--group-by",
            "site",
            "--strategy",
            "early",
            "--no-explain",
            "-j",
            "1",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "r" / "report.json").read_text(encoding="utf-8"))
    assert report["config"]["group_by"] == "site"
    assert list(report["groups"]["models"]) == ["early"]


def test_a_held_out_site_of_one_class_gets_no_importance_and_the_run_goes_on(tmp_path):
    """Permutation importance drops the held-out AUC, which a one-class site does not have:
    that fold gives none, the other folds do, and the run completes."""
    X, y, _ = multimodal_table(n=90, missing_mr=0.0)
    order = np.argsort(y, kind="stable")
    table = X.iloc[order].rename_axis("patient_id").reset_index()
    table["outcome"] = y[order]
    table["site"] = np.where(
        np.arange(90) < 20, "negatives", np.where(np.arange(90) < 55, "B", "C")
    )
    table.to_csv(tmp_path / "t.csv", index=False)
    assert table.groupby("site")["outcome"].nunique()["negatives"] == 1
    report = run_cv(
        tmp_path / "t.csv", label="outcome", group_by="site", out=tmp_path / "out",
        strategies=("single",), n_bootstrap=10, params=dict(learners=("lr",)),
    )  # fmt: skip
    assert report["explanations"]["importance"]["groups"]
    rows = {r["group"]: r for r in report["groups"]["models"]["CT__tumor"]}
    assert rows["negatives"]["roc_auc"] is None and "one class" in rows["negatives"]["note"]


def test_a_fold_that_cannot_be_fitted_is_named_by_the_site_it_holds_out():
    X, y, _ = multimodal_table(n=60, missing_mr=0.0)
    groups = np.where(y == 1, "all_events", np.where(np.arange(60) % 2 == 0, "A", "B"))
    with pytest.raises(InputError, match="No model can be fitted") as error:
        _cv_by_group(X, y, groups, skip_failing=True)
    assert "lr: the fold holding out 'all_events': " in str(error.value)
    assert "got 1 class: 0" in str(error.value)


def test_a_site_written_two_ways_is_refused_naming_both_spellings(tmp_path):
    X, y, _ = multimodal_table(n=30, missing_mr=0.0)
    table = X.rename_axis("patient_id").reset_index()
    table["outcome"] = y
    table["site"] = ["A", "B", "a "] * 10
    table.to_csv(tmp_path / "t.csv", index=False)
    for kwargs in (dict(group_by="site"), dict(params=dict(harmonize="site"))):
        with pytest.raises(InputError, match="names a site two ways") as error:
            run_cv(tmp_path / "t.csv", label="outcome", out=tmp_path / "out", **kwargs)
        assert "'a '" in str(error.value) and "'A'" in str(error.value)
