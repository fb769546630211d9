"""The cohort runner: deterministic output, dispatch order, thread limits in workers."""

from __future__ import annotations

import os

import pandas as pd
import SimpleITK as sitk
from threadpoolctl import threadpool_info

import radfusion.features.runner
from radfusion.features.runner import extract_cohort
from tests.features.conftest import read_rows, write_manifest

COHORT = [("P3", "CT", 3), ("P1", "CT", 1), ("P2", "MR", 2), ("P1", "MR", 4), ("P4", "CT", 5)]


def test_row_order_and_worker_count_change_nothing(write_cohort):
    manifest = write_cohort(COHORT)
    reference = extract_cohort(manifest, n_jobs=1, progress=False)
    rows = read_rows(manifest)
    write_manifest(manifest, rows[::-1])
    shuffled = extract_cohort(manifest, n_jobs=2, progress=False)
    for name in ("features", "diagnostics", "failures"):
        pd.testing.assert_frame_equal(getattr(shuffled, name), getattr(reference, name),
                                      check_exact=True)
    assert list(reference.features["patient_id"]) == ["P1", "P2", "P3", "P4"]
    assert reference.summary() == "5 case(s): 5 extracted (0 from the cache), 0 failed"


def test_cases_run_largest_first(write_cohort, monkeypatch):
    manifest = write_cohort(COHORT)
    order = []
    run_case = radfusion.features.runner._run_case

    def recording(index, case, params, single_thread):
        order.append(os.path.getsize(case["image"]) + os.path.getsize(case["mask_path"]))
        return run_case(index, case, params, single_thread)

    monkeypatch.setattr(radfusion.features.runner, "_run_case", recording)
    extract_cohort(manifest, n_jobs=1, progress=False)
    assert len(order) == len(COHORT) and order == sorted(order, reverse=True)


def test_parallel_workers_use_one_thread_each(monkeypatch):
    seen = {}

    def probe(case, params):
        seen["sitk"] = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
        seen["blas"] = {pool["num_threads"] for pool in threadpool_info()}
        return {"features": {}, "diagnostics": {}}

    monkeypatch.setattr(radfusion.features.runner, "_extract", probe)
    before = sitk.ProcessObject_GetGlobalDefaultNumberOfThreads()
    radfusion.features.runner._run_case(0, {}, {}, single_thread=False)
    assert seen["sitk"] == before
    radfusion.features.runner._run_case(0, {}, {}, single_thread=True)
    assert seen["sitk"] == 1 and seen["blas"] <= {1}
    sitk.ProcessObject_SetGlobalDefaultNumberOfThreads(before)
