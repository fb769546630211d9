"""Null and confounded-site tables (issue 15): can any option manufacture signal?

Each scenario draws pure-noise imaging features in two groups (``CT__tumor``, ``MR__tumor``)
plus a clinical column, a ``site`` column and a binary outcome, then cross-validates every
model ``radfusion cv`` builds and prints the mean AUC over seeds (and the calibration slope of
the fused models on the planted-signal scenario).

Scenarios
---------
null            site unrelated to the outcome, no site effect in the features
null-site       site associated with the outcome (site A: ~5 % of negatives, ~66 % of
                positives), no site effect in the features
confounded      as null-site, plus a real additive site effect in every imaging feature
missing         null-site with 30 % of patients missing MR
planted         a weak real signal in 20 CT and 20 MR features, site unrelated

The issue's full size is ``--n 150 --features 500 --seeds 3`` (1,000 imaging features); the
machine this was first run on was shared, so the defaults are smaller.

    .venv/bin/python benchmarks/validity.py --scenario null-site --harmonize

``--issue-table`` runs the closing note's null table at the issue's full size (n = 150, 500
features per imaging group + age, 5-fold CV, every model ``radfusion cv`` builds with its
defaults, ``--seeds`` seeds) over five configurations: null; null-site without and with
``--harmonize``; confounded with ``--harmonize``; missing. It prints a markdown table of each
model's mean AUC (min-max over seeds) and whether every mean lies in 0.5 +- 0.1. Each
(configuration, seed) is saved under ``--out`` and reused, so the table can be built in
several short runs (``--rerun`` recomputes).

    .venv/bin/python benchmarks/validity.py --issue-table --seeds 5
    .venv/bin/python benchmarks/validity.py --issue-table --seeds 5 --models stacking

``--models`` keeps only the named models (e.g. the one whose default changed).
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from radfusion.pipeline.columns import infer_groups
from radfusion.pipeline.fusion import (
    build_models,
)
from radfusion.pipeline.fusion._combiners import (
    resolve_combiner,
)
from radfusion.pipeline.progress import ProgressBar
from radfusion.pipeline.validation import cross_validate_models, summarize

SCENARIOS = ("null", "null-site", "confounded", "missing", "planted")
#: The closing note's configurations: (label, scenario, harmonise by site).
ISSUE_TABLE = (
    ("null", "null", False),
    ("null-site", "null-site", False),
    ("null-site + harmonize", "null-site", True),
    ("confounded + harmonize", "confounded", True),
    ("missing", "missing", False),
)
CHANCE_TOLERANCE = 0.1


def make_table(scenario: str, n: int, p: int, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """A patient table (feature columns, ``clinical_age``, ``site``) and its 0/1 outcome."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], [n - n // 2, n // 2]))
    if scenario in ("null-site", "confounded", "missing"):
        site_a = np.where(y == 1, rng.random(n) < 0.66, rng.random(n) < 0.05)
        site = np.where(site_a, "A", np.where(rng.random(n) < 0.5, "B", "C"))
    else:
        site = rng.choice(["A", "B", "C"], size=n)
    columns = {}
    for modality in ("CT", "MR"):
        values = rng.normal(size=(n, p))
        if scenario == "confounded":
            effect = {"A": 1.0, "B": -0.5, "C": 0.0}
            shift = rng.normal(1.0, 0.3, size=p)
            values += np.array([effect[s] for s in site])[:, None] * shift
        if scenario == "planted":
            values[:, :20] += 0.12 * (2 * y[:, None] - 1)
        for j in range(p):
            columns[f"{modality}__tumor__f{j}"] = values[:, j]
    table = pd.DataFrame(columns, index=pd.Index([f"P{i:03d}" for i in range(n)], name="id"))
    if scenario == "missing":
        table.loc[rng.random(n) < 0.3, [c for c in table if c.startswith("MR__")]] = np.nan
    table["age"] = rng.normal(60, 10, size=n)
    table["site"] = site
    return table, y


def run(scenario: str, n: int, p: int, seeds: int, options: dict, repeats: int, n_jobs: int):
    frames = [_one_seed(scenario, n, p, seed, options, repeats, n_jobs) for seed in range(seeds)]
    return pd.concat(frames, ignore_index=True)


def seed_predictions(
    models: dict, table: pd.DataFrame, y, scenario: str, seed: int, **options
) -> pd.DataFrame:
    """Out-of-fold predictions of ``models`` on one seed's ``scenario`` table: 5 folds seeded
    by ``seed``, warnings silenced; ``options`` go to ``cross_validate_models``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cross_validate_models(
            models,
            table,
            y,
            folds=5,
            seed=seed,
            progress=ProgressBar(f"{scenario} seed {seed}", leave=False),
            **options,
        ).predictions


def _one_seed(
    scenario: str,
    n: int,
    p: int,
    seed: int,
    options: dict,
    repeats: int,
    n_jobs: int,
    only: list[str] | None = None,
):
    """Every model's (or the ``only`` models') AUC, Brier score and calibration slope on one
    seed's table."""
    rows = []
    table, y = make_table(scenario, n, p, seed)
    groups = infer_groups([c for c in table if c != "site"])
    models = build_models(groups, random_state=seed, **options)
    if only:
        models = {name: model for name, model in models.items() if name in only}
    predictions = seed_predictions(
        models, table, y, scenario, seed, repeats=repeats, n_jobs=n_jobs, skip_failing=True
    )
    summary = summarize(predictions, n_bootstrap=10, seed=seed)
    for name, metrics in summary.items():
        rows.append(
            {
                "seed": seed,
                "model": name,
                "auc": metrics["roc_auc"]["mean"],
                "brier": metrics["brier"]["mean"],
                "slope": metrics["calibration_slope"]["mean"],
            }
        )
    return pd.DataFrame(rows)


def issue_table(
    seeds: int, n: int, p: int, out: Path, n_jobs: int, rerun: bool, only: list[str] | None = None
) -> None:
    """The closing note's null table (see the module docstring), of every model or of the
    ``only`` ones; prints markdown."""
    # the confounded-site warning is expected here; joblib's workers read this at spawn
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    out.mkdir(parents=True, exist_ok=True)
    frames = []
    for label, scenario, harmonize in ISSUE_TABLE:
        options = {"harmonize": "site"} if harmonize else {}
        for seed in range(seeds):
            stem = f"{label.replace(' + ', '-')}-n{n}-p{p}-{resolve_combiner(None, 'stacking')}"
            stem += f"-{'-'.join(only)}" if only else ""
            saved = out / f"{stem}-seed{seed}.csv"
            if saved.exists() and not rerun:
                frame = pd.read_csv(saved)
            else:
                started = time.perf_counter()
                frame = _one_seed(scenario, n, p, seed, options, 1, n_jobs, only)
                frame.to_csv(saved, index=False)
                print(f"{label} seed {seed}: {time.perf_counter() - started:.0f} s (busy machine)",
                      flush=True)  # fmt: skip
            frames.append(frame.assign(config=label))
    table = pd.concat(frames, ignore_index=True)
    stats = table.groupby(["model", "config"], sort=False)["auc"].agg(["mean", "min", "max"])
    labels = [label for label, _, _ in ISSUE_TABLE]
    models = list(dict.fromkeys(table.model))
    print(f"\nMean ROC AUC (min-max) over {seeds} seeds; n = {n}, {p} features per imaging "
          "group + age, 5-fold CV, radfusion's default models\n")  # fmt: skip
    print("| model | " + " | ".join(labels) + " |")
    print("| --- |" + " --- |" * len(labels))
    for model in models:
        cells = []
        for label in labels:
            if (model, label) in stats.index:
                m = stats.loc[(model, label)]
                cells.append(f"{m['mean']:.3f} ({m['min']:.2f}-{m['max']:.2f})")
            else:
                cells.append("-")
        print(f"| {model} | " + " | ".join(cells) + " |")
    worst = (stats["mean"] - 0.5).abs().max()
    verdict = "yes" if worst <= CHANCE_TOLERANCE else "NO"
    print(f"\nEvery mean within 0.5 +- {CHANCE_TOLERANCE}: {verdict} (largest |mean - 0.5| "
          f"{worst:.3f})")  # fmt: skip


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=SCENARIOS, action="append")
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument(
        "--features", type=int, help="per imaging group (default 100; 500 with --issue-table)"
    )
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--harmonize", action="store_true")
    parser.add_argument("--select-k", type=int)
    parser.add_argument("--correlation-threshold", type=float)
    parser.add_argument("--calibration", default=None)
    parser.add_argument("--learners", default="lr,svm,rf,xgb")
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--issue-table", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/validity"))
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--models", help="comma-separated model names (default: every model)")
    args = parser.parse_args(argv)
    only = args.models.split(",") if args.models else None
    if args.issue_table:
        issue_table(args.seeds, args.n, args.features or 500, args.out, args.jobs, args.rerun, only)
        return
    args.features = args.features or 100
    options = {"learners": args.learners.split(",")}
    if args.harmonize:
        options["harmonize"] = "site"
    if args.select_k:
        options["select_k"] = args.select_k
    if args.correlation_threshold:
        options["correlation_threshold"] = args.correlation_threshold
    if args.calibration:
        options["calibration"] = args.calibration
    for scenario in args.scenario or SCENARIOS:
        frame = run(scenario, args.n, args.features, args.seeds, options, args.repeats, args.jobs)
        table = frame.groupby("model", sort=False)[["auc", "brier", "slope"]].agg(
            ["mean", "min", "max"]
        )
        print(
            f"\n{scenario}: n={args.n}, {args.features} features per imaging group, "
            f"{args.seeds} seeds, options {options}"
        )
        print(table.round(3).to_string())


if __name__ == "__main__":
    main()
