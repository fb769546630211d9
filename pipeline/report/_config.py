"""The one record of a model in ``report.json``: ``config.models``, read through one accessor.

A cv report records every model it compared as that estimator's ``get_params()``
(``config.models[name]``): the models of one run share every parameter but ``strategy`` and
``use_groups``. The methods text, the checklists, the validity warnings and ``train
--from-report`` all read the parameters here, so what they describe is what was fitted.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["model_record", "preprocessing_settings"]

#: The models a run's description prefers, in order: its fused models, then the rest.
_DESCRIBED = ("pooled", "stacking", "late", "early", "shared")


def model_record(config: Mapping[str, Any] | None, model: str | None = None) -> dict[str, Any]:
    """The parameters ``config.models`` records for ``model``; without a name, those of the
    run (the first fused model it records, else its first model); ``{}`` when none."""
    models = (config or {}).get("models") or {}
    if model is not None:
        return dict(models.get(model) or {})
    for name in (*_DESCRIBED, *models):
        if name in models:
            return dict(models[name])
    return {}


def preprocessing_settings(params: Mapping[str, Any]) -> dict[str, Any]:
    """The data steps of a model's branches, from its parameters: the harmonisation site
    column and unseen-site policy, the ICC table and threshold, the correlation threshold and
    the top-k selection; an option's companions are None when the option is off."""
    harmonize = params.get("harmonize")
    icc_table = params.get("icc_table")
    select_k = params.get("select_k")
    return {
        "harmonize": harmonize,
        "harmonize_unseen": params.get("harmonize_unseen") if harmonize else None,
        "icc_table": icc_table,
        "icc_threshold": params.get("icc_threshold") if icc_table is not None else None,
        "correlation_threshold": params.get("correlation_threshold"),
        "select_k": select_k,
        "select_method": params.get("select_method") if select_k is not None else None,
    }
