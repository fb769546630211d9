"""What a default ``radfusion cv`` costs on a table of ordinary size (issue 10 item 5).

Builds a 400-patient table with two imaging groups of 1,000 features each (``CT__tumor__*``,
``MR__tumor__*``; each with its ROI volume, so the volume baseline runs) and a clinical table
(age, sex, outcome), a weak real signal in 20 features per group and in age, writes it as
``features.csv`` + ``biomarkers.csv`` under ``--out``, and runs

(a) the default ``cv`` (every model ``radfusion cv`` builds: the single groups, the volume
    baseline, early, late, pooled and shared, stacking no longer among them since issue 24;
    explanations on; 5 folds x 3 repeats);
(b) ``cv`` of the stacking model alone (``--strategy stacking``), same folds;
(c) with ``--branches``: each of stacking's branches (group x learner) cross-validated on
    its own on the same folds, summed: what its base learners cost without stacking;

each through :func:`radfusion.pipeline.run_cv` in this process with ``n_jobs`` workers, and
prints wall time, the peak resident memory of this process and its workers together (sampled
every 0.1 s with psutil) and the ratios. Targets (issue 10): (a)/(b) <= 1.3; (b)/(c) <= 1.3;
(a) <= 5 minutes on 2 cores; memory flat in the number of models.

    .venv/bin/python benchmarks/cv_cost.py            # full size
    .venv/bin/python benchmarks/cv_cost.py --n 120 --features 200 --repeats 1   # quick look
"""

from __future__ import annotations

import argparse
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

from radfusion.pipeline import run_cv
from radfusion.pipeline.progress import ProgressBar


def make_cohort(out: Path, n: int, p: int, seed: int) -> tuple[Path, Path]:
    """Write ``features.csv`` (patient_id + 2 x p imaging features) and ``biomarkers.csv``."""
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.repeat([0, 1], [n - n // 2, n // 2]))
    ids = [f"P{i:04d}" for i in range(n)]
    columns: dict[str, Any] = {"patient_id": ids}
    for modality in ("CT", "MR"):
        volume = np.exp(rng.normal(10 + 0.2 * y, 0.5))
        columns[f"{modality}__tumor__original_shape_VoxelVolume"] = volume
        values = rng.normal(size=(n, p - 1))
        values[:, :20] += 0.25 * (2 * y[:, None] - 1)
        for j in range(p - 1):
            columns[f"{modality}__tumor__original_firstorder_f{j:04d}"] = values[:, j]
    out.mkdir(parents=True, exist_ok=True)
    features = out / "features.csv"
    pd.DataFrame(columns).to_csv(features, index=False)
    biomarkers = out / "biomarkers.csv"
    pd.DataFrame(
        {
            "patient_id": ids,
            "age": np.round(rng.normal(60 + 3 * y, 10), 1),
            "sex": rng.choice(["F", "M"], size=n),
            "outcome": y,
        }
    ).to_csv(biomarkers, index=False)
    return features, biomarkers


class PeakMemory:
    """Peak summed RSS (bytes) of this process and all its children, sampled in a thread."""

    def __init__(self, interval: float = 0.1):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for process in [me, *me.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(run: Callable[[], Any]) -> tuple[Any, float, float]:
    """``run()``; its output, wall seconds and peak memory (MiB)."""
    with PeakMemory() as memory:
        started = time.perf_counter()
        output = run()
        seconds = time.perf_counter() - started
    return output, seconds, memory.peak / 2**20


def stacking_branches_alone(features: Path, biomarkers: Path, args, figures) -> None:
    """(c): every stacking branch cross-validated alone on the same folds, summed."""
    from radfusion.pipeline.dataset import load_dataset
    from radfusion.pipeline.fusion import make_estimator
    from radfusion.pipeline.learners import strategy_learners
    from radfusion.pipeline.validation import cross_validate_models

    data = load_dataset(features, label="outcome", biomarkers=biomarkers)
    params = data.with_categories({"random_state": args.seed})
    total = 0.0
    for group in data.groups:
        for learner in strategy_learners("stacking"):
            model = make_estimator(
                "single", task=data.task, use_groups=[group], **{**params, "learner": learner}
            )
            _, seconds, _ = timed(
                lambda model=model: cross_validate_models(
                    {"branch": model},
                    data.table,
                    data.y,
                    ids=data.ids,
                    folds=args.folds,
                    repeats=args.repeats,
                    seed=args.seed,
                    n_jobs=args.jobs,
                    task=data.task,
                )
            )
            print(f"(c) {group}:{learner:<5} {seconds:7.1f} s", flush=True)
            total += seconds
    print(f"(c) branches, summed {total:7.1f} s", flush=True)
    if "(b) stacking alone" in figures:
        b = figures["(b) stacking alone"][0]
        verdict = "meets" if b / total <= 1.3 else "misses"
        print(f"(b)/(c) = {b / total:.2f} ({verdict} the target <= 1.3)", flush=True)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="patients")
    parser.add_argument("--features", type=int, default=1000, help="features per imaging group")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("radfusion-out/cv_cost"))
    parser.add_argument("--skip-stacking", action="store_true", help="run (a) only")
    parser.add_argument("--branches", action="store_true", help="also (c): branches alone")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    features, biomarkers = make_cohort(args.out / "cohort", args.n, args.features, args.seed)
    print(
        f"== cv cost: {args.n} patients x {2 * args.features} imaging features + clinical, "
        f"{args.folds} folds x {args.repeats} repeats, {args.jobs} jobs ==",
        flush=True,
    )
    runs = {"(a) default cv": None}
    if not args.skip_stacking:
        runs["(b) stacking alone"] = ("stacking",)
    figures: dict[str, tuple[float, float, dict]] = {}
    for name, strategies in runs.items():
        kwargs = {} if strategies is None else {"strategies": strategies}

        def run(kwargs=kwargs, name=name) -> dict:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return run_cv(
                    features,
                    biomarkers=biomarkers,
                    label="outcome",
                    out=args.out / name.split()[0].strip("()"),
                    folds=args.folds,
                    repeats=args.repeats,
                    seed=args.seed,
                    n_jobs=args.jobs,
                    progress=ProgressBar(name, leave=False),
                    **kwargs,
                )

        report, seconds, peak = timed(run)
        figures[name] = (seconds, peak, report)
        auc = {
            model: round(entry["metrics"]["roc_auc"]["mean"], 3)
            for model, entry in report["models"].items()
        }
        print(f"{name:<20} {seconds:7.1f} s   peak {peak:7.0f} MiB   AUC {auc}", flush=True)
    if len(figures) == 2:
        (a, _, _), (b, _, _) = figures.values()
        verdict = "meets" if a / b <= 1.3 else "misses"
        print(f"(a)/(b) = {a / b:.2f} ({verdict} the target <= 1.3)", flush=True)
    if args.branches:
        stacking_branches_alone(features, biomarkers, args, figures)
    seconds = figures["(a) default cv"][0]
    verdict = "meets" if seconds <= 300 else "misses"
    print(f"(a) = {seconds / 60:.1f} min ({verdict} the target <= 5 min)", flush=True)


if __name__ == "__main__":
    main()
