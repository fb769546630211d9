"""The baselines of a comparison: volume-only and negative-control models, never fused."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from radfusion.features.errors import InputError
from radfusion.pipeline.columns import (
    CONTROL_GROUP,
    VOLUME_GROUP,
    baseline_groups,
    infer_groups,
)
from radfusion.pipeline.fusion import FUSED, FusionClassifier, build_estimators
from radfusion.pipeline.validation import cross_validate_models, summarize

FAST = {"learners": ("lr",)}
CT_VOLUME = "CT__tumor__original_shape_MeshVolume"
PET_VOLUME = "PET__tumor__original_shape_VoxelVolume"


def baseline_table(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """CT (mesh volume + texture), PET (voxel volume only), their negative controls, age.

    The outcome follows the tumour volume; texture and age are noise.
    """
    rng = np.random.default_rng(seed)
    volume = rng.lognormal(8, 0.6, n)
    y = (np.log(volume) + 0.3 * rng.normal(size=n) > 8).astype(int)
    columns = {
        CT_VOLUME: volume * rng.normal(1, 0.02, n),
        "CT__tumor__original_glcm_Contrast": rng.normal(size=n),
        "CT__tumor__original_firstorder_Mean": rng.normal(size=n),
        PET_VOLUME: volume * rng.normal(1, 0.05, n),
        "PET__tumor__original_glszm_ZoneEntropy": rng.normal(size=n),
    }
    for name in list(columns):
        modality, mask, feature = name.split("__")
        columns[f"{modality}__{mask}~permuted__{feature}"] = (
            columns[name] if "shape" in feature else rng.normal(size=n)
        )
    columns["age"] = rng.normal(60, 10, n)
    return pd.DataFrame(columns, index=[f"P{i:03d}" for i in range(n)]), y


def test_control_columns_are_in_no_group_whatever_the_rule():
    X, _ = baseline_table(10)
    controls = [c for c in X if "~permuted" in c]
    for pattern in (None, r"(CT|PET)__"):
        groups = infer_groups(list(X.columns), pattern=pattern)
        assert not {c for cols in groups.values() for c in cols} & set(controls), pattern
    assert list(infer_groups(list(X.columns))) == ["CT__tumor", "PET__tumor", "clinical"]


def test_baseline_groups_take_mesh_volume_else_voxel_volume_and_every_control_column():
    X, _ = baseline_table(10)
    columns = list(X.columns)
    baselines = baseline_groups(columns, infer_groups(columns))
    assert baselines[VOLUME_GROUP] == [CT_VOLUME, PET_VOLUME]
    assert baselines[CONTROL_GROUP] == [c for c in columns if "~permuted" in c]
    plain = [c for c in columns if "~permuted" not in c and "Volume" not in c]
    assert baseline_groups(plain, infer_groups(plain)) == {}


def test_build_estimators_adds_the_baselines_only_with_the_columns_and_never_fuses_them():
    X, _ = baseline_table(10)
    groups = list(infer_groups(list(X.columns)))
    old = build_estimators(groups, **FAST)
    new = build_estimators(groups, columns=list(X.columns), **FAST)
    assert list(old) == [*groups, *FUSED]
    assert list(new) == [*groups, VOLUME_GROUP, CONTROL_GROUP, *FUSED]
    assert new[VOLUME_GROUP].get_params()["use_groups"] == [VOLUME_GROUP]
    assert new[CONTROL_GROUP].strategy == "single"
    for name in FUSED:  # the fused models are the same estimators as before
        assert new[name].get_params() == old[name].get_params()


def test_volume_and_control_models_fit_their_columns_and_fused_models_never_see_controls():
    X, y = baseline_table()
    models = build_estimators(list(infer_groups(list(X.columns))), columns=list(X.columns), **FAST)
    volume = models[VOLUME_GROUP].fit(X, y)
    assert volume.groups_ == {VOLUME_GROUP: [CT_VOLUME, PET_VOLUME]}
    control = models[CONTROL_GROUP].fit(X, y)
    assert list(control.groups_) == [CONTROL_GROUP] and len(control.groups_["control"]) == 5
    for name in ("early", "late"):
        fused = models[name].fit(X, y)
        seen = {c for cols in fused.groups_.values() for c in cols}
        assert not any("~permuted" in c for c in seen)
        assert CT_VOLUME in seen  # volume stays an ordinary feature of its imaging group
    # a real computation: out of fold, volume alone finds the volume-driven outcome
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    proba = cross_val_predict(
        FusionClassifier("single", use_groups=[VOLUME_GROUP], **FAST),
        X,
        y,
        cv=folds,
        method="predict_proba",
    )[:, 1]
    assert roc_auc_score(y, proba) > 0.85


def test_a_baseline_the_table_lacks_is_an_error_naming_the_groups_it_has():
    X, y = baseline_table(40)
    plain = X[[c for c in X if "~permuted" not in c]]
    with pytest.raises(InputError, match="use_groups") as raised:
        FusionClassifier("single", use_groups=[CONTROL_GROUP], **FAST).fit(plain, y)
    assert "'control' is not one of CT__tumor, PET__tumor, clinical, volume" in str(
        raised.value.problems[0]
    )


def test_permuted_labels_put_the_baselines_at_chance():
    """The permuted-label law for the two new arms: mean out-of-fold AUC over five draws is
    within 0.5 ± 0.1 (the same table finds the volume-driven outcome, above)."""
    X, y = baseline_table(80)
    aucs: dict[str, list[float]] = {VOLUME_GROUP: [], CONTROL_GROUP: []}
    for seed in range(5):
        permuted = np.random.default_rng(seed).permutation(y)
        models = {
            name: FusionClassifier("single", use_groups=[name], random_state=seed, **FAST)
            for name in aucs
        }
        predictions = cross_validate_models(
            models, X, permuted, folds=5, repeats=1, seed=seed, n_jobs=1
        ).predictions
        for name, metrics in summarize(predictions, n_bootstrap=2, seed=seed).items():
            aucs[name].append(metrics["roc_auc"]["mean"])
    for name, values in aucs.items():
        assert abs(np.mean(values) - 0.5) < 0.1, (name, np.round(values, 3))


def test_a_trained_model_does_not_ask_for_the_control_columns(tmp_path):
    from radfusion.pipeline.persistence import predict_table, train_model

    X, y = baseline_table(n=60)
    table = X.assign(outcome=y).rename_axis("patient_id").reset_index()
    path = tmp_path / "features.csv"
    table.to_csv(path, index=False)
    trained = train_model(path, label="outcome", strategy="early")
    assert not [c for c in trained.columns if "~permuted" in c]
    plain = tmp_path / "new.csv"  # a new cohort extracted without --negative-control
    table.drop(columns=[c for c in table if "~permuted" in c]).to_csv(plain, index=False)
    scored = predict_table(trained, plain)
    assert len(scored) == 60 and scored["probability"].between(0, 1).all()
