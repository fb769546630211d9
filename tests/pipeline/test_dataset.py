"""Loading feature + biomarker tables into X, y and groups."""

import numpy as np
import pandas as pd
import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline.dataset import load_dataset


@pytest.fixture
def tables(tmp_path):
    rng = np.random.default_rng(0)
    ids = [f"P{i:02d}" for i in range(8)]
    features = pd.DataFrame(
        {
            "patient_id": ids,
            "site": ["A", "B"] * 4,
            "CT__tumor__original_firstorder_Mean": rng.normal(size=8),
            "MR__tumor__original_shape_Sphericity": rng.normal(size=8),
        }
    )
    bio = pd.DataFrame(
        {
            "patient_id": ids[::-1] + ["EXTRA"],
            "age": rng.integers(40, 80, size=9),
            "sex": list("FMFMFMFMF"),
            "outcome": [0, 1] * 4 + [1],
        }
    )
    features_path = tmp_path / "features.parquet"
    features.to_parquet(features_path)
    bio_path = tmp_path / "bio.csv"
    bio.to_csv(bio_path, index=False)
    return features_path, bio_path, features, bio


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".csv.gz"])
def test_formats_and_join(tables, tmp_path, suffix):
    features_path, bio_path, features, bio = tables
    path = tmp_path / f"copy{suffix}"
    if suffix == ".parquet":
        features.to_parquet(path)
    else:
        features.to_csv(path, index=False)
    data = load_dataset(path, label="outcome", biomarkers=bio_path)
    assert list(data.X.index) == sorted(features["patient_id"])  # EXTRA dropped, sorted
    expected_y = bio.set_index("patient_id").loc[data.X.index, "outcome"].to_numpy()
    np.testing.assert_array_equal(data.y, expected_y)
    assert "site" not in data.X.columns and data.site is not None
    assert "sex_M" in data.X.columns and set(data.X["sex_M"]) == {0.0, 1.0}
    assert data.groups == {
        "CT__tumor": ["CT__tumor__original_firstorder_Mean"],
        "MR__tumor": ["MR__tumor__original_shape_Sphericity"],
        "clinical": ["age", "sex_M"],
    }


def test_radmlbench_style_table(tmp_path):
    table = pd.DataFrame(
        {
            "ID": ["a", "b", "c", "d"],
            "Target": [True, False, True, False],
            "CT_original_firstorder_Mean": [1.0, 2, 3, 4],
            "CT_original_glcm_Contrast": [1.0, 2, 3, 4],
            "PET_original_firstorder_Mean": [4.0, 3, 2, 1],
            "PET_original_glcm_Contrast": [1.0, 2, 3, 4],
        }
    )
    path = tmp_path / "t.csv.gz"
    table.to_csv(path, index=False)
    data = load_dataset(path, label="Target")
    assert data.id_column == "ID"
    assert list(data.groups) == ["CT", "PET"]
    assert data.label_mapping == {"False": 0, "True": 1}
    np.testing.assert_array_equal(data.y, [1, 0, 1, 0])


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda f, b: (f, b.assign(outcome=[0, 1, None, 1, 0, 1, 0, 1, 1])), "no outcome value"),
        (lambda f, b: (f, b.assign(outcome=[0, 1, 2, 1, 0, 1, 0, 1, 1])), "exactly 2 classes"),
        (lambda f, b: (f, b.drop(columns="outcome")), "no column 'outcome'"),
        (lambda f, b: (pd.concat([f, f.iloc[:1]]), b), "appears more than once"),
        (lambda f, b: (f.rename(columns={"patient_id": "pid"}), b), "--id"),
        (lambda f, b: (f, b.assign(CT__tumor__original_firstorder_Mean=1.0)), "in both"),
    ],
    ids=["missing-outcome", "not-binary", "no-label", "duplicate-id", "no-id", "shared-column"],
)
def test_bad_tables_raise_input_error(tables, tmp_path, change, message):
    _, _, features, bio = tables
    features, bio = change(features, bio)
    features_path, bio_path = tmp_path / "f.csv", tmp_path / "b.csv"
    features.to_csv(features_path, index=False)
    bio.to_csv(bio_path, index=False)
    with pytest.raises(InputError) as error:
        load_dataset(features_path, label="outcome", biomarkers=bio_path)
    assert message in str(error.value)


def test_row_order_does_not_matter(tables, tmp_path):
    features_path, bio_path, features, _ = tables
    shuffled = tmp_path / "shuffled.parquet"
    features.sample(frac=1, random_state=3).to_parquet(shuffled)
    a = load_dataset(features_path, label="outcome", biomarkers=bio_path)
    b = load_dataset(shuffled, label="outcome", biomarkers=bio_path)
    pd.testing.assert_frame_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)


def test_keep_site_puts_the_site_column_last_outside_every_group(tables):
    features_path, bio_path, features, _ = tables
    plain = load_dataset(features_path, label="outcome", biomarkers=bio_path)
    data = load_dataset(features_path, label="outcome", biomarkers=bio_path, harmonize="site")
    assert list(data.X.columns) == [*plain.X.columns, "site"]
    assert data.groups == plain.groups
    expected = features.set_index("patient_id").loc[data.X.index, "site"]
    assert data.X["site"].tolist() == expected.tolist() == data.site.tolist()
    pd.testing.assert_frame_equal(data.X.drop(columns="site"), plain.X)


def test_keep_site_needs_a_complete_site_column(tables, tmp_path):
    features_path, bio_path, features, _ = tables
    no_site = tmp_path / "no_site.csv"
    features.drop(columns="site").to_csv(no_site, index=False)
    with pytest.raises(InputError, match="No site column"):
        load_dataset(no_site, label="outcome", biomarkers=bio_path, harmonize="site")
    gap = tmp_path / "gap.csv"
    features.assign(site=["A", None] + ["B"] * 6).to_csv(gap, index=False)
    with pytest.raises(InputError, match="Site is missing") as error:
        load_dataset(gap, label="outcome", biomarkers=bio_path, harmonize="site")
    assert "P01" in str(error.value.problems)


def _one_column(tmp_path, values, name="score"):
    n = len(values)
    path = tmp_path / "t.csv"
    pd.DataFrame(
        {"patient_id": [f"P{i:02d}" for i in range(n)], name: values, "outcome": [0, 1] * (n // 2)}
    ).to_csv(path, index=False)
    return path


def test_a_mostly_numeric_text_column_is_an_error_naming_patient_and_value(tmp_path):
    values = [f"{10 + i}.5" for i in range(9)] + ["1O.2"]  # 9 of 10 parse: numeric, one typo
    with pytest.raises(InputError, match="is numeric") as error:
        load_dataset(_one_column(tmp_path, values), label="outcome")
    assert "patient P09 '1O.2'" in str(error.value) and "9 of 10" in str(error.value)


def test_a_text_column_below_the_numeric_share_is_still_categorical(tmp_path):
    values = ["1", "2", "3", "1", "2", "3", "1", "x", "x", "x"]  # 7 of 10 parse: categories
    data = load_dataset(_one_column(tmp_path, values), label="outcome")
    assert data.encoded == {"score": ["score_2", "score_3", "score_x"]}


def test_infinite_values_and_label_spellings_are_errors(tmp_path):
    values = [1.0, np.inf, 3.0, -np.inf]
    with pytest.raises(InputError, match="Infinite") as error:
        load_dataset(_one_column(tmp_path, values), label="outcome")
    assert "'score' is infinite for 2 patient(s): P01 (inf), P03 (-inf)" in str(error.value)
    path = tmp_path / "labels.csv"
    pd.DataFrame(
        {"patient_id": list("abcd"), "x": [1.0, 2, 3, 4], "y": ["Yes", "yes ", "No", "no"]}
    ).to_csv(path, index=False)
    with pytest.raises(InputError, match="differ only by case") as error:
        load_dataset(path, label="y", task="auto")
    assert "'Yes' (1 patient(s)), 'yes ' (1 patient(s))" in str(error.value)
    assert "'No' (1 patient(s)), 'no' (1 patient(s))" in str(error.value)


def test_levels_spelled_several_ways_are_an_error_listing_them(tmp_path):
    """'M', 'M ' and 'm' became three levels of a biomarker before."""
    values = ["M", "M ", "m", "F", "F", "M", "F", "M", "F", "F"]
    path = _one_column(tmp_path, values)
    with pytest.raises(InputError) as error:
        load_dataset(path, label="outcome")
    (problem,) = error.value.problems
    assert problem.file == str(path) and problem.patient_id == "P01"
    assert problem.message == (
        "column 'score' writes one name 3 ways, differing only by case or spaces: "
        "'M' (3 patients: patient P00, patient P05, patient P07), 'M ' (1 patient: patient "
        "P01), 'm' (1 patient: patient P02); they would become separate levels: write it "
        "one way"
    )
    one_way = [v.strip().upper() for v in values]  # the same column written one way
    data = load_dataset(_one_column(tmp_path, one_way), label="outcome")
    assert data.encoded == {"score": ["score_M"]}
    np.testing.assert_array_equal(data.X["score_M"], [v == "M" for v in one_way])


def test_levels_that_differ_otherwise_stay_levels(tmp_path):
    values = ["N+", "N-", "N0", "T1", "T1c", "N+", "N-", "N0", "T1", "T1c"]
    data = load_dataset(_one_column(tmp_path, values), label="outcome")
    assert data.encoded == {"score": [f"score_{v}" for v in ("N-", "N0", "T1", "T1c")]}
