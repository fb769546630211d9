"""`radfusion cv` on every shared radMLBench table, next to the published AUCs.

Usage: python benchmarks/radmlbench.py [--out DIR] [--folds 5] [--repeats 3] [--jobs 2]

Prints, per table: the groups inferred, ROC AUC (mean [95 % CI]) of the best single group,
early, late and stacking fusion, the best published AUC (radMLBench, 10x30 CV, maximum over
616 pipelines on the same folds without nesting, hence optimistic) and the wall time.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

from pipeline.experiment import FUSED, run_cv

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radmlbench"


def published_auc() -> dict[str, str]:
    """Published AUC without decorrelation, and the best over decorrelation thresholds."""
    path = SHARED / "published_results" / "decorrelation_auc_10x30cv.csv"
    with path.open() as handle:
        rows = list(csv.DictReader(handle))
    return {
        row["dataset"]: f"{float(row['auc_thr_1.00']):.3f} / {float(row['best_auc']):.3f}"
        for row in rows
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/radmlbench"))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=-1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not SHARED.exists():
        raise SystemExit(f"shared data not found: {SHARED}")
    published = published_auc()

    def fmt(auc: dict) -> str:
        return f"{auc['mean']:.3f} [{auc['ci_low']:.2f}, {auc['ci_high']:.2f}]"

    header = ("dataset", "groups", "best single", "early", "late", "stacking",
              "published (thr 1.0 / best)", "seconds")
    print(" | ".join(header))
    for table in sorted((SHARED / "datasets").glob("*.gz")):
        name = table.name.removesuffix(".gz")
        started = time.perf_counter()
        report = run_cv(table, label="Target", out=args.out / name, folds=args.folds,
                        repeats=args.repeats, seed=args.seed, n_jobs=args.jobs)
        seconds = time.perf_counter() - started
        aucs = {m: r["metrics"]["roc_auc"] for m, r in report["models"].items()}
        singles = {m: a for m, a in aucs.items() if m not in FUSED}
        best_single = max(singles, key=lambda m: singles[m]["mean"]) if singles else None
        row = (
            name,
            "/".join(report["data"]["groups"]),
            f"{best_single} {fmt(singles[best_single])}" if best_single else "-",
            *(fmt(aucs[m]) if m in aucs else "-" for m in FUSED),
            published.get(name, "-"),
            f"{seconds:.0f}",
        )
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
