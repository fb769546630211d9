"""No leakage: on pure noise with random labels, every model's cross-validated AUC is ≈ 0.5.

One draw of n = 100 strays by about ±0.13 by chance, so the law is checked on the mean of
five independent draws, for every model `radfusion cv` builds.
"""

import numpy as np
import pandas as pd
import pytest

from radfusion.pipeline.experiment import run_cv

pytestmark = pytest.mark.slow


def test_permuted_labels_give_chance_auc(tmp_path):
    aucs: dict[str, list[float]] = {}
    for draw in range(5):
        rng = np.random.default_rng(100 + draw)
        n, p = 100, 1000
        table = pd.DataFrame(rng.normal(size=(n, p)), columns=[f"f{j}" for j in range(p)])
        table.insert(0, "patient_id", [f"N{i:03d}" for i in range(n)])
        table["outcome"] = rng.permutation(np.repeat([0, 1], n // 2))
        path = tmp_path / f"noise{draw}.parquet"
        table.to_parquet(path)
        report = run_cv(
            path,
            label="outcome",
            out=tmp_path / f"r{draw}",
            folds=3,
            repeats=1,
            seed=draw,
            n_jobs=2,
            n_bootstrap=50,
            explain=False,
        )
        for name, model in report["models"].items():
            aucs.setdefault(name, []).append(model["metrics"]["roc_auc"]["mean"])
    assert set(aucs) == {"early", "late", "stacking", "shared"}
    for name, values in aucs.items():
        assert abs(np.mean(values) - 0.5) < 0.1, (name, values)
