"""What a file given where a CSV is expected really is, said before a parser misreads it.

pandas reads an Excel workbook as undecodable bytes, a semicolon-delimited CSV (Excel's
export in locales whose decimal mark is a comma) as one column named
``patient_id;modality;...``, and a UTF-16 or Latin-1 file as a decoding error at some byte:
the messages then blame a missing column or a codec, not the file. :func:`csv_problem` reads
the first bytes (decompressed for ``.gz``) and names the cause: an Excel workbook (``.xlsx``,
``.xls``), a Parquet or gzip file under a CSV name, UTF-16 text, text that is not UTF-8 (with
the line and byte), binary data, a header delimited by semicolons, tabs or ``|`` instead
of commas, or a header naming one column twice (pandas would rename the copy ``age.1`` and
keep it as another column). The manifest, the biomarker table and the feature tables all go
through it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import re
import zlib
from pathlib import Path

__all__ = ["HEAD_BYTES", "csv_problem"]

#: Bytes read to recognise a file.
HEAD_BYTES = 1 << 16
_SAVE = "save it as CSV (comma-separated, UTF-8)"
_MAGIC = (
    (b"PK\x03\x04", f"an Excel workbook (.xlsx) or another zip file, not a CSV: {_SAVE}"),
    (b"\xd0\xcf\x11\xe0", f"an Excel 97-2003 workbook (.xls), not a CSV: {_SAVE}"),
    (b"PAR1", "a Parquet file, not a CSV: name it .parquet"),
    (b"\x1f\x8b", "gzip-compressed, not a plain CSV: name it .csv.gz"),
    (b"\xff\xfe", f"UTF-16 text (Excel's 'Unicode text'), not UTF-8: {_SAVE}"),
    (b"\xfe\xff", f"UTF-16 text, not UTF-8: {_SAVE}"),
)
#: A quoted CSV cell (quotes inside doubled): line breaks in it are part of the cell.
_QUOTED = re.compile(r'"(?:[^"]|"")*"')
_DELIMITERS = {";": "semicolons", "\t": "tabs", "|": "vertical bars"}


def _head(path: Path) -> bytes:
    """The first bytes of the file, decompressed when its name ends in ``.gz``."""
    with path.open("rb") as raw:
        head = raw.read(HEAD_BYTES)
    if path.name.lower().endswith(".gz") and head.startswith(b"\x1f\x8b"):
        try:
            with gzip.open(path) as handle:
                return handle.read(HEAD_BYTES)
        except (OSError, EOFError, zlib.error) as error:
            return b"\0damaged gzip: " + str(error).encode()
    return head


def csv_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a comma-separated UTF-8 CSV; None when it can be tried.

    Parameters
    ----------
    path : str or Path
        An existing file (``.gz`` names are decompressed first).

    Returns
    -------
    str or None
        One sentence naming what the file is and what to do, e.g. ``"delimited by
        semicolons, not commas (header 'patient_id;modality;mask'): save it as CSV
        (comma-separated, UTF-8)"``.
    """
    path = Path(path)
    head = _head(path)
    if head.startswith(b"\0damaged gzip: "):
        return f"a damaged gzip file ({head[15:].decode(errors='replace')})"
    for magic, reason in _MAGIC:
        if head.startswith(magic) and not (magic == b"\x1f\x8b" and path.suffix == ".gz"):
            return reason
    if b"\0" in head:
        sample = head[:4096]  # UTF-16 without a mark: every other byte of ASCII text is 0
        if max(sample[0::2].count(0), sample[1::2].count(0)) > 0.45 * len(sample):
            return f"UTF-16 text (without a byte-order mark), not UTF-8: {_SAVE}"
        return f"binary data, not text: {_SAVE}"
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        text = decoder.decode(head, final=len(head) < HEAD_BYTES)
    except UnicodeDecodeError as error:
        line = head[: error.start].count(b"\n") + 1
        return (
            f"not UTF-8 text (byte 0x{head[error.start]:02x} on line {line}; Latin-1 or "
            f"Windows-1252?): {_SAVE}"
        )
    unquoted = _QUOTED.sub(lambda cell: "q" * len(cell.group()), text)  # same offsets
    bare = re.search(r"\r(?!\n)", unquoted)
    if bare and "\n" in unquoted and bare.end() < len(text):  # (the decoder may stop at \r)
        line = text[: bare.start()].count("\n") + 1
        return (
            f"a carriage return inside line {line} of a file whose lines end otherwise: a cell "
            "holding an unquoted line break, which splits its row; remove it or quote the cell"
        )
    lines = text.lstrip("\ufeff").splitlines()
    header = lines[0] if lines else ""
    if header and "," not in header:
        for delimiter, name in _DELIMITERS.items():
            fields = len(header.split(delimiter))
            # a one-column table whose name holds the character is not delimited by it
            if fields > 1 and (len(lines) < 2 or len(lines[1].split(delimiter)) == fields):
                shown = header if len(header) <= 60 else header[:57] + "..."
                return f"delimited by {name}, not commas (header {shown!r}): {_SAVE}"
    names = [name.strip() for name in next(csv.reader([header]), [])] if header else []
    repeated = [n for n in dict.fromkeys(names) if n and names.count(n) > 1]
    if repeated:
        where = "; ".join(
            f"{n!r} is columns {', '.join(str(i) for i, m in enumerate(names, 1) if m == n)}"
            for n in repeated
        )
        return (
            f"the header names a column twice ({where}): a reader would keep one and rename the "
            "other; rename or remove the copy"
        )
    return None
