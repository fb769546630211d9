"""Harmonisation cannot manufacture signal (issue 15, item 1).

Pure-noise features, a site strongly associated with the outcome: ComBat is fitted on the
training folds, a learner on the harmonised training rows scores the held-out rows. With
neuroCombat's shrunk site means the held-out AUC fell far below chance (0.24 over three
seeds); with the site means removed in full it is at chance.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from radfusion.pipeline.preprocessing import ComBat
from radfusion.pipeline.statistics import (
    STRONG_ASSOCIATION,
    ConfoundedSiteWarning,
    site_outcome_association,
)


def _noise_with_associated_site(seed: int, n: int = 120, p: int = 500):
    """Noise features; site A holds ~5 % of the negatives and ~66 % of the positives."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], n // 2))
    site_a = np.where(y == 1, rng.random(n) < 0.66, rng.random(n) < 0.05)
    site = np.where(site_a, "A", np.where(rng.random(n) < 0.5, "B", "C"))
    frame = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{j}" for j in range(p)])
    frame["site"] = site
    return frame, y


def _held_out_auc(frame, y, seed: int, **combat) -> float:
    scores = np.empty(len(y))
    for train, test in StratifiedKFold(5, shuffle=True, random_state=seed).split(frame, y):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConfoundedSiteWarning)
            harmoniser = ComBat("site", unseen="pooled", **combat).fit(frame.iloc[train], y[train])
        H_train = harmoniser.transform(frame.iloc[train])
        scaler = StandardScaler().fit(H_train)
        model = LogisticRegression(max_iter=2000).fit(scaler.transform(H_train), y[train])
        H_test = scaler.transform(harmoniser.transform(frame.iloc[test]))
        scores[test] = model.decision_function(H_test)
    return roc_auc_score(y, scores)


def test_combat_does_not_turn_a_site_outcome_association_into_signal():
    data = [_noise_with_associated_site(seed) for seed in range(5)]
    default = [_held_out_auc(f, y, s) for s, (f, y) in enumerate(data)]
    assert abs(np.mean(default) - 0.5) < 0.1, default
    # the mechanism, for the record: neuroCombat's shrunk location is anti-predictive
    shrunk = [_held_out_auc(f, y, s, shrink_location=True) for s, (f, y) in enumerate(data[:3])]
    assert np.mean(shrunk) < 0.4, shrunk  # 0.25–0.35 measured


def test_default_combat_removes_each_training_site_mean_in_full():
    frame, y = _noise_with_associated_site(0, n=90, p=20)
    frame.iloc[:, :20] += np.where(frame["site"] == "A", 2.0, 0.0)[:, None]
    out = pd.DataFrame(ComBat("site").fit_transform(frame)).groupby(frame["site"]).mean()
    np.testing.assert_allclose(out.to_numpy() - out.to_numpy().mean(axis=0), 0, atol=1e-8)


def test_site_outcome_association_and_the_warning():
    frame, y = _noise_with_associated_site(1)
    association = site_outcome_association(frame["site"], y)
    assert association >= STRONG_ASSOCIATION
    with pytest.warns(ConfoundedSiteWarning, match="cannot separate a confounded site"):
        combat = ComBat("site").fit(frame, y)
    assert combat.site_outcome_association_ == pytest.approx(association)

    rng = np.random.default_rng(2)
    unrelated = rng.choice(["A", "B", "C"], size=len(y))
    assert site_outcome_association(unrelated, y) < STRONG_ASSOCIATION
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConfoundedSiteWarning)
        assert ComBat("site").fit(frame.assign(site=unrelated), y).site_outcome_association_ < 0.3
    assert ComBat("site").fit(frame).site_outcome_association_ is None
    # the site gives the class: V = 1; a single site: 0
    assert site_outcome_association(np.where(y == 1, "A", "B"), y) == pytest.approx(1.0)
    assert site_outcome_association(["A"] * len(y), y) == 0.0


# --------------------------------------------------------------------------- item 2: shared space


def test_shared_space_applies_combat_filter_and_selection_per_group():
    from radfusion.pipeline.fusion import build_model
    from radfusion.pipeline.preprocessing import CorrelationFilter, SelectTopK

    frame, y = _noise_with_associated_site(3, n=90, p=40)
    frame = frame.rename(columns={f"f{j}": f"CT__tumor__f{j}" for j in range(20)})
    frame = frame.rename(columns={f"f{j}": f"MR__tumor__f{j}" for j in range(20, 40)})
    frame["age"] = np.random.default_rng(0).normal(60, 10, len(y))
    groups = {
        "CT__tumor": [c for c in frame if c.startswith("CT")],
        "MR__tumor": [c for c in frame if c.startswith("MR")],
        "clinical": ["age"],
    }
    model = build_model(groups, "shared", harmonize="site", correlation_threshold=0.9, select_k=5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConfoundedSiteWarning)
        model.fit(frame, y)
    for group in ("CT__tumor", "MR__tumor"):
        steps = model.preprocessors_[group]
        combat = steps[0].named_transformers_["combat"]
        assert isinstance(combat, ComBat) and combat.sites_ == ["A", "B", "C"]
        assert isinstance(steps[-3], CorrelationFilter) and isinstance(steps[-2], SelectTopK)
        assert model.maps_[group][:-1].transform(frame).shape[1] == 5
    assert "combat" not in model.preprocessors_["clinical"][0].named_transformers_
    proba = model.predict_proba(frame)
    assert proba.shape == (len(y), 2) and np.isfinite(proba).all()
    # the default model is the historical one (impute → standardise per group)
    plain = build_model(groups, "shared").fit(frame, y)
    assert plain.branch_options is None and len(plain.preprocessors_["CT__tumor"]) == 2


def test_shared_space_refuses_what_it_cannot_honour():
    from radfusion.features.errors import InputError
    from radfusion.pipeline.fusion import build_model, build_models

    groups = {"CT__tumor": ["a"], "MR__tumor": ["b"]}
    with pytest.raises(InputError, match="does not take every option") as error:
        build_model(groups, "shared", resample="smote")
    assert "resample" in str(error.value.problems[0])
    with pytest.warns(UserWarning, match="shared-space fusion left out: resample"):
        assert "shared" not in build_models(groups, resample="smote")
