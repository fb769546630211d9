"""Cross-validation on a Dask cluster gives exactly the local results."""

import json

import numpy as np
import pandas as pd
import pytest

from radfusion.pipeline.experiment import run_cv

distributed = pytest.importorskip("distributed")


def test_dask_cluster_run_equals_the_local_run(tmp_path):
    rng = np.random.default_rng(0)
    n = 60
    table = pd.DataFrame(
        rng.normal(size=(n, 6)),
        columns=[f"{g}__tumor__f{j}" for g in ("CT", "MR") for j in range(3)],
    )
    table.insert(0, "patient_id", [f"P{i:02d}" for i in range(n)])
    table["outcome"] = (table.iloc[:, 1] + table.iloc[:, 4] + rng.normal(size=n) > 0).astype(int)
    path = tmp_path / "table.csv"
    table.to_csv(path, index=False)
    options = dict(
        label="outcome",
        folds=3,
        repeats=1,
        strategies=("single", "late", "stacking"),
        params=dict(learners=("lr",)),
        n_bootstrap=50,
        explain=False,
    )
    local = run_cv(path, out=tmp_path / "local", n_jobs=1, **options)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        seen = []  # fits as they complete on the cluster: progress reaches Dask too
        remote = run_cv(
            path,
            out=tmp_path / "dask",
            scheduler=cluster.scheduler_address,
            progress=lambda done, total: seen.append((done, total)),
            **options,
        )
    total = 3  # one task per fold: its models share their fits
    assert seen == [(done, total) for done in range(total + 1)]
    assert json.dumps(remote["models"]) == json.dumps(local["models"])
    assert (tmp_path / "dask" / "predictions.csv").read_bytes() == (
        tmp_path / "local" / "predictions.csv"
    ).read_bytes()
