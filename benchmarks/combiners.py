"""Which combiner should late fusion and stacking use by default? (issue 10 item 1)

Usage:
    python benchmarks/combiners.py [--datasets NAME ...] [--demo-features F --demo-biomarkers B]
                                   [--folds 5] [--seed 0] [--jobs 2] [--noise-seeds 3]
                                   [--out radfusion-out/combiners]

Cohorts: the six shared radMLBench tables (``radmlbench/datasets/*.gz``, label ``Target``) and
the synthetic demo cohort (``make demo`` writes ``radfusion-out/demo/features.parquet`` and
``cohort/biomarkers.csv``, label ``outcome``). One repeat of stratified ``--folds``-fold CV
(seed ``--seed``) per cohort.

Base-model predictions are shared by every combiner: in each outer fold the default stacking
model (every group x lr, svm, rf, xgb) is fitted once on the training rows; the inputs its
combiner is trained on (the branches' inner out-of-fold probabilities, NaN where a patient
lacks the group, then the missingness indicators) and its inputs on the held-out rows are kept,
and every combiner is fitted on the former and scores the latter, exactly as it would inside
its own model (``build_model(..., combiner=C)``). Two branch sets are scored:

- ``stacking``: every branch (group x learner);
- ``late``: the ``lr`` branch of each group (late fusion's branches; cohorts with >= 2 groups).

``mean`` is the soft vote over the branches a patient has (what ``combiner="mean"`` builds),
``platt`` that mean Platt-scaled on the inner out-of-fold mean (added later, issue 15 item 4,
and judged by its own rule in ``benchmarks/calibrated_mean.py``, not by the rule below),
``logistic`` the non-negative logistic meta-learner of radfusion <= 0.2 (C = 1, with the
indicators), ``best``/``convex``/``shrunk`` :class:`radfusion.pipeline.fusion.CombinerClassifier`.

Printed per cohort, branch set and combiner: ROC AUC (pooled out-of-fold) with its 95 %
stratified-bootstrap CI (1,000 replicates; :func:`radfusion.pipeline.validation.summarize`),
Brier score and calibration slope; the gap to the published best-of-grid AUC of radMLBench
(``best_auc``: the maximum over 616 pipelines x 4 decorrelation thresholds on 10 x 30 CV,
without nesting, hence optimistic); then the rule's verdict. ``--noise-seeds N`` adds the
no-signal check of issue 15 item 4: a pure-noise table (150 patients, 2 imaging groups of 100
features and one clinical column, base rate 1/3), per combiner the range and SD of the stacked
out-of-fold probabilities and the AUC, mean over N seeds.

Decision rule (written and committed before the comparison was run)
-------------------------------------------------------------------
For each branch set separately (``stacking``; ``late``), the default combiner is the simplest
combiner whose mean ROC AUC over the cohorts is within 0.005 of the highest mean ROC AUC, in
the order of simplicity ``mean`` < ``best`` < ``convex`` < ``shrunk`` < ``logistic`` (the
number of things each learns: nothing; one choice; a weight per branch; weights and an amount
of shrinkage; weights, intercept and scale). The mean is over the seven cohorts (six
radMLBench tables + demo) for ``stacking``, and over the cohorts with at least two groups for
``late``; all seven cohorts must have run for a verdict. Calibration (Brier, slope) and the
no-signal check are reported, not part of the rule. Multiclass and regression outcomes: no
shared table of either kind exists, so they take the binary verdict (every combiner supports
the three tasks); that is an extrapolation and the README says so.
"""

from __future__ import annotations

import argparse
import csv
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import special
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from radfusion.pipeline.dataset import Dataset, load_dataset
from radfusion.pipeline.fusion import (
    CombinerClassifier,
    NonNegativeLogisticRegression,
    build_model,
)
from radfusion.pipeline.fusion._combiners import (
    COMBINERS,
)
from radfusion.pipeline.validation import summarize

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radmlbench"
DEMO = Path("radfusion-out/demo")
TOLERANCE = 0.005
BRANCH_SETS = ("stacking", "late")
#: The pre-registered rule's combiners, simplest first (``platt`` came later, see above).
RULE_ORDER = ("mean", "best", "convex", "shrunk", "logistic")


class KeepInputs(CombinerClassifier):
    """A stand-in combiner that keeps what it is trained on (NaN where a branch is absent,
    as every combiner sees it)."""

    def fit(self, X, y):
        self.X_, self.y_, self.classes_ = np.asarray(X, dtype=float), np.asarray(y), np.unique(y)
        return self


def _combine(name: str, X: np.ndarray, y: np.ndarray, X_test: np.ndarray, n_free: int, seed: int):
    """P(class 1) of the held-out rows under combiner ``name`` fitted on (X, y)."""
    if name == "logistic":
        neutral = lambda Z: np.where(np.isnan(Z), 0.5, Z)  # noqa: E731 (the model's fill)
        model = NonNegativeLogisticRegression(n_free=n_free).fit(neutral(X), y)
        return model.predict_proba(neutral(X_test))[:, 1]
    model = CombinerClassifier(name, n_free=n_free, cv=5, random_state=seed).fit(X, y)
    return model.predict_proba(X_test)[:, 1]


def _fold(data: Dataset, train, test, seed: int) -> dict:
    """Every combiner's held-out probabilities for both branch sets, from one stacking fit."""
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a learned combiner, so that the model is a stack with inner CV (mean is a vote)
        model = build_model(data.groups, "stacking", random_state=seed, combiner="logistic")
        model.set_params(final_estimator=KeepInputs())
        model.fit(data.X.iloc[train], data.y[train])
        X_meta, y_meta = model.final_estimator_.X_, model.final_estimator_.y_
        X_test = model._transform(data.X.iloc[test])
        names = [name for name, _ in model.estimators]
        n_free = len(model.indicator_groups_)
        free = list(range(len(names), len(names) + n_free))
        columns = {"stacking": list(range(len(names)))}
        if len(data.groups) > 1:
            columns["late"] = [i for i, name in enumerate(names) if name.endswith(":lr")]
        out = {}
        for branch_set, cols in columns.items():
            keep = cols + free
            for name in COMBINERS:
                out[branch_set, name] = _combine(
                    name, X_meta[:, keep], y_meta, X_test[:, keep], n_free, seed
                )
        return out


def outer_splits(y: np.ndarray, folds: int, seed: int, repeats: int = 1) -> list:
    """One repeat: ``StratifiedKFold(folds, shuffle=True, random_state=seed)``; several: the
    CV engine's ``RepeatedStratifiedKFold(folds, repeats, random_state=seed)``."""
    if repeats == 1:
        return list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(y, y))
    return list(RepeatedStratifiedKFold(n_splits=folds, n_repeats=repeats, random_state=seed)
                .split(y, y))  # fmt: skip


def run_cohort(
    name: str, data: Dataset, folds: int, seed: int, jobs: int, repeats: int = 1
) -> list[dict]:
    """One row per (branch set, combiner): AUC with CI, Brier, slope (the mean over repeats
    of each repeat's pooled out-of-fold metric)."""
    splits = outer_splits(data.y, folds, seed, repeats)
    outputs = Parallel(n_jobs=jobs)(delayed(_fold)(data, tr, te, seed) for tr, te in splits)
    frames = []
    for i, ((_, test), out) in enumerate(zip(splits, outputs, strict=True)):
        r, f = divmod(i, folds)
        for (branch_set, combiner), proba in out.items():
            frames.append(
                pd.DataFrame(
                    {
                        "patient_id": data.X.index.to_numpy()[test],
                        "model": f"{branch_set}/{combiner}",
                        "repeat": r,
                        "fold": f,
                        "y_true": data.y[test],
                        "proba": proba,
                    }
                )
            )
    metrics = summarize(pd.concat(frames, ignore_index=True), n_bootstrap=1000, seed=seed)
    rows = []
    for model, m in metrics.items():
        branch_set, combiner = model.split("/")
        rows.append(
            {
                "cohort": name,
                "branches": branch_set,
                "combiner": combiner,
                "auc": m["roc_auc"]["mean"],
                "ci_low": m["roc_auc"]["ci_low"],
                "ci_high": m["roc_auc"]["ci_high"],
                "brier": m["brier"]["mean"],
                "slope": m["calibration_slope"]["mean"],
            }
        )
    return rows


def decide(table: pd.DataFrame, branch_set: str) -> tuple[str, pd.Series]:
    """The pre-registered rule: the simplest combiner within TOLERANCE of the best mean AUC."""
    means = table[table.branches.eq(branch_set)].groupby("combiner")["auc"].mean()
    means = means.reindex([c for c in RULE_ORDER if c in means.index])
    top = means.max()
    chosen = next(c for c in RULE_ORDER if c in means.index and means[c] >= top - TOLERANCE)
    return chosen, means


def noise_table(seed: int, n: int = 150, p: int = 100) -> SimpleNamespace:
    """Pure noise: two imaging groups and an age column, outcome unrelated (base rate 1/3)."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], [n - n // 3, n // 3]))
    columns = {
        f"{modality}__tumor__f{j}": values
        for modality in ("CT", "MR")
        for j, values in enumerate(rng.normal(size=(p, n)))
    }
    X = pd.DataFrame(columns, index=[f"N{i:03d}" for i in range(n)])
    X["age"] = rng.normal(60, 10, n)
    groups = {
        "CT__tumor": [c for c in X if c.startswith("CT__")],
        "MR__tumor": [c for c in X if c.startswith("MR__")],
        "clinical": ["age"],
    }
    return SimpleNamespace(X=X, y=y, groups=groups)


def run_noise(seeds: int, folds: int, jobs: int) -> pd.DataFrame:
    rows = []
    for seed in range(seeds):
        data = noise_table(seed)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(data.X, data.y))
        outputs = Parallel(n_jobs=jobs)(delayed(_fold)(data, tr, te, seed) for tr, te in splits)
        for combiner in COMBINERS:
            proba = np.empty(len(data.y))
            for (_, test), out in zip(splits, outputs, strict=True):
                proba[test] = out["stacking", combiner]
            rows.append(
                {
                    "seed": seed,
                    "combiner": combiner,
                    "min": proba.min(),
                    "max": proba.max(),
                    "sd": proba.std(),
                    "sd_logit": special.logit(np.clip(proba, 1e-6, 1 - 1e-6)).std(),
                    "auc": roc_auc_score(data.y, proba),
                }
            )
    return pd.DataFrame(rows).groupby("combiner", sort=False).mean().drop(columns="seed")


def published_best() -> dict[str, float]:
    path = SHARED / "published_results" / "decorrelation_auc_10x30cv.csv"
    with path.open() as handle:
        return {row["dataset"]: float(row["best_auc"]) for row in csv.DictReader(handle)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*")
    parser.add_argument("--demo-features", type=Path, default=DEMO / "features.parquet")
    parser.add_argument("--demo-biomarkers", type=Path, default=DEMO / "cohort" / "biomarkers.csv")
    parser.add_argument("--demo-label", default="outcome")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--noise-seeds", type=int, default=0)
    parser.add_argument("--skip-cohorts", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/combiners"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    cohorts: dict[str, object] = {}
    if not args.skip_cohorts:
        available = sorted(p.name.removesuffix(".gz") for p in (SHARED / "datasets").glob("*.gz"))
        for name in args.datasets if args.datasets is not None else available:
            cohorts[name] = lambda n=name: load_dataset(
                SHARED / "datasets" / f"{n}.gz", label="Target", id_column="ID"
            )
        if args.demo_features.exists():
            cohorts["demo"] = lambda: load_dataset(
                args.demo_features, label=args.demo_label, biomarkers=args.demo_biomarkers
            )
        else:
            print(f"no demo features at {args.demo_features}: run `make demo` first")
    rows: list[dict] = []
    for name, load in cohorts.items():
        started = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = load()
        rows += run_cohort(name, data, args.folds, args.seed, args.jobs)
        print(f"{name}: {time.perf_counter() - started:.0f} s (busy machine)", flush=True)
        pd.DataFrame(rows).to_csv(args.out / "combiners.csv", index=False)

    if rows:
        table = pd.DataFrame(rows)
        best = published_best()
        table["published_best"] = table.cohort.map(best)
        table["gap"] = table["auc"] - table["published_best"]
        table.to_csv(args.out / "combiners.csv", index=False)
        show = table.assign(
            auc_ci=[
                f"{a:.3f} [{lo:.2f}, {hi:.2f}]"
                for a, lo, hi in zip(table.auc, table.ci_low, table.ci_high, strict=True)
            ]
        )
        for branch_set in BRANCH_SETS:
            part = show[show.branches.eq(branch_set)]
            if part.empty:
                continue
            print(f"\n{branch_set} branches: ROC AUC [95 % CI] by cohort and combiner")
            print(part.pivot(index="cohort", columns="combiner", values="auc_ci")[
                list(COMBINERS)].to_string())  # fmt: skip
            for metric in ("brier", "slope", "gap"):
                print(f"\n{branch_set} branches: {metric}")
                print(part.pivot(index="cohort", columns="combiner", values=metric)[
                    list(COMBINERS)].round(3).to_string())  # fmt: skip
        complete = {
            "demo",
            *(p.name.removesuffix(".gz") for p in (SHARED / "datasets").glob("*.gz")),
        }
        print()
        for branch_set in BRANCH_SETS:
            chosen, means = decide(table, branch_set)
            print(f"{branch_set}: mean AUC " + ", ".join(f"{c} {v:.3f}" for c, v in means.items()))
            if set(table.cohort) >= complete:
                print(f"Rule: default combiner for {branch_set} = {chosen}")
            else:
                print(f"Rule needs all {len(complete)} cohorts; (would be {chosen})")

    if args.noise_seeds:
        noise = run_noise(args.noise_seeds, args.folds, args.jobs)
        noise.to_csv(args.out / "noise.csv")
        print(f"\nPure noise (base rate 0.333, {args.noise_seeds} seeds): stacked probabilities")
        print(noise.round(3).to_string())


if __name__ == "__main__":
    main()
