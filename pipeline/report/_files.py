"""The report set on disk: ``report.json``, ``predictions.csv``, ``report.html``, ``run.json``
and ``figures/*``, drawn for the report's task and written together.

The folder is one output set (:func:`radfusion.features.files.write_set`): every file lands
together, so a run killed at any moment leaves the old report or the new one once
:func:`settle_report` ran. ``report.json`` depends only on the inputs, the configuration and
the seed (durations go to ``run.json``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from radfusion.features.files import Content, settle, write_atomic, write_set

from ._dispatch import REPORT_KINDS, report_kind
from ._figures import png_bytes, svg_text
from ._html import FIGURE_DIR, jsonable

__all__ = [
    "REPORT_FILES",
    "REPORT_JOURNAL",
    "RUN_FILE",
    "report_json_text",
    "report_members",
    "settle_report",
    "write_report",
    "write_run_info",
]

REPORT_FILES = {"json": "report.json", "csv": "predictions.csv", "html": "report.html"}
RUN_FILE = "run.json"
#: The report set's journal (hidden, inside the report folder; see ``write_set``).
REPORT_JOURNAL = ".report.journal"

_NUMBER_LIST = re.compile(r"\[\s*([^\[\]{}\"]*?)\s*\]")


def report_json_text(report: Mapping[str, Any]) -> str:
    """The exact text of ``report.json`` (what makes it byte-identical across runs).

    Indented JSON, with lists of numbers kept on one line so the curves stay compact.
    """
    text = json.dumps(report, indent=2, sort_keys=False, ensure_ascii=False, allow_nan=False)
    text = _NUMBER_LIST.sub(lambda m: "[" + re.sub(r"\s*\n\s*", " ", m.group(1)) + "]", text)
    return text + "\n"


def report_members(
    report: Mapping[str, Any],
    predictions: pd.DataFrame,
    out_dir: str | Path,
    durations: Callable[[], Mapping[str, float]] | None = None,
) -> dict[Path, Content]:
    """Every file of the report set in ``out_dir`` and its content, rendered in memory.

    Figures of an earlier report that this one does not draw (any task's figure names; other
    files are left alone), and ``run.json`` when ``durations`` is None, map to None (removed
    when the set is written). ``durations`` is called once everything is rendered; see
    :func:`write_report`.
    """
    out_dir = Path(out_dir)
    figure_dir = out_dir / FIGURE_DIR
    kind = report_kind(report["task"])
    # Figures an earlier report may have drawn (e.g. of another task); nothing else is touched.
    ours = [
        figure_dir / f"{name}.{suffix}"
        for name in set().union(*(k.figure_names for k in REPORT_KINDS.values()))
        for suffix in ("svg", "png")
    ]
    members: dict[Path, Content] = {path: None for path in sorted(ours) if path.is_file()}
    svgs = {}
    for name, fig in kind.figures(report).items():
        svgs[name] = svg_text(fig, name)
        members[figure_dir / f"{name}.svg"] = svgs[name]
        members[figure_dir / f"{name}.png"] = png_bytes(fig)
    members[out_dir / REPORT_FILES["json"]] = report_json_text(report)
    members[out_dir / REPORT_FILES["csv"]] = predictions.to_csv(index=False, lineterminator="\n")
    members[out_dir / REPORT_FILES["html"]] = kind.render(report, svgs=svgs)
    members[out_dir / RUN_FILE] = None if durations is None else _run_info_text(durations())
    return members


def write_report(
    report: Mapping[str, Any],
    predictions: pd.DataFrame,
    out_dir: str | Path,
    durations: Callable[[], Mapping[str, float]] | None = None,
) -> dict[str, Path]:
    """Write ``report.json``, ``predictions.csv``, ``report.html`` and the figures as one set.

    The figures go to ``figures/<name>.svg`` and ``figures/<name>.png``. A multiclass or
    regression report (``report["task"]``) is drawn by :mod:`radfusion.pipeline.report`. Every
    file lands together (:func:`radfusion.features.files.write_set`); figures of an earlier report
    in ``out_dir`` that this one does not draw are removed, and so is its ``run.json`` unless
    ``durations`` is given.

    Parameters
    ----------
    durations : callable, optional
        Returns the durations (seconds) for ``run.json`` (:func:`write_run_info`); called once
        everything is rendered, just before the files are committed.

    Returns
    -------
    dict
        ``{"json": path, "csv": path, "html": path, "figures": folder}``.
    """
    out_dir = Path(out_dir)
    (out_dir / FIGURE_DIR).mkdir(parents=True, exist_ok=True)
    settle_report(out_dir)
    write_set(out_dir / REPORT_JOURNAL, report_members(report, predictions, out_dir, durations))
    return {
        **{key: out_dir / name for key, name in REPORT_FILES.items()},
        "figures": out_dir / FIGURE_DIR,
    }


def settle_report(out_dir: str | Path) -> None:
    """Finish an interrupted :func:`write_report` to ``out_dir`` (else do nothing)."""
    settle(Path(out_dir) / REPORT_JOURNAL)


def _run_info_text(durations: Mapping[str, float]) -> str:
    info = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "durations_seconds": jsonable(dict(durations)),
    }
    return json.dumps(info, indent=2) + "\n"


def write_run_info(out_dir: str | Path, durations: Mapping[str, float]) -> Path:
    """Write ``run.json``: wall-clock durations (seconds) and when the run finished (UTC).

    Kept apart from ``report.json`` so that file stays reproducible byte for byte. To make it
    part of the report set, pass ``durations`` to :func:`write_report` instead.
    """
    out_dir = Path(out_dir)
    settle_report(out_dir)
    return write_atomic(out_dir / RUN_FILE, _run_info_text(durations))
