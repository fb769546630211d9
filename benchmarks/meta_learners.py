"""Which stacking meta-learner generalises on the radMLBench tables?

Usage: python benchmarks/meta_learners.py [DATASET ...] [--folds 5] [--repeats 3] [--jobs 2]

In every outer fold the default stacking model (every group x lr, svm, rf, xgb) is fitted once;
its meta-learner's training inputs (the branches' inner out-of-fold probabilities) are kept,
and every candidate meta-learner is fitted on those same inputs and scores the held-out fold.
Prints the ROC AUC (mean over repeats of the pooled out-of-fold AUC) of each candidate:

- ``nnlr_C1``: the shipped :class:`radfusion.pipeline.fusion.NonNegativeLogisticRegression` (C = 1);
- ``nnlr_C0.01``: the same with 100 times stronger shrinkage;
- ``nnlr_cv``: C chosen among 1e-4 .. 10 by 5-fold log-loss on the meta-learner's inputs;
- ``lr``: unconstrained ``LogisticRegression(C=1)`` on the probabilities;
- ``mean``: no learning, the mean of the branch probabilities.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from joblib import delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RepeatedStratifiedKFold, StratifiedKFold
from threadpoolctl import threadpool_limits

from radfusion.pipeline.dataset import Dataset, load_dataset
from radfusion.pipeline.fusion import NonNegativeLogisticRegression, build_model
from radfusion.pipeline.progress import ProgressBar, run_tasks

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATASETS = SHARED / "data" / "radmlbench" / "datasets"


class _Inputs(ClassifierMixin, BaseEstimator):
    """A stand-in meta-learner that only keeps what it is trained on."""

    def fit(self, X, y, sample_weight=None):
        self.X_, self.y_, self.classes_ = np.asarray(X), np.asarray(y), np.unique(y)
        return self

    def predict_proba(self, X):
        mean = np.asarray(X).mean(axis=1)
        return np.column_stack([1 - mean, mean])


def _nnlr_cv(X: np.ndarray, y: np.ndarray) -> NonNegativeLogisticRegression:
    """NNLR with C chosen by 5-fold log-loss on the meta-learner's own inputs."""
    Cs = np.logspace(-4, 1, 6)
    losses = []
    for C in Cs:
        loss = 0.0
        for train, test in StratifiedKFold(5, shuffle=True, random_state=0).split(X, y):
            p = NonNegativeLogisticRegression(C=C).fit(X[train], y[train]).predict_proba(X[test])
            loss -= np.sum(np.log(np.clip(p[np.arange(len(test)), y[test]], 1e-15, 1)))
        losses.append(loss)
    return NonNegativeLogisticRegression(C=Cs[int(np.argmin(losses))]).fit(X, y)


CANDIDATES = {
    "nnlr_C1": lambda X, y: NonNegativeLogisticRegression(C=1.0).fit(X, y),
    "nnlr_C0.01": lambda X, y: NonNegativeLogisticRegression(C=0.01).fit(X, y),
    "nnlr_cv": _nnlr_cv,
    "lr": lambda X, y: LogisticRegression(C=1.0, max_iter=1000).fit(X, y),
    "mean": None,
}


def _fold(data: Dataset, train: np.ndarray, test: np.ndarray) -> dict[str, np.ndarray]:
    with threadpool_limits(1):
        model = build_model(data.groups, "stacking").set_params(final_estimator=_Inputs())
        model.fit(data.X.iloc[train], data.y[train])
        X_meta, y_meta = model.final_estimator_.X_, model.final_estimator_.y_
        X_test = model._transform(data.X.iloc[test])
        out = {}
        for name, fit in CANDIDATES.items():
            out[name] = (
                X_test.mean(axis=1)
                if fit is None
                else fit(X_meta, y_meta).predict_proba(X_test)[:, 1]
            )
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("datasets", nargs="*")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    if not DATASETS.exists():
        raise SystemExit(f"shared data not found: {DATASETS}")
    names = args.datasets or sorted(p.name.removesuffix(".gz") for p in DATASETS.glob("*.gz"))
    print("dataset | " + " | ".join(CANDIDATES) + " | seconds")
    for name in names:
        started = time.perf_counter()
        data = load_dataset(DATASETS / f"{name}.gz", label="Target")
        splitter = RepeatedStratifiedKFold(
            n_splits=args.folds, n_repeats=args.repeats, random_state=0
        )
        splits = list(splitter.split(data.X, data.y))
        outputs = run_tasks(
            (delayed(_fold)(data, train, test) for train, test in splits),
            n_jobs=args.jobs,
            progress=ProgressBar(name, leave=False),
        )
        aucs = {}
        for candidate in CANDIDATES:
            per_repeat = []
            for r in range(args.repeats):
                proba = np.empty(len(data.y))
                for (_, test), out in zip(
                    splits[r * args.folds : (r + 1) * args.folds],
                    outputs[r * args.folds : (r + 1) * args.folds],
                    strict=True,
                ):
                    proba[test] = out[candidate]
                per_repeat.append(roc_auc_score(data.y, proba))
            aucs[candidate] = float(np.mean(per_repeat))
        seconds = time.perf_counter() - started
        print(
            f"{name} | " + " | ".join(f"{aucs[c]:.3f}" for c in CANDIDATES) + f" | {seconds:.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
