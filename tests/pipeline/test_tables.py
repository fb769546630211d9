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


def test_a_table_that_is_no_comma_separated_utf8_csv_is_named_so(tmp_path):
    """Those gave 'No patient identifier column' or a codec error at some byte before."""
    from tests.features.conftest import not_csv_files

    rows = [["P1", "1.5", "0"], ["P2", "2.5", "1"]]
    for case, (path, words) in not_csv_files(tmp_path, ["patient_id", "x", "y"], rows).items():
        with pytest.raises(InputError) as error:
            read_table(path)
        (problem,) = error.value.problems
        assert problem.file == str(path) and words in problem.message, (case, problem.message)
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbfpatient_id,x\n007,1.5\n")
    assert read_table(bom)["patient_id"].tolist() == ["007"]


def test_ids_that_differ_only_by_spaces_or_case_name_the_cause(tmp_path):
    features = pd.DataFrame({"patient_id": ["P001", "P002", "P003"], "f": [1.0, 2.0, 3.0]})
    features.to_csv(tmp_path / "features.csv", index=False)
    bio = tmp_path / "bio.csv"
    _write_text(bio, ["patient_id,outcome", "P001 ,0", "p002,1", "P003,1"])
    with pytest.raises(InputError) as error:
        load_dataset(tmp_path / "features.csv", label="outcome", biomarkers=bio)
    assert str(error.value) == (
        "Patient ids are written differently in the feature and biomarker tables (2 "
        "problem(s)):\n"
        f"  - patient P001 , file {bio}: patient id 'P001 ' is 'P001' in {tmp_path}/features.csv:"
        " ids that differ only by case or spaces are not matched; write them one way\n"
        f"  - patient p002, file {bio}: patient id 'p002' is 'P002' in {tmp_path}/features.csv:"
        " ids that differ only by case or spaces are not matched; write them one way"
    )
    _write_text(bio, ["patient_id,outcome", "P001,0", "P001 ,1", "P003,1"])
    with pytest.raises(InputError, match="Duplicated patient identifiers") as error:
        load_dataset(tmp_path / "features.csv", label="outcome", biomarkers=bio)
    assert "'P001' (1 row: row 1), 'P001 ' (1 row: row 2)" in str(error.value)
