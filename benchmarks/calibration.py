"""Does ``--calibration sigmoid`` improve the fused models? Brier score and calibration slope.

Runs ``radfusion cv`` (the real command, in a subprocess) on every shared radMLBench table
(``radmlbench/datasets/*.gz``, label ``Target``, id ``ID``) and, when given, a demo-size
cohort (``--demo-features``/``--demo-biomarkers``/``--demo-label``), each twice: without
calibration and with ``--calibration sigmoid``. Every run uses

    --strategy early --strategy late --strategy stacking --learners lr --learners rf
    --folds 5 --repeats 1 --no-explain -j 1 --seed 0

and reads ``models.<name>.metrics.brier.mean`` and ``.calibration_slope.mean`` from its
``report.json``. ``--planted-seeds N`` adds the planted-signal table of
``benchmarks/validity.py`` (n=150, 100 pure-noise features per imaging group, 20 of them with
a weak real signal; learners lr and rf) over N seeds, both arms, on the same folds.

Decision rule (written before the comparison was run, issue 15 item 4): ``sigmoid`` becomes
the default of ``FusionClassifier(calibration=...)`` (and the CLI) if, for *each* of early, late and
stacking, it lowers the Brier score on at least 4 of the 6 radMLBench tables and never raises
it by more than 0.005. If only some strategies pass, the default stays off (one default for
every model) and the README says which strategies benefit.

    .venv/bin/python benchmarks/calibration.py --demo-features /tmp/cmpdemo/features_main.parquet \\
        --demo-biomarkers /tmp/cmpdemo/cohort/biomarkers.csv --demo-label outcome

The cheaper recalibration of stacking alone (``--combiner platt``: the mean, Platt-scaled on
the inner out-of-fold outputs stacking already computes) is judged in
``benchmarks/calibrated_mean.py``.

Reports are written under ``--out`` (default ``radfusion-out/calibration``); an existing
``report.json`` there is reused (``--rerun`` to recompute).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "radmlbench"
STRATEGIES = ("early", "late", "stacking")
ARMS = {"none": [], "sigmoid": ["--calibration", "sigmoid"]}
COMMON = [
    *[arg for s in STRATEGIES for arg in ("--strategy", s)],
    *["--learners", "lr", "--learners", "rf"],
    *["--folds", "5", "--repeats", "1", "--no-explain", "-j", "1", "--seed", "0"],
]
RULE_WINS, RULE_TOLERANCE = 4, 0.005


def run_cv(inputs: list[str], out: Path, arm: str, rerun: bool) -> dict:
    """``radfusion cv`` once; the ``models`` section of its report."""
    report = out / "report.json"
    if rerun and out.exists():
        shutil.rmtree(out)
    if not report.exists():
        command = [sys.executable, "-m", "radfusion.pipeline.cli", "cv", *inputs]
        command += ["--out", str(out), *COMMON, *ARMS[arm]]
        print(" ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads(report.read_text())["models"]


def rows_of(dataset: str, arm: str, models: dict) -> list[dict]:
    return [
        {
            "dataset": dataset,
            "model": name,
            "arm": arm,
            "brier": models[name]["metrics"]["brier"]["mean"],
            "slope": models[name]["metrics"]["calibration_slope"]["mean"],
            "auc": models[name]["metrics"]["roc_auc"]["mean"],
        }
        for name in STRATEGIES
        if name in models
    ]


def planted_rows(seeds: int) -> list[dict]:
    """The planted-signal table of ``benchmarks/validity.py``, both arms, mean over seeds."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from validity import run  # noqa: PLC0415 (a sibling script)

    rows = []
    for arm in ARMS:
        options = {"learners": ["lr", "rf"]}
        if arm != "none":
            options["calibration"] = arm
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame = run("planted", 150, 100, seeds, options, repeats=1, n_jobs=1)
        means = frame.groupby("model")[["brier", "slope", "auc"]].mean()
        for name in STRATEGIES:
            rows.append({"dataset": f"planted ({seeds} seeds)", "model": name, "arm": arm,
                         **means.loc[name].to_dict()})  # fmt: skip
    return rows


def decide(table: pd.DataFrame, datasets: list[str]) -> dict[str, bool]:
    """The rule above, per strategy, on the radMLBench tables."""
    verdict = {}
    for name in STRATEGIES:
        wide = table[table.model.eq(name) & table.dataset.isin(datasets)].pivot(
            index="dataset", columns="arm", values="brier"
        )
        change = wide["sigmoid"] - wide["none"]
        verdict[name] = bool((change < 0).sum() >= RULE_WINS and change.max() <= RULE_TOLERANCE)
    return verdict


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="*", help="radMLBench tables, run order")
    parser.add_argument("--demo-features", type=Path)
    parser.add_argument("--demo-biomarkers", type=Path)
    parser.add_argument("--demo-label", default="outcome")
    parser.add_argument("--planted-seeds", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/calibration"))
    parser.add_argument("--rerun", action="store_true")
    args = parser.parse_args(argv)

    rows = []
    if args.demo_features is not None:
        inputs = [str(args.demo_features), "--label", args.demo_label]
        if args.demo_biomarkers is not None:
            inputs += ["--biomarkers", str(args.demo_biomarkers)]
        for arm in ARMS:
            models = run_cv(inputs, args.out / f"demo-{arm}", arm, args.rerun)
            rows += rows_of("demo", arm, models)
    available = sorted(p.name.removesuffix(".gz") for p in (SHARED / "datasets").glob("*.gz"))
    if not available:
        print(f"no radMLBench tables under {SHARED / 'datasets'}: skipping them")
    names = [n for n in args.datasets if n in available] if args.datasets else available
    for name in names:
        for arm in ARMS:
            inputs = [str(SHARED / "datasets" / f"{name}.gz"), "--label", "Target", "--id", "ID"]
            rows += rows_of(name, arm, run_cv(inputs, args.out / f"{name}-{arm}", arm, args.rerun))
    if args.planted_seeds:
        rows += planted_rows(args.planted_seeds)

    table = pd.DataFrame(rows)
    wide = table.pivot_table(
        index=["dataset", "model"], columns="arm", values=["brier", "slope", "auc"], sort=False
    )
    wide[("brier", "change")] = wide[("brier", "sigmoid")] - wide[("brier", "none")]
    print("\nBrier score, calibration slope and ROC AUC without / with --calibration sigmoid")
    print(wide.round(3).to_string())
    if names:
        print("\nMean over the radMLBench tables:")
        bench = wide.loc[names].groupby(level="model", sort=False).mean()
        print(bench.round(3).to_string())
        verdict = decide(table, names)
        print(f"\nRule (Brier lower on >= {RULE_WINS} of {len(names)} tables, never "
              f"> +{RULE_TOLERANCE}): " + ", ".join(f"{k}: {'on' if v else 'off'}"
                                                    for k, v in verdict.items()))  # fmt: skip
        if len(names) < len(available):
            print(f"Only {len(names)} of {len(available)} tables: the rule needs all of them")
        elif all(verdict.values()):
            print("Decision: sigmoid by default")
        else:
            print("Decision: keep off")


if __name__ == "__main__":
    main()
