"""Train → save (skops) → load → predict: exact round trips, column checks, refusing unsafe files.

Random forests and XGBoost are fitted with 20 trees instead of 200 (``_small_ensembles``), for
speed only; every other setting is the shipped default.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from radfusion.features.errors import InputError
from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.fusion import FusionClassifier
from radfusion.pipeline.learners import make_learner
from radfusion.pipeline.persistence import (
    ExtraColumnsWarning,
    ModelVersionWarning,
    TrainedModel,
    is_trusted_type,
    load_model,
    model_matrix,
    predict_table,
    save_model,
    train_model,
)
from radfusion.pipeline.persistence._model_file import (
    METADATA_MEMBER,
)
from radfusion.pipeline.report import jsonable

LABELS = ("benign", "malignant")
#: (strategy, learner, stacked learners) trained and round-tripped; stacking uses all four.
CASES = [
    ("single", "lr", ("lr",)),
    ("single", "xgb", ("lr",)),
    ("early", "svm", ("lr",)),
    ("early", "xgb", ("lr",)),
    ("late", "rf", ("lr",)),
    ("late", "xgb", ("lr",)),
    ("stacking", "lr", ("lr", "svm", "rf", "xgb")),
]


@pytest.fixture(autouse=True, scope="module")
def _single_threaded():
    with threadpool_limits(limits=1):
        yield


def small(name: str):
    """A learner name, or for the forests the same learner with 20 trees (labelled by the
    name, so the branches are named as with the defaults)."""
    if name in ("rf", "xgb"):
        return (name, make_learner(name).set_params(n_estimators=20))
    return name


def make_tables(n, seed, *, with_label=True):
    """CT + MR features (MR missing for 10 % of patients) and biomarkers (age, sex, outcome)."""
    rng = np.random.default_rng(seed)
    ids = [f"S{seed}P{i:03d}" for i in range(n)]
    latent = rng.normal(size=(n, 2))
    sex = rng.choice(["F", "M"], size=n)
    score = latent.sum(axis=1) + 0.8 * (sex == "M") + 0.5 * rng.normal(size=n)
    features = pd.DataFrame({"patient_id": ids})
    for g, modality in enumerate(("CT", "MR")):
        for j in range(4):
            signal = latent[:, g] if j < 2 else 0.0
            features[f"{modality}__tumor__original_firstorder_f{j}"] = (
                rng.normal(size=n) + signal
            ) * 10.0**j
    features.loc[rng.random(n) < 0.1, [c for c in features if c.startswith("MR__")]] = np.nan
    bio = pd.DataFrame(
        {"patient_id": ids, "age": rng.integers(40, 80, size=n).astype(float), "sex": sex}
    )
    if with_label:
        bio["outcome"] = np.where(score > np.median(score), LABELS[1], LABELS[0])
    return features, bio


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    features, bio = make_tables(60, seed=0)
    new_features, new_bio = make_tables(25, seed=1, with_label=False)
    tables = {
        "features": features,
        "bio": bio,
        "new_features": new_features,
        "new_bio": new_bio,
        "ct_only": features[["patient_id", *[c for c in features if c.startswith("CT__")]]],
        "label_only": bio[["patient_id", "outcome"]],
    }
    out = {}
    for name, table in tables.items():
        out[name] = folder / f"{name}.csv"
        table.to_csv(out[name], index=False)
    return out


@pytest.fixture(scope="module")
def train(paths):
    """Trained models by case, fitted once per module."""
    cache = {}

    def get(strategy, learner, learners):
        key = (strategy, learner, learners)
        if key not in cache:
            # one group: CT only, label from a label-only table
            single = strategy == "single"
            cache[key] = train_model(
                paths["ct_only" if single else "features"],
                label="outcome",
                biomarkers=paths["label_only" if single else "bio"],
                strategy=strategy,
                params=dict(
                    learner=small(learner)[1] if learner in ("rf", "xgb") else learner,
                    learners=tuple(small(name) for name in learners),
                ),
            )
        return cache[key]

    return get


@pytest.fixture(scope="module")
def model(train):
    return train("late", "lr", ("lr",))


def _predict(model, paths, features="new_features", **kwargs):
    return predict_table(model, paths[features], biomarkers=paths["new_bio"], **kwargs)


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize(
    ("strategy", "learner", "learners"),
    CASES,
    ids=[f"{s}-{lr if s != 'stacking' else '+'.join(ls)}" for s, lr, ls in CASES],
)
def test_loaded_model_predicts_exactly_as_the_in_memory_model(
    train, paths, tmp_path, strategy, learner, learners
):
    trained = train(strategy, learner, learners)
    loaded = load_model(save_model(trained, tmp_path / "model.skops"))

    source, kwargs = paths["new_features"], {"biomarkers": paths["new_bio"]}
    if strategy == "single":  # trained on CT only: the other columns are extra
        source, kwargs = pd.read_csv(source).filter(regex="patient_id|CT__"), {}
    before = predict_table(trained, source, **kwargs)
    after = predict_table(loaded, source, **kwargs)

    np.testing.assert_array_equal(after["probability"], before["probability"])
    pd.testing.assert_frame_equal(after, before)
    assert type(loaded.estimator) is type(trained.estimator)
    assert loaded.metadata() == json.loads(json.dumps(trained.metadata()))
    X = model_matrix(trained, source, **kwargs)
    expected = np.asarray(LABELS)[trained.estimator.predict(X)]
    np.testing.assert_array_equal(after["predicted"], expected)
    assert set(after["predicted"]) <= set(LABELS)
    assert after["probability"].between(0, 1).all() and after["probability"].nunique() > 1


def test_metadata_records_columns_groups_label_params_and_versions(model, paths):
    data = load_dataset(paths["features"], label="outcome", biomarkers=paths["bio"])
    meta = model.metadata()

    assert meta["columns"] == list(data.table.columns)
    assert meta["groups"] == data.groups and set(meta["groups"]) == {
        "CT__tumor",
        "MR__tumor",
        "clinical",
    }
    assert "categories" not in meta and "encoded" not in meta  # the estimator encodes
    assert model.estimator.encoder_.levels_ == {"sex": ["F", "M"]}
    assert meta["label"] == "outcome" and meta["classes"] == list(LABELS)
    assert model.label_mapping == data.label_mapping == {"benign": 0, "malignant": 1}
    assert meta["settings"]["strategy"] == "late" and meta["settings"]["task"] == "binary"
    assert meta["settings"]["params"] == {
        **jsonable(FusionClassifier(learners=["lr"]).get_params(deep=False)),
        "categories": {"sex": ["F", "M"]},
        "strategy": "late",
        "use_groups": None,
        "groups": None,
        "max_levels": 10,
        "resample": None,
        "inner_cv": 3,
        "cv": 3,
        "n_jobs": None,
    }
    assert meta["training"]["n_patients"] == 60
    assert set(meta["versions"]) >= {"radfusion", "scikit-learn", "xgboost", "numpy", "python"}
    assert model.columns[-2:] == ["age", "sex"]


def _encoded(trained, features, **kwargs):
    """The matrix the fitted model inside the estimator sees."""
    return trained.estimator.encoder_.transform(model_matrix(trained, features, **kwargs))


def test_prediction_table_is_the_training_table(model, paths):
    """The predict path gives the estimator the table training gave it; its one encoder then
    rebuilds the matrix load_dataset encoded for the report's Table 1."""
    data = load_dataset(paths["features"], label="outcome", biomarkers=paths["bio"])
    X = model_matrix(model, paths["features"], biomarkers=paths["bio"])  # label present: dropped
    pd.testing.assert_frame_equal(X.sort_index(), data.table, check_dtype=False)
    encoded = model.estimator.encoder_.transform(X.sort_index())
    pd.testing.assert_frame_equal(encoded, data.X)


# --------------------------------------------------------------------------- columns


def test_missing_columns_are_an_input_error_naming_each(model, paths):
    features = pd.read_csv(paths["new_features"])
    features = features.drop(columns=["CT__tumor__original_firstorder_f1"])
    bio = pd.read_csv(paths["new_bio"]).drop(columns=["sex"])

    with pytest.raises(InputError, match="lacks 2 column") as caught:
        predict_table(model, features, biomarkers=bio)
    message = str(caught.value)
    assert "'CT__tumor__original_firstorder_f1'" in message and "'sex'" in message


def test_forgotten_biomarker_table_is_hinted(model, paths):
    with pytest.raises(InputError, match="pass the biomarker table") as caught:
        predict_table(model, paths["new_features"])
    assert "'age'" in str(caught.value) and "'sex'" in str(caught.value)


def test_extra_columns_are_ignored_with_a_warning(model, paths):
    features = pd.read_csv(paths["new_features"])
    features["CT__tumor__original_firstorder_new"] = 1.0
    features["scanner"] = "X"
    baseline = _predict(model, paths)

    with pytest.warns(ExtraColumnsWarning, match="CT__tumor__original_firstorder_new, scanner"):
        result = predict_table(model, features, biomarkers=paths["new_bio"])
    pd.testing.assert_frame_equal(result, baseline)


def test_column_and_row_order_do_not_matter(model, paths):
    features = pd.read_csv(paths["new_features"])
    shuffled = features[features.columns[::-1]].sample(frac=1.0, random_state=0)
    baseline = _predict(model, paths).set_index("patient_id")

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no extra-column warning either
        result = predict_table(model, shuffled, biomarkers=paths["new_bio"])
    assert list(result["patient_id"]) == list(shuffled["patient_id"])  # input order kept
    pd.testing.assert_frame_equal(result.set_index("patient_id").loc[baseline.index], baseline)


def test_label_column_is_optional_and_ignored(model, paths):
    bio = pd.read_csv(paths["new_bio"]).assign(outcome="benign")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = predict_table(model, paths["new_features"], biomarkers=bio)
    pd.testing.assert_frame_equal(result, _predict(model, paths))


def test_text_columns_are_encoded_with_the_training_levels(model, paths):
    bio = pd.read_csv(paths["new_bio"])
    only_f = bio.assign(sex="F")  # a single level at prediction time is no problem
    flipped = bio.assign(sex=bio["sex"].map({"F": "M", "M": "F"}))

    X = _encoded(model, paths["new_features"], biomarkers=only_f)
    assert (X["sex_M"] == 0).all()
    X = _encoded(model, paths["new_features"], biomarkers=flipped)
    np.testing.assert_array_equal(X["sex_M"], (flipped["sex"] == "M").astype(float))
    assert not np.allclose(
        predict_table(model, paths["new_features"], biomarkers=flipped)["probability"],
        _predict(model, paths)["probability"],
    )


def test_unseen_category_is_an_input_error_and_blank_is_imputed(model, paths):
    bio = pd.read_csv(paths["new_bio"])
    bio.loc[[0, 3], "sex"] = "unknown"

    with pytest.raises(InputError, match="level 'unknown', unseen in training") as caught:
        predict_table(model, paths["new_features"], biomarkers=bio)
    assert "S1P000, S1P003" in str(caught.value) and "known: F, M" in str(caught.value)

    bio.loc[[0, 3], "sex"] = np.nan
    X = _encoded(model, paths["new_features"], biomarkers=bio)
    assert X["sex_M"].isna().sum() == 2
    assert predict_table(model, paths["new_features"], biomarkers=bio)["probability"].notna().all()


def test_text_in_a_numeric_column_is_an_input_error(model, paths):
    bio = pd.read_csv(paths["new_bio"]).astype({"age": object})
    bio.loc[2, "age"] = "sixty"
    with pytest.raises(InputError, match=r"'age' is numeric in training.*S1P002='sixty'"):
        predict_table(model, paths["new_features"], biomarkers=bio)


def test_duplicate_ids_are_an_input_error(model, paths):
    features = pd.read_csv(paths["new_features"])
    features.loc[1, "patient_id"] = features.loc[0, "patient_id"]
    with pytest.raises(InputError, match="Duplicated patient identifiers"):
        predict_table(model, features, biomarkers=paths["new_bio"])


# --------------------------------------------------------------------------- unsafe files


class _Custom(BaseEstimator):
    """A class that is not radfusion's: a file naming it must be refused."""


@pytest.mark.parametrize(
    ("estimator", "refused"),
    [
        (FunctionTransformer(eval), "builtins.eval"),
        (_Custom(), "tests.pipeline.test_persistence._Custom"),
    ],
)
def test_files_with_foreign_types_are_refused(model, tmp_path, estimator, refused):
    path = save_model(dataclasses.replace(model, estimator=estimator), tmp_path / "bad.skops")
    with pytest.raises(InputError, match=f"untrusted type {refused}"):
        load_model(path)


def test_tampered_schema_is_refused_before_anything_is_built(train, tmp_path, monkeypatch):
    path = save_model(train("early", "xgb", ("lr",)), tmp_path / "model.skops")
    tampered = tmp_path / "tampered.skops"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "schema.json":
                text = data.decode()
                assert '"__module__": "xgboost.sklearn"' in text
                data = (
                    text.replace('"__module__": "xgboost.sklearn"', '"__module__": "os"')
                    .replace('"__class__": "XGBClassifier"', '"__class__": "system"')
                    .encode()
                )
            target.writestr(item, data)
    monkeypatch.setattr(sio, "load", lambda *a, **k: pytest.fail("must not rebuild"))

    with pytest.raises(InputError, match="untrusted type os.system"):
        load_model(tampered)


def test_allow_list():
    assert is_trusted_type("xgboost.core.Booster")
    assert is_trusted_type("radfusion.pipeline.fusion._meta.NonNegativeLogisticRegression")
    assert is_trusted_type("radfusion.pipeline.fusion._branch.DropConstantFeatures")
    for name in (
        "builtins.eval",
        "os.system",
        "radfusion.pipeline.fusion._meta.minimize",  # a function
        "radfusion.pipeline.fusion._stacking.StackingClassifier",  # imported, not defined there
        "radfusion.pipeline.fusion.NonNegativeLogisticRegression",  # re-exported, not defined there
        "radfusion.pipeline.cli.main",
        "pipeline.nothing.Here",
        "numpy.load",
        "tests.pipeline.test_persistence._Custom",
    ):
        assert not is_trusted_type(name), name


@pytest.mark.parametrize("content", [b"patient_id,x\n1,2\n", None])
def test_files_that_are_not_radfusion_models_are_refused(model, tmp_path, content):
    path = tmp_path / "model.skops"
    if content is None:
        sio.dump(model.estimator, path)  # a plain skops file without radfusion metadata
    else:
        path.write_bytes(content)
    with pytest.raises(InputError, match="Not a radfusion model file"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_a_truncated_model_file_is_called_damaged(model, tmp_path, keep):
    path = save_model(model, tmp_path / "model.skops")
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(InputError, match="damaged or truncated") as error:
        load_model(path)
    assert str(path) in str(error.value)


# --------------------------------------------------------------------------- versions


def _with_versions(model, **versions):
    return dataclasses.replace(model, versions={**model.versions, **versions})


def test_minor_version_mismatch_warns(model, paths, tmp_path):
    old = _with_versions(model, **{"scikit-learn": "1.0.2", "radfusion": "0.0.1"})
    match = r"radfusion 0\.0\.1 .*scikit-learn 1\.0\.2 \(installed"
    with pytest.warns(ModelVersionWarning, match=match):
        loaded = load_model(save_model(old, tmp_path / "model.skops"))
    pd.testing.assert_frame_equal(_predict(loaded, paths), _predict(model, paths))

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same versions: silent
        load_model(save_model(model, tmp_path / "model.skops"))


@pytest.mark.parametrize("library", ["scikit-learn", "xgboost"])
def test_major_version_mismatch_is_an_error(model, tmp_path, library):
    old = _with_versions(model, **{library: "0.9.0"})
    with pytest.raises(InputError, match=f"saved with {library} 0.9.0"):
        load_model(save_model(old, tmp_path / "model.skops"))


def _saved_with_format_version(model, path, version):
    """``model`` saved to ``path``, its metadata then claiming file format ``version``."""
    path = save_model(model, path)
    meta = json.loads(zipfile.ZipFile(path).read(METADATA_MEMBER))
    with zipfile.ZipFile(path, "a") as archive, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate member name: the last one wins on read
        archive.writestr(METADATA_MEMBER, json.dumps({**meta, "format_version": version}))
    return path


def test_newer_file_format_is_refused(model, tmp_path):
    path = _saved_with_format_version(model, tmp_path / "model.skops", 99)
    with pytest.raises(InputError, match="Unsupported model file version"):
        load_model(path)


def test_model_file_from_radfusion_0_1_is_refused_with_a_retrain_hint(model, tmp_path):
    path = _saved_with_format_version(model, tmp_path / "model.skops", 1)
    with pytest.raises(InputError, match="radfusion 0.1") as raised:
        load_model(path)
    assert "retrain" in str(raised.value)


def test_only_radfusion_modules_are_trusted_by_package_name():
    # The 0.1 package names are no longer ours: a module called pipeline.* may be anyone's.
    assert not is_trusted_type("pipeline.fusion.NonNegativeLogisticRegression")
    assert not is_trusted_type("features.naming.Anything")


# --------------------------------------------------------------------------- atomic write


def test_model_and_card_are_saved_as_one_set(model, tmp_path, monkeypatch):
    # The model and its card are one set: the three files, and nothing else.
    path = save_model(model, tmp_path / "models" / "model.skops")
    written = ["model.skops", "model.skops.card.json", "model.skops.card.md"]
    assert sorted(p.name for p in path.parent.iterdir()) == written
    before = {name: (path.parent / name).read_bytes() for name in written}

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sio, "dump", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, path)
    assert sorted(p.name for p in path.parent.iterdir()) == written
    assert {name: (path.parent / name).read_bytes() for name in written} == before
    assert isinstance(load_model(path), TrainedModel)


# --------------------------------------------------------------------------- other layouts


def test_radmlbench_style_table_with_integer_labels(tmp_path):
    """``ID`` column, label 0/1 inside the feature table, no biomarkers, prefixed names."""
    features, bio = make_tables(40, seed=2)
    table = features.rename(columns=lambda c: c.replace("__tumor__", "_")).rename(
        columns={"patient_id": "ID"}
    )
    table["Target"] = (bio["outcome"] == LABELS[1]).astype(int)
    table.to_csv(tmp_path / "train.csv", index=False)
    trained = train_model(tmp_path / "train.csv", label="Target", strategy="late")
    path = save_model(trained, tmp_path / "model.skops")

    result = predict_table(load_model(path), table.drop(columns="Target"))
    assert list(result.columns) == ["ID", "probability", "predicted"]
    assert trained.classes == [0, 1] and set(trained.groups) == {"CT", "MR"}
    assert result["predicted"].dtype.kind == "i"
    np.testing.assert_array_equal(result["predicted"], (result["probability"] >= 0.5).astype(int))
