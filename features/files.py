"""Outputs that appear complete or not at all — single files and sets of files — and hashes.

Shared by both packages. :func:`atomic_write` replaces one file by renaming a finished
temporary over it. :func:`write_set` replaces a *set* of files that only make sense together
(a feature table and its sidecars; a report folder) so that, after a kill at any moment, a
reader that calls :func:`settle` first sees the complete old set or the complete new set:

1. every member is written to a temporary name in its destination folder
   (``.<name>.<random>.tmp``); a kill here leaves the old set untouched;
2. a small journal listing the pending renames (and the members absent from the new set) is
   written atomically; from now on the new set is complete on disk;
3. the renames and removals are performed, then the journal is deleted.

:func:`settle` rolls an interrupted commit forward: it replays the journal (renames whose
temporary is gone were already done) and deletes it. Writers settle before staging, and
remove temporaries left by a killed run. We chose a journal over building a folder as a
temporary sibling and swapping it in because a set can share its folder with the user's
other files (the feature table), and a swap of the report folder would need a rename
exchange that not every platform or file system has. Scope: process kills and exceptions,
not power loss (no ``fsync``); one writer per set at a time.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

from .errors import InputError, Problem

__all__ = [
    "Content",
    "atomic_write",
    "check_output_path",
    "file_digest",
    "settle",
    "write_atomic",
    "write_set",
]

_CHUNK = 1 << 20
_JOURNAL_FORMAT = "radfusion-output-set/1"

#: What :func:`write_set` accepts for a member: text (UTF-8), bytes, a function that writes
#: the given temporary path, or None (absent from the new set: an old file is removed).
Content = str | bytes | Callable[[Path], None] | None


def _read_umask() -> int:
    """The process umask (read once at import: setting it is not thread-safe)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def _temporary(path: Path) -> Path:
    """A new empty file ``.<name>.<random>.tmp`` in ``path``'s folder."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    return path.parent / Path(temporary).name  # relative when ``path`` is


def _fill(temporary: Path, content: str | bytes | Callable[[Path], None]) -> None:
    """Write ``content`` to ``temporary`` and give it plain permissions (0o666 - umask)."""
    if callable(content):
        content(temporary)
    elif isinstance(content, bytes):
        temporary.write_bytes(content)
    else:
        with temporary.open("w", encoding="utf-8", newline="") as handle:
            handle.write(content)
    os.chmod(temporary, 0o666 & ~_UMASK)


def _replace(path: Path, content: str | bytes | Callable[[Path], None]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = _temporary(path)
    try:
        _fill(temporary, content)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary)`` in ``path``'s folder, then rename the result to ``path``.

    A reader (or a run killed at any moment) sees the old file or the new one, never half
    of it; the temporary file is removed when ``write`` fails. The file gets the permissions
    of a plainly created one (``0o666`` minus the umask), not ``mkstemp``'s private ``0o600``.
    """
    return _replace(Path(path), write)


def write_atomic(path: str | Path, content: str | bytes) -> Path:
    """Write text (UTF-8, newlines unchanged) or bytes to ``path`` atomically."""
    return _replace(Path(path), content)


def settle(journal: str | Path) -> None:
    """Finish a :func:`write_set` commit that was interrupted; a no-op when none was.

    Call it before reading any member of a set. The journal exists only once every new member
    is complete under its temporary name, so rolling forward always yields the new set.

    Raises
    ------
    InputError
        The journal cannot be read or the renames cannot be done (e.g. a read-only folder),
        naming the journal.
    """
    journal = Path(journal)
    try:
        _roll_forward(journal)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(
            "Cannot finish an interrupted write of an output set",
            [
                Problem(
                    f"{type(error).__name__}: {error}; fix the cause, then run again",
                    file=str(journal),
                )
            ],
        ) from error


def _roll_forward(journal: Path) -> None:
    """Replay the journal's renames and removals (idempotent), then delete it."""
    try:
        plan = json.loads(journal.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return
    if plan.get("format") != _JOURNAL_FORMAT:
        raise ValueError(f"not a {_JOURNAL_FORMAT} journal")
    folder = journal.parent
    for temporary, final in plan["renames"]:
        try:
            os.replace(folder / temporary, folder / final)
        except FileNotFoundError:  # renamed before the interruption
            pass
    for final in plan["removes"]:
        (folder / final).unlink(missing_ok=True)
    journal.unlink(missing_ok=True)


def _remove_stale_temporaries(path: Path) -> None:
    """Remove ``.<name>.*.tmp`` files a killed writer of ``path`` left behind."""
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
            stale.unlink(missing_ok=True)


def write_set(
    journal: str | Path, members: Mapping[str | Path, Content]
) -> dict[Path, Path | None]:
    """Replace a set of files together: after a kill, :func:`settle` gives all old or all new.

    Parameters
    ----------
    journal : str or Path
        The set's journal file (hidden, e.g. ``.features.parquet.journal``); every member
        must be in its folder or below it.
    members : mapping
        Destination path → content: text, bytes, a function writing the temporary path it is
        given, or None for a file absent from the new set (an existing one is removed).

    Returns
    -------
    dict
        Destination path → itself, or None for the removed members.
    """
    journal = Path(os.path.abspath(journal))
    folder = journal.parent
    targets = {Path(os.path.abspath(path)): content for path, content in members.items()}
    for path in targets:
        if folder != path.parent and folder not in path.parents:
            raise ValueError(f"set member {path} is outside the journal's folder {folder}")
    settle(journal)
    for path in [journal, *targets]:
        _remove_stale_temporaries(path)
    staged: dict[Path, Path] = {}
    try:
        for path, content in targets.items():
            if content is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            staged[path] = _temporary(path)
            _fill(staged[path], content)
        plan = {
            "format": _JOURNAL_FORMAT,
            "renames": [
                [t.relative_to(folder).as_posix(), p.relative_to(folder).as_posix()]
                for p, t in staged.items()
            ],
            "removes": [p.relative_to(folder).as_posix() for p, c in targets.items() if c is None],
        }
        write_atomic(journal, json.dumps(plan, indent=1) + "\n")
    except BaseException:
        for temporary in staged.values():
            temporary.unlink(missing_ok=True)
        raise
    _roll_forward(journal)  # the commit: the same code that finishes a killed one
    return {Path(p): None if content is None else Path(p) for p, content in members.items()}


def check_output_path(
    path: str | Path,
    suffixes: Collection[str] | None = None,
    *,
    folder: bool = False,
    inputs: Mapping[str | Path, str] | Collection[str | Path] = (),
    written: Collection[str | Path | None] = (),
) -> Path:
    """Refuse, before any work, an output we could not write, or one that would replace or
    change an input of the run.

    Parameters
    ----------
    path : str or Path
        The file (or, with ``folder=True``, the folder) a command will write.
    suffixes : collection of str, optional
        Accepted endings (case-insensitive), e.g. ``(".parquet", ".csv")``.
    folder : bool
        ``path`` is a folder to write into (it must be one, or be creatable).
    inputs : mapping or collection of paths
        What the run reads (files or folders), optionally mapped to what each is (``"the
        manifest"``), for the message. ``path`` and every path of ``written`` must be none of
        them (``extract manifest.csv --out manifest.csv`` would replace the manifest) and
        must not lie inside an input folder (a table written into a DICOM series folder
        changes the series' hash, hence every cache key). Paths are compared after resolving
        symbolic links, and as the same file when both exist (hard links too). An input
        inside an output folder is fine.
    written : collection of paths
        Other files or folders the command writes beside ``path`` (sidecars, a cache);
        None entries are skipped.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        An unsupported suffix, an existing path of the wrong kind, a folder that cannot be
        created or written, or an output that is an input or inside an input folder; the
        message names ``path`` (and the input).
    """
    path = Path(path)

    def refuse(message: str) -> InputError:  # one line: the CLI prints it as it is
        return InputError(f"Cannot write {path}: {message}")

    if suffixes and not path.name.lower().endswith(tuple(s.lower() for s in suffixes)):
        raise refuse(f"unsupported file type (use {', '.join(suffixes)})")
    if path.is_dir() != folder and path.exists():
        raise refuse("it is a folder, not a file" if not folder else "it is a file, not a folder")
    # The folder written into (the output itself, or its parent) or its first existing ancestor.
    existing = path if folder else path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise refuse(f"{existing} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise refuse(f"folder {existing} is not writable")
    described = inputs if isinstance(inputs, Mapping) else dict.fromkeys(inputs, "an input")
    for output in [path, *(Path(p) for p in written if p is not None)]:
        for source, what in described.items():
            clash = _overlap(output, Path(source))
            if clash:
                who = "it" if output == path else f"the run also writes {output}, which"
                raise refuse(f"{who} {clash} {what} of this run, {source}; choose another path")
    return path


def _overlap(output: Path, source: Path) -> str | None:
    """How an output path collides with an input path: ``"is"``, ``"is inside"``, or None."""
    if not source.exists():
        return None
    if output.exists() and os.path.samefile(output, source):
        return "would replace" if not output.is_dir() else "is"
    real_output, real_source = Path(os.path.realpath(output)), Path(os.path.realpath(source))
    if real_output == real_source:
        return "would replace"
    if source.is_dir() and real_source in real_output.parents:
        return "is inside"
    return None


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
