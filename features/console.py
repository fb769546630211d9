"""A quiet console: third-party warnings users cannot act on, filtered at our entry points.

:func:`quiet_warnings` is called by the ``radfusion`` command (and by the quick-start
notebook), never on import of a library module, so code that imports radfusion keeps its
own warning filters. It filters deprecation notices raised inside pyradiomics and its
dependencies (pykwalify, six, PyWavelets, SimpleITK) and tqdm's notice that Jupyter widgets
are missing (the text progress bar is used instead). Worker processes started afterwards
(joblib's loky workers, a local Dask cluster) inherit the filters through
``PYTHONWARNINGS``. A user who sets ``-W`` or ``PYTHONWARNINGS`` gets every warning, as asked.

:func:`show_progress` is the one rule for progress bars (``extract``, ``cv``, ``train``, the
benchmarks): drawn on a terminal, never in a log file, a CI log or with ``--quiet``.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TextIO

__all__ = ["THIRD_PARTY", "quiet_warnings", "show_progress"]

#: Packages whose deprecation notices are theirs to fix, not our users'.
THIRD_PARTY = ("radiomics", "pykwalify", "six", "pywt", "SimpleITK", "docopt", "ruamel")
#: Deprecation notices, and ImportWarning (six's importer on Python >= 3.12).
_NOTICES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning, ImportWarning)
#: For worker processes: PYTHONWARNINGS matches modules exactly, so deprecation notices are
#: ignored by category there (Python ignores them outside ``__main__`` by default anyway).
_WORKER_FILTERS = ("ignore::DeprecationWarning", "ignore::PendingDeprecationWarning")


def quiet_warnings() -> None:
    """Filter third-party warnings users cannot act on, here and in later worker processes.

    Does nothing when the user chose warning filters (``python -W`` or ``PYTHONWARNINGS``).
    """
    if sys.warnoptions or os.environ.get("PYTHONWARNINGS"):
        return
    for package in THIRD_PARTY:
        for category in _NOTICES:
            warnings.filterwarnings("ignore", category=category, module=rf"{package}(\.|$)")
    # six's importer on Python >= 3.10, reported from importlib's frozen bootstrap.
    warnings.filterwarnings(
        "ignore", message=r"the load_module\(\) method is deprecated", category=DeprecationWarning
    )
    try:
        from tqdm import TqdmWarning
    except ImportError:  # pragma: no cover - tqdm is a dependency
        pass
    else:
        warnings.filterwarnings("ignore", message="IProgress not found", category=TqdmWarning)
    os.environ["PYTHONWARNINGS"] = ",".join(_WORKER_FILTERS)


def show_progress(quiet: bool = False, stream: TextIO | None = None) -> bool:
    """Whether to draw a progress bar: on a terminal, outside CI, unless asked to be quiet.

    Parameters
    ----------
    quiet : bool, default=False
        The command's ``--quiet``: no bar.
    stream : file-like, optional
        Where the bar would be drawn (default ``sys.stderr``); no bar unless it is a TTY, so a
        redirected or piped run writes no carriage-return noise into its log.

    Returns
    -------
    bool
        False with ``quiet``, when the ``CI`` environment variable is set (to anything but
        empty, ``0`` or ``false``: CI services set it, and their logs are not terminals even
        when they pretend to be), or when ``stream`` is not a TTY.
    """
    if quiet or os.environ.get("CI", "").strip().lower() not in ("", "0", "false"):
        return False
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
