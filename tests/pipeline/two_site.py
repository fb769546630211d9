"""A two-site synthetic cohort as tables (features + biomarkers), for validate and
leave-one-site-out tests.

Site A and site B share one outcome model (the first ``k`` columns of each imaging group and
age carry the signal), but differ in case mix (site B is older, with more events) and in
acquisition (an additive CT offset at site B, as the image-level synthetic cohort of
``radfusion.features.synthetic`` has). Ids are text with leading zeros (``A007``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from radfusion.pipeline.persistence import save_model, train_model

GROUPS = ("CT__tumor", "MR__tumor")
CT_SHIFT = 2.0


def two_site_tables(
    n_a: int = 120, n_b: int = 80, seed: int = 0, p: int = 6, k: int = 2
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``features`` (patient_id, site, ``{group}__f{j}``) and ``biomarkers`` (patient_id,
    age, sex, outcome ``yes``/``no``), sites A then B."""
    rng = np.random.default_rng(seed)
    frames, bios = [], []
    for site, n, age_mean, offset in (("A", n_a, 60.0, 0.0), ("B", n_b, 68.0, 0.6)):
        latent = rng.normal(size=(n, len(GROUPS)))
        age = rng.normal(age_mean, 8.0, size=n).round(1)
        score = latent.sum(axis=1) + 0.05 * (age - 64) + offset + 0.7 * rng.normal(size=n)
        y = score > 0.3
        ids = [f"{site}{i:03d}" for i in range(n)]
        features = {"patient_id": ids, "site": site}
        for g, group in enumerate(GROUPS):
            for j in range(p):
                value = rng.normal(size=n) + (latent[:, g] if j < k else 0.0) + 3.0 * j
                if group.startswith("CT") and site == "B":
                    value = value + CT_SHIFT
                features[f"{group}__f{j}"] = value
        frames.append(pd.DataFrame(features))
        bios.append(
            pd.DataFrame(
                {
                    "patient_id": ids,
                    "age": age,
                    "sex": rng.choice(["F", "M"], size=n),
                    "outcome": np.where(y, "yes", "no"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True), pd.concat(bios, ignore_index=True)


def write_two_site(folder: Path, **kwargs) -> dict[str, Path]:
    """CSV files of the cohort: ``features``/``biomarkers`` (both sites) and per site
    ``features_A``, ``biomarkers_A``, ``features_B``, ``biomarkers_B``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    features, biomarkers = two_site_tables(**kwargs)
    paths = {"features": folder / "features.csv", "biomarkers": folder / "biomarkers.csv"}
    features.to_csv(paths["features"], index=False)
    biomarkers.to_csv(paths["biomarkers"], index=False)
    for site in ("A", "B"):
        rows = features["site"] == site
        for name, table in (("features", features), ("biomarkers", biomarkers)):
            path = folder / f"{name}_{site}.csv"
            table[rows.to_numpy()].to_csv(path, index=False)
            paths[f"{name}_{site}"] = path
    return paths


def write_two_site_model(folder: Path, **kwargs) -> dict[str, Path]:
    """:func:`write_two_site`, and ``model``: a late-fusion model trained on site A, saved as
    ``folder / "model.skops"``."""
    paths = write_two_site(folder, **kwargs)
    trained = train_model(
        paths["features_A"], label="outcome", biomarkers=paths["biomarkers_A"], strategy="late"
    )
    paths["model"] = Path(folder) / "model.skops"
    save_model(trained, paths["model"])
    return paths
