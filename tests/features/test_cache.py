"""The per-case cache: content keys, exact round trips, re-runs, partial invalidation, resume."""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

import radfusion.features.runner
from radfusion.features.cache import FeatureCache
from radfusion.features.files import file_digest
from radfusion.features.runner import extract_cohort
from tests.features.conftest import read_rows, write_manifest

ROOT = Path(__file__).resolve().parents[2]
COHORT = [
    (f"P{i:02d}", modality, 10 * i + j)
    for i in range(1, 5)
    for j, modality in enumerate(("CT", "MR"))
]


def assert_same_result(a, b) -> None:
    pd.testing.assert_frame_equal(a.features, b.features, check_exact=True)
    pd.testing.assert_frame_equal(a.diagnostics, b.diagnostics, check_exact=True)
    pd.testing.assert_frame_equal(a.failures, b.failures, check_exact=True)


def computes_nothing(*args, **kwargs):
    raise AssertionError("a cached case was computed again")


@pytest.fixture
def cohort(write_cohort) -> Path:
    return write_cohort(COHORT)


@pytest.fixture
def cold(cohort):
    return extract_cohort(cohort, n_jobs=1, progress=False)


def test_file_digest_streams_files_and_folders(tmp_path, monkeypatch):
    data = os.urandom(3 * (1 << 20) + 5)
    (tmp_path / "a.bin").write_bytes(data)
    monkeypatch.setattr("radfusion.features.files._CHUNK", 1000)  # many chunks
    assert file_digest(tmp_path / "a.bin") == hashlib.sha256(data).hexdigest()

    series = tmp_path / "series"
    series.mkdir()
    for name, content in (("2.dcm", b"two"), ("1.dcm", b"one")):
        (series / name).write_bytes(content)
    before = file_digest(series)
    (series / "2.dcm").write_bytes(b"TWO")
    assert file_digest(series) != before
    (series / "2.dcm").rename(series / "3.dcm")
    assert file_digest(series) != file_digest(tmp_path / "a.bin")


def test_key_depends_on_contents_label_and_params_not_on_paths(tmp_path):
    for name, content in (("image", b"voxels"), ("mask", b"labels"), ("copy", b"voxels")):
        (tmp_path / name).write_bytes(content)
    cache = FeatureCache(tmp_path / "cache")
    params = {"setting": {"binWidth": 25}}
    key = cache.key(tmp_path / "image", tmp_path / "mask", 1, params)
    assert len(key) == 64
    assert cache.key(tmp_path / "copy", tmp_path / "mask", 1, params) == key
    assert cache.key(tmp_path / "image", tmp_path / "mask", 1, {"setting": {"binWidth": 25}}) == key
    others = {
        cache.key(tmp_path / "mask", tmp_path / "mask", 1, params),
        cache.key(tmp_path / "image", tmp_path / "mask", 2, params),
        cache.key(tmp_path / "image", tmp_path / "mask", 1, {"setting": {"binWidth": 5}}),
    }
    assert len(others) == 3 and key not in others


def test_entries_round_trip_exactly_and_bad_entries_are_misses(tmp_path):
    cache = FeatureCache(tmp_path)
    result = {
        "features": {"a": 0.1 + 0.2, "b": math.nan, "c": 1e-300, "d": -0.0},
        "diagnostics": {"diagnostics_Versions_PyRadiomics": "v3.1.4"},
    }
    path = cache.put("ab" * 32, result)
    back = cache.get("ab" * 32)
    assert back["diagnostics"] == result["diagnostics"]
    assert list(back["features"]) == list(result["features"])
    for name, value in result["features"].items():
        assert repr(back["features"][name]) == repr(value)
    assert len(cache) == 1 and sorted(p.name for p in path.parent.iterdir()) == [path.name]
    assert cache.get("cd" * 32) is None

    # half an entry, as a crash mid-write would leave
    path.write_text(path.read_text(encoding="utf-8")[:40])
    assert cache.get("ab" * 32) is None
    path.write_text('{"key": "something else", "features": {}, "diagnostics": {}}')
    assert cache.get("ab" * 32) is None


def test_rerun_computes_nothing_and_equals_the_cold_run(cohort, cold, tmp_path, monkeypatch):
    first = extract_cohort(cohort, n_jobs=2, progress=False, cache_dir=tmp_path / "cache")
    assert first.n_cached == 0 and len(FeatureCache(tmp_path / "cache")) == len(COHORT)
    assert_same_result(first, cold)

    monkeypatch.setattr(radfusion.features.runner, "_run_case", computes_nothing)
    again = extract_cohort(cohort, n_jobs=2, progress=False, cache_dir=tmp_path / "cache")
    assert again.n_cached == len(COHORT)
    assert (
        again.summary() == f"{len(COHORT)} case(s): {len(COHORT)} extracted "
        f"({len(COHORT)} from the cache), 0 failed"
    )
    assert_same_result(again, cold)

    # The cache follows contents, not paths: a moved cohort is still cached.
    moved = tmp_path / "moved"
    shutil.copytree(cohort.parent / "images", moved / "images")
    shutil.copytree(cohort.parent / "masks", moved / "masks")
    shutil.copy(cohort, moved / "manifest.csv")
    again = extract_cohort(
        moved / "manifest.csv", n_jobs=1, progress=False, cache_dir=tmp_path / "cache"
    )
    assert again.n_cached == len(COHORT)
    pd.testing.assert_frame_equal(again.features, cold.features, check_exact=True)


def test_changing_one_modality_recomputes_only_it(cohort, tmp_path):
    cache_dir = tmp_path / "cache"
    extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=cache_dir)
    folder = tmp_path / "params"
    folder.mkdir()
    mr = yaml.safe_load((ROOT / "features" / "params" / "mr.yaml").read_text(encoding="utf-8"))
    mr["setting"]["binWidth"] = 10
    (folder / "MR.yaml").write_text(yaml.safe_dump(mr))

    before = set(cache_dir.rglob("*.json"))
    changed = extract_cohort(cohort, params=folder, n_jobs=1, progress=False, cache_dir=cache_dir)
    n_ct = sum(m == "CT" for _, m, _ in COHORT)
    assert changed.n_cached == n_ct
    assert len(set(cache_dir.rglob("*.json")) - before) == len(COHORT) - n_ct
    fresh = extract_cohort(cohort, params=folder, n_jobs=1, progress=False)
    assert_same_result(changed, fresh)

    # A changed image file recomputes its case only.
    rows = read_rows(cohort)
    image = cohort.parent / rows[0]["image"]
    image.write_bytes((cohort.parent / rows[2]["image"]).read_bytes())
    assert (
        extract_cohort(
            cohort, params=folder, n_jobs=1, progress=False, cache_dir=cache_dir
        ).n_cached
        == len(COHORT) - 1
    )


def test_failed_cases_are_not_cached_and_are_retried(cohort, cold, tmp_path):
    rows = read_rows(cohort)
    good = rows[1]["mask_path"]
    rows[1]["mask_path"] = "masks/later.nii.gz"  # present but unreadable for now
    (cohort.parent / "masks" / "later.nii.gz").write_bytes(b"not yet")
    write_manifest(cohort, rows)
    first = extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=tmp_path / "cache")
    assert len(first.failures) == 1 and len(FeatureCache(tmp_path / "cache")) == len(COHORT) - 1
    shutil.copy(cohort.parent / good, cohort.parent / "masks" / "later.nii.gz")
    second = extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=tmp_path / "cache")
    assert second.n_cached == len(COHORT) - 1 and second.failures.empty
    pd.testing.assert_frame_equal(second.features, cold.features, check_exact=True)


_KILLABLE_RUN = """
import sys, time
import radfusion.features.extract, radfusion.features.runner
slow = radfusion.features.extract.extract_case
def extract_case(*args, **kwargs):
    time.sleep(0.3)  # keep the run alive long enough to be killed part-way
    return slow(*args, **kwargs)
radfusion.features.runner.extract_case = extract_case
radfusion.features.runner.extract_cohort(
    sys.argv[1], n_jobs=1, progress=False, cache_dir=sys.argv[2])
"""


def test_a_run_killed_part_way_resumes_to_the_cold_result(cohort, cold, tmp_path):
    cache_dir = tmp_path / "cache"
    process = subprocess.Popen(
        [sys.executable, "-c", _KILLABLE_RUN, str(cohort), str(cache_dir)], cwd=ROOT
    )
    deadline = time.monotonic() + 60
    while len(list(cache_dir.glob("??/*.json"))) < 2:
        assert process.poll() is None and time.monotonic() < deadline, "no case was cached"
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL
    stored = len(FeatureCache(cache_dir))
    assert 2 <= stored < len(COHORT)

    resumed = extract_cohort(cohort, n_jobs=2, progress=False, cache_dir=cache_dir)
    assert resumed.n_cached == stored
    assert_same_result(resumed, cold)
    assert len(FeatureCache(cache_dir)) == len(COHORT)


@pytest.mark.parametrize(
    "damage", ["no features key", "some features removed", "a value edited", "a value made text"]
)
def test_damaged_entries_are_recomputed_with_a_note(cohort, cold, tmp_path, damage):
    cache_dir = tmp_path / "cache"
    extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=cache_dir)
    entry = sorted(cache_dir.glob("??/*.json"))[0]
    content = json.loads(entry.read_text(encoding="utf-8"))
    names = list(content["features"])
    if damage == "no features key":
        del content["features"]
    elif damage == "some features removed":
        for name in names[::3]:
            del content["features"][name]
    elif damage == "a value edited":
        content["features"][names[0]] += 1.0
    else:
        content["features"][names[0]] = "1.5"
    entry.write_text(json.dumps(content), encoding="utf-8")

    with pytest.warns(
        UserWarning,
        match=r"cache entry .* \(patient P\d\d, modality \w+, mask "
        r"tumor\) ignored: .*recomputed",
    ) as caught:
        again = extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=cache_dir)
    assert sum("cache entry" in str(w.message) for w in caught) == 1
    assert again.n_cached == len(COHORT) - 1
    assert_same_result(again, cold)
    stored, why = FeatureCache(cache_dir).lookup(entry.stem)  # rewritten by the re-run
    assert stored is not None and why is None


def test_a_cached_re_run_validates_only_the_parameters_of_what_it_computes(
    cohort, tmp_path, monkeypatch
):
    """PyRadiomics' schema check (~0.2 s) is skipped for modalities whose every case comes
    from the cache (those very parameters, by these versions, produced the entries); a case
    to compute has its parameters validated before it runs."""
    import radfusion.features.params
    from radfusion.features.errors import InputError

    cache = tmp_path / "cache"
    first = extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=cache)
    monkeypatch.setattr(radfusion.features.params, "validate_params", lambda params: "refused")
    monkeypatch.setattr(radfusion.features.runner, "_run_case", computes_nothing)
    again = extract_cohort(cohort, n_jobs=1, progress=False, cache_dir=cache)
    assert again.n_cached == len(COHORT)
    assert_same_result(first, again)
    rows = [r for r in read_rows(cohort) if r["modality"] == "MR"]
    rows[0]["label"] = "2"  # one MR case not cached: MR's parameters are checked first
    with pytest.raises(InputError, match="refused") as error:
        extract_cohort(write_manifest(cohort, rows), n_jobs=1, progress=False, cache_dir=cache)
    assert error.value.problems[0].file.endswith("mr.yaml")
