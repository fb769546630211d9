"""The same bytes whatever runs the cases: this process, two joblib workers or a Dask cluster.

The cohort is two synthetic patients (CT and MR, two masks each: 8 cases). Under the MR
default (``normalize``) SimpleITK's image statistics of P002's MR differ in the last bit
between one and two threads, so a thread setting that differs between paths shows here.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest
import SimpleITK as sitk
from threadpoolctl import threadpool_info

from radfusion.features.extract import single_threaded
from radfusion.features.io import read_image
from radfusion.features.runner import extract_cohort
from radfusion.features.synthetic import make_cohort
from radfusion.features.table import write_extraction

#: SimpleITK threads of the calling process in these tests, as on any multi-core machine.
CALLER_THREADS = 2


@pytest.fixture(scope="module")
def manifest(tmp_path_factory) -> Path:
    return make_cohort(tmp_path_factory.mktemp("cohort"), n_patients=2, seed=0).manifest


@pytest.fixture
def caller_threads():
    """The calling process on :data:`CALLER_THREADS` SimpleITK threads; restored after."""
    before = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(CALLER_THREADS)
    yield CALLER_THREADS
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(before)


def _threads() -> tuple[int, set[int]]:
    """SimpleITK's thread count and the thread counts of the BLAS/OpenMP pools."""
    pools = {pool["num_threads"] for pool in threadpool_info()}
    return sitk.ProcessObject_GetGlobalDefaultNumberOfThreads(), pools


def _normalised(image: sitk.Image) -> bytes:
    return sitk.GetArrayViewFromImage(sitk.Normalize(image)).tobytes()


def _digests(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _extract(manifest: Path, out: Path, **kwargs) -> dict[str, str]:
    result = extract_cohort(manifest, progress=False, cache_dir=out / "cache", **kwargs)
    assert result.summary() == "8 case(s): 8 extracted (0 from the cache), 0 failed"
    write_extraction(result, out / "features.parquet")
    return _digests(out)


def test_the_cohort_is_one_where_the_thread_count_matters(manifest, caller_threads):
    image = read_image(manifest.parent / "images" / "P002_MR.nii.gz")
    multi_threaded = _normalised(image)
    with single_threaded():
        assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == 1
        one_thread = _normalised(image)
    assert one_thread != multi_threaded, "pick a cohort whose MR statistics depend on threads"
    assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == caller_threads


def test_jobs_and_dask_give_the_same_bytes(manifest, caller_threads, tmp_path):
    serial = _extract(manifest, tmp_path / "jobs1", n_jobs=1)
    assert sitk.ProcessObject_GetGlobalDefaultNumberOfThreads() == caller_threads  # restored
    assert sum(name.startswith("cache/") for name in serial) == 8
    assert {"features.parquet", "features.diagnostics.csv"} <= set(serial)

    assert _extract(manifest, tmp_path / "jobs2", n_jobs=2) == serial
    distributed = pytest.importorskip("distributed")  # the joblib paths are checked without it
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        with distributed.Client(cluster) as client:
            assert _extract(manifest, tmp_path / "dask", client=client) == serial


def test_single_threaded_nests_and_restores_the_callers_settings(caller_threads):
    caller = _threads()
    with single_threaded():
        with single_threaded():
            assert _threads()[0] == 1 and _threads()[1] <= {1}
        assert _threads()[0] == 1  # the outer block still runs on one thread
    assert _threads() == caller


def test_single_threaded_holds_while_any_thread_is_inside(caller_threads):
    """Concurrent cases (a Dask worker with several threads) never see the caller's setting."""
    inside, leave = threading.Event(), threading.Event()
    seen = []

    def case():
        with single_threaded():
            inside.set()
            leave.wait(10)
            seen.append(_threads()[0])

    other = threading.Thread(target=case)
    with single_threaded():  # this block starts first and ends while the other still runs
        other.start()
        assert inside.wait(10)
    leave.set()
    other.join(10)
    assert seen == [1]
    assert _threads()[0] == caller_threads
