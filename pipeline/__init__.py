"""Table in, model and report out: column groups, fusion estimators, CV, report, CLI.

The user API is available from here (``from radfusion.pipeline import FusionClassifier``);
each name is imported on first use, so importing the package (as the CLI does) stays cheap.
"""

from importlib import import_module

#: Public name -> the module that defines it (relative to this package).
API = {
    "FusionClassifier": ".fusion",
    "FusionRegressor": ".fusion",
    "FusionSurvival": ".fusion",
    "ProgressBar": ".progress",
    "cross_validate_models": ".validation",
    "load_dataset": ".dataset",
    "load_model": ".persistence",
    "predict_table": ".persistence",
    "run_cv": ".experiment",
    "save_model": ".persistence",
    "train_from_report": ".persistence",
    "train_model": ".persistence",
}

__all__ = sorted(API)


def __getattr__(name: str):
    if name in API:
        return getattr(import_module(API[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
