"""radfusion's own laws as common checks, run over every fusion estimator and strategy.

As imbalanced-learn runs its sampler checks over every sampler, each law below is checked for
every (task, strategy) the fusion estimators offer, found from
:data:`radfusion.pipeline.fusion.ESTIMATORS` and the strategies each one takes — a new
estimator or strategy is checked by default. Small sizes (tens of patients, one cheap
learner); the full-size laws live in ``benchmarks/``.

- **missing modality**: a patient lacking a whole group, or every group, is still predicted
  with finite outputs;
- **permuted labels**: cross-validated on labels shuffled against the features, the model is
  at chance (the primary metric in 0.5 ± 0.15; R² below 0.1), where the same table with its
  labels scores above it (> 0.6);
- **same seed, same bytes**: two fits with one ``random_state`` predict the same bytes;
- **skops round trip**: the model saved with skops and loaded under the model file's trust
  policy predicts the same bytes;
- **row order**: cross-validation of the rows in another order gives the same predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from radfusion.pipeline.fusion import ESTIMATORS, STRATEGIES, unavailable_strategies
from radfusion.pipeline.persistence import is_trusted_type
from radfusion.pipeline.targets import SurvivalTask, get_task
from radfusion.pipeline.validation import cross_validate_models, summarize
from tests.pipeline.conftest import multimodal_table

#: The cheapest learner of each task (the laws are about fusion, not the learner).
LEARNER = {"binary": "lr", "multiclass": "lr", "regression": "lr", "survival": "coxnet"}
N = 90


def _cases() -> list[tuple[str, str]]:
    return [
        (task, strategy)
        for task in ESTIMATORS
        for strategy in STRATEGIES
        if strategy not in unavailable_strategies(task)
    ]


def _table(task: str, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A three-group table with signal for ``task``; a third of the patients lack MR."""
    X, y, _ = multimodal_table(n=N, seed=seed, p=4, k=2)
    latent = X.filter(like="__f0").fillna(0).sum(axis=1).to_numpy()
    if task == "multiclass":
        y = np.digitize(latent, np.quantile(latent, [1 / 3, 2 / 3]))
    elif task == "regression":
        y = latent + np.random.default_rng(seed).normal(size=N)
    elif task == "survival":
        from radfusion.pipeline.survival import survival_target

        rng = np.random.default_rng(seed)
        event_time = rng.exponential(np.exp(-0.5 * (latent - latent.mean())))
        censor = rng.exponential(2.0, size=N)
        y = survival_target(np.minimum(event_time, censor), event_time <= censor, X.index)
    return X, y


def _model(task: str, strategy: str, seed: int = 0):
    params = dict(learners=(LEARNER[task],), random_state=seed)
    if strategy == "single":
        params["use_groups"] = ["CT__tumor"]
    if strategy == "stacking":
        params["cv"] = 3
    return ESTIMATORS[task](strategy, **params)


def _task(task: str, y):
    return SurvivalTask.for_target(y) if task == "survival" else get_task(task)


def _outputs(model, X) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return np.asarray(model.predict_proba(X))
    return np.asarray(model.predict(X))


def _cv(task, strategy, X, y, **kwargs):
    return cross_validate_models(
        {strategy: _model(task, strategy)}, X, y, folds=3, repeats=1, task=_task(task, y), **kwargs
    )


LAWS = pytest.mark.parametrize(
    ("task", "strategy"), _cases(), ids=[f"{task}-{strategy}" for task, strategy in _cases()]
)


@LAWS
def test_a_patient_missing_a_modality_or_every_one_is_still_predicted(task, strategy):
    X, y = _table(task)
    model = _model(task, strategy).fit(X, y)
    lacking = X.iloc[:5].copy()
    lacking[[c for c in X if c.startswith("MR__")]] = np.nan
    nothing = X.iloc[:2].copy()
    nothing[:] = np.nan
    for rows in (lacking, nothing):
        assert np.isfinite(_outputs(model, rows)).all()


@LAWS
def test_permuted_labels_give_chance(task, strategy):
    X, y = _table(task)
    metric = _task(task, y).primary_metric
    permuted = y[np.random.default_rng(1).permutation(len(y))]
    honest = summarize(_cv(task, strategy, X, y).predictions, task=_task(task, y), n_bootstrap=0)
    chance = summarize(
        _cv(task, strategy, X, permuted).predictions, task=_task(task, permuted), n_bootstrap=0
    )
    signal, null = (s[strategy][metric]["mean"] for s in (honest, chance))
    if task == "regression":
        assert null < 0.1 < signal
    else:
        assert abs(null - 0.5) <= 0.15 and signal > 0.6


@LAWS
def test_the_same_seed_gives_the_same_bytes(task, strategy):
    X, y = _table(task)
    first = _outputs(_model(task, strategy, seed=3).fit(X, y), X)
    second = _outputs(_model(task, strategy, seed=3).fit(X, y), X)
    assert first.tobytes() == second.tobytes()


@LAWS
def test_a_skops_round_trip_predicts_the_same_bytes(task, strategy):
    X, y = _table(task)
    model = _model(task, strategy).fit(X, y)
    data = sio.dumps(model)
    untrusted = sio.get_untrusted_types(data=data)
    assert [name for name in untrusted if not is_trusted_type(name)] == []
    loaded = sio.loads(data, trusted=untrusted)
    assert _outputs(loaded, X).tobytes() == _outputs(model, X).tobytes()


@LAWS
def test_the_row_order_does_not_change_the_predictions(task, strategy):
    X, y = _table(task)
    order = np.random.default_rng(2).permutation(len(y))
    first = _cv(task, strategy, X, y).predictions
    second = _cv(task, strategy, X.iloc[order], y[order]).predictions
    pd.testing.assert_frame_equal(first, second)
