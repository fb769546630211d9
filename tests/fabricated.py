"""Fabricated out-of-fold predictions for report tests that need no model fitting."""

import numpy as np
import pandas as pd

SINGLE = ["CT__tumor", "MR__tumor", "clinical"]
FUSED = ["early", "stacking"]


def graded_predictions(n=80, repeats=2, seed=0):
    """Out-of-fold predictions of single-group and fused models of graded skill."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    frames = []
    for k, model in enumerate(SINGLE + FUSED):
        for repeat in range(repeats):
            score = (0.5 + 0.4 * k) * (y - 0.5) + rng.normal(size=n)
            frames.append(
                pd.DataFrame(
                    {
                        "patient_id": [f"P{i:03d}" for i in range(n)],
                        "model": model,
                        "repeat": repeat,
                        "fold": np.arange(n) % 3,
                        "y_true": y,
                        "proba": 1 / (1 + np.exp(-score)),
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)
