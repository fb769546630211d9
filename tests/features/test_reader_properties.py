"""Property-based fuzzing of the features' text readers (manifest, pyradiomics batch CSV, the
file sniffing of every CSV): what spreadsheets and scripts do to a table — spaces around
cells, letter case, empty optional cells, row order, byte-order marks and line endings,
delimiters, encodings, a column named twice — either leaves the table read unchanged or is an
error naming the cause. Few examples each (deterministic), so the suite stays fast."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from radfusion.features.csvfile import csv_problem
from radfusion.features.errors import InputError
from radfusion.features.manifest import read_manifest
from radfusion.features.spelling import near_duplicates, spelling_key
from tests.fuzz import FUZZ

COLUMNS = ["patient_id", "modality", "mask", "image", "mask_path", "label", "site"]
ROWS = [
    ["P1", "CT", "tumor", "img/P1_ct.nii.gz", "seg/P1_ct.nii.gz", "1", "A"],
    ["P1", "MR_T2", "tumor", "img/P1_t2.nii.gz", "seg/P1_t2.nii.gz", "2", "A"],
    ["P2", "CT", "tumor", "img/P2_ct.nii.gz", "seg/P2_ct.nii.gz", "1", "B"],
    ["007", "CT", "node", "img/007_ct.nii.gz", "seg/007_ct.nii.gz", "1", "B"],
]
SPACES = st.text(alphabet=" \t", max_size=3)


def _write(path: Path, rows: list[list[str]], *, header=COLUMNS, bom=False, newline="\n") -> Path:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator=newline).writerows([header, *rows])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def _canonical(table: pd.DataFrame) -> list[tuple]:
    """The manifest's content, whatever the row order."""
    columns = [c for c in table.columns if c in COLUMNS]
    return sorted(map(tuple, table[columns].astype(str).to_numpy()))


@FUZZ
@given(data=st.data())
def test_spaces_empty_label_order_bom_and_line_endings_change_nothing(tmp_path, data):
    reference = _canonical(read_manifest(_write(tmp_path / "clean.csv", ROWS)))
    rows = []
    for row in data.draw(st.permutations(ROWS), "row order"):
        cells = [data.draw(SPACES) + cell + data.draw(SPACES) for cell in row]
        if row[5] == "1" and data.draw(st.booleans(), "empty label"):
            cells[5] = data.draw(SPACES)  # an empty label is 1
        rows.append(cells)
    header = [data.draw(SPACES) + name + data.draw(SPACES) for name in COLUMNS]
    path = _write(
        tmp_path / "messy.csv",
        rows,
        header=header,
        bom=data.draw(st.booleans(), "BOM"),
        newline=data.draw(st.sampled_from(["\n", "\r\n"]), "line ending"),
    )
    assert csv_problem(path) is None
    assert _canonical(read_manifest(path)) == reference


def _respell(name: str, draw) -> str:
    """A spelling of ``name`` with some letters' case changed and spaces (or a non-breaking
    space) around it; it may come out as ``name`` itself."""
    spelled = "".join(c.swapcase() if draw(st.booleans()) else c for c in name)
    return draw(SPACES) + spelled + draw(st.sampled_from(["", " ", "\u00a0"]))


@FUZZ
@given(data=st.data())
def test_a_name_respelled_in_some_rows_is_an_error_listing_every_spelling(tmp_path, data):
    column = data.draw(st.sampled_from(["modality", "mask", "site"]), "column")
    index = COLUMNS.index(column)
    rows = [list(row) for row in ROWS]
    name = rows[0][index]
    same = [k for k, row in enumerate(rows) if row[index] == name]
    changed = data.draw(st.sets(st.sampled_from(same), min_size=1), "rows respelled")
    for k in changed:
        rows[k][index] = _respell(name, data.draw)
    path = _write(tmp_path / "respelled.csv", rows)
    spellings = {rows[k][index].strip() for k in same}
    if len(spellings) == 1:  # every row respelled alike: one name, nothing to refuse
        assert read_manifest(path)[column].iloc[0] == spellings.pop()
        return
    with pytest.raises(InputError) as error:
        read_manifest(path)
    (problem,) = [p for p in error.value.problems if f"column {column!r}" in p.message]
    assert problem.file == str(path) and problem.patient_id in {row[0] for row in ROWS}
    for spelling in spellings:
        assert repr(spelling) in problem.message


@FUZZ
@given(
    delimiter=st.sampled_from([";", "\t", "|"]),
    rows=st.integers(min_value=0, max_value=len(ROWS)),
)
def test_another_delimiter_is_named(tmp_path, delimiter, rows):
    path = tmp_path / "delimited.csv"
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter).writerows([COLUMNS, *ROWS[:rows]])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    name = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}[delimiter]
    assert csv_problem(path).startswith(f"delimited by {name}, not commas")
    with pytest.raises(InputError, match=f"delimited by {name}"):
        read_manifest(path)


TEXT = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"), max_size=8
)


@FUZZ
@given(
    header=st.lists(TEXT.filter(lambda s: s.strip()), min_size=1, max_size=4, unique=True),
    cells=st.lists(st.lists(TEXT, min_size=4, max_size=4), max_size=4),
)
def test_any_utf8_comma_table_is_never_refused_by_the_sniffing(tmp_path, header, cells):
    """No false alarm: whatever text a comma-separated UTF-8 table holds (commas, quotes,
    semicolons, new lines inside cells, any script), the sniffing lets it through. (A bare
    carriage return is not: pandas writes it unquoted and its reader then splits the row.)"""
    names = [f"c{k}_{name}" for k, name in enumerate(header)]  # distinct after stripping
    table = pd.DataFrame([row[: len(names)] for row in cells], columns=names)
    path = tmp_path / "any.csv"
    table.to_csv(path, index=False, encoding="utf-8")
    assert csv_problem(path) is None, path.read_bytes()[:200]


@FUZZ
@given(
    text=st.text(alphabet=st.characters(min_codepoint=0xA0, max_codepoint=0xFF), min_size=1),
    encoding=st.sampled_from(["latin-1", "utf-16", "utf-16-le"]),
)
def test_other_encodings_are_named(tmp_path, text, encoding):
    path = tmp_path / "encoded.csv"
    content = "patient_id,modality\nP1," + text + "\n"
    path.write_bytes(content.encode(encoding))
    problem = csv_problem(path)
    assert problem is not None and ("UTF-16" in problem or "not UTF-8" in problem), problem


@FUZZ
@given(column=st.sampled_from(COLUMNS), copy=st.sampled_from(COLUMNS), spaces=SPACES)
def test_a_column_named_twice_is_named(tmp_path, column, copy, spaces):
    if column == copy:
        return
    header = [spaces + column + spaces if name == copy else name for name in COLUMNS]
    path = _write(tmp_path / "twice.csv", ROWS, header=header)
    with pytest.raises(InputError) as error:
        read_manifest(path)
    assert f"the header names a column twice ({column!r} is columns" in str(error.value)


@FUZZ
@given(names=st.lists(TEXT, max_size=6))
def test_spellings_of_one_name_share_a_key_and_only_they_do(names):
    """near_duplicates groups exactly the names whose spelling_key agrees: each group holds
    distinct names of one key, and names of one key are in one group."""
    groups = near_duplicates(names)
    grouped = [name for group in groups for name in group]
    assert len(grouped) == len(set(grouped))
    for group in groups:
        assert len(group) > 1 and len({spelling_key(n) for n in group}) == 1
    distinct = set(names)
    for name in distinct - set(grouped):
        assert [n for n in distinct if spelling_key(n) == spelling_key(name)] == [name]


def test_a_bare_carriage_return_inside_a_line_is_named(tmp_path):
    path = tmp_path / "cr.csv"
    pd.DataFrame({"patient_id": ["P1", "P\r2"], "x": [1, 2]}).to_csv(path, index=False)
    assert csv_problem(path).startswith("a carriage return inside line 3 of a file whose")
    path.write_bytes(b"patient_id,x\rP1,1\rP2,2\r")  # old Mac line endings: fine
    assert csv_problem(path) is None
