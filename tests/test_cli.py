"""The command line: readable errors with exit code 2, and the end-to-end demo at small size."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from radfusion.features.synthetic import make_cohort
from radfusion.pipeline.cli import EXIT_BAD_INPUT, app

runner = CliRunner()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    result = runner.invoke(
        app,
        [
            "demo",
            "--out",
            str(out),
            "--patients",
            "30",
            "--folds",
            "3",
            "--repeats",
            "1",
            "--jobs",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    return out, result.output


def test_demo_writes_a_complete_report(demo_run):
    out, output = demo_run
    report = json.loads((out / "report" / "report.json").read_text(encoding="utf-8"))
    models = report["models"]
    singles = {"CT__tumor", "CT__peritumoral", "MR__tumor", "MR__peritumoral", "clinical"}
    # The volume-only baseline is a single model that is never fused.
    # Stacking is not in a default run (issue 24: Task.default_strategies).
    assert singles | {"volume", "early", "late", "pooled", "shared"} == set(models)
    assert report["primary"] == {"model": "pooled", "declared": "the default strategy"}
    benefit = report["fusion_benefit"]
    assert {r["model"] for r in benefit["rows"]} == {
        "early",
        "late",
        "pooled",
        "shared",
    }
    assert {role for r in benefit["rows"] for role in r["roles"]} == {
        "best_single",
        "clinical",
        "volume",
    }
    for model in models.values():
        auc = model["metrics"]["roc_auc"]
        assert 0 <= auc["ci_low"] <= auc["mean"] <= auc["ci_high"] <= 1
    predictions = pd.read_csv(out / "report" / "predictions.csv")
    assert len(predictions) == 30 * len(models)  # one repeat: every patient once per model
    assert predictions["proba"].between(0, 1).all()
    html = (out / "report" / "report.html").read_text(encoding="utf-8")
    assert "<svg" in html and "stacking" in html and 'id="fusion-benefit"' in html
    features = pd.read_parquet(out / "features.parquet")
    assert len(features) == 30
    assert any(c.startswith("CT__tumor__original_glcm_") for c in features.columns)
    assert str((out / "report" / "report.html").resolve()) in output


def test_cv_twice_gives_identical_report(demo_run, tmp_path):
    out, _ = demo_run
    args = [
        "cv",
        str(out / "features.parquet"),
        "--biomarkers",
        str(out / "cohort" / "biomarkers.csv"),
        "--label",
        "outcome",
        "--folds",
        "3",
        "--repeats",
        "1",
        "--strategy",
        "late",
        "--strategy",
        "stacking",
        "--learners",
        "lr",
        "--learners",
        "xgb",
        "--jobs",
        "2",
    ]
    for name in ("a", "b"):
        result = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert result.exit_code == 0, result.output
    first = (tmp_path / "a" / "report.json").read_bytes()
    assert first == (tmp_path / "b" / "report.json").read_bytes()
    assert set(json.loads(first)["models"]) == {"late", "stacking"}


def test_bad_manifest_exits_2_naming_every_problem(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", n_patients=4, seed=1)
    manifest = pd.read_csv(cohort.manifest)
    manifest.loc[0, "image"] = "images/absent.nii.gz"
    manifest = pd.concat([manifest, manifest.iloc[[3]]], ignore_index=True)  # duplicate row
    manifest.to_csv(cohort.manifest, index=False)
    result = runner.invoke(
        app, ["extract", str(cohort.manifest), "--out", str(tmp_path / "f.parquet")]
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Traceback" not in result.output
    assert "absent.nii.gz" in result.output
    assert "row 1" in result.output and str(manifest.loc[0, "patient_id"]) in result.output
    assert "duplicate" in result.output.lower()
    assert not (tmp_path / "f.parquet").exists()


def test_cv_on_missing_label_exits_2(tmp_path):
    table = tmp_path / "t.csv"
    pd.DataFrame({"ID": ["a", "b"], "x": [1.0, 2.0]}).to_csv(table, index=False)
    result = runner.invoke(
        app, ["cv", str(table), "--label", "Target", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "Target" in result.output and "Traceback" not in result.output


def test_train_then_predict_matches_the_in_memory_model(demo_run, tmp_path):
    from radfusion.pipeline.persistence import predict_table, train_model

    out, _ = demo_run
    features, bio = out / "features.parquet", out / "cohort" / "biomarkers.csv"
    model = tmp_path / "model.skops"
    result = runner.invoke(
        app,
        [
            "train",
            str(features),
            "--biomarkers",
            str(bio),
            "--label",
            "outcome",
            "--out",
            str(model),
            "--learners",
            "lr",
            "--learners",
            "xgb",
        ],
    )
    assert result.exit_code == 0, result.output
    predictions = tmp_path / "predictions.csv"
    result = runner.invoke(
        app,
        ["predict", str(model), str(features), "--biomarkers", str(bio), "--out", str(predictions)],
    )
    assert result.exit_code == 0, result.output
    saved = pd.read_csv(predictions)
    in_memory = predict_table(
        train_model(
            features,
            label="outcome",
            biomarkers=bio,
            params=dict(learners=("lr", "xgb")),
        ),
        features,
        biomarkers=bio,
    )
    assert list(saved["patient_id"]) == list(in_memory["patient_id"])
    assert saved["probability"].to_numpy() == pytest.approx(
        in_memory["probability"].to_numpy(), rel=1e-12
    )
    # Without the biomarker table the clinical columns are missing: a clear error, exit 2.
    result = runner.invoke(
        app, ["predict", str(model), str(features), "--out", str(tmp_path / "p2.csv")]
    )
    assert result.exit_code == EXIT_BAD_INPUT
    assert "age" in result.output and "Traceback" not in result.output


def test_extract_records_bad_cases_and_exits_1(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", n_patients=3, seed=2)
    manifest = pd.read_csv(cohort.manifest)
    truncated = cohort.manifest.parent / manifest.loc[0, "image"]
    truncated.write_bytes(truncated.read_bytes()[:200])
    manifest.loc[len(manifest) - 1, "label"] = 9  # a label value absent from the mask
    manifest.to_csv(cohort.manifest, index=False)
    out = tmp_path / "features.parquet"
    result = runner.invoke(
        app,
        [
            "extract",
            str(cohort.manifest),
            "--out",
            str(out),
            "--jobs",
            "1",
            "--cache",
            str(tmp_path / "cache"),
        ],
    )
    assert result.exit_code == 1, result.output
    failures = pd.read_csv(tmp_path / "features.failures.csv")
    # Every case reading the truncated image fails, and the case with the absent label.
    bad = manifest[
        (manifest["image"] == manifest.loc[0, "image"]) | (manifest.index == len(manifest) - 1)
    ]
    assert len(bad) == 3
    assert sorted(zip(failures["patient_id"], failures["mask"], strict=True)) == sorted(
        zip(bad["patient_id"], bad["mask"], strict=True)
    )
    assert pd.read_parquet(out)["patient_id"].nunique() == 3  # good cases all complete
    assert "Traceback" not in result.output


def test_extract_negative_control_adds_a_permuted_twin_of_every_roi(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", n_patients=2, seed=4)
    out = tmp_path / "features.parquet"
    arguments = ["extract", str(cohort.manifest), "--out", str(out), "--jobs", "1"]
    result = runner.invoke(app, [*arguments, "--negative-control"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)

    def twin(column: str) -> str:
        modality, mask, feature = column.split("__")
        return f"{modality}__{mask}~permuted__{feature}"

    real = [c for c in table.columns if "__" in c and "~permuted" not in c]
    assert [c for c in table.columns if "~permuted__" in c] == [twin(c) for c in real]
    shape = [c for c in real if "_shape_" in c]
    assert table[[twin(c) for c in shape]].to_numpy().tolist() == table[shape].to_numpy().tolist()
    sidecar = pd.read_csv(out.with_name("features.diagnostics.csv"))
    assert sidecar["mask"].str.endswith("~permuted").sum() == len(sidecar) // 2


def test_check_prints_one_table_and_flags_what_would_fail(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", n_patients=2, seed=3)
    result = runner.invoke(app, ["check", str(cohort.manifest), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    assert "volume_mm3" in result.output and result.output.count("P00") >= 8
    manifest = pd.read_csv(cohort.manifest)
    manifest.loc[1, "label"] = 7
    manifest.to_csv(cohort.manifest, index=False)
    result = runner.invoke(
        app, ["check", str(cohort.manifest), "--jobs", "1", "--out", str(tmp_path / "check.csv")]
    )
    assert result.exit_code == 1
    table = pd.read_csv(tmp_path / "check.csv")
    assert list(table["status"] == "would fail") == [i == 1 for i in range(len(table))]


def test_robustness_writes_an_icc_per_feature(tmp_path):
    cohort = make_cohort(tmp_path / "cohort", n_patients=4, seed=4)
    manifest = pd.read_csv(cohort.manifest)
    manifest = manifest[(manifest["modality"] == "CT") & (manifest["mask"] == "tumor")]
    manifest.to_csv(cohort.manifest, index=False)
    out = tmp_path / "icc.csv"
    result = runner.invoke(
        app, ["robustness", str(cohort.manifest), "--out", str(out), "--jobs", "2"]
    )
    assert result.exit_code == 0, result.output
    icc = pd.read_csv(out)
    assert icc["feature"].str.startswith("CT__tumor__original_").all()
    assert icc.set_index("feature").loc["CT__tumor__original_shape_VoxelVolume", "icc"] > 0.9


def test_synth_survival_outcome(tmp_path):
    out = tmp_path / "cohort"
    result = runner.invoke(
        app, ["synth", "--out", str(out), "--patients", "2", "--outcome", "survival"]
    )
    assert result.exit_code == 0, result.output
    header = (out / "biomarkers.csv").read_text().splitlines()[0]
    assert header == "patient_id,age,sex,ldh,time,event"  # no leaking binary outcome
    bad = runner.invoke(app, ["synth", "--out", str(out), "--outcome", "death"])
    assert bad.exit_code == EXIT_BAD_INPUT and "'death'" in bad.output


@pytest.mark.parametrize("command", ["synth", "extract", "check", "robustness"])
def test_a_features_command_starts_without_the_estimators(command):
    """A cached re-run of extract waits for nothing but its cache: the command line builds
    the model options (which import scikit-learn) only for the commands that take them."""
    import os
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from radfusion.pipeline import cli\n"
        f"sys.argv = ['radfusion', {command!r}, '--help']\n"
        "try:\n    cli.main()\nexcept SystemExit:\n    pass\n"
        "print('loaded:', sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'xgboost'}))"
    )
    environment = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # rich's boxes under LANG=C

    def run(source: str) -> str:
        return subprocess.run(
            [sys.executable, "-c", source],
            capture_output=True,
            encoding="utf-8",
            check=True,
            env=environment,
        ).stdout

    shown = run(code)
    assert f"radfusion {command}" in shown
    assert shown.strip().endswith("loaded: []")
    shown = run(code.replace(repr(command), "'cv'"))
    assert "--select-k" in shown and "'sklearn'" in shown
