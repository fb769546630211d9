"""Single learners and fusion strategies on every shared radMLBench table, plus stacking's cost.

Usage:
    python benchmarks/modelling.py [--datasets NAME ...] [--folds 5] [--repeats 3] [--seed 0]
                                   [--jobs -1] [--out radfusion-out/modelling]
                                   [--tune] [--n-iter 20]
                                   [--cost-dataset Head-Neck-PET-CT] [--cost-n-iter 10]
                                   [--cost-folds 5] [--skip-cost | --cost-only] [--quick]

1. Models. For every table in ``radmlbench/datasets/*.gz`` (or the ``--datasets`` subset):
   ROC AUC, mean over repeats [95 % bootstrap CI] (:func:`radfusion.pipeline.validation.summarize`),
   of each single learner on all the features (``build_model(groups, "early", learner=L)`` for L in
   lr, svm, rf, xgb) and of each fusion strategy (early with lr, late, stacking, shared), on the
   same ``folds`` x ``repeats`` stratified splits; the best of them; the best published AUC
   (radMLBench ``best_auc``: maximum over 616 pipelines and 4 decorrelation thresholds on the
   same 10x30 CV without nesting, hence optimistic); and the wall time of each model's CV.
   ``early`` (lr on all features) is the very same model as ``lr``, so it is run once and
   reported under both names. ``--tune`` passes ``tune=True, n_iter=--n-iter`` to every
   ``build_model`` (nested CV; ``shared`` has no tunable branches and ignores it).

2. Cost of tuned stacking (``--cost-dataset``, ``--cost-folds`` x 1 repeat, ``tune=True``,
   ``n_iter=--cost-n-iter``), all three with the same ``--jobs`` over the outer folds:
   (a) nested CV of each base branch of ``build_model(groups, "stacking", tune=True)`` alone,
   summed over branches; (b) nested CV of that stacking model; (c) a naive loop: in each outer
   fold, a plain ``sklearn.ensemble.StackingClassifier`` over the same tuned branches
   (``LogisticRegression()`` on top, ``StratifiedKFold(5, shuffle=True, random_state=seed)``,
   ``stack_method="predict_proba"``) fitted from scratch, predicting the held-out fold.
   Prints the seconds, (b)/(a) (target <= 1.3), (b)/(c), and the AUC of (b) and (c).

``--quick`` (smoke run): 3 folds x 1 repeat and cost n_iter 3 unless given explicitly.

Outputs under ``--out``: ``models.csv`` (one row per dataset x model), ``summary.csv`` (one row
per dataset), ``cost.csv``, ``models.md``, ``cost.md``, ``modelling.md`` (the sections of this
run) and ``predictions/<dataset>.csv.gz`` (out-of-fold probabilities). BLAS is limited to one
thread per process (parallelism is over folds).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from radfusion.pipeline.dataset import Dataset, load_dataset
from radfusion.pipeline.fusion import build_model
from radfusion.pipeline.learners import LEARNERS
from radfusion.pipeline.progress import ProgressBar, run_tasks
from radfusion.pipeline.validation import (
    cross_validate_models,
    summarize,
)
from radfusion.pipeline.validation._cv import (
    encode_labels,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radmlbench"
FUSIONS = ("early", "late", "stacking", "shared")
#: Models that are the same estimator as another one: run once, reported under both names.
ALIASES = {"early": "lr"}
MODELS = (*LEARNERS, *FUSIONS)
QUICK = {"folds": 3, "repeats": 1, "cost_n_iter": 3}
DEFAULTS = {"folds": 5, "repeats": 3, "cost_n_iter": 10}


# --------------------------------------------------------------------------- helpers


def published_best() -> dict[str, float]:
    """Best published AUC (maximum over decorrelation thresholds) by dataset."""
    path = SHARED / "published_results" / "decorrelation_auc_10x30cv.csv"
    with path.open() as handle:
        return {row["dataset"]: float(row["best_auc"]) for row in csv.DictReader(handle)}


def fmt_auc(auc: dict[str, float] | None) -> str:
    """``mean [ci_low, ci_high]`` or ``-``."""
    if auc is None:
        return "-"
    return f"{auc['mean']:.3f} [{auc['ci_low']:.2f}, {auc['ci_high']:.2f}]"


def fmt_num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not rows:
        return
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _warm_up() -> int:
    """Import the heavy modules in a worker, so that pool start-up is not timed."""
    import xgboost  # noqa: F401

    import radfusion.pipeline.fusion  # noqa: F401

    return 0


def warm_pool(n_jobs: int) -> None:
    Parallel(n_jobs=n_jobs)(delayed(_warm_up)() for _ in range(8))


def timed_cv(
    models: dict[str, BaseEstimator],
    data: Dataset,
    *,
    folds: int,
    repeats: int,
    seed: int,
    n_jobs: int,
) -> tuple[pd.DataFrame, float]:
    """Out-of-fold predictions of ``models`` and the wall time of the CV."""
    started = time.perf_counter()
    predictions = cross_validate_models(
        models,
        data.X,
        data.y,
        ids=data.ids,
        folds=folds,
        repeats=repeats,
        seed=seed,
        n_jobs=n_jobs,
        progress=ProgressBar("cv", leave=False),
    ).predictions
    return predictions, time.perf_counter() - started


def timed_args_cv(
    models: dict[str, BaseEstimator], data: Dataset, args: argparse.Namespace
) -> tuple[pd.DataFrame, float]:
    """:func:`timed_cv` with the script's ``--folds``, ``--repeats``, ``--seed`` and ``--jobs``."""
    return timed_cv(
        models, data, folds=args.folds, repeats=args.repeats, seed=args.seed, n_jobs=args.jobs
    )


# --------------------------------------------------------------------------- 1. models


def build_models(
    groups: dict[str, list[str]], *, seed: int, tune: bool, n_iter: int
) -> dict[str, BaseEstimator]:
    """Every model that is actually run (aliases excluded), in report order."""
    kwargs: dict[str, Any] = {"random_state": seed}
    if tune:
        kwargs.update(tune=True, n_iter=n_iter)
    models: dict[str, BaseEstimator] = {}
    for learner in LEARNERS:
        models[learner] = build_model(groups, "early", learner=learner, **kwargs)
    for strategy in FUSIONS:
        if strategy not in ALIASES:
            models[strategy] = build_model(groups, strategy, **kwargs)
    return models


def run_dataset(
    path: Path, args: argparse.Namespace, published: dict[str, float]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """CV every model on one table; return the per-model rows and the summary row."""
    name = path.name.removesuffix(".gz")
    data = load_dataset(path, label="Target")
    sizes = ", ".join(f"{g} ({len(c)})" for g, c in data.groups.items())
    print(
        f"\n== {name}: n={len(data.y)}, {int(data.y.sum())} positive; groups: {sizes} ==",
        flush=True,
    )
    started = time.perf_counter()
    models = build_models(data.groups, seed=args.seed, tune=args.tune, n_iter=args.n_iter)
    frames: list[pd.DataFrame] = []
    seconds: dict[str, float] = {}
    errors: dict[str, str] = {}
    for model_name, model in models.items():
        try:
            predictions, seconds[model_name] = timed_args_cv({model_name: model}, data, args)
            frames.append(predictions)
            print(f"  {model_name:<9} done in {seconds[model_name]:7.1f} s", flush=True)
        except Exception as error:  # report and go on with the other models
            errors[model_name] = f"{type(error).__name__}: {error}"
            print(f"  {model_name:<9} FAILED: {errors[model_name]}", flush=True)
            traceback.print_exc()
    for alias, source in ALIASES.items():
        if source in seconds:
            seconds[alias] = seconds[source]
        if source in errors:
            errors[alias] = errors[source]
    aucs: dict[str, dict[str, float]] = {}
    if frames:
        predictions = pd.concat(frames, ignore_index=True)
        for alias, source in ALIASES.items():
            if source in seconds:
                copy = predictions[predictions["model"] == source].assign(model=alias)
                predictions = pd.concat([predictions, copy], ignore_index=True)
        summary = summarize(predictions, seed=args.seed)
        aucs = {m: summary[m]["roc_auc"] for m in summary}
        out = args.out / "predictions" / f"{name}.csv.gz"
        out.parent.mkdir(parents=True, exist_ok=True)
        predictions.to_csv(out, index=False)
    total = time.perf_counter() - started
    best = max(aucs, key=lambda m: aucs[m]["mean"]) if aucs else None
    pub = published.get(name)

    print(f"  {'model':<9} {'ROC AUC [95% CI]':<22} {'seconds':>8}")
    rows = []
    for model_name in MODELS:
        auc = aucs.get(model_name)
        note = f" (= {ALIASES[model_name]})" if model_name in ALIASES else ""
        if model_name in errors:
            note += f"  ERROR {errors[model_name]}"
        print(
            f"  {model_name:<9} {fmt_auc(auc):<22} {fmt_num(seconds.get(model_name), 1):>8}{note}"
        )
        rows.append(
            {
                "dataset": name,
                "model": model_name,
                "kind": "learner" if model_name in LEARNERS else "fusion",
                "auc_mean": auc["mean"] if auc else None,
                "ci_low": auc["ci_low"] if auc else None,
                "ci_high": auc["ci_high"] if auc else None,
                "seconds": seconds.get(model_name),
                "error": errors.get(model_name, ""),
            }
        )
    print(
        f"  best: {best} {fmt_auc(aucs.get(best)) if best else '-'}; "
        f"best published: {fmt_num(pub)}; total {total:.0f} s",
        flush=True,
    )
    summary_row: dict[str, Any] = {
        "dataset": name,
        "n": len(data.y),
        "positives": int(data.y.sum()),
        "groups": "/".join(data.groups),
        **{f"auc_{m}": aucs[m]["mean"] if m in aucs else None for m in MODELS},
        "best_model": best,
        "best_auc": aucs[best]["mean"] if best else None,
        "best_ci_low": aucs[best]["ci_low"] if best else None,
        "best_ci_high": aucs[best]["ci_high"] if best else None,
        "published_best_auc": pub,
        **{f"seconds_{m}": seconds.get(m) for m in MODELS},
        "seconds_total": total,
        "errors": "; ".join(f"{m}: {e}" for m, e in errors.items()),
    }
    return rows, summary_row


def models_markdown(
    rows: list[dict[str, Any]], summaries: list[dict[str, Any]], args: argparse.Namespace
) -> str:
    by = {(r["dataset"], r["model"]): r for r in rows}

    def cell(dataset: str, model: str) -> str:
        r = by[(dataset, model)]
        if r["auc_mean"] is None:
            return "error" if r["error"] else "-"
        return fmt_auc({"mean": r["auc_mean"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]})

    header = ["dataset", *MODELS, "best", "best published"]
    auc_rows = [
        [
            s["dataset"],
            *(cell(s["dataset"], m) for m in MODELS),
            f"{s['best_model']} {fmt_num(s['best_auc'])}" if s["best_model"] else "-",
            fmt_num(s["published_best_auc"]),
        ]
        for s in summaries
    ]
    time_rows = [
        [
            s["dataset"],
            *(fmt_num(s[f"seconds_{m}"], 1) for m in MODELS),
            fmt_num(s["seconds_total"], 0),
        ]
        for s in summaries
    ]
    errors = [f"- {s['dataset']}: {s['errors']}" for s in summaries if s["errors"]]
    tuned = f", tuned (n_iter={args.n_iter})" if args.tune else ""
    parts = [
        f"## ROC AUC, mean [95 % CI] ({args.folds} folds x {args.repeats} repeat(s), "
        f"seed {args.seed}{', quick' if args.quick else ''}{tuned})",
        "",
        "`early` is lr on all features, the same model as `lr`. Best published: radMLBench "
        "best_auc (max over 616 pipelines x 4 decorrelation thresholds, 10x30 CV, not nested).",
        "",
        markdown_table(header, auc_rows),
        "",
        f"## Wall time per model (seconds, n_jobs={args.jobs})",
        "",
        markdown_table(["dataset", *MODELS, "total"], time_rows),
    ]
    if errors:
        parts += ["", "## Errors", "", *errors]
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------- 2. cost


def _naive_fold(
    branches: list[tuple[str, BaseEstimator]],
    X: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    seed: int,
) -> np.ndarray:
    """Fit a plain StackingClassifier from scratch on ``train``; P(class 1) on ``test``."""
    model = StackingClassifier(
        estimators=[(name, clone(branch)) for name, branch in branches],
        final_estimator=LogisticRegression(),
        cv=StratifiedKFold(5, shuffle=True, random_state=seed),
        stack_method="predict_proba",
    )
    model.fit(X.iloc[train], y[train])
    proba = model.predict_proba(X.iloc[test])
    return proba[:, list(model.classes_).index(1)]


def naive_stacking_cv(
    branches: list[tuple[str, BaseEstimator]],
    data: Dataset,
    *,
    folds: int,
    seed: int,
    n_jobs: int,
    name: str = "naive",
) -> tuple[pd.DataFrame, float]:
    """(c): the naive loop on the splits of ``cross_validate_models(folds, 1 repeat, seed)``."""
    started = time.perf_counter()
    ids = np.asarray(data.ids, dtype=object)
    order = np.argsort(ids.astype(str), kind="stable")
    y01, _ = encode_labels(data.y)
    ids, y01, X = ids[order], y01[order], data.X.iloc[order]
    splitter = RepeatedStratifiedKFold(n_splits=folds, n_repeats=1, random_state=seed)
    splits = list(splitter.split(np.zeros((len(ids), 1)), y01))
    probas = run_tasks(
        (delayed(_naive_fold)(branches, X, y01, train, test, seed) for train, test in splits),
        n_jobs=n_jobs,
        progress=ProgressBar(name, leave=False),
    )
    proba = np.full(len(ids), np.nan)
    fold = np.full(len(ids), -1, dtype=np.int64)
    for k, ((_, test), p) in enumerate(zip(splits, probas, strict=True)):
        proba[test], fold[test] = p, k
    predictions = pd.DataFrame(
        {"patient_id": ids, "model": name, "repeat": 0, "fold": fold, "y_true": y01, "proba": proba}
    )
    return predictions, time.perf_counter() - started


def run_cost(args: argparse.Namespace) -> tuple[list[dict[str, Any]], str]:
    """The cost section: rows for ``cost.csv`` and its markdown."""
    path = SHARED / "datasets" / f"{args.cost_dataset}.gz"
    data = load_dataset(path, label="Target")
    folds, n_iter, seed, jobs = args.cost_folds, args.cost_n_iter, args.seed, args.jobs
    print(
        f"\n== Cost of tuned stacking: {args.cost_dataset} (n={len(data.y)}, groups "
        f"{'/'.join(data.groups)}), {folds} folds x 1 repeat, n_iter={n_iter}, "
        f"n_jobs={jobs} ==",
        flush=True,
    )
    stacking = build_model(data.groups, "stacking", random_state=seed, tune=True, n_iter=n_iter)
    branches = [(name, branch) for name, branch in stacking.estimators]
    rows: list[dict[str, Any]] = []
    frames: list[pd.DataFrame] = []
    cv = {"folds": folds, "repeats": 1, "seed": seed, "n_jobs": jobs}

    branch_seconds = 0.0
    for name, branch in branches:
        predictions, seconds = timed_cv({f"branch {name}": branch}, data, **cv)
        branch_seconds += seconds
        frames.append(predictions)
        rows.append({"part": f"(a) branch {name}", "seconds": seconds})
        print(f"  (a) branch {name:<14} {seconds:8.1f} s", flush=True)
    rows.append({"part": "(a) branches, summed", "seconds": branch_seconds})

    ours, ours_seconds = timed_cv({"stacking": stacking}, data, **cv)
    frames.append(ours)
    rows.append({"part": "(b) stacking (ours)", "seconds": ours_seconds})
    print(f"  (b) stacking (ours)      {ours_seconds:8.1f} s", flush=True)

    naive, naive_seconds = naive_stacking_cv(branches, data, folds=folds, seed=seed, n_jobs=jobs)
    frames.append(naive)
    rows.append({"part": "(c) naive StackingClassifier loop", "seconds": naive_seconds})
    print(f"  (c) naive loop           {naive_seconds:8.1f} s", flush=True)

    same_folds = (
        ours.sort_values("patient_id")["fold"].to_numpy()
        == naive.sort_values("patient_id")["fold"].to_numpy()
    ).all()
    summary = summarize(pd.concat(frames, ignore_index=True), seed=seed)
    auc = {m: summary[m]["roc_auc"] for m in summary}
    for row in rows:
        key = {"(b) stacking (ours)": "stacking", "(c) naive StackingClassifier loop": "naive"}.get(
            row["part"]
        )
        if row["part"].startswith("(a) branch ") and not row["part"].endswith("summed"):
            key = row["part"].removeprefix("(a) ")
        row.update(
            {
                "auc_mean": auc[key]["mean"] if key else None,
                "ci_low": auc[key]["ci_low"] if key else None,
                "ci_high": auc[key]["ci_high"] if key else None,
            }
        )
    ratio_a = ours_seconds / branch_seconds
    ratio_c = ours_seconds / naive_seconds
    rows.append({"part": "ratio (b)/(a)", "seconds": ratio_a})
    rows.append({"part": "ratio (b)/(c)", "seconds": ratio_c})
    for row in rows:
        row.setdefault("auc_mean", None)
        row.setdefault("ci_low", None)
        row.setdefault("ci_high", None)
        row["dataset"], row["folds"], row["n_iter"], row["n_jobs"] = (
            args.cost_dataset,
            folds,
            n_iter,
            jobs,
        )

    verdict = "meets" if ratio_a <= 1.3 else "misses"
    lines = [
        f"(a) {len(branches)} tuned branches alone, summed: {branch_seconds:.1f} s",
        f"(b) our stacking, nested CV:          {ours_seconds:.1f} s   "
        f"AUC {fmt_auc(auc['stacking'])}",
        f"(c) naive StackingClassifier loop:    {naive_seconds:.1f} s   "
        f"AUC {fmt_auc(auc['naive'])}",
        f"(b)/(a) = {ratio_a:.2f} ({verdict} the target <= 1.3); (b)/(c) = {ratio_c:.2f}",
    ]
    if not same_folds:
        lines.append("WARNING: (b) and (c) did not use the same outer folds")
    print("  " + "\n  ".join(lines), flush=True)

    table = [
        [
            r["part"],
            fmt_num(r["seconds"], 1 if "ratio" not in r["part"] else 2),
            fmt_auc({"mean": r["auc_mean"], "ci_low": r["ci_low"], "ci_high": r["ci_high"]})
            if r["auc_mean"] is not None
            else "-",
        ]
        for r in rows
    ]
    markdown = (
        "\n".join(
            [
                f"## Cost of tuned stacking ({args.cost_dataset}, {folds} folds x 1 repeat, "
                f"n_iter={n_iter}, inner_cv=3, n_jobs={jobs}, seed {seed})",
                "",
                markdown_table(["part", "seconds (or ratio)", "ROC AUC [95 % CI]"], table),
                "",
                *lines,
            ]
        )
        + "\n"
    )
    return rows, markdown


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--datasets", nargs="+", metavar="NAME", help="subset of the tables (default: all)"
    )
    parser.add_argument("--folds", type=int, help="outer folds (default 5; --quick 3)")
    parser.add_argument("--repeats", type=int, help="repeats (default 3; --quick 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=-1, help="joblib workers over folds")
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/modelling"))
    parser.add_argument(
        "--tune", action="store_true", help="tune every model's branches (nested CV)"
    )
    parser.add_argument("--n-iter", type=int, default=20, help="settings per tuned branch")
    parser.add_argument("--cost-dataset", default="Head-Neck-PET-CT")
    parser.add_argument(
        "--cost-n-iter",
        type=int,
        help="settings per tuned branch in the cost section (default 10; --quick 3)",
    )
    parser.add_argument(
        "--cost-folds", type=int, default=5, help="outer folds of the cost section (1 repeat)"
    )
    skip = parser.add_mutually_exclusive_group()
    skip.add_argument("--skip-cost", action="store_true", help="no cost section")
    skip.add_argument("--cost-only", action="store_true", help="only the cost section")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 3 folds x 1 repeat, cost n_iter 3"
    )
    args = parser.parse_args(argv)
    for key, value in (QUICK if args.quick else DEFAULTS).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if not SHARED.exists():
        raise SystemExit(f"shared data not found: {SHARED}")
    tables = sorted((SHARED / "datasets").glob("*.gz"))
    available = [t.name.removesuffix(".gz") for t in tables]
    if args.datasets:
        unknown = sorted(set(args.datasets) - set(available))
        if unknown:
            raise SystemExit(f"unknown dataset(s) {unknown}; available: {available}")
        tables = [t for t in tables if t.name.removesuffix(".gz") in args.datasets]
    if not args.skip_cost and args.cost_dataset not in available:
        raise SystemExit(f"unknown cost dataset {args.cost_dataset!r}; available: {available}")
    args.out.mkdir(parents=True, exist_ok=True)
    published = published_best()
    started = time.perf_counter()
    sections: dict[str, str] = {}

    def write_markdown() -> None:
        for section, text in sections.items():
            (args.out / f"{section}.md").write_text(text)
        (args.out / "modelling.md").write_text(
            "# radMLBench: learners, fusion strategies and the cost of stacking\n\n"
            + "\n".join(sections.values())
        )

    with threadpool_limits(limits=1):
        warm_pool(args.jobs)
        if not args.cost_only:
            print(
                f"Models: {args.folds} folds x {args.repeats} repeat(s), seed {args.seed}, "
                f"n_jobs {args.jobs}" + (f", tuned (n_iter={args.n_iter})" if args.tune else ""),
                flush=True,
            )
            rows: list[dict[str, Any]] = []
            summaries: list[dict[str, Any]] = []
            for table in tables:
                table_rows, summary = run_dataset(table, args, published)
                rows += table_rows
                summaries.append(summary)
                write_csv(args.out / "models.csv", rows)
                write_csv(args.out / "summary.csv", summaries)
                sections["models"] = models_markdown(rows, summaries, args)
                write_markdown()
            print("\n" + sections["models"], flush=True)
        if not args.skip_cost:
            cost_rows, sections["cost"] = run_cost(args)
            write_csv(args.out / "cost.csv", cost_rows)
            write_markdown()
    print(f"\nTotal {time.perf_counter() - started:.0f} s; outputs in {args.out}", flush=True)


if __name__ == "__main__":
    main()
