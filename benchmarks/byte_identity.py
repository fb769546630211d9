"""Do two versions of radfusion give the same numbers? Digests of default ``cv`` runs.

Runs the default ``cv`` (the default comparison, 5 folds x 3 repeats, seed 0) on the demo
cohort's feature table and on the six shared radMLBench tables, then prints, per run, the
SHA-256 of ``predictions.csv`` and of each computed section of ``report.json`` (the metrics,
comparisons, fusion benefit, explanations, cohort, curves, evaluability, checklists).
``--save FILE`` writes the digests; ``--compare FILE`` prints which differ from a saved run
(exit 1 when any does). A refactoring that must not change behaviour is checked by saving
before and comparing after.

The demo's feature table is extracted once into ``--work`` and reused, so a change of the
extraction side does not show up as a change of the modelling side. Extra runs (``--extended``)
cover regression, multiclass, survival and the options (harmonisation, filters, selection,
tuning, calibration, combiners) on the demo table at small size.

    .venv/bin/python benchmarks/byte_identity.py --save before.json
    .venv/bin/python benchmarks/byte_identity.py --compare before.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radmlbench"
TABLES = (
    "C4KC-KiTS",
    "HCC-TACE-Seg",
    "HNSCC",
    "Head-Neck-PET-CT",
    "LGG-1p19qDeletion",
    "Song2020",
)
#: report.json sections whose content is numbers the modelling side computes.
SECTIONS = (
    "models",
    "comparisons",
    "fusion_benefit",
    "explanations",
    "cohort",
    "curves",
    "groups",
    "best",
    "primary",
    "data",
    "evaluability",
    "checklists",
)


def digest(data: Any) -> str:
    """SHA-256 of a JSON value written with sorted keys."""
    text = json.dumps(data, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def demo_table(work: Path) -> tuple[Path, Path]:
    """The demo cohort's features and biomarkers, extracted once into ``work``."""
    features = work / "demo" / "features.parquet"
    cohort = work / "demo" / "cohort"
    if not features.exists():
        cli = [str(Path(sys.executable).with_name("radfusion"))]
        synth = ["synth", "--out", str(cohort), "--patients", "120", "--seed", "0"]
        subprocess.run([*cli, *synth], check=True)
        extract = [str(cohort / "manifest.csv"), "--out", str(features), "--jobs", "2", "--quiet"]
        subprocess.run([*cli, "extract", *extract], check=True)
    return features, cohort / "biomarkers.csv"


def extended_table(work: Path, biomarkers: Path) -> Path:
    """The demo biomarkers without the outcome, with a seeded survival time and event and a
    three-class ``grade``, for the survival and multiclass runs."""
    import numpy as np

    out = work / "demo" / "extended_biomarkers.csv"
    if not out.exists():
        bio = pd.read_csv(biomarkers, dtype={"patient_id": str})
        rng = np.random.default_rng(0)
        risk = bio["outcome"].to_numpy() + rng.normal(0, 1, len(bio))
        bio["time"] = np.round(rng.exponential(24 * np.exp(-0.5 * risk)) + 1, 1)
        bio["event"] = (rng.random(len(bio)) < 0.7).astype(int)
        bio["grade"] = np.digitize(risk, np.quantile(risk, [1 / 3, 2 / 3]))
        bio.drop(columns=["outcome"]).to_csv(out, index=False)
    return out


def runs(work: Path, extended: bool) -> dict[str, dict[str, Any]]:
    """Run name -> keyword arguments of ``run_cv``."""
    features, biomarkers = demo_table(work)
    out: dict[str, dict[str, Any]] = {
        "demo": dict(features=features, biomarkers=biomarkers, label="outcome"),
    }
    for name in TABLES:
        path = SHARED / "datasets" / f"{name}.gz"
        if path.exists():
            out[name] = dict(features=path, label="Target")
    if extended:
        small = dict(features=features, biomarkers=biomarkers, folds=3, repeats=1)
        out["demo-options"] = dict(
            small,
            label="outcome",
            params=dict(
                harmonize="site", correlation_threshold=0.9, select_k=10, combiner="logistic"
            ),
        )
        out["demo-tune"] = dict(
            small,
            label="outcome",
            params=dict(tune=True, n_iter=3, learners=("lr", "rf")),
            strategies=("single", "stacking"),
        )
        out["demo-calibration"] = dict(
            small,
            label="outcome",
            params=dict(calibration="sigmoid", combiner="convex", select_method="mrmr", select_k=5),
            strategies=("late", "stacking"),
        )
        extended = extended_table(work, biomarkers)
        out["demo-multiclass"] = dict(
            small,
            biomarkers=extended,
            label="grade",
            task="multiclass",
            strategies=("late", "stacking"),
        )
        out["demo-regression"] = dict(small, label="age", task="regression")
        out["demo-survival"] = dict(
            small,
            biomarkers=extended,
            task="survival",
            time="time",
            event="event",
            n_bootstrap=50,
        )
        out["demo-loso"] = dict(
            features=features,
            biomarkers=biomarkers,
            label="outcome",
            group_by="site",
            strategies=("single", "late", "stacking"),
        )
    return out


def run_one(name: str, kwargs: dict[str, Any], work: Path) -> dict[str, str]:
    from radfusion.pipeline.experiment import run_cv

    out = work / "runs" / name
    kwargs = dict(kwargs)
    kwargs.setdefault("n_jobs", 2)
    kwargs.setdefault("seed", 0)
    report = run_cv(out=out, **kwargs)
    digests = {"predictions.csv": hashlib.sha256((out / "predictions.csv").read_bytes())}
    digests = {k: v.hexdigest()[:16] for k, v in digests.items()}
    for section in SECTIONS:
        if section in report:
            digests[section] = digest(report[section])
    digests["methods.text"] = digest((report.get("methods") or {}).get("text"))
    return digests


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("radfusion-out/byte_identity"))
    parser.add_argument("--save", type=Path, help="add the digests to this JSON file")
    parser.add_argument("--compare", type=Path, help="compare with digests saved earlier")
    parser.add_argument("--extended", action="store_true", help="also the small option runs")
    parser.add_argument("--only", nargs="*", help="run only these names")
    args = parser.parse_args(argv)

    plan = runs(args.work, args.extended)
    if args.only:
        plan = {k: v for k, v in plan.items() if k in args.only}
    results: dict[str, dict[str, str]] = {}
    for name, kwargs in plan.items():
        started = time.perf_counter()
        results[name] = run_one(name, kwargs, args.work)
        print(f"{name}: {time.perf_counter() - started:.0f} s", flush=True)
        for key, value in results[name].items():
            print(f"  {key:18} {value}")
    if args.save:  # merged into an earlier save of other runs
        saved = json.loads(args.save.read_text()) if args.save.exists() else {}
        saved.update(results)
        args.save.write_text(json.dumps(saved, indent=1, sort_keys=True) + "\n")
    if args.compare:
        saved = json.loads(args.compare.read_text())
        differ = [
            f"{name}.{key}: {saved[name].get(key)} -> {value}"
            for name, digests in results.items()
            if name in saved
            for key, value in digests.items()
            if saved[name].get(key) != value
        ]
        missing = [name for name in results if name not in saved]
        print("\n".join(differ) or "every digest equal", flush=True)
        if missing:
            print(f"not in the saved run: {', '.join(missing)}")
        return 1 if differ else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
