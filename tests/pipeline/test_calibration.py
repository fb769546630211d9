"""The calibration option (issue 15, item 4): a Platt or isotonic map fitted on inner
out-of-fold predictions of the training rows only."""

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV

from radfusion.features.errors import InputError
from radfusion.pipeline.fusion import FusionClassifier, build_model


def _table(seed=0, n=120, p=30):
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], n // 2))
    X = rng.normal(size=(n, 2 * p)) + 0.3 * (2 * y[:, None] - 1) * (np.arange(2 * p) % p < 5)
    columns = [f"{m}__tumor__f{j}" for m in ("CT", "MR") for j in range(p)]
    return pd.DataFrame(X, columns=columns), y


def test_early_fusion_is_recalibrated_inside_its_training_rows():
    X, y = _table()
    groups = {g: [c for c in X if c.startswith(g)] for g in ("CT__tumor", "MR__tumor")}
    model = build_model(groups, "early", calibration="sigmoid").fit(X[:90], y[:90])
    assert isinstance(model, CalibratedClassifierCV) and not model.ensemble
    plain = build_model(groups, "early").fit(X[:90], y[:90])
    calibrated, raw = model.predict_proba(X[90:])[:, 1], plain.predict_proba(X[90:])[:, 1]
    # ensemble=False: the same model refitted on all training rows, then a monotone Platt map
    # fitted on its inner out-of-fold outputs: the ranking is the plain model's
    assert (np.argsort(calibrated, kind="stable") == np.argsort(raw, kind="stable")).all()
    assert not np.allclose(calibrated, raw)
    assert np.isclose(calibrated.mean(), 0.5, atol=0.15)


def test_calibration_values_and_tasks_are_checked():
    groups = {"CT__tumor": ["a"], "MR__tumor": ["b"]}
    with pytest.raises(InputError, match="The .calibration. parameter of FusionClassifier"):
        build_model(groups, "late", calibration="platt")
    with pytest.raises(InputError, match="calibration is for classifiers"):
        build_model(groups, "late", calibration="sigmoid", task="regression")
    X, y = _table(1)
    fitted = FusionClassifier("late", calibration="isotonic").fit(X, y)
    assert isinstance(fitted.model_, CalibratedClassifierCV)
    assert fitted.predict_proba(X).shape == (len(y), 2)
