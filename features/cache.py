"""A content-addressed cache of per-case extraction results, for fast re-runs and resume.

One small JSON file per case, ``<cache_dir>/<key[:2]>/<key>.json``, where ``key`` is the
SHA-256 of the case's inputs: the bytes of the image and of the mask, the ROI label, the
modality's pyradiomics parameters, and the pyradiomics and radfusion versions. Paths,
patient ids and modality names are not part of the key, so moving or renaming a cohort keeps
its cache, and changing one modality's parameters invalidates that modality's cases only.

Entries are written atomically (temporary file in the same folder, then ``os.replace``) as
soon as a case finishes, so a run killed at any moment (even ``kill -9``) leaves only whole
entries, and the next run resumes from them. Failed cases are not cached: they are tried
again on the next run.

Entries are validated on read: an entry that is unreadable, not the expected layout, or whose
content no longer matches the checksum stored with it (features or diagnostics removed or
edited) is a miss, and :meth:`FeatureCache.lookup` says why, so the case is recomputed and the
run says so; it is never trusted, never a ``KeyError``, never a silent NaN.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

from .files import file_digest, write_atomic

__all__ = ["CACHE_FORMAT", "FeatureCache", "versions"]

#: Version of the entries; part of every key. 2: entries carry a checksum of their content.
#: 3: values changed (interpolation in floating point with CT rounded, RTSTRUCT voxel centres
#: strictly inside their contour), so no earlier entry is reused.
CACHE_FORMAT = 3


def versions() -> dict[str, str]:
    """The versions that change results: pyradiomics and radfusion."""
    import radiomics

    try:
        radfusion = metadata.version("radfusion")
    except metadata.PackageNotFoundError:  # running from a source tree that is not installed
        radfusion = "unknown"
    return {"pyradiomics": str(radiomics.__version__), "radfusion": radfusion}


class FeatureCache:
    """Per-case results stored under ``directory``, keyed by the content of their inputs.

    Parameters
    ----------
    directory : str or Path
        Created when absent. Several runs may share it, also concurrently: entries are
        immutable and written atomically.

    Notes
    -----
    File digests are memoised per instance (a mask file shared by several rows is read
    once); use one instance per run, so that files changed between runs are hashed again.
    """

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._digests: dict[str, str] = {}
        self._versions = versions()

    def digest(self, path: str | Path) -> str:
        """The memoised :func:`file_digest` of ``path``."""
        path = str(path)
        if path not in self._digests:
            self._digests[path] = file_digest(path)
        return self._digests[path]

    def key(self, image: str | Path, mask: str | Path, label: int, params: dict) -> str:
        """The cache key of one case (a hex SHA-256).

        Raises ``OSError`` when a file cannot be read.
        """
        inputs = {
            "format": CACHE_FORMAT,
            "image": self.digest(image),
            "mask": self.digest(mask),
            "label": int(label),
            "params": params,
            **self._versions,
        }
        text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` is stored."""
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict | None:
        """The stored result of ``key``, or None when absent or invalid (see :meth:`lookup`)."""
        return self.lookup(key)[0]

    def lookup(self, key: str) -> tuple[dict | None, str | None]:
        """``(result, None)`` for a valid entry; ``(None, None)`` when there is none;
        ``(None, why)`` when an entry exists but cannot be trusted (it must be recomputed).

        Valid: JSON holding this ``key``, a ``features`` mapping of names to numbers (NaN
        allowed), a ``diagnostics`` mapping, and the checksum written with them.
        """
        path = self.path(key)
        try:
            with path.open(encoding="utf-8") as handle:
                entry = json.load(handle)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError) as error:
            return None, f"unreadable ({type(error).__name__})"
        if not isinstance(entry, dict) or entry.get("key") != key:
            return None, "not an entry of this key"
        features, diagnostics = entry.get("features"), entry.get("diagnostics")
        if not isinstance(features, dict):
            return None, "its feature values are missing"
        if not isinstance(diagnostics, dict):
            return None, "its diagnostics are missing"
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in features.values()
        ):
            return None, "some feature values are not numbers"
        if entry.get("checksum") != _checksum(features, diagnostics):
            return None, "its content does not match its checksum (features removed or edited)"
        return {"features": features, "diagnostics": diagnostics}, None

    def put(self, key: str, result: dict) -> Path:
        """Store ``{"features": ..., "diagnostics": ...}`` atomically under ``key``.

        Feature values are floats (NaN allowed); diagnostics must be JSON values (the runner
        stores them as text). Floats round-trip exactly.
        """
        path = self.path(key)
        path.parent.mkdir(exist_ok=True)
        entry = {
            "key": key,
            "features": result["features"],
            "diagnostics": result["diagnostics"],
            "checksum": _checksum(result["features"], result["diagnostics"]),
        }
        write_atomic(path, json.dumps(entry))
        return path

    def __len__(self) -> int:
        """Number of stored entries."""
        return sum(1 for _ in self.directory.glob("??/*.json"))


def _checksum(features: dict, diagnostics: dict) -> str:
    """SHA-256 of an entry's content, names and order included (NaN written as JSON NaN)."""
    text = json.dumps([list(features.items()), list(diagnostics.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()
