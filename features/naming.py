"""The feature-column naming contract shared by features/ and pipeline/.

Imaging feature columns are ``{modality}__{mask}__{feature}``, e.g.
``CT__tumor__original_glcm_Contrast``. A double underscore is the only separator with
meaning, so modality and mask names must not contain one.

Negative-control columns (``radfusion extract --negative-control``: the ROI's voxels randomly
permuted, see :mod:`radfusion.features.control`) follow the same contract with the reserved
mask suffix :data:`CONTROL_SUFFIX`: ``CT__tumor~permuted__original_glcm_Contrast``. A manifest
mask or modality name must not contain it, so :func:`is_control_column` is never ambiguous.
"""

from __future__ import annotations

import unicodedata

SEPARATOR = "__"
ID_COLUMN = "patient_id"
SITE_COLUMN = "site"
CLINICAL_GROUP = "clinical"
CONTROL_SUFFIX = "~permuted"
"""Reserved suffix of a negative-control ROI's mask name (``tumor`` → ``tumor~permuted``)."""

KINDS = ("ct", "mr", "pet", "default")
"""Modality kinds: each has its shipped default parameters (``features/params/<kind>.yaml``)."""
MODALITY_PREFIXES = {
    "ct": ("CT",),
    "mr": ("MR", "T1", "T2", "FLAIR", "ADC", "DWI", "DCE"),
    "pet": ("PET",),
}


def feature_column(modality: str, mask: str, feature: str) -> str:
    """Return the wide-table column name of one pyradiomics feature of one ROI."""
    for part, value in (("modality", modality), ("mask", mask)):
        if SEPARATOR in value or not value:
            raise ValueError(f"{part} name {value!r} must be non-empty, without {SEPARATOR!r}")
    return f"{modality}{SEPARATOR}{mask}{SEPARATOR}{feature}"


def split_feature_column(name: str) -> tuple[str, str, str]:
    """Split ``modality__mask__feature`` into its three parts (ValueError otherwise)."""
    parts = name.split(SEPARATOR, 2)
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"{name!r} is not a 'modality__mask__feature' column")
    return parts[0], parts[1], parts[2]


def group_of(name: str) -> str:
    """The fusion group (``modality__mask``) of an imaging feature column."""
    modality, mask, _ = split_feature_column(name)
    return f"{modality}{SEPARATOR}{mask}"


def control_mask(mask: str) -> str:
    """The mask name of ``mask``'s negative control (``tumor`` → ``tumor~permuted``)."""
    return f"{mask}{CONTROL_SUFFIX}"


def is_control_column(name: str) -> bool:
    """Whether ``name`` is a negative-control feature column (``modality__mask~permuted__f``).

    >>> is_control_column("CT__tumor~permuted__original_glcm_Contrast")
    True
    >>> is_control_column("CT__tumor__original_glcm_Contrast"), is_control_column("age")
    (False, False)
    """
    try:
        _, mask, _ = split_feature_column(str(name))
    except ValueError:
        return False
    return mask.endswith(CONTROL_SUFFIX)


def modality_kind(modality: str) -> str:
    """The kind of a modality name: ``ct``, ``mr``, ``pet`` or ``default``.

    Case-insensitive prefixes: CT → ct; MR, T1, T2, FLAIR, ADC, DWI, DCE → mr; PET → pet.
    """
    name = modality.upper()
    for kind, prefixes in MODALITY_PREFIXES.items():
        if name.startswith(prefixes):
            return kind
    return "default"


def control_characters(text: str) -> str:
    r"""The control characters ``text`` holds (tabs, line breaks, NUL...), as escapes; empty
    when none. Such a character in an id or a name breaks the CSV files it is written to (an
    unquoted carriage return starts a new row).

    >>> control_characters("P\r1"), control_characters("P 1")
    ("'\\r'", '')
    """
    found = dict.fromkeys(c for c in text if unicodedata.category(c) == "Cc")
    return ", ".join(repr(c) for c in found)
