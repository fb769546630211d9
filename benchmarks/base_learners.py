"""Base learners for wide tables on the six radMLBench tables, and the rule that picks defaults.

Usage:
    python benchmarks/base_learners.py [--learners NAME ...] [--datasets NAME ...]
                                       [--folds 5] [--repeats 3] [--seed 0] [--jobs 2]
                                       [--out radfusion-out/base_learners]

Pre-registered (written and committed before the comparison was run; the numbers it produces
do not change this text).

Candidates, each one branch on all the features of the table (impute -> drop constants ->
scale -> learner, i.e. ``build_model(groups, "early", learner=NAME, random_state=seed)``):

- current defaults: ``lr`` (L2, C=0.1, balanced), ``svm`` (RBF + Platt), ``rf`` (200 trees,
  sqrt), ``xgb`` (200 depth-3 trees);
- ``l1``: L1 logistic regression (liblinear), C chosen among 7 values 10^-2..10^1 by inner
  5-fold ``AdaptiveStratifiedKFold`` on the training rows by log-loss, balanced weights;
- ``enet``: elastic-net logistic regression (saga, l1_ratio 0.5), C chosen as for ``l1``;
- ``et``: extra-trees, 500 trees, ``max_features="sqrt"``, balanced bootstrap weights;
- ``lr_mrmr``: ``lr`` after mRMR selection of the top 20 features inside the branch
  (``select_k=20, select_method="mrmr"``), fitted on the training rows of each fold.

Protocol: the same stratified 5 folds x 3 repeats (seed 0) for every candidate on every table
(5 x 2 if it cannot finish in time; the output says which). Per table and candidate: ROC AUC,
mean over repeats of the pooled out-of-fold AUC, with a 95 % patient-bootstrap CI
(:func:`radfusion.pipeline.validation.summarize`), the Brier score, the gap to the published
radMLBench ``best_auc`` (optimistic: best of 616 pipelines x 4 thresholds, not nested), and
the wall time of its CV (on a busy shared machine: indicative only).

Rule (families: linear = lr <- {l1, enet, lr_mrmr}; forest = rf <- {et}; svm and xgb have no
challenger):

1. A challenger replaces the current default of its family when its mean AUC over the six
   tables is higher by >= 0.010 AND its AUC is higher on >= 4 of the 6 tables. Equal AUC on a
   table is not a win; a table where the challenger fails counts as a loss and leaves it without
   a mean, so it cannot win. If several challengers of one family qualify, the one with the
   highest mean replaces the default. Otherwise (ties included) the current default stays.
2. The default learner of single / early / late models (today ``lr``) is replaced by the
   candidate with the highest six-table mean only if that candidate beats the linear family's
   winner from step 1 by the same margin (>= 0.010 mean AND >= 4 of 6 tables).
3. Brier score and cost are reported next to the rule and do not enter it.

The script applies the rule and prints what it says to change; it changes no default itself.

Outputs under ``--out``: ``results.csv`` (one row per learner x table, rewritten after each),
``base_learners.md`` (tables and the rule's verdict) and ``predictions/<learner>.csv.gz``.
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from joblib import Parallel, delayed
from modelling import fmt_num as fmt  # a sibling script
from modelling import markdown_table, timed_args_cv, write_csv
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from radfusion.pipeline.dataset import Dataset, load_dataset
from radfusion.pipeline.fusion import build_model
from radfusion.pipeline.validation import summarize

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radmlbench"
#: Candidate name -> build_model keyword arguments (besides groups, "early", random_state).
CANDIDATES: dict[str, dict[str, Any]] = {
    "lr": {"learner": "lr"},
    "l1": {"learner": "l1"},
    "svm": {"learner": "svm"},
    "xgb": {"learner": "xgb"},
    "rf": {"learner": "rf"},
    "et": {"learner": "et"},
    "lr_mrmr": {"learner": "lr", "select_k": 20, "select_method": "mrmr"},
    "enet": {"learner": "enet"},
}
"""In run order, cheapest first (partial results are written as they come)."""
FAMILIES = {"lr": ("l1", "enet", "lr_mrmr"), "rf": ("et",), "svm": (), "xgb": ()}
MARGIN, MIN_WINS = 0.010, 4


def published_best() -> dict[str, float]:
    """radMLBench ``best_auc`` (maximum over decorrelation thresholds) by dataset."""
    path = SHARED / "published_results" / "decorrelation_auc_10x30cv.csv"
    with path.open() as handle:
        return {row["dataset"]: float(row["best_auc"]) for row in csv.DictReader(handle)}


def run_one(
    name: str, model: BaseEstimator, data: Dataset, args: argparse.Namespace
) -> tuple[pd.DataFrame, float]:
    """Out-of-fold predictions of one candidate on one table, and the CV's wall time."""
    return timed_args_cv({name: model}, data, args)


def means(rows: list[dict[str, Any]], tables: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per candidate: AUC by table (NaN where missing or failed)."""
    out: dict[str, dict[str, float]] = {}
    for r in rows:
        out.setdefault(r["learner"], {})[r["dataset"]] = (
            r["auc"] if r["auc"] is not None else math.nan
        )
    return {m: {t: by.get(t, math.nan) for t in tables} for m, by in out.items()}


def beats(challenger: dict[str, float], default: dict[str, float]) -> tuple[bool, float, int]:
    """(qualifies, mean difference, tables won) under the pre-registered rule."""
    c, d = pd.Series(challenger), pd.Series(default)
    diff = c.mean(skipna=False) - d.mean(skipna=False)
    wins = int((c > d).sum())
    ok = bool(math.isfinite(diff) and diff >= MARGIN - 1e-12 and wins >= MIN_WINS)
    return ok, diff, wins


def apply_rule(auc: dict[str, dict[str, float]]) -> list[str]:
    """The rule's verdict, one line per decision."""
    lines, winners = [], {}
    for default, challengers in FAMILIES.items():
        if default not in auc:
            lines.append(f"- {default}: not run; no verdict")
            continue
        winners[default] = default
        qualified = []
        for c in challengers:
            if c not in auc:
                lines.append(f"- {c} vs {default}: not run")
                continue
            ok, diff, wins = beats(auc[c], auc[default])
            lines.append(
                f"- {c} vs {default}: mean difference {diff:+.3f}, wins {wins}/{len(auc[c])}"
                f" -> {'qualifies' if ok else 'does not qualify'}"
            )
            if ok:
                qualified.append((pd.Series(auc[c]).mean(), c))
        if qualified:
            winners[default] = max(qualified)[1]
            lines.append(f"  => family {default}: {winners[default]} replaces {default}")
        elif challengers:
            lines.append(f"  => family {default}: {default} stays")
    if "lr" in winners:
        linear = winners["lr"]
        complete = {m: a for m, a in auc.items() if all(math.isfinite(v) for v in a.values())}
        best = max(complete, key=lambda m: pd.Series(complete[m]).mean(), default=None)
        if best is None:
            lines.append("- single/early/late learner: no candidate has every table yet")
        elif best == linear:
            lines.append(f"- single/early/late learner: {linear} (highest mean) -> {linear}")
        else:
            ok, diff, wins = beats(auc[best], auc[linear])
            choice = best if ok else linear
            lines.append(
                f"- single/early/late learner: best mean {best} vs linear winner {linear}: "
                f"{diff:+.3f}, wins {wins}/{len(auc[best])} -> {choice}"
            )
    return lines


def report(rows: list[dict[str, Any]], tables: Sequence[str], args: argparse.Namespace) -> str:
    by = {(r["learner"], r["dataset"]): r for r in rows}
    names = list(dict.fromkeys(r["learner"] for r in rows))
    auc = means(rows, tables)

    def cell(name: str, table: str) -> str:
        r = by.get((name, table))
        if r is None:
            return "-"
        if r["auc"] is None:
            return "error"
        return f"{r['auc']:.3f} [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"

    def row_mean(name: str, key: str) -> float:
        values = [by[(name, t)][key] if (name, t) in by else None for t in tables]
        return math.nan if None in values else sum(values) / len(values)

    auc_rows = [
        [name, *(cell(name, t) for t in tables), fmt(row_mean(name, "auc"))] for name in names
    ]
    brier_rows = [
        [
            name,
            *(fmt(by[(name, t)]["brier"]) if (name, t) in by else "-" for t in tables),
            fmt(row_mean(name, "brier")),
        ]
        for name in names
    ]
    gap_rows = [
        [
            name,
            *(fmt(by[(name, t)]["gap_to_published"]) if (name, t) in by else "-" for t in tables),
            fmt(row_mean(name, "gap_to_published")),
        ]
        for name in names
    ]
    time_rows = [
        [
            name,
            *(fmt(by[(name, t)]["seconds"], 1) if (name, t) in by else "-" for t in tables),
            fmt(sum(by[(name, t)]["seconds"] for t in tables if (name, t) in by), 0),
        ]
        for name in names
    ]
    wins_rows = []
    for default, challengers in FAMILIES.items():
        for c in challengers:
            if c in auc and default in auc:
                _, diff, wins = beats(auc[c], auc[default])
                wins_rows.append([f"{c} vs {default}", f"{diff:+.3f}", f"{wins}/{len(tables)}"])
    pub = published_best()
    setup = f"{args.folds} folds x {args.repeats} repeats, seed {args.seed}, n_jobs {args.jobs}"
    return "\n".join(
        [
            "# Base learners for wide tables (radMLBench)",
            "",
            f"## ROC AUC, mean over repeats [95 % CI] ({setup})",
            "",
            markdown_table(["learner", *tables, "mean"], auc_rows),
            "",
            "Published best_auc: " + ", ".join(f"{t} {fmt(pub.get(t))}" for t in tables),
            "",
            "## Brier score",
            "",
            markdown_table(["learner", *tables, "mean"], brier_rows),
            "",
            "## Gap to the published best_auc (ours - published)",
            "",
            markdown_table(["learner", *tables, "mean"], gap_rows),
            "",
            "## Challengers against their family default",
            "",
            markdown_table(["comparison", "mean AUC difference", "tables won"], wins_rows),
            "",
            "## The pre-registered rule says",
            "",
            *apply_rule(auc),
            "",
            "## Wall time of each CV, seconds (busy shared 2-core machine: indicative only)",
            "",
            markdown_table(["learner", *tables, "total"], time_rows),
            "",
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", nargs="+", choices=list(CANDIDATES), metavar="NAME")
    parser.add_argument("--datasets", nargs="+", metavar="NAME")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="joblib workers over folds")
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/base_learners"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not SHARED.exists():
        raise SystemExit(f"shared data not found: {SHARED}")
    paths = sorted((SHARED / "datasets").glob("*.gz"))
    if args.datasets:
        paths = [p for p in paths if p.name.removesuffix(".gz") in args.datasets]
    tables = [p.name.removesuffix(".gz") for p in paths]
    data = {t: load_dataset(p, label="Target") for t, p in zip(tables, paths, strict=True)}
    pub = published_best()
    (args.out / "predictions").mkdir(parents=True, exist_ok=True)
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with threadpool_limits(limits=1):
        # start the worker pool before timing anything
        Parallel(n_jobs=args.jobs)(delayed(abs)(i) for i in range(4 * max(1, args.jobs)))
        for name in args.learners or CANDIDATES:
            frames = []
            for table in tables:
                d = data[table]
                row: dict[str, Any] = {"learner": name, "dataset": table, "auc": None}
                try:
                    model = build_model(
                        d.groups, "early", random_state=args.seed, **CANDIDATES[name]
                    )
                    predictions, seconds = run_one(name, model, d, args)
                    metrics = summarize(predictions, seed=args.seed)[name]
                    auc = metrics["roc_auc"]
                    row.update(
                        auc=auc["mean"],
                        ci_low=auc["ci_low"],
                        ci_high=auc["ci_high"],
                        brier=metrics["brier"]["mean"],
                        gap_to_published=auc["mean"] - pub[table],
                        seconds=seconds,
                        error="",
                    )
                    frames.append(predictions.assign(dataset=table))
                except Exception as error:  # report and go on
                    traceback.print_exc()
                    row.update(
                        ci_low=None,
                        ci_high=None,
                        brier=None,
                        gap_to_published=None,
                        seconds=None,
                        error=f"{type(error).__name__}: {error}",
                    )
                rows.append(row)
                print(
                    f"{name:<8} {table:<18} AUC {fmt(row['auc'])} "
                    f"[{fmt(row['ci_low'], 2)}, {fmt(row['ci_high'], 2)}] "
                    f"Brier {fmt(row['brier'])} gap {fmt(row['gap_to_published'])} "
                    f"{fmt(row['seconds'], 1)} s {row['error']}",
                    flush=True,
                )
                write_csv(args.out / "results.csv", rows)
                (args.out / "base_learners.md").write_text(report(rows, tables, args))
            if frames:
                pd.concat(frames, ignore_index=True).to_csv(
                    args.out / "predictions" / f"{name}.csv.gz", index=False
                )
    print("\n" + report(rows, tables, args), flush=True)
    print(f"Total {time.perf_counter() - started:.0f} s; outputs in {args.out}", flush=True)


if __name__ == "__main__":
    main()
