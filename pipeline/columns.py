"""Feature groups from column names: which columns each fusion branch sees.

A *group* is the set of columns one fusion branch sees (one modality and mask, or the clinical
biomarkers). :func:`infer_groups` derives the groups from the column names alone, by the first
rule that applies:

1. ``pattern`` given: a regular expression with one capturing group (or a named group
   ``group``), applied with :func:`re.match`; its capture names the group. Columns that do not
   match go to ``clinical``.
2. Some column contains the separator ``__`` (our own feature tables): imaging columns
   ``modality__mask__feature`` form the group ``modality__mask``; all other columns form
   ``clinical``.
3. Otherwise, pyradiomics names with a block prefix, as in per-modality exports that were
   concatenated (``CT_original_glcm_Contrast``, ``Portal_vein_wavelet-LLH_glszm_…``,
   ``ADC_general_info_VoxelNum``): the prefix before the first pyradiomics image-type token
   (``original``, ``wavelet-LLH``, ``log-sigma-1-0-mm-3D``, ``square``, … or
   ``general``/``diagnostics``) names the group; other columns form ``clinical``. If fewer than
   two columns have such a prefix, the whole table is one group, ``all``.

Negative-control columns (``modality__mask~permuted__feature``, from ``radfusion extract
--negative-control``; :func:`radfusion.features.naming.is_control_column`) are in no group,
whatever the rule: they must never be fused. :func:`baseline_groups` derives the two baseline
groups a comparison adds beside the single groups, ``volume`` (the ROI volume of each imaging
group) and ``control`` (every negative-control column); neither is ever fused.

Groups are returned in the order their first column appears, ``clinical`` last; columns keep
their table order. The groups hold column names, so they plug straight into a
:class:`~sklearn.compose.ColumnTransformer` (see :func:`radfusion.pipeline.fusion.make_branch`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from radfusion.features.errors import InputError, Problem
from radfusion.features.naming import (
    CLINICAL_GROUP,
    ID_COLUMN,
    SEPARATOR,
    SITE_COLUMN,
    group_of,
    is_control_column,
)

ALL_GROUP = "all"
"""The group name when no block structure is found: the whole table is one branch."""
VOLUME_GROUP = "volume"
"""The derived group of each imaging group's ROI volume (see :func:`baseline_groups`)."""
CONTROL_GROUP = "control"
"""The derived group of the negative-control columns (see :func:`baseline_groups`)."""
VOLUME_FEATURES = ("original_shape_MeshVolume", "original_shape_VoxelVolume")
"""pyradiomics' ROI volume features, in order of preference: the mesh volume (IBSI's
"volume (mesh)"), else the voxel-count volume."""

# pyradiomics image types (imageoperations.get*Image), as they appear in feature names, plus the
# non-feature blocks `diagnostics_*` (pyradiomics) and `general_info_*` (FAE / older exports).
_IMAGE_TYPE = re.compile(
    r"""(?x)^(?:
        original
      | wavelet\d*-[LH]+                    # wavelet-LLH, wavelet2-HLL (start level > 1)
      | log-sigma-[0-9-]+-mm-[23]D          # log-sigma-1-0-mm-3D
      | square | squareroot | logarithm | exponential | gradient
      | lbp-2D | lbp-3D-(?:m\d+|k)          # lbp-3D-m1, lbp-3D-k
      | general | diagnostics
    )$"""
)


def infer_groups(
    columns: Sequence[str],
    pattern: str | None = None,
    *,
    exclude: Iterable[str] = (ID_COLUMN, SITE_COLUMN),
) -> dict[str, list[str]]:
    """Group feature columns by modality/mask from their names.

    Parameters
    ----------
    columns : sequence of str
        Column names of the feature table, without the outcome column.
    pattern : str, optional
        Regular expression applied with :func:`re.match` to every column; the named group
        ``group``, or else the first capturing group, names the column's group. Non-matching
        columns (or an empty capture) go to ``clinical``. Overrides the automatic rules.
    exclude : iterable of str, default=(ID_COLUMN, SITE_COLUMN)
        Columns that are never features (patient identifier, acquisition site) and are left out.
        Negative-control columns are always left out (see :func:`baseline_groups`).

    Returns
    -------
    dict of str to list of str
        Group name to its columns, in order of first appearance with ``clinical`` last.

    Raises
    ------
    InputError
        Duplicate column names, or columns containing ``__`` that are not
        ``modality__mask__feature`` (all such problems listed at once).
    ValueError
        ``pattern`` is not a valid regular expression with a capturing group.

    Examples
    --------
    >>> infer_groups(["CT__tumor__original_glcm_Contrast", "PET__tumor__original_firstorder_Mean",
    ...               "age"])
    {'CT__tumor': ['CT__tumor__original_glcm_Contrast'], 'PET__tumor': \
['PET__tumor__original_firstorder_Mean'], 'clinical': ['age']}
    >>> infer_groups(["Portal_vein_original_shape_Volume", "Mass_wavelet-LLH_glcm_Idm", "age"])
    {'Portal_vein': ['Portal_vein_original_shape_Volume'], 'Mass': \
['Mass_wavelet-LLH_glcm_Idm'], 'clinical': ['age']}
    >>> infer_groups(["f1", "f2"])
    {'all': ['f1', 'f2']}
    """
    excluded = set(exclude)
    names = [str(c) for c in columns if c not in excluded and not is_control_column(str(c))]
    _check_unique(names)
    if pattern is not None:
        assigned = _by_pattern(names, pattern)
    elif any(SEPARATOR in name for name in names):
        assigned = _by_separator(names)
    else:
        assigned = _by_pyradiomics_prefix(names)
    return _collect(names, assigned)


def baseline_groups(
    columns: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """The baseline groups of a table: ``volume`` and ``control``, when it has their columns.

    Parameters
    ----------
    columns : sequence of str
        Every column of the table.
    groups : mapping of str to sequence of str
        Its groups (e.g. from :func:`infer_groups`).

    Returns
    -------
    dict of str to list of str
        ``volume``: per group other than ``clinical``, its first column named (or ending in
        ``_``) ``original_shape_MeshVolume``, else ``original_shape_VoxelVolume``
        (:data:`VOLUME_FEATURES`); ``control``: every negative-control column, in table order.
        A baseline without columns is absent.

    Examples
    --------
    >>> columns = ["CT__tumor__original_shape_MeshVolume", "CT__tumor__original_glcm_Idm",
    ...            "CT__tumor~permuted__original_glcm_Idm", "age"]
    >>> baseline_groups(columns, infer_groups(columns))
    {'volume': ['CT__tumor__original_shape_MeshVolume'], 'control': \
['CT__tumor~permuted__original_glcm_Idm']}
    """
    volume = []
    for group, names in groups.items():
        if group == CLINICAL_GROUP:
            continue
        for feature in VOLUME_FEATURES:
            found = [n for n in names if n == feature or str(n).endswith(f"_{feature}")]
            if found:
                volume.append(found[0])
                break
    control = [str(c) for c in columns if is_control_column(str(c))]
    derived = {VOLUME_GROUP: volume, CONTROL_GROUP: control}
    return {name: names for name, names in derived.items() if names}


def pyradiomics_prefix(name: str) -> str | None:
    """The block prefix of a prefixed pyradiomics column name, or None.

    The prefix is everything before the first ``_``-separated token that is a pyradiomics image
    type (or ``general``/``diagnostics``), which must be followed by at least a feature class and
    a feature name.

    >>> pyradiomics_prefix("T1_log-sigma-1-0-mm-3D_firstorder_Mean")
    'T1'
    >>> pyradiomics_prefix("original_glcm_Contrast") is None  # no prefix
    True
    """
    tokens = name.split("_")
    for i, token in enumerate(tokens[1:-2], start=1):
        if _IMAGE_TYPE.match(token):
            return "_".join(tokens[:i])
    return None


#: pyradiomics feature classes, as the middle token of a feature name.
PYRADIOMICS_CLASSES = ("shape2D", "shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def is_pyradiomics_feature(name: str) -> bool:
    """Whether ``name`` is a pyradiomics feature as its own output names it.

    ``<image type>_<feature class>_<feature>``, e.g. ``original_glcm_Contrast`` or
    ``wavelet-LLH_firstorder_Mean`` (no modality prefix, no ``diagnostics_`` entry).

    >>> is_pyradiomics_feature("log-sigma-1-0-mm-3D_glszm_ZoneEntropy")
    True
    >>> is_pyradiomics_feature("diagnostics_Image-original_Mean")
    False
    """
    tokens = str(name).split("_")
    return (
        len(tokens) == 3
        and tokens[0] not in ("general", "diagnostics")
        and bool(_IMAGE_TYPE.match(tokens[0]))
        and tokens[1] in PYRADIOMICS_CLASSES
        and bool(tokens[2])
    )


def _check_unique(names: list[str]) -> None:
    seen: set[str] = set()
    duplicates = [n for n in names if n in seen or seen.add(n)]
    if duplicates:
        raise InputError(
            "Feature table has duplicate column names",
            [Problem(f"column {n!r} appears more than once") for n in dict.fromkeys(duplicates)],
        )


def _by_pattern(names: list[str], pattern: str) -> list[str]:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        msg = f"group pattern {pattern!r} is not a valid regular expression: {exc}"
        raise ValueError(msg) from exc
    if regex.groups < 1:
        raise ValueError(
            f"group pattern {pattern!r} needs a capturing group, e.g. r'(CT|PET)_' "
            "or r'(?P<group>[^_]+)_'"
        )
    key = "group" if "group" in regex.groupindex else 1
    assigned = []
    for name in names:
        match = regex.match(name)
        group = match.group(key) if match else None
        assigned.append(group or CLINICAL_GROUP)
    return assigned


def _by_separator(names: list[str]) -> list[str]:
    assigned, problems = [], []
    for name in names:
        if SEPARATOR not in name:
            assigned.append(CLINICAL_GROUP)
            continue
        try:
            assigned.append(group_of(name))
        except ValueError as exc:
            problems.append(Problem(str(exc)))
    if problems:
        raise InputError(
            f"Columns containing {SEPARATOR!r} must be 'modality__mask__feature' "
            "(biomarker names must not contain it)",
            problems,
        )
    return assigned


def _by_pyradiomics_prefix(names: list[str]) -> list[str]:
    prefixes = [pyradiomics_prefix(name) for name in names]
    if sum(p is not None for p in prefixes) < 2:
        return [ALL_GROUP] * len(names)
    return [p if p is not None else CLINICAL_GROUP for p in prefixes]


def _collect(names: list[str], assigned: list[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for name, group in zip(names, assigned, strict=True):
        groups.setdefault(group, []).append(name)
    if CLINICAL_GROUP in groups:
        groups[CLINICAL_GROUP] = groups.pop(CLINICAL_GROUP)
    return groups


def branch_name(group: str, learner: str | None = None) -> str:
    """Estimator name of a group's branch inside a fusion ensemble.

    >>> branch_name("CT__tumor", "lr")
    'CT/tumor:lr'
    """
    name = group.replace(SEPARATOR, "/")
    return name if learner is None else f"{name}:{learner}"
