"""Benchmark of cohort extraction: parallel efficiency, cache, overhead, memory.

Prints a table of:

- cases per second with 1 worker and with every core (parallel efficiency = speed-up /
  workers), loky workers already started (the pool start-up is printed separately);
- the time of a fully cached re-run relative to the cold (cached-while-computing) run;
- radfusion's overhead relative to pyradiomics called in a plain loop on the same cases
  (one extractor, file paths, one process), without and with the cache;
- the peak memory (RSS of the process and its workers, sampled) of a cohort and of a 4x
  larger one, each extracted in a fresh process with every core.

The cohort is synthetic: CT-like 112^3 volumes at 1 mm with one textured ellipsoidal lesion
of 0.5-1.5 x 10^5 voxels, extracted with radfusion's shipped CT parameters. Timings are the best
of ``--repeat`` runs, measured in turns (serial, parallel, plain loop) so that load from
other processes spreads evenly over them.

Usage::

    python benchmarks/extraction.py [--cases 16] [--repeat 3] [--jobs -1]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import SimpleITK as sitk
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from radfusion.features.extract import make_extractor  # noqa: E402
from radfusion.features.manifest import read_manifest  # noqa: E402
from radfusion.features.params import load_params  # noqa: E402
from radfusion.features.runner import extract_cohort  # noqa: E402

SIZE = 112


def write_case(folder: Path, index: int) -> dict:
    """One CT-like volume with a textured ellipsoidal lesion, and its mask."""
    rng = np.random.default_rng(index)
    z, y, x = np.indices((SIZE, SIZE, SIZE), dtype=np.float32)
    centre = SIZE / 2 + rng.uniform(-6, 6, 3)
    radii = rng.uniform(22, 30, 3)
    inside = (((x - centre[0]) / radii[0]) ** 2 + ((y - centre[1]) / radii[1]) ** 2
              + ((z - centre[2]) / radii[2]) ** 2) <= 1
    texture = ndimage.gaussian_filter(rng.normal(0, 1, inside.shape), rng.uniform(1, 3))
    voxels = (40 + rng.normal(0, 15, inside.shape)
              + inside * (30 + 60 * texture / texture.std()))
    image = sitk.GetImageFromArray(voxels.round().astype(np.int16))
    mask = sitk.GetImageFromArray(inside.astype(np.uint8))
    paths = {"image": folder / f"case{index:03d}_ct.nii.gz",
             "mask_path": folder / f"case{index:03d}_seg.nii.gz"}
    sitk.WriteImage(image, str(paths["image"]))
    sitk.WriteImage(mask, str(paths["mask_path"]))
    return {"patient_id": f"P{index:03d}", "modality": "CT", "mask": "tumor",
            **{k: v.name for k, v in paths.items()}, "label": 1, "voxels": int(inside.sum())}


def write_cohort(folder: Path, n_cases: int, workers: int) -> tuple[Path, list[int]]:
    folder.mkdir(parents=True, exist_ok=True)
    rows = joblib.Parallel(n_jobs=workers)(
        joblib.delayed(write_case)(folder, i) for i in range(n_cases))
    voxels = [row.pop("voxels") for row in rows]
    manifest = folder / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest, voxels


def plain_loop(manifest: pd.DataFrame, params: dict) -> None:
    """pyradiomics alone: one extractor, every case from its paths, in one process."""
    extractor = make_extractor(params)
    for case in manifest.itertuples():
        extractor.execute(case.image, case.mask_path, label=int(case.label))


def _cpu_times() -> dict[int, float]:
    """CPU seconds (user + system) used so far by this process and each of its workers."""
    import psutil

    times = {}
    for process in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            cpu = process.cpu_times()
            times[process.pid] = cpu.user + cpu.system
        except psutil.Error:
            pass
    return times


def _runnable() -> dict[int, float]:
    """Seconds each worker process was running or waiting for a CPU (Linux schedstat)."""
    import psutil

    times = {}
    for process in psutil.Process().children(recursive=True):
        try:
            run, wait, _ = Path(f"/proc/{process.pid}/schedstat").read_text().split()
            times[process.pid] = (int(run) + int(wait)) / 1e9
        except (OSError, ValueError):
            pass
    return times


def timed(function, *args, **kwargs) -> tuple[float, float, float]:
    """Wall-clock and CPU seconds (this process and its workers) of one call, and the
    workers' runnable seconds (running, or ready but waiting for a CPU taken by others)."""
    cpu, runnable = _cpu_times(), _runnable()
    start = time.perf_counter()
    function(*args, **kwargs)
    wall = time.perf_counter() - start
    after, runnable_after = _cpu_times(), _runnable()
    return (wall, sum(t - cpu.get(pid, 0.0) for pid, t in after.items()),
            sum(t - runnable.get(pid, 0.0) for pid, t in runnable_after.items()))


_MEMORY_RUN = """
import resource, sys
from radfusion.features.runner import extract_cohort
extract_cohort(sys.argv[1], n_jobs=int(sys.argv[2]), progress=False)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_memory(manifest: Path, jobs: int) -> tuple[float, float]:
    """Peak RSS (MiB) of a fresh extraction process plus its workers, and of the process."""
    import psutil

    process = subprocess.Popen([sys.executable, "-c", _MEMORY_RUN, str(manifest), str(jobs)],
                               cwd=ROOT, stdout=subprocess.PIPE, text=True)
    peak = 0
    parent = psutil.Process(process.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            try:
                tree = [parent, *parent.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree))
            except psutil.Error:
                pass
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, _ = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise RuntimeError(f"extraction failed with code {process.returncode}")
    return peak / 2**20, int(out.split()[-1]) / 2**10


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", type=int, default=16, help="cases in the cohort")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs (best is kept)")
    parser.add_argument("--jobs", type=int, default=-1, help="workers (-1: every core)")
    args = parser.parse_args()
    workers = joblib.effective_n_jobs(args.jobs)

    with tempfile.TemporaryDirectory(prefix="radfusion-bench-") as tmp:
        tmp = Path(tmp)
        start = time.perf_counter()
        manifest_path, voxels = write_cohort(tmp / "small", args.cases, workers)
        large_path, _ = write_cohort(tmp / "large", 4 * args.cases, workers)
        print(f"cohort: {args.cases} CT cases of {SIZE}^3 voxels, ROI {min(voxels)}-"
              f"{max(voxels)} voxels (median {int(np.median(voxels))}); {workers} workers on "
              f"{os.cpu_count()} cores; written in {time.perf_counter() - start:.1f} s")
        manifest = read_manifest(manifest_path)
        params = load_params(None, ["CT"])

        def run(jobs: int, **kwargs):
            return extract_cohort(manifest, params=params, n_jobs=jobs, progress=False, **kwargs)

        pool_start = timed(run, workers)[0]  # the first parallel run starts the worker pool
        serial, parallel, plain = [], [], []
        for _ in range(args.repeat):
            serial.append(timed(run, 1))
            parallel.append(timed(run, workers))
            plain.append(timed(plain_loop, manifest, params["CT"]))
        cold_cached, rerun, serial_cached = [], [], []
        for repeat in range(args.repeat):
            cache = tmp / f"cache{repeat}"
            cold_cached.append(timed(run, workers, cache_dir=cache))
            rerun.append(timed(run, workers, cache_dir=cache))
            assert run(workers, cache_dir=cache).n_cached == args.cases
            serial_cached.append(timed(run, 1, cache_dir=tmp / f"serial{repeat}"))
        small_peak, small_parent = peak_memory(manifest_path, args.jobs)
        large_peak, large_parent = peak_memory(large_path, args.jobs)
        load = os.getloadavg()[0]

    (t1, c1, _), (tn, cn, rn), (tp, cp, _) = min(serial), min(parallel), min(plain)
    (tc, _, _), (tr, _, _) = min(cold_cached), min(rerun)
    ts, cs, _ = min(serial_cached)
    busy = rn / tn / workers
    lines = [
        ("cases/s, 1 worker", f"{args.cases / t1:.3f}", f"{t1:.2f} s for {args.cases} cases"),
        (f"cases/s, {workers} workers", f"{args.cases / tn:.3f}", f"{tn:.2f} s"),
        ("speed-up", f"{t1 / tn:.2f}x", f">= 1.7x on 2 cores (first parallel run, pool "
                                        f"start-up included: {pool_start:.2f} s)"),
        ("parallel efficiency", f"{t1 / tn / workers:.2f}", ">= 0.85"),
        ("  CPU share the parallel run got", f"{cn / tn / workers:.0%}",
         f"of {workers} cores (below 100 %: other load; 1-min load average {load:.1f})"),
        ("  CPU time, parallel / serial", f"{cn / c1:.2f}", f"{cn:.2f} s / {c1:.2f} s"),
        ("  workers busy (running or ready)", f"{busy:.0%}",
         "of the parallel run's wall time: the rest is dispatch, start-up and tail idling"),
        ("  efficiency expected on idle cores", f"{busy * c1 / cn:.2f}",
         "busy fraction x CPU(serial) / CPU(parallel): an upper estimate, not a measure"),
        ("cached re-run / cold run", f"{tr / tc:.1%}", f"{tr:.3f} s / {tc:.2f} s, <= 5 %"),
        ("overhead vs plain pyradiomics loop", f"{t1 / tp - 1:+.1%}",
         f"wall {t1:.2f} s / {tp:.2f} s, <= 5 %"),
        ("  in CPU time", f"{c1 / cp - 1:+.1%}", f"{c1:.2f} s / {cp:.2f} s"),
        ("  with the cache being written", f"{ts / tp - 1:+.1%}",
         f"wall {ts:.2f} s; CPU {cs / cp - 1:+.1%}"),
        (f"peak memory, {args.cases} cases", f"{small_peak:.0f} MiB",
         f"process and workers; main process alone {small_parent:.0f} MiB"),
        (f"peak memory, {4 * args.cases} cases", f"{large_peak:.0f} MiB",
         f"main process alone {large_parent:.0f} MiB"),
        ("peak memory ratio (4x / 1x)", f"{large_peak / small_peak:.2f}", "<= 1.2"),
    ]
    width = max(len(name) for name, _, _ in lines)
    print(f"\n{'measure':<{width}}  {'value':>10}  note")
    for name, value, note in lines:
        print(f"{name:<{width}}  {value:>10}  {note}")
    print("\nall runs, wall / CPU seconds:")
    for name, runs in (("serial", serial), ("parallel", parallel), ("plain loop", plain),
                       ("cold, caching", cold_cached), ("cached re-run", rerun),
                       ("serial, caching", serial_cached)):
        print(f"  {name:<16}" + "; ".join(f"{w:.2f} / {c:.2f}" for w, c, _ in runs))


if __name__ == "__main__":
    main()
