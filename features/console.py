"""A quiet console: third-party warnings users cannot act on, filtered at our entry points.

:func:`quiet_warnings` is called by the ``radfusion`` command (and by the quick-start
notebook), never on import of a library module, so code that imports radfusion keeps its
own warning filters. It filters deprecation notices raised inside pyradiomics and its
dependencies (pykwalify, six, PyWavelets, SimpleITK) and tqdm's notice that Jupyter widgets
are missing (the text progress bar is used instead). Worker processes started afterwards
(joblib's loky workers, a local Dask cluster) inherit the filters through
``PYTHONWARNINGS``. A user who sets ``-W`` or ``PYTHONWARNINGS`` gets every warning, as asked.
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["THIRD_PARTY", "quiet_warnings"]

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
