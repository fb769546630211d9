"""Property-based fuzzing of the pipeline's text readers (feature and biomarker tables, the
``pyradiomics`` output table, biomarker levels): ids come back as written, and what
spreadsheets and scripts do to a table (blank or float labels, spaces and letter case in
names and levels, row order) either changes nothing or is an error listing the spellings.
Few examples each (deterministic), so the suite stays fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radfusion.features.errors import InputError
from radfusion.features.naming import control_characters
from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.pyradiomics_table import widen_pyradiomics_table
from radfusion.pipeline.tables import read_table
from tests.fuzz import FUZZ

TEXT = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")


@FUZZ
@given(
    ids=st.lists(
        st.text(alphabet=TEXT, min_size=1, max_size=10).filter(lambda s: s.strip()),
        min_size=1,
        max_size=6,
        unique=True,
    ),
    suffix=st.sampled_from([".csv", ".csv.gz", ".parquet"]),
)
def test_any_text_id_is_read_back_as_written_or_refused(tmp_path, ids, suffix):
    """'007', '1e3', 'NA', 'nan', 'TRUE', ' 42', ids with commas, quotes or line breaks: a
    table written by pandas gives them back character for character, or, for an id holding a
    control character (a carriage return, which pandas writes unquoted, so that the CSV
    reader split the row: '\\r0' came back as '0'), is refused; never another id."""
    path = tmp_path / f"ids{suffix}"
    table = pd.DataFrame({"patient_id": ids, "x": np.arange(len(ids), dtype=float)})
    if suffix == ".parquet":
        table.to_parquet(path)
    else:
        table.to_csv(path, index=False)
    if any(control_characters(i) for i in ids):
        with pytest.raises(InputError, match="control characters|carriage return"):
            read_table(path)
    else:
        assert read_table(path)["patient_id"].tolist() == ids


def _pyradiomics_table() -> pd.DataFrame:
    """A pyradiomics output table: 3 patients x (CT, PET) x (tumor, node), one row each."""
    rows = []
    rng = np.random.default_rng(0)
    for patient in ("007", "P2", "1e3"):
        for modality in ("CT", "PET"):
            for mask in ("tumor", "node"):
                rows.append(
                    {
                        "ID": patient,
                        "Image": f"{patient}_{modality}.nii.gz",
                        "Mask": f"{patient}_{mask}.nii.gz",
                        "Label": 1,
                        "Modality": modality,
                        "ROI": mask,
                        "diagnostics_Versions_PyRadiomics": "v3.1.0",
                        "original_firstorder_Mean": rng.normal(),
                        "original_shape_VoxelVolume": rng.uniform(100, 900),
                    }
                )
    return pd.DataFrame(rows)


def _wide(table: pd.DataFrame) -> pd.DataFrame:
    wide, _ = widen_pyradiomics_table(table, "ID", file="table.csv")
    return wide.set_index("ID").sort_index().sort_index(axis=1)


LABELS = st.sampled_from([1, 1.0, "1", " 1", "1.0", "", None, np.nan])


@FUZZ
@given(data=st.data())
def test_blank_or_float_labels_spaces_and_row_order_change_nothing(data):
    """A blank Label is 1 and 1.0 is 1 (a column with blanks is read as floats), spaces
    around names are not part of them, and rows come in any order: one wide table."""
    reference = _wide(_pyradiomics_table())
    table = _pyradiomics_table()
    table["Label"] = [data.draw(LABELS, "label") for _ in range(len(table))]
    for column in ("Modality", "ROI"):
        table[column] = [
            data.draw(st.sampled_from(["", " "])) + v + data.draw(st.sampled_from(["", " "]))
            for v in table[column]
        ]
    order = data.draw(st.permutations(range(len(table))), "row order")
    table = table.iloc[list(order)].reset_index(drop=True)
    pd.testing.assert_frame_equal(_wide(table), reference)


@FUZZ
@given(data=st.data())
def test_a_name_respelled_in_some_rows_is_never_a_second_group(data):
    column = data.draw(st.sampled_from(["Modality", "ROI"]), "column")
    table = _pyradiomics_table()
    name = table[column].iloc[0]
    rows = table.index[table[column] == name]
    changed = data.draw(st.sets(st.sampled_from(list(rows)), min_size=1), "rows respelled")
    for row in changed:
        spelled = "".join(c.swapcase() if data.draw(st.booleans()) else c for c in name)
        table.loc[row, column] = spelled + data.draw(st.sampled_from(["", " ", "\u00a0"]))
    spellings = set(table.loc[rows, column].str.strip())
    if len(spellings) == 1:  # respelled everywhere alike: still one group
        assert len(_wide(table).filter(like="__").columns) == len(
            _wide(_pyradiomics_table()).columns
        )
        return
    with pytest.raises(InputError) as error:
        _wide(table)
    message = str(error.value)
    assert "differing only by case or spaces" in message and "table.csv" in message
    assert all(repr(s) in message for s in spellings), (spellings, message)


LEVELS = ["M", "F", "F", "M", "F", "M", "M", "F"]


def _tables(tmp_path, levels: list[str]) -> tuple:
    ids = [f"P{k}" for k in range(len(levels))]
    features = pd.DataFrame({"patient_id": ids, "CT__tumor__original_firstorder_Mean": 1.0})
    features["CT__tumor__original_firstorder_Mean"] = np.arange(len(ids), dtype=float)
    bio = pd.DataFrame({"patient_id": ids, "sex": levels, "outcome": [0, 1] * (len(ids) // 2)})
    features.to_parquet(tmp_path / "features.parquet")
    bio.to_csv(tmp_path / "bio.csv", index=False)
    return tmp_path / "features.parquet", tmp_path / "bio.csv"


@FUZZ
@given(data=st.data())
def test_levels_respelled_are_an_error_listing_them_or_change_nothing(tmp_path, data):
    """'M', 'M ', 'm' became three levels before."""
    reference = load_dataset(*_tables(tmp_path, LEVELS)[:1], label="outcome",
                             biomarkers=_tables(tmp_path, LEVELS)[1]).X  # fmt: skip
    levels = [
        (v.lower() if data.draw(st.booleans()) else v) + data.draw(st.sampled_from(["", " "]))
        for v in LEVELS
    ]
    features, bio = _tables(tmp_path, levels)
    variants = {level: {v for v in levels if v.strip().upper() == level} for level in "MF"}
    if all(len(v) == 1 for v in variants.values()):  # each level written one way
        X = load_dataset(features, label="outcome", biomarkers=bio).X
        np.testing.assert_array_equal(X.to_numpy(), reference.to_numpy())
        return
    with pytest.raises(InputError) as error:
        load_dataset(features, label="outcome", biomarkers=bio)
    message = str(error.value)
    assert f"file {bio}" in message and "column 'sex'" in message
    for spellings in variants.values():
        if len(spellings) > 1:
            assert all(repr(s) in message for s in spellings), message
