"""Our ComBat against well-kept implementations on the confounded-site null (issue 15 item 1).

Pure-noise imaging features, a ``site`` column associated with the outcome (``null-site`` of
``benchmarks/validity.py``: site A holds ~5 % of negatives and ~66 % of positives; no site
effect in the features) — a harmoniser that adds no label information leaves a held-out AUC
near 0.5. ``--scenario confounded`` adds a real additive site effect to every feature.

For each seed, one branch of :func:`radfusion.pipeline.fusion.make_branch` over all the imaging
columns (impute, drop constants, scale, learner) with learner ``lr`` and ``svm`` (RBF), and
its harmonisation step (fitted on the training rows of each fold, applied to the held-out
rows) set to

none            no harmonisation
ours            ``ComBat()`` (each site's training mean removed in full; the default)
ours-shrunk     ``ComBat(shrink_location=True)`` (neuroCombat's empirical-Bayes location)
combatlearn     ``combatlearn.core.ComBatModel(method="johnson")`` (``pip install combatlearn``)
neuroHarmonize  ``harmonizationLearn`` / ``harmonizationApply`` (``pip install neuroharmonize``)

all cross-validated on the same 5 stratified folds (:func:`cross_validate_models`). Prints the
mean (min, max) ROC AUC over seeds per arm and learner. An arm whose library is not installed
is skipped with a note.

    .venv/bin/python benchmarks/combat_comparison.py --seeds 5
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from radfusion.pipeline.fusion import make_branch
from radfusion.pipeline.preprocessing import ComBat
from radfusion.pipeline.validation import summarize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validity import make_table, seed_predictions  # noqa: E402 (a sibling script)

LIBRARIES = {"combatlearn": "combatlearn", "neuroHarmonize": "neuroHarmonize"}


class ExternalComBat(TransformerMixin, BaseEstimator):
    """A third-party ComBat behind the interface of ours: the site is a column of ``X``.

    ``fit`` learns the site parameters on the given (training) rows, ``transform`` applies
    them to any rows with their own sites; the site column is dropped from the output.
    """

    def __init__(self, library: str = "combatlearn", batch: str = "site"):
        self.library = library
        self.batch = batch

    def _split(self, X: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
        site = X[self.batch].astype(str)
        values = X.drop(columns=self.batch).to_numpy(dtype=np.float64)
        return values, site

    def fit(self, X: pd.DataFrame, y=None):
        values, site = self._split(X)
        self.feature_names_out_ = np.array([c for c in X.columns if c != self.batch], dtype=object)
        if self.library == "combatlearn":
            from combatlearn.core import ComBatModel

            self.model_ = ComBatModel(method="johnson").fit(
                pd.DataFrame(values), batch=site.to_numpy()
            )
        elif self.library == "neuroHarmonize":
            from neuroHarmonize import harmonizationLearn

            self.model_, _ = harmonizationLearn(values, pd.DataFrame({"SITE": site.to_numpy()}))
        else:
            raise ValueError(f"unknown library {self.library!r}")
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        values, site = self._split(X)
        if self.library == "combatlearn":
            out = self.model_.transform(pd.DataFrame(values), batch=site.to_numpy())
            return np.asarray(out, dtype=np.float64)
        from neuroHarmonize import harmonizationApply

        return harmonizationApply(values, pd.DataFrame({"SITE": site.to_numpy()}), self.model_)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return self.feature_names_out_


def arms() -> dict[str, BaseEstimator | None]:
    """Harmonisation step of each arm (None: no harmonisation); missing libraries skipped."""
    found = {"none": None, "ours": ComBat(), "ours-shrunk": ComBat(shrink_location=True)}
    for name, module in LIBRARIES.items():
        if importlib.util.find_spec(module) is None:
            print(f"{name} is not installed: arm skipped (pip install {name.lower()})")
        else:
            found[name] = ExternalComBat(name)
    return found


def run(scenario: str, n: int, p: int, seeds: int, learners: list[str]) -> pd.DataFrame:
    rows = []
    steps = arms()
    for seed in range(seeds):
        table, y = make_table(scenario, n, p, seed)
        imaging = [c for c in table if "__" in c]
        models = {}
        for arm, step in steps.items():
            for learner in learners:
                if step is None:
                    models[f"{arm}|{learner}"] = make_branch(imaging, learner, seed)
                    continue
                branch = make_branch(imaging, learner, seed, harmonize="site")
                models[f"{arm}|{learner}"] = branch.set_params(columntransformer__combat=step)
        predictions = seed_predictions(models, table, y, scenario, seed, repeats=1, n_jobs=1)
        for name, metrics in summarize(predictions, n_bootstrap=10, seed=seed).items():
            arm, learner = name.split("|")
            rows.append(
                {"seed": seed, "arm": arm, "learner": learner, "auc": metrics["roc_auc"]["mean"]}
            )
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenario", choices=("null-site", "confounded"), default="null-site")
    parser.add_argument("--n", type=int, default=150)
    parser.add_argument("--features", type=int, default=100, help="per imaging group (2)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--learners", default="lr,svm")
    args = parser.parse_args(argv)
    frame = run(args.scenario, args.n, args.features, args.seeds, args.learners.split(","))
    table = frame.pivot_table(
        index="arm", columns="learner", values="auc", aggfunc=["mean", "min", "max"], sort=False
    )
    print(
        f"\n{args.scenario}: n={args.n}, {2 * args.features} pure-noise imaging features, "
        f"{args.seeds} seeds, 5 stratified folds; held-out ROC AUC over seeds"
    )
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
