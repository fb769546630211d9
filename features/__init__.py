"""Images in, feature table out: manifest, reading, pyradiomics extraction, wide table.

The user API is available from here (``from radfusion.features import extract_cohort``);
each name is imported on first use, so importing the package stays cheap.
"""

from importlib import import_module

#: Public name -> the module that defines it (relative to this package).
API = {
    "check_cohort": ".check",
    "extract_cohort": ".runner",
    "make_cohort": ".synthetic",
    "read_manifest": ".manifest",
    "robustness_icc": ".robustness",
    "validate_cohort": ".manifest",
    "write_extraction": ".table",
}

__all__ = sorted(API)


def __getattr__(name: str):
    if name in API:
        return getattr(import_module(API[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
