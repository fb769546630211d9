"""Patient ids are read as text from every table format, and joins report unmatched patients."""

import numpy as np
import pandas as pd
import pytest

from radfusion.features.errors import InputError
from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.tables import (
    UnmatchedPatientsWarning,
    index_by_id,
    join_biomarkers,
    patient_ids,
    read_table,
)

#: Ids that pandas would otherwise turn into numbers or missing values.
TRICKY = ["007", "1e3", "12345678901234567890", "NA", "nan", "0x1F", " 42"]


def _write_text(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz"])
def test_csv_ids_stay_as_written(tmp_path, suffix):
    text = tmp_path / "t.csv"
    _write_text(text, ["patient_id,x,note", *(f"{p},{i}.5,NA" for i, p in enumerate(TRICKY))])
    path = tmp_path / f"t{suffix}"
    pd.read_csv(text, dtype=str, keep_default_na=False).to_csv(path, index=False)
    table = read_table(path)
    assert table["patient_id"].tolist() == TRICKY
    assert table["x"].dtype == np.float64  # other columns are parsed as before
    assert table["note"].isna().all()  # "NA" is missing outside the id column


def test_csv_id_named_by_id_column_or_candidates(tmp_path):
    path = tmp_path / "t.csv"
    _write_text(path, ["ID,case,x", "001,002,1", "010,020,2"])
    assert read_table(path)["ID"].tolist() == ["001", "010"]
    assert read_table(path, "case")["case"].tolist() == ["002", "020"]
    assert read_table(path, "absent")["ID"].tolist() == ["001", "010"]  # resolved later


def test_parquet_text_and_integer_ids_become_text(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"patient_id": TRICKY, "x": range(len(TRICKY))}).to_parquet(path)
    assert read_table(path)["patient_id"].tolist() == TRICKY
    pd.DataFrame({"patient_id": [7, 1000, 12345678901234567890], "x": [1, 2, 3]}).to_parquet(path)
    assert read_table(path)["patient_id"].tolist() == ["7", "1000", "12345678901234567890"]


def test_parquet_float_ids_are_refused_naming_file_column_and_row(tmp_path):
    path = tmp_path / "t.parquet"
    pd.DataFrame({"patient_id": [7.0, 8.0], "x": [1, 2]}).to_parquet(path)
    with pytest.raises(InputError, match="must be text") as error:
        read_table(path)
    message = str(error.value)
    assert str(path) in message and "'patient_id'" in message and "row 1" in message


def test_empty_ids_are_refused(tmp_path):
    path = tmp_path / "t.csv"
    _write_text(path, ["patient_id,x", "A,1", ",2"])
    with pytest.raises(InputError, match="row 2.*is empty"):
        read_table(path)


def test_dataframe_ids_go_through_the_same_rule():
    assert patient_ids(pd.Series([7, 8]), "ID", "t").tolist() == ["7", "8"]
    with pytest.raises(InputError, match=r"is 7\.5 \(float\)"):
        patient_ids(pd.Series(["A", 7.5]), "ID", "t")
    indexed = index_by_id(pd.DataFrame({"ID": ["007", "8"], "x": [1, 2]}), "ID", "t")
    assert indexed.index.tolist() == ["007", "8"] and indexed.index.name == "ID"


def test_join_reports_patients_of_either_table_and_refuses_no_overlap():
    table = pd.DataFrame({"x": [1.0, 2, 3]}, index=pd.Index(["001", "002", "003"], name="ID"))
    bio = pd.DataFrame({"age": [50, 60, 70]}, index=pd.Index(["002", "003", "004"], name="ID"))
    with pytest.warns(UnmatchedPatientsWarning) as caught:
        joined = join_biomarkers(table, bio, file="f.csv", bio_file="b.csv")
    messages = [str(w.message) for w in caught]
    assert any("1 patient(s) of b.csv" in m and "004" in m for m in messages)
    assert any("1 patient(s) of f.csv" in m and "001" in m for m in messages)
    assert joined.index.tolist() == ["001", "002", "003"]
    assert np.isnan(joined.loc["001", "age"]) and joined.loc["003", "age"] == 60
    numeric = bio.set_axis(pd.Index(["2", "3", "4"], name="ID"))
    with pytest.raises(InputError, match="No patient id") as error:
        join_biomarkers(table, numeric, file="f.csv", bio_file="b.csv")
    assert "b.csv" in str(error.value) and "001" in str(error.value)


def test_parquet_features_and_csv_biomarkers_join_on_leading_zeros(tmp_path):
    ids = [f"{i:03d}" for i in range(1, 9)]
    features = tmp_path / "f.parquet"
    pd.DataFrame(
        {"patient_id": ids, "CT__tumor__original_firstorder_Mean": np.arange(8.0)}
    ).to_parquet(features)
    biomarkers = tmp_path / "b.csv"
    _write_text(
        biomarkers,
        ["patient_id,age,outcome", *(f"{p},{50 + i},{i % 2}" for i, p in enumerate(ids))],
    )
    data = load_dataset(features, label="outcome", biomarkers=biomarkers)
    assert data.X.index.tolist() == ids
    assert data.X["age"].tolist() == [50.0 + i for i in range(8)]  # no biomarker lost
    np.testing.assert_array_equal(data.y, [0, 1] * 4)
