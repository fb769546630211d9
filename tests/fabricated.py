"""Fabricated out-of-fold predictions for report tests that need no model fitting."""

import numpy as np
import pandas as pd

SINGLE = ["CT__tumor", "MR__tumor", "clinical"]
FUSED = ["early", "stacking"]


def prediction_rows(model, repeat, y, proba, folds=3, id_digits=3):
    """One repeat of one model's out-of-fold predictions: patients ``P000``, ``P001``... (ids
    of ``id_digits`` digits) in order, patient ``i`` in fold ``i % folds``."""
    n = len(y)
    return pd.DataFrame(
        {
            "patient_id": [f"P{i:0{id_digits}d}" for i in range(n)],
            "model": model,
            "repeat": repeat,
            "fold": np.arange(n) % folds,
            "y_true": y,
            "proba": proba,
        }
    )


def graded_predictions(n=80, repeats=2, seed=0):
    """Out-of-fold predictions of single-group and fused models of graded skill."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n) % 2)
    frames = []
    for k, model in enumerate(SINGLE + FUSED):
        for repeat in range(repeats):
            score = (0.5 + 0.4 * k) * (y - 0.5) + rng.normal(size=n)
            frames.append(prediction_rows(model, repeat, y, 1 / (1 + np.exp(-score))))
    return pd.concat(frames, ignore_index=True)
