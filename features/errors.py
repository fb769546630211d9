"""One error type for bad user input, carrying every problem found at once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Problem:
    """One problem in the user's input, located as precisely as we can."""

    message: str
    row: int | None = None  # 1-based data row of the CSV it came from (header excluded)
    patient_id: str | None = None
    file: str | None = None

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.patient_id is not None:
            where.append(f"patient {self.patient_id}")
        if self.file is not None:
            where.append(f"file {self.file}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


class InputError(ValueError):
    """Bad input (manifest, biomarker table, feature table, parameters).

    ``problems`` lists every problem found, so users fix them all in one pass. The CLI prints
    ``str(error)`` and exits with code 2, without a traceback.
    """

    def __init__(self, title: str, problems: list[Problem] | None = None):
        self.title = title
        self.problems = list(problems or [])
        super().__init__(str(self))

    def __str__(self) -> str:
        if not self.problems:
            return self.title
        lines = [f"{self.title} ({len(self.problems)} problem(s)):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


class ImageReadError(OSError):
    """An image file or DICOM folder could not be read; the message names the path.

    ``problem`` is how checks introduce its ``reason`` (``"unreadable image: ..."``).
    """

    problem = "unreadable image"

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot read image {self.path}: {reason}")
