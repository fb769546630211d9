"""Fixtures shared by the pipeline tests."""

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate
from threadpoolctl import threadpool_limits

MULTIMODAL_GROUPS = ("CT__tumor", "MR__tumor", "PET__tumor")


@pytest.fixture(autouse=True, scope="module")
def _single_threaded_blas():
    """One BLAS thread: multithreaded BLAS on tiny matrices is 10x slower on 2 busy cores."""
    with threadpool_limits(limits=1):
        yield


def multimodal_table(n=300, seed=0, missing_mr=0.3, p=8, k=3):
    """Three groups, each carrying an independent third of the signal in its first k columns;
    a fraction ``missing_mr`` of the patients lacks every MR column."""
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, len(MULTIMODAL_GROUPS)))
    y = (latent.sum(axis=1) + 0.5 * rng.normal(size=n) > 0).astype(int)
    X = pd.DataFrame(
        {
            f"{group}__f{j}": rng.normal(size=n) + (latent[:, g] if j < k else 0.0) + 3.0 * j
            for g, group in enumerate(MULTIMODAL_GROUPS)
            for j in range(p)
        },
        index=[f"P{i:03d}" for i in range(n)],
    )
    groups = {group: [c for c in X if c.startswith(group + "__")] for group in MULTIMODAL_GROUPS}
    lacking = rng.permutation(n)[: round(missing_mr * n)]
    X.iloc[lacking, [X.columns.get_loc(c) for c in groups["MR__tumor"]]] = np.nan
    return X, y, groups


def check_clone_cv_and_grid_search(model, X, y, grid, cv):
    """``model`` clones with the same parameters, cross-validates (mean ROC AUC > 0.55) and is
    grid-searched over ``grid`` like any scikit-learn classifier."""
    twin = clone(model)
    assert twin.get_params().keys() == model.get_params().keys()
    scores = cross_validate(model, X, y, cv=cv, scoring="roc_auc")["test_score"]
    assert np.all(np.isfinite(scores)) and scores.mean() > 0.55
    search = GridSearchCV(model, grid, cv=cv, scoring="roc_auc").fit(X, y)
    assert set(search.best_params_) == set(grid)
