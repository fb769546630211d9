"""Leakage-safe transformers, each fitted on training rows only: category encoding, ComBat
harmonisation, variance / correlation / robustness filters and top-k selection.
"""

from ._combat import ComBat
from ._encoding import (
    MAX_LEVELS,
    CategoricalEncoder,
    as_frame,
    check_table,
    level_sets,
)
from ._filters import (
    CorrelationFilter,
    RobustnessFilter,
    VarianceFilter,
    pyradiomics_name,
)
from ._selection import (
    SelectTopK,
)

__all__ = [
    "CategoricalEncoder",
    "ComBat",
    "CorrelationFilter",
    "MAX_LEVELS",
    "RobustnessFilter",
    "SelectTopK",
    "VarianceFilter",
    "as_frame",
    "check_table",
    "level_sets",
    "pyradiomics_name",
]
