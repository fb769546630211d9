"""No leakage: on pure noise with random labels, every model's cross-validated AUC is ≈ 0.5.

One draw of n = 100 strays by about ±0.13 by chance, so the law is checked on the mean of
five independent draws, for every model `radfusion cv` builds (the estimators and the CV
engine of :func:`radfusion.pipeline.experiment.run_cv`, without writing its report). 300
noise features are wide enough for any step fitted outside the folds to show (the default
stack's learners fit them perfectly in sample); ``benchmarks/validity.py`` runs the
full-size tables.
"""

import numpy as np
import pandas as pd
import pytest

from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.fusion import build_estimators
from radfusion.pipeline.validation import cross_validate_models, summarize

pytestmark = pytest.mark.slow


def test_permuted_labels_give_chance_auc(tmp_path):
    aucs: dict[str, list[float]] = {}
    for draw in range(5):
        rng = np.random.default_rng(100 + draw)
        n, p = 100, 150
        table = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{j}" for j in range(p)])
        table.insert(0, "patient_id", [f"N{i:03d}" for i in range(n)])
        table["outcome"] = rng.permutation(np.repeat([0, 1], n // 2))
        path = tmp_path / f"noise{draw}.parquet"
        table.to_parquet(path)
        data = load_dataset(path, label="outcome")
        models = build_estimators(
            list(data.groups),
            task=data.task,
            columns=list(data.table.columns),
            **data.with_categories({"random_state": draw}),
        )
        result = cross_validate_models(
            models, data.table, data.y, ids=data.ids, folds=3, repeats=1, seed=draw, n_jobs=2
        )
        for name, metrics in summarize(result.predictions, n_bootstrap=0).items():
            aucs.setdefault(name, []).append(metrics["roc_auc"]["mean"])
    assert set(aucs) == {"early", "late", "stacking", "pooled", "shared"}
    for name, values in aucs.items():
        assert abs(np.mean(values) - 0.5) < 0.1, (name, values)
