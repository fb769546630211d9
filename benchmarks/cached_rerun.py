"""Benchmark: a fully cached re-run of ``radfusion extract`` against the cold run (issue 25).

Writes the synthetic cohort (``radfusion synth``: CT and MR per patient, a tumour and a
peritumoral ROI each, so 4 cases per patient), extracts it once into a fresh cache (the cold
run), then re-runs the same command ``--repeat`` times, every case read from the cache. Each
run is the command line a user types, in a fresh process, so start-up counts. Prints the cold
and cached seconds, the share, and where a cached run's time goes: the interpreter and the
command-line module's imports (``python -X importtime``-style: the import alone, in a fresh
process), and the phases of the command itself (manifest validation, parameters, cache keys
and reads, writing the table), from one in-process run.

Usage (on a shared machine, under its lock, so that the timings are the machine's)::

    flock /work/heavy.lock .venv/bin/python benchmarks/cached_rerun.py [--patients 32]
        [--jobs 2] [--repeat 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RADFUSION = Path(sys.executable).with_name("radfusion")
#: What ``radfusion extract`` imports after the command-line module.
FEATURE_MODULES = (
    "radfusion.features.manifest",
    "radfusion.features.runner",
    "radfusion.features.table",
)


def timed(command: list[str]) -> float:
    """Wall seconds of a command in a fresh process (its output checked, not shown)."""
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def phases(manifest: Path, out: Path, cache: Path, jobs: int) -> dict[str, float]:
    """Seconds of each phase of one cached extraction, in this process (imports done)."""
    from radfusion.features.manifest import validate_cohort
    from radfusion.features.runner import extract_cohort
    from radfusion.features.table import write_extraction

    clock = {}
    start = time.perf_counter()
    table, _ = validate_cohort(manifest, check_images=False)
    clock["validate the manifest"] = time.perf_counter() - start
    start = time.perf_counter()
    result = extract_cohort(table, n_jobs=jobs, progress=False, cache_dir=cache)
    clock["parameters, cache keys and reads, table"] = time.perf_counter() - start
    assert result.n_cached == len(result.diagnostics), result.summary()
    start = time.perf_counter()
    write_extraction(result, out)
    clock["write the table and sidecars"] = time.perf_counter() - start
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=32)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="radfusion-rerun-") as folder:
        folder = Path(folder)
        cohort, cache, out = folder / "cohort", folder / "cache", folder / "features.parquet"
        subprocess.run(
            [str(RADFUSION), "synth", "--out", str(cohort), "--patients", str(args.patients)],
            check=True,
            capture_output=True,
        )
        manifest = cohort / "manifest.csv"
        extract = [str(RADFUSION), "extract", str(manifest), "--out", str(out)]
        extract += ["--cache", str(cache), "--jobs", str(args.jobs), "--quiet"]
        cases = sum(1 for _ in manifest.open()) - 1
        cold = timed(extract)
        cached = [timed(extract) for _ in range(args.repeat)]
        python = [timed([sys.executable, "-c", "pass"]) for _ in range(args.repeat)]
        imports = [
            timed([sys.executable, "-c", "import radfusion.pipeline.cli"])
            for _ in range(args.repeat)
        ]
        features = [
            timed([sys.executable, "-c", f"import {', '.join(FEATURE_MODULES)}"])
            for _ in range(args.repeat)
        ]
        inside = phases(manifest, folder / "again.parquet", cache, args.jobs)
    best, median = min(cached), statistics.median(cached)
    print(f"cohort: {args.patients} patients, {cases} cases, {args.jobs} workers")
    print(f"cold run (fresh cache)      {cold:8.2f} s")
    print(f"cached re-run (best)        {best:8.2f} s   {best / cold:6.1%} of the cold run")
    print(f"cached re-run (median of {args.repeat}) {median:8.2f} s   {median / cold:6.1%}")
    print("where a cached re-run's time goes (best of the repeats; phases from one run):")
    print(f"  python start-up             {min(python):6.2f} s")
    print(f"  import radfusion.pipeline.cli {min(imports) - min(python):4.2f} s")
    print(f"  import the extraction modules {min(features) - min(python):4.2f} s")
    for phase, seconds in inside.items():
        print(f"  {phase:<27} {seconds:6.2f} s")


if __name__ == "__main__":
    main()
