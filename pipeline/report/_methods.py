"""The report's methods section: paragraphs a paper can start from, accurate to the run.

Everything here is built from what the run recorded — the content of ``report.json`` and the
extraction diagnostics sidecar (``<features stem>.diagnostics.csv``, written by
:func:`radfusion.features.table.write_extraction`) — so the text cannot describe a configuration
that was not run. :func:`read_extraction` summarises the sidecar (PyRadiomics settings per
modality as actually applied); :func:`feature_classes` counts the feature table's columns by
image type and feature class; :func:`learner_parameters` reads the base learners' key
hyperparameters from :func:`radfusion.pipeline.learners.make_learner`; :func:`build_methods` writes
the paragraphs. The output is deterministic for the same inputs.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radfusion.features.naming import CLINICAL_GROUP, CONTROL_SUFFIX, SEPARATOR

from ..learners import make_learner, strategy_learners
from ..targets import get_task
from ._config import model_record, preprocessing_settings

__all__ = [
    "LEARNER_KEYS",
    "build_methods",
    "extraction_paragraphs",
    "feature_classes",
    "learner_parameters",
    "read_extraction",
    "summarize_diagnostics",
]

#: Model names of the fused models (every other model is a single group).

_TREE_KEYS = (  # random forest and extra-trees
    "n_estimators",
    "max_features",
    "max_depth",
    "min_samples_leaf",
    "class_weight",
    "bootstrap",
)
#: The hyperparameters the text states per learner (values come from ``get_params()``).
LEARNER_KEYS: dict[str, tuple[str, ...]] = {
    "lr": ("C", "l1_ratio", "solver", "class_weight", "max_iter"),
    "svm": (
        "estimator__kernel",
        "estimator__C",
        "estimator__gamma",
        "estimator__class_weight",
        "method",
        "cv",
    ),
    "rf": _TREE_KEYS,
    "rf30": _TREE_KEYS,
    "xgb": (
        "n_estimators",
        "max_depth",
        "learning_rate",
        "subsample",
        "colsample_bytree",
        "tree_method",
        "objective",
    ),
    "l1": ("Cs", "l1_ratios", "solver", "cv", "scoring", "class_weight", "max_iter"),
    "enet": ("Cs", "l1_ratios", "solver", "cv", "scoring", "class_weight", "max_iter"),
    "et": _TREE_KEYS,
}
_LEARNER_NAMES = {
    "lr": "L2-penalised logistic regression",
    "svm": "support vector machine (RBF kernel) with Platt-scaled probabilities",
    "rf": "random forest",
    "rf30": "random forest drawing 30 % of the features at each split",
    "xgb": "gradient-boosted trees (XGBoost)",
    "l1": "L1-penalised logistic regression (penalty chosen by inner CV)",
    "enet": "elastic-net logistic regression (penalty chosen by inner CV)",
    "et": "extremely randomised trees",
}
_SETTING_COLUMN = "diagnostics_Configuration_Settings"
_IMAGE_TYPES_COLUMN = "diagnostics_Configuration_EnabledImageTypes"
_VERSION_COLUMN = "diagnostics_Versions_PyRadiomics"
_SPACING_COLUMN = "diagnostics_Image-original_Spacing"
_FEATURE_CLASSES = ("shape2D", "shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
_FEATURE_NAME = re.compile(
    r"(?:^|_)(?P<type>original|wavelet-[HL]{1,3}|log-sigma-[\d-]+mm-[23]D|square|squareroot|"
    r"logarithm|exponential|gradient|lbp-[23]D(?:-[\w]+)?)_(?P<cls>"
    + "|".join(_FEATURE_CLASSES)
    + r")_"
)


# --------------------------------------------------------------------------------------------
# Inputs of the text
# --------------------------------------------------------------------------------------------
def _literal(text: Any) -> Any:
    """A diagnostics value written as Python literal text (dict, tuple...) parsed back."""
    if not isinstance(text, str):
        return None if pd.isna(text) else text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _plain(value: Any) -> Any:
    """Tuples to lists, recursively (JSON shapes)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _most_common(values: Sequence[Any]) -> tuple[Any, int]:
    """The most frequent value (ties: the smallest repr) and the number of distinct values."""
    counts = Counter(repr(v) for v in values)
    best = min(counts, key=lambda r: (-counts[r], r))
    return next(v for v in values if repr(v) == best), len(counts)


def read_extraction(features: str | Path) -> dict[str, Any] | None:
    """Summarise the extraction diagnostics sidecar beside a feature table.

    Parameters
    ----------
    features : str or Path
        The feature table; its sidecar is ``<stem>.diagnostics.csv`` in the same folder.

    Returns
    -------
    dict or None
        None when there is no sidecar (or it holds no PyRadiomics configuration). Otherwise
        ``{"source": sidecar file name, "modalities": {modality: {"cases", "masks": {mask:
        {"cases", "label"}}, "pyradiomics", "image_types", "settings", "settings_vary",
        "spacing_mm": {"min", "max"} | None}}}``: the settings are PyRadiomics'
        ``diagnostics_Configuration_Settings`` as applied (the most frequent ones when they
        differ between cases, then ``settings_vary`` is true), without the per-mask
        ``label``; ``spacing_mm`` is the range of the original voxel spacing per axis.
    """
    from radfusion.features.table import read_table, settle_extraction, sidecar_path

    settle_extraction(features)  # the sidecar and the table then belong to one run
    try:
        path = sidecar_path(features, "diagnostics")
    except ValueError:
        return None
    if not path.is_file():
        return None
    return summarize_diagnostics(read_table(path), path.name)


def summarize_diagnostics(table: pd.DataFrame, source: str) -> dict[str, Any] | None:
    """Summarise per-case PyRadiomics diagnostics (see :func:`read_extraction`).

    Parameters
    ----------
    table : DataFrame
        One row per case with ``modality``, ``mask`` and ``diagnostics_*`` columns: the
        extraction sidecar, or the diagnostics of a table written by the ``pyradiomics``
        command line (:func:`radfusion.pipeline.dataset.read_features`).
    source : str
        The file the diagnostics come from, named in the text.

    Returns
    -------
    dict or None
        As :func:`read_extraction`; None without ``diagnostics_Configuration_Settings``.
    """
    if not {"modality", _SETTING_COLUMN} <= set(table.columns) or table.empty:
        return None
    modalities: dict[str, Any] = {}
    for modality, rows in sorted(table.groupby(table["modality"].astype(str)), key=lambda t: t[0]):
        settings = [_literal(v) for v in rows[_SETTING_COLUMN]]
        settings = [s if isinstance(s, Mapping) else {} for s in settings]
        labels = [s.get("label") for s in settings]
        common, n_variants = _most_common(
            [{k: v for k, v in sorted(s.items()) if k != "label"} for s in settings]
        )
        masks = {}
        mask_column = rows["mask"].astype(str) if "mask" in rows else pd.Series("roi", rows.index)
        for mask in sorted(set(mask_column)):
            chosen = (mask_column == mask).to_numpy()
            mask_labels = [lab for lab, c in zip(labels, chosen, strict=True) if c]
            label, _ = _most_common(mask_labels)
            masks[mask] = {"cases": int(chosen.sum()), "label": label}
        entry = {
            "cases": len(rows),
            "masks": masks,
            "pyradiomics": (
                _most_common([str(v) for v in rows[_VERSION_COLUMN]])[0]
                if _VERSION_COLUMN in rows
                else None
            ),
            "image_types": (
                _plain(_most_common([_literal(v) for v in rows[_IMAGE_TYPES_COLUMN]])[0])
                if _IMAGE_TYPES_COLUMN in rows
                else None
            ),
            "settings": _plain(common),
            "settings_vary": n_variants > 1,
            "spacing_mm": None,
        }
        if _SPACING_COLUMN in rows:
            spacings = [_literal(v) for v in rows[_SPACING_COLUMN]]
            spacings = [s for s in spacings if isinstance(s, (list, tuple)) and s]
            if spacings and len({len(s) for s in spacings}) == 1:
                axes = list(zip(*spacings, strict=True))
                entry["spacing_mm"] = {
                    "min": [round(min(a), 3) for a in axes],
                    "max": [round(max(a), 3) for a in axes],
                }
        modalities[modality] = entry
    return {"source": source, "modalities": modalities}


def feature_classes(groups: Mapping[str, Sequence[str]]) -> dict[str, dict[str, int]]:
    """Columns per group counted by PyRadiomics image type and feature class.

    ``CT__tumor__original_glcm_Contrast`` counts under ``"original glcm"``; columns that are
    not PyRadiomics features (biomarkers, other tools) count under ``"other"``.
    """
    out: dict[str, dict[str, int]] = {}
    for group, columns in groups.items():
        counts: Counter[str] = Counter()
        for column in columns:
            name = column.split(SEPARATOR)[-1]
            match = _FEATURE_NAME.search(name)
            counts[f"{match['type']} {match['cls']}" if match else "other"] += 1
        out[group] = dict(sorted(counts.items()))
    return out


def learner_parameters(names: Sequence[str], random_state: int | None = 0) -> dict[str, Any]:
    """Key hyperparameters of the named learners, as :func:`make_learner` builds them.

    Returns ``{name: {"estimator": class name, "params": {parameter: value}}}`` with the
    parameters of :data:`LEARNER_KEYS` (a CV splitter is given as its number of folds).
    """
    out = {}
    for name in dict.fromkeys(names):
        estimator = make_learner(name, random_state)
        params = estimator.get_params()
        chosen = {}
        for key in LEARNER_KEYS.get(name, ()):
            value = params.get(key)
            if hasattr(value, "get_n_splits"):
                value = f"{value.get_n_splits()}-fold stratified"
            if isinstance(value, str) and value == "deprecated":
                continue
            if isinstance(value, (list, tuple)):
                value = [round(float(v), 6) if isinstance(v, float) else v for v in value]
            chosen[key.replace("estimator__", "")] = value
        out[name] = {"estimator": type(estimator).__name__, "params": chosen}
    return out


def stacking_combiner(params: Mapping[str, Any], task: str) -> str:
    """The combiner a recorded stacking model used: its ``combiner``, else its task's
    default (``Task.default_combiner``)."""
    return params.get("combiner") or get_task(task).default_combiner


def recorded_learner(value: Any) -> tuple[str, Any]:
    """``(label, learner)`` of a learner recorded in ``config.models``: a name, or a learner
    given as an estimator (``{"estimator": class path, "params": ...}``, labelled by its class
    name in lower case, as :func:`radfusion.pipeline.learners.learner_label` does)."""
    if isinstance(value, Mapping):
        return str(value["estimator"]).rpartition(".")[2].lower(), value
    return str(value), value


def recorded_learners(values: Any) -> list[tuple[str, Any]]:
    """:func:`recorded_learner` of each item of a recorded ``learners`` (a ``[label,
    estimator]`` pair keeps its label)."""
    out = []
    for item in values or ():
        if isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[1], Mapping):
            out.append((str(item[0]), item[1]))
        else:
            out.append(recorded_learner(item))
    return out


def described_learners(
    chosen: Sequence[tuple[str, Any]], random_state: int | None = 0
) -> dict[str, Any]:
    """:func:`learner_parameters` of the named learners among ``chosen`` (label, learner),
    and the class and recorded parameters of those given as estimators, by label."""
    names = [v for _, v in chosen if isinstance(v, str) and v in LEARNER_KEYS]
    out = learner_parameters(names, random_state=random_state)
    for label, value in chosen:
        if isinstance(value, Mapping):
            out[label] = {
                "estimator": str(value["estimator"]).rpartition(".")[2],
                "params": dict(value["params"]),
            }
    return out


# --------------------------------------------------------------------------------------------
# The text
# --------------------------------------------------------------------------------------------
def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``"1 model"``, ``"3 models"``: a count with its noun in the right number."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def join_list(items: Sequence[str]) -> str:
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _mm(values: Sequence[float]) -> str:
    return " x ".join(f"{v:g}" for v in values) + " mm"


def _settings_sentence(s: Mapping[str, Any]) -> str:
    """PyRadiomics settings in words (the ones a methods section is expected to give)."""
    parts = []
    spacing = s.get("resampledPixelSpacing")
    if spacing:
        parts.append(
            f"resampled to {_mm(spacing)} voxels ({s.get('interpolator', 'sitkBSpline')}"
            " interpolation)"
        )
    else:
        parts.append("not resampled (native voxel spacing)")
    if s.get("normalize"):
        parts.append(
            f"intensities z-score normalised over the image and multiplied by "
            f"{s.get('normalizeScale', 1)}"
        )
    if s.get("removeOutliers"):
        parts.append(f"outliers beyond {s['removeOutliers']} SD removed")
    if s.get("resegmentRange"):
        parts.append(f"ROI re-segmented to intensities in {s['resegmentRange']}")
    if s.get("binCount"):
        parts.append(f"grey levels discretised into {s['binCount']} bins (fixed bin count)")
    else:
        parts.append(f"grey levels discretised with a fixed bin width of {s.get('binWidth', 25)}")
    if s.get("voxelArrayShift") is not None:
        parts.append(f"first-order voxel array shift {s['voxelArrayShift']}")
    parts.append("2D (per slice)" if s.get("force2D") else "3D texture matrices")
    if s.get("distances") is not None:
        parts.append(f"neighbour distance(s) {join_list([str(d) for d in s['distances']])}")
    return "; ".join(parts)


def extraction_paragraphs(
    report: Mapping[str, Any],
    extraction: Mapping[str, Any] | None,
    classes: Mapping[str, Mapping[str, int]],
) -> list[str]:
    """The feature-extraction paragraphs of a methods text (every task's).

    One paragraph per modality with the PyRadiomics version and settings as applied
    (``extraction``: :func:`read_extraction`), or one saying no diagnostics were found; then
    the feature groups with their column counts by image type and feature class
    (``classes``: :func:`feature_classes`). Reads ``report``'s ``data.groups``,
    ``inputs.features.path`` and ``config.encoded_columns``.
    """
    groups = report["data"]["groups"]
    imaging = [g for g in groups if g != CLINICAL_GROUP]
    source = (report.get("inputs") or {}).get("features", {}).get("path", "the feature table")
    paragraphs = []
    if extraction and extraction.get("modalities"):
        for modality, m in extraction["modalities"].items():
            controls = [mask for mask in m["masks"] if mask.endswith(CONTROL_SUFFIX)]
            masks = join_list(
                [
                    f"{mask} (label {info['label']}, {info['cases']} cases)"
                    for mask, info in m["masks"].items()
                    if mask not in controls
                ]
            )
            types = join_list(list(m["image_types"] or {})) or "Original"
            text = (
                f"{modality}: radiomic features were extracted with PyRadiomics "
                f"{m['pyradiomics'] or '(version not recorded)'} from {m['cases']} "
                f"segmentations ({masks}), image types {types}. Images were "
                f"{_settings_sentence(m['settings'])}."
            )
            if controls:
                text += (
                    " As a negative control, every ROI was also extracted from its image with "
                    "the voxels inside the ROI randomly permuted (same intensity histogram, no "
                    f"texture; masks {join_list(controls)}); these features form the control "
                    "baseline and are never fused."
                )
            spacing = m.get("spacing_mm")
            if spacing and spacing["min"] == spacing["max"]:
                text += f" The original voxel spacing was {_mm(spacing['min'])}."
            elif spacing:
                text += (
                    f" The original voxel spacing ranged from {_mm(spacing['min'])}"
                    f" to {_mm(spacing['max'])}."
                )
            if m.get("settings_vary"):
                text += (
                    " The settings were not identical for every case; the most frequent "
                    "ones are given."
                )
            paragraphs.append(text)
        paragraphs[-1] += f" Settings are those recorded by PyRadiomics in {extraction['source']}."
    else:
        paragraphs.append(
            f"Features were provided as a precomputed table ({source}); no extraction "
            "diagnostics were found beside it, so the image preprocessing and PyRadiomics "
            "settings are not known to radfusion and must be reported separately."
        )
    described = []
    for group in groups:
        counts = classes.get(group) or {}
        detail = ", ".join(f"{k} {v}" for k, v in counts.items() if k != "other")
        if detail and counts.get("other"):  # the breakdown sums to the group's count
            detail += f", other {counts['other']}"
        described.append(f"{group} {groups[group]}" + (f" ({detail})" if detail else ""))
    text = (
        f"The analysis used {sum(groups.values())} columns in {len(groups)} feature "
        f"group(s): {'; '.join(described)}."
    )
    if CLINICAL_GROUP in groups:
        encoded = (report.get("config") or {}).get("encoded_columns") or {}
        text += (
            f" The {CLINICAL_GROUP} group holds the non-imaging variables"
            + (
                f"; categorical ones ({join_list(sorted(encoded))}) were one-hot encoded"
                if encoded
                else ""
            )
            + "."
        )
    if not imaging:
        text += " No imaging feature group was present."
    paragraphs.append(text)
    return paragraphs


def _preprocessing_paragraph(report: Mapping[str, Any]) -> str:
    pre = preprocessing_settings(model_record(report.get("config")))
    steps = []
    if pre.get("harmonize"):
        unseen = (
            "raising an error for a site absent from the training rows"
            if pre.get("harmonize_unseen") in (None, "error")
            else "leaving patients of a site absent from the training rows unadjusted"
        )
        steps.append(
            f"ComBat harmonisation of the imaging features by acquisition site (column "
            f"'{pre['harmonize']}'; Johnson et al. 2007, each site's training mean removed "
            "in full and its variance shrunk by parametric empirical Bayes; "
            f"clinical variables not harmonised; {unseen})"
        )
    steps.append(
        "median imputation of missing values (a missing modality or mask is imputed "
        "like any missing value)"
    )
    steps.append("removal of features constant in the training rows")
    if pre.get("correlation_threshold") is not None:
        steps.append(
            f"a correlation filter (of features with absolute Pearson correlation "
            f"above {pre['correlation_threshold']}, the first in column order is kept)"
        )
    if pre.get("select_k") is not None:
        method = (
            "minimum-redundancy maximum-relevance (mRMR, F-statistic relevance)"
            if pre.get("select_method") == "mrmr"
            else "the ANOVA F statistic"
        )
        steps.append(f"selection of the {pre['select_k']} best features by {method}")
    steps.append("standardisation to zero mean and unit variance")
    text = (
        "Within every model branch, the following steps were fitted on the training rows "
        "of each fold only and applied to the held-out rows: "
        + "; ".join(f"({i}) {s}" for i, s in enumerate(steps, 1))
        + "."
    )
    if "shared" in (report.get("models") or {}):
        applied = any(
            pre.get(key) is not None for key in ("harmonize", "correlation_threshold", "select_k")
        )
        text += (
            " The shared-space model applied these steps to each group before fitting its "
            "latent space (the selection scored against the label on the training rows)."
            if applied
            else " The shared-space model applied imputation and standardisation to each "
            "group (no constant-feature filter) before fitting its latent space."
        )
    if not pre.get("harmonize"):
        text += " No harmonisation across sites was applied."
    if pre.get("correlation_threshold") is None and pre.get("select_k") is None:
        text += " No feature filtering or selection beyond the constant-feature filter was applied."
    return text


_INNER = (
    "out-of-fold probabilities from an inner stratified {folds}-fold CV of the "
    "training rows (fewer folds, at least 2, when a class has fewer than {folds} "
    "training patients)"
)
_REFIT = "; base models then refitted on all training rows"
#: How each learned combiner is described in the methods text (``combiner`` option); the
#: inner folds are the model's ``cv``.
_COMBINER_TEXT = {
    "logistic": "a logistic meta-learner with non-negative weights on the logits of the base "
    f"models' {_INNER}, L2 penalty C=1, plus an indicator per group missing in some training "
    "patients" + _REFIT,
    "convex": "combined by non-negative weights summing to one over the base models and the "
    f"training base rate, minimising the log-loss of the base models' {_INNER} (super "
    "learner), re-normalised over the base models a patient has data for" + _REFIT,
    "shrunk": "combined by non-negative weights summing to one over the base models and the "
    f"training base rate, minimising the log-loss of the base models' {_INNER}, then shrunk "
    "toward equal weights by an amount (0 to 1 in steps of 0.1) chosen by a "
    "{folds}-fold CV over those out-of-fold probabilities, re-normalised over the "
    "base models a patient has data for" + _REFIT,
    "platt": "the mean of the predicted probabilities of the base models a patient has data "
    "for (equal weights), recalibrated by a logistic (Platt) map of its logit whose slope is "
    "at least 1 (it can only undo the spread the averaging takes away), fitted by maximum "
    f"likelihood on the mean of the base models' {_INNER}"
    " (multiclass: the same map on each class's log mean probability, one shared slope)" + _REFIT,
    "best": "the single base model, or the training base rate, with the lowest log-loss of "
    f"the {_INNER} (discrete super learner); a patient without its group gets the next "
    "best one it has" + _REFIT,
}


def _param_text(params: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def _stacks_learners(report: Mapping[str, Any]) -> bool:
    """Whether a model of the run stacks or votes over ``learners`` per group: stacking, or
    late fusion over a single group."""
    models = report["models"]
    return "stacking" in models or ("late" in models and len(report["data"]["groups"]) == 1)


def _models_paragraph(report: Mapping[str, Any], learners: Mapping[str, Any]) -> str:
    params = model_record(report.get("config"))
    models = list(report["models"])
    fused = [m for m in models if m in set(report.get("fused") or ())]
    singles = [m for m in models if m not in fused]
    learner = recorded_learner(params["learner"])[0] if params.get("learner") else None
    stack, pooled = (
        [
            label
            for label, _ in recorded_learners(strategy_learners(name, params.get("learners")))
            if label in learners
        ]
        for name in ("stacking", "pooled")
    )
    parts = []
    if singles:
        parts.append(f"one single-group model per feature group ({join_list(singles)})")
    if "early" in fused:
        parts.append("early fusion (one model on the concatenated columns of all groups)")
    task = report["task"]
    if "late" in fused:
        parts.append(
            "late fusion (the mean of the predicted probabilities of the single-group "
            "models a patient has data for, soft voting)"
        )
    if "stacking" in fused:
        combiner = stacking_combiner(params, task)
        parts.append(
            f"stacking (one base model per group and learner ({join_list(stack)}); "
            + (
                "the mean of the predicted probabilities of the base models a patient has "
                "data for, equal weights, nothing fitted on top)"
                if combiner == "mean"
                else _COMBINER_TEXT[combiner].format(folds=params.get("cv", 3)) + ")"
            )
        )
    if "pooled" in fused:
        combiner = stacking_combiner(params, task)
        parts.append(
            "pooled stacking (the columns of all groups pooled into one group, one base model "
            f"per learner ({join_list(pooled)}); "
            + (
                "the mean of their predicted probabilities, nothing fitted on top)"
                if combiner == "mean"
                else _COMBINER_TEXT[combiner].format(folds=params.get("cv", 3)) + ")"
            )
        )
    if "shared" in fused:
        parts.append(
            "shared-space fusion (a PLS-DA on all groups defines a common latent space; each "
            "group is mapped into it by ridge regression, a patient's position is the mean "
            "over the groups it has, and a logistic regression predicts from it)"
        )
    compared = f"{counted(len(models), 'model')} {'was' if len(models) == 1 else 'were'} compared"
    text = (
        f"{compared}: " + "; ".join(parts) + "." if parts else f"{compared}: {join_list(models)}."
    )
    if learner in learners:
        described = _LEARNER_NAMES.get(learner, learner)
        text += (
            f" Single-group, early and late fusion models used {described}"
            f" ({_param_text(learners[learner]['params'])})."
        )
    if not _stacks_learners(report):
        stack = []
    for name in dict.fromkeys(stack + (pooled if "pooled" in fused else [])):
        role = "Stacking" if name in stack else "Pooled"
        if name != learner or learner not in learners:
            text += (
                f" {role} base learner {name}: {_LEARNER_NAMES.get(name, name)} "
                f"({_param_text(learners[name]['params'])})."
            )
        else:
            text += f" {role} base learner {name}: as above."
    text += (
        " Hyperparameters were fixed in advance (radfusion defaults for radiomics "
        "tables), not tuned on the data."
    )
    return text


def _validation_paragraph(report: Mapping[str, Any]) -> str:
    config = report.get("config") or {}
    data = report["data"]
    folds, repeats = config.get("folds"), config.get("repeats")
    if folds and repeats:
        scheme = (
            f"{repeats} x repeated stratified {folds}-fold cross-validation"
            if repeats > 1
            else f"stratified {folds}-fold cross-validation (a single repetition)"
        )
    else:
        scheme = "repeated stratified k-fold cross-validation"
    splitter, unseen = f"scikit-learn RepeatedStratifiedKFold, seed {report['seed']}", ""
    if config.get("group_by"):  # radfusion cv --group-by: leave-one-group-out
        scheme = f"leave-one-group-out cross-validation by {config['group_by']!r}"
        splitter = f"{folds} folds, one per value, one repetition; the column is not a predictor"
        policy = preprocessing_settings(model_record(config))["harmonize_unseen"]
        if policy:
            unseen = (
                "The held-out site is unseen by ComBat, whose unseen-site policy "
                f"{policy!r} applied to it. "
            )
    return (
        f"Performance was estimated by {scheme} ({splitter}) on {data['n_patients']} patients "
        f"({data['n_positive']} positive, "
        f"{data['n_negative']} negative); every model was evaluated on the same splits. Each "
        "patient is one row of the table, so all of a patient's modalities and masks are in "
        "the same fold (patient-level grouping by construction). The CV is not nested: no "
        "hyperparameter was tuned, and every data-dependent step (imputation, filtering, "
        "selection, harmonisation, stacking weights) was refitted inside each training fold. "
        f"{unseen}{report.get('ci_method', '')} "
        f"{(report.get('comparisons') or {}).get('method', '')}"
    ).strip()


def software_paragraph(report: Mapping[str, Any]) -> str:
    versions = report.get("versions") or {}
    listed = [
        f"{name} {v}"
        for name, v in versions.items()
        if v is not None and name not in ("python", "platform")
    ]
    return (
        f"Analyses were run with radfusion {report.get('radfusion_version')} on Python "
        f"{versions.get('python', 'unknown')} ({join_list(listed)}); seed {report['seed']} for the "
        "splits, the models and the bootstrap. The configuration, SHA-256 hashes of the input "
        "tables and pinned requirements are recorded in report.json; re-running the same "
        "command on the same inputs reproduces it byte for byte."
    )


def build_methods(
    report: Mapping[str, Any],
    *,
    extraction: Mapping[str, Any] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, Any]:
    """The ``methods`` field of ``report.json``.

    Parameters
    ----------
    report : mapping
        The report content (JSON-ready) without ``methods``; read: ``config``, ``seed``,
        ``data``, ``inputs``, ``versions``, ``ci_method``, ``models``, ``threshold``,
        ``comparisons``, ``radfusion_version``.
    extraction : mapping, optional
        :func:`read_extraction` of the feature table, or None when it had no sidecar.
    groups : mapping of str to sequence of str, optional
        The feature groups' columns, for the counts by feature class.

    Returns
    -------
    dict
        ``{"text": [paragraph, ...], "extraction": extraction or None,
        "feature_classes": {group: {"<image type> <class>": n}}, "learners": {name:
        {"estimator", "params"}}}``.
    """
    params = model_record(report.get("config"))
    chosen = [recorded_learner(params["learner"])] if params.get("learner") else []
    if _stacks_learners(report):
        chosen += recorded_learners(strategy_learners("stacking", params.get("learners")))
    if "pooled" in report["models"]:
        chosen += recorded_learners(strategy_learners("pooled", params.get("learners")))
    learners = described_learners(chosen, random_state=report["seed"])
    classes = feature_classes(groups or {})
    text = [
        *extraction_paragraphs(report, extraction, classes),
        _preprocessing_paragraph(report),
        _models_paragraph(report, learners),
        _validation_paragraph(report),
        software_paragraph(report),
    ]
    return {
        "text": text,
        "extraction": extraction,
        "feature_classes": classes,
        "learners": learners,
    }
