"""What the branch SHAP values of the headline model cost, and that they are exact (issue 27).

Usage:
    python benchmarks/shap_branches.py [--features F --biomarkers B] [--folds 5] [--seed 0]

On the demo cohort (``make demo`` writes it), for each outer fold of a stratified K-fold: fits
the default (headline) model on the training rows, then times
:func:`radfusion.pipeline.validation._shap.branch_shap` on the held-out rows against the
fit, and prints per branch the learner kind, the rows explained and the largest additivity
error (|sum of SHAP values + base value - the learner's output|), unrounded.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sklearn.model_selection import StratifiedKFold

from radfusion.pipeline.dataset import load_dataset
from radfusion.pipeline.fusion import make_estimator
from radfusion.pipeline.validation._shap import branch_shap

DEMO = Path("radfusion-out/demo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=DEMO / "features.parquet")
    parser.add_argument("--biomarkers", type=Path, default=DEMO / "cohort" / "biomarkers.csv")
    parser.add_argument("--label", default="outcome")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = load_dataset(args.features, label=args.label, biomarkers=args.biomarkers)
    splits = StratifiedKFold(args.folds, shuffle=True, random_state=args.seed)
    fit_s = shap_s = 0.0
    worst: dict[str, tuple[str, int, float]] = {}
    for train, test in splits.split(data.table, data.y):
        estimator = make_estimator(task=data.task, random_state=args.seed)
        started = time.perf_counter()
        estimator.fit(data.table.iloc[train], data.y[train])
        fit_s += time.perf_counter() - started
        model, X_test = estimator.inner_model(data.table.iloc[test])
        started = time.perf_counter()
        record = branch_shap(model, X_test, name=estimator.strategy)
        shap_s += time.perf_counter() - started
        for name, part in record["branches"].items():
            kind, n, error = worst.get(name, (part["kind"], 0, 0.0))
            worst[name] = (kind, n + part["n"], max(error, part["additivity"]))
    print(f"{data.table.shape[0]} patients x {data.table.shape[1]} columns, {args.folds} folds")
    print(f"fit {fit_s:.1f} s, SHAP {shap_s:.2f} s ({100 * shap_s / fit_s:.1f} % of the fits)")
    for name, (kind, n, error) in worst.items():
        print(f"{name:<16} {kind:<7} {n:>4} held-out rows  additivity error {error:.1e}")


if __name__ == "__main__":
    main()
