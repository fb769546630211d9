"""Benchmark: FusionSurvival strategies next to plain scikit-survival baselines (issue 11).

Tables (scikit-survival ships them; nothing is downloaded):

- ``gbsg2``: German Breast Cancer Study Group 2, 686 patients, 8 clinical columns (one group);
- ``whas500``: Worcester Heart Attack Study, 500 patients, 14 clinical columns (one group);
- ``breast_cancer``: 198 patients, 76 gene-expression columns and 4 clinical ones: two
  groups, ``genes`` and ``clinical``;
- ``synthetic`` (with ``--features`` and ``--biomarkers``): a ``radfusion synth --outcome
  survival`` cohort after ``radfusion extract`` (groups ``CT__tumor``, ``MR__tumor``, … and
  ``clinical``; the binary ``outcome`` and ``site`` columns are left out).

Every model is fitted on the training rows of the same event-stratified folds
(:class:`radfusion.pipeline.survival.EventStratifiedKFold`, ``--folds`` × ``--repeats``, seed
``--seed``). Models: ``sksurv_coxnet`` (median imputation, standardisation and
``CoxnetSurvivalAnalysis`` with scikit-survival's defaults, l1_ratio 0.5, predicting at the
smallest penalty of its path), ``sksurv_rsf`` (``RandomSurvivalForest`` defaults, 100 trees);
then, for a table of several groups, each single group (``FusionSurvival("single",
learner="coxnet")``), and ``early`` (coxnet), ``late`` (coxnet per group; one group: the
learners' vote) and ``stacking`` (every group × ``--learners``).

Printed per table and model: Harrell's C (mean over folds ± SD), integrated Brier score (per
fold, censoring weights from the whole table, grid of 50 times between the 10th and 90th
percentile of the follow-up; mean ± SD) and the wall time of all its fits. For a table of
several groups, the ΔC-index (pooled out-of-fold risks of the first repeat, paired
event-stratified patient bootstrap, ``--n-boot`` replicates) of each fused model over the
best single group (highest mean C; chosen on these same folds, hence favouring the single
group). Times are wall clock on whatever else the machine is running.

Usage::

    python benchmarks/survival.py [--tables gbsg2 whas500 breast_cancer] [--folds 5]
        [--repeats 1] [--seed 0] [--learners coxnet rsf gbsa] [--n-boot 1000]
        [--features F.parquet --biomarkers B.csv] [--shuffle 0]

``--shuffle K`` adds, per table, the permuted-outcome law: every model's mean per-fold
C-index over K draws of shuffled (time, event) pairs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.base import clone  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sksurv.column import encode_categorical  # noqa: E402
from sksurv.datasets import load_breast_cancer, load_gbsg2, load_whas500  # noqa: E402
from sksurv.ensemble import RandomSurvivalForest  # noqa: E402
from sksurv.linear_model import CoxnetSurvivalAnalysis  # noqa: E402
from sksurv.metrics import concordance_index_censored, integrated_brier_score  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from radfusion.pipeline.fusion import FusionSurvival  # noqa: E402
from radfusion.pipeline.survival import (  # noqa: E402
    EventStratifiedKFold,
    check_survival_y,
    survival_target_from_table,
)
from radfusion.pipeline.survival_metrics import c_index_difference, ibs_times  # noqa: E402
from radfusion.pipeline.tables import read_table  # noqa: E402

LOADERS = {"gbsg2": load_gbsg2, "whas500": load_whas500, "breast_cancer": load_breast_cancer}
FUSED = ("early", "late", "stacking")


def sksurv_table(name: str) -> tuple[pd.DataFrame, np.ndarray, dict[str, list[str]] | None]:
    """A scikit-survival table with its categories one-hot encoded, the target, the groups."""
    X, y = LOADERS[name]()
    X = encode_categorical(X).astype(float)
    X.index = [f"P{i:04d}" for i in range(len(X))]
    groups = None
    if name == "breast_cancer":  # gene expression columns are named X<probe id>
        genes = [c for c in X if c.startswith("X")]
        groups = {"genes": genes, "clinical": [c for c in X if c not in genes]}
    return X, check_survival_y(y, X.index), groups


def synthetic_table(features: Path, biomarkers: Path):
    """The extracted synthetic cohort joined with its biomarkers; groups inferred."""
    table = read_table(features).set_index("patient_id")
    bio = read_table(biomarkers).set_index("patient_id")
    y = survival_target_from_table(bio, file=str(biomarkers))
    # text categories one-hot encoded here, for the scikit-survival baselines
    clinical = pd.get_dummies(
        bio.drop(columns=["outcome", "time", "event"], errors="ignore"),
        drop_first=True,
        dtype=float,
    )
    X = table.drop(columns=[c for c in ("site",) if c in table]).join(clinical, how="left")
    return X.loc[bio.index], y, None


def baselines(seed: int) -> dict:
    return {
        "sksurv_coxnet": make_pipeline(
            SimpleImputer(strategy="median"),
            StandardScaler(),
            CoxnetSurvivalAnalysis(fit_baseline_model=True),
        ),
        "sksurv_rsf": make_pipeline(
            SimpleImputer(strategy="median"), RandomSurvivalForest(random_state=seed, n_jobs=1)
        ),
    }


def models(groups: list[str], seed: int, learners: tuple[str, ...], fixed) -> dict:
    found = dict(baselines(seed))
    common = {"random_state": seed, "groups": fixed}
    if len(groups) > 1:
        for group in groups:
            found[f"single:{group}"] = FusionSurvival("single", use_groups=[group], **common)
    for strategy in FUSED:
        found[strategy] = FusionSurvival(strategy, learners=learners, **common)
    return found


def survival_matrix(model, X, grid) -> np.ndarray:
    if isinstance(model, FusionSurvival):
        return model.predict_survival(X, grid)
    return np.vstack([fn(grid) for fn in model.predict_survival_function(X)])


def run_table(name, X, y, groups, args) -> None:
    probe = FusionSurvival("early", groups=groups).fit(X, y)  # the groups the models will see
    names = list(probe.groups_)
    splits = list(
        EventStratifiedKFold(args.folds, repeats=args.repeats, random_state=args.seed).split(X, y)
    )
    grid = ibs_times(y)
    print(
        f"\n== {name}: {len(y)} patients, {int(y['event'].sum())} events, {X.shape[1]} columns, "
        f"groups {', '.join(f'{g} ({len(c)})' for g, c in probe.groups_.items())}; "
        f"{len(splits)} folds",
        flush=True,
    )
    results = {}
    first_repeat = len(splits) // args.repeats
    for label, model in models(names, args.seed, tuple(args.learners), groups).items():
        c_scores, ibs_scores = [], []
        pooled = np.full(len(y), np.nan)
        start = time.perf_counter()
        for k, (train, test) in enumerate(splits):
            fitted = clone(model).fit(X.iloc[train], y[train])
            risk = fitted.predict(X.iloc[test])
            if k < first_repeat:
                pooled[test] = risk
            c_scores.append(concordance_index_censored(y["event"][test], y["time"][test], risk)[0])
            inside = (grid >= y["time"][test].min()) & (grid < y["time"][test].max())
            surv = survival_matrix(fitted, X.iloc[test], grid[inside])
            # censoring weights from the whole table, as survival_metrics does for pooled
            # predictions (a test fold may outlast its training rows' follow-up)
            ibs_scores.append(integrated_brier_score(y, y[test], surv, grid[inside]))
        seconds = time.perf_counter() - start
        results[label] = (np.mean(c_scores), pooled)
        print(
            f"  {label:22s} C {np.mean(c_scores):.3f} ± {np.std(c_scores):.3f}   "
            f"IBS {np.mean(ibs_scores):.3f} ± {np.std(ibs_scores):.3f}   {seconds:6.1f} s",
            flush=True,
        )
    singles = {k: v for k, v in results.items() if k.startswith("single:")}
    if singles:
        best = max(singles, key=lambda k: singles[k][0])
        print(f"  ΔC over the best single group ({best}), pooled first repeat, paired bootstrap:")
        for strategy in FUSED:
            d = c_index_difference(
                y, results[strategy][1], singles[best][1], n_boot=args.n_boot, seed=args.seed
            )
            print(
                f"    {strategy:9s} ΔC {d['delta']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"
                f"  p = {d['p_value']:.3f}",
                flush=True,
            )


def null_table(name, X, y, groups, args) -> None:
    """The permuted-outcome law: (time, event) pairs shuffled over patients, every model's
    mean per-fold C-index over ``--shuffle`` draws (expected 0.5)."""
    rng = np.random.default_rng(args.seed)
    probe = FusionSurvival("early", groups=groups).fit(X, y)
    scores: dict[str, list[float]] = {}
    for draw in range(args.shuffle):
        shuffled = y[rng.permutation(len(y))]
        splits = EventStratifiedKFold(args.folds, random_state=args.seed + draw).split(X, shuffled)
        for train, test in splits:
            found = models(list(probe.groups_), args.seed, tuple(args.learners), groups)
            for label, model in found.items():
                risk = clone(model).fit(X.iloc[train], shuffled[train]).predict(X.iloc[test])
                event, time_ = shuffled["event"][test], shuffled["time"][test]
                scores.setdefault(label, []).append(
                    concordance_index_censored(event, time_, risk)[0]
                )
    print(f"\n== {name}, shuffled (time, event), {args.shuffle} draws x {args.folds} folds:")
    for label, values in scores.items():
        print(f"  {label:22s} C {np.mean(values):.3f} (SD over folds {np.std(values):.3f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", nargs="*", default=list(LOADERS), choices=list(LOADERS))
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--learners", nargs="+", default=["coxnet", "rsf", "gbsa"])
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--features", type=Path)
    parser.add_argument("--biomarkers", type=Path)
    parser.add_argument(
        "--shuffle", type=int, default=0, help="Also run this many shuffled-outcome draws."
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    with threadpool_limits(1):
        tables = {name: sksurv_table(name) for name in args.tables}
        if args.features is not None:
            tables["synthetic"] = synthetic_table(args.features, args.biomarkers)
        for name, table in tables.items():
            run_table(name, *table, args)
            if args.shuffle:
                null_table(name, *table, args)


if __name__ == "__main__":
    main()
