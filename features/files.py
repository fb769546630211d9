"""Files that appear complete or not at all, and content hashes: shared by both packages."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

_CHUNK = 1 << 20


def _read_umask() -> int:
    """The process umask (read once at import: setting it is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` in ``path``'s folder, then rename the result to ``path``.

    A reader (or a run killed at any moment) sees the old file or the new one, never half
    of it; the temporary file is removed when ``write`` fails. The file gets the permissions
    of a plainly created one (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o666 & ~_UMASK)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write text (UTF-8, newlines unchanged) or bytes to ``path`` atomically."""

    def write(temporary: Path) -> None:
        if isinstance(content, bytes):
            temporary.write_bytes(content)
        else:
            with temporary.open("w", encoding="utf-8", newline="") as handle:
                handle.write(content)

    return atomic_write(path, write)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB chunks.

    For a folder (a DICOM series) the digest covers every file below it: relative names and
    contents, in sorted order.
    """
    path = Path(path)
    digest = hashlib.sha256()
    files = [path] if not path.is_dir() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file != path:
            digest.update(file.relative_to(path).as_posix().encode() + b"\0")
        with file.open("rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
