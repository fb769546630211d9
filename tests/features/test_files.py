"""Atomic writes and output sets: complete or absent, with ordinary permissions; output checks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from radfusion.features.errors import InputError
from radfusion.features.files import (
    _UMASK,
    atomic_write,
    check_output_path,
    settle,
    write_atomic,
    write_set,
)


@pytest.mark.parametrize("content", ["text é\n", b"\x00bytes"])
def test_written_file_has_the_content_and_plain_permissions(tmp_path, content):
    path = write_atomic(tmp_path / "sub" / "out.txt", content)
    data = path.read_bytes()
    assert data == (content.encode("utf-8") if isinstance(content, str) else content)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~_UMASK
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_failed_write_leaves_neither_file_nor_temporary(tmp_path):
    def fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.txt", fail)
    assert list(tmp_path.iterdir()) == []


def _visible(folder):
    """Every non-hidden file below ``folder``: relative name → bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def test_write_set_replaces_writes_and_removes_members_together(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "gone.csv").write_text("old")
    (tmp_path / "user.txt").write_text("not ours")
    written = write_set(
        tmp_path / ".set.journal",
        {
            tmp_path / "a.txt": "new a",
            tmp_path / "sub" / "b.bin": b"\x00b",
            tmp_path / "c.txt": lambda temporary: temporary.write_text("by a writer"),
            tmp_path / "gone.csv": None,
        },
    )
    assert _visible(tmp_path) == {
        "a.txt": b"new a",
        "c.txt": b"by a writer",
        "sub/b.bin": b"\x00b",
        "user.txt": b"not ours",
    }
    assert (
        written[tmp_path / "gone.csv"] is None and written[tmp_path / "a.txt"] == tmp_path / "a.txt"
    )
    assert not [p for p in tmp_path.rglob(".*")]  # no journal, no temporaries
    assert stat.S_IMODE(os.stat(tmp_path / "c.txt").st_mode) == 0o666 & ~_UMASK


def test_write_set_takes_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    written = write_set(Path("out/.set.journal"), {Path("out/figures/a.svg"): "<svg/>"})
    assert written == {Path("out/figures/a.svg"): Path("out/figures/a.svg")}
    assert _visible(tmp_path) == {"out/figures/a.svg": b"<svg/>"}
    assert not [p for p in tmp_path.rglob(".*")]


def test_write_set_refuses_a_member_outside_the_journal_folder(tmp_path):
    with pytest.raises(ValueError, match="outside"):
        write_set(tmp_path / "sub" / ".set.journal", {tmp_path / "a.txt": "x"})
    assert list(tmp_path.iterdir()) == []


def test_failed_staging_leaves_the_old_set_and_no_temporaries(tmp_path):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")

    def fail(temporary):
        temporary.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_set(
            tmp_path / ".set.journal", {tmp_path / "a.txt": "new a", tmp_path / "b.txt": fail}
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    assert _visible(tmp_path) == {"a.txt": b"old a", "b.txt": b"old b"}


def test_settle_rolls_an_interrupted_commit_forward_and_is_idempotent(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("old a")
    (tmp_path / "b.txt").write_text("old b")
    real_replace, calls = os.replace, []

    def replace_then_die(src, dst):  # the journal is the 1st rename, a.txt the 2nd
        calls.append(dst)
        if len(calls) == 3:
            raise KeyboardInterrupt
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        write_set(
            tmp_path / ".set.journal", {tmp_path / "a.txt": "new a", tmp_path / "b.txt": "new b"}
        )
    monkeypatch.setattr(os, "replace", real_replace)
    assert (tmp_path / ".set.journal").is_file()
    assert _visible(tmp_path) == {"a.txt": b"new a", "b.txt": b"old b"}  # mixed on disk...
    settle(tmp_path / ".set.journal")
    assert _visible(tmp_path) == {"a.txt": b"new a", "b.txt": b"new b"}  # ...until settled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.txt"]
    settle(tmp_path / ".set.journal")  # nothing left to do
    assert _visible(tmp_path) == {"a.txt": b"new a", "b.txt": b"new b"}


def test_the_next_writer_removes_temporaries_a_killed_one_left(tmp_path):
    (tmp_path / ".a[1].txt.x1y2.tmp").write_text("killed while staging")
    (tmp_path / "..set.journal.x3y4.tmp").write_text("killed while writing the journal")
    write_set(tmp_path / ".set.journal", {tmp_path / "a[1].txt": "new"})
    assert [p.name for p in tmp_path.iterdir()] == ["a[1].txt"]


def test_unreadable_journal_is_an_error_naming_it(tmp_path):
    journal = tmp_path / ".set.journal"
    journal.write_text("{not json")
    with pytest.raises(InputError, match=r"\.set\.journal"):
        settle(journal)


@pytest.mark.parametrize(
    ("name", "suffixes", "folder"),
    [
        ("out.parquet", (".parquet", ".csv"), False),
        ("new/deeper/OUT.CSV.GZ", (".csv.gz",), False),  # folders are created later; any case
        ("model", None, False),
        ("report", None, True),
        ("new/report", None, True),
    ],
)
def test_writable_outputs_pass(tmp_path, name, suffixes, folder):
    (tmp_path / "report").mkdir()
    assert check_output_path(tmp_path / name, suffixes, folder=folder) == tmp_path / name
    assert not (tmp_path / "new").exists()  # checking creates nothing


@pytest.mark.parametrize(
    ("name", "suffixes", "folder", "reason"),
    [
        (
            "features.xlsx",
            (".parquet", ".csv"),
            False,
            r"unsupported file type \(use .parquet, .csv\)",
        ),
        ("a_file/out.csv", None, False, "a_file is not a folder"),
        ("a_file/deeper/report", None, True, "a_file is not a folder"),
        ("a_file", None, True, "it is a file, not a folder"),
        ("a_folder", None, False, "it is a folder, not a file"),
    ],
)
def test_unwritable_outputs_are_one_line_errors_naming_the_path(
    tmp_path, name, suffixes, folder, reason
):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_folder").mkdir()
    with pytest.raises(InputError, match=reason) as caught:
        check_output_path(tmp_path / name, suffixes, folder=folder)
    assert str(caught.value).startswith(f"Cannot write {tmp_path / name}: ")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("folder", [False, True])
def test_read_only_folder_is_refused(tmp_path, monkeypatch, folder):
    # Root may write anywhere, so the test makes os.access deny the folder instead of chmod.
    locked, real_access = tmp_path / "locked", os.access
    locked.mkdir()
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: p != locked and real_access(p, mode))
    target = locked / "new" / ("report" if folder else "out.csv")
    with pytest.raises(InputError, match=f"folder {locked} is not writable"):
        check_output_path(target, folder=folder)


def test_an_output_that_is_an_input_or_inside_an_input_folder_is_refused(tmp_path, monkeypatch):
    manifest, series = tmp_path / "manifest.csv", tmp_path / "ct"
    manifest.write_text("patient_id\n")
    series.mkdir()
    os.link(manifest, tmp_path / "hard.csv")
    os.symlink(manifest, tmp_path / "soft.csv")
    inputs = {manifest: "the manifest", series: "the image of patient P1 (row 1)"}
    monkeypatch.chdir(tmp_path)
    for output, words in (
        (Path("manifest.csv"), f"it would replace the manifest of this run, {manifest}"),
        (tmp_path / "hard.csv", "it would replace the manifest"),  # the same file, hard-linked
        (tmp_path / "soft.csv", "it would replace the manifest"),
        (series / "features.csv", "it is inside the image of patient P1 (row 1)"),
        (tmp_path / "ct" / ".." / "ct" / "new" / "f.csv", "it is inside the image"),
    ):
        with pytest.raises(InputError) as caught:
            check_output_path(output, (".csv",), inputs=inputs)
        message = str(caught.value)
        assert message.startswith(f"Cannot write {output}: {words}"), message
        assert message.endswith("; choose another path") and "\n" not in message
    with pytest.raises(InputError, match="the run also writes .*manifest.csv, which would replace"):
        check_output_path(tmp_path / "f.csv", inputs=[manifest], written=[manifest, None])
    # an input inside an output folder, an absent input, other names: fine
    assert check_output_path(tmp_path, folder=True, inputs=inputs) == tmp_path
    assert check_output_path(tmp_path / "f.csv", inputs=[tmp_path / "absent.csv", manifest])
