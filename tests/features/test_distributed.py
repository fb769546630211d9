"""The same extraction on a Dask cluster (two worker processes on loopback) as with joblib."""

from __future__ import annotations

import pandas as pd
import pytest

from radfusion.features.runner import extract_cohort
from tests.features.conftest import read_rows, write_manifest

distributed = pytest.importorskip("distributed")

COHORT = [(f"P{i}", modality, 10 * i + j)
          for i in range(1, 4) for j, modality in enumerate(("CT", "MR"))]


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


def test_dask_run_equals_the_joblib_run(write_cohort, cluster, tmp_path):
    manifest = write_cohort(COHORT)
    rows = read_rows(manifest)
    rows[3]["label"] = 2  # one failing case: recorded the same way on both
    write_manifest(manifest, rows)
    local = extract_cohort(manifest, n_jobs=2, progress=False)
    assert len(local.failures) == 1

    with distributed.Client(cluster) as client:
        on_dask = extract_cohort(manifest, progress=False, client=client,
                                 cache_dir=tmp_path / "cache")
        assert client.status == "running"  # a client we were given is left open
        # workers set SimpleITK to one thread each, as the joblib workers do
        threads = client.run(lambda: __import__("SimpleITK")
                             .ProcessObject_GetGlobalDefaultNumberOfThreads())
        assert set(threads.values()) == {1}
    for name in ("features", "diagnostics", "failures"):
        pd.testing.assert_frame_equal(getattr(on_dask, name), getattr(local, name),
                                      check_exact=True)

    again = extract_cohort(manifest, progress=False, client=cluster.scheduler_address,
                           cache_dir=tmp_path / "cache")
    assert again.n_cached == len(COHORT) - 1  # only the failed case ran again
    pd.testing.assert_frame_equal(again.features, local.features, check_exact=True)
    pd.testing.assert_frame_equal(again.failures, local.failures, check_exact=True)


def _square_or_fail(x: int) -> int:
    if x == 3:
        raise RuntimeError("worker lost")
    return x * x


def test_map_unordered_reports_tasks_that_raised_on_the_cluster(cluster):
    from radfusion.features.distributed import dask_client, map_unordered

    with dask_client(cluster.scheduler_address) as client:
        results = map_unordered(client, _square_or_fail, [(x,) for x in range(5)],
                                on_error=lambda args, error: (args, str(error)))
        expected = [0, 1, 4, 16, ((3,), "worker lost")]
        assert sorted(results, key=str) == sorted(expected, key=str)
    assert client.status == "closed"  # a client connected from an address is closed
