"""A deterministic synthetic multimodal radiomics cohort, for demos and tests.

:func:`make_cohort` writes, for every patient, a CT (Hounsfield units, int16) and an MR
(arbitrary units, float32) volume on two *different* voxel grids, one segmentation per
modality (label 1 = tumour, label 2 = a peritumoral ring), a ``manifest.csv`` with one row
per patient x modality x mask, and a ``biomarkers.csv`` with age, sex, a lab marker (LDH)
and a binary outcome.

Generative model
----------------
Each patient has four independent standard-normal latent factors, and

    outcome = 1[z_texture + z_mr + z_shape + z_lab + 0.3 * noise > 0]

(about balanced), so that no feature group carries the outcome alone:

* ``z_texture``: amplitude (35 HU x exp(0.6 z)) and grain (1.6 mm x exp(0.3 z)) of a Gaussian
  random texture inside the tumour, on CT only -> CT__tumor first-order spread, GLCM, GLRLM,
  GLSZM, GLDM, NGTDM.
* ``z_mr``: tumour / soft-tissue signal ratio exp(0.35 + 0.25 z) on MR only -> MR__tumor
  intensity features (after whole-image normalisation, which also removes the site gain).
* ``z_shape``: elongation (axis ratio exp(0.35 + 0.1 z)) and lobulation of the lesion, which
  is the same physical object on both grids -> shape features of CT__tumor and MR__tumor and,
  because a ring follows its tumour, of the peritumoral rings. Orientation, lobe placement
  and independent shape noise make it the weakest-measured factor.
* ``z_lab``: LDH = 210 U/L x exp(0.3 z) in the clinical table.

With ``outcome="survival"`` the biomarker table also gets ``time`` (months) and ``event``
(1 = event observed, 0 = censored), from a Weibull proportional-hazards model driven by the
same four factors:

    hazard(t | z) = h0(t) * exp(0.5 * (z_texture + z_mr + z_shape + z_lab))

with a Weibull baseline of shape 1.5 and a median of 24 months at z = 0, censored by drop-out
(exponential, mean 80 months) and by the end of follow-up at 60 months (about 35 % censored).
The binary ``outcome`` column is left out (it is driven by the same factors, so a survival
run would read it as a clinical predictor that all but gives the answer away); the survival
draws come from a stream of their own, so images and every other column are the same as with
``outcome="binary"``.

Each phenotype also has a small independent nuisance term (see the module constants), and
there is nuisance variation independent of the outcome: lesion size (equivalent radius
8-10 mm; the rare lesion that would reach beyond 22.5 mm from the centre is shrunk),
position and orientation, tumour mean HU, body outline and fat layer, noise level, MR texture,
bias field and peritumoral oedema, age and sex. Tumour masks include every voxel with more
than 2 % partial volume, so the peritumoral ring (label 2, within :data:`RING_MM` of the
tumour, inside the body) holds no tumour signal.

Two acquisition sites ``A``/``B`` are assigned by blocked randomisation (one of each per
pair of consecutive patients), independent of the outcome, with a scanner effect:
+:data:`CT_SITE_SHIFT_HU` on CT and x:data:`MR_SITE_GAIN` on MR at site B.

Patient ``k`` draws from its own random stream derived from ``(seed, k)``, so its images do
not depend on ``n_patients``; the same ``(n_patients, seed)`` gives byte-identical files
(SimpleITK writes gzip headers without a timestamp).
"""

from __future__ import annotations

import csv
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage, special

__all__ = [
    "CT_SITE_SHIFT_HU",
    "MR_SITE_GAIN",
    "OUTCOMES",
    "RING_MM",
    "SITES",
    "Grid",
    "CT_GRID",
    "MR_GRID",
    "SyntheticCohort",
    "make_cohort",
    "synthetic_outcomes",
]

CT_SITE_SHIFT_HU = 25.0
"""Additive CT calibration offset (HU) at site B."""
MR_SITE_GAIN = 1.25
"""Multiplicative MR gain at site B."""
RING_MM = 4.0
"""Thickness of the peritumoral ring (mm)."""
SITES = ("A", "B")

TUMOR_LABEL = 1
RING_LABEL = 2
MODALITIES = ("CT", "MR")
MASKS = (("tumor", TUMOR_LABEL), ("peritumoral", RING_LABEL))
MANIFEST_COLUMNS = ("patient_id", "modality", "mask", "image", "mask_path", "label", "site")
BIOMARKER_COLUMNS = ("patient_id", "age", "sex", "ldh", "outcome")
FACTORS = ("texture", "mr", "shape", "lab")  # the latent factors of the outcome

# Effect sizes. Each phenotype = slope * factor + nuisance_slope * (independent N(0, 1) draw),
# so a factor is measured well (texture, MR ratio, LDH: correlation ~0.95 with its factor) or
# only partly (shape: ~0.5, diluted by orientation, lobe placement and size).
_OUTCOME_NOISE = 0.3
_TEX_AMP_HU = 35.0  # tumour texture std (HU) at z_texture = 0, times exp(log effect)
_TEX_AMP_LOG = (0.6, 0.03)
_TEX_GRAIN_MM = 1.6  # texture correlation length (mm) at z_texture = 0, times exp(log effect)
_TEX_GRAIN_LOG = (0.3, 0.03)
_MR_RATIO_LOG = 0.35  # log tumour / soft-tissue MR signal at z_mr = 0, plus effect
_MR_RATIO_SLOPE = (0.25, 0.02)
_ELONGATION_LOG = 0.35  # log major / minor axis ratio at z_shape = 0, plus effect
_ELONGATION_SLOPE = (0.1, 0.12)
_LOBULATION = 0.10  # relative radial lobe amplitude at z_shape = 0, plus effect
_LOBULATION_SLOPE = (0.03, 0.04)
_LDH_MEDIAN = 210.0  # U/L, times exp(effect)
_LDH_LOG_SLOPE = (0.3, 0.04)
# Survival outcome: Weibull proportional hazards on the same factors, then censoring.
_HAZARD_SLOPE = 0.5  # log hazard ratio per unit of the factor sum (its SD is 2)
_WEIBULL_SHAPE = 1.5
_MEDIAN_MONTHS = 24.0  # median time to event at z = 0
_FOLLOW_UP_MONTHS = 60.0  # administrative censoring
_DROPOUT_MEAN_MONTHS = 80.0  # exponential drop-out
OUTCOMES = ("binary", "survival")
SURVIVAL_COLUMNS = ("time", "event")

_MAX_REACH_MM = 22.5  # lesion surface stays within this distance (mm) of the FOV centre
_EDGE_MM = 0.2  # width of the partial-volume edge of the lesion (mm)
_MASK_MIN_FRACTION = 0.02  # voxels with more tumour than this are segmented as tumour


@dataclass(frozen=True)
class Grid:
    """A voxel grid: ``size`` and ``spacing`` in (x, y, z) order, origin in mm."""

    size: tuple[int, int, int]
    spacing: tuple[float, float, float]
    origin: tuple[float, float, float]

    def coordinates(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Physical (x, y, z) coordinates of the voxel centres, as (z, y, x) arrays."""
        axes = [
            o + s * np.arange(n)
            for n, s, o in zip(self.size, self.spacing, self.origin, strict=True)
        ]
        z, y, x = np.meshgrid(axes[2], axes[1], axes[0], indexing="ij")
        return x, y, z

    def spacing_zyx(self) -> tuple[float, float, float]:
        """Spacing in numpy (z, y, x) axis order."""
        return self.spacing[2], self.spacing[1], self.spacing[0]


def _centred_grid(
    size: tuple[int, int, int],
    spacing: tuple[float, float, float],
    shift: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Grid:
    origin = tuple(-(n - 1) * s / 2 + d for n, s, d in zip(size, spacing, shift, strict=True))
    return Grid(size, spacing, origin)


CT_GRID = _centred_grid((72, 72, 24), (0.8, 0.8, 2.5))
"""CT grid: 57.6 x 57.6 x 60 mm field of view."""
MR_GRID = _centred_grid((52, 52, 20), (1.1, 1.1, 3.0), shift=(0.35, -0.4, 1.0))
"""MR grid: 57.2 x 57.2 x 60 mm, offset from the CT grid so voxel centres do not coincide."""


@dataclass(frozen=True)
class SyntheticCohort:
    """Paths of a generated cohort.

    Attributes
    ----------
    manifest : Path
        ``manifest.csv``; image and mask paths in it are relative to its folder.
    biomarkers : Path
        ``biomarkers.csv`` with ``patient_id, age, sex, ldh, outcome``.
    outcome : str or None
        Name of the binary outcome column in ``biomarkers`` (None for a survival cohort).
    time, event : str or None
        Names of the survival columns (``outcome="survival"``), else None.
    """

    manifest: Path
    biomarkers: Path
    outcome: str | None = "outcome"
    time: str | None = None
    event: str | None = None


@dataclass(frozen=True)
class _Lesion:
    centre: np.ndarray  # (3,) mm, x/y/z
    rotation: np.ndarray  # (3, 3), columns are the principal axes
    semi_axes: np.ndarray  # (3,) mm
    lobe_dirs: np.ndarray  # (n_lobes, 3) unit vectors
    lobe_amps: np.ndarray  # (n_lobes,)

    def level(self, x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Signed distance-like level (mm): > 0 inside the lesion, 0 on its surface."""
        d = np.stack([x - self.centre[0], y - self.centre[1], z - self.centre[2]], axis=-1)
        local = d @ self.rotation
        rho = np.sqrt(((local / self.semi_axes) ** 2).sum(axis=-1))
        unit = d / np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
        # Smooth bumps (lobes) in a few random directions modulate the radius.
        bumps = np.exp(4.0 * (unit @ self.lobe_dirs.T - 1.0)) @ self.lobe_amps
        r_eq = float(np.cbrt(np.prod(self.semi_axes)))
        return r_eq * (1.0 + bumps - rho)

    def max_radius(self) -> float:
        """Largest distance (mm) from the centre to the surface, over 4000 directions."""
        i = np.arange(4000)
        cos_polar = 1.0 - 2.0 * (i + 0.5) / i.size  # Fibonacci sphere
        sin_polar = np.sqrt(1.0 - cos_polar**2)
        azimuth = np.pi * (3.0 - np.sqrt(5.0)) * i
        u = np.stack([sin_polar * np.cos(azimuth), sin_polar * np.sin(azimuth), cos_polar], 1)
        bumps = np.exp(4.0 * (u @ self.lobe_dirs.T - 1.0)) @ self.lobe_amps
        # Along direction u the surface is at t with t * |R^T u / a| = 1 + bumps(u).
        radius = (1.0 + bumps) / np.linalg.norm((u @ self.rotation) / self.semi_axes, axis=1)
        return float(radius.max())


@dataclass(frozen=True)
class _Patient:
    patient_id: str
    site: str
    age: int
    sex: str
    ldh: float
    outcome: int
    z: dict[str, float]
    rng: np.random.Generator


def _stream(seed: int, *key: int) -> np.random.Generator:
    """An independent generator for ``key`` (e.g. (stream, patient index)) under ``seed``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _effect(slopes: tuple[float, float], factor: float, rng: np.random.Generator) -> float:
    """``slopes[0] * factor + slopes[1] * nuisance``: a phenotype the factor drives, imperfectly."""
    return slopes[0] * factor + slopes[1] * float(rng.standard_normal())


def _patient_id(k: int) -> str:
    return f"P{k + 1:03d}"


def _draw_patient(seed: int, k: int) -> _Patient:
    """Latent factors, clinical variables and outcome of patient ``k`` (0-based)."""
    rng = _stream(seed, 0, k)
    z = dict(zip(FACTORS, rng.standard_normal(len(FACTORS)).tolist(), strict=True))
    outcome = int(sum(z.values()) + _OUTCOME_NOISE * rng.standard_normal() > 0)
    ldh = _LDH_MEDIAN * np.exp(_effect(_LDH_LOG_SLOPE, z["lab"], rng))
    age = int(np.clip(np.rint(rng.normal(63.0, 10.0)), 30, 90))
    sex = "F" if rng.random() < 0.45 else "M"
    # Blocked randomisation: each pair (2j, 2j + 1) gets one patient of each site.
    first_is_b = bool(_stream(seed, 1, k // 2).integers(2))
    site = SITES[int(first_is_b != bool(k % 2))]
    return _Patient(_patient_id(k), site, age, sex, round(float(ldh), 1), outcome, z, rng)


def _draw_survival(seed: int, k: int, z: dict[str, float]) -> tuple[float, int, float]:
    """Time (months, 0.1 resolution), event (0/1) and log relative hazard of patient ``k``,
    from a stream of their own (the images' streams are untouched)."""
    rng = _stream(seed, 3, k)
    risk = _HAZARD_SLOPE * sum(z.values())
    scale = np.log(2.0) / _MEDIAN_MONTHS**_WEIBULL_SHAPE
    u, dropout = rng.random(), rng.exponential(_DROPOUT_MEAN_MONTHS)
    event_time = (-np.log1p(-u) / (scale * np.exp(risk))) ** (1.0 / _WEIBULL_SHAPE)
    censor = min(dropout, _FOLLOW_UP_MONTHS)
    time = max(0.1, round(float(min(event_time, censor)), 1))
    return time, int(event_time <= censor), float(risk)


def synthetic_outcomes(n_patients: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The outcomes of :func:`make_cohort`'s patients, without drawing any image.

    Returns ``patient_id``, ``outcome`` (binary), ``time``, ``event`` and ``risk`` (the true
    log relative hazard of the survival model), one entry per patient; ``make_cohort(...)``
    writes the same ``outcome``, and ``make_cohort(..., outcome="survival")`` the same
    ``time`` and ``event``.

    >>> synthetic_outcomes(2)["patient_id"].tolist()
    ['P001', 'P002']
    """
    rows = []
    for k in range(int(n_patients)):
        p = _draw_patient(int(seed), k)
        rows.append((p.patient_id, p.outcome, *_draw_survival(int(seed), k, p.z)))
    ids, outcome, time, event, risk = zip(*rows, strict=True) if rows else ([],) * 5
    return {
        "patient_id": np.asarray(ids, dtype=object),
        "outcome": np.asarray(outcome, dtype=int),
        "time": np.asarray(time, dtype=np.float64),
        "event": np.asarray(event, dtype=int),
        "risk": np.asarray(risk, dtype=np.float64),
    }


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _draw_lesion(rng: np.random.Generator, z_shape: float) -> _Lesion:
    r_eq = rng.uniform(8.0, 10.0)  # nuisance: size (mm, equivalent-sphere radius)
    q = np.exp(np.clip(_ELONGATION_LOG + _effect(_ELONGATION_SLOPE, z_shape, rng), 0.0, 0.8))
    # Prolate-ish ellipsoid of axis ratio q with the volume of a sphere of radius r_eq.
    semi_axes = r_eq * np.array([q, q**-0.3, q**-0.7])
    n_lobes = 5
    dirs = rng.standard_normal((n_lobes, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    amp = np.clip(_LOBULATION + _effect(_LOBULATION_SLOPE, z_shape, rng), 0.0, 0.25)
    amps = amp * rng.uniform(0.6, 1.4, n_lobes)
    centre = rng.uniform(-3.0, 3.0, 3)  # nuisance: position (mm)
    lesion = _Lesion(centre, _random_rotation(rng), semi_axes, dirs, amps)
    # Rare extreme draws are shrunk (same shape) so lesion and ring stay inside the body.
    reach = np.linalg.norm(centre) + lesion.max_radius()
    if reach > _MAX_REACH_MM:
        scale = (_MAX_REACH_MM - np.linalg.norm(centre)) / lesion.max_radius()
        lesion = dataclasses.replace(lesion, semi_axes=semi_axes * scale)
    return lesion


def _correlated_noise(rng: np.random.Generator, grid: Grid, sigma_mm: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian random field with correlation length ``sigma_mm``."""
    white = rng.standard_normal(grid.size[::-1])
    sigma = [sigma_mm / s for s in grid.spacing_zyx()]
    field = ndimage.gaussian_filter(white, sigma, mode="wrap")
    return (field - field.mean()) / field.std()


def _body(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """Body outline (elliptic semi-axes in x, y, mm) and fat-layer thickness (mm)."""
    return rng.uniform(26.5, 28.5, 2), rng.uniform(2.5, 4.5)


def _tissue(grid: Grid, body_axes: np.ndarray) -> np.ndarray:
    """Depth (mm, approximate) inside the elliptic body outline; negative outside."""
    x, y, _ = grid.coordinates()
    rho = np.sqrt((x / body_axes[0]) ** 2 + (y / body_axes[1]) ** 2)
    return (1.0 - rho) * float(body_axes.min())


def _segmentation(grid: Grid, fraction: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """Label map: 1 = tumour, 2 = ring within ``RING_MM`` of it (inside the body).

    The tumour label is generous (any visible partial volume), as a reader would draw it,
    so that the ring holds background only and does not echo the tumour's intensities.
    """
    tumour = fraction > _MASK_MIN_FRACTION
    distance = ndimage.distance_transform_edt(~tumour, sampling=grid.spacing_zyx())
    ring = ~tumour & (distance <= RING_MM) & (depth > 0)
    seg = np.zeros(fraction.shape, dtype=np.uint8)
    seg[tumour] = TUMOR_LABEL
    seg[ring] = RING_LABEL
    return seg


def _tumour_fraction(level: np.ndarray) -> np.ndarray:
    """Partial-volume tumour fraction in [0, 1] across the surface ``level == 0``."""
    return special.expit(level / _EDGE_MM)


def _ct_volume(
    p: _Patient, lesion: _Lesion, body: tuple[np.ndarray, float]
) -> tuple[np.ndarray, np.ndarray]:
    """CT in HU (int16) and its label map, on :data:`CT_GRID`."""
    rng, grid = p.rng, CT_GRID
    x, y, z = grid.coordinates()
    depth = _tissue(grid, body[0])
    level = lesion.level(x, y, z)
    soft_tissue = rng.normal(40.0, 3.0)
    image = np.where(depth > body[1], soft_tissue, -100.0)  # fat layer under the skin
    image = np.where(depth > 0, image, -1000.0)
    image = ndimage.gaussian_filter(image, [0.6 / s for s in grid.spacing_zyx()])
    # Tumour: nuisance mean HU plus a texture whose amplitude and grain follow z_texture.
    amp = _TEX_AMP_HU * np.exp(_effect(_TEX_AMP_LOG, p.z["texture"], rng))
    grain = _TEX_GRAIN_MM * np.exp(_effect(_TEX_GRAIN_LOG, p.z["texture"], rng))
    tumour = rng.normal(55.0, 4.0) + amp * _correlated_noise(rng, grid, grain)
    w = _tumour_fraction(level)
    image = (1.0 - w) * image + w * tumour
    # Scanner noise, slightly correlated as after filtered back projection.
    image += rng.uniform(10.0, 12.0) * _correlated_noise(rng, grid, 0.5)
    if p.site == "B":
        image += CT_SITE_SHIFT_HU
    hu = np.clip(np.rint(image), -1024, 3071).astype(np.int16)
    return hu, _segmentation(grid, w, depth)


def _mr_volume(
    p: _Patient, lesion: _Lesion, body: tuple[np.ndarray, float]
) -> tuple[np.ndarray, np.ndarray]:
    """T2-weighted-like MR magnitude (float32) and its label map, on :data:`MR_GRID`."""
    rng, grid = p.rng, MR_GRID
    x, y, z = grid.coordinates()
    depth = _tissue(grid, body[0])
    level = lesion.level(x, y, z)
    soft_tissue = rng.normal(300.0, 15.0)
    signal = np.where(depth > body[1], soft_tissue, 520.0)  # T2-weighted: fat is bright
    signal = np.where(depth > 0, signal, 0.0)
    signal = ndimage.gaussian_filter(signal, [0.8 / s for s in grid.spacing_zyx()])
    # Peritumoral oedema (nuisance): a brighter halo decaying away from the tumour.
    oedema = rng.uniform(0.0, 0.15) * np.exp(np.minimum(level, 0.0) / 3.0) * (depth > 0)
    signal = signal * (1.0 + oedema)
    # Tumour: signal ratio to soft tissue follows z_mr; mild texture is nuisance.
    ratio = np.exp(_MR_RATIO_LOG + _effect(_MR_RATIO_SLOPE, p.z["mr"], rng))
    texture = 1.0 + rng.uniform(0.04, 0.06) * _correlated_noise(rng, grid, rng.uniform(1.8, 2.2))
    w = _tumour_fraction(level)
    signal = (1.0 - w) * signal + w * soft_tissue * ratio * texture
    # Smooth multiplicative bias field (coil sensitivity), then Rician noise.
    direction = rng.standard_normal(3)
    direction /= np.linalg.norm(direction)
    signal *= 1.0 + 0.004 * (direction[0] * x + direction[1] * y + direction[2] * z)
    sigma = rng.uniform(11.0, 14.0)
    real = signal + sigma * rng.standard_normal(signal.shape)
    imag = sigma * rng.standard_normal(signal.shape)
    magnitude = np.hypot(real, imag)
    if p.site == "B":
        magnitude *= MR_SITE_GAIN
    return magnitude.astype(np.float32), _segmentation(grid, w, depth)


def _write(array: np.ndarray, grid: Grid, path: Path) -> None:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(grid.spacing)
    image.SetOrigin(grid.origin)
    sitk.WriteImage(image, str(path), useCompression=True)


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _without_mr(n_patients: int, seed: int, fraction: float) -> set[int]:
    """Indices of the ``round(fraction * n_patients)`` patients without MR.

    Each patient gets a uniform draw from its own stream; the lowest draws lose MR, so the
    set grows with ``fraction`` and never touches the streams the images come from.
    """
    draws = [float(_stream(seed, 2, k).random()) for k in range(n_patients)]
    return set(np.argsort(draws, kind="stable")[: round(fraction * n_patients)].tolist())


def make_cohort(
    out_dir: str | Path,
    n_patients: int = 120,
    seed: int = 0,
    *,
    missing_mr: float = 0.0,
    outcome: str = "binary",
) -> SyntheticCohort:
    """Write a synthetic CT + MR + biomarker cohort to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path
        Destination folder (created if needed). Receives ``images/``, ``masks/``,
        ``manifest.csv`` and ``biomarkers.csv``; existing files of the same names are
        overwritten.
    n_patients : int, default 120
        Number of patients (``P001``, ``P002``...). Patient ``k`` is the same whatever
        ``n_patients`` is.
    seed : int, default 0
        Seed of all random draws; the same ``(n_patients, seed)`` gives identical files.
    missing_mr : float, default 0.0
        Fraction of patients without MR: ``round(missing_mr * n_patients)`` patients, chosen
        by a seeded draw of their own, get no MR image, mask or manifest rows. Everything else
        (their CT, biomarkers and outcome; the other patients) is unchanged.
    outcome : {"binary", "survival"}, default "binary"
        ``"survival"`` writes the columns ``time`` (months) and ``event`` (0/1) in
        ``biomarkers.csv`` in place of the binary ``outcome`` (module docstring); all other
        columns and files are byte-identical to the binary cohort's.

    Returns
    -------
    SyntheticCohort
        Paths of the manifest and the biomarker table, and the outcome column name.

    Raises
    ------
    TypeError
        ``n_patients`` or ``seed`` is not an integer.
    ValueError
        ``n_patients < 1``, ``seed < 0`` or ``missing_mr`` outside [0, 1].

    Examples
    --------
    >>> import tempfile
    >>> cohort = make_cohort(tempfile.mkdtemp(), n_patients=2)
    >>> cohort.manifest.name, cohort.outcome
    ('manifest.csv', 'outcome')
    """
    if isinstance(n_patients, bool) or not isinstance(n_patients, (int, np.integer)):
        raise TypeError(f"n_patients must be an integer, got {n_patients!r}")
    if n_patients < 1:
        raise ValueError(f"n_patients must be at least 1, got {n_patients}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    if (
        isinstance(missing_mr, bool)
        or not isinstance(missing_mr, (int, float, np.number))
        or not (0.0 <= missing_mr <= 1.0)
    ):
        raise ValueError(f"missing_mr must be a fraction in [0, 1], got {missing_mr!r}")
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    survival = outcome == "survival"
    without_mr = _without_mr(int(n_patients), int(seed), float(missing_mr))
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)

    manifest_rows: list[tuple] = []
    biomarker_rows: list[tuple] = []
    for k in range(int(n_patients)):
        p = _draw_patient(int(seed), k)
        lesion = _draw_lesion(p.rng, p.z["shape"])
        body = _body(p.rng)
        volumes = {"CT": (*_ct_volume(p, lesion, body), CT_GRID)}
        if k not in without_mr:  # MR is drawn last: skipping it leaves the rest unchanged
            volumes["MR"] = (*_mr_volume(p, lesion, body), MR_GRID)
        for modality in MODALITIES:
            image_rel = f"images/{p.patient_id}_{modality}.nii.gz"
            seg_rel = f"masks/{p.patient_id}_{modality}_seg.nii.gz"
            if modality not in volumes:  # no stale files from an earlier run either
                (out / image_rel).unlink(missing_ok=True)
                (out / seg_rel).unlink(missing_ok=True)
                continue
            image, seg, grid = volumes[modality]
            _write(image, grid, out / image_rel)
            _write(seg, grid, out / seg_rel)
            for mask, label in MASKS:
                row = (p.patient_id, modality, mask, image_rel, seg_rel, label, p.site)
                manifest_rows.append(row)
        row = (p.patient_id, p.age, p.sex, f"{p.ldh:.1f}")
        if survival:
            time, event, _ = _draw_survival(int(seed), k, p.z)
            row = (*row, f"{time:.1f}", event)
        else:
            row = (*row, p.outcome)
        biomarker_rows.append(row)

    manifest = out / "manifest.csv"
    biomarkers = out / "biomarkers.csv"
    _write_csv(manifest, MANIFEST_COLUMNS, manifest_rows)
    header = BIOMARKER_COLUMNS[:-1] + (SURVIVAL_COLUMNS if survival else BIOMARKER_COLUMNS[-1:])
    _write_csv(biomarkers, header, biomarker_rows)
    if survival:
        return SyntheticCohort(manifest, biomarkers, outcome=None, time="time", event="event")
    return SyntheticCohort(manifest=manifest, biomarkers=biomarkers)
