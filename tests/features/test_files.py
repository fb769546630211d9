"""Atomic writes and output sets: complete or absent, with ordinary permissions; output checks."""

from __future__ import annotations

import os
import stat

import pytest

from features.errors import InputError
from features.files import (
    _UMASK,
    atomic_write,
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
    (tmp_path / ".a.txt.x1y2.tmp").write_text("killed while staging")
    write_set(tmp_path / ".set.journal", {tmp_path / "a.txt": "new"})
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_unreadable_journal_is_an_error_naming_it(tmp_path):
    journal = tmp_path / ".set.journal"
    journal.write_text("{not json")
    with pytest.raises(InputError, match=r"\.set\.journal"):
        settle(journal)
