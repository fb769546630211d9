"""Atomic writes: complete or absent, with ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from radfusion.features.files import _UMASK, atomic_write, write_atomic


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
